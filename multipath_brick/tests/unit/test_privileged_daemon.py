"""A round trip through a real privsep daemon, forked without privileges.

This does what oslo.privsep's ``UnprivilegedPrivsepFixture`` does (that module
needs the ``fixtures`` package): keep no capabilities, stay the same user, fork.
The daemon inherits ``PATH`` at fork time, so a fake ``iscsiadm`` answers it.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from oslo_config import cfg
from oslo_privsep import priv_context
from oslo_privsep.comm import PrivsepTimeout

from multipath_brick import privileged, verbs
from multipath_brick.exception import InvalidArgument
from multipath_brick.host import CommandResult, LinuxHost
from multipath_brick.privileged import context, entrypoints, process
from multipath_brick.tests.unit.test_privileged import IQN, PORTAL, fake_program

#: A login to this portal takes a second (the fake iscsiadm sleeps).
SLOW = "10.0.0.9:3260"


@pytest.fixture
def daemon(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[pathlib.Path]:
    """A running unprivileged daemon whose PATH holds only a fake iscsiadm.

    Parametrised indirectly, the parameter is the daemon's thread pool size.
    """
    bindir = tmp_path / "bin"
    bindir.mkdir()
    # $PPID is the daemon: it shows the command ran there, not in this process.
    fake_program(
        bindir,
        "iscsiadm",
        'case "$*" in *"-p 10.0.0.5:3260 "*) echo exists >&2; exit 15;;\n'
        f'  *"-p {SLOW} "*) /bin/sleep 1;; esac\necho "ran in $PPID"',
    )
    monkeypatch.setenv("PATH", str(bindir))
    overrides: dict[str, object] = {"capabilities": [], "user": None, "group": None}
    if getattr(request, "param", None):
        overrides["thread_pool_size"] = request.param
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
        verbs.NodeUpdate.one(PORTAL, IQN, "default", "node.session.auth.username", "u"),
        timeout=5.0,
    )
    assert isinstance(result, CommandResult)
    assert result.ok
    # A record write crosses too, and comes back as a command would, secret masked.
    write = verbs.NodeWrite(
        PORTAL, "iqn.2024-01.invalid:no-such-record", "default", password="pw-9"
    )
    result = host.run(write, timeout=5.0)
    assert result.exit_code in (6, 21)  # no such record (or no database at all)
    assert result.argv == write.display() and "pw-9" not in repr(result)
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


@pytest.mark.skipif(os.geteuid() != 0, reason="root starts the daemon without a root helper")
@pytest.mark.usefixtures("unstarted")
def test_root_starts_the_daemon_on_first_use_and_again_when_it_died() -> None:
    host = LinuxHost(root_helper="/nonexistent/helper")  # never used: we are root
    first = int(host.run(verbs.SessionList(), timeout=5.0).stdout)
    assert first != os.getpid()
    assert int(host.run(verbs.SessionList(), timeout=5.0).stdout) == first
    with open(f"/proc/{first}/cmdline", "rb") as f:
        argv = f.read().split(b"\0")
    # A program of its own, not a fork of this process.
    assert argv[1:3] == [b"-m", b"multipath_brick.privsep_daemon"]
    os.kill(first, signal.SIGKILL)
    channel = context.channel
    assert channel is not None
    deadline = time.monotonic() + 5
    while channel.running and time.monotonic() < deadline:
        time.sleep(0.01)
    second = int(host.run(verbs.SessionList(), timeout=5.0).stdout)
    assert second not in (first, os.getpid())


# --- the daemon's pool and deadlines: nothing runs after its caller gave up --------


#: The login entrypoint with privsep's keywords (``_wrap_timeout``) and ours (``deadline``).
login: Callable[..., Any] = entrypoints.node_login


def logged(bindir: pathlib.Path) -> list[str]:
    """The portals of the iscsiadm commands that ran, in order."""
    log = bindir / "log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.split(" -p ")[1].split()[0] for line in lines]


def wait_logged(bindir: pathlib.Path, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(logged(bindir)) < count and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("daemon", [1], indirect=True)
def test_the_daemon_drops_a_request_whose_deadline_passed_in_its_queue(
    daemon: pathlib.Path,
) -> None:
    # One pool thread, busy for a second with a slow login.
    slow = threading.Thread(target=entrypoints.node_login, args=(SLOW, IQN, "default", 5.0))
    slow.start()
    wait_logged(daemon, 1)
    # This one queues behind it; its caller gives up at 0.3 s, as privsep does.
    with pytest.raises(PrivsepTimeout):
        login(PORTAL, IQN, "default", 5.0, _wrap_timeout=0.3, deadline=time.monotonic() + 0.3)
    slow.join()
    # The pool runs requests in order: this one runs after the dropped one.
    code, _out, _err, _duration = entrypoints.node_login("10.0.0.7:3260", IQN, "default", 5.0)
    assert code == 0
    assert logged(daemon) == [SLOW, "10.0.0.7:3260"]  # never PORTAL


@pytest.mark.parametrize("daemon", [1], indirect=True)
def test_a_request_that_starts_late_gets_only_the_time_left(daemon: pathlib.Path) -> None:
    code, _out, _err, duration = login(SLOW, IQN, "default", 5.0, deadline=time.monotonic() + 0.3)
    assert code == entrypoints.TIMED_OUT
    assert duration < 0.9


@pytest.mark.parametrize("daemon", [1], indirect=True)
def test_linux_host_sends_no_more_calls_than_the_daemon_has_threads(
    daemon: pathlib.Path,
) -> None:
    host = LinuxHost()
    slow = threading.Thread(
        target=host.run, args=(verbs.NodeLogin(SLOW, IQN, "default"),), kwargs={"timeout": 5.0}
    )
    slow.start()
    wait_logged(daemon, 1)
    t0 = time.monotonic()
    waited = host.run(verbs.NodeLogin(PORTAL, IQN, "default"), timeout=0.3)
    assert time.monotonic() - t0 < 0.9
    assert waited.timed_out
    assert "no privsep daemon thread free" in waited.stderr
    slow.join()
    assert host.run(verbs.NodeLogin("10.0.0.7:3260", IQN, "default"), timeout=5.0).ok
    assert logged(daemon) == [SLOW, "10.0.0.7:3260"]  # the one that waited never ran


@pytest.mark.parametrize("deadline", [float("nan"), float("inf"), "soon", True])
def test_a_bad_deadline_is_refused(daemon: pathlib.Path, deadline: object) -> None:
    with pytest.raises(InvalidArgument) as info:
        login(PORTAL, IQN, "default", 5.0, deadline=deadline)
    assert info.value.field == "deadline"
    assert not (daemon / "log").exists()


class StuckInKernel:
    """A program that SIGKILL does not end (D state): its ``wait`` times out
    until the test lets it go. The real process behind it is a ``sleep``."""

    def __init__(self) -> None:
        self.real = subprocess.Popen(
            ["/bin/sleep", "30"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.pid = self.real.pid
        self.stdout, self.stderr = self.real.stdout, self.real.stderr
        self.returncode: int | None = None
        self.freed = threading.Event()

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        raise subprocess.TimeoutExpired("sleep", timeout or 0.0)

    def poll(self) -> int | None:
        return None

    def wait(self, timeout: float | None = None) -> int:
        if not self.freed.wait(timeout):
            raise subprocess.TimeoutExpired("sleep", timeout or 0.0)
        self.returncode = self.real.wait()
        return self.returncode


def test_a_program_that_does_not_die_is_left_to_a_reaper() -> None:
    stuck = StuckInKernel()
    started = time.monotonic()
    outcome = process._finish(cast("subprocess.Popen[str]", stuck), started, deadline=started)
    assert time.monotonic() - started < 3  # the daemon thread is free again
    assert outcome[0] == entrypoints.TIMED_OUT
    assert "stuck in the kernel" in outcome[2]
    reapers = [t for t in threading.enumerate() if t.name == f"reaper {stuck.pid}"]
    assert len(reapers) == 1
    stuck.freed.set()  # the kernel lets go
    reapers[0].join(5)
    assert not reapers[0].is_alive()
    assert stuck.returncode == -signal.SIGKILL
