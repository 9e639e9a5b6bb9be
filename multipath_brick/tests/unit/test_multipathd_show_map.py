"""``multipathd show map <map> json``: the lab's answers, the parser and the fake.

``lab/capture_mapshow.sh`` asked, at the same moments, the host-wide question
the library used to ask (``show paths raw format "%d %w %m %t %T"``) and the
question about one map (``tests/fixtures/multipathd_show_map_sequence.txt``):
every path up, one portal dropped, a disk deleted and scanned again, every
portal dropped, and maps that do not exist. The parser must give the verdict
the old question gave at each moment, and the fake, brought to each moment,
must answer what multipathd answered.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from multipath_brick import verbs as v
from multipath_brick.multipath.control import Multipath, map_usable, usable_wwids
from multipath_brick.testing import FakeHost, FakeTarget
from multipath_brick.testing.multipath_json import lun_hex
from multipath_brick.tests.unit.test_fake_host_fixtures import (
    FIXTURES,
    IQN,
    LAB_WWID,
    PORTALS,
    Capture,
    captures,
    host_numbers,
    node,
)

SEQUENCE = "multipathd_show_map_sequence.txt"
MIB = 1 << 20


def cases() -> dict[str, list[Capture]]:
    """The sequence's blocks by case (the first word of each ``# NOTE``)."""
    blocks = iter(captures(SEQUENCE))
    out: dict[str, list[Capture]] = {}
    case = ""
    for line in (FIXTURES / SEQUENCE).read_text().splitlines():
        if line.startswith("# NOTE:"):
            case = line.split()[3].rstrip(":")
            out[case] = []
        elif line.startswith("# $ "):
            out[case].append(next(blocks))
    return out


def pairs() -> Iterator[tuple[str, Capture, Capture]]:
    """(case, show paths, show map) asked one right after the other."""
    for case, blocks in cases().items():
        for first, second in itertools.pairwise(blocks):
            if "show paths" in first.command and "show map" in second.command:
                yield case, first, second


def path_states(answer: str) -> dict[str, tuple[str, str]]:
    shown = json.loads(answer)["map"]
    return {p["dev"]: (p["dm_st"], p["chk_st"]) for g in shown["path_groups"] for p in g["paths"]}


def shape(value: Any) -> Any:
    """The keys of a JSON answer, nested, in order; values dropped."""
    if isinstance(value, dict):
        return [(key, shape(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def test_the_sequence_has_every_case() -> None:
    assert list(cases()) == ["up", "one", "adding", "all", "missing"]
    assert {case for case, _, _ in pairs()} == {"up", "one", "adding", "all"}


@pytest.mark.parametrize(("case", "paths", "shown"), list(pairs()))
def test_one_map_answers_as_every_path_did(case: str, paths: Capture, shown: Capture) -> None:
    assert shown.exit_code == 0
    before = LAB_WWID in usable_wwids(paths.stdout)
    assert map_usable(shown.stdout, LAB_WWID) is before is (case != "all")
    # The paths in the map's table, as the host-wide table showed them. While a
    # disk came back (adding) the map took it between the two questions.
    rows = {f[0]: (f[3], f[4]) for f in map(str.split, paths.stdout.splitlines())}
    states = path_states(shown.stdout)
    assert rows == states if case != "adding" else rows.items() <= states.items()


def test_a_map_is_asked_for_by_dm_number_or_name() -> None:
    up = cases()["up"]
    by_dm, by_name = (c for c in up if "show map" in c.command)
    assert by_dm.command.split()[3].startswith("dm-")
    assert by_name.command.split()[3] == LAB_WWID
    assert by_dm.stdout == by_name.stdout


def test_another_wwid_or_a_broken_answer_is_not_usable() -> None:
    up = next(c for c in cases()["up"] if "show map" in c.command)
    assert map_usable(up.stdout, LAB_WWID)
    # device-mapper hands a freed dm-N to the next map: the uuid must be ours.
    assert not map_usable(up.stdout, "36001405" + "0" * 25)
    for broken in ("", "fail\n", "ok\n", "{}", '{"map": {"uuid": 3}}', up.stdout[:200]):
        assert not map_usable(broken, LAB_WWID)


def test_a_missing_map_fails() -> None:
    for missing in cases()["missing"]:
        assert (missing.exit_code, missing.stdout, missing.stderr) == (1, "fail\n", "")


def test_lun_hex_is_the_sam_lun() -> None:
    assert lun_hex(1) == "0x0001000000000000"  # as the lab printed LUN 1
    assert lun_hex(0) == "0x0000000000000000"
    assert lun_hex(0x4123) == "0x4123000000000000"


# --- the fake, brought to each moment ------------------------------------------------


@pytest.fixture
def lab() -> Iterator[tuple[FakeHost, str]]:
    """The lab's map: LUN 1 over 4 portals, one map of 4 paths."""
    with FakeHost(time_scale=0) as host:
        target: FakeTarget = host.add_target(
            IQN, PORTALS, luns={1: 64 * MIB}, chap=("mpbuser", "mpb-secret-123")
        )
        for portal in PORTALS:
            node(host, portal)
            assert host.run(v.NodeLogin(portal, IQN, "default"), timeout=30).ok
        for h in host_numbers(host).values():
            host.write(v.ScsiScan(h, 0, 0, 1), timeout=30)
        wwid = target.wwid(1)
        assert host.run(v.MultipathAddWwid(wwid, "sda"), timeout=30).ok
        assert host.run(v.MultipathdAddPath("sda"), timeout=30).ok
        assert host.maps() == {wwid: ["sda", "sdb", "sdc", "sdd"]}
        yield host, wwid


def real(case: str) -> str:
    """The lab's last answer about the map in that case."""
    return [c for c in cases()[case] if "show map" in c.command][-1].stdout


@pytest.mark.parametrize(("case", "down"), [("up", ()), ("one", (1,)), ("all", (0, 1, 2, 3))])
def test_the_fake_answers_as_multipathd(
    lab: tuple[FakeHost, str], case: str, down: tuple[int, ...]
) -> None:
    host, wwid = lab
    for k in down:
        host.set_unreachable(PORTALS[k], True)
    result = host.run(v.MultipathdShowMap("dm-0"), timeout=30)
    assert result.exit_code == 0
    ours, theirs = json.loads(result.stdout), json.loads(real(case))
    assert shape(ours) == shape(theirs)
    for key in ("name", "uuid"):
        assert ours["map"][key] == wwid and theirs["map"][key] == LAB_WWID
    for key in ("sysfs", "paths", "dm_st", "write_prot"):
        assert ours["map"][key] == theirs["map"][key], key
    assert path_states(result.stdout) == path_states(real(case))
    assert [g["paths"][0]["lun_hex"] for g in ours["map"]["path_groups"]] == [
        g["paths"][0]["lun_hex"] for g in theirs["map"]["path_groups"]
    ]
    # The text too: multipathd's own layout, not a JSON library's.
    assert [len(line) - len(line.lstrip()) for line in result.stdout.splitlines()] == [
        len(line) - len(line.lstrip()) for line in real(case).splitlines()
    ]
    assert Multipath(host).usable(wwid, "dm-0") is (case != "all")
    assert Multipath(host).usable(wwid, wwid) is (case != "all")


def test_the_fake_takes_a_disk_back_as_multipathd_did(lab: tuple[FakeHost, str]) -> None:
    host, wwid = lab
    host.write(v.ScsiDelete("sdd"), timeout=30)
    assert sorted(path_states(host.run(v.MultipathdShowMap(wwid), timeout=30).stdout)) == [
        "sda",
        "sdb",
        "sdc",
    ]
    (h,) = (n for sid, n in host_numbers(host).items() if sid == 4)
    host.write(v.ScsiScan(h, 0, 0, 1), timeout=30)
    answer = host.run(v.MultipathdShowMap(wwid), timeout=30).stdout
    assert path_states(answer) == path_states(real("adding"))
    assert Multipath(host).usable(wwid, "dm-0")


def test_the_fake_fails_for_a_map_it_has_not(lab: tuple[FakeHost, str]) -> None:
    host, wwid = lab
    for missing, name in zip(cases()["missing"], ("dm-99", "3" + "f" * 32), strict=True):
        result = host.run(v.MultipathdShowMap(name), timeout=30)
        assert (result.exit_code, result.stdout, result.stderr) == (
            missing.exit_code,
            missing.stdout,
            missing.stderr,
        )
        assert not Multipath(host).usable(wwid, name)
