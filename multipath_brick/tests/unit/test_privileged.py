"""The privileged entrypoints, run in process (as the daemon runs them).

Programs are shadowed on ``PATH`` by small shell scripts in a temporary
directory; they record their argv, so a test can prove that nothing ran.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import pathlib
import stat
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from oslo_config import cfg
from oslo_privsep import capabilities

from multipath_brick import privileged, verbs
from multipath_brick.exception import InvalidArgument
from multipath_brick.host import base
from multipath_brick.privileged import context, entrypoints

PORTAL = "10.0.0.1:3260"
IQN = "iqn.2010-10.org.openstack:volume-1"


def fake_program(bindir: pathlib.Path, name: str, body: str) -> None:
    """A shell script standing in for ``name``; it appends its argv to ``<bindir>/log``."""
    script = bindir / name
    script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{bindir}/log"\n{body}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def bindir(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """An otherwise empty ``PATH`` with recording fakes of every program the verbs run."""
    path = tmp_path / "bin"
    path.mkdir()
    for name in ("iscsiadm", "multipath", "multipathd"):
        fake_program(path, name, "exit 0")
    monkeypatch.setenv("PATH", str(path))
    return path


@pytest.fixture
def in_process() -> Iterator[None]:
    """Entrypoints run in this process, as they do inside the daemon."""
    context.set_client_mode(False)
    yield
    context.set_client_mode(True)


# --- the set of entrypoints ------------------------------------------------------------


def exported() -> dict[str, object]:
    return {
        name: obj
        for name, obj in vars(entrypoints).items()
        if not name.startswith("_") and context.is_entrypoint(obj)
    }


def test_one_entrypoint_per_verb_taking_its_fields_and_timeout() -> None:
    for verb in verbs.ALL_VERBS:
        function = getattr(entrypoints, verb.entrypoint)
        assert context.is_entrypoint(function), verb.entrypoint
        fields = [field.name for field in dataclasses.fields(verb)]  # type: ignore[arg-type]
        assert list(inspect.signature(function).parameters) == [*fields, "timeout"]


def test_no_other_entrypoint_than_the_verbs() -> None:
    assert set(exported()) == {verb.entrypoint for verb in verbs.ALL_VERBS}


def test_no_entrypoint_takes_an_argv_or_a_path() -> None:
    for name, function in exported().items():
        params = set(inspect.signature(function).parameters)  # type: ignore[arg-type]
        assert not params & {"argv", "cmd", "command", "path", "args"}, name


def test_context_keeps_only_cap_sys_admin_and_a_larger_pool() -> None:
    assert context.conf.capabilities == [capabilities.CAP_SYS_ADMIN]
    assert context.conf.thread_pool_size == privileged.THREAD_POOL_SIZE == 32
    assert context.pypath == "multipath_brick.privileged.context"
    assert context.cfg_section == "multipath_brick_privileged"


def test_importing_the_verbs_and_the_host_protocol_leaves_privsep_out() -> None:
    # FakeHost users import these; oslo.privsep drags in eventlet and its warning.
    code = (
        "import sys, multipath_brick.verbs, multipath_brick.host;"
        "sys.exit('oslo_privsep' in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_timed_out_matches_the_host_constant() -> None:
    assert entrypoints.TIMED_OUT == base.TIMED_OUT


def test_helper_command_comes_from_the_root_helper() -> None:
    cmd = privileged.helper_command("sudo cinder-rootwrap /etc/cinder/rootwrap.conf", euid=1000)
    assert cmd[:4] == ["sudo", "cinder-rootwrap", "/etc/cinder/rootwrap.conf", "privsep-helper"]
    assert privileged.helper_command(None, euid=1000)[:2] == ["sudo", "privsep-helper"]


def test_root_starts_the_daemon_with_its_own_interpreter_and_no_root_helper() -> None:
    cmd = privileged.helper_command("sudo cinder-rootwrap /etc/cinder/rootwrap.conf", euid=0)
    assert cmd[:3] == [sys.executable, "-m", "multipath_brick.privsep_daemon"]
    assert "sudo" not in cmd


def test_privsep_appends_our_context_and_socket_to_the_helper_command() -> None:
    cfg.CONF.set_override("helper_command", "sudo privsep-helper", group=privileged.CFG_SECTION)
    try:
        assert context.helper_command("/tmp/d/privsep.sock") == [
            "sudo",
            "privsep-helper",
            "--privsep_context",
            "multipath_brick.privileged.context",
            "--privsep_sock_path",
            "/tmp/d/privsep.sock",
        ]
    finally:
        cfg.CONF.clear_override("helper_command", group=privileged.CFG_SECTION)


# --- validation inside the entrypoint ------------------------------------------------

INJECTIONS = [
    ("node_login", ("-o", IQN, "default"), "portal"),
    ("node_login", ("--login", IQN, "default"), "portal"),
    ("node_new", (f"{PORTAL} -o delete", IQN, "default", None), "portal"),
    ("node_new", ("../../etc:3260", IQN, "default", None), "portal"),
    ("node_new", (PORTAL, IQN, "mpb-eth1", "1 -o delete"), "tpgt"),
    ("node_new", (PORTAL, IQN, "mpb-eth1", 65536), "tpgt"),
    ("node_new", (PORTAL, IQN, "mpb-eth1", True), "tpgt"),
    ("node_login", (PORTAL, "--login", "default"), "iqn"),
    ("node_delete", (PORTAL, f"{IQN}\n-o delete", "default"), "iqn"),
    ("node_show", (PORTAL, f"{IQN} -o update", "default"), "iqn"),
    ("node_login", (PORTAL, IQN, "--foo"), "iface"),
    ("node_logout", (PORTAL, IQN, "default all"), "iface"),
    ("node_update", (PORTAL, IQN, "default", [["iface.net_ifacename", "eth0"]]), "name"),
    ("node_update", (PORTAL, IQN, "default", [["node.startup", "-o"]]), "node.startup"),
    ("node_update", (PORTAL, IQN, "default", [["node.startup", "manual\nx"]]), "node.startup"),
    ("node_update", (PORTAL, IQN, "default", []), "settings"),
    # A secret is refused on an argv whatever its value: it has its own verb.
    ("node_update", (PORTAL, IQN, "default", [["node.session.auth.password", "s3cret"]]), "name"),
    (
        "node_update",
        (PORTAL, IQN, "default", [["node.session.auth.password_in", "s3cret"]]),
        "name",
    ),
    (
        "discovery_update",
        (PORTAL, "default", "discovery.sendtargets.auth.password", "s3cret"),
        "name",
    ),
    (
        "node_write",
        (PORTAL, IQN, "default", [], "s3cret\nnode.startup=auto", None),
        "node.session.auth.password",
    ),
    (
        "node_write",
        (PORTAL, IQN, "default", [], "s3cret", "s3cret x"),
        "node.session.auth.password_in",
    ),
    ("node_write", (PORTAL, IQN, "default", [], "", None), "node.session.auth.password"),
    (
        "node_write",
        (PORTAL, IQN, "default", [], "s3cret" * 43, None),
        "node.session.auth.password",
    ),
    ("node_write", (PORTAL, IQN, "default", [], 7, None), "node.session.auth.password"),
    ("node_write", (PORTAL, IQN, "--foo", [], "s3cret", None), "iface"),
    ("node_write", ("-o:3260", IQN, "default", [], "s3cret", None), "portal"),
    # Its settings are checked as an argv's are, and a secret is never one of them.
    (
        "node_write",
        (PORTAL, IQN, "default", [["node.startup", "automatic"]], None, None),
        "node.startup",
    ),
    (
        "node_write",
        (PORTAL, IQN, "default", [["node.session.auth.password", "x"]], None, None),
        "name",
    ),
    (
        "node_write",
        (PORTAL, IQN, "default", [["iface.net_ifacename", "eth0"]], None, None),
        "name",
    ),
    ("node_write", (PORTAL, IQN, "default", "node.startup", None, None), "settings"),
    ("node_write", (PORTAL, IQN, "default", [], None, None), "settings"),
    ("node_write", (PORTAL, IQN, "default", [], None, "s3cret"), "password_in"),
    ("discovery_set_secrets", ("../../etc:3260", "s3cret", None), "portal"),
    ("discovery_set_secrets", (PORTAL, "s3cret\x00", None), "discovery.sendtargets.auth.password"),
    (
        "discovery_set_secrets",
        (PORTAL, "s3cret", "s3cret\t"),
        "discovery.sendtargets.auth.password_in",
    ),
    ("discovery_update", (PORTAL, "default", "node.startup", "manual"), "name"),
    ("discovery_run", (PORTAL, "--foo"), "iface"),
    ("discovery_new", ("-o:3260", "default"), "portal"),
    ("multipathd_add_path", ("sda; rm -rf /",), "device"),
    ("multipathd_del_path", ("../../etc/passwd",), "device"),
    ("multipath_add_wwid", ("-a", "sda"), "wwid"),
    ("multipath_add_wwid", ("3600 -w", "sda"), "wwid"),
    ("multipath_add_wwid", ("3600a0", "sda -w"), "device"),
    ("multipath_flush", ("../../etc/passwd",), "map_name"),
    ("multipath_flush", ("--all",), "map_name"),
    ("multipathd_resize_map", ("mpatha\nshutdown",), "map_name"),
    ("multipathd_show_map", ("dm-0 json\nshutdown",), "map_name"),
    ("multipathd_show_map", ('dm-0" "json',), "map_name"),
    ("scsi_scan", (1, 0, 0, "1"), "lun"),
    ("scsi_scan", (1, 0, 0, -1), "lun"),
    ("scsi_scan", ("1/../../..", 0, 0, 1), "host"),
    ("scsi_remove_lun", ("1/../../..", 0, 0, 1), "host"),
    ("scsi_remove_lun", (1, 0, 0, True), "lun"),
    ("scsi_delete", ("sda; rm -rf /",), "device"),
    ("scsi_delete", ("../../etc/passwd",), "device"),
    ("scsi_rescan", ("sda/../../../etc",), "device"),
    # open-iscsi builds nodes/<iqn>/... from the name: this made files under /tmp as root.
    ("node_new", (PORTAL, "../../../tmp/x", "default", None), "iqn"),
    ("node_new", (PORTAL, f"{IQN}/../../x", "default", None), "iqn"),
    ("node_new", (PORTAL, "iqn.2010-10.org.openstack:" + "v" * 200, "default", None), "iqn"),
    ("node_new", ("[fe80::1%eth0]:3260", IQN, "default", None), "portal"),
    ("node_new", ("10.0.0.1", IQN, "default", None), "portal"),  # not in normal form
    ("node_new", (PORTAL, IQN, "../x", None), "iface"),
    ("multipath_add_wwid", ("8:0", "sda"), "wwid"),
    ("multipath_flush", ("8:0",), "map_name"),
    ("multipathd_resize_map", ("253:0",), "map_name"),
    ("node_update", (PORTAL, IQN, "default", [["node.startup", "automatic"]]), "node.startup"),
    (
        "node_update",
        (PORTAL, IQN, "default", [["node.session.scan", "auto"]]),
        "node.session.scan",
    ),
    # A secret is never an argv setting, empty or not (its own verb refuses ""
    # too: node_write above).
    (
        "node_update",
        (PORTAL, IQN, "default", [["node.session.auth.password", ""]]),
        "name",
    ),
    ("node_update", (PORTAL, IQN, "default", [[["list"], "x"]]), "name"),
    (
        "discovery_update",
        (PORTAL, "default", "discovery.sendtargets.auth.username", ""),
        "discovery.sendtargets.auth.username",
    ),
    ("iface_new", ("default",), "iface"),
    ("iface_delete", ("iser",), "iface"),
    ("iface_delete", ("storage0",), "iface"),
    ("iface_update", ("mpb-eth1", "iface.ipaddress", "10.0.0.1"), "name"),
    ("iface_update", ("mpb-eth1", "iface.net_ifacename", "eth1 -o delete"), "value"),
    ("iface_update", ("mpb-eth1", "iface.transport_name", "iser"), "value"),
    ("iface_update", ("tcp", "iface.net_ifacename", "eth1"), "iface"),
    ("iface_show", ("-o",), "iface"),
]


@pytest.mark.usefixtures("in_process")
@pytest.mark.parametrize(("name", "args", "field"), INJECTIONS)
def test_entrypoint_refuses_injection_before_running_anything(
    bindir: pathlib.Path, name: str, args: tuple[object, ...], field: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        getattr(entrypoints, name)(*args, 5.0)
    assert info.value.field == field
    assert "s3cret" not in str(info.value)
    assert not (bindir / "log").exists()


@pytest.mark.usefixtures("in_process")
@pytest.mark.parametrize(
    "timeout", [0, -1, float("nan"), float("inf"), "5", None, True, 1e300, 10**400, 86401]
)
def test_entrypoint_refuses_a_bad_timeout(bindir: pathlib.Path, timeout: object) -> None:
    with pytest.raises(InvalidArgument) as info:
        entrypoints.node_login(PORTAL, IQN, "default", timeout)  # type: ignore[arg-type]
    assert info.value.field == "timeout"
    assert not (bindir / "log").exists()


def test_sysfs_write_refuses_a_path_outside_sys() -> None:
    @dataclasses.dataclass(frozen=True)
    class Escape(verbs.SysfsWrite):
        entrypoint = "escape"

        def path(self) -> str:
            return "/sys/../etc/passwd"

        def value(self) -> str:
            return "x"

    with pytest.raises(InvalidArgument) as info:
        entrypoints._write(Escape(), 5.0)
    assert info.value.field == "path"


@pytest.mark.usefixtures("in_process")
@pytest.mark.skipif(not os.path.isdir("/sys/block"), reason="needs sysfs")
def test_sysfs_write_never_creates_a_missing_attribute() -> None:
    with pytest.raises(FileNotFoundError):
        entrypoints.scsi_rescan("sdzzz", 5.0)
    assert not os.path.exists("/sys/block/sdzzz")


# --- running commands ------------------------------------------------------------------


@pytest.mark.usefixtures("in_process")
def test_run_returns_status_output_and_runs_in_the_c_locale(bindir: pathlib.Path) -> None:
    fake_program(bindir, "iscsiadm", 'echo "LC_ALL=$LC_ALL"; echo oops >&2; exit 21')
    code, out, err, duration = entrypoints.node_show(PORTAL, IQN, "default", 5.0)
    assert (code, out, err) == (21, "LC_ALL=C\n", "oops\n")
    assert 0 <= duration < 5
    log = (bindir / "log").read_text()
    assert log == f"iscsiadm -m node -T {IQN} -p {PORTAL} -I default -o show\n"


@pytest.mark.usefixtures("in_process")
def test_run_kills_a_command_at_its_timeout(bindir: pathlib.Path) -> None:
    # Not exec: the shell's child sleep would keep our pipes open if only the
    # shell were killed.
    fake_program(bindir, "iscsiadm", "echo started; /bin/sleep 10; echo never")
    started = time.monotonic()
    code, out, _err, duration = entrypoints.node_list(0.3)
    assert code == entrypoints.TIMED_OUT == base.TIMED_OUT
    assert out == "started\n"
    assert 0.3 <= duration < 2
    assert time.monotonic() - started < 2


@pytest.mark.usefixtures("in_process")
def test_a_missing_program_exits_127(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _out, err, _duration = entrypoints.session_list(5.0)
    assert code == 127
    assert "iscsiadm" in err
