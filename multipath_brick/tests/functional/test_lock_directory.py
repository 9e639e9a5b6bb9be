"""The lock directory on the real host, as root: what another local user can
plant there is refused before any privileged command, and a normal attach and
detach then work. Every test ends with the autouse no-leftovers check.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from multipath_brick.exception import LockPathError, NoUsablePathError
from multipath_brick.iscsi.properties import ConnectionProperties
from multipath_brick.lockdir import RUN_DIR
from multipath_brick.tests.lab.api import Lab

from .conftest import ConnectorFactory, attach_every_path, volume_props


@pytest.fixture
def run_dir_aside() -> Iterator[None]:
    """Move the default lock directory away for the test, and back after it."""
    aside = RUN_DIR + ".aside"
    if os.path.lexists(RUN_DIR):
        os.rename(RUN_DIR, aside)
    try:
        yield
    finally:
        if os.path.islink(RUN_DIR) or os.path.isfile(RUN_DIR):
            os.unlink(RUN_DIR)
        elif os.path.isdir(RUN_DIR):
            shutil.rmtree(RUN_DIR)
        if os.path.lexists(aside):
            os.rename(aside, RUN_DIR)


def _nobody() -> int:
    return pwd.getpwnam("nobody").pw_uid


def test_default_lock_directory_planted_by_another_user_is_refused(
    lab: Lab, make_connector: ConnectorFactory, run_dir_aside: None
) -> None:
    """A local user made /run/multipath-brick first (as they could make
    /tmp/multipath-brick before): connect_volume refuses, naming the owner,
    before any iSCSI command; no session, no node record."""
    assert os.geteuid() == 0
    lab.add_lun(1, 64)
    os.mkdir(RUN_DIR, 0o700)
    os.chown(RUN_DIR, _nobody(), _nobody())
    connector = make_connector()

    with pytest.raises(LockPathError) as caught:
        connector.connect_volume(volume_props(lab, 1))

    assert caught.value.path == RUN_DIR
    assert caught.value.reason == f"is owned by uid {_nobody()}, not by uid 0 or root"
    assert not any(lab.leftovers().values()), lab.leftovers()
    assert not lab.target_sessions()
    assert os.listdir(RUN_DIR) == []  # root created nothing in their directory


def test_symlinked_lock_files_are_refused_then_attach_works(
    lab: Lab, make_connector: ConnectorFactory, run_dir_aside: None, tmp_path: Path
) -> None:
    """Symlinks planted as the node-record lock files of every path: no lock
    file is followed (the victim file is never made), every path fails with the
    reason, nothing is left. Without them, the same connector attaches over
    every portal and detaches; its default directory is root's, 0700."""
    lab.add_lun(1, 64)
    props = volume_props(lab, 1)
    connector = make_connector()
    locks = connector.locks
    assert locks.prepare() == RUN_DIR
    info = os.lstat(RUN_DIR)
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o700)
    victim = str(tmp_path / "victim")
    planted = []
    for target in ConnectionProperties.from_dict(props).targets:
        lock = locks.node(target.portal, target.iqn, "default")
        os.symlink(victim, lock.path)
        planted.append(lock.path)

    with pytest.raises(NoUsablePathError) as caught:
        connector.connect_volume(props)

    assert len(caught.value.failures) == len(lab.portals)
    for _, reason in caught.value.failures:
        assert reason.startswith(f"lock path {RUN_DIR}/multipath-brick-node-"), reason
        assert reason.endswith("is a symlink; lock files are never followed"), reason
    assert not os.path.lexists(victim)
    assert not lab.target_sessions()

    for path in planted:
        os.unlink(path)
    device_info, _ = attach_every_path(lab, connector, props)
    connector.disconnect_volume(props, device_info)
    for path in planted:
        assert stat.S_ISREG(os.lstat(path).st_mode)
