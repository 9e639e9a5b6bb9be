"""The fake host's tables: an index answers what a scan of the table would.

The simulators once walked every session and disk of the host for each
lookup; the indexes that replace those walks must give the same entries in
the same order, whatever sequence of changes the host went through.
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from multipath_brick import verbs as v
from multipath_brick.testing import FakeHost, FakeTarget
from multipath_brick.testing.tables import LowestFree, Table
from multipath_brick.tests.unit import test_fake_host
from multipath_brick.tests.unit.test_fake_host import P1, P2, attach_path

host = test_fake_host.host
target = test_fake_host.target

#: (key, value) to set, or (key, None) to delete; values are (group, tag).
Change = tuple[int, tuple[int, int] | None]
changes = st.lists(
    st.tuples(
        st.integers(0, 7),
        st.none() | st.tuples(st.integers(0, 3), st.integers(0, 1)),
    ),
    max_size=60,
)


def _group(_: int, value: tuple[int, int]) -> int | None:
    # Tag 1 keeps an entry out of the index, as an orphan-only index does.
    group, tag = value
    return group if tag == 0 else None


@given(changes)
def test_an_index_finds_what_a_scan_finds_in_the_same_order(steps: list[Change]) -> None:
    table: Table[int, tuple[int, int]] = Table(group=_group)
    shadow: dict[int, tuple[int, int]] = {}
    for key, value in steps:
        if value is None:
            table.pop(key, None)
            shadow.pop(key, None)
        else:
            table[key] = value
            shadow[key] = value
        assert list(table.items()) == list(shadow.items())
        for group in range(4):
            scan = [k for k, val in shadow.items() if _group(k, val) == group]
            assert table.keys_under("group", group) == scan
            assert table.under("group", group) == [shadow[k] for k in scan]
            assert table.first_under("group", group) == (shadow[scan[0]] if scan else None)


def test_a_cleared_table_has_empty_indexes() -> None:
    table: Table[int, tuple[int, int]] = Table(group=_group)
    table.update({1: (0, 0), 2: (0, 0)})
    table.clear()
    assert table.keys_under("group", 0) == []
    table[2] = (0, 0)
    assert table.keys_under("group", 0) == [2]


@given(st.lists(st.integers(0, 20), max_size=80))
def test_lowest_free_gives_the_lowest_number_not_in_use(frees: list[int]) -> None:
    # Each step takes the lowest free number, then frees one (maybe unused).
    numbers = LowestFree()
    used: set[int] = set()
    for number in frees:
        lowest = min(set(range(len(used) + 1)) - used)
        assert numbers.peek() == lowest
        numbers.use(lowest)
        used.add(lowest)
        numbers.free(number)
        used.discard(number)


def test_lowest_free_after_a_number_used_out_of_turn() -> None:
    numbers = LowestFree()
    numbers.use(3)
    assert numbers.peek() == 0
    numbers.use(0)
    numbers.use(1)
    assert numbers.peek() == 2
    numbers.use(2)
    assert numbers.peek() == 4


def _scan(host: FakeHost, portal: str, lun: int) -> str:
    """Scan one more LUN on the session to ``portal``; the new disk's name."""
    sid = next(sid for sid, p, _, _ in host.sessions() if p == portal)
    device = host.realpath(f"/sys/class/iscsi_session/session{sid}/device")
    match = re.search(r"/host([0-9]+)/", device)
    assert match
    before = set(host.disks())
    host.write(v.ScsiScan(int(match.group(1)), 0, 0, lun), timeout=30)
    (new,) = set(host.disks()) - before
    return new


def test_a_new_disk_takes_the_lowest_free_sd_name(host: FakeHost, target: FakeTarget) -> None:
    assert host.add_local_disk(0) == "sda"
    assert attach_path(host, P1, 1) == "sdb"
    assert attach_path(host, P2, 1) == "sdc"
    host.write(v.ScsiDelete("sdb"), timeout=30)
    assert _scan(host, P1, 2) == "sdb"
    assert _scan(host, P2, 2) == "sdd"
    # A logout takes the session's disks (and only those): their names are free.
    assert host.run(v.NodeLogout(P2, test_fake_host.IQN, "default"), timeout=30).ok
    assert sorted(host.disks()) == ["sdb"]
    assert attach_path(host, P2, 2) == "sdc"
    assert _scan(host, P1, 1) == "sdd"


def test_a_disk_deleted_while_multipathd_is_stopped_leaves_its_map(
    host: FakeHost, target: FakeTarget
) -> None:
    # multipathd forgets its paths when it stops; the kernel still takes a
    # deleted disk out of the map that holds it.
    first, second = attach_path(host, P1, 1), attach_path(host, P2, 1)
    wwid = target.wwid(1)
    assert host.run(v.MultipathAddWwid(wwid, first), timeout=30).ok
    assert host.run(v.MultipathdAddPath(first), timeout=30).ok
    assert host.maps() == {wwid: [first, second]}
    host.set_multipathd_running(False)
    host.write(v.ScsiDelete(first), timeout=30)
    assert host.maps() == {wwid: [second]}
    host.set_multipathd_running(True)
    host.write(v.ScsiDelete(second), timeout=30)
    assert host.maps() == {wwid: []}
