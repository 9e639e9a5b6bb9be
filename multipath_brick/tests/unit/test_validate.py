"""The shared rules (multipath_brick.validate) on real names and hostile ones."""

from __future__ import annotations

import pathlib
import re
import subprocess
from typing import Any

import pytest

from multipath_brick import validate, verbs
from multipath_brick.exception import InvalidArgument, MultipathBrickError
from multipath_brick.validate import ValidationError
from multipath_brick.verbs import checks

# Target names os-brick's own ISCSIConnector unit tests use
# (os_brick/tests/initiator/connectors/test_iscsi.py, test_linuxscsi.py). The
# placeholders 'tgt1'..'tgt4' there are accepted too (see test_names_outside...).
OS_BRICK_TEST_IQNS = [
    "iqn.2010-10.org.openstack:volume-00000001",
    "iqn.2010-10.org.openstack:volume-00000001-1",
    "iqn.2010-10.org.openstack:volume-00000001-2",
    "iqn.2010-10.org.openstack:volume-uuid",
    "iqn.2010-10.org.openstack:volume-6f0c6b5e-0d3e-4b36-9a1b-2f2a0c1d4e5f",
    "iqn.1234-56.foo.bar:01:23456789abc",  # month 56: the date is digits only
    "iqn.1992-08.com.netapp:sn.33615311",
    "iqn.2004-04.com.qnap:ts-831x:iscsi.cinder-2017.9ef",
    "iqn.2000-05.com.3pardata:21810002ac00383d",
    "iqn.2000-05.com.openstack:2180002ac00383d",
]

# What arrays and targets send (Cinder drivers' tests, vendor docs, targetcli).
ARRAY_IQNS = [
    "iqn.2010-06.com.purestorage:flasharray.5a2b6d8e1f0c4d7a",  # Pure
    "iqn.1992-08.com.netapp:sn.4b9a3c1e:vs.7",  # NetApp ONTAP
    "iqn.2000-05.com.3pardata:20810002ac00383d",  # HPE 3PAR
    "iqn.1994-04.jp.co.hitachi:rsd.h8m.t.10010.1a000",  # Hitachi VSP
    "iqn.2006-08.com.huawei:oceanstor:21000022a10a2a39::20101:192.168.1.1",  # Huawei
    "iqn.2006-08.com.huawei:oceanspace:2103037:",  # Huawei, trailing ':'
    "iqn.2000-09.com.fujitsu:storage-system.eternus-dx400:00C0C1P0",  # capitals
    "iqn.2000-01.com.synology:DS923.Target-1.2c0d1f17e14",  # capitals
    "iqn.2002-03.com.compellent:5000d31000fcbe43",  # Dell SC
    "iqn.1992-04.com.emc:cx.apm00123456789.a0",  # Dell Unity
    "iqn.2009-01.com.kaminario:storage.k2.22612",
    "iqn.2003-01.org.linux-iscsi.node01.x8664:sn.a06ca3a2277b",  # LIO (targetcli)
    "iqn.2001-04.com.example:storage.disk2.sys1.xyz",  # tgt's documentation
    "iqn.2005-10.org.freenas.ctl:target_1",  # '_': ctld accepts it with a warning
    "eui.02004567A425678D",  # RFC 3720 examples
    "naa.52004567BA64678D",  # RFC 3980, 16 digits
    "naa.6001405abcdef0123456789abcdef012",  # 32 digits
]


def refused(rule, value: object) -> str:
    with pytest.raises(ValidationError) as info:
        rule(value)
    return info.value.reason


@pytest.mark.parametrize("name", OS_BRICK_TEST_IQNS + ARRAY_IQNS)
def test_real_target_names_pass_unchanged_both_sides(name: str) -> None:
    assert validate.target_name(name) == name
    checks.check_iqn(name)


HOSTILE_FILES = ("test_validate", "test_hostile_input", "test_privileged")


def repo_iqns() -> set[str]:
    """Every complete target name written in this repository's files, except the
    hostile ones of the validation tests."""
    root = pathlib.Path(__file__).resolve().parents[3]
    hostile = [f":!multipath_brick/tests/unit/{name}.py" for name in HOSTILE_FILES]
    listed = subprocess.run(
        ["git", "-C", str(root), "grep", "-hoIE", r"\b(iqn|eui|naa)\.[A-Za-z0-9_.:-]+"]
        + ["--", ".", *hostile],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    # Drop fragments of prose and templates ("iqn.", "iqn.2010-10...", "{...}").
    names = {n.rstrip(".:") for n in listed}
    return {n for n in names if re.fullmatch(r"[a-z]{3}\.[0-9]{4}-[0-9]{2}\..+", n)}


def test_every_target_name_the_project_uses_passes() -> None:
    names = repo_iqns()
    if not names:
        pytest.skip("not a git checkout")
    assert "iqn.2024-01.org.multipath-brick.lab:target0" in names
    bad = {n: e.reason for n in names if (e := _error(n)) is not None}
    assert not bad


def _error(name: str) -> ValidationError | None:
    try:
        validate.target_name(name)
    except ValidationError as error:
        return error
    return None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("../../../tmp/x", "contains '/'"),
        ("iqn.2024-01.org.example:a/../../etc", "contains '/'"),
        ("/", "contains '/'"),
        ("..", "starts with '.'"),
        (".", "starts with '.'"),
        (".hidden", "starts with '.'"),
        ("iqn.2024-01.org.example:a\x00b", "control characters"),
        ("iqn.2024-01.org.example:a\nb", "control characters"),
        ("iqn.2024-01.org.example:a b", "whitespace"),
        ("iqn.2024-01.org.example:a\u2028b", "whitespace"),
        ("-iqn.2024-01.org.example:a", "must not start with '-'"),
        ("--login", "must not start with '-'"),
        ("iqn.2024-01.org.example:" + "a" * 200, "224 bytes long, more than 223"),
        ("iqn.2010-10.org.openstack:volume\u20101", "non-ASCII"),  # U+2010 hyphen
        ("\uff49qn.2010-10.org.openstack:volume-1", "non-ASCII"),  # fullwidth i
        ("iqn.2024-01.org.example:a;rm", "characters other than"),
        ("iqn.2024-01.org.example:a%b", "characters other than"),
        ("", "missing"),
        (None, "missing"),
        (5, "expected a string"),
    ],
)
def test_hostile_target_names_are_refused_with_the_reason(value: object, words: str) -> None:
    assert words in refused(validate.target_name, value)
    with pytest.raises(InvalidArgument) as info:
        checks.check_iqn(value)
    assert info.value.field == "iqn"


def test_names_outside_rfc_forms_are_accepted_when_harmless() -> None:
    # open-iscsi, tgt and LIO take any name, and os-brick's own tests use these:
    # a volume os-brick attached to such a target must be detachable here.
    for name in ("tgt1", "tgt2", "target_1", "fake_iqn", "iqn.x", "IQN.2024-01.org.example:a"):
        assert validate.target_name(name) == name


def test_223_bytes_is_the_limit() -> None:
    name = "iqn.2024-01.org.example:" + "a" * (223 - 24)
    assert len(name) == 223
    assert validate.target_name(name) == name


# --- portals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("10.0.0.1", "10.0.0.1:3260"),
        ("10.0.0.1:3261", "10.0.0.1:3261"),
        ("array-a.example.com", "array-a.example.com:3260"),
        ("array_a.lab:3260", "array_a.lab:3260"),
        ("[2001:DB8:0:0::1]", "[2001:db8::1]:3260"),
        ("2001:db8::1", "[2001:db8::1]:3260"),
        ("host:03260", "host:3260"),
    ],
)
def test_portals_normalise_and_the_daemon_takes_only_the_normal_form(raw: str, normal: str):
    assert validate.portal(raw) == normal
    checks.check_portal(normal)
    if raw != normal:
        with pytest.raises(InvalidArgument, match="normal form"):
            checks.check_portal(raw)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("[fe80::1%eth0]:3260", "zone ids are not supported"),
        ("fe80::1%eth0", "zone ids are not supported"),
        ("[fe80::1%2f..%2f]:3260", "zone ids are not supported"),
        ("010.0.0.1:3260", "invalid IPv4"),  # octal to inet_aton
        ("1.2.3:3260", "invalid IPv4"),
        ("256.0.0.1", "invalid IPv4"),
        ("8:0", "invalid IPv4"),
        ("a..b:3260", "invalid host name"),
        ("a/b:3260", "invalid host name"),
        ("-o:3260", "must not start with '-'"),
        ("a:0", "invalid port"),
        ("a:65536", "invalid port"),
        ("a:+1", "invalid port"),
        ("a:", "invalid port"),
        ("[::1]x", "malformed"),
        ("2001:db8::1:3260", "ambiguous IPv6"),
        ("h\u0430st:3260", "non-ASCII"),
        ("a" * 64 + ".example", "invalid host name"),
    ],
)
def test_hostile_portals_are_refused_on_both_sides(value: str, words: str) -> None:
    assert words in refused(validate.portal, value)
    with pytest.raises(InvalidArgument):
        checks.check_portal(value)


# --- numbers, names ------------------------------------------------------------------


@pytest.mark.parametrize("value", [1e300, 10**400, float("inf"), float("nan"), 0, -1, 86400.5])
def test_timeouts_are_bounded_without_overflow(value: object) -> None:
    assert "not a number of seconds in (0, 86400]" in refused(validate.timeout, value)


def test_a_day_is_the_longest_timeout() -> None:
    assert validate.timeout(86400) == 86400.0
    assert validate.timeout(0.001) == 0.001


@pytest.mark.parametrize("value", ["1", 7, 2**64 - 1])
def test_luns_as_drivers_send_them(value: object) -> None:
    assert validate.lun(value) == int(value)  # type: ignore[call-overload]


@pytest.mark.parametrize("value", [-1, 2**64, True, 1.0, "0x1", "1 ", [1], None, 10**400])
def test_bad_luns(value: object) -> None:
    refused(validate.lun, value)


@pytest.mark.parametrize("rule", [validate.map_name, validate.wwid])
@pytest.mark.parametrize("value", ["8:0", "253:0", "8:-1", "0:0x", "259:12"])
def test_maps_and_wwids_never_take_a_device_number(rule, value: str) -> None:
    # multipath -a / -f read "major:minor" as a device: 8:0 is usually the boot disk.
    assert "device number" in refused(rule, value)


@pytest.mark.parametrize(
    ("rule", "good", "bad"),
    [
        (
            validate.iface,
            ["default", "iser", "bnx2i.00:0e:1e:aa:bb:cc", "mpb_eth1"],
            ["..", "a/b", "-x"],
        ),
        (validate.disk, ["sda", "sdzz", "sdaaaa"], ["sda1", "dm-0", "sd", "nvme0n1", "../sda"]),
        (validate.map_name, ["mpatha", "36001405abc", "my-alias.1"], ["/dev/dm-0", "-f"]),
        (validate.wwid, ["36001405d27e5d898829468d8e6af6dc5", "1ATA_WDC_X"], ["", "a b"]),
    ],
)
def test_names_of_host_objects(rule, good: list[str], bad: list[str]) -> None:
    for value in good:
        assert rule(value) == value
    for value in bad:
        refused(rule, value)
    refused(rule, "x" * 200)


# --- settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("node.startup", "automatic"),
        ("node.startup", "onboot"),
        ("node.session.scan", "auto"),
        ("node.session.auth.authmethod", "chap"),
        ("node.session.auth.authmethod", "CHAP,None"),
        ("node.session.auth.username", ""),
        ("node.session.auth.username", "-u"),
        ("node.session.auth.password", ""),
        ("node.session.auth.password_in", "a b"),
        ("node.session.auth.password", "x" * 256),
        ("discovery.sendtargets.auth.password", ""),
        ("discovery.sendtargets.auth.username", ""),
        ("node.session.initial_login_retry_max", "101"),
        ("node.session.initial_login_retry_max", "-1"),
        ("node.conn[0].timeo.login_timeout", "0"),
        ("node.conn[0].timeo.login_timeout", "010"),
        ("node.conn[0].timeo.login_timeout", "1e9"),
        ("node.conn[0].timeo.login_timeout", "86401"),
        ("node.session.timeo.replacement_timeout", "9" * 30),
        ("node.conn[0].timeo.noop_out_interval", 5),
        ("iface.net_ifacename", "eth0"),
    ],
)
def test_setting_values_each_by_its_own_rule(name: str, value: object) -> None:
    refused(lambda v: validate.setting(name, v), value)
    with pytest.raises(InvalidArgument) as info:
        checks.check_value(name, value, secret=False)
    assert info.value.field == name


def test_the_settings_the_library_writes_pass() -> None:
    written = [
        ("node.startup", "manual"),
        ("node.session.scan", "manual"),
        ("node.conn[0].timeo.login_timeout", "10"),
        ("node.session.initial_login_retry_max", "2"),
        ("node.session.auth.authmethod", "None"),
        ("node.session.auth.authmethod", "CHAP"),
        ("node.session.auth.username", "mpb-user"),
        ("node.session.auth.password", "-starts-with-a-dash"),
        ("node.session.timeo.replacement_timeout", "0"),
        ("discovery.sendtargets.auth.authmethod", "None"),
    ]
    for name, value in written:
        assert validate.setting(name, value) == value
    # The secret goes through its own verb (never an argv), which takes it as is.
    update = verbs.NodeUpdate("10.0.0.1:3260", ARRAY_IQNS[0], "default", tuple(written[:7]))
    secrets = verbs.NodeWrite("10.0.0.1:3260", ARRAY_IQNS[0], "default", password=written[7][1])
    assert "-starts-with-a-dash" not in repr(update) + repr(secrets)


def test_no_reason_ever_shows_a_secret() -> None:
    secret = "Zq9-SECRET-\n-PW"
    for name in ("node.session.auth.password", "discovery.sendtargets.auth.password_in"):
        with pytest.raises(InvalidArgument) as info:
            checks.check_value(name, secret, secret=False)
        assert "SECRET" not in str(info.value) and "SECRET" not in repr(info.value.args)
    assert "SECRET" not in refused(validate.chap_secret, secret)


def test_setting_names_are_exactly_the_rules() -> None:
    assert checks.NODE_SETTINGS == verbs.NODE_SETTINGS == validate.NODE_SETTINGS
    assert "node.startup" in validate.NODE_SETTINGS
    assert all(n.startswith("discovery.sendtargets.auth.") for n in validate.DISCOVERY_SETTINGS)
    assert validate.is_secret("node.session.auth.password_in")
    assert not validate.is_secret("node.session.auth.username")


def test_shown_is_short_and_never_fails() -> None:
    nested: list[object] = []
    for _ in range(100000):
        nested = [nested]
    assert validate.shown(10**5000) == "<an integer of 16610 bits>"
    assert len(validate.shown("x" * 10000)) <= 80
    assert validate.shown(nested) == "<a list>"


def test_the_error_is_in_the_tree_and_rebuildable() -> None:
    error = ValidationError("why")
    assert isinstance(error, MultipathBrickError) and isinstance(error, ValueError)
    args: Any = error.args  # privsep rebuilds exceptions as cls(*args)
    assert str(type(error)(*args)) == "why"
