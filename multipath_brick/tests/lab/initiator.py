"""Initiator side of the lab: what is attached, and a forceful reset.

These helpers read the real host state the library leaves behind; they are
the judge in the functional tests, so they use the plain tools (iscsiadm,
dmsetup, sysfs) and none of the library's code.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import time

from .shell import read_file, run

# iscsiadm exit code for "no records/sessions found" (ISCSI_ERR_NO_OBJS_FOUND).
NO_OBJS_FOUND = 21

#: open-iscsi's node database lock: held while this file exists (idbm_lock).
LOCK_WRITE = "/run/lock/iscsi/lock.write"


def _lines(argv: list[str]) -> list[str]:
    proc = run(argv, check=False, timeout=30)
    if proc.returncode == NO_OBJS_FOUND:
        return []
    if proc.returncode != 0:
        return [f"<{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}>"]
    return [ln for ln in proc.stdout.splitlines() if ln.strip()]


def sessions() -> list[str]:
    return _lines(["iscsiadm", "-m", "session"])


def iscsi_lock() -> list[str]:
    """open-iscsi's node database lock, if someone holds it (nobody should
    between two calls). Left behind by a dead holder, it makes every later
    ``iscsiadm -m node`` wait 30 s."""
    return [LOCK_WRITE] if os.path.lexists(LOCK_WRITE) else []


def node_records() -> list[str]:
    return _lines(["iscsiadm", "-m", "node"])


def discovery_records() -> list[str]:
    return _lines(["iscsiadm", "-m", "discoverydb"])


def scsi_disks() -> list[str]:
    return sorted(os.path.basename(p) for p in glob.glob("/sys/block/sd*"))


def multipath_maps() -> list[str]:
    out = run(["dmsetup", "ls", "--target", "multipath"], check=False).stdout
    return [
        ln.split()[0] for ln in out.splitlines() if ln.strip() and "No devices found" not in ln
    ]


def node_db_files() -> list[str]:
    """What is left under ``/etc/iscsi/nodes`` and ``/etc/iscsi/static`` (the
    links iscsiadm makes to tpgt records): a record's directories and links
    must go with it, whoever deletes it."""
    found = []
    for top in ("/etc/iscsi/nodes", "/etc/iscsi/static"):
        for dirpath, dirnames, filenames in os.walk(top):
            found += [os.path.join(dirpath, name) for name in dirnames + filenames]
    return sorted(found)


def ifaces() -> list[str]:
    """iface records of the library's scheme (``mpb-<netdev>``): a bond's leftovers."""
    return [ln.split()[0] for ln in _lines(["iscsiadm", "-m", "iface"]) if ln.startswith("mpb-")]


def leftovers() -> dict[str, list[str]]:
    """Everything an attach can leave behind; all lists empty when clean."""
    return {
        # First: a stale lock would make the record listing below wait 30 s.
        "iscsi_lock": iscsi_lock(),
        "sessions": sessions(),
        "node_records": node_records(),
        "node_db_files": node_db_files(),
        "discovery_records": discovery_records(),
        "scsi_disks": scsi_disks(),
        "multipath_maps": multipath_maps(),
        "ifaces": ifaces(),
    }


# --- lookups used by tests --------------------------------------------------
def disk_wwid(disk: str) -> str:
    """multipath-style WWID of sdX ('naa.6...' in sysfs -> '36...')."""
    raw = read_file(f"/sys/block/{disk}/device/wwid")
    if raw.startswith("naa."):
        return "3" + raw[4:]
    return raw


def disks_for_wwid(wwid: str) -> list[str]:
    return [d for d in scsi_disks() if disk_wwid(d) == wwid]


def dm_for_wwid(wwid: str) -> str | None:
    """dm-N whose device-mapper uuid is mpath-<wwid>, or None."""
    for path in glob.glob("/sys/block/dm-*/dm/uuid"):
        if read_file(path) == f"mpath-{wwid}":
            return path.split("/")[3]
    return None


def dm_slaves(dm: str) -> list[str]:
    return sorted(os.listdir(f"/sys/block/{dm}/slaves"))


@dataclasses.dataclass(frozen=True)
class SessionRoute:
    """One session as sysfs shows it: which iface, which portal, which NIC.

    ``netdev`` is what iscsid told the kernel the iface is bound to
    (``iscsi_host/hostH/netdev``, empty for ``default``); ``ipaddress`` is the
    local address of the session's TCP connection (``iscsi_host/hostH/ipaddress``):
    the NIC the packets actually leave by.
    """

    sid: int
    iface: str
    portal: str
    netdev: str
    ipaddress: str
    state: str
    disks: tuple[str, ...] = ()


def _null(value: str) -> str:
    return "" if value == "(null)" else value


def session_routes() -> list[SessionRoute]:
    routes = []
    for base in glob.glob("/sys/class/iscsi_session/session*"):
        sid = int(base.rsplit("session", 1)[1])
        conn = f"/sys/class/iscsi_connection/connection{sid}:0"
        host_dir = os.path.dirname(os.path.realpath(f"{base}/device"))
        match = re.search(r"host(\d+)$", host_dir)
        ihost = f"/sys/class/iscsi_host/host{match.group(1)}" if match else "/nonexistent"
        address = _null(read_file(f"{conn}/persistent_address"))
        port = _null(read_file(f"{conn}/persistent_port"))
        routes.append(
            SessionRoute(
                sid=sid,
                iface=_null(read_file(f"{base}/ifacename")) or "default",
                portal=f"{address}:{port}",
                netdev=_null(read_file(f"{ihost}/netdev")),
                ipaddress=_null(read_file(f"{ihost}/ipaddress")),
                state=read_file(f"{base}/state"),
                disks=tuple(
                    sorted(
                        os.path.basename(d) for d in glob.glob(f"{base}/device/target*/*/block/*")
                    )
                ),
            )
        )
    return sorted(routes, key=lambda r: r.sid)


def path_states() -> dict[str, str]:
    """multipathd's view of every path: sdX -> "<dm state> <checker state>"
    (``active ready``, ``failed faulty``...)."""
    out = run(["multipathd", "show", "paths", "raw", "format", "%d %t %T"], check=False).stdout
    return {f[0]: f"{f[1]} {f[2]}" for f in (ln.split() for ln in out.splitlines()) if len(f) == 3}


def path_groups(wwid: str) -> list[list[str]]:
    """The map's path groups in order (1-based for ``multipathd switchgroup``),
    each the sdX it holds, from ``multipath -ll``."""
    groups: list[list[str]] = []
    for line in run(["multipath", "-ll", wwid], check=False).stdout.splitlines():
        if "policy=" in line:
            groups.append([])
        elif groups and (m := re.search(r"\d+:\d+:\d+:\d+ (sd[a-z]+) ", line)):
            groups[-1].append(m.group(1))
    return groups


def tx_bytes(netdev: str) -> int:
    return int(read_file(f"/sys/class/net/{netdev}/statistics/tx_bytes", "0"))


# --- reset --------------------------------------------------------------------
def cleanup() -> list[str]:
    """Tear down every map, disk, session and record; return what failed.

    Used between tests so one test's mess cannot fail the next one. Order
    matters: maps first (nothing may hold the disks), then disks, then
    sessions, then records.
    """
    errors: list[str] = []

    def attempt(argv: list[str]) -> None:
        proc = run(argv, check=False, timeout=60)
        if proc.returncode not in (0, NO_OBJS_FOUND):
            errors.append(f"{' '.join(argv)}: exit {proc.returncode} {proc.stderr.strip()}")

    if iscsi_lock():
        # A dead holder's lock would make every iscsiadm below wait 30 s.
        errors.append(f"{LOCK_WRITE} was held between two tests; removed")
        os.unlink(LOCK_WRITE)
    for name in multipath_maps():
        # Stop queueing first, or the flush can block on a dead map.
        run(["dmsetup", "message", name, "0", "fail_if_no_path"], check=False)
        if run(["multipath", "-f", name], check=False, timeout=60).returncode:
            attempt(["dmsetup", "remove", "--force", "--retry", name])
    for disk in scsi_disks():
        try:
            with open(f"/sys/block/{disk}/device/delete", "w") as f:
                f.write("1")
        except OSError as e:
            errors.append(f"delete {disk}: {e}")
    if sessions():
        attempt(["iscsiadm", "-m", "node", "--logoutall=all"])
    if node_records():
        attempt(["iscsiadm", "-m", "node", "-o", "delete"])
    for rec in discovery_records():
        # "192.168.100.2:3260 via sendtargets"
        portal = rec.split()[0]
        attempt(
            ["iscsiadm", "-m", "discoverydb", "-t", "sendtargets", "-p", portal, "-o", "delete"]
        )
    for name in ifaces():
        attempt(["iscsiadm", "-m", "iface", "-I", name, "-o", "delete"])
    # Forget WWIDs tests taught multipathd, so each test starts from a host
    # that has never seen its LUN (find_multipaths strict).
    with open("/etc/multipath/wwids", "w", encoding="utf-8") as f:
        f.write("# Multipath wwids, Version : 1.0\n")
    deadline = time.monotonic() + 20
    while scsi_disks() and time.monotonic() < deadline:
        time.sleep(0.2)
    return errors
