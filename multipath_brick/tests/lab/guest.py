"""In-guest setup: turn a freshly booted virtme-ng guest into an iSCSI lab.

Runs as root inside the QEMU guest, never on the host (``assert_in_guest``):
it loads modules, creates network namespaces and starts daemons. The guest's
/etc, /var and /run are throw-away overlays/tmpfs, so nothing here needs
undoing: the guest is powered off after the run.

Layout after ``setup()``::

    root namespace (initiator)               namespace "mpbtgt" (target)
    iscsid, multipathd, the library          tgtd, listening on every .2
    mpbi0 192.168.100.1/24  <---- veth ---->  mpbt0 192.168.100.2/24
    mpbi1 192.168.101.1/24  <---- veth ---->  mpbt1 192.168.101.2/24
    ...                                        ...

plus the bond topology (lab/bondnet.py): two routed NICs mpbn0/mpbn1 that
both reach the bond portals 192.168.210.1/.2, and two NICs mpbs0/mpbs1 on
one subnet in front of the portal 192.168.220.2.

One target (``cfg.iqn``) with CHAP (incoming user) and an ACL on the
initiator name; it starts with no LUN: tests add the LUNs they need.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

from . import bondnet
from .config import MULTIPATHD_LOG, STATE_DIR, STATE_FILE, LabConfig
from .shell import run, wait_for, write_file
from .target import TargetControl

MODULES = (
    "iscsi_tcp",  # the software iSCSI initiator (pulls libiscsi, scsi_transport_iscsi)
    "sd_mod",  # SCSI disks: sdX for each LUN
    "dm_multipath",  # multipathd exits silently at start when it is missing
    "dm_round_robin",  # path selectors multipath.conf may name
    "dm_service_time",  # Debian's default path selector ("service-time 0")
    "veth",  # one veth pair per portal
    "bridge",  # the same-subnet NICs' switch (bondnet.py)
    "sch_netem",  # per-portal latency (lab.set_latency)
)

# Only what the tests need differs from Debian's shipped multipath
# configuration; the values written explicitly equal Debian's compiled-in
# defaults and are spelled out so the tests do not silently depend on a
# distribution default changing.
MULTIPATH_CONF = """\
# multipath-brick functional lab (written by lab/guest.py)
defaults {
    # Maps are named by WWID: the library finds its map by WWID.
    user_friendly_names no
    # Only WWIDs listed in /etc/multipath/wwids get a map: the library must
    # run 'multipath -a WWID' itself, as on hosts configured this way.
    find_multipaths strict
    # Check paths every 2 s (default 5) so failed/restored paths are noticed
    # quickly in failover tests.
    polling_interval 2
    # Fail I/O on a broken path after 5 s; multipathd also applies it to the
    # iSCSI session's recovery timeout.
    fast_io_fail_tmo 5
}
"""

# iscsid.conf keys changed from Debian's defaults, and why. Login timeouts
# (login_timeout, initial_login_retry_max) are deliberately NOT changed: the
# library must write per-node login timeouts itself, and the tests prove it.
ISCSID_CONF_OVERRIDES = {
    # 120 s by default: I/O on a dead path would hang 2 minutes before
    # multipath could fail over; 5 s keeps failover tests short.
    "node.session.timeo.replacement_timeout": "5",
    # Detect a dead connection within ~4 s instead of ~10 s.
    "node.conn[0].timeo.noop_out_interval": "2",
    "node.conn[0].timeo.noop_out_timeout": "2",
    # Debian starts iscsid through systemd socket activation; the guest has no
    # systemd, we start iscsid ourselves and keep iscsiadm from trying.
    "iscsid.startup": "/bin/true",
}


def assert_in_guest() -> None:
    """Refuse to touch a real host: this module starts daemons and netns."""
    cmdline = ""
    try:
        with open("/proc/cmdline", encoding="utf-8") as f:
            cmdline = f.read()
    except OSError:
        pass
    if os.environ.get("MPB_LAB_GUEST") != "1" or "virtme" not in cmdline:
        raise SystemExit(
            "lab guest setup must only run inside the virtme-ng guest "
            "(use: python -m multipath_brick.tests.lab run)"
        )
    if os.geteuid() != 0:
        raise SystemExit("lab guest setup needs root (the guest runs as root)")


def _step(timings: dict[str, float], name: str, t0: float) -> float:
    now = time.monotonic()
    timings[name] = round(now - t0, 2)
    return now


def load_modules() -> None:
    run(["modprobe", "-a", *MODULES])


def configure_initiator(cfg: LabConfig) -> None:
    # The target's ACL names this initiator; /etc is a guest-private overlay.
    write_file("/etc/iscsi/initiatorname.iscsi", f"InitiatorName={cfg.initiator_name}\n")
    path = "/etc/iscsi/iscsid.conf"
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for key, value in ISCSID_CONF_OVERRIDES.items():
        line = f"{key} = {value}"
        pattern = re.compile(r"^\s*" + re.escape(key) + r"\s*=.*$", re.MULTILINE)
        text, n = pattern.subn(line, text)
        if n == 0:
            text += line + "\n"
    write_file(path, text)
    # Start from an empty node/discovery database whatever the host image has.
    for d in ("/etc/iscsi/nodes", "/etc/iscsi/send_targets"):
        run(["rm", "-rf", d])
        os.makedirs(d, exist_ok=True)
    os.makedirs("/etc/multipath", exist_ok=True)
    write_file("/etc/multipath.conf", MULTIPATH_CONF)
    write_file("/etc/multipath/wwids", "# Multipath wwids, Version : 1.0\n")


def create_network(cfg: LabConfig) -> None:
    # `ip -batch` runs all link/address commands in one process: under TCG
    # every process start costs ~0.3 s, so this saves seconds per boot.
    run(["ip", "netns", "add", cfg.netns])
    root_cmds = []
    ns_cmds = ["link set lo up"]
    for k in range(cfg.portals):
        hi, ti = cfg.initiator_veth(k), cfg.target_veth(k)
        root_cmds += [
            f"link add {hi} type veth peer name {ti} netns {cfg.netns}",
            f"addr add {cfg.initiator_ip(k)}/24 dev {hi}",
            f"link set {hi} up",
        ]
        ns_cmds += [
            f"addr add {cfg.target_ip(k)}/24 dev {ti}",
            f"link set {ti} up",
        ]
    bond_root, bond_ns = bondnet.commands(cfg)
    run(["ip", "-batch", "-"], input="\n".join(root_cmds + bond_root) + "\n")
    run(["ip", "-n", cfg.netns, "-batch", "-"], input="\n".join(ns_cmds + bond_ns) + "\n")
    bondnet.configure(cfg)


def start_target(cfg: LabConfig) -> TargetControl:
    os.makedirs(cfg.lun_dir, exist_ok=True)
    # tgtd runs inside the target namespace so its portals are only reachable
    # through the veth pairs (and can be cut per portal with iptables there).
    # Its control socket is a file under /var/run/tgtd, reachable from the
    # root namespace. Explicit portals (not 0.0.0.0) so `tgtadm --mode portal`
    # shows exactly the lab's portals.
    run(["ip", "netns", "exec", cfg.netns, "tgtd", "--iscsi", f"portal={cfg.portal(0)}"])
    tc = TargetControl(cfg)
    wait_for("tgtd control socket", tc.alive, timeout=20)
    for portal in [*cfg.portal_list[1:], *bondnet.portals(cfg)]:
        tc.tgtadm("--op", "new", "--mode", "portal", "--param", f"portal={portal}")
    tc.add_target(cfg.iqn, chap=(cfg.chap_user, cfg.chap_password))
    return tc


def start_iscsid() -> None:
    run(["iscsid"])  # daemonizes

    def ready() -> bool:
        # Exit 20 (ISCSI_ERR_ISCSID_NOTCONN) until iscsid listens; 21 = no
        # sessions, which is what a ready, idle iscsid answers.
        return run(["iscsiadm", "-m", "session"], check=False).returncode in (0, 21)

    wait_for("iscsid", ready, timeout=20)


def start_multipathd() -> None:
    # In the foreground with its log in a file: the guest has no syslog, and
    # what multipathd says about a path it will not take ("orphan", "domap
    # failed", "waiting for udev") is what explains a failed join.
    log = open(MULTIPATHD_LOG, "ab")  # noqa: SIM115 - handed to the daemon
    subprocess.Popen(
        ["multipathd", "-d", "-s", "-v3"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()

    def ready() -> bool:
        out = run(["multipathd", "show", "daemon"], check=False).stdout
        return "idle" in out or "running" in out

    wait_for("multipathd", ready, timeout=30)


def setup(cfg: LabConfig) -> dict[str, float]:
    """Build the whole lab; returns per-step timings in seconds."""
    assert_in_guest()
    os.makedirs(STATE_DIR, exist_ok=True)
    timings: dict[str, float] = {}
    t_start = t = time.monotonic()
    load_modules()
    t = _step(timings, "modules", t)
    configure_initiator(cfg)
    t = _step(timings, "config_files", t)
    create_network(cfg)
    t = _step(timings, "network", t)
    start_target(cfg)
    t = _step(timings, "tgtd", t)
    start_iscsid()
    t = _step(timings, "iscsid", t)
    start_multipathd()
    t = _step(timings, "multipathd", t)
    timings["total"] = round(t - t_start, 2)
    state = {"config": cfg.to_json(), "setup_timings": timings}
    write_file(STATE_FILE, json.dumps(state, indent=2) + "\n")
    return timings


def export_env(cfg: LabConfig) -> dict[str, str]:
    """Variables handed to `shell-cmd` commands (captures, the demo)."""
    return {
        "MPB_LAB_PORTALS": " ".join(cfg.portal_list),
        "MPB_LAB_IQN": cfg.iqn,
        "MPB_LAB_CHAP_USER": cfg.chap_user,
        "MPB_LAB_CHAP_PASSWORD": cfg.chap_password,
        "MPB_LAB_NETNS": cfg.netns,
        "MPB_LAB_INITIATOR": cfg.initiator_name,
        "MPB_LAB_LUN_DIR": cfg.lun_dir,
        "MPB_LAB_BOND_PORTALS": " ".join(cfg.bond_portal_list),
        "MPB_LAB_BOND_NICS": " ".join(cfg.bond_nic(j) for j in range(cfg.bond_nic_count)),
    }
