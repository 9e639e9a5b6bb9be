"""The managedvolume-helper protocol, fed the exact JSON vdsm sends.

vdsm (lib/vdsm/storage/managedvolume.py) runs ``[python, helper, "attach"]``
with ``json.dumps(connection_info)`` on stdin, where connection_info is what the
engine passed (with ``adapter`` when the storage domain names one), and
``[python, helper, "detach"]`` with the row of its managedvolumedb: vol_id,
connection_info, path, attachment, multipath_id. It reads one JSON document
from stdout and treats any non-zero exit as failure, showing stderr.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from multipath_brick import ISCSIMultipathConnector
from multipath_brick.agent import helper
from multipath_brick.testing import FakeHost
from multipath_brick.tests.unit.agent_helpers import KAMINARIO_IQN, VOL, make_host
from multipath_brick.tests.unit.conftest import CHAP, FAST, PORTALS, plural

#: What vdsm writes for attach: the engine's connection_info, verbatim.
VDSM_ATTACH = (
    '{"driver_volume_type": "iscsi", "data": {"target_lun": 26, '
    '"target_iqn": "iqn.2009-01.com.kaminario:storage.k2.22612", '
    '"target_portal": "3.2.1.1:3260", "target_discovered": "True"}, '
    '"adapter": "multipath-brick"}'
)


@pytest.fixture
def host() -> Iterator[FakeHost]:
    fake = make_host()
    try:
        yield fake
    finally:
        fake.close()


def call(host: FakeHost, tmp_path: Any, *argv: str, stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    status = helper.main(
        list(argv),
        connector=lambda: ISCSIMultipathConnector(
            use_multipath=True, host=host, settings=FAST, lock_path=str(tmp_path)
        ),
        stdin=io.StringIO(stdin),
        stdout=out,
    )
    return status, out.getvalue()


def test_attach_then_detach_with_vdsm_json(host, tmp_path):
    status, out = call(host, tmp_path, "attach", stdin=VDSM_ATTACH)
    assert status == 0 and out.endswith("\n") and out.count("\n") == 1
    attachment = json.loads(out)
    wwid = host.targets[KAMINARIO_IQN].wwid(26)
    assert attachment["multipath_id"] == wwid == attachment["scsi_wwn"]
    assert attachment["type"] == "block" and attachment["path"].startswith("/dev/dm-")
    # vdsm's managedvolumedb row, as get_volume returns it and detach sends it.
    row = {
        "vol_id": VOL,
        "connection_info": json.loads(VDSM_ATTACH),
        "path": f"/dev/mapper/{wwid}",
        "attachment": attachment,
        "multipath_id": wwid,
    }
    status, out = call(host, tmp_path, "detach", stdin=json.dumps(row))
    assert (status, out) == (0, "{}\n")
    assert host.leftovers() == {}


def test_plural_chap_attach_keeps_the_password_out_of_stdout(host, tmp_path, capsys):
    info = {"driver_volume_type": "iscsi", "data": plural(lun=1)}
    status, out = call(host, tmp_path, "--verbose", "attach", stdin=json.dumps(info))
    assert status == 0
    assert [p["portal"] for p in json.loads(out)["paths"]] == PORTALS
    assert CHAP[1] not in out + capsys.readouterr().err


def test_connector_info_has_os_brick_keys(host, tmp_path):
    status, out = call(host, tmp_path, "connector_info")
    info = json.loads(out)
    assert status == 0
    assert {
        "initiator",
        "ip",
        "platform",
        "host",
        "do_local_attach",
        "os_type",
        "multipath",
    } <= set(info)


@pytest.mark.parametrize(
    ("argv", "stdin", "status"),
    [
        (["attach"], "", 1),
        (["attach"], "not json", 1),
        (["attach"], '{"driver_volume_type": "rbd", "data": {"name": "p/v"}}', 1),
        (["detach"], '{"attachment": {}}', 1),
        (["bogus"], "", 2),
        ([], "", 2),
    ],
)
def test_failures_exit_non_zero_with_nothing_on_stdout(
    host, tmp_path, capsys, argv, stdin, status
):
    got, out = call(host, tmp_path, *argv, stdin=stdin)
    assert (got, out) == (status, "")
    if status == 1:
        assert "managedvolume-helper:" in capsys.readouterr().err
