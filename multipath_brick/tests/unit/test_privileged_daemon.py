"""A round trip through a real privsep daemon, forked without privileges.

This does what oslo.privsep's ``UnprivilegedPrivsepFixture`` does (that module
needs the ``fixtures`` package): keep no capabilities, stay the same user, fork.
The daemon inherits ``PATH`` at fork time, so a fake ``iscsiadm`` answers it.
"""

from __future__ import annotations

import os
import pathlib
import signal
import time
from collections.abc import Iterator

import pytest
from oslo_config import cfg
from oslo_privsep import priv_context

from multipath_brick import privileged
from multipath_brick.exception import InvalidArgument
from multipath_brick.host import CommandResult, LinuxHost
from multipath_brick.privileged import context, entrypoints, verbs
from multipath_brick.tests.unit.test_privileged import IQN, PORTAL, fake_program


@pytest.fixture
def daemon(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pathlib.Path]:
    """A running unprivileged daemon whose PATH holds only a fake iscsiadm."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    # $PPID is the daemon: it shows the command ran there, not in this process.
    fake_program(
        bindir,
        "iscsiadm",
        'case "$*" in *"-p 10.0.0.5:3260 "*) echo exists >&2; exit 15;; esac\necho "ran in $PPID"',
    )
    monkeypatch.setenv("PATH", str(bindir))
    overrides: dict[str, object] = {"capabilities": [], "user": None, "group": None}
    for name, value in overrides.items():
        cfg.CONF.set_override(name, value, group=privileged.CFG_SECTION)
    pid = os.getpid()
    try:
        context.start(priv_context.Method.FORK)
    except BaseException:
        if os.getpid() != pid:  # the child must never return into pytest
            os._exit(1)
        raise
    try:
        yield bindir
    finally:
        context.stop()
        for name in overrides:
            cfg.CONF.clear_override(name, group=privileged.CFG_SECTION)


def test_an_entrypoint_runs_in_the_daemon(daemon: pathlib.Path) -> None:
    code, out, err, _duration = entrypoints.node_login(PORTAL, IQN, "default", 5.0)
    assert (code, err) == (0, "")
    assert out.startswith("ran in ")
    assert int(out.split()[-1]) != os.getpid()
    assert (daemon / "log").read_text() == (
        f"iscsiadm -m node -T {IQN} -p {PORTAL} -I default --login\n"
    )


def test_invalid_argument_is_rebuilt_on_the_client_side(daemon: pathlib.Path) -> None:
    with pytest.raises(InvalidArgument) as info:
        entrypoints.node_login("-o", IQN, "default", 5.0)
    assert info.value.field == "portal"
    assert "'-o'" in info.value.reason
    assert not (daemon / "log").exists()


def test_linux_host_runs_verbs_through_the_daemon(daemon: pathlib.Path) -> None:
    host = LinuxHost()
    result = host.run(
        verbs.NodeUpdate.one(PORTAL, IQN, "default", "node.session.auth.password", "pw"),
        timeout=5.0,
    )
    assert isinstance(result, CommandResult)
    assert result.ok
    assert result.argv[-1] == "***"  # the password is masked in what the caller sees
    logins = [verbs.NodeLogin(f"10.0.0.{i}:3260", IQN, "default") for i in range(1, 7)]
    results = [host.run(login, timeout=5.0) for login in logins]
    assert [r.exit_code for r in results] == [0, 0, 0, 0, 15, 0]
    assert [r.argv for r in results] == [login.display() for login in logins]
    assert results[4].stderr == "exists\n"


@pytest.mark.skipif(not os.path.isdir("/sys/block"), reason="needs sysfs")
def test_linux_host_write_errors_come_back_as_os_errors(daemon: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError):
        LinuxHost().write(verbs.ScsiRescan("sdzzz"), timeout=5.0)


@pytest.fixture
def unstarted(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pathlib.Path]:
    """No daemon yet; one started by the test is stopped afterwards."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake_program(bindir, "iscsiadm", 'echo "$PPID"')
    monkeypatch.setenv("PATH", str(bindir))
    cfg.CONF.set_override("capabilities", [], group=privileged.CFG_SECTION)
    assert context.channel is None
    try:
        yield bindir
    finally:
        context.stop()
        cfg.CONF.clear_override("capabilities", group=privileged.CFG_SECTION)


@pytest.mark.skipif(os.geteuid() != 0, reason="the daemon is forked only when root")
@pytest.mark.usefixtures("unstarted")
def test_root_forks_the_daemon_on_first_use_and_again_when_it_died() -> None:
    host = LinuxHost(root_helper="/nonexistent/helper")  # never used: we are root
    first = int(host.run(verbs.SessionList(), timeout=5.0).stdout)
    assert first != os.getpid()
    assert int(host.run(verbs.SessionList(), timeout=5.0).stdout) == first
    os.kill(first, signal.SIGKILL)  # the daemon this test started, a child of ours
    os.waitpid(first, 0)
    channel = context.channel
    assert channel is not None
    deadline = time.monotonic() + 5
    while channel.running and time.monotonic() < deadline:
        time.sleep(0.01)
    second = int(host.run(verbs.SessionList(), timeout=5.0).stdout)
    assert second not in (first, os.getpid())
