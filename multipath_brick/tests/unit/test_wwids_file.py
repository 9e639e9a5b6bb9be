"""The daemon's edits of multipath's WWID file (privileged/wwids_file.py), on a
file of the test's own: the bytes multipath-tools would leave, its lock, and
what the daemon refuses to open."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from multipath_brick.privileged.record_file import NodeDbError
from multipath_brick.privileged.wwids_file import HEADER, WwidsFile

A = "3600140500000000000000000000000a1"
B = "3600140500000000000000000000000b2"


@pytest.fixture
def wwids(tmp_path: Path) -> WwidsFile:
    return WwidsFile(str(tmp_path / "multipath" / "wwids"))


def text(w: WwidsFile) -> str:
    return Path(w.path).read_text(encoding="ascii")


def test_a_missing_file_is_made_with_the_header_private_to_root(wwids: WwidsFile) -> None:
    assert wwids.add(A, 5.0) == f"wwid '{A}' added\n"
    assert text(wwids) == HEADER + f"/{A}/\n"
    assert stat.S_IMODE(os.stat(wwids.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(wwids.path)).st_mode) == 0o700


def test_adding_a_listed_wwid_changes_nothing(wwids: WwidsFile) -> None:
    wwids.add(A, 5.0)
    before = text(wwids)
    assert wwids.add(A, 5.0) == f"wwid '{A}' added\n"  # multipath says the same
    assert text(wwids) == before


def test_removing_comments_the_line_out_and_adding_again_appends(wwids: WwidsFile) -> None:
    wwids.add(A, 5.0)
    wwids.add(B, 5.0)
    assert wwids.remove(A, 5.0) == f"wwid '{A}' removed\n"
    assert text(wwids) == HEADER + f"#{A}/\n/{B}/\n"
    assert wwids.remove(A, 5.0) == f"wwid '{A}' not in wwids file\n"
    wwids.add(A, 5.0)
    assert text(wwids) == HEADER + f"#{A}/\n/{B}/\n/{A}/\n"


def test_a_wwid_is_listed_only_by_a_line_of_its_own(wwids: WwidsFile) -> None:
    Path(wwids.path).parent.mkdir(mode=0o700)
    # A longer WWID that starts with A, A in a comment, A not at a line's start.
    Path(wwids.path).write_text(f"/{A}0/\n# /{A}/\n x/{A}/\n/{B}/", encoding="ascii")
    os.chmod(wwids.path, 0o600)
    assert wwids.remove(A, 5.0) == f"wwid '{A}' not in wwids file\n"
    wwids.add(A, 5.0)  # after a last line without its newline: a line of its own
    assert text(wwids) == f"/{A}0/\n# /{A}/\n x/{A}/\n/{B}/\n/{A}/\n"


def test_every_line_listing_it_is_commented_out(wwids: WwidsFile) -> None:
    Path(wwids.path).parent.mkdir(mode=0o700)
    Path(wwids.path).write_text(f"/{A}/\n/{B}/\n/{A}/\n", encoding="ascii")
    os.chmod(wwids.path, 0o600)
    wwids.remove(A, 5.0)
    assert text(wwids) == f"#{A}/\n/{B}/\n#{A}/\n"


@pytest.mark.parametrize("kind", ["symlink", "group-writable", "directory"])
def test_a_file_that_is_not_multipaths_is_refused(wwids: WwidsFile, kind: str) -> None:
    path = Path(wwids.path)
    path.parent.mkdir(mode=0o700)
    if kind == "symlink":
        target = path.parent / "elsewhere"
        target.write_text("", encoding="ascii")
        path.symlink_to(target)
    elif kind == "group-writable":
        path.write_text(f"/{B}/\n", encoding="ascii")
        os.chmod(path, 0o620)
    else:
        path.mkdir()
    with pytest.raises(NodeDbError) as refused:
        wwids.add(A, 5.0)
    assert refused.value.code == 1
    assert wwids.path in refused.value.reason
    if kind == "symlink":
        assert (path.parent / "elsewhere").read_text(encoding="ascii") == ""


LOCKER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def test_it_waits_for_another_programs_lock_and_gives_up_at_its_timeout(
    wwids: WwidsFile,
) -> None:
    wwids.add(B, 5.0)
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, wwids.path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline() == "locked\n"
        with pytest.raises(NodeDbError, match="locked by another program"):
            wwids.add(A, 0.2)
        assert f"/{A}/" not in text(wwids)
        done = threading.Event()

        def add() -> None:
            wwids.add(A, 30.0)
            done.set()

        adder = threading.Thread(target=add)
        adder.start()
        time.sleep(0.2)
        assert not done.is_set()  # waiting for the lock
    finally:
        assert locker.stdin is not None
        locker.stdin.close()  # the locker exits: the kernel drops its lock
        locker.wait(10)
    adder.join(10)
    assert done.is_set()
    assert text(wwids).endswith(f"/{B}/\n/{A}/\n")


def test_the_daemons_own_threads_do_not_interleave(wwids: WwidsFile) -> None:
    # A POSIX lock is the process's: without the thread lock, two threads of the
    # daemon would both hold it and could append over each other.
    names = [f"36001405{i:025x}" for i in range(40)]
    threads = [threading.Thread(target=wwids.add, args=(n, 10.0)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = text(wwids).splitlines()
    assert sorted(line for line in lines if line.startswith("/")) == sorted(
        f"/{n}/" for n in names
    )
