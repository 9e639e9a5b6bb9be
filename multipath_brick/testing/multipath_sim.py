"""multipathd and the multipath command, as multipath-tools 0.9.x behaves.

Configuration simulated: ``find_multipaths strict`` (a map only for WWIDs in
``/etc/multipath/wwids``), ``user_friendly_names no`` (map name = WWID).
Client replies: ``ok``/``fail`` from multipathd, the text after ``fail`` on
stdout and exit 1; a stopped multipathd makes every client command exit 1
silently. Behaviour checked against the lab captures in ``tests/fixtures``
(multipath-tools 0.9.4).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from multipath_brick.testing.multipath_json import JsonPath, map_json
from multipath_brick.testing.scsi_sim import MODEL, VENDOR
from multipath_brick.testing.state import Disk, MapState, Outcome, Plan, SimState, done
from multipath_brick.testing.sysfs_tree import sd_dev
from multipath_brick.verbs import MultipathAddWwid, MultipathRemoveWwid

DAEMON_PID = 4242
OK = Outcome(0, "ok\n")
FAIL = Outcome(1, "fail\n")


def _fail(text: str) -> Outcome:
    # multipathd replies "fail\n<why>\n"; the client prints only <why>.
    return Outcome(1, f"{text}\n")


def _log(text: str) -> str:
    # multipath's condlog to stderr: "<monotonic seconds.usec> | text".
    now = time.monotonic()
    return f"{int(now)}.{int(now % 1 * 1e6):06d} | {text}\n"


class Multipathd:
    """Answers ``multipath`` and ``multipathd`` argv, and reacts to udev events.

    :param state: the shared state (every method runs under its lock).
    """

    def __init__(self, state: SimState) -> None:
        self.st = state

    # --- dispatch ----------------------------------------------------------------------

    def handle(self, argv: Sequence[str]) -> Plan:
        """Plan one multipath/multipathd command.

        :raises NotImplementedError: for a command line the fake does not know.
        """
        args = tuple(argv)
        if args[0] == "multipathd":
            if not self.st.multipathd_running:
                return done(Outcome(1))
            return done(self._client(args[1:]))
        if args[0] == "multipath" and len(args) == 3 and args[1] == "-f":
            return self._flush_plan(args[2])
        raise NotImplementedError(f"fake host does not emulate: {' '.join(args)}")

    def wwids(self, verb: MultipathAddWwid | MultipathRemoveWwid) -> Plan:
        """Plan the daemon's edit of the WWID file (as ``multipath -a``/``-w``)."""
        delay = self.st.wwids_edit_delay
        if isinstance(verb, MultipathAddWwid):
            return Plan(delay, lambda: self._add_wwid(verb.wwid))
        return Plan(delay, lambda: self._remove_wwid(verb.wwid))

    def _client(self, words: tuple[str, ...]) -> Outcome:
        if words == ("show", "daemon"):
            return Outcome(0, f"pid {DAEMON_PID} idle\n")
        if words[:4] == ("show", "paths", "raw", "format") and len(words) == 5:
            # An empty reply becomes multipathd's default reply: "ok".
            return Outcome(0, self._show_paths(words[4]) or "ok\n")
        if len(words) == 4 and words[:2] == ("show", "map") and words[3] == "json":
            # A name or dm-N it has no map of: "fail", exit 1 (multipathd_show_map_sequence.txt).
            m = self.find_map(words[2])
            return FAIL if m is None else Outcome(0, self._show_map(m))
        if len(words) == 3 and words[:2] in (("add", "path"), ("del", "path")):
            # Like multipathd's convert_dev(): "/dev/sda" and "sda" are the same path.
            dev = words[2].removeprefix("/dev/")
            return self._add_path(dev) if words[0] == "add" else self._del_path(dev)
        if len(words) == 3 and words[:2] == ("resize", "map"):
            return self._resize(words[2])
        if len(words) == 3 and words[:2] == ("del", "map"):
            # multipathd flushes the map itself: refused the same way when open.
            m = self.find_map(words[2])
            return FAIL if m is None or self._flush(m.name).exit_code else OK
        raise NotImplementedError(f"fake host does not emulate: multipathd {' '.join(words)}")

    # --- lookups -----------------------------------------------------------------------

    def find_map(self, name: str) -> MapState | None:
        """A map by name or by ``dm-N`` (as multipath and multipathd accept both)."""
        if name in self.st.maps:
            return self.st.maps[name]
        return self.st.maps.first_under("kernel_name", name)

    def _path_up(self, disk: Disk) -> bool:
        return disk.session.portal not in self.st.unreachable

    # --- multipathd client commands ----------------------------------------------------

    def _states(self, disk: Disk, map_name: str | None) -> tuple[str, str]:
        """A path's (dm state, checker state). A path up in its map is a live
        path of that map (the map lists it in its table), so the map takes I/O
        once it has settled (set_map_ready_delay)."""
        if map_name is None:
            return "undef", "undef"  # multipathd does not run the checker on orphans
        if not self._path_up(disk):
            return "failed", "faulty"
        settle = self.st.map_ready_delay * self.st.time_scale
        if self.st.now() - self.st.maps[map_name].created < settle:
            return "active", "i/o pending"  # seen in the lab for a path just added
        return "active", "ready"

    def _show_map(self, m: MapState) -> str:
        # One path group per path, as the lab's path_grouping_policy failover
        # makes them; the initiator's address (host_adapter) is not modelled.
        paths = []
        for name in m.slaves:
            disk = self.st.disks[name]
            dm_state, checker = self._states(disk, m.name)
            paths.append(
                JsonPath(
                    dev=name,
                    dev_t=sd_dev(disk.index),
                    dm_state=dm_state,
                    checker=checker,
                    target=disk.session.iqn,
                    adapter="[undef]",
                    lun=disk.lun,
                )
            )
        vendor = (VENDOR.strip(), MODEL.strip(), "4.0")
        return map_json(name=m.name, wwid=m.wwid, dm=f"dm-{m.dm}", paths=paths, vendor=vendor)

    def _show_paths(self, fmt: str) -> str:
        # One line per path multipathd knows, every map's.
        lines = []
        for name, map_name in self.st.mp_paths.items():
            disk = self.st.disks[name]
            dm_state, checker = self._states(disk, map_name)
            fields = {
                "%d": name,
                "%w": disk.wwid,
                "%t": dm_state,
                "%T": checker,
                "%m": map_name if map_name is not None else "[orphan]",
            }
            line = fmt
            for wildcard, value in fields.items():
                line = line.replace(wildcard, value)
            lines.append(line + "\n")
        return "".join(lines)

    def _add_path(self, dev: str) -> Outcome:
        disk = self.st.disks.get(dev)
        if disk is None:
            return FAIL  # "can't find path"
        if not disk.udev_done:
            # Seen in the lab: multipathd takes the WWID from udev's database, so
            # a disk udev has not finished with is refused until its event arrives.
            return FAIL
        self.path_event(disk)
        return OK

    def _del_path(self, dev: str) -> Outcome:
        disk = self.st.disks.get(dev)
        if disk is None or dev not in self.st.mp_paths:
            return _fail("device not found")
        self.drop_path(disk, forget=True)
        return OK

    def _resize(self, name: str) -> Outcome:
        m = self.find_map(name)
        if m is None:
            return _fail("device not found")
        if self._udev_wait_left(m) > 0:
            return FAIL  # "device not fully created, failing resize"
        sizes = {self.st.disks[p].size for p in m.slaves if p in self.st.disks}
        if len(sizes) != 1:
            return FAIL  # no path, or paths disagree: "cannot resize"
        m.size = sizes.pop()
        self.st.tree.set_map_size(m)
        return OK

    # --- path events -------------------------------------------------------------------

    def path_event(self, disk: Disk) -> None:
        """multipathd learns of a disk (uevent or ``add path``): with its WWID in
        the wwids file it joins (or creates) the WWID's map, else it is an orphan.

        A map adopts every orphan path of its WWID at once (``adopt_paths``):
        in the lab one ``add path`` brought all 4 paths into the new map.
        """
        if self.st.mp_paths.get(disk.name) is not None:
            return
        self.st.mp_paths[disk.name] = None
        if disk.wwid not in self.st.wwids:
            return
        m = self.st.maps.get(disk.wwid)
        if m is None:
            now = self.st.now()
            m = MapState(disk.wwid, self.st.next_dm, disk.wwid, now, size=disk.size, changed=now)
            self.st.next_dm += 1
            self.st.maps[m.name] = m
            # udev makes the map's links once it has processed its creation.
            wait = self._udev_wait_left(m)
            self.st.tree.add_map(m, linked=wait <= 0)
            if wait > 0:
                self.st.later(wait, lambda: self._link(m))
        elif m.slaves and (left := self._udev_wait_left(m)) > 0:
            # multipathd's wait_for_udev: the disk stays aside; the map takes it
            # (and every other orphan of its WWID) once its udev event is in.
            self.st.later(left, lambda: self._adopt(m))
            return
        self._adopt(m)

    def _udev_wait_left(self, m: MapState) -> float:
        """Simulated seconds until udev has processed the new map's creation."""
        if self.st.new_map_udev_wait <= 0 or self.st.time_scale <= 0:
            return 0.0
        return self.st.new_map_udev_wait - (self.st.now() - m.created) / self.st.time_scale

    def _link(self, m: MapState) -> None:
        if self.st.maps.get(m.name) is m:  # not flushed meanwhile
            self.st.tree.link_map(m)

    def _adopt(self, m: MapState) -> None:
        """The map takes every orphan path of its WWID (multipathd's adopt_paths)."""
        if self.st.maps.get(m.name) is not m:
            return  # flushed meanwhile
        reloaded = False
        for name in self.st.mp_paths.keys_under("orphan", m.wwid):
            self.st.add_slave(m, name)
            self.st.tree.add_slave(m, self.st.disks[name])
            self.st.mp_paths[name] = m.name
            reloaded = True
        if reloaded and self.st.map_probe_hold > 0:
            # A new table means a "change" uevent: udev probes the map again
            # (blkid, kpartx), holding it open until it is done.
            m.changed = self.st.now()
            self.st.udev_event(self.st.map_probe_hold, lambda: None)

    def on_udev_add(self, disk: Disk) -> None:
        """udev finished with a new disk: a running multipathd handles it."""
        if self.st.multipathd_running:
            self.path_event(disk)

    def drop_path(self, disk: Disk, *, forget: bool) -> None:
        """Remove a disk from its map (the map stays, maybe with no path)."""
        map_name = self.st.mp_paths.get(disk.name)
        m = self.st.maps.get(map_name) if map_name else None
        if m is None:
            # A map may still list it when multipathd was not running.
            m = self.st.holders.get(disk.name)
        if m is not None and disk.name in m.slaves:
            self.st.remove_slave(m, disk.name)
            self.st.tree.remove_slave(m, disk)
        if forget:
            self.st.mp_paths.pop(disk.name, None)
        elif disk.name in self.st.mp_paths:
            self.st.mp_paths[disk.name] = None

    def on_removed(self, disk: Disk) -> None:
        """The kernel removed a disk: dm drops it and multipathd forgets it."""
        self.drop_path(disk, forget=True)

    def start(self) -> None:
        """multipathd (re)starts: it adopts the maps in the kernel and discovers
        every disk, as at boot."""
        for m in self.st.maps.values():
            for dev in m.slaves:
                self.st.mp_paths[dev] = m.name
        for disk in self.st.disks.values():
            if disk.probed:
                self.path_event(disk)

    # --- multipath command -------------------------------------------------------------

    def _add_wwid(self, wwid: str) -> Outcome:
        self.remember(wwid)
        return Outcome(0, f"wwid '{wwid}' added\n")

    def remember(self, wwid: str) -> None:
        """Record a WWID in /etc/multipath/wwids (idempotent)."""
        if wwid not in self.st.wwids:
            self.st.wwids.append(wwid)
            self.st.tree.write_wwids(self.st.wwids)

    def _remove_wwid(self, wwid: str) -> Outcome:
        # multipath 0.9 prints either line and exits 0 for both.
        if wwid not in self.st.wwids:
            return Outcome(0, f"wwid '{wwid}' not in wwids file\n")
        self.st.wwids.remove(wwid)
        self.st.tree.write_wwids(self.st.wwids)
        return Outcome(0, f"wwid '{wwid}' removed\n")

    def _flush_plan(self, name: str) -> Plan:
        delay = self.st.flush_delay
        if delay <= 0:
            return done(self._flush(name))
        if self.st.flush_removes_first:
            # The map goes at once; multipath then waits for udev to process the
            # removal (seen in the lab: 27 s while 8 volumes were detached).
            outcome = self._flush(name)
            return Plan(delay, lambda: outcome, on_kill=lambda remaining: None)
        # Stuck before the removal (suspending a map with I/O in flight).
        return Plan(delay, lambda: self._flush(name), on_kill=lambda remaining: None)

    def _flush(self, name: str) -> Outcome:
        # multipath 0.9.4 (the lab's) flushes itself, whether or not multipathd
        # runs: "map in use" on stderr, exit 1, the map stays (multipath_f_busy.txt).
        m = self.find_map(name)
        if m is None:
            return Outcome(1, "", _log(f"{name} is not a multipath device"))
        probed = self.st.now() - m.changed < self.st.map_probe_hold * self.st.time_scale
        if self.st.flush_fail_all or m.name in self.st.flush_fail or probed:
            return Outcome(1, "", _log(f"{m.name}: map in use"))
        self.remove_map(m)
        return Outcome(0)

    def remove_map(self, m: MapState) -> None:
        """Flush: the map goes, its paths stay known to multipathd as orphans."""
        for dev in list(m.slaves):
            disk = self.st.disks.get(dev)
            if disk is not None:
                self.st.tree.remove_slave(m, disk)
            if self.st.mp_paths.get(dev) == m.name:
                self.st.mp_paths[dev] = None
            self.st.remove_slave(m, dev)
        del self.st.maps[m.name]
        self.st.tree.remove_map(m)
