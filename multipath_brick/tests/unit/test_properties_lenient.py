"""Leniency as os-brick's: its own unit tests' dicts, coercions, the detach side."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from multipath_brick import ConnectionProperties, Target
from multipath_brick.exception import InvalidConnectionProperties

FIXTURE = Path(__file__).parent.parent / "fixtures" / "os_brick_iscsi_properties.json"
OS_BRICK_DICTS: list[dict[str, Any]] = json.loads(FIXTURE.read_text())["dicts"]
IQN = "iqn.2010-10.org.openstack:volume-1"


@pytest.mark.parametrize("case", OS_BRICK_DICTS, ids=[c["source"][:60] for c in OS_BRICK_DICTS])
def test_every_dict_of_os_brick_iscsi_tests(case: dict[str, Any]) -> None:
    data = case["data"]
    kept = ConnectionProperties.for_cleanup(data)
    assert len(kept.targets) == case["cleanup"]
    if case["connect"] == "parses":
        props = ConnectionProperties.from_dict(data)
        assert props.targets == kept.targets
        return
    key, _, words = case["connect"].partition(": ")
    with pytest.raises(InvalidConnectionProperties) as info:
        ConnectionProperties.from_dict(data)
    assert info.value.key == key
    assert words in info.value.reason


def test_os_brick_fixture_covers_both_shapes_and_each_verdict() -> None:
    verdicts = {c["connect"] == "parses" for c in OS_BRICK_DICTS}
    assert verdicts == {True, False}
    assert len(OS_BRICK_DICTS) >= 15


@pytest.mark.parametrize(
    ("volume_id", "expected"), [(1, "1"), ("vol_id", "vol_id"), (None, None), ([1], None)]
)
def test_volume_id_int_is_taken_as_text(volume_id: object, expected: str | None) -> None:
    data = {"target_portal": "10.0.2.15", "target_iqn": IQN, "volume_id": volume_id}
    assert ConnectionProperties.from_dict(data).volume_id == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, True), (0, False), (True, True), (False, False), (None, False), ("yes", True)],
)
def test_encrypted_is_truth_as_os_brick_reads_it(value: object, expected: bool) -> None:
    # os-brick's decorators test connection_properties.get('encrypted') for truth.
    data = {"target_portal": "10.0.2.15", "target_iqn": IQN, "encrypted": value}
    assert ConnectionProperties.from_dict(data).encrypted is expected


def test_access_mode_of_another_type_is_ignored() -> None:
    data = {"target_portal": "10.0.2.15", "target_iqn": IQN, "access_mode": 7}
    assert ConnectionProperties.from_dict(data).access_mode is None


@pytest.mark.parametrize(
    ("lists", "count"),
    [
        ({"target_portals": ["a", "b", "c"], "target_iqns": [IQN, IQN]}, 2),
        ({"target_portals": ["a", "b"], "target_iqns": [IQN, IQN, IQN]}, 2),
        ({"target_portals": ["a", "b"], "target_iqns": [IQN, IQN], "target_luns": [1]}, 1),
    ],
)
def test_unequal_plural_lists_are_cut_to_the_shortest_with_a_warning(
    lists: dict[str, Any], count: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        props = ConnectionProperties.from_dict({"target_lun": 0, **lists})
    assert len(props.targets) == count
    assert "unequal length" in caplog.text
    assert "as os-brick does" in caplog.text


def test_empty_target_luns_means_target_lun_as_in_os_brick() -> None:
    props = ConnectionProperties.from_dict(
        {"target_portals": ["a"], "target_iqns": [IQN], "target_luns": [], "target_lun": 3}
    )
    assert props.targets == (Target("a:3260", IQN, 3),)


def test_cleanup_drops_paths_no_session_can_exist_for(caplog: pytest.LogCaptureFixture) -> None:
    data = {
        "target_portals": ["10.0.0.1:3260", "ip2:port2", "10.0.0.3"],
        "target_iqns": [IQN, IQN, IQN],
        "target_luns": [1, 1, "x"],
    }
    with caplog.at_level(logging.WARNING):
        props = ConnectionProperties.for_cleanup(data)
    assert props.targets == (Target("10.0.0.1:3260", IQN, 1),)
    assert "target_portals[1]" in caplog.text
    assert "target_luns[2]" in caplog.text
    with pytest.raises(InvalidConnectionProperties):
        ConnectionProperties.from_dict(data)


def test_cleanup_never_reads_credentials() -> None:
    data = {
        "target_portal": "10.0.0.1",
        "target_iqn": IQN,
        "auth_method": "CHAP",
        "auth_username": "u",
        "discovery_auth_method": "CHAP1",
    }
    props = ConnectionProperties.for_cleanup(data)
    assert props.chap is None
    assert props.discovery_chap is None


@pytest.mark.parametrize(
    ("iqn", "words"),
    [
        ("../../../tmp/x", "contains '/'"),
        ("..", "starts with '.'"),
        ("--login", "must not start with '-'"),
        ("iqn.2024-01.org.example:a b", "whitespace"),
    ],
)
def test_cleanup_still_refuses_a_hazard_and_says_why(iqn: str, words: str) -> None:
    data = {"target_portals": ["10.0.0.1"], "target_iqns": [iqn]}
    with pytest.raises(InvalidConnectionProperties) as info:
        ConnectionProperties.for_cleanup(data)
    assert info.value.key == "target_iqns[0]"
    assert words in info.value.reason


def test_cleanup_of_an_empty_dict_has_no_targets() -> None:
    props = ConnectionProperties.for_cleanup({})
    assert props.targets == ()
    assert props.to_dict() == {"encrypted": False}
