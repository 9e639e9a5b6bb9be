"""A bond edit applied to a host whose volumes are attached.

An edit of the data center (:class:`~.datacenter.Edit`) says, per host, which
sessions to log in and which to log out (:class:`~.work.HostWork`). On the host
that is :meth:`ISCSIMultipathConnector.apply_bond_work
<multipath_brick.ISCSIMultipathConnector.apply_bond_work>`, which runs
:func:`apply_work`. The connector must already carry the bonds *after* the
edit (made with them, or given them by :meth:`use_bonds
<multipath_brick.ISCSIMultipathConnector.use_bonds>`): its plan is what the
volumes should have.

* Logins (a network added to a bond, a connection added): every attached
  volume with a target behind one of the sessions to log in is attached
  again with the new plan. That is the ordinary attach, which reuses what
  exists: the paths already in the map stay as they are (their sessions and
  disks are found, nothing is logged out or flushed) and the new ones log in
  and join the same map, so I/O goes on. A new path that fails is reported;
  it never undoes the volume (no verdict here: the volume was working before
  the edit).
* Logouts (a network or connection removed): a session goes only when every
  volume with a path over it keeps another *working* path, judged now from
  sysfs (the session logged in, the LUN's disk present), not from what the
  engine believed (:func:`~.work.split_logouts` with the live paths).
  Its disks leave their maps first (multipathd forgets the path, the SCSI
  device is deleted, under the volume's WWID lock), then the session is
  logged out if no other LUN lives on it, and its node record deleted. A
  session some volume still depends on is *held* and reported; applying the
  work again later (once the new paths are up) lets it go.
* Then the ifaces the bonds no longer need are collected, once unused.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from multipath_brick.attach import Attachment
from multipath_brick.bond.connect import BondRouting
from multipath_brick.bond.ifaces import IfaceChanges
from multipath_brick.bond.work import HeldLogout, HostWork, Session, split_logouts
from multipath_brick.exception import BondValueError, MultipathBrickError
from multipath_brick.iscsi.paths import Path, PathState, path_from_dict
from multipath_brick.iscsi.properties import ConnectionProperties, Target
from multipath_brick.locks import Locks
from multipath_brick.release import Releaser
from multipath_brick.scsi.sysfs import Sysfs

LOG = logging.getLogger(__name__)

#: Attaches a volume through paths: (paths, properties) -> its attachment.
AttachPaths = Callable[[Sequence[Path], ConnectionProperties], Attachment]


@dataclasses.dataclass(frozen=True)
class AttachedVolume:
    """A volume attached on this host, as the caller keeps it.

    :ivar properties: its connection properties (as given to ``connect_volume``).
    :ivar device_info: what ``connect_volume`` returned.
    """

    properties: Mapping[str, Any]
    device_info: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class WorkReport:
    """What :func:`apply_work` did.

    :ivar device_info: volume id -> its ``device_info`` now (paths added and
        removed); only the volumes the work touched.
    :ivar logged_in: the sessions of the work that are logged in now, or still
        logging in when the attach returned (``wait_for_pending`` reports
        those that fail later).
    :ivar failed: ``(session, reason)`` of the logins that did not come up.
    :ivar logged_out: the sessions logged out.
    :ivar held: the sessions kept because volumes have no other working path,
        with those volumes; apply the work again once they have one.
    :ivar kept: ``(session, reason)`` of sessions to go that could not
        (a step failed, or a LUN of a volume not listed lives on it).
    :ivar ifaces: the ifaces collected afterwards.
    """

    device_info: Mapping[str, Mapping[str, Any]]
    logged_in: tuple[Session, ...] = ()
    failed: tuple[tuple[Session, str], ...] = ()
    logged_out: tuple[Session, ...] = ()
    held: tuple[HeldLogout, ...] = ()
    kept: tuple[tuple[Session, str], ...] = ()
    ifaces: IfaceChanges = IfaceChanges()


def _session(path: Path) -> Session:
    return Session(path.target.portal, path.target.iqn, path.iface)


def _paths(info: Mapping[str, Any]) -> list[Path]:
    return [p for e in info.get("paths") or () if (p := path_from_dict(e)) is not None]


@dataclasses.dataclass
class EditRun:
    """The connector's pieces an edit uses (built by the connector).

    :ivar routing: its bonds, those after the edit.
    :ivar attach: its attach through given paths (no verdict).
    :ivar releaser: its releaser of disks and sessions.
    :ivar locks: its locks.
    :ivar sysfs: its view of sysfs.
    :ivar device_info: an attachment's ``device_info``.
    """

    routing: BondRouting
    attach: AttachPaths
    releaser: Releaser
    locks: Locks
    sysfs: Sysfs
    device_info: Callable[[Attachment], dict[str, Any]]

    def logins(
        self, work: HostWork, volumes: Mapping[str, AttachedVolume], out: dict[str, Any]
    ) -> tuple[list[Session], list[tuple[Session, str]]]:
        """Attach again every volume a login concerns; (sessions up, failures).

        ``out`` gets each such volume's new ``device_info``.
        """
        wanted = set(work.logins)
        up: dict[Session, None] = {}
        failed: dict[Session, str] = {}
        for vol_id, volume in sorted(volumes.items()):
            props = ConnectionProperties.from_dict(dict(volume.properties))
            host_plan = self.routing.plan(props, props.targets)
            if not any(_session(p) in wanted for p in host_plan.paths):
                continue
            try:
                self.routing.prepare(host_plan)
                attachment = self.attach(host_plan.paths, props)
            except MultipathBrickError as error:
                LOG.warning("volume %s: new paths of the bond edit failed: %s", vol_id, error)
                for path in host_plan.paths:
                    if _session(path) in wanted:
                        failed.setdefault(_session(path), str(error))
                continue
            out[vol_id] = self.device_info(attachment)
            for result in attachment.paths:
                session = _session(result.path)
                if session not in wanted:
                    continue
                if result.state is PathState.FAILED:
                    failed.setdefault(session, result.reason or "failed")
                else:
                    up[session] = None
        return sorted(up), sorted((s, why) for s, why in failed.items() if s not in up)

    def live_paths(self, paths: Sequence[Path]) -> list[Path]:
        """The paths whose session is logged in and whose LUN has its disk."""
        live = []
        for path in paths:
            target = path.target
            session = self.sysfs.find_session(target.iqn, target.portal, path.iface)
            if session is not None and session.logged_in:
                if self.sysfs.disk(session, target.lun) is not None:
                    live.append(path)
        return live

    def release(self, session: Session, paths: Sequence[Path], wwids: Mapping[Path, str]) -> str:
        """Take the paths' disks out of their maps, then log the session out.

        :returns: why the session is still there; empty once it is gone.
        """
        errors: list[str] = []
        for path in paths:
            target = path.target
            found = self.sysfs.find_session(target.iqn, target.portal, path.iface)
            disk = self.sysfs.disk(found, target.lun) if found is not None else None
            if disk is None:
                continue
            wwid = wwids.get(path)
            if not wwid:
                errors += self.releaser.remove_disk(disk.device)
                continue
            with self.locks.wwid(wwid):
                errors += self.releaser.remove_disk(disk.device)
        if errors:
            return "; ".join(errors)
        errors += self.releaser.release_session(paths[0])
        if errors:
            return "; ".join(errors)
        if self.sysfs.find_session(session.iqn, session.portal, session.iface) is not None:
            return "another LUN, of a volume not listed, still uses it"
        return ""


def apply_work(run: EditRun, work: HostWork, volumes: Mapping[str, AttachedVolume]) -> WorkReport:
    """Apply one host's work of a bond edit; see the module docstring.

    :param run: the connector's pieces (built by the connector).
    :param work: this host's :class:`~.work.HostWork`.
    :param volumes: every volume attached on this host: id -> its properties
        and ``device_info``.
    :returns: what was done; one volume's or one session's failure is
        reported, never raised.
    :raises BondValueError: when ``volumes`` is not a mapping of
        :class:`AttachedVolume`.
    """
    for vol_id, volume in volumes.items():
        if not isinstance(volume, AttachedVolume):
            raise BondValueError(
                f"volume {str(vol_id)[:60]!r}", "volumes", "not an AttachedVolume"
            )
    out: dict[str, Any] = {}
    logged_in, failed = run.logins(work, volumes, out)

    infos = {vid: out.get(vid, v.device_info) for vid, v in volumes.items()}
    current = {vid: _paths(info) for vid, info in infos.items()}
    leaving = set(work.logouts) | {h.session for h in work.held}
    now, held = split_logouts(leaving, {v: run.live_paths(p) for v, p in current.items()})
    wwids = {
        p: str(infos[vid].get("multipath_id") or infos[vid].get("scsi_wwn") or "")
        for vid, paths in current.items()
        for p in paths
    }
    logged_out, kept = [], []
    for session in now:
        over = [p for paths in current.values() for p in paths if session.carries(p)]
        problem = run.release(
            session, over or [Path(Target(session.portal, session.iqn, 0), session.iface)], wwids
        )
        if problem:
            LOG.warning("session %s kept: %s", session, problem)
            kept.append((session, problem))
            continue
        logged_out.append(session)
        for vid, paths in current.items():
            if any(session.carries(p) for p in paths):
                info = dict(infos[vid])
                info["paths"] = [
                    e
                    for e in info.get("paths") or ()
                    if not ((p := path_from_dict(e)) is not None and session.carries(p))
                ]
                out[vid] = infos[vid] = info
    return WorkReport(
        out,
        tuple(logged_in),
        tuple(failed),
        tuple(logged_out),
        held,
        tuple(kept),
        run.routing.collect(),
    )
