"""ConnectionProperties.from_dict against the shapes real Cinder drivers send."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from os_brick import exception as brick_exception

from multipath_brick import ConnectionProperties, Target
from multipath_brick.exception import InvalidConnectionProperties, MultipathBrickError

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


# --- rejections ----------------------------------------------------------------------


PLURAL = {
    "target_portals": ["a", "b"],
    "target_iqns": ["iqn.2024-01.ex:a", "iqn.2024-01.ex:b"],
    "target_luns": [1, 2],
}


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"target_portals": "a"}, "target_portals", "expected a list"),
        ({"target_iqns": {"a": 1}}, "target_iqns", "expected a list"),
        ({"target_portals": []}, "target_portals", "is empty"),
        ({"target_portal": ["a", "b"]}, "target_portal", "got a list"),
        ({"target_portals": ["a", None]}, "target_portals[1]", "missing"),
        ({"target_portals": ["a", ""]}, "target_portals[1]", "missing"),
        ({"target_iqns": ["iqn.2024-01.ex:a", None]}, "target_iqns[1]", "missing"),
        ({"target_portals": ["a:99999", "b"]}, "target_portals[0]", "invalid port"),
        ({"target_portals": ["a:0", "b"]}, "target_portals[0]", "invalid port"),
        ({"target_portals": ["a:http", "b"]}, "target_portals[0]", "invalid port"),
        ({"target_luns": [-1, 2]}, "target_luns[0]", "non-negative integer"),
        ({"target_luns": [1.5, 2]}, "target_luns[0]", "non-negative integer"),
        ({"target_luns": ["x", 2]}, "target_luns[0]", "non-negative integer"),
        ({"target_luns": [True, 2]}, "target_luns[0]", "non-negative integer"),
        ({"addressing_mode": "SAM4"}, "addressing_mode", "unknown mode"),
        ({"target_portals": ["a b", "b"]}, "target_portals[0]", "whitespace"),
        ({"target_portals": ["-oops", "b"]}, "target_portals[0]", "must not start with '-'"),
        (
            {"target_iqns": ["iqn.2024-01.ex:a\n", "iqn.2024-01.ex:b"]},
            "target_iqns[0]",
            "control characters",
        ),
        (
            {"target_iqns": ["--login", "iqn.2024-01.ex:b"]},
            "target_iqns[0]",
            "must not start with '-'",
        ),
        ({"target_portals": ["2001:db8::1:3260", "b"]}, "target_portals[0]", "ambiguous IPv6"),
        ({"target_portals": ["[2001:db8::1", "b"]}, "target_portals[0]", "malformed"),
        ({"target_portals": ["[nothex]:3260", "b"]}, "target_portals[0]", "invalid IPv6"),
        ({"auth_method": "kerberos"}, "auth_method", "unsupported method"),
        ({"auth_method": "CHAP", "auth_username": "u"}, "auth_password", "required"),
    ],
)
def test_rejections_name_the_key(change: dict[str, Any], key: str, words: str):
    error = rejected({**PLURAL, **change})
    assert error.key == key
    assert words in error.reason
    assert key in str(error)


def test_singular_rejections():
    assert rejected({"target_iqn": "iqn.2024-01.ex:x"}).key == "target_portal"
    assert rejected({"target_portal": "p"}).key == "target_iqn"
    assert rejected({"target_portal": "p", "target_iqn": "i", "target_lun": "-1"}).key == (
        "target_lun"
    )
    assert rejected({"target_iqns": ["iqn.2024-01.ex:x"]}).key == "target_portals"
    assert rejected({"target_portal": "p", "target_iqn": "i", "target_lun": [1, 2]}).key == (
        "target_lun"
    )
    assert rejected(["not", "a", "dict"]).key == "data"
    assert rejected(None).key == "data"


def test_sam_flat_space_overflow_rejected():
    error = rejected({**PLURAL, "target_luns": [16384, 1], "addressing_mode": "SAM2"})
    assert error.key == "target_luns[0]"


def test_error_is_value_error_and_brick_exception_and_rebuildable():
    error = rejected({**PLURAL, "target_luns": [-1, 2]})
    assert isinstance(error, ValueError)
    assert isinstance(error, brick_exception.BrickException)
    assert isinstance(error, MultipathBrickError)
    args: Any = error.args  # privsep rebuilds exceptions as cls(*args)
    rebuilt = type(error)(*args)
    assert str(rebuilt) == str(error)


def test_to_dict_round_trips_and_is_os_brick_style():
    props = parse(
        {
            **PLURAL,
            "addressing_mode": "SAM2",
            "auth_method": "CHAP",
            "auth_username": "u",
            "auth_password": "pw",
            "volume_id": "v",
        }
    )
    data = props.to_dict()
    assert data["target_portals"] == ["a:3260", "b:3260"]
    assert data["target_portal"] == "a:3260"
    assert ConnectionProperties.from_dict(data) == props
    discovery = parse({"target_portal": "p", "target_iqn": "iqn.2024-01.ex:x", "target_lun": 4})
    assert ConnectionProperties.from_dict(discovery.to_dict()) == discovery


# --- properties over arbitrary input ------------------------------------------------

SECRET = "Zq9-SECRET-PW-7k"
json_scalars = st.none() | st.booleans() | st.integers(-5, 70000) | st.text(max_size=12)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=8)
portal_like = st.sampled_from(
    ["10.0.0.1", "10.0.0.2:3260", "[2001:db8::1]:3260", "fe80::1", "host-a", "-x", "a b", ""]
)
KEYS = [
    "target_portal",
    "target_iqn",
    "target_lun",
    "target_portals",
    "target_iqns",
    "target_luns",
    "addressing_mode",
    "auth_method",
    "auth_username",
    "discovery_auth_method",
    "discovery_auth_username",
    "encrypted",
    "volume_id",
    "access_mode",
    "qos_specs",
]
key_values = st.dictionaries(
    st.sampled_from(KEYS),
    json_values
    | portal_like
    | st.lists(portal_like, min_size=1, max_size=3)
    | st.sampled_from(["CHAP", "chap", "SAM2", "iqn.2024-01.ex:x", "1"]),
    max_size=10,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=key_values, secret_keys=st.sets(st.sampled_from(["auth_", "discovery_auth_"])))
def test_arbitrary_dicts_round_trip_or_raise_cleanly(data, secret_keys):
    for prefix in secret_keys:
        data[prefix + "password"] = SECRET
    try:
        props = ConnectionProperties.from_dict(data)
    except InvalidConnectionProperties as error:
        assert SECRET not in str(error)
        assert SECRET not in repr(error)
        assert all(SECRET not in str(arg) for arg in error.args)
        return
    assert ConnectionProperties.from_dict(props.to_dict()) == props
    assert SECRET not in repr(props)
    assert SECRET not in str(props)


@settings(max_examples=200, deadline=None)
@given(
    portals=st.lists(portal_like, min_size=1, max_size=5),
    iqn=st.text(min_size=1, max_size=20),
    luns=st.lists(st.integers(0, 20000) | st.from_regex(r"[0-9]{1,4}", fullmatch=True)),
    mode=st.sampled_from([None, "SAM", "SAM2", "SAM3-flat", "transparent"]),
)
def test_plural_lists_either_parse_in_order_or_raise(portals, iqn, luns, mode):
    data: dict[str, Any] = {
        "target_portals": portals,
        "target_iqns": [iqn] * len(portals),
        "target_luns": luns,
    }
    if mode is not None:
        data["addressing_mode"] = mode
    try:
        props = ConnectionProperties.from_dict(data)
    except InvalidConnectionProperties:
        return
    assert 1 <= len(props.targets) <= min(len(portals), len(luns) or len(portals))
    assert ConnectionProperties.from_dict(props.to_dict()) == props
