"""No CHAP secret on any command line, on the real stack (issue 10, item 4).

A watcher thread reads every process's ``/proc/<pid>/cmdline`` (and the
environment of every iscsiadm it meets) as fast as it can while the library
attaches volumes with CHAP, mutual CHAP and discovery CHAP, and must never see
a secret. It counts the iscsiadm command lines it caught, so that a test
cannot pass without having looked at the commands that used to carry them
(``iscsiadm -m node ... -o update``). The logins prove the secrets were really
written (tgt refuses a wrong one), and ``iscsiadm -o show`` reads them back
masked.

Secrets are made per test (tgt keeps an account's first password, and the
lab's own password is in every process's environment): ``tgtadm`` has them on
its command line while the target is set up, before the watcher starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import subprocess
import threading
from collections.abc import Iterator, Sequence
from concurrent import futures
from typing import Any

import pytest

from multipath_brick.tests.lab.api import Lab

from .conftest import ConnectorFactory, Note, attach_every_path, dm_name, volume_props


def secret(tag: str) -> str:
    return f"mpb-{tag}-{secrets.token_hex(6)}"


class Watcher(threading.Thread):
    """Samples every process's command line until stopped."""

    def __init__(self, needles: Sequence[str]) -> None:
        super().__init__(name="cmdline-watcher", daemon=True)
        self.needles = [n.encode() for n in needles]
        self.stopping = threading.Event()
        self.rounds = 0
        self.iscsiadm_samples = 0
        self.iscsiadm_argvs: set[str] = set()
        self.leaks: list[str] = []

    def run(self) -> None:
        me = str(os.getpid())
        while not self.stopping.is_set():
            self.rounds += 1
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or pid == me:
                    continue
                raw = _read(f"/proc/{pid}/cmdline")
                if not raw:
                    continue
                self._check(pid, "cmdline", raw)
                if os.path.basename(raw.split(b"\0", 1)[0]) == b"iscsiadm":
                    self.iscsiadm_samples += 1
                    self.iscsiadm_argvs.add(raw.replace(b"\0", b" ").decode(errors="replace"))
                    self._check(pid, "environ", _read(f"/proc/{pid}/environ"))
            # A breath between rounds, so that the attach in this process gets the
            # GIL: an iscsiadm lasts ~0.3 s under TCG, a round a few tens of ms.
            self.stopping.wait(0.002)

    def _check(self, pid: str, what: str, raw: bytes) -> None:
        if any(n in raw for n in self.needles):
            # Never the secret itself in the report: which process, which file.
            program = raw.split(b"\0", 1)[0].decode(errors="replace")
            self.leaks.append(f"pid {pid} {what}: {program}")

    def saw(self, *words: str) -> bool:
        return any(all(w in argv.split() for w in words) for argv in self.iscsiadm_argvs)


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:  # the process is gone, or a kernel thread
        return b""


@contextlib.contextmanager
def watching(needles: Sequence[str]) -> Iterator[Watcher]:
    watcher = Watcher(needles)
    watcher.start()
    try:
        yield watcher
    finally:
        watcher.stopping.set()
        watcher.join(30)


def assert_clean(watcher: Watcher, note: Note) -> None:
    note(
        "watcher",
        {
            "rounds": watcher.rounds,
            "iscsiadm_samples": watcher.iscsiadm_samples,
            "iscsiadm_command_lines": len(watcher.iscsiadm_argvs),
            "leaks": len(watcher.leaks),
        },
    )
    assert not watcher.leaks, watcher.leaks
    # Not vacuous: it caught iscsiadm at work, the records' creation included
    # (the settings and secrets are then written by the daemon: no -o update).
    assert watcher.iscsiadm_samples > 0 and watcher.saw("-m", "node", "-o", "new"), (
        watcher.rounds,
        sorted(watcher.iscsiadm_argvs),
    )


def iscsiadm(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["iscsiadm", *argv], capture_output=True, text=True, timeout=60, check=False
    )


def record(portal: str, iqn: str, *, show_secrets: bool = False) -> dict[str, str]:
    """``iscsiadm -m node -o show`` of a record, as a dict (``-S``: secrets shown)."""
    argv = ["-m", "node", "-T", iqn, "-p", portal, "-I", "default", "-o", "show"]
    proc = iscsiadm(*argv, *(["-S"] if show_secrets else []))
    assert proc.returncode == 0, proc.stderr
    return dict(
        (k.strip(), v.strip())
        for k, sep, v in (line.partition("=") for line in proc.stdout.splitlines())
        if sep
    )


def no_temporaries() -> list[str]:
    found = []
    for base in ("/etc/iscsi/nodes", "/etc/iscsi/send_targets"):
        for dirpath, dirnames, filenames in os.walk(base):
            found += [os.path.join(dirpath, n) for n in dirnames + filenames if ".mpb-" in n]
    return found


# --- (a) CHAP and (b) mutual CHAP -------------------------------------------------------


@pytest.mark.parametrize("mutual", [False, True], ids=["chap", "mutual-chap"])
def test_chap_attach_puts_no_secret_on_any_command_line(
    lab: Lab, make_connector: ConnectorFactory, note: Note, mutual: bool
) -> None:
    iqn = f"iqn.2024-01.org.multipath-brick.lab:secrets-{'mutual' if mutual else 'chap'}"
    tag = secrets.token_hex(3)
    chap = (f"init-{tag}", secret("out"))
    chap_in = (f"tgt-{tag}", secret("in")) if mutual else None
    wwid = lab.add_target(iqn, {1: 16}, chap=chap, mutual_chap=chap_in)[1]
    props = volume_props(lab, 1, iqn=iqn, chap=chap)
    if chap_in:
        props.update(auth_username_in=chap_in[0], auth_password_in=chap_in[1])
    needles = [chap[1], *([chap_in[1]] if chap_in else [])]
    connector = make_connector()

    with watching(needles) as watcher:
        info, dm = attach_every_path(lab, connector, props)
        # While attached: every record reads back with its secrets masked...
        for portal in lab.portals:
            shown = record(portal, iqn)
            assert shown["node.session.auth.authmethod"] == "CHAP"
            assert shown["node.session.auth.username"] == chap[0]
            assert shown["node.session.auth.password"] == "********"
            if chap_in:
                assert shown["node.session.auth.username_in"] == chap_in[0]
                assert shown["node.session.auth.password_in"] == "********"
            assert shown["node.session.scan"] == "manual"  # the argv settings too
        connector.disconnect_volume(props, info)
    assert_clean(watcher, note)
    # ... and tgt logged in all 4 paths, so the secrets it checked were right.
    assert dm.startswith("dm-") and wwid
    assert not no_temporaries()


def test_wrong_mutual_secret_fails_the_login(lab: Lab, make_connector: ConnectorFactory) -> None:
    from multipath_brick.exception import NoUsablePathError

    iqn = "iqn.2024-01.org.multipath-brick.lab:secrets-wrong-in"
    tag = secrets.token_hex(3)
    chap, chap_in = (f"init-{tag}", secret("out")), (f"tgt-{tag}", secret("in"))
    lab.add_target(iqn, {1: 16}, chap=chap, mutual_chap=chap_in)
    props = volume_props(lab, 1, iqn=iqn, chap=chap)
    props.update(auth_username_in=chap_in[0], auth_password_in=secret("not-it"))
    with pytest.raises(NoUsablePathError):
        make_connector().connect_volume(props)


# --- (c) discovery CHAP -----------------------------------------------------------------


def test_discovery_chap_puts_no_secret_on_any_command_line(
    lab: Lab, make_connector: ConnectorFactory, note: Note, caplog: pytest.LogCaptureFixture
) -> None:
    from multipath_brick.exception import CommandError
    from multipath_brick.host import LinuxHost
    from multipath_brick.iscsi.iscsiadm import Iscsiadm
    from multipath_brick.iscsi.properties import Chap

    tag = secrets.token_hex(3)
    discovery = (f"disc-{tag}", secret("disc"))
    lab.set_discovery_chap(discovery)
    iqn = "iqn.2024-01.org.multipath-brick.lab:secrets-discovery"
    chap = (f"init-{tag}", secret("out"))
    lab.add_target(iqn, {1: 16}, chap=chap)
    portal = lab.portals[1]
    db = Iscsiadm(LinuxHost(), timeout=60)
    caplog.set_level(logging.WARNING)

    with watching([discovery[1], chap[1]]) as watcher:
        # tgt checks discovery CHAP: a wrong secret is refused (24), the right one
        # lists the targets; so the secret written off the argv is the one used.
        with pytest.raises(CommandError) as refused:
            db.discover(portal, "default", Chap(discovery[0], secret("wrong")))
        assert refused.value.exit_code == 24
        found = db.discover(portal, "default", Chap(*discovery))
        assert iqn in {t.iqn for t in found}
        # Singular properties: the connector discovers with discovery CHAP, then logs in.
        props = volume_props(lab, 1, iqn=iqn, chap=chap, portals=[portal], singular=True)
        props.update(
            discovery_auth_method="CHAP",
            discovery_auth_username=discovery[0],
            discovery_auth_password=discovery[1],
        )
        connector = make_connector()
        info = connector.connect_volume(props)
        assert connector.wait_for_pending(timeout=120)
        assert dm_name(info["path"])
        connector.disconnect_volume(props, info)
    assert_clean(watcher, note)
    assert watcher.saw("-m", "discoverydb", "--discover")
    assert not [r for r in caplog.records if "attaching through" in r.getMessage()]
    assert not no_temporaries()


# --- concurrent record writes -----------------------------------------------------------


def test_concurrent_record_writes_are_not_corrupted(
    lab: Lab, make_connector: ConnectorFactory, note: Note
) -> None:
    """Three volumes of three targets attach at once (12 records, secrets written
    under iscsiadm's lock) while another program keeps rewriting records of two
    more targets with plain iscsiadm: every record reads back right."""
    tag = secrets.token_hex(3)
    targets = {
        f"iqn.2024-01.org.multipath-brick.lab:secrets-c{i}": (f"c{i}-{tag}", secret(f"c{i}"))
        for i in range(3)
    }
    for iqn, chap in targets.items():
        lab.add_target(iqn, {1: 16}, chap=chap)
    decoys = [f"iqn.2024-01.org.multipath-brick.lab:decoy{i}" for i in range(2)]
    stop = threading.Event()
    # Per decoy record: the last round whose update exited 0, and the last tried
    # (an update that exits 6, its listing tripped, may or may not have written).
    rounds: dict[str, tuple[int, int]] = {}

    def other_program() -> None:
        # What an administrator's script does meanwhile: new records, updates.
        n = 0
        made: set[str] = set()
        while not stop.is_set():
            n += 1
            for iqn in decoys:
                for portal in lab.portals[:2]:
                    node = ["-m", "node", "-T", iqn, "-p", portal, "-I", "default"]
                    if f"{iqn} {portal}" not in made:
                        if iscsiadm(*node, "-o", "new").returncode != 0:
                            continue  # a listing tripped: make it next round
                        made.add(f"{iqn} {portal}")
                    update = ("-o", "update", "-n", "node.session.cmds_max", "-v", str(n))
                    proc = iscsiadm(*node, *update)
                    assert proc.returncode in (0, 6), proc.stderr  # 6: a listing tripped
                    ok = n if proc.returncode == 0 else rounds.get(f"{iqn} {portal}", (0, 0))[0]
                    rounds[f"{iqn} {portal}"] = (ok, n)

    needles = [chap[1] for chap in targets.values()]
    with watching(needles) as watcher, futures.ThreadPoolExecutor(4) as pool:
        decoy = pool.submit(other_program)
        connectors = {iqn: make_connector() for iqn in targets}
        props = {iqn: volume_props(lab, 1, iqn=iqn, chap=chap) for iqn, chap in targets.items()}
        attaching = {
            iqn: pool.submit(attach_every_path, lab, connectors[iqn], props[iqn])
            for iqn in targets
        }
        infos: dict[str, Any] = {iqn: f.result(timeout=600)[0] for iqn, f in attaching.items()}
        stop.set()
        decoy.result(timeout=120)
    for iqn, chap in targets.items():
        for portal in lab.portals:
            shown = record(portal, iqn)
            assert shown["node.name"] == iqn
            assert shown["node.session.auth.username"] == chap[0]
            assert shown["node.session.auth.password"] == "********"
            assert shown["node.session.scan"] == "manual"
            assert shown["node.startup"] == "manual"
            # Read back by iscsiadm itself: each record holds its own secret.
            assert record(portal, iqn, show_secrets=True)["node.session.auth.password"] == chap[1]
    assert rounds and all(n > 1 for _, n in rounds.values())  # it ran throughout
    for key, (ok, tried) in rounds.items():
        iqn, portal = key.split()
        assert record(portal, iqn)["node.session.cmds_max"] in {str(ok), str(tried)}
    for iqn in targets:
        connectors[iqn].disconnect_volume(props[iqn], infos[iqn])
    for iqn in decoys:
        for portal in lab.portals[:2]:
            iscsiadm("-m", "node", "-T", iqn, "-p", portal, "-I", "default", "-o", "delete")
    assert_clean(watcher, note)
    assert not no_temporaries()
