"""The daemon's WWID file edits replayed against multipath-tools' own, from the
lab capture ``tests/fixtures/wwids_edit_sequence.txt`` (``lab capture --part
wwids``): after each ``multipath -a``/``-w`` the daemon's edit answers the same
and leaves the same bytes (``cat -A``) and mode."""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

from multipath_brick.privileged.wwids_file import WwidsFile
from multipath_brick.tests.unit.test_fake_host_fixtures import captures

SEQUENCE = "wwids_edit_sequence.txt"


def cat_a(path: Path) -> str:
    """``cat -A`` of an ASCII file: each line ends in ``$``."""
    return path.read_text(encoding="ascii").replace("\n", "$\n")


def test_the_daemon_leaves_the_wwids_file_as_multipath_does(tmp_path: Path) -> None:
    ours = WwidsFile(str(tmp_path / "multipath" / "wwids"))
    compared = 0
    for block in captures(SEQUENCE):
        argv = shlex.split(block.command)
        if argv[0] == "multipath":
            option, wwid = argv[1:]
            edit = ours.add if option == "-a" else ours.remove
            assert (0, edit(wwid, 5.0)) == (block.exit_code, block.stdout), block.command
        elif argv[0] == "cat":
            assert cat_a(Path(ours.path)) == block.stdout, block.command
            compared += 1
        elif argv[0] == "stat":
            mode, _owner, size = block.stdout.split()
            st = os.stat(ours.path)
            assert (f"{stat.S_IMODE(st.st_mode):o}", st.st_size) == (mode, int(size))
    assert compared == 6
