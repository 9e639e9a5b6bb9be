"""The lock directory: chosen from the caller's settings, checked before root uses it.

Each hostile case gives a clear :class:`LockPathError` naming the path and what
is wrong, or a safe result. These run as root in CI (ownership is made with
``os.chown``); as another user, the expected owner is changed instead.
"""

from __future__ import annotations

import os
import pickle
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from oslo_config import cfg

from multipath_brick.exception import LockPathError
from multipath_brick.lockdir import RUN_DIR, choose_lock_path, configured_lock_path
from multipath_brick.locks import Locks

ROOT = os.geteuid() == 0
OTHER_UID = 4242  # nobody's account: any uid but ours and root's


def _owner(path: Path) -> int:
    return os.lstat(path).st_uid


def _refused(path: Path, **kwargs: object) -> LockPathError:
    with pytest.raises(LockPathError) as caught:
        Locks(str(path), **kwargs).prepare()  # type: ignore[arg-type]
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)
    return caught.value


def test_a_missing_directory_is_made_0700_and_ours(tmp_path: Path) -> None:
    path = tmp_path / "locks"
    assert Locks(str(path)).prepare() == str(path)
    info = os.lstat(path)
    assert stat.S_ISDIR(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o700
    assert info.st_uid == os.geteuid()


def test_a_restrictive_umask_does_not_leave_us_a_directory_we_cannot_use(tmp_path: Path) -> None:
    old = os.umask(0o277)
    try:
        Locks(str(tmp_path / "locks")).prepare()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.lstat(tmp_path / "locks").st_mode) == 0o700


def test_an_existing_0755_directory_of_ours_is_used(tmp_path: Path) -> None:
    path = tmp_path / "locks"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    assert Locks(str(path)).prepare() == str(path)


def test_precreated_by_another_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "locks"
    path.mkdir(mode=0o700)
    if ROOT:
        os.chown(path, OTHER_UID, OTHER_UID)
        error = _refused(path)
        assert error.reason == f"is owned by uid {OTHER_UID}, not by uid 0 or root"
    else:
        # Emulated: we expect another owner, so our own directory is someone else's.
        error = _refused(path, uid=OTHER_UID)
        assert f"owned by uid {os.geteuid()}, not by uid {OTHER_UID} or root" in error.reason


def test_a_symlink_planted_as_the_directory_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    path = tmp_path / "locks"
    path.symlink_to(real)
    error = _refused(path)
    assert error.reason == f"is a symlink (to {str(real)!r}), not a directory"
    assert os.listdir(real) == []


def test_a_plain_file_instead_of_the_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "locks"
    path.write_text("")
    assert _refused(path).reason == "is not a directory"


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702, 0o1777])
def test_a_directory_others_may_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "locks"
    path.mkdir()
    path.chmod(mode)
    error = _refused(path)
    assert error.reason == f"has mode {mode:04o}: group or others may write to it (0700 wanted)"
    assert stat.S_IMODE(os.lstat(path).st_mode) == mode  # refused, not "repaired"


def test_a_parent_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    parent = tmp_path / "theirs"
    parent.mkdir(mode=0o755)
    if ROOT:
        os.chown(parent, OTHER_UID, OTHER_UID)
        error = _refused(parent / "locks")
    else:
        error = _refused(parent / "locks", uid=OTHER_UID)
    assert "its parent" in error.reason and "owned by uid" in error.reason
    assert not (parent / "locks").exists()


def test_a_world_writable_parent_without_sticky_bit_is_refused(tmp_path: Path) -> None:
    parent = tmp_path / "open"
    parent.mkdir()
    parent.chmod(0o777)
    error = _refused(parent / "locks")
    assert (
        error.reason
        == f"its parent {parent} has mode 0777: group or others may write to it (0700 wanted)"
    )
    assert not (parent / "locks").exists()


def test_a_sticky_world_writable_parent_like_tmp_is_fine(tmp_path: Path) -> None:
    parent = tmp_path / "tmp"
    parent.mkdir()
    parent.chmod(0o1777)
    assert Locks(str(parent / "locks")).prepare() == str(parent / "locks")


def test_a_missing_parent_is_not_made(tmp_path: Path) -> None:
    error = _refused(tmp_path / "a" / "locks")
    assert error.reason == f"its parent {tmp_path / 'a'} does not exist"
    assert not (tmp_path / "a").exists()


def test_a_parent_symlink_of_ours_is_followed_like_var_run(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir(mode=0o755)
    (tmp_path / "var-run").symlink_to(tmp_path / "run")
    locks = Locks(str(tmp_path / "var-run" / "locks"))
    locks.prepare()
    assert (tmp_path / "run" / "locks").is_dir()


@pytest.mark.skipif(not ROOT, reason="needs root to give a symlink to another user (lchown)")
def test_a_parent_symlink_planted_by_another_user_is_refused(tmp_path: Path) -> None:
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    link = sticky / "x"
    link.symlink_to(elsewhere)
    os.lchown(link, OTHER_UID, OTHER_UID)
    error = _refused(link / "locks")
    assert error.reason == f"its parent {link} is a symlink owned by uid {OTHER_UID}"
    assert os.listdir(elsewhere) == []


def test_a_relative_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert choose_lock_path("locks") == str(tmp_path / "locks")


# --- where the directory comes from ---------------------------------------------------


@pytest.fixture
def conf() -> Iterator[cfg.ConfigOpts]:
    """A service's own configuration object, with nothing set."""
    conf = cfg.ConfigOpts()
    configured_lock_path(conf)  # registers [oslo_concurrency] as the service would
    conf.set_override("lock_path", "", "oslo_concurrency")  # whatever OSLO_LOCK_PATH says
    yield conf
    conf.reset()


def test_the_callers_lock_path_comes_first(conf: cfg.ConfigOpts) -> None:
    conf.set_override("lock_path", "/var/lib/svc/locks", "oslo_concurrency")
    assert choose_lock_path("/srv/mine", conf=conf) == "/srv/mine"


def test_os_brick_lock_path_from_oslo_config(tmp_path: Path) -> None:
    """A connector made without lock_path uses the consumer's [os_brick] lock_path."""
    path = tmp_path / "os-brick-locks"
    cfg.CONF.set_override("lock_path", str(path), "os_brick")
    try:
        locks = Locks()
        assert locks.prepare() == str(path)
        assert locks.lock_path == str(path)
    finally:
        cfg.CONF.clear_override("lock_path", "os_brick")
    assert path.is_dir()


def test_os_brick_lock_path_wins_over_oslo_concurrency(conf: cfg.ConfigOpts) -> None:
    from os_brick import opts

    conf.register_opts(opts._opts, group="os_brick")
    conf.set_override("lock_path", "/var/lib/svc/brick", "os_brick")
    conf.set_override("lock_path", "/var/lib/svc/locks", "oslo_concurrency")
    assert choose_lock_path(None, conf=conf) == "/var/lib/svc/brick"


def test_oslo_concurrency_lock_path_is_the_fallback(conf: cfg.ConfigOpts) -> None:
    conf.set_override("lock_path", "/var/lib/svc/locks", "oslo_concurrency")
    assert choose_lock_path(None, conf=conf) == "/var/lib/svc/locks"


def test_root_without_settings_uses_a_root_directory_under_run(conf: cfg.ConfigOpts) -> None:
    assert choose_lock_path(None, conf=conf, euid=0) == RUN_DIR == "/run/multipath-brick"


def test_not_root_without_settings_is_refused_with_how_to_configure(conf: cfg.ConfigOpts) -> None:
    with pytest.raises(LockPathError) as caught:
        choose_lock_path(None, conf=conf, euid=1000)
    assert caught.value.path == ""
    assert str(caught.value) == (
        "no lock directory: none is configured and this process is not root: pass "
        "lock_path= to the connector, or set [os_brick] lock_path (or "
        "[oslo_concurrency] lock_path) in the service's configuration; as root, "
        "/run/multipath-brick is used"
    )


def test_never_a_shared_tmp(conf: cfg.ConfigOpts) -> None:
    for euid in (0, 1000):
        try:
            chosen = choose_lock_path(None, conf=conf, euid=euid)
        except LockPathError:
            continue
        assert not chosen.startswith("/tmp")


def test_the_error_is_rebuilt_from_its_args() -> None:
    error = LockPathError("/run/x", "is not a directory")
    again = pickle.loads(pickle.dumps(error))  # noqa: S301 - cls(*args), as privsep rebuilds
    assert str(again) == str(error) == "lock path /run/x: is not a directory"


def test_owner_of_the_made_directory(tmp_path: Path) -> None:
    Locks(str(tmp_path / "locks")).prepare()
    assert _owner(tmp_path / "locks") == os.geteuid()


@pytest.mark.skipif(not ROOT, reason="needs root to become another user")
def test_a_service_user_is_told_it_cannot_use_a_directory_of_roots() -> None:
    """Root's 0755 directory is safe, but a service running as another user could
    not make its lock files there: said at once, not at the first lock."""
    directory = tempfile.mkdtemp(prefix="mpb-root-locks-")  # in /tmp: sticky, root's
    os.chmod(directory, 0o755)  # noqa: S103 - readable, not writable, by others
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # a child that drops to nobody, as a service's process would be
        try:
            os.setegid(OTHER_UID)
            os.seteuid(OTHER_UID)
            try:
                Locks(directory).prepare()
                said = "accepted"
            except LockPathError as error:
                said = str(error)
            os.write(write_end, said.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        with os.fdopen(read_end) as answer:
            said = answer.read()
    finally:
        os.waitpid(pid, 0)
        os.rmdir(directory)
    assert said == (
        f"lock path {directory}: is owned by uid 0: uid {OTHER_UID} cannot make lock files in it"
    )


def test_a_symlink_loop_among_the_parents_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    error = _refused(tmp_path / "a" / "locks")
    assert error.reason.endswith(": too many levels of symbolic links")
