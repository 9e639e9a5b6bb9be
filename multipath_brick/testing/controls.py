"""FakeHost's public controls (scripting what happens) and inspection methods.

Kept apart from the :class:`~multipath_brick.host.base.Host` protocol methods
in :mod:`.fake_host`; every method takes the state lock.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from multipath_brick.testing import local_devices
from multipath_brick.testing.ifaces import FakeIfaces
from multipath_brick.testing.multipath_sim import Multipathd
from multipath_brick.testing.state import Credentials, FakeTarget, SimState, normalise_portal


class HostControls:
    """Scripting and inspecting a fake host (mixed into :class:`FakeHost`)."""

    _st: SimState
    _mpathd: Multipathd
    _ifaces: FakeIfaces

    # --- controls ----------------------------------------------------------------------

    def add_target(
        self,
        iqn: str,
        portals: Iterable[str],
        luns: dict[int, int] | None = None,
        chap: Credentials | None = None,
        mutual_chap: Credentials | None = None,
        discovery_chap: Credentials | None = None,
    ) -> FakeTarget:
        """Export a target on some portals.

        :param iqn: the target name.
        :param portals: ``ip:port`` strings (IPv6 as ``[addr]:port``; a bare
            address gets port 3260).
        :param luns: LUN -> size in bytes (default: LUN 0 of 1 GiB).
        :param chap: ``(username, password)`` logins must present.
        :param mutual_chap: ``(username_in, password_in)`` the target answers with;
            records must carry the same.
        :param discovery_chap: ``(username, password)`` sendtargets requires.
        :returns: the target; :meth:`FakeTarget.wwid` names its LUNs' maps.

        A login to a portal of another target answers "non-retryable login
        failure" (exit 19); a target with CHAP rejects records without it (24).
        """
        target = FakeTarget(
            iqn,
            tuple(normalise_portal(p) for p in portals),
            dict(luns if luns is not None else {0: 1 << 30}),
            chap,
            mutual_chap,
            discovery_chap,
        )
        with self._st.lock:
            self._st.targets[iqn] = target
        return target

    def set_latency(self, portal: str, seconds: float) -> None:
        """Make every login and sendtargets discovery through ``portal`` take ``seconds``.

        Like iscsid, a login slower than the record's
        ``node.conn[0].timeo.login_timeout`` times out instead (exit 8 after
        login_timeout x initial_login_retry_max).
        """
        with self._st.lock:
            self._st.latency[normalise_portal(portal)] = seconds

    def set_unreachable(self, portal: str, unreachable: bool = True) -> None:
        """Cut (or restore) the network to a portal.

        Logins then time out (login_timeout x initial_login_retry_max, exit 8),
        discovery times out (exit 11, as iscsiadm 2.1), scans through it hang
        for the session's recovery timeout and find nothing, and existing
        paths turn failed/faulty (sessions FAILED) until restored. A portal no
        target listens on behaves the same.
        """
        portal = normalise_portal(portal)
        with self._st.lock:
            if unreachable:
                self._st.unreachable.add(portal)
            else:
                self._st.unreachable.discard(portal)
            for s in self._st.sessions.values():
                if s.portal == portal:
                    self._st.tree.set_session_state(s, not unreachable)

    def set_udev_delay(self, seconds: float, portal: str | None = None) -> None:
        """Delay between a disk appearing in sysfs and udev (and multipathd)
        handling it: for every disk, or only for the disks of one portal."""
        with self._st.lock:
            if portal is None:
                self._st.udev_delay = seconds
            else:
                self._st.udev_delay_by_portal[portal] = seconds

    def set_sd_probe_delay(self, seconds: float, portal: str | None = None) -> None:
        """How long after its scan a disk gets its block device (sd's probe:
        READ CAPACITY and friends over the wire, about 1 s in the lab): for
        every disk, or only for the disks of one portal (a slow link)."""
        with self._st.lock:
            if portal is None:
                self._st.sd_probe_delay = seconds
            else:
                self._st.sd_probe_delay_by_portal[normalise_portal(portal)] = seconds

    def set_map_ready_delay(self, seconds: float) -> None:
        """How long a new map is not usable: its paths' checker shows
        ``i/o pending`` in ``multipathd show paths``."""
        with self._st.lock:
            self._st.map_ready_delay = seconds

    def set_map_probe_hold(self, seconds: float) -> None:
        """Keep every map open for ``seconds`` after it appears and after each
        reload that adds paths to it, as udev's probes (blkid, kpartx) of its
        "change" event do on a real host: a flush then says "map in use", and
        ``/run/udev/queue`` exists meanwhile."""
        with self._st.lock:
            self._st.map_probe_hold = seconds

    def set_new_map_udev_wait(self, seconds: float) -> None:
        """multipathd adds no path to a new map, once it has a path, until udev
        has processed the map's creation (``wait_for_udev`` in multipathd): a
        later disk is kept aside ("delaying path addition until ... is fully
        initialized", ``add path`` answers ok) and joins ``seconds`` after the
        map appeared. Seen in the lab: about 6 s with 100 ms on every portal."""
        with self._st.lock:
            self._st.new_map_udev_wait = seconds

    def fail_flush(self, map_name: str | None, fail: bool = True) -> None:
        """Make ``multipath -f`` of a map (None: of every map) fail with "in use"."""
        with self._st.lock:
            if map_name is None:
                self._st.flush_fail_all = fail
                if not fail:
                    self._st.flush_fail.clear()
            elif fail:
                self._st.flush_fail.add(map_name)
            else:
                self._st.flush_fail.discard(map_name)

    def set_flush_delay(self, seconds: float, *, removes_first: bool = True) -> None:
        """Make ``multipath -f`` take ``seconds``: after removing the map, waiting
        for udev (``removes_first``, as in the lab under load), or before touching
        it. A flush killed at its timeout leaves the map as it was at that point."""
        with self._st.lock:
            self._st.flush_delay = seconds
            self._st.flush_removes_first = removes_first

    def set_wwids_edit_delay(self, seconds: float) -> None:
        """Make the daemon's edits of the WWID file (``MultipathAddWwid``,
        ``MultipathRemoveWwid``) take ``seconds`` before the file changes, as
        a slow disk or a lock held by ``multipath`` would."""
        with self._st.lock:
            self._st.wwids_edit_delay = seconds

    def set_multipathd_running(self, running: bool) -> None:
        """Stop or start multipathd; on start it picks up every disk and map."""
        with self._st.lock:
            self._st.multipathd_running = running
            if running:
                self._mpathd.start()
            else:
                self._st.mp_paths.clear()

    def remember_wwid(self, wwid: str) -> None:
        """List a WWID in /etc/multipath/wwids, as an earlier attach left it
        (multipath-tools never forgets one): multipathd maps its disks as soon
        as they appear. The library's own listing (``MultipathAddWwid``) needs a
        disk that carries the WWID; this needs none."""
        with self._st.lock:
            self._mpathd.remember(wwid)

    def add_local_disk(self, host: int = 0, size_bytes: int = 8 << 30) -> str:
        """Plug a local SATA disk into port ``host`` (0 or 1) of the host's
        ahci controller: a disk the library must never touch.

        :returns: its name, ``sdX`` (the next free one, as iSCSI disks get).
        :raises ValueError: no such port, or it has its disk already.
        """
        with self._st.lock:
            return local_devices.add_disk(self._st, host, size_bytes)

    def add_local_map(self, name: str, devices: Sequence[str], uuid: str | None = None) -> str:
        """Make a device-mapper map over disks (local or iSCSI ones), as
        ``dmsetup create`` would: a map the library must never flush or resize.

        :param name: its dm name.
        :param devices: its slaves, ``sdX`` names.
        :param uuid: its dm uuid; by default ``mpath-<WWID of the first
            device>``, a multipath map like the one over a boot disk. Give
            ``LVM-...`` for a logical volume.
        :returns: its kernel name, ``dm-N``.
        """
        with self._st.lock:
            return local_devices.add_map(self._st, name, devices, uuid)

    def add_lun(self, iqn: str, lun: int, size_bytes: int) -> str:
        """Export one more LUN on a target; its multipath WWID.

        Sessions see it only when scanned (``node.session.scan=manual``).
        """
        with self._st.lock:
            target = self._st.targets[iqn]
            if lun in target.luns:
                raise ValueError(f"{iqn} already has LUN {lun}")
            target.luns[lun] = size_bytes
        return target.wwid(lun)

    def resize_lun(self, iqn: str, lun: int, size_bytes: int) -> None:
        """Grow or shrink a LUN on the target; disks see it after a rescan."""
        with self._st.lock:
            self._st.targets[iqn].luns[lun] = size_bytes

    def set_discovery_answer(self, portal: str, answer: Sequence[tuple[str, str]]) -> None:
        """Make sendtargets on ``portal`` answer exactly ``[(portal, iqn), ...]``."""
        with self._st.lock:
            self._st.discovery_answers[normalise_portal(portal)] = [
                (normalise_portal(p), q) for p, q in answer
            ]

    def set_scan_hang(self, seconds: float) -> None:
        """Make every ``scsi_host/hostH/scan`` write take ``seconds``."""
        with self._st.lock:
            self._st.scan_hang = seconds

    def set_node_db_scan(self, seconds: float) -> None:
        """Make every ``iscsiadm --login`` list the node database for ``seconds`` first.

        A node record deleted meanwhile, if it was the last of its portal
        directory, makes the login exit 6 (IDBM) even though it logged in, as
        open-iscsi 2.1.8 does.
        """
        with self._st.lock:
            self._st.node_db_scan = seconds

    # --- inspection --------------------------------------------------------------------

    @property
    def max_concurrent_logins(self) -> int:
        """The most ``iscsiadm --login`` commands ever in flight at once."""
        with self._st.lock:
            return self._st.max_logins_in_flight

    @property
    def targets(self) -> dict[str, FakeTarget]:
        """The targets added so far, by IQN."""
        with self._st.lock:
            return dict(self._st.targets)

    def sessions(self) -> list[tuple[int, str, str, str]]:
        """Logged-in sessions as (sid, portal, iqn, iface), by sid."""
        with self._st.lock:
            return [(s.sid, *s.key) for _, s in sorted(self._st.sessions.items())]

    def node_records(self) -> list[tuple[str, str, str]]:
        """Keys (portal, iqn, iface) of the node database, sorted."""
        with self._st.lock:
            return sorted(self._st.nodes)

    def node_settings(self, portal: str, iqn: str, iface: str = "default") -> dict[str, str]:
        """A copy of one node record's settings (passwords included).

        :raises KeyError: when there is no such record.
        """
        with self._st.lock:
            return dict(self._st.nodes[(normalise_portal(portal), iqn, iface)])

    def discovery_records(self) -> list[str]:
        """Portals that have a discoverydb record, sorted."""
        with self._st.lock:
            return sorted(self._st.discovery)

    def disks(self) -> dict[str, tuple[str, str]]:
        """SCSI disks: name -> (``H:C:T:L``, multipath WWID)."""
        with self._st.lock:
            return {n: (d.hctl, d.wwid) for n, d in sorted(self._st.disks.items())}

    def maps(self) -> dict[str, list[str]]:
        """Multipath maps: name -> its paths (sdX)."""
        with self._st.lock:
            return {n: list(m.slaves) for n, m in sorted(self._st.maps.items())}

    def map_devices(self) -> dict[str, str]:
        """Multipath maps: name -> ``dm-N``."""
        with self._st.lock:
            return {n: f"dm-{m.dm}" for n, m in sorted(self._st.maps.items())}

    def wwids(self) -> list[str]:
        """The WWIDs in ``/etc/multipath/wwids``."""
        with self._st.lock:
            return list(self._st.wwids)

    def leftovers(self) -> dict[str, list[str]]:
        """What is still there, for "nothing left behind" assertions.

        :returns: only the non-empty kinds among ``sessions``, ``node_records``,
            ``discovery_records``, ``disks``, ``maps``, ``wwids`` (entries of
            ``/etc/multipath/wwids``), ``ifaces`` (iface records other than the
            built-in ones) and ``links`` (os-brick's links for encrypted
            volumes in ``/dev/disk/by-id``); ``{}`` on a clean host.
        """
        with self._st.lock:
            by_id = self._st.tree.local("/dev/disk/by-id")
            links = sorted(n for n in os.listdir(by_id) if n.startswith("os-brick"))
            found = {
                "sessions": [" ".join(s.key) for s in self._st.sessions.values()],
                "node_records": [" ".join(k) for k in sorted(self._st.nodes)],
                "discovery_records": sorted(self._st.discovery),
                "disks": sorted(self._st.disks),
                "maps": sorted(self._st.maps),
                "wwids": sorted(self._st.wwids),
                "ifaces": self._ifaces.leftovers(),
                "links": links,
            }
        return {kind: items for kind, items in found.items() if items}
