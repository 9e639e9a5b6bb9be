"""The floor behind the benchmarks' library interface: ``floor.sh`` attaches and detaches.

``floor.sh`` (next to this module) is the least a shell script does for the same
attach as the libraries: see its header and doc/source/user/performance.rst.
One path per (portal, iface): ``ifaces`` other than ``default`` are the floor's
own (``floor-<nic>``, made by :meth:`Floor.ifaces_up`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from typing import Any

from .libraries import Library

FLOOR = "floor"
#: floor.sh's own deadline for an attach, seconds.
FLOOR_TIMEOUT_S = 300
FLOOR_SH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "floor.sh")


class Floor(Library):
    """floor.sh as a library; its CHAP secret goes by environment, never by argument."""

    name = FLOOR

    def __init__(self, chap: tuple[str, str], ifaces: Sequence[str] = ("default",)) -> None:
        super().__init__()
        self.chap = chap
        self.ifaces = tuple(ifaces)

    def _paths(self, props: dict[str, Any]) -> list[str]:
        return [f"{p}@{i}" for i in self.ifaces for p in props["target_portals"]]

    def _sh(self, *args: str) -> dict[str, str]:
        """Run floor.sh; its key=value output."""
        return dict(
            w.split("=", 1) for ln in self._run(*args).splitlines() for w in ln.split() if "=" in w
        )

    def _run(self, *args: str) -> str:
        """Run floor.sh; its standard output."""
        env = dict(os.environ, FLOOR_CHAP_USER=self.chap[0], FLOOR_CHAP_PASSWORD=self.chap[1])
        # Its own deadline first (32 scripts at once share 2 vCPUs), then ours.
        env.setdefault("FLOOR_TIMEOUT", str(FLOOR_TIMEOUT_S))
        proc = subprocess.run(
            ["bash", FLOOR_SH, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=FLOOR_TIMEOUT_S + 60,
        )
        if proc.returncode:
            raise RuntimeError(
                f"floor.sh {args[0]}: exit {proc.returncode}: {proc.stderr.strip()}"
            )
        return proc.stdout

    def connect(self, props: dict[str, Any]) -> dict[str, Any]:
        iqn, lun = props["target_iqns"][0], str(props["target_luns"][0])
        out = self._sh("attach", iqn, lun, *self._paths(props))
        return {
            "type": "block",
            "path": f"/dev/{out['dm']}",
            "scsi_wwn": out["wwid"],
            "multipath_id": out["wwid"],
            "paths": [{"state": "active"} for _ in range(int(out["slaves"]))],
            "floor": out,
        }

    def disconnect(self, props: dict[str, Any], info: dict[str, Any]) -> None:
        iqn, lun = props["target_iqns"][0], str(props["target_luns"][0])
        self._sh("detach", iqn, lun, info["multipath_id"], *self._paths(props))

    def login(self, iqn: str, portals: Sequence[str]) -> list[int]:
        """Records and sessions of ``iqn`` on every portal, nothing scanned; their SCSI hosts."""
        out = self._run("login", iqn, *(f"{p}@default" for p in portals))
        key = "scsi_host="
        return sorted(int(w[len(key) :]) for w in out.split() if w.startswith(key))

    def logout(self, iqn: str, portals: Sequence[str]) -> None:
        """The sessions of :meth:`login` logged out, their records deleted."""
        self._run("logout", iqn, *(f"{p}@default" for p in portals))

    def ifaces_up(self, nics: Sequence[str]) -> None:
        """The floor's ifaces ``floor-<nic>``, bound to each NIC (host configuration)."""
        self._sh("ifaces-up", *nics)

    def ifaces_down(self, nics: Sequence[str]) -> None:
        self._sh("ifaces-down", *nics)
