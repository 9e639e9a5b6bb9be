"""os-brick's real factory builds our connector on every architecture map, and back."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from os_brick.initiator import connector as brick_connector
from os_brick.initiator.connectors import iscsi as brick_iscsi

from multipath_brick import ISCSIMultipathConnector, osbrick
from multipath_brick.exception import OsBrickMapsError
from multipath_brick.testing import FakeHost

from .conftest import FAST, GIB, IQN, PORTALS, plural

# Every architecture name os-brick's get_connector_mapping() tells apart, and the
# map each one selects (os_brick/initiator/__init__.py, connector.py).
ARCHES = {
    None: "_connector_mapping_linux",  # this machine's platform.machine()
    "x86_64": "_connector_mapping_linux",
    "aarch64": "_connector_mapping_linux",
    "s390": "_connector_mapping_linux_s390x",
    "s390x": "_connector_mapping_linux_s390x",
    "ppc64": "_connector_mapping_linux_ppc64",
    "ppc64le": "_connector_mapping_linux_ppc64",
}


@pytest.fixture
def installed() -> Iterator[None]:
    osbrick.install()
    try:
        yield
    finally:
        osbrick.uninstall()


def build(host: FakeHost, tmp_path: Path, arch: str | None, **kwargs: Any) -> Any:
    # As nova and cinder call it; our keyword arguments pass through **kwargs.
    return brick_connector.InitiatorConnector.factory(
        "ISCSI",
        "sudo nova-rootwrap /etc/nova/rootwrap.conf",
        use_multipath=True,
        device_scan_attempts=3,
        arch=arch,
        host=host,
        settings=FAST,
        lock_path=str(tmp_path / "locks"),
        **kwargs,
    )


def test_the_maps_are_the_ones_this_os_brick_has() -> None:
    for arch, name in ARCHES.items():
        assert brick_connector.get_connector_mapping(arch) is getattr(brick_connector, name)
    assert set(ARCHES.values()) == set(osbrick.MAPS)


@pytest.mark.parametrize("arch", list(ARCHES))
def test_factory_builds_ours_on_every_map_and_os_brick_after_uninstall(
    arch: str | None, host: FakeHost, tmp_path: Path
) -> None:
    osbrick.install()
    try:
        assert osbrick.installed()
        ours = build(host, tmp_path, arch)
        assert type(ours) is ISCSIMultipathConnector
        assert ours.use_multipath is True
        assert ours.device_scan_attempts == 3
        lower = brick_connector.InitiatorConnector.factory(
            "iscsi", None, arch=arch, host=host, lock_path=str(tmp_path)
        )
        assert type(lower) is ISCSIMultipathConnector
    finally:
        osbrick.uninstall()
    assert not osbrick.installed()
    theirs = brick_connector.InitiatorConnector.factory("ISCSI", None, arch=arch)
    assert type(theirs) is brick_iscsi.ISCSIConnector


def test_a_connector_from_the_factory_attaches_and_detaches(
    installed: None, host: FakeHost, tmp_path: Path
) -> None:
    conn = build(host, tmp_path, None)
    info = conn.connect_volume(plural())
    assert info["path"].startswith("/dev/dm-")
    assert len(host.sessions()) == len(PORTALS)
    conn.disconnect_volume(plural(), info)
    assert host.leftovers() == {}


def test_iser_stays_with_os_brick(installed: None) -> None:
    for arch in ("x86_64", "ppc64le"):
        theirs = brick_connector.InitiatorConnector.factory("ISER", None, arch=arch)
        assert type(theirs) is brick_iscsi.ISCSIConnector


def test_install_and_uninstall_twice_are_harmless() -> None:
    osbrick.install()
    osbrick.install()
    assert osbrick.installed()
    osbrick.uninstall()
    osbrick.uninstall()
    assert not osbrick.installed()
    for name in osbrick.MAPS:
        assert getattr(brick_connector, name)["ISCSI"] == osbrick.OS_BRICK_ISCSI


# An os-brick of another layout is stood in for by changing os-brick's module (not
# ours): a map added, a map gone, an iSCSI entry someone else already replaced.
@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda m, p: p.setattr(m, "_connector_mapping_linux_riscv64", {}, raising=False),
            "its maps are",
        ),
        (lambda m, p: p.delattr(m, "_connector_mapping_linux_ppc64"), "its maps are"),
        (
            lambda m, p: m._connector_mapping_linux_s390x.__setitem__("ISCSI", "vendor.Conn"),
            "_connector_mapping_linux_s390x['ISCSI'] is 'vendor.Conn'",
        ),
        (lambda m, p: m._connector_mapping_linux.pop("ISCSI"), "is None"),
    ],
)
def test_an_unknown_layout_is_refused_and_nothing_changes(
    change: Any, words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in osbrick.MAPS:
        monkeypatch.setattr(brick_connector, name, dict(getattr(brick_connector, name)))
    change(brick_connector, monkeypatch)
    before = {n: dict(v) for n, v in vars(brick_connector).items() if n.startswith("_connector_")}
    with pytest.raises(OsBrickMapsError) as info:
        osbrick.install()
    assert words in info.value.reason
    assert "os-brick 7." in str(info.value)
    after = {n: dict(v) for n, v in vars(brick_connector).items() if n.startswith("_connector_")}
    assert after == before


def test_run_installs_when_the_program_imports_os_brick(tmp_path: Path) -> None:
    # A fresh interpreter, as a service started through multipath-brick-dropin: os-brick
    # is not imported by run() itself, only by the program, and the factory then
    # hands out our class on every map.
    program = tmp_path / "service"
    program.write_text(
        textwrap.dedent(
            """
            import sys
            assert "os_brick.initiator.connector" not in sys.modules
            from os_brick.initiator import connector
            for arch in ("x86_64", "s390x", "ppc64le"):
                print(connector.get_connector_mapping(arch)["ISCSI"])
            print(sys.argv[1:])
            """
        )
    )
    code = "import sys; from multipath_brick import osbrick; sys.exit(osbrick.run(sys.argv[1:]))"
    done = subprocess.run(  # noqa: S603 - our own interpreter and test program
        [sys.executable, "-c", code, str(program), "--config-file", "x.conf"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = done.stdout.splitlines()
    assert lines == [osbrick.CONNECTOR] * 3 + ["['--config-file', 'x.conf']"]


def test_run_without_a_program_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert osbrick.run([]) == 2
    assert "usage: multipath-brick-dropin PROGRAM" in capsys.readouterr().err


def test_host_lun_sizes_unchanged(installed: None, host: FakeHost, tmp_path: Path) -> None:
    conn = build(host, tmp_path, "s390x")
    info = conn.connect_volume(plural(lun=2))
    assert conn.extend_volume(plural(lun=2)) == 2 * GIB
    conn.disconnect_volume(plural(lun=2), info)
    assert host.leftovers() == {}
    assert IQN
