"""No CHAP secret on any command line, in any log line, repr or error.

A recording host (a real :class:`~multipath_brick.host.base.Host`, delegating to
the FakeHost) keeps the *real* argv of every command run, not the masked one
the fake records, so the test sees what a process listing would have shown.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest

from multipath_brick import ISCSIMultipathConnector
from multipath_brick import verbs as v
from multipath_brick.exception import InvalidArgument
from multipath_brick.host.base import CommandResult
from multipath_brick.iscsi.properties import Chap
from multipath_brick.testing import FakeHost
from multipath_brick.tests.unit.conftest import FAST, GIB, IQN, PORTALS

USER, SECRET = "mpb-user", "Chap-S3cret-one"
USER_IN, SECRET_IN = "mpb-target", "Chap-S3cret-two"
D_USER, D_SECRET = "mpb-disc", "Chap-S3cret-three"
SECRETS = (SECRET, SECRET_IN, D_SECRET)


class RecordingHost(FakeHost):
    """The FakeHost, keeping every real argv and every record write it was asked."""

    def __enter__(self) -> RecordingHost:
        return self

    def __init__(self) -> None:
        super().__init__(time_scale=0.05)
        self.argvs: list[tuple[str, ...]] = []
        self.record_writes: list[v.RecordVerb] = []

    def run(self, command: v.Command | v.RecordVerb, *, timeout: float) -> CommandResult:
        if isinstance(command, v.RecordVerb):
            self.record_writes.append(command)
        else:
            self.argvs.append(command.argv())
        return super().run(command, timeout=timeout)


def props(**extra: Any) -> dict[str, Any]:
    return {
        "target_portal": PORTALS[0],
        "target_iqn": IQN,
        "target_lun": 1,
        "auth_method": "CHAP",
        "auth_username": USER,
        "auth_password": SECRET,
        "auth_username_in": USER_IN,
        "auth_password_in": SECRET_IN,
        "discovery_auth_method": "CHAP",
        "discovery_auth_username": D_USER,
        "discovery_auth_password": D_SECRET,
        **extra,
    }


def test_attach_with_chap_mutual_chap_and_discovery_chap_puts_no_secret_on_an_argv(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with RecordingHost() as host:
        host.add_target(
            IQN,
            PORTALS,
            luns={1: GIB},
            chap=(USER, SECRET),
            mutual_chap=(USER_IN, SECRET_IN),
            discovery_chap=(D_USER, D_SECRET),
        )
        connector = ISCSIMultipathConnector(
            use_multipath=True, host=host, settings=FAST, lock_path=str(tmp_path)
        )
        # Singular properties: the connector discovers the portals (discovery CHAP),
        # then logs in to each with mutual CHAP; the logins prove the secrets arrived.
        info = connector.connect_volume(props())
        assert [p["state"] for p in info["paths"]].count("active") >= 1
        assert connector.wait_for_pending(timeout=30)
        connector.disconnect_volume(props(), info)
        assert host.leftovers() == {}

        words = [word for argv in host.argvs for word in argv]
        assert any(w == "--login" for w in words) and any(w == "--discover" for w in words)
        for secret in SECRETS:
            assert not [argv for argv in host.argvs if any(secret in w for w in argv)]
        # Not vacuous: the secrets went through the record writes, in order.
        node_writes = [w for w in host.record_writes if isinstance(w, v.NodeWrite)]
        assert node_writes and all(
            (w.password, w.password_in) == (SECRET, SECRET_IN) for w in node_writes
        )
        assert [w.password for w in host.record_writes if isinstance(w, v.DiscoverySetSecrets)]
        # ... and nowhere a caller or an operator could read them.
        shown = [repr(w) + " ".join(w.display()) for w in host.record_writes]
        shown += [" ".join(argv) for argv, *_ in host.calls]
        shown += [r.getMessage() for r in caplog.records]
        assert not [s for s in shown for secret in SECRETS if secret in s]


def test_every_argv_verb_refuses_a_secret_key() -> None:
    for name in v.SECRET_SETTINGS:
        if name.startswith("node."):
            with pytest.raises(InvalidArgument) as info:
                v.NodeUpdate.one(PORTALS[0], IQN, "default", name, SECRET)
        else:
            with pytest.raises(InvalidArgument) as info:
                v.DiscoveryUpdate(PORTALS[0], "default", name, SECRET)
        assert info.value.field == "name" and SECRET not in str(info.value)


def test_no_argv_verb_has_a_field_a_secret_could_ride_in() -> None:
    # Every command verb's string fields are names, portals and devices; the only
    # free values (NodeUpdate/DiscoveryUpdate settings) refuse the secret keys
    # above. Record writes are the only verbs with a secret field, and no argv;
    # the record read and delete and the WWID file's edits have neither.
    for verb in v.ALL_VERBS:
        names = {f.name for f in dataclasses.fields(verb)}  # type: ignore[arg-type]
        secret_fields = {n for n in names if "password" in n}
        if issubclass(verb, v.Command):
            assert not secret_fields, verb
        elif issubclass(verb, v.RecordVerb):
            assert not hasattr(verb, "argv"), verb
            unsecret = (v.NodeRead, v.NodeDelete, v.MultipathAddWwid, v.MultipathRemoveWwid)
            assert bool(secret_fields) == (verb not in unsecret), verb


@pytest.mark.parametrize(
    "write",
    [
        v.NodeWrite(PORTALS[0], IQN, "default", password=SECRET, password_in=SECRET_IN),
        v.DiscoverySetSecrets(PORTALS[0], D_SECRET),
    ],
    ids=["node", "discovery"],
)
def test_record_writes_mask_their_secrets(write: v.RecordVerb) -> None:
    for text in (repr(write), str(write), " ".join(write.display())):
        assert not [s for s in SECRETS if s in text], text
    assert "***" in " ".join(write.display())
    with FakeHost() as host:
        failed = host.run(write, timeout=5)  # no such record
        assert failed.exit_code == 21
        assert not [s for s in SECRETS if s in repr(failed)]
        with pytest.raises(Exception) as info:
            failed.check()
        assert not [s for s in SECRETS if s in str(info.value) + repr(info.value.args)]


def test_a_wrong_secret_fails_the_login_as_before(host: FakeHost, tmp_path: Any) -> None:
    connector = ISCSIMultipathConnector(
        use_multipath=True, host=host, settings=FAST, lock_path=str(tmp_path)
    )
    wrong = {
        "target_portals": PORTALS,
        "target_iqns": [IQN] * 4,
        "target_luns": [1] * 4,
        "auth_method": "CHAP",
        "auth_username": "mpb-user",
        "auth_password": "not-the-secret",
    }
    from multipath_brick.exception import AuthenticationError

    with pytest.raises(AuthenticationError):
        connector.connect_volume(wrong)
    assert host.leftovers() == {}
    assert repr(Chap("u", "not-the-secret")).count("not-the-secret") == 0


def test_a_wrong_mutual_secret_is_a_fatal_login_as_in_the_lab() -> None:
    # iscsid refuses the target's answer: exit 19, not 24 (chap_modes_sequence.txt).
    with FakeHost() as host:
        host.add_target(
            IQN, PORTALS[:1], luns={1: GIB}, chap=(USER, SECRET), mutual_chap=(USER_IN, SECRET_IN)
        )
        assert host.run(v.NodeNew(PORTALS[0], IQN, "default"), timeout=5).ok
        settings = (
            ("node.session.auth.authmethod", "CHAP"),
            ("node.session.auth.username", USER),
            ("node.session.auth.username_in", USER_IN),
        )
        assert host.run(v.NodeUpdate(PORTALS[0], IQN, "default", settings), timeout=5).ok
        login = v.NodeLogin(PORTALS[0], IQN, "default")
        assert host.run(
            v.NodeWrite(PORTALS[0], IQN, "default", password=SECRET, password_in="wrong-in"),
            timeout=5,
        ).ok
        failed = host.run(login, timeout=30)
        assert failed.exit_code == 19
        assert "initiator reported error (19 - encountered non-retryable" in failed.stderr
        assert host.run(
            v.NodeWrite(PORTALS[0], IQN, "default", password=SECRET, password_in=SECRET_IN),
            timeout=5,
        ).ok
        assert host.run(login, timeout=30).ok


def test_a_secret_the_daemon_would_refuse_fails_before_any_record_is_made(
    host: FakeHost, tmp_path: Any
) -> None:
    from multipath_brick.iscsi.iscsiadm import Iscsiadm, LoginTimeouts, node_settings
    from multipath_brick.iscsi.properties import Target

    iscsiadm = Iscsiadm(host)
    too_long = Chap("mpb-user", "x" * 256)
    with pytest.raises(InvalidArgument) as info:
        iscsiadm.create_node(
            Target(PORTALS[0], IQN, 1), "default", node_settings(too_long, LoginTimeouts())
        )
    assert info.value.field == "node.session.auth.password" and "x" * 20 not in str(info.value)
    with pytest.raises(InvalidArgument):
        iscsiadm.discover(PORTALS[0], "default", too_long)
    assert host.calls == [] and host.leftovers() == {}
