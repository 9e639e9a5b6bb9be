"""The multipath-brick command on a FakeHost: JSON shapes, tables, exit codes, secrets."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from multipath_brick.agent import cli
from multipath_brick.agent.cli import Exit
from multipath_brick.testing import FakeHost
from multipath_brick.tests.unit.agent_helpers import KAMINARIO, VOL, agent, make_host, plural_info
from multipath_brick.tests.unit.conftest import CHAP, PORTALS


@pytest.fixture
def host() -> Iterator[FakeHost]:
    fake = make_host()
    try:
        yield fake
    finally:
        fake.close()


class Run:
    """One run of the command: exit status, stdout, stderr."""

    def __init__(self, host: FakeHost, directory: str, argv: list[str], stdin: str = "") -> None:
        out, err = io.StringIO(), io.StringIO()
        self.status = cli.main(
            argv,
            volumes=lambda args: agent(host, directory),
            stdin=io.StringIO(stdin),
            stdout=out,
            stderr=err,
        )
        self.out, self.err = out.getvalue(), err.getvalue()

    def json(self) -> Any:
        return json.loads(self.out)


def run(host: FakeHost, tmp_path: Any, *argv: str, stdin: str = "") -> Run:
    return Run(host, str(tmp_path), list(argv), stdin)


def test_attach_info_paths_detach_in_json(host, tmp_path):
    attached = run(host, tmp_path, "attach", VOL, stdin=json.dumps(plural_info()))
    assert attached.status == Exit.OK, attached.err
    answer = attached.json()
    assert set(answer) == {"vol_id", "path", "attachment"}
    assert answer["path"].startswith("/dev/mapper/3")
    info = run(host, tmp_path, "info").json()
    assert [(v["vol_id"], v["exists"], v["state"]) for v in info] == [(VOL, True, "attached")]
    assert set(info[0]) == {"vol_id", "state", "connection_info", "path", "attachment", "exists"}
    paths = run(host, tmp_path, "paths", VOL).json()
    assert [p["portal"] for p in paths] == PORTALS
    assert set(paths[0]) == {"portal", "iqn", "lun", "iface", "session", "device", "multipathd"}
    detached = run(host, tmp_path, "detach", VOL)
    assert (detached.status, detached.json()) == (Exit.OK, {"vol_id": VOL})
    assert host.leftovers() == {}
    assert run(host, tmp_path, "info").json() == []


def test_attach_from_a_file_with_the_seed_connection_info(host, tmp_path):
    path = tmp_path / "conn.json"
    path.write_text(json.dumps(KAMINARIO))
    result = run(host, tmp_path, "attach", VOL, "--file", str(path))
    assert result.status == Exit.OK, result.err
    assert run(host, tmp_path, "detach", VOL).status == Exit.OK
    assert host.leftovers() == {}


def test_the_password_may_come_from_the_environment(host, tmp_path, monkeypatch):
    info = plural_info()
    del info["data"]["auth_password"]
    monkeypatch.setenv(cli.PASSWORD_ENV, CHAP[1])
    result = run(host, tmp_path, "attach", VOL, stdin=json.dumps(info))
    assert result.status == Exit.OK, result.err
    assert CHAP[1] not in result.out + result.err


def test_connector_info_and_human_tables(host, tmp_path):
    info = run(host, tmp_path, "connector-info").json()
    assert info["initiator"] == "iqn.2004-10.com.example:fakehost" and info["multipath"] is True
    run(host, tmp_path, "attach", VOL, stdin=json.dumps(plural_info()))
    table = run(host, tmp_path, "--human", "info").out.splitlines()
    assert table[0].split() == ["VOL_ID", "STATE", "EXISTS", "PATH"]
    assert table[1].split()[:3] == [VOL, "attached", "yes"]
    paths = run(host, tmp_path, "--human", "paths", VOL).out.splitlines()
    assert paths[0].split() == ["PORTAL", "IFACE", "LUN", "SESSION", "DEVICE", "MULTIPATHD"]
    assert len(paths) == 5 and "LOGGED_IN" in paths[1]


def error_of(result: Run) -> dict[str, Any]:
    error: dict[str, Any] = result.json()["error"]
    assert error["exit_code"] == result.status
    assert result.err.startswith("multipath-brick: ")
    return error


@pytest.mark.parametrize(
    ("stdin", "kind"),
    [
        ("{not json", "UsageError"),
        ("[1, 2]", "UsageError"),
        (json.dumps({"driver_volume_type": "rbd", "data": {}}), "UnsupportedVolumeType"),
        (json.dumps({"driver_volume_type": "iscsi", "data": {"target_portals": []}}), None),
    ],
)
def test_bad_input_exits_2(host, tmp_path, stdin, kind):
    result = run(host, tmp_path, "attach", VOL, stdin=stdin)
    assert result.status == Exit.BAD_INPUT
    error = error_of(result)
    if kind:
        assert error["type"] == kind
    assert host.calls == []


def test_bad_json_is_not_echoed(host, tmp_path):
    result = run(host, tmp_path, "attach", VOL, stdin='{"auth_password": "' + CHAP[1])
    assert result.status == Exit.BAD_INPUT
    assert CHAP[1] not in result.out + result.err


def test_a_mismatch_exits_2(host, tmp_path):
    run(host, tmp_path, "attach", VOL, stdin=json.dumps(plural_info(lun=1)))
    result = run(host, tmp_path, "attach", VOL, stdin=json.dumps(plural_info(lun=2)))
    assert (result.status, error_of(result)["type"]) == (Exit.BAD_INPUT, "ConnectionMismatch")


def test_usage_errors_exit_2(host, tmp_path):
    assert run(host, tmp_path, "attach").status == Exit.BAD_INPUT
    assert run(host, tmp_path, "frobnicate").status == Exit.BAD_INPUT


def test_unknown_ids_exit_3(host, tmp_path):
    run(host, tmp_path, "attach", VOL, stdin=json.dumps(plural_info()))
    info = run(host, tmp_path, "info", VOL, "unknown")
    assert info.status == Exit.NOT_FOUND
    assert [v["vol_id"] for v in info.json()] == [VOL]
    paths = run(host, tmp_path, "paths", "unknown")
    assert paths.status == Exit.NOT_FOUND and error_of(paths)["type"] == "NotStored"
    assert run(host, tmp_path, "detach", "unknown").status == Exit.OK


def test_wrong_chap_exits_4_without_the_password(host, tmp_path):
    result = run(
        host, tmp_path, "attach", VOL, stdin=json.dumps(plural_info(auth_password="wrong-pw"))
    )
    assert result.status == Exit.AUTH_FAILED
    assert error_of(result)["type"] == "AuthenticationError"
    assert "wrong-pw" not in result.out + result.err


def test_no_reachable_portal_exits_5(host, tmp_path):
    for portal in PORTALS:
        host.set_unreachable(portal)
    result = run(host, tmp_path, "attach", VOL, stdin=json.dumps(plural_info()))
    assert result.status == Exit.NO_USABLE_PATH
    assert error_of(result)["type"] == "NoUsablePathError"
    assert run(host, tmp_path, "info").json() == []


def test_multipathd_down_exits_6(host, tmp_path):
    # The agent answers maps only: it enforces multipath, whatever the data says.
    host.set_multipathd_running(False)
    result = run(host, tmp_path, "attach", VOL, stdin=json.dumps(plural_info()))
    assert result.status == Exit.HOST_NOT_READY
    assert error_of(result)["type"] == "MultipathUnavailableError"


def test_an_unusable_store_exits_6(host, tmp_path):
    (tmp_path / "volumes.db").write_bytes(b"garbage" * 1000)
    result = run(host, tmp_path, "info")
    assert result.status == Exit.HOST_NOT_READY
    assert error_of(result)["type"] == "StoreCorruptError"


def test_a_failed_detach_exits_1_and_keeps_the_volume(host, tmp_path):
    answer = run(host, tmp_path, "attach", VOL, stdin=json.dumps(plural_info())).json()
    host.fail_flush(answer["attachment"]["multipath_id"])
    result = run(host, tmp_path, "detach", VOL)
    assert (result.status, error_of(result)["type"]) == (Exit.FAILED, "FlushError")
    assert [v["vol_id"] for v in run(host, tmp_path, "info").json()] == [VOL]


def test_no_secret_in_any_output(host, tmp_path):
    outputs = [
        run(host, tmp_path, "attach", VOL, stdin=json.dumps(plural_info())),
        run(host, tmp_path, "info"),
        run(host, tmp_path, "--human", "info"),
        run(host, tmp_path, "paths", VOL),
        run(host, tmp_path, "detach", VOL),
    ]
    assert all(CHAP[1] not in r.out + r.err for r in outputs)


def test_the_default_store_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(cli.STORE_ENV, str(tmp_path / "x.db"))
    args = cli.build_parser().parse_args(["info"])
    assert args.store == os.path.join(str(tmp_path), "x.db")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_goes_to_a_terminal_only(host, tmp_path):
    err = Terminal()
    status = cli.main(
        ["attach", VOL],
        volumes=lambda args: agent(host, str(tmp_path)),
        stdin=io.StringIO(json.dumps(plural_info())),
        stdout=io.StringIO(),
        stderr=err,
    )
    assert status == Exit.OK
    assert "multipath-brick: attached /dev/dm-" in err.getvalue()
    assert CHAP[1] not in err.getvalue()
    piped = run(host, tmp_path, "detach", VOL)
    assert piped.err == ""


#: Run in a fresh interpreter: a console script's entry, then what its process holds.
ENTRY = """
import atexit, importlib, json, sys
command = importlib.import_module(sys.argv[1])

def report():
    from os_brick.exception import BrickException
    from multipath_brick import exception
    errors = [getattr(exception, name) for name in exception.__all__]
    print(json.dumps({
        "eventlet": sys.modules.get("eventlet", "absent") is None,
        "connector": "multipath_brick.connector" in sys.modules,
        "brick": all(isinstance(e, type) and issubclass(e, BrickException) for e in errors),
    }), file=sys.stderr)

atexit.register(report)
sys.argv = ["command", *sys.argv[2:]]
command.run()
"""


@pytest.mark.parametrize(
    ("module", "argv"),
    [
        ("multipath_brick.agent.cli", ["--store", "{store}", "connector-info"]),
        ("multipath_brick.agent.helper", ["connector_info"]),
    ],
)
def test_the_command_process_keeps_eventlet_out_and_errors_stay_brick_exceptions(
    tmp_path, module, argv
):
    # A command's process never imports eventlet (0.19 s and a deprecation
    # warning, for nothing: oslo.privsep uses it only in monkey-patched
    # processes), yet every error it can raise is still an os-brick
    # BrickException, so Python callers' ``except BrickException`` keeps working.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    args = [a.format(store=tmp_path / "volumes.db") for a in argv]
    done = subprocess.run(
        [sys.executable, "-c", ENTRY, module, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["multipath"] is True
    assert "Eventlet" not in done.stderr and "Warning" not in done.stderr, done.stderr
    held = json.loads(done.stderr.strip().splitlines()[-1])
    assert held == {"eventlet": True, "connector": True, "brick": True}
