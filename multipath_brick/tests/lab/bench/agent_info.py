"""Host-agent benchmark on the FakeHost: prints a table, asserts nothing.

    python -m multipath_brick.tests.lab.bench.agent_info [--volumes 500] [--attached 8]
        [--repeat 10]

Rows:
* ``info`` (``ManagedVolumes.volumes_info()``) over ``--volumes`` stored volumes,
  ``--attached`` of them really attached on the fake host (the rest stored with
  maps that are gone): the library call, and the command in-process
  (``cli.main(["info"])``, JSON rendering included);
* attach of one 4-portal volume: the library call against the command
  in-process (stdin parsing, store, rendering), each on a fresh host;
* the command's fixed cost as a process: ``python -c "import
  multipath_brick.agent.cli"`` (interpreter start and imports).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
from collections.abc import Callable

from multipath_brick import ISCSIMultipathConnector
from multipath_brick.agent import ManagedVolumes, State, VolumeStore, cli
from multipath_brick.attach import AttachSettings
from multipath_brick.iscsi.iscsiadm import LoginTimeouts
from multipath_brick.testing import FakeHost

from ..table import ms_header, ms_row
from .fakehost import GIB, plural_props

IQN = "iqn.2024-01.bench.mpb:target"
PORTALS = [f"10.0.{i}.2:3260" for i in range(1, 5)]
#: Widths of the min, median and max columns.
WIDTHS = (9, 9, 9)
SETTINGS = AttachSettings(grace=0.5, timeouts=LoginTimeouts(login_timeout=4, retries=1))


def info(lun: int) -> dict[str, object]:
    return {"driver_volume_type": "iscsi", "data": plural_props(IQN, PORTALS, lun)}


def agent(host: FakeHost, directory: str) -> ManagedVolumes:
    connector = ISCSIMultipathConnector(
        use_multipath=True,
        host=host,
        settings=SETTINGS,
        lock_path=os.path.join(directory, "locks"),
    )
    return ManagedVolumes(connector, store=os.path.join(directory, "volumes.db"))


def timings(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def row(name: str, times: list[float]) -> str:
    return ms_row(name, times, 44, WIDTHS)


def info_rows(volumes: int, attached: int, repeat: int) -> None:
    """``volumes_info()`` and ``multipath-brick info`` over ``volumes`` stored volumes."""
    with tempfile.TemporaryDirectory() as directory, FakeHost(time_scale=0.01) as host:
        host.add_target(IQN, PORTALS, luns={n: GIB for n in range(1, attached + 1)})
        managed = agent(host, directory)
        for lun in range(1, attached + 1):
            managed.attach_volume(f"attached-{lun:03}", info(lun))
        store = VolumeStore(os.path.join(directory, "volumes.db"))
        for n in range(volumes - attached):
            vol_id = f"stored-{n:04}"
            store.intend(vol_id, State.ATTACHING, {"driver_volume_type": "iscsi", "data": {}})
            wwid = f"36001405{n:024x}"
            store.attached(vol_id, f"/dev/mapper/{wwid}", {"multipath_id": wwid}, wwid)
        listed = managed.volumes_info()
        assert len(listed) == volumes and sum(v["exists"] for v in listed) == attached
        print(row(f"volumes_info(), {volumes} volumes", timings(managed.volumes_info, repeat)))

        def info_command() -> None:
            cli.main(["info"], volumes=lambda _: managed, stdout=io.StringIO())

        print(row(f"multipath-brick info (in-process), {volumes}", timings(info_command, repeat)))


def attach_rows(repeat: int) -> None:
    """One 4-portal attach: the library call against the command in-process."""
    library, command = [], []
    for _ in range(repeat):
        for kind in ("library", "command"):
            with tempfile.TemporaryDirectory() as directory, FakeHost(time_scale=0.01) as host:
                host.add_target(IQN, PORTALS, luns={1: GIB})
                volumes = agent(host, directory)

                def made(_: object, made: ManagedVolumes = volumes) -> ManagedVolumes:
                    return made

                start = time.perf_counter()
                if kind == "library":
                    volumes.attach_volume("v", info(1))
                    library.append(time.perf_counter() - start)
                else:
                    status = cli.main(
                        ["attach", "v"],
                        volumes=made,
                        stdin=io.StringIO(json.dumps(info(1))),
                        stdout=io.StringIO(),
                    )
                    command.append(time.perf_counter() - start)
                    assert status == 0
    print(row("attach, 4 portals: library call", library))
    print(row("attach, 4 portals: command (in-process)", command))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--volumes", type=int, default=500)
    parser.add_argument("--attached", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    print(ms_header("case", ("min ms", "median ms", "max ms"), 44, WIDTHS))
    info_rows(args.volumes, args.attached, args.repeat)
    attach_rows(args.repeat)


if __name__ == "__main__":
    main()
