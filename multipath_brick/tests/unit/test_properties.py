"""ConnectionProperties.from_dict against the shapes real Cinder drivers send.

What it refuses, and arbitrary input, are in ``test_properties_refused.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from multipath_brick import ConnectionProperties, Target
from multipath_brick.exception import InvalidConnectionProperties

PURE_IQN = "iqn.2010-06.com.purestorage:flasharray.5a2b6d8e1f0c4d7a"


def parse(data: dict[str, Any]) -> ConnectionProperties:
    return ConnectionProperties.from_dict(data)


def rejected(data: object) -> InvalidConnectionProperties:
    with pytest.raises(InvalidConnectionProperties) as info:
        ConnectionProperties.from_dict(data)
    return info.value


# --- the three shapes, with values from real drivers ----------------------------------


def test_pure_plural_only_with_sam2():
    # Pure sends only plural keys (no target_portal at all) and SAM2 addressing.
    props = parse(
        {
            "target_portals": ["10.0.1.10:3260", "10.0.1.11:3260", "10.0.2.10:3260"],
            "target_iqns": [PURE_IQN] * 3,
            "target_luns": [300, 300, 300],
            "addressing_mode": "SAM2",
            "target_discovered": False,
            "discard": True,
            "wwn": "3624a93701c0d5ba4e9a94b3300011b4d",
        }
    )
    assert props.targets == (
        Target("10.0.1.10:3260", PURE_IQN, 16684),
        Target("10.0.1.11:3260", PURE_IQN, 16684),
        Target("10.0.2.10:3260", PURE_IQN, 16684),
    )
    assert not props.needs_discovery


def test_sam2_keeps_small_luns_and_sam3_flat_shifts_all():
    base = {"target_portals": ["p:3260"], "target_iqns": ["iqn.2024-01.ex:x"], "target_luns": [1]}
    assert parse({**base, "addressing_mode": "SAM2"}).targets[0].lun == 1
    assert parse({**base, "addressing_mode": "SAM3-flat"}).targets[0].lun == 16385
    assert parse({**base, "addressing_mode": "SAM"}).targets[0].lun == 1
    assert parse({**base, "addressing_mode": "transparent"}).targets[0].lun == 1


def test_netapp_both_forms_plural_wins_and_singular_not_prepended():
    # NetApp/Unity: one IQN per portal; the singular triple is *not* the first entry.
    props = parse(
        {
            "target_discovered": False,
            "target_portal": "192.168.20.12:3260",
            "target_iqn": "iqn.1992-08.com.netapp:sn.b1:vs.4",
            "target_lun": 2,
            "target_portals": ["192.168.10.11:3260", "192.168.20.12:3260"],
            "target_iqns": [
                "iqn.1992-08.com.netapp:sn.a1:vs.4",
                "iqn.1992-08.com.netapp:sn.b1:vs.4",
            ],
            "target_luns": [2, 2],
            "volume_id": "0c7c4e6a-3e1f-4a8f-9f5e-5a8b1f7f0b2d",
            "qos_specs": None,
            "access_mode": "rw",
            "encrypted": False,
        }
    )
    assert [t.portal for t in props.targets] == ["192.168.10.11:3260", "192.168.20.12:3260"]
    assert [t.iqn for t in props.targets] == [
        "iqn.1992-08.com.netapp:sn.a1:vs.4",
        "iqn.1992-08.com.netapp:sn.b1:vs.4",
    ]
    assert props.volume_id == "0c7c4e6a-3e1f-4a8f-9f5e-5a8b1f7f0b2d"
    assert props.access_mode == "rw"


def test_dell_sc_duplicated_portals_are_distinct_targets():
    # Dell SC: the same portal serves two IQNs (fault domains); both are paths.
    props = parse(
        {
            "target_portals": ["10.10.1.5:3260", "10.10.1.5:3260", "10.10.2.5:3260"],
            "target_iqns": [
                "iqn.2002-03.com.compellent:5000d31000fcbe43",
                "iqn.2002-03.com.compellent:5000d31000fcbe44",
                "iqn.2002-03.com.compellent:5000d31000fcbe45",
            ],
            "target_luns": [1, 1, 1],
        }
    )
    assert len(props.targets) == 3


def test_exact_duplicates_appear_once_in_order():
    props = parse(
        {
            "target_portals": ["a:3260", "b:3260", "a:3260"],
            "target_iqns": ["iqn.2024-01.ex:x", "iqn.2024-01.ex:x", "iqn.2024-01.ex:x"],
            "target_luns": [0, 0, 0],
        }
    )
    assert props.targets == (
        Target("a:3260", "iqn.2024-01.ex:x", 0),
        Target("b:3260", "iqn.2024-01.ex:x", 0),
    )


def test_powermax_luns_differ_per_portal():
    props = parse(
        {
            "target_portals": ["10.0.0.1:3260", "10.0.0.2:3260", "10.0.0.3:3260"],
            "target_iqns": [
                "iqn.1992-04.com.emc:600009700bca30a2",
                "iqn.2024-01.ex:b",
                "iqn.2024-01.ex:c",
            ],
            "target_luns": [4, 5, 6],
        }
    )
    assert [t.lun for t in props.targets] == [4, 5, 6]


def test_missing_target_luns_uses_target_lun_for_every_entry_and_string_lun():
    props = parse(
        {
            "target_portals": ["a", "b"],
            "target_iqns": ["iqn.2024-01.ex:x", "iqn.2024-01.ex:y"],
            "target_lun": "1",
        }
    )
    assert [t.lun for t in props.targets] == [1, 1]
    assert [t.portal for t in props.targets] == ["a:3260", "b:3260"]


def test_missing_both_luns_means_zero():
    props = parse({"target_portal": "10.0.0.1:3260", "target_iqn": "iqn.2024-01.ex:x"})
    assert props.targets[0].lun == 0


def test_singular_only_needs_discovery():
    # The Kaminario example of the oVirt Managed Block Storage page.
    props = parse(
        {
            "target_lun": 26,
            "target_iqn": "iqn.2009-01.com.kaminario:storage.k2.22612",
            "target_portal": "3.2.1.1:3260",
            "target_discovered": "True",
        }
    )
    assert props.targets == (
        Target("3.2.1.1:3260", "iqn.2009-01.com.kaminario:storage.k2.22612", 26),
    )
    assert props.needs_discovery


def test_portals_without_iqns_falls_back_to_singular_discovery():
    props = parse(
        {
            "target_portal": "10.0.0.1:3260",
            "target_iqn": "iqn.2024-01.ex:x",
            "target_lun": 3,
            "target_portals": ["10.0.0.1:3260", "10.0.0.2:3260"],
        }
    )
    assert props.targets == (Target("10.0.0.1:3260", "iqn.2024-01.ex:x", 3),)
    assert props.needs_discovery


def test_full_connection_info_is_unwrapped():
    props = parse(
        {
            "driver_volume_type": "iscsi",
            "data": {
                "target_portal": "10.0.0.1",
                "target_iqn": "iqn.2024-01.ex:x",
                "target_lun": 1,
            },
        }
    )
    assert props.targets[0].portal == "10.0.0.1:3260"
    assert "driver_volume_type" in str(rejected({"driver_volume_type": "rbd", "data": {}}))


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("10.0.0.1", "10.0.0.1:3260"),
        ("10.0.0.1:3261", "10.0.0.1:3261"),
        ("array-a.example.com", "array-a.example.com:3260"),
        ("[2001:db8::1]:3260", "[2001:db8::1]:3260"),
        ("[2001:DB8:0:0::1]", "[2001:db8::1]:3260"),
        ("2001:db8::1", "[2001:db8::1]:3260"),
        ("fe80::1", "[fe80::1]:3260"),
    ],
)
def test_portal_normalisation(raw: str, normalised: str):
    assert (
        parse({"target_portal": raw, "target_iqn": "iqn.2024-01.ex:x"}).targets[0].portal
        == normalised
    )


def test_target_address_and_port():
    target = parse(
        {"target_portal": "[2001:db8::1]:3261", "target_iqn": "iqn.2024-01.ex:x"}
    ).targets[0]
    assert (target.address, target.port) == ("2001:db8::1", 3261)


# --- CHAP ---------------------------------------------------------------------------


def test_chap_parsed_case_insensitive_and_never_shown():
    props = parse(
        {
            "target_portal": "p",
            "target_iqn": "iqn.2024-01.ex:x",
            "auth_method": "chap",
            "auth_username": "alice",
            "auth_password": "Sup3rSecret!",
            "discovery_auth_method": "CHAP",
            "discovery_auth_username": "disco",
            "discovery_auth_password": "D1scoSecret",
        }
    )
    assert props.chap is not None and props.chap.username == "alice"
    assert props.chap.password == "Sup3rSecret!"
    assert props.discovery_chap is not None and props.discovery_chap.username == "disco"
    for text in (repr(props), str(props), repr(props.chap), str(props.discovery_chap)):
        assert "Sup3rSecret!" not in text and "D1scoSecret" not in text


def test_mutual_chap():
    props = parse(
        {
            "target_portal": "p",
            "target_iqn": "iqn.2024-01.ex:x",
            "auth_method": "CHAP",
            "auth_username": "u",
            "auth_password": "OutSecret1",
            "auth_username_in": "target-user",
            "auth_password_in": "InSecret22",
        }
    )
    assert props.chap is not None and props.chap.mutual
    assert props.chap.username_in == "target-user"
    assert "InSecret22" not in repr(props) and "OutSecret1" not in repr(props)


@pytest.mark.parametrize("method", [None, "None", "none", ""])
def test_no_chap(method: str | None):
    props = parse({"target_portal": "p", "target_iqn": "iqn.2024-01.ex:x", "auth_method": method})
    assert props.chap is None


def test_chap_errors_do_not_echo_the_password():
    error = rejected(
        {
            "target_portal": "p",
            "target_iqn": "iqn.2024-01.ex:x",
            "auth_method": "CHAP",
            "auth_username": "u",
            "auth_password": "Secret\nWithNewline",
        }
    )
    assert error.key == "auth_password"
    assert "Secret" not in str(error) and "Secret" not in repr(error.args)
