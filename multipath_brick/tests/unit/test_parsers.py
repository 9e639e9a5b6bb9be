"""The library's readers of command output and sysfs, on output captured from a real
kernel in the QEMU lab (``multipath_brick/tests/fixtures``)."""

from __future__ import annotations

import pathlib

import pytest

from multipath_brick.host.base import CommandResult
from multipath_brick.iscsi.iscsiadm import (
    DiscoveredTarget,
    IscsiadmExit,
    is_auth_failure,
    login_failure_reason,
    login_succeeded,
    parse_targets,
)
from multipath_brick.scsi.sysfs import normalise_portal
from multipath_brick.wwid import multipath_wwid

FIXTURES = pathlib.Path(__file__).parent.parent / "fixtures"
LAB_IQN = "iqn.2024-01.org.multipath-brick.lab:target0"


def capture(name: str) -> CommandResult:
    """A single-command capture: ``# $ cmd  (exit N, T s)``, stdout, optional stderr."""
    lines = (FIXTURES / name).read_text().splitlines(keepends=True)
    header = lines[0]
    assert header.startswith("# $ ")
    code = int(header.rsplit("(exit ", 1)[1].split(",")[0])
    body = "".join(lines[1:])
    stdout, _, stderr = body.partition("# --- stderr ---\n")
    return CommandResult(
        argv=tuple(header[4:].split()), exit_code=code, stdout=stdout, stderr=stderr
    )


def test_discovery_output():
    result = capture("iscsiadm_discovery_st_nonpersistent.txt")
    assert result.exit_code == 0
    found = parse_targets(result.stdout)
    assert found and all(t.iqn == LAB_IQN for t in found)
    assert all(t.portal.startswith("192.168.") and t.portal.endswith(":3260") for t in found)


def test_node_listing_with_records_made_by_o_new():
    # Records made with -o new list their tpgt as 4294967295 (-1 unsigned).
    found = parse_targets(capture("iscsiadm_node.txt").stdout)
    assert DiscoveredTarget("192.168.100.2:3260", 4294967295, LAB_IQN) in found


def test_parse_targets_ignores_noise_and_ipv6():
    text = "iscsiadm: some warning\n[fd00::2]:3260,1 iqn.x:y\n\n10.0.0.1:3260,7 iqn.z\n"
    assert parse_targets(text) == [
        DiscoveredTarget("[fd00::2]:3260", 1, "iqn.x:y"),
        DiscoveredTarget("10.0.0.1:3260", 7, "iqn.z"),
    ]


@pytest.mark.parametrize(
    ("name", "code", "words", "auth"),
    [
        ("iscsiadm_login_badchap.txt", IscsiadmExit.LOGIN_AUTH_FAILED, "authorization", True),
        ("iscsiadm_login_unreachable.txt", IscsiadmExit.TRANS_TIMEOUT, "timed out", False),
    ],
)
def test_login_failure_reasons(name: str, code: IscsiadmExit, words: str, auth: bool):
    result = capture(name)
    assert result.exit_code == code
    reason = login_failure_reason(result)
    assert reason.startswith(f"{code.name} ({int(code)})")
    assert words in reason
    assert is_auth_failure(result) is auth


def test_session_exists_is_exit_15():
    assert capture("iscsiadm_login_exists.txt").exit_code == IscsiadmExit.SESS_EXISTS


def test_exit_code_names():
    assert IscsiadmExit.describe(21) == "NO_OBJS_FOUND (21)"
    assert IscsiadmExit.describe(200) == "exit 200"


def test_wwid_from_sysfs_matches_multipathd():
    tree = (FIXTURES / "sysfs_tree.txt").read_text().splitlines()
    sysfs_wwid = tree[tree.index("# $ cat /sys/block/sda/device/wwid  (exit 0, 0.1 s)") + 1]
    maps = capture("multipathd_show_maps_format.txt").stdout
    assert multipath_wwid(sysfs_wwid) in maps
    assert multipath_wwid("eui.0025385b71b0a2f1") == "20025385b71b0a2f1"
    assert multipath_wwid("t10.ATA     QEMU HARDDISK   QM00001 ") == "1ATA_QEMU_HARDDISK_QM00001"


def test_portal_from_sysfs_is_normalised_like_properties():
    assert normalise_portal("192.168.100.2", "3260") == "192.168.100.2:3260"
    assert normalise_portal("fd00:0:0::2", 3260) == "[fd00::2]:3260"


def test_auth_failure_recognised_when_iscsiadm_exits_idbm():
    # Seen in the lab under parallel logins: exit 6, the target's 24 in stderr.
    real = capture("iscsiadm_login_badchap.txt")
    odd = CommandResult(real.argv, IscsiadmExit.IDBM, real.stdout, real.stderr)
    assert is_auth_failure(odd)
    assert login_failure_reason(odd).startswith("LOGIN_AUTH_FAILED (24)")


def test_login_that_worked_despite_exit_6():
    # Captured in the lab while another program deleted records of its own:
    # iscsiadm tripped listing the node database, logged in anyway, exited 6.
    tripped = capture("iscsiadm_login_idbm_ok.txt")
    assert tripped.exit_code == IscsiadmExit.IDBM
    assert login_succeeded(tripped)
    assert login_succeeded(capture("iscsiadm_login_ok.txt"))
    assert login_succeeded(capture("iscsiadm_login_exists.txt"))


def test_failed_logins_are_not_taken_for_success():
    assert not login_succeeded(capture("iscsiadm_login_unreachable.txt"))
    badchap = capture("iscsiadm_login_badchap.txt")
    assert not login_succeeded(badchap)
    # The same refusal, had the listing also tripped: still a refusal.
    odd = CommandResult(badchap.argv, IscsiadmExit.IDBM, badchap.stdout, badchap.stderr)
    assert not login_succeeded(odd)
