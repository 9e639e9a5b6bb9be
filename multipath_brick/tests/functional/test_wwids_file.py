"""The daemon's edits of /etc/multipath/wwids beside multipath-tools' own.

The library lists and unlists a volume's WWID itself (no ``multipath -a``/``-w``
process). Every functional attach shows that multipathd, with ``find_multipaths
strict``, maps a WWID the daemon listed; here the real ``multipath`` reads and
edits the lines the daemon wrote, the daemon the lines ``multipath`` wrote, and
the daemon waits for the lock ``multipath`` takes on the file.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import threading
import time

from multipath_brick import verbs
from multipath_brick.tests.lab.api import Lab
from multipath_brick.tests.lab.shell import read_file

from .conftest import ConnectorFactory, Note, attach_every_path, nothing_left, volume_props

WWIDS = "/etc/multipath/wwids"
TIMEOUT = 30.0


def multipath(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["multipath", *args], capture_output=True, text=True, timeout=60)


def listed(wwid: str) -> bool:
    return f"/{wwid}/" in read_file(WWIDS).splitlines()


def test_the_daemon_and_multipath_read_and_edit_each_others_lines(
    lab: Lab, make_connector: ConnectorFactory, note: Note
) -> None:
    wwid = lab.add_lun(1, 64)
    connector = make_connector()
    host = connector.host
    props = volume_props(lab, 1)
    info, dm = attach_every_path(lab, connector, props)
    disk = lab.dm_slaves(dm)[0]
    assert listed(wwid)  # the daemon listed it, and multipathd made the map

    # multipath finds the daemon's line and comments it out.
    removed = multipath("-w", wwid)
    assert (removed.returncode, removed.stdout) == (0, f"wwid '{wwid}' removed\n"), removed
    assert not listed(wwid) and f"#{wwid}/" in read_file(WWIDS).splitlines()
    # The daemon sees it gone, as multipath would say.
    again = host.run(verbs.MultipathRemoveWwid(wwid), timeout=TIMEOUT)
    assert (again.exit_code, again.stdout) == (0, f"wwid '{wwid}' not in wwids file\n")

    # multipath lists it; the daemon finds that line, and does not add a second one.
    assert multipath("-a", wwid).returncode == 0
    before = read_file(WWIDS)
    assert host.run(verbs.MultipathAddWwid(wwid, disk), timeout=TIMEOUT).ok
    assert read_file(WWIDS) == before

    # The daemon waits for multipath-tools' lock on the file (a POSIX write lock).
    fd = os.open(WWIDS, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    threading.Timer(1.5, os.close, (fd,)).start()  # closing drops the lock
    t0 = time.monotonic()
    result = host.run(verbs.MultipathRemoveWwid(wwid), timeout=TIMEOUT)
    waited = time.monotonic() - t0
    note("waited_for_the_lock_s", round(waited, 2))
    assert result.ok and waited >= 1.4
    assert not listed(wwid)
    # And multipath agrees it is gone: the daemon's '#' is multipath's own.
    assert multipath("-w", wwid).stdout == f"wwid '{wwid}' not in wwids file\n"

    connector.disconnect_volume(props, info)
    nothing_left(lab, wwid)
