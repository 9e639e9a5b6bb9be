"""Hostile input, at the edge and at the daemon's door.

Every key of the connection properties goes through
``ConnectionProperties.from_dict`` and every field of every verb
(``verbs.ALL_VERBS``) straight into its privsep entrypoint, run in
process as the daemon runs it. Whatever the value, only the library's
validation errors come out, and a refused value starts no process, opens no
file for writing and connects to no socket.

The spy is a ``sys.addaudithook`` hook: it watches the interpreter's own audit
events (``subprocess.Popen``, ``os.exec*``, ``os.posix_spawn``, ``open`` for
writing, ``socket.connect``), so nothing of the library is patched. It is inert
unless armed, and while armed it also *blocks* what it sees: these tests run as
root on some machines, and a value the rules accept must not reach a real
``/sys`` attribute or a real program either.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multipath_brick import ConnectionProperties, validate, verbs
from multipath_brick.exception import (
    InvalidArgument,
    InvalidConnectionProperties,
    NotOwnedError,
)
from multipath_brick.privileged import context, entrypoints
from multipath_brick.verbs import checks

# --- the spy --------------------------------------------------------------------------

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class Blocked(Exception):
    """Raised by the armed spy in place of a process start, write or connect."""


class Spy:
    """An audit hook that records (and stops) side effects while armed."""

    def __init__(self) -> None:
        self.armed = False
        self.seen: list[tuple[str, str]] = []

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.armed or not self._acts(event, args):
            return
        self.seen.append((event, validate.shown(args[:2])))
        raise Blocked(event)

    @staticmethod
    def _acts(event: str, args: tuple[Any, ...]) -> bool:
        if event in ("subprocess.Popen", "os.posix_spawn", "os.system", "socket.connect"):
            return True
        if event.startswith(("os.exec", "os.spawn", "os.fork")):
            return True
        if event == "open":
            mode, flags = (list(args[1:3]) + [None, None])[:2]
            writes_mode = isinstance(mode, str) and any(c in mode for c in "wax+")
            return writes_mode or (isinstance(flags, int) and bool(flags & _WRITE_FLAGS))
        return False

    @contextlib.contextmanager
    def watching(self) -> Iterator[list[tuple[str, str]]]:
        self.seen = []
        self.armed = True
        try:
            yield self.seen
        finally:
            self.armed = False


SPY = Spy()
sys.addaudithook(SPY)


def test_the_spy_sees_and_stops_a_process_start_and_a_write(tmp_path: Any) -> None:
    import subprocess

    with SPY.watching() as seen, pytest.raises(Blocked):
        subprocess.run(["true"], check=False)  # noqa: S607
    assert seen[0][0] == "subprocess.Popen"
    with SPY.watching() as seen, pytest.raises(Blocked):
        os.open(tmp_path / "x", os.O_WRONLY | os.O_CREAT)
    assert seen[0][0] == "open"
    assert not (tmp_path / "x").exists()
    (tmp_path / "r").write_text("r")
    with SPY.watching() as seen:
        assert (tmp_path / "r").read_text() == "r"
    assert not seen  # reading is not acting
    subprocess.run(["true"], check=True)  # noqa: S607 - disarmed: inert


@contextlib.contextmanager
def in_daemon() -> Iterator[None]:
    """Entrypoints run in this process, as inside the daemon."""
    context.set_client_mode(False)
    try:
        yield
    finally:
        context.set_client_mode(True)


# --- hostile values ---------------------------------------------------------------------

IQN = "iqn.2010-10.org.openstack:volume-1"
HOSTILE: list[object] = [
    "../../../tmp/x",
    "/",
    "..",
    "x/../../../etc/passwd",
    "a\x00b",
    "\x00",
    "a\nb",
    "mpatha\nshutdown",
    "a\rb",
    "a b",
    "a\tb",
    "-o",
    "--login",
    "-",
    "x" * 224,
    "iqn.2010-10.org.openstack:" + "v" * 200,
    "iqn.2010-10.org.openstack:volume\u20101",  # hyphen look-alike
    "\uff49qn.2010-10.org.openstack:volume-1",  # fullwidth i
    "sd\u0430",  # Cyrillic a
    "\u2028",
    "8:0",
    "253:0",
    "8:-1",
    "[fe80::1%eth0]:3260",
    "[fe80::1%2f..%2f]:3260",
    "10.0.0.1:99999",
    "010.0.0.1:3260",
    "sda; rm -rf /",
    "$(reboot)",
    "`id`",
    "*",
    "",
    " ",
    10**30,
    2**64,
    10**400,
    -1,
    True,
    False,
    1.5,
    1e300,
    float("nan"),
    float("inf"),
    None,
    [],
    ["a"],
    [["node.startup", "manual"]],
    {"a": 1},
    b"bytes",
]
suffixes = st.sampled_from(["/..", "/", "/../../x", "\n", "\x00", " ", "\u2028", "\x7f", ";"])
bases = st.sampled_from([IQN, "10.0.0.1:3260", "default", "sdb", "mpatha", "36001405ab"])
hostile = (
    st.sampled_from(HOSTILE)
    | st.builds(lambda base, junk: base + junk, bases, suffixes)
    | st.builds(lambda junk, base: junk + base, st.sampled_from(["-", "../", "/"]), bases)
    | st.text(max_size=30)
    | st.integers()
    | st.floats()
    | st.binary(max_size=8)
    | st.lists(st.text(max_size=5), max_size=3)
)
FAST = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


# --- the daemon's door: every field of every verb --------------------------------------

VALID: dict[str, object] = {
    "portal": "10.0.0.1:3260",
    "iqn": IQN,
    "iface": "default",
    "settings": [["node.startup", "manual"]],
    "name": "discovery.sendtargets.auth.authmethod",
    "value": "None",
    "device": "sdb",
    "wwid": "36001405abcdef",
    "map_name": "mpatha",
    "host": 7,
    "channel": 0,
    "target": 0,
    "lun": 1,
    "tpgt": 1,
    "password": "Pa55-w0rd-S3CRET",
    "password_in": None,
    "timeout": 5.0,
}
#: Verbs whose fields take other valid values than VALID's: the iface verbs that
#: change records accept only the library's ifaces and settings.
VALID_FOR: dict[type[verbs.Verb], dict[str, object]] = {
    verbs.IfaceNew: {"iface": "mpb-eth1"},
    verbs.IfaceDelete: {"iface": "mpb-eth1"},
    verbs.IfaceUpdate: {"iface": "mpb-eth1", "name": "iface.net_ifacename", "value": "eth1"},
}
FIELDS = [
    (verb, field)
    for verb in verbs.ALL_VERBS
    for field in [f.name for f in dataclasses.fields(verb)] + ["timeout"]  # type: ignore[arg-type]
]
setting_lists = (
    st.lists(
        st.tuples(
            st.sampled_from(sorted(verbs.NODE_SETTINGS) + ["iface.net_ifacename", "node.name"]),
            hostile,
        ).map(list),
        max_size=3,
    )
    | hostile
)


def call(verb: type[verbs.Verb], values: dict[str, object]) -> object:
    names = [f.name for f in dataclasses.fields(verb)]  # type: ignore[arg-type]
    function = getattr(entrypoints, verb.entrypoint)
    return function(*(values[n] for n in names), values["timeout"])


def accepted_by_the_verb(verb: type[verbs.Verb], values: dict[str, object]) -> bool:
    names = [f.name for f in dataclasses.fields(verb)]  # type: ignore[arg-type]
    args = [values[n] for n in names]
    try:
        if verb is verbs.NodeUpdate or verb is verbs.NodeWrite:
            verb.from_wire(*args)  # type: ignore[arg-type]
        else:
            verb(*args)
        checks.check_timeout(values["timeout"])
    except InvalidArgument:
        return False
    return True


@pytest.mark.parametrize(("verb", "field"), FIELDS, ids=[f"{v.entrypoint}-{f}" for v, f in FIELDS])
@FAST
@given(data=st.data())
def test_hostile_verb_field_never_runs_anything(
    verb: type[verbs.Verb], field: str, data: st.DataObject
) -> None:
    value = data.draw(setting_lists if field == "settings" else hostile, label=field)
    values = {**VALID, **VALID_FOR.get(verb, {}), field: value}
    with in_daemon(), SPY.watching() as seen:
        try:
            outcome = call(verb, values)
        except InvalidArgument as error:
            assert not seen, (error, seen)
            named = (field, "name", "settings", *verbs.NODE_SETTINGS, *verbs.DISCOVERY_SETTINGS)
            if isinstance(error, NotOwnedError):
                # Well formed, but it names a disk, host, map or WWID that this
                # host does not show as iSCSI's: the ownership check refused it.
                assert accepted_by_the_verb(verb, values)
                named = tuple(f.name for f in dataclasses.fields(verb))  # type: ignore[arg-type]
            assert error.field in named
            assert "\x00" not in str(error)
            return
        except FileNotFoundError:
            outcome = None  # a write naming a disk, LUN or host this host lacks
        except Blocked:
            pass  # an acceptable value: the command (or write) was about to happen
        else:
            if not seen and issubclass(verb, verbs.RecordVerb):
                # A record write runs no program: accepted, it answers like a command
                # (here: no such record, 21, or no database, before any write).
                assert accepted_by_the_verb(verb, values)
                return
            if not seen:
                # A command naming a disk or map this host lacks: answered, not run.
                assert isinstance(outcome, tuple) and outcome[2].endswith(": not run\n")
        if not seen:
            assert accepted_by_the_verb(verb, values), outcome
            return
    # Not refused: then the rules accept it, and only the spy stopped it.
    assert seen, "accepted, yet nothing was attempted"
    assert accepted_by_the_verb(verb, values)


def test_every_verb_and_every_field_is_covered() -> None:
    assert {v for v, _ in FIELDS} == set(verbs.ALL_VERBS)
    assert {f for _, f in FIELDS} <= set(VALID)


# --- the edge: every key of the properties ------------------------------------------------

SECRET = "Zq9-SECRET-PW-7k"
BASE: dict[str, Any] = {
    "target_portal": "10.0.0.1:3260",
    "target_iqn": IQN,
    "target_lun": 1,
    "target_portals": ["10.0.0.1:3260", "[2001:db8::2]:3260"],
    "target_iqns": [IQN, IQN],
    "target_luns": [1, 1],
    "addressing_mode": "SAM2",
    "auth_method": "CHAP",
    "auth_username": "user",
    "auth_password": SECRET,
    "auth_username_in": "target",
    "auth_password_in": SECRET + "-in",
    "discovery_auth_method": "CHAP",
    "discovery_auth_username": "disco",
    "discovery_auth_password": SECRET + "-d",
    "volume_id": "6f0c6b5e-0d3e-4b36-9a1b-2f2a0c1d4e5f",
    "encrypted": False,
    "access_mode": "rw",
}
PLURAL = ("target_portals", "target_iqns", "target_luns")


def daemon_accepts(props: ConnectionProperties) -> None:
    """What the parser let through passes every check the daemon runs on it."""
    for target in props.targets:
        verbs.NodeNew(target.portal, target.iqn, "default")
        verbs.ScsiScan(7, 0, 0, target.lun)
    for prefix, chap in (
        ("node.session.auth.", props.chap),
        ("discovery.sendtargets.auth.", props.discovery_chap),
    ):
        if chap is None:
            continue
        fields: dict[str, str | None] = {"username": chap.username, "password": chap.password}
        if chap.mutual:
            fields |= {"username_in": chap.username_in, "password_in": chap.password_in}
        for name, value in fields.items():
            checks.check_value(prefix + name, value, secret=False)


def assert_clean(error: InvalidConnectionProperties) -> None:
    text = f"{error} {error.args!r}"
    assert SECRET not in text
    assert "\x00" not in text


@pytest.mark.parametrize("key", sorted(BASE))
@FAST
@given(data=st.data())
def test_hostile_property_is_refused_at_the_edge_or_accepted_by_the_daemon(
    key: str, data: st.DataObject
) -> None:
    value = data.draw(hostile, label=key)
    props_in = dict(BASE)
    if key in PLURAL and data.draw(st.booleans(), label="inside the list"):
        index = data.draw(st.integers(0, len(BASE[key]) - 1), label="index")
        props_in[key] = [value if i == index else v for i, v in enumerate(BASE[key])]
    else:
        props_in[key] = value
    with SPY.watching() as seen:
        try:
            props = ConnectionProperties.from_dict(props_in)
        except InvalidConnectionProperties as error:
            assert_clean(error)
            # A bad list may be refused for its length, named by its sibling.
            assert error.key.split("[")[0] in ((key, *PLURAL) if key in PLURAL else (key,))
            props = None
    assert not seen
    if props is not None:
        daemon_accepts(props)
        assert SECRET not in repr(props)


@FAST
@given(portal=hostile | st.text(alphabet="0123456789abcdef:.[]%-", max_size=24), iqn=hostile)
def test_parser_and_daemon_agree_on_portals_and_names(portal: object, iqn: object) -> None:
    try:
        props = ConnectionProperties.from_dict(
            {"target_portals": [portal], "target_iqns": [iqn], "target_luns": [0]}
        )
    except InvalidConnectionProperties:
        return
    daemon_accepts(props)


@pytest.mark.parametrize(
    "wrapper",
    [
        {"driver_volume_type": 10**400, "data": {}},
        {"driver_volume_type": ["iscsi"], "data": {}},
        {"driver_volume_type": "iscsi", "data": {"target_portal": "a", "target_iqn": "../x"}},
    ],
)
def test_hostile_connection_info_wrapper(wrapper: dict[str, Any]) -> None:
    with pytest.raises(InvalidConnectionProperties):
        ConnectionProperties.from_dict(wrapper)
