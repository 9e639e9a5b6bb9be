"""The fake host's device nodes: reading a block (dd) and os-brick's links (ln, rm).

Only the argv of :mod:`multipath_brick.verbs.blockdev` are known:

* ``dd if=/dev/X of=/dev/null bs=4096 count=1 iflag=direct`` reads a block of a
  disk or a map. A disk whose portal is unreachable fails with EIO, as a
  direct read does once the session's replacement timeout has passed; a map
  reads while one of its disks does (it queues otherwise; the fake answers
  EIO, as a map with ``no_path_retry fail`` would). A device that is not
  there fails to open.
* ``ln -sfT /dev/X LINK`` makes (or replaces) a symlink, dangling or not,
  as ln does (a directory of that name is not replaced: ``-T``); ``rm -f
  LINK`` removes it, missing or not.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from multipath_brick.testing.state import Outcome, Plan, SimState, done

__all__ = ["DevNodes"]

_READ_OK = "1+0 records in\n1+0 records out\n4096 bytes (4.1 kB, 4.0 KiB) copied\n"


class DevNodes:
    """Answers the block-device verbs on one fake host's state."""

    def __init__(self, state: SimState) -> None:
        self.st = state

    def handle(self, argv: Sequence[str]) -> Plan:
        """Plan one ``dd``, ``ln`` or ``rm`` command of the blockdev verbs.

        :raises NotImplementedError: for another command line.
        """
        args = tuple(argv)
        if args[0] == "dd" and len(args) == 6 and args[1].startswith("if=/dev/"):
            return done(self._read(args[1].removeprefix("if=/dev/")))
        if args[:2] == ("ln", "-sfT") and len(args) == 4:
            real = self.st.tree.local(args[3])
            if os.path.isdir(real) and not os.path.islink(real):
                return done(Outcome(1, "", f"ln: cannot overwrite directory '{args[3]}'\n"))
            self.st.tree.link(args[3], args[2])
            return done(Outcome(0))
        if args[:2] == ("rm", "-f") and len(args) == 3:
            real = self.st.tree.local(args[2])
            if os.path.isdir(real) and not os.path.islink(real):
                return done(Outcome(1, "", f"rm: cannot remove '{args[2]}': Is a directory\n"))
            self.st.tree.remove(args[2])
            return done(Outcome(0))
        raise NotImplementedError(f"fake host does not emulate: {' '.join(args)}")

    def _read(self, device: str) -> Outcome:
        if device in self.st.disks:
            up = self._disk_up(device)
        else:
            m = self.st.maps.first_under("kernel_name", device)
            if m is None:
                return Outcome(
                    1, "", f"dd: failed to open '/dev/{device}': No such file or directory\n"
                )
            up = any(self._disk_up(slave) for slave in m.slaves)
        if not up:
            return Outcome(1, "", f"dd: error reading '/dev/{device}': Input/output error\n")
        return Outcome(0, "", _READ_OK)

    def _disk_up(self, name: str) -> bool:
        disk = self.st.disks.get(name)
        return disk is not None and disk.session.portal not in self.st.unreachable
