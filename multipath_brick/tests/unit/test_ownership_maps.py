"""Ownership of multipath maps: which ``dm-N`` a name means, and whether it is ours.

On a FakeHost with a local disk, its multipath map and an LVM-like map beside
an attached iSCSI volume (the fixtures of :mod:`.test_ownership`).
"""

from __future__ import annotations

import os

import pytest

from multipath_brick import verbs as v
from multipath_brick.exception import InvalidArgument, NotOwnedError
from multipath_brick.tests.unit.test_ownership import Host, h  # noqa: F401
from multipath_brick.verbs import ownership


def test_multipath_map_by_name_or_kernel_name(h: Host) -> None:  # noqa: F811
    assert ownership.multipath_map(h.wwid, root=h.root) == [h.dm]
    assert ownership.multipath_map(h.dm, root=h.root) == [h.dm]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("local_map", "has a path that is not an iSCSI disk: sda is not under an iSCSI session"),
        ("lvm", "vg0-root (dm-1) is not a multipath map: dm uuid 'LVM-"),
        ("dm-0", "dm-0 has a path that is not an iSCSI disk"),
    ],
)
def test_foreign_maps_are_refused(h: Host, name: str, reason: str) -> None:  # noqa: F811
    map_name = getattr(h, name, name)
    for empty_ok in (False, True):
        with pytest.raises(NotOwnedError) as refused:
            ownership.multipath_map(map_name, root=h.root, empty_ok=empty_ok)
        assert refused.value.field == "map_name"
        assert reason in refused.value.reason


def test_a_map_with_one_foreign_path_is_refused(h: Host) -> None:  # noqa: F811
    mixed = h.fake.add_local_map("mixed", [h.disks[0], h.local])
    for name in ("mixed", mixed):
        with pytest.raises(NotOwnedError, match="sda is not under an iSCSI session"):
            ownership.multipath_map(name, root=h.root)


def test_a_name_is_checked_under_both_readings(h: Host) -> None:  # noqa: F811
    # A foreign map *named* like the iSCSI map's kernel name: multipath -f
    # would take the name, multipathd the minor number. Both are checked.
    h.fake.add_local_map(h.dm, [h.local])
    with pytest.raises(NotOwnedError, match="not an iSCSI disk"):
        ownership.multipath_map(h.dm, root=h.root)


def test_device_numbers_and_missing_maps(h: Host) -> None:  # noqa: F811
    with pytest.raises(InvalidArgument, match="device number") as refused:
        ownership.multipath_map("8:0", root=h.root)
    assert refused.value.field == "map_name"
    with pytest.raises(InvalidArgument, match="device number") as refused:
        ownership.iscsi_wwid("8:0", h.disks[0], root=h.root)
    assert refused.value.field == "wwid"
    with pytest.raises(FileNotFoundError):
        ownership.multipath_map("3600nothere", root=h.root)


def test_a_map_whose_paths_are_gone_may_be_flushed_not_resized(h: Host) -> None:  # noqa: F811
    for disk in h.disks:
        h.fake.write(v.ScsiDelete(disk), timeout=5)
    assert h.fake.maps() == {h.wwid: []}
    assert ownership.multipath_map(h.wwid, root=h.root, empty_ok=True) == [h.dm]
    with pytest.raises(NotOwnedError, match="has no path"):
        ownership.multipath_map(h.wwid, root=h.root)
    assert h.fake.run(v.MultipathFlush(h.wwid), timeout=5).ok


def _relink(on: Host, name: str, dm: str | None) -> None:
    """Point ``/dev/mapper/<name>`` at ``dm``, or remove it (udev behind)."""
    link = os.path.join(on.root, "dev", "mapper", name)
    os.unlink(link)
    if dm is not None:
        os.symlink(f"../{dm}", link)


def test_a_map_is_found_without_its_dev_mapper_link(h: Host) -> None:  # noqa: F811
    _relink(h, h.wwid, None)
    assert ownership.multipath_map(h.wwid, root=h.root) == [h.dm]


def test_a_dev_mapper_link_is_trusted_only_if_the_map_agrees(h: Host) -> None:  # noqa: F811
    # The link of the iSCSI map's name leads to the local disk's map: its own
    # dm/name says otherwise, so the name is looked up among every map.
    foreign = h.fake.realpath(f"/dev/mapper/{h.local_map}").rsplit("/", 1)[1]
    _relink(h, h.wwid, foreign)
    assert ownership.multipath_map(h.wwid, root=h.root) == [h.dm]
    # And the other way: the foreign map's name, its link leading to ours.
    _relink(h, h.local_map, h.dm)
    with pytest.raises(NotOwnedError, match="not an iSCSI disk"):
        ownership.multipath_map(h.local_map, root=h.root)
