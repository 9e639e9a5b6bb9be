"""Reading sysfs and /dev under a root: ``/`` in the daemon, a FakeHost's tree in tests.

What the ownership checks (:mod:`.ownership`) read goes through here, so the
same checks run on the real host and on the fake's tree.
"""

from __future__ import annotations

import errno
import os


def local(root: str, path: str) -> str:
    """Where the host path ``path`` is under ``root``."""
    return os.path.join(root, path.lstrip("/"))


def resolve(root: str, path: str) -> str:
    """A host path with its links resolved, as a host path.

    :raises FileNotFoundError: it does not exist.
    """
    real = os.path.realpath(local(root, path))
    if not os.path.exists(real):
        raise FileNotFoundError(errno.ENOENT, f"no {path}")
    base = os.path.realpath(root)
    # A link leaving the root (only in a badly built test tree) keeps its "..":
    # it then matches no sysfs pattern and is refused.
    relative = os.path.relpath(real, base)
    return "/" if relative == "." else "/" + relative


def read(root: str, path: str) -> str | None:
    """A file's text, stripped; None if it cannot be read."""
    try:
        with open(local(root, path), encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def listing(root: str, path: str) -> list[str]:
    """A directory's names, sorted; empty if it cannot be listed."""
    try:
        return sorted(os.listdir(local(root, path)))
    except OSError:
        return []
