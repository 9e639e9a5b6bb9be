"""The lab: multipath-brick on a real kernel, for the functional tests, soak and benchmarks.

A QEMU guest (virtme-ng, TCG) running a stock Debian kernel with a tgt target
behind N portals (one veth pair and subnet each), CHAP, iscsid and multipathd.
The functional tests (``multipath_brick/tests/functional``) import it; the
soak is :mod:`.soak`, the benchmarks :mod:`.bench`. See README.md in this
directory, and ``python -m multipath_brick.tests.lab --help``.
"""

from .config import LabConfig, load_state

__all__ = ["LabConfig", "load_state", "in_lab_guest"]


def in_lab_guest() -> bool:
    """True only inside a guest whose lab setup completed."""
    return load_state() is not None
