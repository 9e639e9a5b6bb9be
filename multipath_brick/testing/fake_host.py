"""FakeHost: a Linux host with iscsid, multipathd and iSCSI targets, simulated.

It answers the argv of every :mod:`~multipath_brick.verbs` verb with
the output and exit codes of open-iscsi 2.1 and multipath-tools 0.9, and keeps
a sysfs-like tree of real files under a temporary root, so the library's upper
layers run unchanged. Its controls script the trouble real hosts have:
slow or dead portals, wrong CHAP, slow udev, maps slow to become usable,
flush failures, multipathd down, LUN resizes, hanging scans.

Example::

    with FakeHost(time_scale=0.01) as host:
        target = host.add_target("iqn.2003-01.org.example:t1",
                                 ["10.0.0.1:3260", "10.0.0.2:3260"], luns={1: 2**30})
        host.set_unreachable("10.0.0.2:3260", True)
        ...  # ISCSIMultipathConnector(use_multipath=True, host=host, lock_path=tmp_dir)
        assert not host.leftovers()
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from types import TracebackType

from multipath_brick.exception import CommandTimeout
from multipath_brick.host.base import TIMED_OUT, CommandResult
from multipath_brick.testing.controls import HostControls
from multipath_brick.testing.devnodes import DevNodes
from multipath_brick.testing.ifaces import FakeIfaces, NetworkControls
from multipath_brick.testing.iscsi_sim import Iscsid
from multipath_brick.testing.multipath_sim import Multipathd
from multipath_brick.testing.netdevs import Netdevs
from multipath_brick.testing.scsi_sim import Kernel
from multipath_brick.testing.state import (
    FakeTarget,
    Outcome,
    Plan,
    SimState,
    done,
)
from multipath_brick.testing.sysfs_tree import SysfsTree
from multipath_brick.verbs import (
    Command,
    MultipathAddWwid,
    MultipathRemoveWwid,
    RecordVerb,
    SysfsWrite,
    ownership,
)

__all__ = ["FakeHost", "FakeTarget"]

#: One entry of :attr:`FakeHost.calls`: (argv with secrets masked, exit code,
#: start, end) with times from :func:`time.monotonic`.
Call = tuple[tuple[str, ...], int, float, float]


class FakeHost(HostControls, NetworkControls):
    """A simulated Linux host implementing the :class:`~multipath_brick.host.base.Host`
    protocol.

    Simulated durations (login latency, login and discovery timeouts, scan
    hangs, udev and map-ready delays) are in simulated seconds and really last
    ``seconds * time_scale``; command timeouts passed to :meth:`run` and
    :meth:`write` are compared with them in the same simulated seconds.
    :meth:`monotonic` and :meth:`sleep` are real time.

    :param time_scale: real seconds per simulated second (0 makes everything instant).
    :param root: the directory standing for ``/``; a temporary one when None,
        removed by :meth:`close`.
    :ivar calls: every command run: (argv with passwords masked, exit code, start, end).
    :ivar writes: every sysfs write: (path, value, errno or 0, start, end).
    """

    def __init__(self, time_scale: float = 1.0, root: str | None = None) -> None:
        self._own_root = root is None
        self.root = tempfile.mkdtemp(prefix="fakehost-") if root is None else root
        tree = SysfsTree(self.root)
        tree.init_host("iqn.2004-10.com.example:fakehost")
        self._st = SimState(tree, time_scale)
        self._mpathd = Multipathd(self._st)
        self._kernel = Kernel(self._st, self._mpathd.on_udev_add, self._mpathd.on_removed)
        self._ifaces = FakeIfaces(self._st, Netdevs(tree))
        self._iscsid = Iscsid(self._st, self._kernel, self._ifaces)
        self._devnodes = DevNodes(self._st)
        self.calls: list[Call] = []
        self.writes: list[tuple[str, str, int, float, float]] = []

    # --- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop background work (udev, iscsid) and remove a temporary root."""
        with self._st.lock:
            self._st.closed = True
            timers = list(self._st.timers)
        for timer in timers:
            timer.cancel()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> FakeHost:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- the Host protocol -------------------------------------------------------------

    def _sleep_sim(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds * self._st.time_scale)

    def run(self, command: Command | RecordVerb, *, timeout: float) -> CommandResult:
        """Answer a verb's argv like the real tools would, behind the daemon's
        ownership check (:mod:`~multipath_brick.verbs.ownership`), or carry out
        a record verb (a write or a read) like the privsep daemon would.

        :param command: the verb; dispatched on its :meth:`~Command.argv`, or on
            its type for a :class:`RecordVerb`; every verb after the ownership check.
        :param timeout: simulated seconds; a longer command returns :data:`TIMED_OUT`.
        :raises NotOwnedError: the verb names a disk or map that is not iSCSI's,
            as the daemon refuses it (nothing is run or recorded).
        :raises NotImplementedError: for an argv the fake does not emulate.
        """
        start = time.monotonic()
        with self._st.lock:
            # The daemon's own check, on this tree: refused here as there.
            gone = ownership.check_command(command, root=self.root)
            if gone is not None:
                plan = done(Outcome(1, "", gone))
            elif isinstance(command, (MultipathAddWwid, MultipathRemoveWwid)):
                plan = self._mpathd.wwids(command)
            elif isinstance(command, RecordVerb):
                plan = self._iscsid.record(command)
            else:
                plan = self._plan(command.argv())
        if plan.duration > timeout:
            self._sleep_sim(timeout)
            with self._st.lock:
                if plan.on_kill is not None:
                    plan.on_kill(plan.duration - timeout)
            outcome = Outcome(TIMED_OUT)
        else:
            self._sleep_sim(plan.duration)
            with self._st.lock:
                outcome = plan.commit()
        end = time.monotonic()
        display = command.display()
        with self._st.lock:
            self.calls.append((display, outcome.exit_code, start, end))
        return CommandResult(
            display, outcome.exit_code, outcome.stdout, outcome.stderr, end - start
        )

    def _plan(self, argv: Sequence[str]) -> Plan:
        if argv and argv[0] == "iscsiadm":
            return self._iscsid.handle(argv)
        if argv and argv[0] in ("multipath", "multipathd"):
            return self._mpathd.handle(argv)
        if argv and argv[0] in ("dd", "ln", "rm"):
            return self._devnodes.handle(argv)
        raise NotImplementedError(f"fake host does not emulate: {' '.join(argv)}")

    def write(self, write: SysfsWrite, *, timeout: float) -> None:
        """Apply a sysfs write as the kernel would.

        A scan first waits the scripted :meth:`set_scan_hang`, and a scan
        through an unreachable portal also the session's recovery timeout
        (``node.session.timeo.replacement_timeout``), then finds nothing.

        The daemon's ownership check runs first, on this tree.

        :param write: the verb; dispatched on its :meth:`~SysfsWrite.path`.
        :param timeout: simulated seconds.
        :raises CommandTimeout: the write did not return within ``timeout``.
        :raises NotOwnedError: the disk, LUN or host is not an iSCSI one
            (nothing is written or recorded).
        :raises OSError: ENOENT when the attribute does not exist.
        """
        path, value = write.path(), write.value()
        start = time.monotonic()
        with self._st.lock:
            try:
                ownership.attribute(write, root=self.root)
            except FileNotFoundError:
                pass  # the kernel's own ENOENT follows, recorded below
            hang = self._kernel.write_delay(path)
        code = 0
        try:
            if hang > timeout:
                self._sleep_sim(timeout)
                with self._st.lock:
                    # The scan goes on in the kernel and may bring the disk later.
                    self._st.later(hang - timeout, lambda: self._write_quietly(path, value))
                code = TIMED_OUT
                raise CommandTimeout(("write", path, value), TIMED_OUT, "")
            self._sleep_sim(hang)
            with self._st.lock:
                self._kernel.write(path, value)
        except OSError as exc:
            code = exc.errno or -1
            raise
        finally:
            with self._st.lock:
                self.writes.append((path, value, code, start, time.monotonic()))

    def _write_quietly(self, path: str, value: str) -> None:
        try:
            self._kernel.write(path, value)
        except OSError:
            pass  # the host may have gone meanwhile: nothing to report to

    def read_text(self, path: str) -> str:
        """Read a file of the fake tree. :raises OSError: when it cannot."""
        # Under the lock, so a reader never sees a half-built device.
        with self._st.lock, open(self._st.tree.local(path), encoding="utf-8") as f:
            return f.read()

    def list_dir(self, path: str) -> list[str]:
        """Entry names of a directory, sorted; empty when it does not exist."""
        try:
            with self._st.lock:
                names = os.listdir(self._st.tree.local(path))
        except (FileNotFoundError, NotADirectoryError):
            return []
        # Sorted outside the lock: a listing of thousands of sessions need not
        # hold up the other paths' commands while it is put in order.
        return sorted(names)

    def exists(self, path: str) -> bool:
        """Whether the path exists in the fake tree (following symlinks)."""
        with self._st.lock:
            return self._st.tree.exists(path)

    def realpath(self, path: str) -> str:
        """The path with symlinks resolved, as a host path (root stripped)."""
        with self._st.lock:
            return self._st.tree.host_path(os.path.realpath(self._st.tree.local(path)))

    def monotonic(self) -> float:
        """Real :func:`time.monotonic`."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Real :func:`time.sleep` (only the fake's own durations are scaled)."""
        time.sleep(seconds)
