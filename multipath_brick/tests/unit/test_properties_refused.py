"""ConnectionProperties.from_dict refusing what it cannot use, named by key.

Hand-written bad dicts first (and how the error and ``to_dict`` round-trip),
then arbitrary input (hypothesis): a value is parsed or refused cleanly, and
the password is never in the error.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from os_brick import exception as brick_exception

from multipath_brick import ConnectionProperties
from multipath_brick.exception import InvalidConnectionProperties, MultipathBrickError
from multipath_brick.tests.unit.test_properties import parse, rejected

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
