"""ManagedVolumes: what a host agent does on each host (oVirt's Managed Block Storage flow).

The engine asks a host for its connector info, then attaches a volume with
os-brick-format connection info and a volume id, later detaches it by id alone,
and lists volumes with whether each really exists. This module keeps the
attachments in a :class:`~.store.VolumeStore` keyed by volume id.

Order of every change, so that an agent killed at any point (SIGKILL, power
loss) leaves something the next call can finish or undo: take the volume's
lock (threads and processes), commit the intent, touch the host, commit the
result. The connector's ``connect_volume`` and ``disconnect_volume`` are
idempotent and re-runnable, so the next call on a row left ``attaching`` or
``detaching`` simply runs the step again and ends with one map and one set
of sessions, or none.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from multipath_brick import verbs
from multipath_brick.agent.store import DEFAULT_STORE, State, VolumeRow, VolumeStore
from multipath_brick.connector import ISCSIMultipathConnector, read_initiator_name
from multipath_brick.exception import (
    ConnectionMismatch,
    InvalidSettings,
    InvalidVolumeRequest,
    UnsupportedVolumeType,
)
from multipath_brick.host.base import Host
from multipath_brick.iscsi.paths import Path, path_from_dict
from multipath_brick.iscsi.properties import ConnectionProperties
from multipath_brick.locks import Locks, NamedLock
from multipath_brick.multipath.control import Multipath, usable_wwids
from multipath_brick.scsi.sysfs import Sysfs
from multipath_brick.waiting import BUSY_LOOK_MAX, wait_until

LOG = logging.getLogger(__name__)
DEV_MAPPER = "/dev/mapper"
#: Longest volume id accepted (Cinder and oVirt use 36-character UUIDs).
MAX_VOL_ID = 255

ConnectorFactory = Callable[[], ISCSIMultipathConnector]


def check_vol_id(vol_id: object) -> str:
    """The volume id, checked: a short printable string.

    :raises InvalidVolumeRequest: naming ``vol_id``.
    """
    if not isinstance(vol_id, str) or not vol_id:
        raise InvalidVolumeRequest("vol_id", "must be a non-empty string")
    if len(vol_id) > MAX_VOL_ID:
        raise InvalidVolumeRequest("vol_id", f"longer than {MAX_VOL_ID} characters")
    if not vol_id.isprintable() or vol_id != vol_id.strip():
        raise InvalidVolumeRequest("vol_id", "holds control characters or surrounding spaces")
    return vol_id


def check_connection_info(connection_info: object) -> ConnectionProperties:
    """Parse ``{"driver_volume_type": "iscsi", "data": {...}}`` before anything is touched.

    :raises UnsupportedVolumeType: another ``driver_volume_type``.
    :raises InvalidVolumeRequest: not a dict, or no ``data`` dict.
    :raises InvalidConnectionProperties: ``data`` is unusable (naming the key).
    """
    if not isinstance(connection_info, dict):
        raise InvalidVolumeRequest("connection_info", "must be a JSON object")
    kind = connection_info.get("driver_volume_type")
    if not isinstance(kind, str):
        raise InvalidVolumeRequest("connection_info.driver_volume_type", "missing")
    if kind.lower() != "iscsi":
        raise UnsupportedVolumeType(kind)
    data = connection_info.get("data")
    if not isinstance(data, dict):
        raise InvalidVolumeRequest("connection_info.data", "must be a JSON object")
    return ConnectionProperties.from_dict(data)


def check_multipath(connector: ISCSIMultipathConnector) -> ISCSIMultipathConnector:
    """The connector, if it attaches through multipath maps.

    Why a ``use_multipath=False`` connector is refused rather than served:
    :func:`connector_info` tells the engine ``multipath: true`` (as vdsm asks
    os-brick for), and the engine and vdsm expect ``/dev/mapper/<wwid>`` back
    (vdsm itself refuses an iSCSI attachment without ``multipath_id``). A
    single path's ``/dev/sdX`` is renumbered on reboot: the stored path could
    then name another volume's disk, and ``exists`` or a detach would act on it.

    :raises InvalidSettings: naming ``use_multipath``.
    """
    if not connector.use_multipath:
        raise InvalidSettings(
            "use_multipath",
            "ManagedVolumes needs a multipath connector: it answers /dev/mapper/<wwid> "
            "and reports multipath in connector_info; a single path's /dev/sdX is "
            "renamed on reboot",
        )
    return connector


def connector_info(host: Host, my_ip: str | None = None) -> dict[str, Any]:
    """The host's connector info, as os-brick's ``get_connector_properties``.

    The keys of the oVirt feature's GetCapabilities (``initiator``, ``ip``,
    ``platform``, ``host``, ``do_local_attach``, ``os_type``, ``multipath``)
    with os-brick 7's values for ``multipath=True, enforce_multipath=True``
    (what vdsm asks for); ``initiator`` is left out when the host has none, as
    os-brick does.
    """
    info: dict[str, Any] = {
        "platform": platform.machine(),
        "os_type": sys.platform,
        "ip": my_ip,
        "host": socket.gethostname(),
        "multipath": True,
        "enforce_multipath": True,
        "do_local_attach": False,
    }
    initiator = read_initiator_name(host)
    if initiator:
        info["initiator"] = initiator
    return info


class ManagedVolumes:
    """Attach, detach and list volumes by id, remembering them in a local store.

    :param connector: the connector to act through, or a function that makes one
        on first use (so ``info`` never starts privsep). Default: an
        :class:`~multipath_brick.ISCSIMultipathConnector` on this host. Pass one
        built with ``bond=`` to plan paths from an iSCSI bond. One built with
        ``use_multipath=False`` is refused (see :func:`check_multipath`).
    :param store: the store, or the path of its file.
    :param lock_path: directory of the per-volume lock files (default: ``locks``
        beside the store, which is root-owned when the store is).
    :param my_ip: reported as ``ip`` by :meth:`connector_info` (os-brick's ``my_ip``).
    :raises InvalidSettings: the connector has ``use_multipath=False``.
    """

    def __init__(
        self,
        connector: ISCSIMultipathConnector | ConnectorFactory | None = None,
        *,
        store: VolumeStore | str = DEFAULT_STORE,
        lock_path: str | None = None,
        my_ip: str | None = None,
    ) -> None:
        self._connector = (
            check_multipath(connector) if isinstance(connector, ISCSIMultipathConnector) else None
        )
        self._factory = connector if callable(connector) and self._connector is None else None
        self.store = store if isinstance(store, VolumeStore) else VolumeStore(store)
        directory = lock_path or os.path.join(os.path.dirname(self.store.path), "locks")
        self._locks = Locks(directory)
        self.my_ip = my_ip

    @property
    def connector(self) -> ISCSIMultipathConnector:
        """The connector, made on first use."""
        if self._connector is None:
            made = (
                self._factory() if self._factory else ISCSIMultipathConnector(use_multipath=True)
            )
            self._connector = check_multipath(made)
        return self._connector

    def _lock(self, vol_id: str) -> NamedLock:
        return self._locks.volume(vol_id)

    # --- the four verbs ------------------------------------------------------------------

    def connector_info(self) -> dict[str, Any]:
        """The host's connector info: see :func:`connector_info`."""
        return connector_info(self.connector.host, self.my_ip)

    def attach_volume(self, vol_id: str, connection_info: dict[str, Any]) -> dict[str, Any]:
        """Attach a volume, or answer what is already attached.

        :returns: ``{"vol_id", "path", "attachment"}``; ``path`` is
            ``/dev/mapper/<wwid>``, ``attachment`` the connector's ``device_info``.
        :raises UnsupportedVolumeType: ``driver_volume_type`` is not ``iscsi``.
        :raises ConnectionMismatch: the id is stored with another connection.
        :raises NoUsablePathError: no path worked (``AuthenticationError`` for CHAP).
        :raises InvalidSettings: the connector has ``use_multipath=False``.
        """
        check_vol_id(vol_id)
        check_connection_info(connection_info)
        connector = self.connector  # refused before the store or the host is touched
        data: dict[str, Any] = connection_info["data"]
        redacted = self.store.redact(connection_info)
        with self._lock(vol_id):
            row = self.store.get(vol_id)
            if row is not None and row.connection_info != redacted:
                raise ConnectionMismatch(vol_id)
            if row is not None and row.state is State.ATTACHED and self._exists(row):
                return _answer(row)
            self.store.intend(vol_id, State.ATTACHING, redacted)
            try:
                # Maps only (check_multipath): no single-path fallback here.
                info = connector.connect_volume({**data, "enforce_multipath": True})
            except Exception:
                # connect_volume leaves nothing it made on failure: the row goes
                # back to what it was (a stale attachment stays detachable).
                self._undo(vol_id, row)
                raise
            wwid = info.get("multipath_id") or info.get("scsi_wwn")
            path = f"{DEV_MAPPER}/{wwid}" if info.get("multipath_id") else str(info["path"])
            if info.get("multipath_id"):
                self._wait_for_link(connector, str(info["path"]))
            try:
                self.store.attached(vol_id, path, info, wwid)
            except Exception:
                connector.disconnect_volume(data, info, force=True, ignore_errors=True)
                self._undo(vol_id, row)
                raise
        return {"vol_id": vol_id, "path": path, "attachment": info}

    def _wait_for_link(self, connector: ISCSIMultipathConnector, device: str) -> None:
        """Wait for udev to make ``/dev/mapper/<wwid>``, the path answered.

        The connector returns once the map is usable; a map made with all its
        disks at once is usable before udev has processed its creation, and
        udev makes the link then (in the lab it was missing at return). vdsm
        opens the answered path at once. The map itself works without the
        link, so a udev still behind after ``ready_timeout`` gets a warning.
        """
        dm = device.removeprefix("/dev/")
        sysfs = Sysfs(connector.host)
        settings = connector.settings
        if not wait_until(
            connector.host,
            lambda: sysfs.map_linked(dm),
            settings.ready_timeout,
            settings.poll,
            BUSY_LOOK_MAX,
        ):
            LOG.warning("udev has not made the /dev/mapper link of %s yet", dm)

    def detach_volume(self, vol_id: str) -> None:
        """Detach a volume from what was stored; an unknown id is already detached.

        :raises FlushError: the map is in use; the row is kept for a retry.
        :raises DetachError: some step failed; the row is kept for a retry.
        """
        check_vol_id(vol_id)
        with self._lock(vol_id):
            row = self.store.get(vol_id)
            if row is None:
                return
            connector = self.connector
            self.store.intend(vol_id, State.DETACHING, row.connection_info)
            try:
                connector.disconnect_volume(row.connection_info["data"], row.attachment)
            except Exception:
                # The host still holds (part of) the volume: keep the row so the
                # engine's retry knows what to detach.
                self.store.put(row)
                raise
            self.store.delete(vol_id)

    def volumes_info(self, vol_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The stored volumes (all when ``vol_ids`` is None), each checked on the host.

        :returns: one dict per stored id, in id order: ``vol_id``, ``state``,
            ``connection_info`` (passwords replaced by digests), ``path``,
            ``attachment``, and ``exists``: the device is there and multipathd has
            a path of its map that can take I/O. Ids not stored are left out.
        """
        ids = None if vol_ids is None else [check_vol_id(v) for v in vol_ids]
        rows = self.store.rows(ids)
        usable = self._usable_wwids() if rows else set()
        return [
            {
                "vol_id": row.vol_id,
                "state": row.state.value,
                "connection_info": row.connection_info,
                "path": row.path,
                "attachment": row.attachment,
                "exists": self._exists(row, usable),
            }
            for row in rows
        ]

    def paths(self, vol_id: str) -> list[dict[str, Any]]:
        """One entry per (portal, iqn, lun, iface) of a stored volume, as the host has it now.

        :returns: dicts with ``portal``, ``iqn``, ``lun``, ``iface``,
            ``session`` (sysfs session state, None when logged out), ``device``
            (``sdX`` or None) and ``multipathd`` (``"<dm-state> <checker>"``,
            ``orphan``, or None when multipathd does not know the disk).
        :raises InvalidVolumeRequest: the id is not stored (field ``vol_id``).
        """
        check_vol_id(vol_id)
        row = self.store.get(vol_id)
        if row is None:
            raise InvalidVolumeRequest("vol_id", f"volume {vol_id!r} is not stored on this host")
        host = self.connector.host
        sysfs = Sysfs(host)
        states = _multipathd_states(host)
        paths = list(self._stored_paths(row))
        sessions = sysfs.sessions_to({p.target.iqn for p in paths})
        out = []
        for path in paths:
            t = path.target
            session = next(
                (
                    s
                    for s in sessions
                    if (s.portal, s.iqn, s.iface) == (t.portal, t.iqn, path.iface)
                ),
                None,
            )
            disk = sysfs.disk(session, t.lun) if session is not None else None
            device = disk.device if disk is not None else None
            out.append(
                {
                    "portal": t.portal,
                    "iqn": t.iqn,
                    "lun": t.lun,
                    "iface": path.iface,
                    "session": session.state if session is not None else None,
                    "device": device,
                    "multipathd": states.get(device) if device else None,
                }
            )
        return out

    # --- helpers -------------------------------------------------------------------------

    def _stored_paths(self, row: VolumeRow) -> Iterator[Path]:
        entries = (row.attachment or {}).get("paths") or ()
        found = [p for e in entries if (p := path_from_dict(e)) is not None]
        if found:
            yield from found
            return
        props = ConnectionProperties.from_dict(row.connection_info["data"])
        for target in props.targets:
            for iface in self.connector.ifaces:
                yield Path(target, iface)

    def _usable_wwids(self) -> set[str]:
        # One question to multipathd for every row, not one per row: info over
        # hundreds of volumes stays one command.
        result = self.connector.host.run(verbs.MultipathdShowPaths(), timeout=30.0)
        return usable_wwids(result.stdout) if result.ok else set()

    def _exists(self, row: VolumeRow, usable: set[str] | None = None) -> bool:
        if row.path is None or row.multipath_id is None:
            return False
        host = self.connector.host
        if not host.exists(row.path):
            return False
        # /dev/mapper/<wwid> can outlive every path (a map with queue_if_no_path
        # after the sessions went): only a path that takes I/O makes it usable.
        if usable is None:
            # The stored path is the map's /dev/dm-N: multipathd finds it by that.
            return Multipath(host).usable(row.multipath_id, os.path.basename(row.path))
        return row.multipath_id in usable

    def _undo(self, vol_id: str, before: VolumeRow | None) -> None:
        if before is None:
            self.store.delete(vol_id)
        else:
            self.store.put(before)


def _answer(row: VolumeRow) -> dict[str, Any]:
    return {"vol_id": row.vol_id, "path": row.path, "attachment": row.attachment}


def _multipathd_states(host: Host) -> dict[str, str]:
    result = host.run(verbs.MultipathdShowPaths(), timeout=30.0)
    states: dict[str, str] = {}
    for line in result.stdout.splitlines() if result.ok else ():
        fields = line.split(maxsplit=4)  # device wwid map dm-state checker-state
        if len(fields) == 5:
            states[fields[0]] = "orphan" if fields[2] == "[orphan]" else " ".join(fields[3:])
    return states
