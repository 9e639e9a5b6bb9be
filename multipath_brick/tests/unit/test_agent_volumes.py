"""ManagedVolumes on a FakeHost: the oVirt Managed Block Storage verbs and their edge cases."""

from __future__ import annotations

import glob
import platform
import socket
import sys
from collections.abc import Iterator

import pytest

from multipath_brick import ISCSIMultipathConnector, verbs
from multipath_brick.agent import ManagedVolumes, State
from multipath_brick.exception import (
    AuthenticationError,
    ConnectionMismatch,
    FlushError,
    InvalidConnectionProperties,
    InvalidSettings,
    InvalidVolumeRequest,
    UnsupportedVolumeType,
)
from multipath_brick.testing import FakeHost
from multipath_brick.tests.unit.agent_helpers import (
    KAMINARIO,
    KAMINARIO_IQN,
    KAMINARIO_PORTAL,
    VOL,
    agent,
    iscsi,
    logins,
    make_host,
    plural_info,
    sessions_of,
)
from multipath_brick.tests.unit.conftest import CHAP, FAST, IQN, PORTALS, plural


@pytest.fixture
def host() -> Iterator[FakeHost]:
    fake = make_host()
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def volumes(host: FakeHost, tmp_path) -> ManagedVolumes:
    return agent(host, str(tmp_path))


def test_connector_info_has_the_get_capabilities_keys(volumes):
    info = volumes.connector_info()
    assert info == {
        "initiator": "iqn.2004-10.com.example:fakehost",
        "ip": None,
        "platform": platform.machine(),
        "host": socket.gethostname(),
        "do_local_attach": False,
        "os_type": sys.platform,
        "multipath": True,
        "enforce_multipath": True,
    }


def test_plural_attach_answers_the_mapper_path_and_stores_it(volumes, host):
    answer = volumes.attach_volume(VOL, plural_info())
    wwid = host.targets[IQN].wwid(1)
    assert answer["vol_id"] == VOL
    assert answer["path"] == f"/dev/mapper/{wwid}"
    assert answer["attachment"]["multipath_id"] == wwid
    assert answer["attachment"]["path"].startswith("/dev/dm-")
    assert len(host.maps()[wwid]) == 4
    [row] = volumes.volumes_info()
    assert row["exists"] is True and row["state"] == "attached"
    assert row["path"] == answer["path"] and row["attachment"] == answer["attachment"]


def test_kaminario_singular_attach_and_detach(volumes, host):
    answer = volumes.attach_volume(VOL, KAMINARIO)
    wwid = host.targets[KAMINARIO_IQN].wwid(26)
    assert answer["path"] == f"/dev/mapper/{wwid}"
    assert sessions_of(host, KAMINARIO_IQN) == [(KAMINARIO_PORTAL, "default")]
    volumes.detach_volume(VOL)
    assert host.leftovers() == {}
    assert volumes.volumes_info() == []


def test_same_connection_again_answers_the_stored_attachment_without_logins(volumes, host):
    first = volumes.attach_volume(VOL, plural_info())
    before = logins(host)
    assert volumes.attach_volume(VOL, plural_info()) == first
    assert logins(host) == before


def test_another_connection_for_a_stored_id_is_refused_untouched(volumes, host):
    volumes.attach_volume(VOL, plural_info(lun=1))
    calls = len(host.calls)
    with pytest.raises(ConnectionMismatch) as raised:
        volumes.attach_volume(VOL, plural_info(lun=2))
    assert VOL in str(raised.value)
    assert len(host.calls) == calls
    assert volumes.store.get(VOL).state is State.ATTACHED


def test_another_password_is_another_connection(volumes):
    volumes.attach_volume(VOL, plural_info())
    with pytest.raises(ConnectionMismatch):
        volumes.attach_volume(VOL, plural_info(auth_password="other-secret"))


@pytest.mark.parametrize("kind", ["rbd", "fibre_channel", "nvmeof"])
def test_other_volume_types_are_unsupported_by_name(volumes, host, kind):
    with pytest.raises(UnsupportedVolumeType) as raised:
        volumes.attach_volume(VOL, {"driver_volume_type": kind, "data": {"name": "pool/vol"}})
    assert repr(kind) in str(raised.value)
    assert host.calls == [] and volumes.volumes_info() == []


@pytest.mark.parametrize(
    ("vol_id", "info", "field"),
    [
        ("", plural_info(), "vol_id"),
        ("a\nb", plural_info(), "vol_id"),
        ("x" * 300, plural_info(), "vol_id"),
        (VOL, {"data": plural()}, "connection_info.driver_volume_type"),
        (VOL, {"driver_volume_type": "iscsi"}, "connection_info.data"),
        (VOL, [], "connection_info"),
    ],
)
def test_bad_requests_name_the_field_and_touch_nothing(volumes, host, vol_id, info, field):
    with pytest.raises(InvalidVolumeRequest) as raised:
        volumes.attach_volume(vol_id, info)
    assert raised.value.field == field
    assert host.calls == [] and volumes.volumes_info() == []


def test_bad_connection_data_is_refused_before_the_store(volumes, host):
    with pytest.raises(InvalidConnectionProperties):
        volumes.attach_volume(VOL, iscsi({"target_portals": PORTALS, "target_iqns": ["..", IQN]}))
    assert host.calls == [] and volumes.volumes_info() == []


def test_a_single_path_connector_is_refused_naming_use_multipath(host, tmp_path):
    def single() -> ISCSIMultipathConnector:
        return ISCSIMultipathConnector(
            host=host, settings=FAST, lock_path=str(tmp_path / "locks"), use_multipath=False
        )

    store = str(tmp_path / "volumes.db")
    with pytest.raises(InvalidSettings) as given:
        ManagedVolumes(single(), store=store)
    assert given.value.field == "use_multipath"
    assert "/dev/mapper/<wwid>" in str(given.value)
    # Made on first use: refused there, before the store or the host is touched.
    lazy = ManagedVolumes(single, store=store)
    with pytest.raises(InvalidSettings, match="use_multipath"):
        lazy.attach_volume(VOL, plural_info())
    assert host.calls == [] and lazy.volumes_info() == []
    assert host.leftovers() == {}


def test_failed_attach_leaves_no_row_and_nothing_on_the_host(volumes, host):
    with pytest.raises(AuthenticationError):
        volumes.attach_volume(VOL, plural_info(auth_password="wrong"))
    assert volumes.volumes_info() == []
    assert host.leftovers() == {}


def log_out_everything(host: FakeHost) -> None:
    """A reboot stand-in: every session logged out behind the agent's back."""
    for _, portal, iqn, iface in host.sessions():
        host.run(verbs.NodeLogout(portal, iqn, iface), timeout=30)


def test_after_sessions_vanish_info_says_gone_and_attach_brings_every_path_back(volumes, host):
    first = volumes.attach_volume(VOL, plural_info())
    log_out_everything(host)
    assert host.sessions() == []
    [row] = volumes.volumes_info()
    assert row["exists"] is False
    again = volumes.attach_volume(VOL, plural_info())
    assert again["path"] == first["path"]
    assert sessions_of(host) == sorted((p, "default") for p in PORTALS)
    assert [p["state"] for p in again["attachment"]["paths"]] == ["active"] * 4
    assert volumes.volumes_info()[0]["exists"] is True
    assert volumes.store.get(VOL).attachment == again["attachment"]


def test_after_a_reboot_a_new_host_gets_every_stored_path(tmp_path):
    with make_host() as before:
        agent(before, str(tmp_path)).attach_volume(VOL, plural_info())
    with make_host() as rebooted:
        volumes = agent(rebooted, str(tmp_path))
        assert volumes.volumes_info()[0]["exists"] is False
        volumes.attach_volume(VOL, plural_info())
        assert sessions_of(rebooted) == sorted((p, "default") for p in PORTALS)
        volumes.detach_volume(VOL)
        assert rebooted.leftovers() == {}


def test_detach_removes_the_volume_and_the_row(volumes, host):
    volumes.attach_volume(VOL, plural_info())
    volumes.detach_volume(VOL)
    assert host.leftovers() == {} and volumes.volumes_info() == []


def test_detach_of_an_unknown_id_succeeds_without_touching_the_host(volumes, host):
    volumes.detach_volume("never-attached")
    assert host.calls == []


def test_a_failed_detach_keeps_the_row_for_a_retry(volumes, host):
    answer = volumes.attach_volume(VOL, plural_info())
    host.fail_flush(answer["attachment"]["multipath_id"])
    with pytest.raises(FlushError):
        volumes.detach_volume(VOL)
    row = volumes.store.get(VOL)
    assert row is not None and row.state is State.ATTACHED
    assert row.attachment == answer["attachment"]
    host.fail_flush(answer["attachment"]["multipath_id"], False)
    volumes.detach_volume(VOL)
    assert host.leftovers() == {} and volumes.volumes_info() == []


def test_volumes_info_filters_by_id_and_checks_usable_paths(volumes, host):
    volumes.attach_volume("a", plural_info(lun=1))
    volumes.attach_volume("b", plural_info(lun=2))
    assert [v["vol_id"] for v in volumes.volumes_info()] == ["a", "b"]
    assert [v["vol_id"] for v in volumes.volumes_info(["b", "unknown"])] == ["b"]
    for portal in PORTALS:
        host.set_unreachable(portal)
    # The map is still there; no path of it takes I/O.
    assert all(host.exists(v["path"]) for v in volumes.volumes_info())
    assert [v["exists"] for v in volumes.volumes_info()] == [False, False]


def test_paths_shows_each_path_as_the_host_has_it(volumes, host):
    volumes.attach_volume(VOL, plural_info())
    host.set_unreachable(PORTALS[1])
    table = volumes.paths(VOL)
    assert [(p["portal"], p["iface"], p["lun"]) for p in table] == [
        (p, "default", 1) for p in PORTALS
    ]
    states = {p["portal"]: (p["session"], p["multipathd"]) for p in table}
    assert states[PORTALS[0]] == ("LOGGED_IN", "active ready")
    assert states[PORTALS[1]][0] == "FAILED"
    assert states[PORTALS[1]][1] != "active ready"
    assert all(p["device"].startswith("sd") for p in table)
    with pytest.raises(InvalidVolumeRequest):
        volumes.paths("unknown")


def test_chap_secrets_never_reach_the_store_file(volumes, tmp_path):
    volumes.attach_volume(VOL, plural_info())
    volumes.attach_volume("k", KAMINARIO)
    for name in glob.glob(str(tmp_path / "volumes.db*")):
        with open(name, "rb") as f:
            assert CHAP[1].encode() not in f.read()
    stored = volumes.volumes_info([VOL])[0]["connection_info"]["data"]
    assert stored["auth_password"].startswith("hmac-sha256:")
    assert CHAP[1] not in repr(volumes.volumes_info())


def test_the_answered_mapper_path_exists_when_attach_answers(volumes, host):
    # udev makes /dev/mapper/<wwid> once it has processed the new map, which
    # can be after the connector returned (a map made with all its disks at
    # once is usable first): seen in the lab. vdsm opens the path at once.
    host.set_new_map_udev_wait(10.0)  # 0.2 s real
    answer = volumes.attach_volume(VOL, plural_info())
    assert host.realpath(answer["path"]) == answer["attachment"]["path"]
    wwid = answer["attachment"]["multipath_id"]
    assert host.realpath(f"/dev/disk/by-id/dm-uuid-mpath-{wwid}") == answer["attachment"]["path"]
    volumes.detach_volume(VOL)
