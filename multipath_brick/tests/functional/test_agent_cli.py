"""The ``multipath-brick`` command on the real stack, as an agent in another language runs it.

Each test runs the command as a separate process (``python -m
multipath_brick.agent.cli``) with its store under the test's tmp_path, and
ends with the autouse no-leftovers check.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from multipath_brick.agent.doctor import MULTIPATH_CONF
from multipath_brick.tests.lab.api import Lab
from multipath_brick.tests.lab.guest import start_multipathd

from .conftest import volume_props

ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def command(store: str, *args: str, stdin: str = "") -> tuple[int, Any, str]:
    done = subprocess.run(
        [sys.executable, "-m", "multipath_brick.agent.cli", "--store", store, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        env=ENV,
        check=False,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None, done.stderr


def iscsi(data: dict[str, Any]) -> str:
    return json.dumps({"driver_volume_type": "iscsi", "data": data})


def test_attach_info_paths_detach_singular_and_plural(lab: Lab, tmp_path) -> None:
    store = str(tmp_path / "volumes.db")
    wwid1, wwid2 = lab.add_lun(1, 64), lab.add_lun(2, 64)
    plural = volume_props(lab, 1)
    # Kaminario-style: singular keys only, "target_discovered" as a string.
    singular = volume_props(lab, 2, singular=True)
    singular["target_discovered"] = "True"
    outputs = []

    status, answer, err = command(store, "attach", "vol-plural", stdin=iscsi(plural))
    assert status == 0, err
    assert answer["path"] == f"/dev/mapper/{wwid1}" and os.path.exists(answer["path"])
    outputs.append(json.dumps(answer) + err)
    status, answer, err = command(store, "attach", "vol-singular", stdin=iscsi(singular))
    assert status == 0, err
    assert answer["path"] == f"/dev/mapper/{wwid2}"
    outputs.append(json.dumps(answer) + err)

    status, info, err = command(store, "info")
    assert status == 0, err
    assert [(v["vol_id"], v["exists"]) for v in info] == [
        ("vol-plural", True),
        ("vol-singular", True),
    ]
    outputs.append(json.dumps(info))
    status, paths, err = command(store, "paths", "vol-plural")
    assert status == 0, err
    assert sorted(p["portal"] for p in paths) == sorted(lab.portals)
    assert {p["session"] for p in paths} == {"LOGGED_IN"}
    assert {p["multipathd"] for p in paths} == {"active ready"}

    for vol_id in ("vol-plural", "vol-singular"):
        status, _, err = command(store, "detach", vol_id)
        assert status == 0, err
    assert command(store, "info")[1] == []
    assert all(lab.chap.password not in text for text in outputs)


def test_kill_9_mid_attach_then_attach_again(lab: Lab, tmp_path) -> None:
    store = str(tmp_path / "volumes.db")
    wwid = lab.add_lun(1, 64)
    props = iscsi(volume_props(lab, 1))
    victim = subprocess.Popen(
        [sys.executable, "-m", "multipath_brick.agent.cli", "--store", store, "attach", "v"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert victim.stdin is not None
    victim.stdin.write(props)
    victim.stdin.close()
    deadline = time.monotonic() + 120
    while not lab.leftovers()["sessions"] and time.monotonic() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_with = len(lab.leftovers()["sessions"])

    status, answer, err = command(store, "attach", "v", stdin=props)
    assert status == 0, err
    assert answer["path"] == f"/dev/mapper/{wwid}"
    assert lab.dm_for_wwid(wwid) is not None
    assert len(lab.leftovers()["multipath_maps"]) == 1
    assert len(lab.leftovers()["sessions"]) == len(lab.portals), (killed_with, lab.leftovers())
    status, _, err = command(store, "detach", "v")
    assert status == 0, err


def test_sessions_gone_behind_its_back_then_attach_brings_every_path(lab: Lab, tmp_path) -> None:
    store = str(tmp_path / "volumes.db")
    wwid = lab.add_lun(1, 64)
    props = iscsi(volume_props(lab, 1))
    assert command(store, "attach", "v", stdin=props)[0] == 0
    # A reboot stand-in: every session logged out without the agent.
    subprocess.run(["iscsiadm", "-m", "node", "--logoutall=all"], check=True, timeout=120)
    status, info, err = command(store, "info", "v")
    assert status == 0, err
    assert info[0]["exists"] is False
    status, answer, err = command(store, "attach", "v", stdin=props)
    assert status == 0, err
    assert len(lab.leftovers()["sessions"]) == len(lab.portals)
    assert command(store, "info", "v")[1][0]["exists"] is True
    assert lab.dm_for_wwid(wwid) is not None
    assert command(store, "detach", "v")[0] == 0


def doctor(store: str) -> tuple[int, dict[str, dict[str, str]]]:
    """The command's exit status and the checks that are not ok, by name."""
    status, report, err = command(store, "doctor")
    assert report is not None, err
    return status, {c["name"]: c for c in report if c["status"] != "ok"}


def multipathd_pids() -> list[str]:
    found = subprocess.run(
        ["pidof", "multipathd"], capture_output=True, text=True, timeout=30, check=False
    )
    return found.stdout.split()


def wait(what: str, ready: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"{what}: not after {timeout}s"
        time.sleep(0.2)


def multipathd_config() -> str:
    return subprocess.run(
        ["multipathd", "show", "config"], capture_output=True, text=True, timeout=30, check=False
    ).stdout


def test_doctor_green_on_the_lab_and_names_each_problem(lab: Lab, tmp_path) -> None:
    store = str(tmp_path / "volumes.db")
    status, problems = doctor(store)
    assert status == 0 and problems == {}, problems

    # multipathd stopped (the lab runs it without systemd: nothing restarts it).
    subprocess.run(["multipathd", "shutdown"], check=True, timeout=30)
    try:
        wait("multipathd gone", lambda: not multipathd_pids())
        status, problems = doctor(store)
        assert status == 6 and set(problems) == {"multipathd"}, problems
        assert problems["multipathd"]["status"] == "fail"
        assert problems["multipathd"]["fix"] == "systemctl enable --now multipathd"
    finally:
        if not multipathd_pids():
            start_multipathd()

    # multipath.conf settings the library relies on, each wrong alone and
    # applied (multipathd reconfigured), each named with the line that fixes it.
    with open(MULTIPATH_CONF, encoding="utf-8") as f:
        original = f.read()
    cases = [
        ("user_friendly_names no", "user_friendly_names yes"),
        ("find_multipaths strict", "find_multipaths sometimes"),
    ]
    try:
        for good, bad in cases:
            assert good in original
            with open(MULTIPATH_CONF, "w", encoding="utf-8") as f:
                f.write(original.replace(good, bad))
            subprocess.run(["multipathd", "reconfigure"], check=True, timeout=30)
            key = good.split()[0]
            status, problems = doctor(store)
            assert status == 6 and set(problems) == {key}, (bad, problems)
            assert problems[key]["status"] == "fail"
            assert f"'{good}'" in problems[key]["fix"], problems[key]
            assert "multipathd reconfigure" in problems[key]["fix"], problems[key]
    finally:
        with open(MULTIPATH_CONF, "w", encoding="utf-8") as f:
            f.write(original)
        subprocess.run(["multipathd", "reconfigure"], check=True, timeout=30)

    # The host as the other tests expect it: the file as it was, and multipathd
    # running with it again.
    with open(MULTIPATH_CONF, encoding="utf-8") as f:
        assert f.read() == original
    wait(
        "multipathd reconfigured",
        lambda: all(
            re.search(rf'^\s*{key}\s+"?{value}"?\s*$', multipathd_config(), re.MULTILINE)
            for key, value in (("user_friendly_names", "no"), ("find_multipaths", "strict"))
        ),
    )
    assert doctor(store) == (0, {})
