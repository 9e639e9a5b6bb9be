"""ISCSIMultipathConnector: the os-brick-compatible facade.

It is an os-brick ``InitiatorConnector``: the same constructor arguments and
method signatures as os-brick's ISCSIConnector, so drivers and agents can swap
it in. What differs is underneath: properties parsed once into values, every
path logging in at once (each in its own privileged call, as soon as its node
record is written), a return as soon as the map is usable, per-record and
per-WWID locks instead of one host-wide lock.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from os_brick.initiator import initiator_connector

from multipath_brick import brick_contract, verbs
from multipath_brick.attach import Attacher, Attachment, AttachSettings
from multipath_brick.bond.connect import bond_routing, collect
from multipath_brick.bond.edits import AttachedVolume, EditRun, WorkReport, apply_work
from multipath_brick.bond.ifaces import IfaceChanges
from multipath_brick.bond.inventory import HostInventory
from multipath_brick.bond.model import IscsiBond
from multipath_brick.bond.work import HostWork
from multipath_brick.brick_contract import INITIATOR_FILE as INITIATOR_FILE  # re-exported
from multipath_brick.brick_contract import OsBrickMethods
from multipath_brick.brick_contract import read_initiator_name as read_initiator_name
from multipath_brick.detach import Detacher
from multipath_brick.exception import (
    AttachError,
    DeviceNotReadyTimeout,
    DiscoveryError,
    InvalidSettings,
    MultipathBrickError,
    VolumePathsError,
)
from multipath_brick.host.base import Host
from multipath_brick.inflight import InFlight
from multipath_brick.iscsi.discovery import volume_targets
from multipath_brick.iscsi.iscsiadm import Iscsiadm, LoginTimeouts
from multipath_brick.iscsi.paths import Path, path_from_dict
from multipath_brick.iscsi.properties import ConnectionProperties, Target
from multipath_brick.locks import Locks
from multipath_brick.multipath.control import Multipath
from multipath_brick.pending import PendingReport
from multipath_brick.scsi.bypath import BY_PATH, by_path

LOG = logging.getLogger(__name__)


def _linux_host(root_helper: str | None) -> Host:
    from multipath_brick.host.linux import LinuxHost

    return LinuxHost(root_helper=root_helper)


class ISCSIMultipathConnector(OsBrickMethods, initiator_connector.InitiatorConnector):  # type: ignore[misc]
    """Attach iSCSI volumes over every path at once.

    :param root_helper: how to reach root when the caller is not root (e.g.
        ``sudo``); used to start the privsep daemon. Ignored when root.
    :param use_multipath: attach through a multipath map (True) or the first
        working path's disk (False, the default, as os-brick's).
    :param device_scan_attempts: targeted scans per path before giving up.
    :param transport: os-brick's iface (nova's ``iscsi_iface``), used when
        ``ifaces`` is not given: see ``brick_contract.iface_for_transport``.
    :param host: the :class:`~multipath_brick.host.base.Host` to act on
        (default: this Linux host; tests pass a FakeHost).
    :param ifaces: iscsiadm ifaces to log in through (default: ``transport``'s);
        every target is logged in once per iface. Not with ``bonds``.
    :param bonds: the data center's iSCSI bonds: every target is logged in
        through the iface of each netdev carrying a bond network that covers
        it, ``default`` when none does (:mod:`multipath_brick.bond.connect`).
    :param inventory: with ``bonds``: this host's
        :class:`~multipath_brick.bond.HostInventory` (network -> netdev).
    :param grace: seconds to wait for slow paths once the map is usable.
    :param login_timeouts: per-node login timeouts written before login.
    :param lock_path: directory of the cross-process lock files. Default: the
        consumer's ``[os_brick] lock_path`` (else ``[oslo_concurrency]
        lock_path``), else ``/run/multipath-brick`` when root; see
        :mod:`multipath_brick.lockdir`. Checked on first use.
    :param settings: full :class:`~multipath_brick.settings.AttachSettings`
        (overrides ``grace``/``login_timeouts``).
    """

    def __init__(
        self,
        root_helper: str | None = None,
        driver: Any = None,
        execute: Any = None,
        use_multipath: bool = False,
        device_scan_attempts: int = 3,
        transport: str = "default",
        *args: Any,
        host: Host | None = None,
        ifaces: Sequence[str] | None = None,
        bonds: Iterable[IscsiBond] | None = None,
        inventory: HostInventory | None = None,
        grace: float = 5.0,
        login_timeouts: LoginTimeouts | None = None,
        lock_path: str | None = None,
        settings: AttachSettings | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            root_helper,
            driver=driver,
            execute=execute,
            device_scan_attempts=device_scan_attempts,
            **kwargs,
        )
        self.use_multipath = use_multipath
        self.device_scan_attempts = device_scan_attempts
        self.transport = transport
        self.host = host if host is not None else _linux_host(root_helper)
        self.settings = settings or AttachSettings(
            grace=grace,
            timeouts=login_timeouts or LoginTimeouts(),
            scan_attempts=device_scan_attempts,
        )
        self.bonds = bond_routing(
            self.host, bonds, inventory, ifaces, command_timeout=self.settings.command_timeout
        )
        self.ifaces = tuple(ifaces) if ifaces else (self.transport_iface(transport),)
        self.locks = Locks(lock_path, timeout=self.settings.lock_timeout)
        self._inflight = InFlight(self.host, self.locks, self.settings)
        self._attacher = Attacher(
            self.host, self.locks, self.settings, self._inflight, tagged=self.bonds is not None
        )
        self._detacher = Detacher(self.host, self.locks, self.settings, self._inflight)
        self._sysfs = self._inflight.sysfs
        self._multipath = Multipath(self.host, timeout=self.settings.command_timeout)

    # --- os-brick API ------------------------------------------------------------

    @staticmethod
    def get_connector_properties(
        root_helper: str | None, *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        """``initiator`` and ``multipath`` for Cinder's initialize_connection.

        os-brick passes ``host`` as the host *name*; a Host object is used only
        when one is given (as ``system=`` or ``host=``).
        """
        system = kwargs.get("system") or kwargs.get("host")
        if not isinstance(system, Host):
            system = _linux_host(root_helper)
        props: dict[str, Any] = {"multipath": Multipath(system).running()}
        initiator = read_initiator_name(system)
        if initiator:
            props["initiator"] = initiator
        return props

    def get_search_path(self) -> str:
        return BY_PATH

    def get_volume_paths(self, connection_properties: dict[str, Any]) -> list[str]:
        """The by-path links of the volume's paths that exist now.

        Parsed as for a detach (:meth:`ConnectionProperties.for_cleanup`): what
        os-brick takes is never refused here.
        """
        props = ConnectionProperties.for_cleanup(connection_properties)
        links = [by_path(t.portal, t.iqn, t.lun) for t in props.targets]
        return [link for link in links if link is not None and self.host.exists(link)]

    def get_all_available_volumes(self, connection_properties: Any = None) -> list[str]:
        return [f"{BY_PATH}/{name}" for name in self.host.list_dir(BY_PATH) if "-iscsi-" in name]

    @brick_contract.prepare_result
    def connect_volume(self, connection_properties: dict[str, Any]) -> dict[str, Any]:
        """Attach the volume; return os-brick's ``device_info`` plus ``paths``.

        :raises InvalidConnectionProperties: the dict is unusable.
        :raises LockPathError: no lock directory, or an unsafe one (nothing was run).
        :raises NoUsablePathError: no path worked (``AuthenticationError`` when
            every path was refused by CHAP); nothing this call made is left.
        :raises DeviceNotReadyTimeout: paths came up but the map never did.
        :raises MultipathUnavailableError: multipathd does not answer.
        :raises AttachError: any other failure (the cause is chained); nothing
            this call made is left.

        Only errors of :mod:`multipath_brick.exception` are raised. A call
        after a process was killed while attaching or detaching the same
        volume reuses what it finds (sessions, records it rewrites if they
        carry iscsid.conf's defaults, disks, the map).
        """
        props = ConnectionProperties.from_dict(connection_properties)
        self.locks.prepare()  # an unsafe lock directory stops us before any command
        try:
            multipath = self.check_multipath(connection_properties)
            enforce = brick_contract.enforce_multipath(connection_properties)
            return self._connect(props, multipath, enforce)
        except MultipathBrickError:
            raise
        except Exception as error:
            LOG.warning("attach failed", exc_info=True)
            raise AttachError(str(error) or type(error).__name__) from error

    def _connect(
        self, props: ConnectionProperties, multipath: bool, enforce: bool
    ) -> dict[str, Any]:
        start = self.host.monotonic()
        targets = self._targets(props, multipath)
        attach = functools.partial(self._attach, multipath=multipath, enforce=enforce)
        if self.bonds is None:
            attachment = attach([Path(t, i) for t in targets for i in self.ifaces], props)
        else:
            attachment = self.bonds.connect(props, targets, attach, self._detacher)
        info = _device_info(attachment, attachment.map_name is not None)
        LOG.info(
            "attached %s in %.2fs: %s",
            info["path"],
            self.host.monotonic() - start,
            ", ".join(f"{p['portal']}/{p['iface']}={p['state']}" for p in info["paths"]),
        )
        return info

    def _attach(
        self,
        paths: Sequence[Path],
        props: ConnectionProperties,
        *,
        multipath: bool = True,
        enforce: bool = False,
    ) -> Attachment:
        if multipath:
            try:
                return self._attacher.attach(paths, props.chap)
            except DeviceNotReadyTimeout as error:
                if enforce:
                    raise
                # os-brick returns the sdX when no map forms: undone, then one path.
                LOG.warning("%s; attaching one path: multipath not enforced", error)
        return self._attacher.attach_single(paths, props.chap)

    @brick_contract.undo_prepare_result(unlink_after=True)
    def disconnect_volume(
        self,
        connection_properties: dict[str, Any],
        device_info: dict[str, Any] | None,
        force: bool = False,
        ignore_errors: bool = False,
    ) -> None:
        """Detach the volume: flush, remove disks, log out unused sessions.

        :raises FlushError: the map could not be flushed (and ``force`` unset).
        :raises DetachError: some steps failed (``force``), listing each.
        :raises LockPathError: no lock directory, or an unsafe one (nothing was run).
        :raises LockTimeout: the volume's WWID lock stayed held by someone else.
        :raises InvalidConnectionProperties: only for a hazard (see
            :meth:`ConnectionProperties.for_cleanup`): whatever os-brick's
            ``connect_volume`` could have been given is detached.
        """
        props = ConnectionProperties.for_cleanup(connection_properties)
        self.locks.prepare()
        start = self.host.monotonic()
        info = device_info or {}
        paths = [p for e in info.get("paths") or () if (p := path_from_dict(e)) is not None]
        if not paths and self.bonds is not None:
            paths = list(self.bonds.plan(props, props.targets).paths)
        elif not paths:
            paths = [Path(t, iface) for t in props.targets for iface in self.ifaces]
        if not paths:
            LOG.warning("nothing to detach: no usable path in the connection properties")
            return
        wwid = info.get("multipath_id") or info.get("scsi_wwn")
        self._detacher.detach(
            paths,
            wwid if isinstance(wwid, str) and wwid else None,
            discovery_iqns=frozenset(t.iqn for t in props.targets)
            if props.needs_discovery
            else frozenset(),
            force=force,
            ignore_errors=ignore_errors,
        )
        LOG.info("detached %s in %.2fs", info.get("path", wwid), self.host.monotonic() - start)

    def collect_ifaces(self, needed: Iterable[str] | None = None) -> IfaceChanges:
        """Remove our ``mpb-<netdev>`` ifaces not ``needed`` (default: those the bonds
        need), once no session uses them: :func:`.bond.connect.collect`."""
        return collect(self.host, self.bonds, needed, self.settings.command_timeout)

    def use_bonds(
        self, bonds: Iterable[IscsiBond], inventory: HostInventory | None = None
    ) -> None:
        """Plan the next attaches with ``bonds`` (after a bond edit); ``inventory``
        when this host's networks changed too (default: the current one)."""
        inventory = inventory or (self.bonds.inventory if self.bonds else None)
        timeout = self.settings.command_timeout
        self.bonds = bond_routing(self.host, bonds, inventory, None, command_timeout=timeout)

    def apply_bond_work(self, work: HostWork, volumes: Mapping[str, AttachedVolume]) -> WorkReport:
        """Apply a bond edit's work to the attached volumes: :func:`.bond.edits.apply_work`.

        :raises InvalidSettings: the connector has no ``bonds=``.
        """
        if self.bonds is None:
            raise InvalidSettings("bonds", "a bond edit needs a connector made with bonds=")
        info = functools.partial(_device_info, multipath=self.use_multipath)
        run = EditRun(
            self.bonds, self._attach, self._inflight.releaser, self.locks, self._sysfs, info
        )
        return apply_work(run, work, volumes)

    @brick_contract.undo_prepare_result()
    def extend_volume(self, connection_properties: dict[str, Any]) -> int:
        """Rescan the volume's disks, resize its map; return the new size in bytes."""
        props = ConnectionProperties.for_cleanup(connection_properties)
        disks = self._volume_disks(props)
        if not disks:
            raise VolumePathsError("no disk of the volume is attached")
        for disk in disks:
            self.host.write(verbs.ScsiRescan(disk), timeout=self.settings.command_timeout)
        wwid = self._sysfs.wwid(disks[0])
        map_name = self._sysfs.map_for_wwid(wwid) if wwid else None
        if map_name is None:
            size = self._sysfs.size_bytes(disks[0])
        else:
            name = self._sysfs.dm_name(map_name) or map_name
            self._multipath.resize(name)
            size = self._sysfs.size_bytes(map_name)
        if size is None:
            raise VolumePathsError("could not read the new size")
        return size

    # --- helpers -----------------------------------------------------------------------

    def wait_for_pending(self, timeout: float | None = None) -> PendingReport:
        """Wait for paths still coming up after ``connect_volume`` returned.

        :param timeout: seconds to wait at most (None: until every one ended).
        :returns: a :class:`~multipath_brick.pending.PendingReport`, true when
            no background path is left (so ``assert wait_for_pending(60)``
            reads as before). Its ``failed`` lists every background path that
            failed since the previous call, each once, with its reason: a
            dead portal as much as an unexpected error. Each failure was
            also logged at WARNING when it happened. Never raises.
        """
        return self._inflight.pending.wait(None, timeout)

    def _targets(self, props: ConnectionProperties, multipath: bool) -> tuple[Target, ...]:
        if not (props.needs_discovery and multipath):
            return props.targets
        given = props.targets[0]
        try:
            found = Iscsiadm(self.host, timeout=self.settings.command_timeout).discover(
                given.portal, self.ifaces[0], props.discovery_chap
            )
        except Exception as error:  # noqa: BLE001 - fall back to the one path we know
            LOG.warning(
                "%s; attaching through %s only",
                DiscoveryError(given.portal, str(error)),
                given.portal,
            )
            return props.targets
        targets, refused = volume_targets(given, found)
        for reason in refused:
            LOG.warning("%s; left out", reason)
        return targets

    def _volume_disks(self, props: ConnectionProperties) -> list[str]:
        disks = []
        for session in self._sysfs.sessions_to({t.iqn for t in props.targets}):
            for target in props.targets:
                if session.iqn == target.iqn and (
                    props.needs_discovery or session.portal == target.portal
                ):
                    disk = self._sysfs.disk(session, target.lun)
                    if disk is not None and disk.device not in disks:
                        disks.append(disk.device)
        return disks


def _device_info(attachment: Attachment, multipath: bool) -> dict[str, Any]:
    info: dict[str, Any] = {
        "type": "block",
        "path": attachment.device,
        "scsi_wwn": attachment.wwid,
        "paths": [p.as_dict() for p in attachment.paths],
    }
    if multipath:
        info["multipath_id"] = attachment.wwid
    return info
