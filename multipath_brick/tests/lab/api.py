"""The `lab` fixture's API: what a functional test may do to the lab."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping

from . import initiator
from .bondnet import BondNet
from .config import LabConfig, load_state
from .shell import run, wait_for
from .target import TargetControl, TargetInfo


@dataclasses.dataclass(frozen=True)
class Chap:
    user: str
    password: str

    def __iter__(self) -> Iterator[str]:  # allows `user, password = lab.chap`
        return iter((self.user, self.password))

    def __repr__(self) -> str:
        return f"Chap(user={self.user!r}, password='***')"


class Lab:
    """A prepared lab guest: one tgt target behind N portals, iscsid, multipathd.

    Target side:  add_lun / resize_lun / remove_lun / add_target /
                  remove_target / portal_down / portal_up / set_latency /
                  target_sessions.
    Bond side:    bond_portals / bond_nics / nic_down / nic_up / set_nic_latency /
                  pair_nics / pair_portal / set_pair_sysctls / sessions_by_route
                  (bondnet.py).
    Host side:    leftovers() (what a detach must remove), cleanup(), and
                  small sysfs lookups (disks_for_wwid, dm_for_wwid, dm_slaves).
    """

    def __init__(self, cfg: LabConfig, adopt_default_target: bool = True) -> None:
        self.config = cfg
        self.target = TargetControl(cfg)
        self.bondnet = BondNet(cfg)
        if adopt_default_target:
            # setup() created the default target as tid 1 in another process.
            self.target.targets[cfg.iqn] = TargetInfo(
                tid=1, iqn=cfg.iqn, chap=(cfg.chap_user, cfg.chap_password)
            )

    @classmethod
    def from_state(cls) -> Lab:
        state = load_state()
        if state is None:
            raise RuntimeError("not inside a prepared lab guest (no state file)")
        return cls(LabConfig.from_json(state["config"]))

    # --- what the library is told -----------------------------------------
    @property
    def portals(self) -> list[str]:
        return self.config.portal_list

    @property
    def iqn(self) -> str:
        return self.config.iqn

    @property
    def chap(self) -> Chap:
        return Chap(self.config.chap_user, self.config.chap_password)

    @property
    def initiator_name(self) -> str:
        return self.config.initiator_name

    # --- target side -------------------------------------------------------
    def add_lun(self, lun: int, size_mb: int = 64, iqn: str | None = None) -> str:
        """Add LUN `lun` (MiB) to the target (default: lab.iqn); returns WWID."""
        return self.target.add_lun(lun, size_mb, iqn=iqn)

    def resize_lun(self, lun: int, size_mb: int, iqn: str | None = None) -> None:
        """Grow (or shrink) a LUN, as an array does it online.

        tgt cannot: :meth:`.TargetControl.resize_lun` deletes the logical unit
        and makes it again. In that gap every command to the LUN fails
        ("Logical unit not supported") on every path at once, which no real
        array does. Seen in the lab: udev's probe of a map made a moment before
        (blkid reading its last sectors) fell in the gap, the kernel failed all
        four paths, and the test's next read through the map was an I/O error.
        So udev's queue is let empty before the gap, and afterwards every path
        of the LUN that multipathd failed in it (its checker may have looked
        then too) is waited for until it is back in its map.
        """
        run(["udevadm", "settle", "--timeout=30"], check=False)
        self.target.resize_lun(lun, size_mb, iqn=iqn)
        wwid = self.lun_wwid(lun, iqn)
        disks = initiator.disks_for_wwid(wwid)

        def back() -> bool:
            # multipathd's view, and the kernel's (a path failed by I/O shows
            # "F" in the map's status before multipathd hears of it).
            states = initiator.path_states()
            if any(states.get(d, "").split()[:1] == ["failed"] for d in disks):
                return False
            return "F" not in run(["dmsetup", "status", wwid], check=False).stdout.split()

        wait_for(f"the paths of LUN {lun} back after its resize", back, timeout=30)

    def remove_lun(self, lun: int, iqn: str | None = None) -> None:
        self.target.remove_lun(lun, iqn=iqn)

    def lun_wwid(self, lun: int, iqn: str | None = None) -> str:
        return self.target.targets[iqn or self.iqn].luns[lun].wwid

    def add_target(
        self,
        iqn: str,
        luns: Mapping[int, int] | Iterable[tuple[int, int]] = (),
        chap: tuple[str, str] | Chap | None = None,
        mutual_chap: tuple[str, str] | Chap | None = None,
    ) -> dict[int, str]:
        """Extra target on the same portals; returns {lun: wwid}.

        ``mutual_chap`` (user_in, password_in): the target authenticates itself
        to the initiator with that account too.
        """
        info = self.target.add_target(iqn, luns, chap=_pair(chap), mutual_chap=_pair(mutual_chap))
        return {n: lu.wwid for n, lu in info.luns.items()}

    def set_discovery_chap(self, chap: tuple[str, str] | Chap | None) -> None:
        """Require CHAP for SendTargets discovery on every portal (None: stop).

        The lab's reset stops requiring it after each test.
        """
        self.target.set_discovery_chap(_pair(chap))

    def remove_target(self, iqn: str) -> None:
        """Make a target vanish, dropping its sessions (simulates array loss)."""
        self.target.remove_target(iqn)

    def portal_down(self, i: int) -> None:
        self.target.portal_down(i)

    def portal_up(self, i: int) -> None:
        self.target.portal_up(i)

    def set_latency(self, i: int, ms: int) -> None:
        self.target.set_latency(i, ms)

    def target_sessions(self) -> list[dict[str, object]]:
        """Sessions as tgt sees them: [{'target','tid','initiator','ips'}]."""
        return self.target.sessions()

    def target_show(self) -> str:
        return self.target.show()

    # --- bond topology (lab/bondnet.py) -------------------------------------
    @property
    def bond_portals(self) -> list[str]:
        """The two portals both routed NICs reach."""
        return self.config.bond_portal_list

    @property
    def bond_nics(self) -> list[str]:
        """The routed initiator NICs, one subnet each: ``mpbn0``, ``mpbn1``."""
        return [self.config.bond_nic(j) for j in range(self.config.bond_nic_count)]

    @property
    def pair_nics(self) -> list[str]:
        """The initiator NICs on one subnet: ``mpbs0``, ``mpbs1``."""
        return [self.config.pair_nic(j) for j in range(self.config.bond_nic_count)]

    @property
    def pair_portal(self) -> str:
        """The portal on the same-subnet NICs' subnet."""
        return self.config.pair_portal

    def nic_down(self, j: int) -> None:
        """Routed NIC j loses its link (its switch port goes down)."""
        self.bondnet.nic_down(j)

    def nic_up(self, j: int) -> None:
        self.bondnet.nic_up(j)

    def set_nic_latency(self, j: int, ms: int) -> None:
        """Delay the replies routed NIC j receives by ms (netem on the router; 0: none)."""
        self.bondnet.set_latency(j, ms)

    def set_pair_sysctls(self, tuned: bool) -> None:
        """arp_ignore=1, arp_announce=2, rp_filter=2 on the same-subnet NICs, or defaults."""
        self.bondnet.set_pair_sysctls(tuned)

    def sessions_by_route(self) -> list[initiator.SessionRoute]:
        """Every iSCSI session with its iface, portal and the NIC it leaves by (sysfs)."""
        return initiator.session_routes()

    # --- initiator side ----------------------------------------------------
    def leftovers(self) -> dict[str, list[str]]:
        return initiator.leftovers()

    def cleanup(self) -> list[str]:
        return initiator.cleanup()

    def reset(self) -> list[str]:
        """Initiator cleanup, then target back to its initial state."""
        # Links first: sessions on a cut NIC log out at once once it is back.
        self.bondnet.reset()
        errors = initiator.cleanup()
        self.target.reset()
        if not initiator.sessions():
            self.drop_stale_target_sessions()
        return errors

    def drop_stale_target_sessions(self) -> None:
        """Close the I_T nexuses tgt still holds once the initiator has none.

        A session logged out while its portal was cut (the Logout PDU is
        dropped) stays on tgt's side: nothing ever reaches that half-open
        connection again. An array would time it out; tgt keeps it, and the
        next test would count one session too many. Best effort.
        """
        for s in self.target_sessions():
            run(
                [
                    "tgtadm",
                    "--lld",
                    "iscsi",
                    "--op",
                    "delete",
                    "--mode",
                    "conn",
                    "--tid",
                    str(s["tid"]),
                    "--sid",
                    str(s["nexus"]),
                    "--cid",
                    "0",
                ],
                check=False,
            )

    disks_for_wwid = staticmethod(initiator.disks_for_wwid)
    dm_for_wwid = staticmethod(initiator.dm_for_wwid)
    dm_slaves = staticmethod(initiator.dm_slaves)
    disk_wwid = staticmethod(initiator.disk_wwid)


def _pair(chap: tuple[str, str] | Chap | None) -> tuple[str, str] | None:
    if isinstance(chap, Chap):
        return (chap.user, chap.password)
    return (chap[0], chap[1]) if chap is not None else None
