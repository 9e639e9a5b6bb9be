"""os-brick's contracts: encrypted links with os-brick's own decorators, multipath
fallbacks, transports, the public methods, check_valid_device, on the FakeHost."""

from __future__ import annotations

import inspect
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from os_brick import initiator as brick_initiator
from os_brick import utils as brick_utils
from os_brick.initiator.connectors import iscsi as brick_iscsi

from multipath_brick import ISCSIMultipathConnector
from multipath_brick.exception import DetachError, UnsupportedTransportError
from multipath_brick.testing import FakeHost
from multipath_brick.testing.faults import FaultyHost
from multipath_brick.verbs.blockdev import LINK_PREFIX

from .conftest import FAST, GIB, PORTALS, plural


def make(host: FakeHost, tmp_path: Path, **kwargs: Any) -> ISCSIMultipathConnector:
    return ISCSIMultipathConnector(
        host=host, settings=FAST, lock_path=str(tmp_path / "locks"), **kwargs
    )


def encryptor_replaces(host: FakeHost, link: str, crypt: str = "/dev/mapper/crypt-v") -> None:
    """What nova's and os-brick's encryptors do: ``ln -sf <crypt device> <link>``."""
    real = host.root + link
    os.unlink(real)
    os.symlink(crypt, real)


# --- encrypted volumes ------------------------------------------------------------------


def test_encrypted_attach_returns_os_brick_link_and_detach_removes_it(connector, host):
    info = connector.connect_volume(plural(encrypted=True))
    dm = f"/dev/dm-{info['multipath_id'] and host.realpath(info['path']).split('dm-')[1]}"
    # The very name os-brick's own helper gives the device, pointing at it.
    assert info["path"] == brick_utils._symlink_name_from_device_path(dm)
    assert info["path"].startswith(LINK_PREFIX + "+dev+dm-")
    assert host.realpath(info["path"]) == dm
    assert host.leftovers()["links"] == [info["path"].rsplit("/", 1)[1]]
    encryptor_replaces(host, info["path"])
    assert connector.check_valid_device(info["path"])
    connector.disconnect_volume(plural(encrypted=True), info)
    assert host.leftovers() == {}


def test_os_brick_undo_decorator_reads_our_result_back_to_the_device(connector, host):
    info = connector.connect_volume(plural(encrypted=True))
    seen: dict[str, Any] = {}

    @brick_utils.connect_volume_undo_prepare_result
    def extend(self: object, connection_properties: dict[str, Any]) -> None:
        seen.update(connection_properties)

    extend(None, {**plural(encrypted=True), "device_path": info["path"]})
    assert seen["device_path"] == host.realpath(info["path"])
    connector.disconnect_volume(plural(encrypted=True), info)
    assert host.leftovers() == {}


def test_unencrypted_and_zero_keep_the_real_device(connector, host):
    for flag in (False, 0, None):
        info = connector.connect_volume(plural(encrypted=flag))
        assert info["path"].startswith("/dev/dm-")
        connector.disconnect_volume(plural(encrypted=flag), info)
    assert host.leftovers() == {}


def test_encrypted_as_1_is_encrypted(connector, host):
    info = connector.connect_volume(plural(encrypted=1))
    assert info["path"].startswith(LINK_PREFIX)
    connector.disconnect_volume(plural(encrypted=1), info)
    assert host.leftovers() == {}


def test_a_link_that_cannot_be_made_detaches_and_raises(connector, host):
    # A directory where the link goes: ln -sfT refuses to replace it.
    for dm in range(4):
        os.makedirs(host.root + f"{LINK_PREFIX}+dev+dm-{dm}")
    with pytest.raises(Exception, match="cannot overwrite directory"):
        connector.connect_volume(plural(encrypted=True))
    for dm in range(4):
        os.rmdir(host.root + f"{LINK_PREFIX}+dev+dm-{dm}")
    assert host.leftovers() == {}


def test_a_volume_os_brick_attached_encrypted_is_detached_here(connector, host):
    # os-brick's device_info: its link as path, no 'paths' key.
    info = connector.connect_volume(plural())
    link = brick_utils._symlink_name_from_device_path(info["path"])
    os.symlink(info["path"], host.root + link)
    theirs = {"type": "block", "path": link, "scsi_wwn": info["scsi_wwn"]}
    theirs["multipath_id"] = info["multipath_id"]
    encryptor_replaces(host, link)
    connector.disconnect_volume(plural(encrypted=True), theirs)
    assert host.leftovers() == {}


def test_extend_of_an_encrypted_volume_goes_to_the_device(connector, host):
    info = connector.connect_volume(plural(lun=2, encrypted=True))
    props = {**plural(lun=2, encrypted=True), "device_path": info["path"]}
    assert connector.extend_volume(props) == 2 * GIB
    assert host.leftovers()["links"]  # extend keeps the link
    connector.disconnect_volume(plural(lun=2, encrypted=True), info)
    assert host.leftovers() == {}


def test_decorators_are_in_os_brick_order() -> None:
    # connect: the prepare decorator outermost; disconnect/extend: undo innermost,
    # wrapping the method itself (it introspects its signature).
    ours = ISCSIMultipathConnector
    for name in ("connect_volume", "disconnect_volume", "extend_volume"):
        method = getattr(ours, name)
        assert method.__wrapped__.__name__ == name
        theirs = inspect.signature(getattr(brick_iscsi.ISCSIConnector, name))
        assert list(inspect.signature(method).parameters) == list(theirs.parameters)


# --- transports ---------------------------------------------------------------------------


def test_iser_is_refused_clearly(host, tmp_path):
    with pytest.raises(UnsupportedTransportError, match="iSER is not supported"):
        make(host, tmp_path, transport="iser")


@pytest.mark.parametrize("kind", ["bnx2i", "cxgb4i", "qla4xxx", "be2iscsi", "iser"])
def test_offload_and_iser_ifaces_are_refused_clearly(host, tmp_path, kind):
    host.add_other_iface(f"{kind}.00:10:18:aa:bb:cc", transport=kind)
    with pytest.raises(UnsupportedTransportError) as info:
        make(host, tmp_path, transport=f"{kind}.00:10:18:aa:bb:cc")
    assert f"its transport is {kind}" in info.value.reason
    assert "os-brick's ISCSIConnector" in info.value.reason


def test_a_tcp_iface_is_honoured(host, tmp_path):
    host.add_other_iface("iface0", transport="tcp")
    connector = make(host, tmp_path, use_multipath=True, transport="iface0")
    assert connector.ifaces == ("iface0",)
    info = connector.connect_volume(plural())
    assert {p["iface"] for p in info["paths"]} == {"iface0"}
    assert {s[3] for s in host.sessions()} == {"iface0"}
    connector.disconnect_volume(plural(), info)
    assert host.leftovers() == {"ifaces": ["iface0"]}


def test_a_missing_iface_falls_back_to_default_with_os_brick_warning(host, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        connector = make(host, tmp_path, transport="nosuch")
    assert connector.ifaces == ("default",)
    assert "Falling back to default transport" in caplog.text


def test_an_iface_name_iscsiadm_must_not_get_is_refused(host, tmp_path):
    with pytest.raises(UnsupportedTransportError, match="not an iface name"):
        make(host, tmp_path, transport="-I")


def test_default_transport_runs_nothing(host, tmp_path):
    make(host, tmp_path)
    assert host.calls == []


# --- public methods and attributes as os-brick's --------------------------------------------


def test_defaults_and_attributes_are_os_brick_s(host, tmp_path):
    ours = make(host, tmp_path)
    assert ours.use_multipath is False  # os-brick's ISCSIConnector default
    assert ISCSIMultipathConnector.os_type == brick_iscsi.ISCSIConnector.os_type
    assert ISCSIMultipathConnector.os_type == brick_initiator.OS_TYPE_LINUX
    assert set(ISCSIMultipathConnector.supported_transports) <= set(
        brick_iscsi.ISCSIConnector.supported_transports
    )
    theirs = inspect.signature(brick_iscsi.ISCSIConnector.__init__).parameters
    mine = inspect.signature(ISCSIMultipathConnector.__init__).parameters
    names = ["driver", "execute", "use_multipath", "device_scan_attempts", "transport"]
    assert list(mine)[1:7] == list(theirs)[1:7] == ["root_helper", *names]
    assert [mine[n].default for n in names] == [theirs[n].default for n in names]


@pytest.mark.parametrize(
    "name", ["get_initiator", "supports_multipath", "check_multipath", "check_valid_device"]
)
def test_methods_have_os_brick_signatures(name):
    ours = inspect.signature(getattr(ISCSIMultipathConnector, name))
    theirs = inspect.signature(getattr(brick_iscsi.ISCSIConnector, name))
    assert list(ours.parameters) == list(theirs.parameters)


def test_get_initiator_and_supports_multipath(connector, host):
    assert connector.get_initiator() == "iqn.2004-10.com.example:fakehost"
    assert connector.supports_multipath() is True
    host.set_multipathd_running(False)
    assert connector.supports_multipath() is False


def test_check_multipath_as_os_brick(connector, host, caplog):
    assert connector.check_multipath(plural()) is True
    host.set_multipathd_running(False)
    with caplog.at_level(logging.WARNING):
        assert connector.check_multipath(plural()) is False
    assert "doesn't support multipathing" in caplog.text
    with pytest.raises(Exception, match="enforced"):
        connector.check_multipath(plural(enforce_multipath=True))


# --- check_valid_device --------------------------------------------------------------------


def test_check_valid_device_reads_a_block(connector, host):
    info = connector.connect_volume(plural())
    disk = info["paths"][0]["device"]
    assert disk.startswith("/dev/sd")
    assert connector.check_valid_device(info["path"])
    assert connector.check_valid_device(disk)
    reads = [c[0] for c in host.calls if c[0][0] == "dd"]
    assert reads[-1][1] == f"if={disk}" and "iflag=direct" in reads[-1]
    host.set_unreachable(info["paths"][0]["portal"], True)
    assert not connector.check_valid_device(disk)  # a dead sdX no longer passes
    assert connector.check_valid_device(info["path"])  # the map has other paths
    for portal in PORTALS:
        host.set_unreachable(portal, True)
    assert not connector.check_valid_device(info["path"])
    for portal in PORTALS:
        host.set_unreachable(portal, False)
    connector.disconnect_volume(plural(), info)
    assert not connector.check_valid_device(info["path"])
    assert host.leftovers() == {}


def test_check_valid_device_never_reads_a_local_disk(connector, host, caplog):
    local = host.add_local_disk()
    with caplog.at_level(logging.WARNING):
        assert not connector.check_valid_device(f"/dev/{local}")
    assert "not under an iSCSI session" in caplog.text
    assert not any(c[0][0] == "dd" for c in host.calls)
    assert not connector.check_valid_device("/etc/passwd")


# --- a forced detach ------------------------------------------------------------------------


def test_a_forced_detach_whose_flush_failed_leaves_no_map(host, tmp_path):
    # os-brick removes the paths, then `multipathd del map`: no map stays in
    # multipathd with no path.
    faulty = FaultyHost(host, kinds=("run",))
    connector = ISCSIMultipathConnector(
        host=faulty, use_multipath=True, settings=FAST, lock_path=str(tmp_path)
    )
    info = connector.connect_volume(plural())
    assert connector.wait_for_pending(timeout=10)
    faulty.arm(fail_at=1)
    connector.disconnect_volume(plural(), info, force=True, ignore_errors=True)
    assert faulty.injected is not None and faulty.injected.startswith("fail run multipath -f")
    assert any(c[0][:3] == ("multipathd", "del", "map") for c in host.calls)
    assert host.leftovers() == {}


def test_a_forced_detach_of_a_map_really_in_use_reports_it(connector, host):
    info = connector.connect_volume(plural())
    assert connector.wait_for_pending(timeout=10)
    host.fail_flush(None)
    with pytest.raises(DetachError) as raised:
        connector.disconnect_volume(plural(), info, force=True)
    assert "map in use" in str(raised.value)
    assert "remove map" in str(raised.value)
    host.fail_flush(None, False)
    connector.disconnect_volume(plural(), info)
    assert host.leftovers() == {}


def test_a_whole_connection_info_is_read_for_its_flags(connector, host):
    host.set_multipathd_running(False)
    wrapped = {"driver_volume_type": "iscsi", "data": plural(enforce_multipath=True)}
    with pytest.raises(Exception, match="enforce_multipath"):
        connector.connect_volume(wrapped)
    host.set_multipathd_running(True)
    wrapped = {"driver_volume_type": "iscsi", "data": plural(encrypted=True)}
    info = connector.connect_volume(wrapped)
    assert info["path"].startswith(LINK_PREFIX)
    connector.disconnect_volume(wrapped, info)
    assert host.leftovers() == {}
