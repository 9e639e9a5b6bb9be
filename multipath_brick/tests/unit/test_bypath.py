"""udev path_id's by-path names: no IPv6 brackets, LUNs >= 256 in hex; connector and fake."""

from __future__ import annotations

from pathlib import Path

import pytest
from os_brick.initiator import linuxscsi

from multipath_brick import ISCSIMultipathConnector
from multipath_brick.scsi.bypath import by_path, lun_part
from multipath_brick.testing import FakeHost

from .conftest import FAST, GIB, IQN


@pytest.mark.parametrize(
    ("lun", "part"),
    [
        (0, "lun-0"),
        (255, "lun-255"),
        (256, "lun-0x0100000000000000"),
        (16384 + 300, "lun-0x412c000000000000"),  # SAM2 LUN 300
        (16384 + 1, "lun-0x4001000000000000"),  # SAM3-flat LUN 1
        (0x12345, "lun-0x2345000100000000"),  # bits above 16 in the second group
    ],
)
def test_lun_part_as_path_id_formats_it(lun: int, part: str) -> None:
    assert lun_part(lun) == part


@pytest.mark.parametrize("lun", [0, 1, 255, 256, 16684, 0x12345, 0xFFFFFFFF])
def test_lun_part_agrees_with_os_brick(lun: int) -> None:
    # os-brick's _format_lun_id has path_id's rule too (for its by-path lookups).
    formatted = linuxscsi.LinuxSCSI(None)._format_lun_id(lun)
    assert lun_part(lun) == f"lun-{formatted}"


def test_by_path_drops_ipv6_brackets_and_skips_host_names() -> None:
    assert by_path("[2001:db8::1]:3260", IQN, 1) == (
        f"/dev/disk/by-path/ip-2001:db8::1:3260-iscsi-{IQN}-lun-1"
    )
    assert by_path("10.0.0.1:3260", IQN, 300) == (
        f"/dev/disk/by-path/ip-10.0.0.1:3260-iscsi-{IQN}-lun-0x012c000000000000"
    )
    assert by_path("array.example.com:3260", IQN, 1) is None


def test_get_volume_paths_finds_ipv6_and_sam2_links(tmp_path: Path) -> None:
    portals = ["[fd00::1]:3260", "[fd00::2]:3260"]
    with FakeHost(time_scale=0.05) as host:
        host.add_target(IQN, portals, luns={16384 + 300: GIB})
        connector = ISCSIMultipathConnector(
            host=host, use_multipath=True, settings=FAST, lock_path=str(tmp_path)
        )
        props = {
            "target_portals": ["fd00::1", "[fd00::2]:3260"],
            "target_iqns": [IQN, IQN],
            "target_luns": [300, 300],
            "addressing_mode": "SAM2",
        }
        assert connector.get_volume_paths(props) == []
        info = connector.connect_volume(props)
        assert connector.wait_for_pending(timeout=10)
        expected = [
            f"/dev/disk/by-path/ip-fd00::{n}:3260-iscsi-{IQN}-lun-0x412c000000000000"
            for n in (1, 2)
        ]
        assert connector.get_volume_paths(props) == expected
        # The links name the map's paths. (Not info["paths"]: a path still
        # logging in when the attach returned has no device in that snapshot.)
        dm = host.realpath(info["path"]).rsplit("/", 1)[1]
        slaves = set(host.list_dir(f"/sys/block/{dm}/slaves"))
        assert {host.realpath(p).rsplit("/", 1)[1] for p in expected} == slaves
        connector.disconnect_volume(props, info)
        assert connector.get_volume_paths(props) == []
        assert host.leftovers() == {}


def test_names_match_udev_s_links_captured_in_the_lab() -> None:
    # tests/fixtures/by_path_lun300.txt: udev's links for tgt LUN 300 (SAM2: 16684).
    capture = Path(__file__).parent.parent / "fixtures" / "by_path_lun300.txt"
    made = [line for line in capture.read_text().splitlines() if not line.startswith("#")]
    lab_iqn = "iqn.2024-01.org.multipath-brick.lab:target0"
    ours = [by_path(f"192.168.{100 + i}.2:3260", lab_iqn, 16384 + 300) for i in range(len(made))]
    assert [f"/dev/disk/by-path/{name}" for name in made] == ours
