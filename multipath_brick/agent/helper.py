"""``managedvolume-helper-multipath-brick``: vdsm's helper protocol, over this library.

vdsm (``lib/vdsm/storage/managedvolume.py``) attaches Managed Block Storage
volumes by running a helper as root, ``[python, HELPER, SUBCOMMAND]``, where
HELPER is ``/usr/libexec/vdsm/managedvolume-helper``, or
``managedvolume-helper-<adapter>`` when the engine's ``connection_info``
carries ``"adapter": "<adapter>"``. vdsm keeps its own database; the helper is
stateless. The protocol, as vdsm's own helper speaks it:

* argv: ``[--verbose] connector_info | attach | detach``;
* ``connector_info``: no input; stdout the connector properties as JSON;
* ``attach``: stdin the whole ``connection_info`` (``driver_volume_type``,
  ``data``, maybe ``adapter``); stdout the attachment (``device_info``), from
  which vdsm takes ``multipath_id`` to build ``/dev/mapper/<wwid>``;
* ``detach``: stdin vdsm's stored row (``connection_info``, ``attachment``,
  ``path``, ``vol_id``...); stdout ``{}``;
* exit 0 with one JSON line on stdout, or non-zero with the reason on stderr
  (vdsm raises ``ManagedVolumeHelperFailed`` with it). Logs go to stderr.

Install it where vdsm looks, e.g.
``ln -s $(command -v managedvolume-helper-multipath-brick)
/usr/libexec/vdsm/managedvolume-helper-multipath-brick`` and set the
storage domain's ``adapter`` to ``multipath-brick``. vdsm runs it with its own
Python interpreter, so it must be importable there.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any

from multipath_brick.agent.cli import end_process, start_process
from multipath_brick.exception import MultipathBrickError

if TYPE_CHECKING:
    from multipath_brick.connector import ISCSIMultipathConnector

LOG = logging.getLogger("managedvolume-helper")

#: Exit statuses: vdsm only tells zero from non-zero, and shows stderr.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: Seconds ``attach`` waits, after answering, for paths still logging in.
PENDING_TIMEOUT = 300.0


def _read(stdin: IO[str]) -> dict[str, Any]:
    text = stdin.read()
    if not text.strip():
        raise ValueError("missing input: expected a JSON object on stdin")
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("input must be a JSON object")
    return value


def main(
    argv: Sequence[str] | None = None,
    *,
    connector: Callable[[], ISCSIMultipathConnector] | None = None,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
) -> int:
    """Run one helper command; return the exit status.

    :param argv: the arguments after the program name (default ``sys.argv[1:]``).
    :param connector: makes the connector (tests pass one on a FakeHost);
        default: an :class:`~multipath_brick.ISCSIMultipathConnector` on this host.
    """
    make = connector or _default_connector
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    parser = argparse.ArgumentParser(
        prog="managedvolume-helper-multipath-brick",
        description="vdsm managed volume helper backed by multipath-brick",
    )
    parser.add_argument("--verbose", action="store_true", help="increase output verbosity")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("connector_info", help="print the host's connector info")
    commands.add_parser("attach", help="attach the volume whose connection_info is on stdin")
    commands.add_parser("detach", help="detach the volume whose stored row is on stdin")
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return EXIT_USAGE if stop.code else EXIT_OK
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(name)s: %(message)s",
        stream=sys.stderr,
    )
    made: list[ISCSIMultipathConnector] = []

    def once() -> ISCSIMultipathConnector:
        if not made:
            made.append(make())
        return made[0]

    try:
        result = _run(args.command, once, stdin)
    except (MultipathBrickError, ValueError, KeyError, TypeError) as error:
        # str() of our errors never holds a secret; the input is never echoed.
        print(f"managedvolume-helper: {args.command} failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    stdout.write(json.dumps(result) + "\n")
    stdout.flush()
    if made:
        # Paths slower than the map go on in this process's threads: finish them
        # before exiting, so vdsm's volume ends with every path, none half made.
        made[0].wait_for_pending(PENDING_TIMEOUT)
    return EXIT_OK


def _default_connector() -> ISCSIMultipathConnector:
    from multipath_brick.connector import ISCSIMultipathConnector

    return ISCSIMultipathConnector(use_multipath=True)


def _run(
    command: str, connector: Callable[[], ISCSIMultipathConnector], stdin: IO[str]
) -> dict[str, Any]:
    # Imported here, after run()'s start_process (see cli.start_process).
    from multipath_brick.agent.volumes import check_connection_info, connector_info

    if command == "connector_info":
        return connector_info(connector().host)
    if command == "attach":
        connection_info = _read(stdin)
        check_connection_info(connection_info)
        # vdsm refuses an iSCSI attachment without multipath_id: maps only.
        data = {**connection_info["data"], "enforce_multipath": True}
        attachment: dict[str, Any] = connector().connect_volume(data)
        LOG.debug("attached %s", attachment.get("path"))
        return attachment
    volume = _read(stdin)
    stored: Any = volume.get("connection_info")
    check_connection_info(stored)
    connector().disconnect_volume(stored["data"], volume.get("attachment"))
    return {}


def run() -> None:
    """Console-script entry point: the process readied as ``multipath-brick``'s
    (:func:`~multipath_brick.agent.cli.start_process`), since vdsm runs one per call."""
    start_process()
    status = main()
    end_process()
    sys.exit(status)


if __name__ == "__main__":
    run()
