"""The demo: one volume attached over 4 portals with CHAP, shown, used, detached.

Runs inside the lab guest, as root, on the real kernel (``python -m
multipath_brick.tests.lab demo`` boots one and runs :func:`main`):

1. adds a 64 MiB LUN to the lab's CHAP target (4 portals, tgt);
2. attaches it with :class:`~multipath_brick.ISCSIMultipathConnector` from the
   plural connection properties Cinder would send (printed, password masked);
3. prints the dm device, the WWID, a table of the paths (portal, iface, state,
   device, seconds) and ``multipath -ll`` of the map;
4. writes a few MiB of random data through the map (O_DIRECT) and reads them
   back, comparing SHA-256 checksums;
5. detaches, then checks with the plain tools (iscsiadm, sysfs, dmsetup, tgtadm)
   that no session, node record, discovery record, SCSI disk or map is left.

Exit status 0 only when every step worked and nothing is left.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import sys
import time
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .api import Lab
from .props import volume_props
from .shell import run, wait_for
from .table import format_table

if TYPE_CHECKING:
    from multipath_brick import ISCSIMultipathConnector

LUN = 1
SIZE_MB = 64
IO_MB = 8
CHUNK = 1 << 20
SECRET_KEYS = ("password", "secret")


# --- formatting -----------------------------------------------------------------------
def masked(props: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of connection properties with every password/secret replaced by ***."""
    return {
        k: ("***" if any(s in k.lower() for s in SECRET_KEYS) and v else v)
        for k, v in props.items()
    }


def indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + ln if ln.strip() else ln for ln in text.rstrip().splitlines())


def paths_table(info: Mapping[str, Any]) -> str:
    rows = [
        (
            p["portal"],
            p["iface"],
            p["state"],
            p.get("device") or "-",
            f"{float(p.get('seconds') or 0.0):.2f}",
            p.get("reason") or "",
        )
        for p in info.get("paths") or ()
    ]
    return format_table(("PORTAL", "IFACE", "STATE", "DEVICE", "SECONDS", "REASON"), rows, (4,))


# --- I/O -------------------------------------------------------------------------------
def io_roundtrip(device: str, mib: int) -> tuple[str, str, float, float]:
    """Write ``mib`` MiB of random data with O_DIRECT, read it back the same way.

    Returns (sha256 written, sha256 read, write seconds, read seconds).
    O_DIRECT needs aligned buffers: an anonymous mmap is page aligned.
    """
    buf = mmap.mmap(-1, CHUNK)
    wrote, read = hashlib.sha256(), hashlib.sha256()
    flags = os.O_DIRECT | os.O_SYNC
    t0 = time.monotonic()
    fd = os.open(device, os.O_WRONLY | flags)
    try:
        for _ in range(mib):
            data = os.urandom(CHUNK)
            buf.seek(0)
            buf.write(data)
            wrote.update(data)
            if os.write(fd, buf) != CHUNK:
                raise OSError(f"short write on {device}")
        os.fsync(fd)
    finally:
        os.close(fd)
    t1 = time.monotonic()
    fd = os.open(device, os.O_RDONLY | os.O_DIRECT)
    try:
        for _ in range(mib):
            if os.readv(fd, [buf]) != CHUNK:
                raise OSError(f"short read on {device}")
            read.update(buf[:CHUNK])
    finally:
        os.close(fd)
    t2 = time.monotonic()
    buf.close()
    return wrote.hexdigest(), read.hexdigest(), t1 - t0, t2 - t1


# --- the demo ---------------------------------------------------------------------------
class DemoFailure(Exception):
    pass


def say(text: str = "") -> None:
    print(text, flush=True)


def check(condition: bool, what: str) -> None:
    if not condition:
        raise DemoFailure(what)


def introduce(lab: Lab) -> tuple[str, dict[str, Any]]:
    """Add the demo's LUN and say what the library is given: (WWID, properties)."""
    say()
    say(f"== multipath-brick demo: one volume over {len(lab.portals)} iSCSI portals with CHAP ==")
    say()
    wwid = lab.add_lun(LUN, SIZE_MB)
    say(f"target   {lab.iqn} (tgt, in network namespace {lab.config.netns})")
    say(f"portals  {', '.join(lab.portals)}")
    say(f"LUN {LUN}    {SIZE_MB} MiB, WWID {wwid} (predicted from tgt's scsi_id)")
    say()
    props = volume_props(lab, LUN, volume_id=None)
    say("connection properties (what Cinder's initialize_connection returns):")
    say(indent(json.dumps(masked(props), indent=2)))
    say()
    return wwid, props


def show_attached(
    lab: Lab, conn: ISCSIMultipathConnector, info: dict[str, Any], wwid: str, attach_s: float
) -> None:
    """Show the attached volume, wait for its pending paths, use it; raise on a failed check."""
    n = len(lab.portals)
    states = [p["state"] for p in info["paths"]]
    dm = os.path.basename(info["path"])
    say(f"connect_volume returned in {attach_s:.2f} s")
    say(f"  device  {info['path']}")
    say(
        f"  WWID    {info.get('multipath_id')} "
        f"({'matches the target' if info.get('multipath_id') == wwid else 'MISMATCH'})"
    )
    say(
        f"  paths   {states.count('active')} active, {states.count('pending')} pending, "
        f"{states.count('failed')} failed"
    )
    say()
    say(indent(paths_table(info), "  "))
    say()
    check(info.get("multipath_id") == wwid, f"WWID {info.get('multipath_id')} != {wwid}")
    check(dm.startswith("dm-"), f"not a multipath device: {info['path']}")
    if "pending" in states:
        say("waiting for the pending paths to finish logging in and join the map ...")
        t1 = time.monotonic()
        conn.wait_for_pending(60)
        try:
            wait_for(f"{n} slaves", lambda: len(lab.dm_slaves(dm)) == n, timeout=30)
        except TimeoutError:
            pass
        say(f"  done after {time.monotonic() - t1:.2f} s more")
    slaves = lab.dm_slaves(dm)
    say(f"slaves of {dm} in sysfs: {' '.join(slaves)}")
    say()
    say(f"multipath -ll {wwid}:")
    say(indent(run(["multipath", "-ll", wwid], check=False).stdout, "  "))
    say()
    check(len(slaves) == n, f"{dm} has {len(slaves)} slaves, expected {n}")

    h_w, h_r, w_s, r_s = io_roundtrip(info["path"], IO_MB)
    say(f"I/O through {info['path']} (O_DIRECT):")
    say(f"  wrote {IO_MB} MiB in {w_s:.2f} s  sha256 {h_w}")
    say(f"  read  {IO_MB} MiB in {r_s:.2f} s  sha256 {h_r}")
    say(f"  {'checksums match' if h_w == h_r else 'CHECKSUM MISMATCH'}")
    check(h_w == h_r, "data read back differs from data written")
    say()


#: How the leftovers table names what :meth:`Lab.leftovers` lists.
LEFTOVER_LABELS = {
    "sessions": "iSCSI sessions",
    "node_records": "node records",
    "discovery_records": "discovery records",
    "scsi_disks": "SCSI disks (sdX)",
    "multipath_maps": "multipath maps",
}


def nothing_left(lab: Lab) -> bool:
    """Show what is left on both sides after the detach; whether nothing is."""
    left = lab.leftovers()
    tgt = [s for s in lab.target_sessions() if s["target"] == lab.iqn]
    rows = [(LEFTOVER_LABELS.get(k, k), len(v), " ".join(v) or "-") for k, v in left.items()]
    rows.append(("target-side sessions", len(tgt), " ".join(str(s["ips"]) for s in tgt) or "-"))
    say(indent(format_table(("WHAT", "COUNT", "LEFT"), rows, (1,)), "  "))
    clean = not any(left.values()) and not tgt
    say("nothing left" if clean else "LEFTOVERS after detach")
    return clean


def main(lab: Lab | None = None) -> int:
    # oslo.privsep imports eventlet, which warns on import; not ours to fix.
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    from multipath_brick import ISCSIMultipathConnector

    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(levelname)s %(message)s")
    # Says when a path still logging in at return joins the map (or fails).
    logging.getLogger("multipath_brick.attach").setLevel(logging.INFO)
    lab = lab or Lab.from_state()
    lab.reset()
    wwid, props = introduce(lab)
    conn = ISCSIMultipathConnector(use_multipath=True, root_helper=None)
    info: dict[str, Any] | None = None
    failed: str | None = None
    try:
        t0 = time.monotonic()
        info = conn.connect_volume(props)
        show_attached(lab, conn, info, wwid, time.monotonic() - t0)
    except Exception as error:  # noqa: BLE001 - reported, then cleaned up, exit 1
        failed = f"{type(error).__name__}: {error}"
        say(f"FAILED: {failed}")

    t0 = time.monotonic()
    try:
        if info is not None:
            conn.disconnect_volume(props, info, force=failed is not None)
            say(f"disconnect_volume returned in {time.monotonic() - t0:.2f} s")
    except Exception as error:  # noqa: BLE001
        failed = failed or f"disconnect: {type(error).__name__}: {error}"
        say(f"FAILED: disconnect_volume: {type(error).__name__}: {error}")
    if not nothing_left(lab):
        failed = failed or "leftovers after detach"
    errors = lab.reset()
    if errors:
        say("lab reset errors: " + "; ".join(errors))
    say()
    if failed:
        say(f"demo FAILED: {failed}")
        return 1
    say("demo OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
