"""``python -m multipath_brick.privsep_daemon``: the privsep daemon as a program.

This is what ``privsep-helper`` runs, without needing it on ``PATH``, for a
caller that is already root (:func:`multipath_brick.privileged.start_daemon`);
oslo.privsep adds ``--privsep_context`` and ``--privsep_sock_path``. It lives
outside :mod:`multipath_brick.privileged` so that it can keep eventlet out
before oslo.privsep is imported (importing that package imports oslo.privsep).
"""

from __future__ import annotations

import sys


def main() -> None:
    """Start the daemon: returns in the parent once the daemon is forked off."""
    # oslo.privsep's daemon module tries ``import eventlet`` only to cooperate
    # with a monkey-patched process, which this one never is; the import cost a
    # third of the daemon's start (0.11 of 0.31 s on the build machine). None in sys.modules makes
    # it fail as if eventlet were not installed, which oslo.privsep handles.
    sys.modules.setdefault("eventlet", None)  # type: ignore[arg-type]
    from oslo_privsep.daemon import helper_main

    # The entrypoints now, before the daemon serves: privsep would import their
    # module on the first call, and every call that comes meanwhile waits for it
    # (0.9 s in the TCG lab, for each of 8 attaches started at once).
    import multipath_brick.privileged.entrypoints  # noqa: F401

    helper_main()


if __name__ == "__main__":
    main()
