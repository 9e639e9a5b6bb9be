"""The iSCSI sessions the kernel has, by number and by target name.

A lookup for one path's session needs the sessions to its target only, but
nothing in sysfs lists those: the listing of ``/sys/class/iscsi_session`` names
every session of the host. It is the one walk left, and it is kept to what the
kernel makes unavoidable: a listing (a directory read) per lookup, compared
with the last one as a whole, so that only sessions that came or went since are
parsed, and each session's target name read once. A lookup then visits the
sessions of its target and the few whose target name is not set yet (a login
under way), not every session of the host.

Why a name read once stays true: the kernel numbers sessions from a counter
that only grows (``iscsi_session_nr`` in ``scsi_transport_iscsi``; the
``ida`` there numbers SCSI target ids, not sessions), and iscsid sets
``targetname`` once, before the session first logs in.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from multipath_brick.host.base import Host

#: Where the kernel lists its sessions, ``session<N>`` each.
SESSIONS = "/sys/class/iscsi_session"


class SessionNumbers:
    """Session numbers from the listing, and each one's target name once read.

    :param host: whose sysfs is listed.
    :param targetname: reads a session's target name; None until iscsid has
        set it, or when the session is gone.
    """

    def __init__(self, host: Host, targetname: Callable[[int], str | None]) -> None:
        self._host = host
        self._targetname = targetname
        self._names: list[str] = []  # the last listing, as listed
        self._listed: set[str] = set()
        self._present: set[int] = set()
        self._iqns: dict[int, str] = {}
        self._by_iqn: dict[str, set[int]] = {}
        self._unnamed: set[int] = set()  # present, target name not read yet

    def refresh(self) -> set[int]:
        """List the sessions again; the numbers gone since the last listing."""
        names = self._host.list_dir(SESSIONS)
        if names == self._names:
            return set()
        # Compared as sets of names first: only what came or went is parsed.
        listed = set(names)
        came = {sid for name in listed - self._listed if (sid := _number(name)) is not None}
        gone = {sid for name in self._listed - listed if (sid := _number(name)) is not None}
        for sid in gone:
            self._unnamed.discard(sid)
            iqn = self._iqns.pop(sid, None)
            if iqn is not None:
                self._by_iqn[iqn].discard(sid)
                if not self._by_iqn[iqn]:
                    del self._by_iqn[iqn]
        self._unnamed |= came
        self._present = (self._present - gone) | came
        self._names, self._listed = names, listed
        return gone

    def all(self) -> list[int]:
        """Every session of the last listing, in session order."""
        return sorted(self._present)

    def to(self, iqns: Collection[str]) -> list[int]:
        """The sessions of the last listing to these targets, in session order."""
        for sid in list(self._unnamed):
            self.iqn(sid)
        found: set[int] = set()
        for iqn in iqns:
            found |= self._by_iqn.get(iqn, set())
        return sorted(found)

    def iqn(self, sid: int) -> str | None:
        """A session's target name, once iscsid has set it."""
        if (known := self._iqns.get(sid)) is not None:
            return known
        iqn = self._targetname(sid)
        if iqn is not None and sid in self._present:
            self._iqns[sid] = iqn
            self._by_iqn.setdefault(iqn, set()).add(sid)
            self._unnamed.discard(sid)
        return iqn


def _number(name: str) -> int | None:
    """``session<N>``'s N."""
    digits = name.removeprefix("session")
    return int(digits) if digits != name and digits.isdigit() else None
