"""Target side of the lab: tgtd (in its own network namespace) and the links.

Everything goes through ``tgtadm`` (tgtd's control socket is a file, reachable
from the root namespace), ``iptables`` and ``tc`` run inside the target
namespace, so cutting a portal never touches the initiator's namespace.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Iterable, Mapping

from .config import LabConfig, tgt_wwid
from .shell import LabCommandError, run


@dataclasses.dataclass
class LunInfo:
    tid: int
    lun: int
    size_mb: int
    path: str
    scsi_id: str

    @property
    def wwid(self) -> str:
        return tgt_wwid(self.scsi_id)


@dataclasses.dataclass
class TargetInfo:
    tid: int
    iqn: str
    chap: tuple[str, str] | None
    luns: dict[int, LunInfo] = dataclasses.field(default_factory=dict)
    mutual_chap: tuple[str, str] | None = None


class TargetControl:
    def __init__(self, cfg: LabConfig) -> None:
        self.cfg = cfg
        self.targets: dict[str, TargetInfo] = {}
        self._generation = 0  # makes every LUN ever created get a new WWID
        self._down: set[int] = set()
        self._latency: dict[int, int] = {}
        self._discovery_user: str | None = None

    # --- low level --------------------------------------------------------
    def tgtadm(self, *args: str, check: bool = True) -> str:
        return run(["tgtadm", "--lld", "iscsi", *args], check=check).stdout

    def netns(self, *argv: str, check: bool = True) -> str:
        return run(["ip", "netns", "exec", self.cfg.netns, *argv], check=check).stdout

    def alive(self) -> bool:
        return (
            run(
                ["tgtadm", "--lld", "iscsi", "--op", "show", "--mode", "sys"], check=False
            ).returncode
            == 0
        )

    # --- targets ----------------------------------------------------------
    def _next_tid(self) -> int:
        """A tid free in tgt. tgt's own list counts too: a target whose forced
        delete tgt refused (seen once in a full functional run) keeps its tid
        there, and every later test's new target failed on it."""
        shown = self.tgtadm("--op", "show", "--mode", "target", check=False)
        used = {int(tid) for tid in re.findall(r"^Target (\d+):", shown, re.MULTILINE)}
        return max({t.tid for t in self.targets.values()} | used, default=0) + 1

    def add_target(
        self,
        iqn: str,
        luns: Mapping[int, int] | Iterable[tuple[int, int]] = (),
        chap: tuple[str, str] | None = None,
        initiator_name: str | None = None,
        mutual_chap: tuple[str, str] | None = None,
    ) -> TargetInfo:
        """Create a target; luns maps LUN number -> size in MiB.

        ACL: any address (tgt rejects everything without an address rule) and
        only our initiator name, like an array's host object. chap=(user,
        password) requires CHAP (incoming user) for logins to this target;
        mutual_chap=(user_in, password_in) makes the target answer the
        initiator's challenge with that account (tgt's outgoing account: one
        per target).
        """
        if iqn in self.targets:
            raise ValueError(f"target {iqn} already exists")
        tid = self._next_tid()
        self.tgtadm("--op", "new", "--mode", "target", "--tid", str(tid), "-T", iqn)
        info = TargetInfo(tid=tid, iqn=iqn, chap=chap, mutual_chap=mutual_chap)
        self.targets[iqn] = info
        self.tgtadm(
            "--op", "bind", "--mode", "target", "--tid", str(tid), "--initiator-address", "ALL"
        )
        self.tgtadm(
            "--op",
            "bind",
            "--mode",
            "target",
            "--tid",
            str(tid),
            "--initiator-name",
            initiator_name or self.cfg.initiator_name,
        )
        if chap:
            user = self._account(chap)
            self.tgtadm("--op", "bind", "--mode", "account", "--tid", str(tid), "--user", user)
        if mutual_chap:
            user = self._account(mutual_chap)
            self.tgtadm(
                "--op",
                "bind",
                "--mode",
                "account",
                "--tid",
                str(tid),
                "--user",
                user,
                "--outgoing",
            )
        items = luns.items() if isinstance(luns, Mapping) else luns
        for lun, size_mb in items:
            self.add_lun(lun, size_mb, iqn=iqn)
        return info

    def _account(self, chap: tuple[str, str]) -> str:
        """Create a tgt account (user, password) unless it exists; returns the user.

        Accounts are global in tgt and keep their first password: tests give
        each secret its own user name.
        """
        user, password = chap
        proc = run(
            ["tgtadm", "--lld", "iscsi", "--op", "new", "--mode", "account"]
            + ["--user", user, "--password", password],
            check=False,
        )
        if proc.returncode != 0 and "exist" not in (proc.stderr + proc.stdout):
            raise LabCommandError(["tgtadm", "account", user], proc)
        return user

    def set_discovery_chap(self, chap: tuple[str, str] | None) -> None:
        """Require CHAP (incoming user) for SendTargets discovery, or stop requiring it.

        tgt authenticates a discovery session against its global target
        (``usr/iscsi/iscsid.c``: ``conn->tid = GLOBAL_TID``), which an account
        bound with no ``--tid`` joins (``tgtadm.c``: tid -1 becomes GLOBAL_TID;
        ``--tid 0`` is refused). Bound, it applies to every portal's discovery.
        """
        if self._discovery_user is not None:
            self.tgtadm(
                "--op", "unbind", "--mode", "account", "--user", self._discovery_user, check=False
            )
            self._discovery_user = None
        if chap is not None:
            user = self._account(chap)
            self.tgtadm("--op", "bind", "--mode", "account", "--user", user)
            self._discovery_user = user

    def remove_target(self, iqn: str) -> None:
        """Delete a target even with sessions logged in (they are dropped)."""
        info = self.targets.pop(iqn)
        self.tgtadm(
            "--op", "delete", "--force", "--mode", "target", "--tid", str(info.tid), check=False
        )
        for lun in info.luns.values():
            _unlink(lun.path)

    # --- LUNs -------------------------------------------------------------
    def _target(self, iqn: str | None) -> TargetInfo:
        return self.targets[iqn or self.cfg.iqn]

    def _create_lu(self, info: TargetInfo, lun: LunInfo) -> None:
        tid, n = str(info.tid), str(lun.lun)
        self.tgtadm(
            "--op", "new", "--mode", "logicalunit", "--tid", tid, "--lun", n, "-b", lun.path
        )
        # scsi_id decides the WWID (see config.tgt_wwid); scsi_sn the serial.
        self.tgtadm(
            "--op",
            "update",
            "--mode",
            "logicalunit",
            "--tid",
            tid,
            "--lun",
            n,
            "--params",
            f"scsi_id={lun.scsi_id},scsi_sn={lun.scsi_id[-12:]}",
        )

    def add_lun(self, lun: int, size_mb: int = 64, iqn: str | None = None) -> str:
        """Add a LUN backed by a sparse file on the guest's tmpfs; returns WWID."""
        info = self._target(iqn)
        if lun in info.luns:
            raise ValueError(f"LUN {lun} already exists on {info.iqn}")
        if not 1 <= lun <= 16383:
            # LUN 0 is tgt's controller; from 256 tgt answers REPORT LUNS in
            # flat-space addressing, so the kernel sees 16384 + LUN (SAM2).
            raise ValueError("tgt LUN 0 is its controller LUN; use 1..16383")
        self._generation += 1
        scsi_id = f"4d42{info.tid:04x}{lun:04x}{self._generation:04x}"
        path = os.path.join(self.cfg.lun_dir, f"t{info.tid}-lun{lun}.img")
        with open(path, "wb") as f:
            f.truncate(size_mb * 1024 * 1024)
        entry = LunInfo(tid=info.tid, lun=lun, size_mb=size_mb, path=path, scsi_id=scsi_id)
        self._create_lu(info, entry)
        info.luns[lun] = entry
        return entry.wwid

    def resize_lun(self, lun: int, size_mb: int, iqn: str | None = None) -> None:
        """Grow (or shrink) a LUN, keeping its WWID and data.

        tgt reads the backing file size only when the logical unit is
        created, so the LU is deleted and re-created on the same file with the
        same scsi_id. Logged-in initiators keep their sdX; they see the new
        size after a rescan (echo 1 > /sys/block/sdX/device/rescan).
        """
        info = self._target(iqn)
        entry = info.luns[lun]
        # tgt refuses while a command is in flight on the LU ("this logical unit
        # is still active", exit 22): multipathd's path checker sends one every
        # polling_interval, so a retry soon finds it idle.
        argv = ["--op", "delete", "--mode", "logicalunit", "--tid", str(info.tid)]
        for attempt in range(40):
            try:
                self.tgtadm(*argv, "--lun", str(lun))
                break
            except LabCommandError as error:
                if "still active" not in str(error) or attempt == 39:
                    raise
                time.sleep(0.25)
        with open(entry.path, "r+b") as f:
            f.truncate(size_mb * 1024 * 1024)
        entry.size_mb = size_mb
        self._create_lu(info, entry)

    def remove_lun(self, lun: int, iqn: str | None = None) -> None:
        info = self._target(iqn)
        entry = info.luns.pop(lun)
        self.tgtadm(
            "--op",
            "delete",
            "--mode",
            "logicalunit",
            "--tid",
            str(info.tid),
            "--lun",
            str(lun),
            check=False,
        )
        _unlink(entry.path)

    # --- links ------------------------------------------------------------
    def _drop_rules(self, k: int) -> list[list[str]]:
        dev = self.cfg.target_veth(k)
        return [["INPUT", "-i", dev, "-j", "DROP"], ["OUTPUT", "-o", dev, "-j", "DROP"]]

    def portal_down(self, k: int) -> None:
        """Silently drop all traffic of portal k (a dead path, not a reset)."""
        self._check_portal(k)
        if k in self._down:
            return
        for rule in self._drop_rules(k):
            self.netns("iptables", "-I", *rule)
        self._down.add(k)

    def portal_up(self, k: int) -> None:
        self._check_portal(k)
        for rule in self._drop_rules(k):
            # Delete every copy, in case of a half-applied earlier call.
            while (
                run(
                    ["ip", "netns", "exec", self.cfg.netns, "iptables", "-D", *rule], check=False
                ).returncode
                == 0
            ):
                pass
        self._down.discard(k)

    def set_latency(self, k: int, ms: int) -> None:
        """Delay every packet the target sends on portal k by ms (adds ms to
        each round trip); ms=0 removes the delay."""
        self._check_portal(k)
        dev = self.cfg.target_veth(k)
        if ms <= 0:
            self.netns("tc", "qdisc", "del", "dev", dev, "root", check=False)
            self._latency.pop(k, None)
        else:
            self.netns(
                "tc", "qdisc", "replace", "dev", dev, "root", "netem", "delay", f"{int(ms)}ms"
            )
            self._latency[k] = ms

    def _check_portal(self, k: int) -> None:
        if not 0 <= k < self.cfg.portals:
            raise IndexError(f"portal index {k} out of 0..{self.cfg.portals - 1}")

    # --- inspection -------------------------------------------------------
    def show(self) -> str:
        return self.tgtadm("--op", "show", "--mode", "target")

    def sessions(self) -> list[dict[str, object]]:
        """Logged-in I_T nexuses: [{'target', 'tid', 'initiator', 'ips'}]."""
        return parse_tgt_sessions(self.show())

    # --- reset between tests ------------------------------------------------
    def reset(self) -> None:
        """Back to the state setup() left: links clean, only the default
        target, with no LUN."""
        for k in list(self._down):
            self.portal_up(k)
        for k in list(self._latency):
            self.set_latency(k, 0)
        self.set_discovery_chap(None)
        for iqn in [i for i in self.targets if i != self.cfg.iqn]:
            self.remove_target(iqn)
        default = self.targets.get(self.cfg.iqn)
        if default:
            for lun in list(default.luns):
                self.remove_lun(lun)


def parse_tgt_sessions(text: str) -> list[dict[str, object]]:
    sessions: list[dict[str, object]] = []
    target = ""
    tid = 0
    current: dict[str, object] | None = None
    for line in text.splitlines():
        m = re.match(r"^Target (\d+): (\S+)", line)
        if m:
            tid, target = int(m.group(1)), m.group(2)
            current = None
            continue
        s = line.strip()
        if s.startswith("I_T nexus:"):
            current = {
                "target": target,
                "tid": tid,
                "nexus": int(s.split(":")[1]),
                "initiator": "",
                "ips": [],
            }
            sessions.append(current)
        elif current is not None and s.startswith("Initiator:"):
            current["initiator"] = s.split()[1]
        elif current is not None and s.startswith("IP Address:"):
            ips = current["ips"]
            assert isinstance(ips, list)
            ips.append(s.split(":", 1)[1].strip())
        elif s.startswith("LUN information:"):
            current = None
    return sessions


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
