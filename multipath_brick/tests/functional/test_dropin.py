"""The drop-in on the real kernel: as nova or cinder would use it.

* A non-root user, with the documented sudoers line, rootwrap configuration
  and the shipped filter, attaches and detaches through
  ``InitiatorConnector.factory("ISCSI", "sudo <rootwrap> <conf>",
  use_multipath=True)`` once :func:`multipath_brick.osbrick.install` ran: the
  privsep daemon starts through sudo and rootwrap.
* multipathd stopped: ``enforce_multipath`` false attaches one path and
  detaches clean; true is the clear error.
* An encrypted volume: the returned path is os-brick's link; LUKS is made on
  it with cryptsetup, opened (the encryptor's ``ln -sf``), written, closed,
  and the volume detached with nothing left.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from os_brick.initiator import connector as brick_connector

from multipath_brick import osbrick
from multipath_brick.exception import MultipathUnavailableError
from multipath_brick.tests.lab.api import Lab
from multipath_brick.tests.lab.guest import start_multipathd
from multipath_brick.tests.lab.shell import run, wait_for
from multipath_brick.verbs.blockdev import LINK_PREFIX

from .conftest import ConnectorFactory, volume_props

USER = "mpbdropin"
ETC = "/etc/multipath-brick"
HELPER_DIR = "/usr/local/lib/mpb-dropin-bin"
BIN = os.path.dirname(sys.executable)
ROOTWRAP = os.path.join(BIN, "oslo-rootwrap")
REPO = str(Path(__file__).resolve().parents[3])
# The venv's interpreter may live where the user cannot reach (/root): the
# user runs the system python3 of the same version over the venv's packages.
SITE = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(BIN[:-4]))
CLIENT = textwrap.dedent(
    """
    import json, sys
    from multipath_brick import osbrick
    from os_brick.initiator import connector
    osbrick.install()
    props, root_helper, locks = json.load(sys.stdin)
    conn = connector.InitiatorConnector.factory(
        "ISCSI", root_helper, use_multipath=True, lock_path=locks)
    info = conn.connect_volume(props)
    valid = conn.check_valid_device(info["path"])
    conn.wait_for_pending(120)
    conn.disconnect_volume(props, info)
    print(json.dumps({"class": type(conn).__name__, "path": info["path"],
                      "paths": [p["state"] for p in info["paths"]], "valid": valid}))
    """
)


def _need(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"not installed on the host (prepare_host.sh installs them): {missing}")


@pytest.fixture
def nonroot(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A user with the documented sudoers line and rootwrap configuration."""
    _need("sudo", "runuser", "/usr/bin/python3")
    if not os.path.exists(ROOTWRAP):
        pytest.skip("oslo.rootwrap is not installed (test-requirements.txt)")
    # As a service user is made (adduser --disabled-password): no password to log
    # in with, but not a locked account, which sudo's PAM account check refuses.
    run(
        ["useradd", "--no-create-home", "--shell", "/bin/sh", "--password", "*", USER], check=False
    )
    user = pwd.getpwnam(USER)
    shipped = resources.files("multipath_brick") / "rootwrap"
    os.makedirs(f"{ETC}/rootwrap.d", exist_ok=True)
    shutil.copy(str(shipped / "multipath-brick.filters"), f"{ETC}/rootwrap.d/")
    # In a deployment the package is installed where privsep-helper's Python
    # finds it; here it is the checkout, and sudo clears PYTHONPATH. A root-owned
    # privsep-helper in the guest's /usr (a tmpfs) stands for that install.
    os.makedirs(HELPER_DIR, exist_ok=True)
    helper = Path(HELPER_DIR, "privsep-helper")
    helper.write_text(
        f'#!/bin/sh\nPYTHONPATH={REPO} exec {BIN}/privsep-helper "$@"\n', encoding="utf-8"
    )
    os.chmod(helper, 0o755)  # noqa: S103 - root-owned, run by rootwrap as root
    conf = (shipped / "rootwrap.conf").read_text()
    conf = conf.replace("exec_dirs=", f"exec_dirs={HELPER_DIR},")
    Path(f"{ETC}/rootwrap.conf").write_text(conf)
    sudoers = (shipped / "sudoers").read_text().replace("svc ALL", f"{USER} ALL")
    sudoers = sudoers.replace("/usr/bin/oslo-rootwrap", ROOTWRAP)
    # The lab guest's PAM account stack refuses every new account ("account
    # validation failure"), which a real host's does not: sudo skips it here.
    sudoers += f"Defaults:{USER} !pam_acct_mgmt\n"
    Path("/etc/sudoers.d/multipath-brick").write_text(sudoers)
    os.chmod("/etc/sudoers.d/multipath-brick", 0o440)
    # The user's own lock directory (pytest's tmp_path is under a root-only one).
    home = Path(f"/tmp/{USER}")
    _unmount(home / "site")
    shutil.rmtree(home, ignore_errors=True)
    (home / "locks").mkdir(mode=0o700, parents=True)
    for path in (home, home / "locks"):
        os.chown(path, user.pw_uid, user.pw_gid)
    # The venv's packages may sit below a directory only root can enter (tox
    # makes .tox 0700): the user reaches them through a read-only bind mount.
    site = home / "site"
    site.mkdir()
    run(["mount", "--bind", SITE, str(site)])
    run(["mount", "-o", "remount,bind,ro", str(site)])
    try:
        yield {
            "home": str(home),
            "locks": str(home / "locks"),
            "site": str(site),
            "root_helper": f"sudo {ROOTWRAP} {ETC}/rootwrap.conf",
        }
    finally:
        os.unlink("/etc/sudoers.d/multipath-brick")
        shutil.rmtree(ETC, ignore_errors=True)
        shutil.rmtree(HELPER_DIR, ignore_errors=True)
        if _unmount(site):  # never remove through a mount of the venv
            shutil.rmtree(home, ignore_errors=True)
        run(["userdel", USER], check=False)


def _unmount(path: Path) -> bool:
    """Unmount ``path`` if it is a mount point; True when it is not (any more)."""
    if os.path.ismount(path):
        run(["umount", str(path)], check=False)
    return not os.path.ismount(path)


def test_a_non_root_user_attaches_through_sudo_rootwrap_and_the_factory(
    lab: Lab, nonroot: dict[str, str], tmp_path: Path
) -> None:
    lab.add_lun(1, 64)
    props = volume_props(lab, 1)
    env = {
        "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
        "PYTHONPATH": f"{REPO}:{nonroot['site']}",
        "HOME": nonroot["home"],
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    # The CHAP secret goes on stdin, never on a command line.
    done = subprocess.run(  # noqa: S603 - fixed argv
        ["runuser", "-u", USER, "--", "/usr/bin/python3", "-c", CLIENT],
        input=json.dumps([props, nonroot["root_helper"], nonroot["locks"]]),
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        # What sudo and rootwrap say, to tell their refusals from the daemon's.
        probe = subprocess.run(  # noqa: S603 - fixed argv
            ["runuser", "-u", USER, "--", *nonroot["root_helper"].split(), "privsep-helper", "-h"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        pytest.fail(
            f"client exit {done.returncode}: {done.stderr[:3000]}\n...\n{done.stderr[-1500:]}\n"
            f"probe exit {probe.returncode}: {probe.stdout[-500:]} {probe.stderr[-1500:]}"
        )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["class"] == "ISCSIMultipathConnector"
    assert answer["path"].startswith("/dev/dm-")
    assert answer["valid"] is True
    assert "active" in answer["paths"]
    assert lab.portals and props["auth_password"] not in done.stderr


@pytest.fixture
def multipathd_stopped() -> Iterator[None]:
    run(["multipathd", "shutdown"], check=False)
    wait_for(
        "multipathd gone",
        lambda: run(["multipathd", "show", "daemon"], check=False).returncode != 0,
        timeout=30,
    )
    try:
        yield
    finally:
        start_multipathd()


@pytest.fixture
def installed() -> Iterator[None]:
    osbrick.install()
    try:
        yield
    finally:
        osbrick.uninstall()


def _factory(**kwargs: Any) -> Any:
    """The real factory, our class installed, as nova calls it (root: no helper)."""
    conn = brick_connector.InitiatorConnector.factory("ISCSI", None, use_multipath=True, **kwargs)
    assert type(conn).__name__ == "ISCSIMultipathConnector"
    return conn


def test_multipathd_stopped_not_enforced_attaches_one_path(
    lab: Lab, installed: None, multipathd_stopped: None, tmp_path: Path
) -> None:
    lab.add_lun(2, 64)
    props = volume_props(lab, 2)
    conn = _factory(lock_path=str(tmp_path))
    info = conn.connect_volume(props)
    assert info["path"].startswith("/dev/sd")
    assert "multipath_id" not in info
    assert len(run(["iscsiadm", "-m", "session"]).stdout.splitlines()) == 1
    assert conn.check_valid_device(info["path"])
    conn.disconnect_volume(props, info)


def test_multipathd_stopped_and_enforced_is_the_clear_error(
    lab: Lab, installed: None, multipathd_stopped: None, tmp_path: Path
) -> None:
    lab.add_lun(3, 64)
    props = {**volume_props(lab, 3), "enforce_multipath": True}
    conn = _factory(lock_path=str(tmp_path))
    with pytest.raises(MultipathUnavailableError, match="enforce_multipath"):
        conn.connect_volume(props)


def test_luks_on_the_encrypted_path(
    lab: Lab, make_connector: ConnectorFactory, tmp_path: Path
) -> None:
    _need("cryptsetup")
    run(["modprobe", "dm_crypt"], check=False)
    lab.add_lun(4, 64)
    props = {**volume_props(lab, 4), "encrypted": True}
    conn = make_connector(lock_path=str(tmp_path / "locks"))
    info = conn.connect_volume(props)
    link = info["path"]
    assert link.startswith(LINK_PREFIX + "+dev+dm-")
    dm = os.path.realpath(link)
    assert dm == "/dev/" + link.rsplit("+", 1)[1]
    key = tmp_path / "key"
    key.write_bytes(os.urandom(32))
    luks = ["cryptsetup", "--batch-mode", "--key-file", str(key)]
    run([*luks, "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "luksFormat", link])
    run([*luks, "open", link, "crypt-mpb"])
    # What os-brick's encryptors do next: the link now names the crypt device.
    run(["ln", "-sf", "/dev/mapper/crypt-mpb", link])
    data = os.urandom(1 << 20)
    with open("/dev/mapper/crypt-mpb", "r+b") as dev:
        dev.write(data)
        dev.flush()
        os.fsync(dev.fileno())
        dev.seek(0)
        assert dev.read(len(data)) == data
    assert conn.check_valid_device(link)  # read back to our map by its name
    run(["cryptsetup", "close", "crypt-mpb"])
    conn.disconnect_volume(props, info)
    assert not os.path.lexists(link)
    assert not os.path.exists(dm) or not os.path.exists(f"/sys/block/{os.path.basename(dm)}/dm")


def test_by_path_links_of_a_lun_above_255_are_found(
    lab: Lab, make_connector: ConnectorFactory, tmp_path: Path
) -> None:
    # tgt presents LUN 300 in flat-space addressing: the kernel's LUN is 16684,
    # which udev's path_id writes lun-0x412c000000000000; get_volume_paths must
    # name the links udev really made.
    try:
        lab.add_lun(300, 64)
    except Exception as error:  # noqa: BLE001 - tgt's own limit, reported as a skip
        pytest.skip(f"tgt did not make LUN 300: {error}")
    props = {**volume_props(lab, 300), "addressing_mode": "SAM2"}
    conn = make_connector(lock_path=str(tmp_path / "locks"))
    info = conn.connect_volume(props)
    assert conn.wait_for_pending(120)
    made = sorted(n for n in os.listdir("/dev/disk/by-path") if "-lun-" in n)
    print("by-path links udev made:", *made, sep="\n  ")
    found = conn.get_volume_paths(props)
    assert len(found) == len(lab.portals)
    assert all(p.endswith("-lun-0x412c000000000000") for p in found)
    assert sorted(os.path.basename(p) for p in found) == made
    conn.disconnect_volume(props, info)
