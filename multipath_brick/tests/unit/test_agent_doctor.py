"""multipath-brick doctor on a FakeHost: green when healthy, each problem named with a fix."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator

import pytest

from multipath_brick.agent import cli, doctor
from multipath_brick.agent.doctor import Status
from multipath_brick.testing import FakeHost
from multipath_brick.tests.unit.agent_helpers import agent, make_host

GOOD_MULTIPATH_CONF = """\
defaults {
    user_friendly_names no   # maps named by WWID
    find_multipaths strict
}
blacklist {
    devnode "^vd[a-z]"
}
"""
GOOD_ISCSID_CONF = """\
node.startup = manual
node.session.timeo.replacement_timeout = 20
node.conn[0].timeo.login_timeout = 15
"""


def put(host: FakeHost, path: str, text: str) -> None:
    local = os.path.join(host.root, path.lstrip("/"))
    os.makedirs(os.path.dirname(local), exist_ok=True)
    with open(local, "w", encoding="utf-8") as f:
        f.write(text)


@pytest.fixture
def healthy() -> Iterator[FakeHost]:
    host = make_host()
    put(host, "/proc/1/comm", "systemd\n")
    put(host, "/proc/812/comm", "iscsid\n")
    put(host, "/etc/multipath.conf", GOOD_MULTIPATH_CONF)
    put(host, "/etc/iscsi/iscsid.conf", GOOD_ISCSID_CONF)
    try:
        yield host
    finally:
        host.close()


def by_name(host: FakeHost) -> dict[str, doctor.Check]:
    return {c.name: c for c in doctor.run_checks(host) if c.name != "privsep"}


def test_a_healthy_host_is_all_green(healthy):
    checks = by_name(healthy)
    assert set(checks) == {
        "iscsid",
        "multipathd",
        "user_friendly_names",
        "find_multipaths",
        "initiator",
        "node.session.timeo.replacement_timeout",
        "node.conn[0].timeo.login_timeout",
    }
    assert {c.status for c in checks.values()} == {Status.OK}
    assert all(c.fix == "" for c in checks.values())


def test_a_broken_host_names_each_problem_with_a_fix(healthy):
    healthy.set_multipathd_running(False)
    put(healthy, "/proc/812/comm", "sshd\n")
    put(
        healthy,
        "/etc/multipath.conf",
        "defaults {\n  user_friendly_names yes\n  find_multipaths sometimes\n}\n",
    )
    put(healthy, "/etc/iscsi/initiatorname.iscsi", "InitiatorName=iqn.1993-08.org.debian:01:\n")
    put(healthy, "/etc/iscsi/iscsid.conf", "node.session.timeo.replacement_timeout = 120\n")
    checks = by_name(healthy)
    failed = {name for name, c in checks.items() if c.status is Status.FAIL}
    assert failed == {
        "iscsid",
        "multipathd",
        "user_friendly_names",
        "find_multipaths",
        "initiator",
    }
    assert checks["find_multipaths"].detail.startswith("find_multipaths is 'sometimes'")
    assert "user_friendly_names no" in checks["user_friendly_names"].fix
    assert checks["node.session.timeo.replacement_timeout"].status is Status.WARN
    assert "systemctl enable --now multipathd" in checks["multipathd"].fix
    assert "iscsi-iname" in checks["initiator"].fix
    assert all(c.fix for c in checks.values() if c.status is not Status.OK)


def test_missing_files_are_named(healthy):
    os.remove(os.path.join(healthy.root, "etc/multipath.conf"))
    os.remove(os.path.join(healthy.root, "etc/iscsi/initiatorname.iscsi"))
    checks = {c.name: c for c in doctor.run_checks(healthy)}
    assert checks["multipath.conf"].status is Status.FAIL
    assert checks["initiator"].status is Status.FAIL


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("iqn.2004-10.com.example:host1", True),
        ("GenerateName=yes", False),
        ("iqn.1994-05.com.redhat:", False),
        ("not-an-iqn", False),
    ],
)
def test_initiator_placeholders(healthy, name, ok):
    put(healthy, "/etc/iscsi/initiatorname.iscsi", f"InitiatorName={name}\n")
    assert (doctor.check_initiator(healthy).status is Status.OK) is ok


def test_defaults_section_reads_only_defaults():
    text = 'defaults {\n find_multipaths "yes"\n}\ndevices {\n device {\n  vendor X\n }\n}\n'
    assert doctor.defaults_section(text) == {"find_multipaths": "yes"}


def test_doctor_command_exit_status(healthy, tmp_path):
    out = io.StringIO()
    status = cli.main(
        ["doctor"],
        volumes=lambda args: agent(healthy, str(tmp_path)),
        stdout=out,
        stderr=io.StringIO(),
    )
    report = json.loads(out.getvalue())
    privsep = next(c for c in report if c["name"] == "privsep")
    expected = cli.Exit.OK if privsep["status"] == "ok" else cli.Exit.HOST_NOT_READY
    assert status == expected
    assert all(set(c) == {"name", "status", "detail", "fix"} for c in report)
    healthy.set_multipathd_running(False)
    assert (
        cli.main(
            ["doctor"],
            volumes=lambda args: agent(healthy, str(tmp_path)),
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
        == cli.Exit.HOST_NOT_READY
    )


def test_bond_nics_need_loose_rp_filter_and_arp_settings(healthy):
    put(
        healthy,
        "/etc/iscsi/ifaces/mpb-eth1",
        "iface.iscsi_ifacename = mpb-eth1\niface.net_ifacename = eth1\n",
    )
    put(healthy, "/etc/iscsi/ifaces/mpb-eth2", "iface.net_ifacename = eth2\n")
    put(healthy, "/etc/iscsi/ifaces/plain", "iface.net_ifacename = <empty>\n")
    for nic, rp in (("eth1", "2"), ("eth2", "1")):
        put(healthy, f"/proc/sys/net/ipv4/conf/{nic}/rp_filter", rp + "\n")
        put(healthy, f"/proc/sys/net/ipv4/conf/{nic}/arp_ignore", "1\n")
        put(healthy, f"/proc/sys/net/ipv4/conf/{nic}/arp_announce", "2\n")
    assert doctor.bound_nics(healthy) == ["eth1", "eth2"]
    checks = {c.name: c for c in doctor.check_bond_sysctls(healthy)}
    assert checks["sysctl eth1"].status is Status.OK
    assert checks["sysctl eth2"].status is Status.WARN
    assert checks["sysctl eth2"].fix == "sysctl -w net.ipv4.conf.eth2.rp_filter=2"


def test_no_bond_no_sysctl_check(healthy):
    assert doctor.check_bond_sysctls(healthy) == []
