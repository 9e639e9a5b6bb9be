"""Shape of the functional-test lab: names, addresses and credentials.

Pure data, no side effects: imported on the host (to build the guest command
line) and in the guest (by the setup and by the pytest fixtures).

Addressing: portal k (0-based) is a veth pair on its own /24,
192.168.(100+k).0/24, with the initiator side (root namespace) on .1 and the
target side (namespace ``netns``) on .2. These addresses exist only inside the
QEMU guest's own namespaces: no packet ever leaves the guest. Separate subnets
per path avoid the arp_ignore/rp_filter tuning that several NICs on one subnet
need (see LESSONS.md, iSCSI bond).

The bond topology (lab/bondnet.py) adds, for every run, two initiator NICs
``mpbn0``/``mpbn1`` on 192.168.200.0/24 and 192.168.201.0/24 that both reach
the two bond portals 192.168.210.1 and .2 by routing, and two NICs
``mpbs0``/``mpbs1`` on one subnet (192.168.220.0/24, a bridge in the target
namespace) in front of the portal 192.168.220.2.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

# Where the in-guest setup records what it built; the pytest fixtures read it.
# /run is a tmpfs private to the guest, so the file's existence also tells the
# tests that they are running inside a prepared lab guest.
STATE_DIR = "/run/mpb-lab"
STATE_FILE = os.path.join(STATE_DIR, "state.json")
MULTIPATHD_LOG = os.path.join(STATE_DIR, "multipathd.log")

# Guest path of the results directory shared with the host (--rwdir).
GUEST_OUT_DIR = "/run/mpb-lab-out"

ISCSI_PORT = 3260


@dataclasses.dataclass(frozen=True)
class LabConfig:
    portals: int = 4
    netns: str = "mpbtgt"
    subnet_base: int = 100
    iqn: str = "iqn.2024-01.org.multipath-brick.lab:target0"
    initiator_name: str = "iqn.2024-01.org.multipath-brick.lab:initiator0"
    chap_user: str = "mpbuser"
    # 12..16 characters: the CHAP secret length window accepted by most arrays.
    chap_password: str = "mpb-secret-123"
    lun_dir: str = os.path.join(STATE_DIR, "luns")

    def __post_init__(self) -> None:
        if not 1 <= self.portals <= 16:
            raise ValueError(f"portals must be 1..16, got {self.portals}")

    # --- per-portal names -------------------------------------------------
    def initiator_ip(self, k: int) -> str:
        return f"192.168.{self.subnet_base + k}.1"

    def target_ip(self, k: int) -> str:
        return f"192.168.{self.subnet_base + k}.2"

    def portal(self, k: int) -> str:
        return f"{self.target_ip(k)}:{ISCSI_PORT}"

    def initiator_veth(self, k: int) -> str:
        return f"mpbi{k}"

    def target_veth(self, k: int) -> str:
        return f"mpbt{k}"

    @property
    def portal_list(self) -> list[str]:
        return [self.portal(k) for k in range(self.portals)]

    # --- the bond topology (lab/bondnet.py) ---------------------------------
    # Fixed shape: two NICs per variant, two routed portals; see bondnet.py.
    bond_nic_count = 2
    bond_portal_count = 2

    def bond_nic(self, j: int) -> str:
        """Initiator NIC j of the routed variant (its own subnet)."""
        return f"mpbn{j}"

    def bond_nic_ip(self, j: int) -> str:
        return f"192.168.{200 + j}.1"

    def bond_router_ip(self, j: int) -> str:
        """The router's address on NIC j's subnet (target namespace)."""
        return f"192.168.{200 + j}.2"

    def bond_router_veth(self, j: int) -> str:
        return f"mpbr{j}"

    def bond_portal(self, k: int) -> str:
        return f"192.168.210.{k + 1}:{ISCSI_PORT}"

    @property
    def bond_portal_list(self) -> list[str]:
        return [self.bond_portal(k) for k in range(self.bond_portal_count)]

    bond_portal_subnet = "192.168.210.0/24"

    def pair_nic(self, j: int) -> str:
        """Initiator NIC j of the same-subnet variant."""
        return f"mpbs{j}"

    def pair_nic_ip(self, j: int) -> str:
        return f"192.168.220.{11 + j}"

    def pair_switch_port(self, j: int) -> str:
        return f"mpbsp{j}"

    pair_switch = "mpbsw"
    pair_target_ip = "192.168.220.2"

    @property
    def pair_portal(self) -> str:
        return f"{self.pair_target_ip}:{ISCSI_PORT}"

    # --- persistence ------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


def load_state(path: str = STATE_FILE) -> dict[str, Any] | None:
    """The state written by the guest setup, or None outside a lab guest."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def tgt_wwid(scsi_id: str) -> str:
    """The multipath WWID the initiator will see for a tgt LUN.

    tgt builds the LUN's NAA 6 designator (VPD page 0x83) from the LUN's
    ``scsi_id`` string: 16 zero-padded nibbles ``6000...0`` followed by one
    nibble per character of scsi_id (non-hex characters become 0). With a
    16-hex-digit scsi_id the designator is ``6`` + 15 zeros + scsi_id, the
    kernel shows ``naa.<that>`` in /sys/block/sdX/device/wwid and multipath's
    WWID (udev ID_SERIAL) is ``3`` + the same 32 hex digits.
    Verified against real tgt in the guest by test_lab_smoke.
    """
    if len(scsi_id) != 16 or any(c not in "0123456789abcdef" for c in scsi_id):
        raise ValueError(f"scsi_id must be 16 lowercase hex digits: {scsi_id!r}")
    return "36" + "0" * 15 + scsi_id
