"""The ``multipath-brick`` command: the host agent for programs in any language and for operators.

JSON on stdout (the keys are documented in the user guide and kept stable),
a table with ``--human``, errors as ``{"error": {"type", "message", "exit_code"}}``
on stdout plus one line on stderr, and an exit status from :class:`Exit`.
Connection info (which may hold CHAP secrets) is read from stdin or a file,
never from the command line; ``MULTIPATH_BRICK_AUTH_PASSWORD`` may supply the
CHAP password instead. Nothing read is echoed.
"""

from __future__ import annotations

import argparse
import enum
import gc
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any

from multipath_brick.agent import output
from multipath_brick.agent.store import DEFAULT_STORE
from multipath_brick.exception import (
    AuthenticationError,
    DeviceNotReadyTimeout,
    InvalidConnectionProperties,
    InvalidVolumeRequest,
    MultipathUnavailableError,
    NoUsablePathError,
    StoreError,
)

if TYPE_CHECKING:
    from multipath_brick.agent.doctor import Check
    from multipath_brick.agent.volumes import ManagedVolumes

PROG = "multipath-brick"
PASSWORD_ENV = "MULTIPATH_BRICK_AUTH_PASSWORD"  # noqa: S105 - the variable's name, not a secret
STORE_ENV = "MULTIPATH_BRICK_STORE"
#: Seconds ``attach`` waits, after answering, for paths still logging in.
PENDING_TIMEOUT = 300.0


class Exit(enum.IntEnum):
    """Exit statuses of ``multipath-brick`` (stable; documented)."""

    OK = 0
    #: anything not listed below (a detach step failed, a command error...).
    FAILED = 1
    #: bad arguments or input: bad JSON, a bad field, an unsupported type, a mismatch.
    BAD_INPUT = 2
    #: a volume id that is not stored on this host (``info``, ``paths``).
    NOT_FOUND = 3
    #: every path was refused by the target's CHAP check.
    AUTH_FAILED = 4
    #: no path of the volume came up, or its map never became usable.
    NO_USABLE_PATH = 5
    #: the host cannot attach now: multipathd down, the store locked or unusable.
    HOST_NOT_READY = 6


def exit_for(error: BaseException) -> Exit:
    """The exit status of an error (the one place errors become statuses)."""
    if isinstance(error, AuthenticationError):
        return Exit.AUTH_FAILED
    if isinstance(error, (NoUsablePathError, DeviceNotReadyTimeout)):
        return Exit.NO_USABLE_PATH
    if isinstance(error, (InvalidVolumeRequest, InvalidConnectionProperties, ValueError)):
        return Exit.BAD_INPUT
    if isinstance(error, (MultipathUnavailableError, StoreError)):
        return Exit.HOST_NOT_READY
    return Exit.FAILED


class UsageError(ValueError):
    """Bad input to the command itself (JSON, files)."""


class NotStored(LookupError):
    """A volume id this host does not store."""


def build_parser() -> argparse.ArgumentParser:
    """The command's parser (the CLI reference in the docs is generated from it)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Attach iSCSI volumes over every path and remember them by volume id.",
        epilog=f"Exit status: {', '.join(f'{e.value} {e.name.lower()}' for e in Exit)}.",
    )
    parser.add_argument(
        "--store",
        default=os.environ.get(STORE_ENV, DEFAULT_STORE),
        help=f"the volume store (default ${STORE_ENV} or {DEFAULT_STORE})",
    )
    parser.add_argument("--lock-path", help="directory of lock files (default: beside the store)")
    parser.add_argument("--human", action="store_true", help="a table instead of JSON")
    parser.add_argument("--ip", help="the host's storage IP, reported by connector-info")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    verbs.add_parser("connector-info", help="the host's connector info (os-brick keys)")
    attach = verbs.add_parser(
        "attach",
        help="attach a volume; connection info JSON on stdin or --file",
        description="Attach a volume. The connection info is "
        '{"driver_volume_type": "iscsi", "data": {...}}, read from stdin or --file '
        f"(never from arguments); ${PASSWORD_ENV} fills a missing CHAP password.",
    )
    attach.add_argument("vol_id", metavar="VOL_ID")
    attach.add_argument("--file", help="read the connection info from this file, not stdin")
    detach = verbs.add_parser("detach", help="detach a volume by id (unknown ids succeed)")
    detach.add_argument("vol_id", metavar="VOL_ID")
    info = verbs.add_parser("info", help="stored volumes and whether each exists")
    info.add_argument("vol_ids", metavar="VOL_ID", nargs="*")
    paths = verbs.add_parser("paths", help="per-path state of a stored volume")
    paths.add_argument("vol_id", metavar="VOL_ID")
    verbs.add_parser("doctor", help="check the host: daemons, configuration, initiator")
    return parser


def reference() -> str:
    """The CLI reference as reStructuredText: each command's ``--help``, from the parser.

    The docs build writes it to ``doc/source/reference/cli-generated.inc``, so
    the reference can never drift from the command.
    """
    width = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"  # argparse wraps to the terminal; docs want one width
    try:
        parser = build_parser()
        sections = [(PROG, parser.format_help())]
        for action in parser._actions:  # noqa: SLF001 - argparse has no public way
            if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
                sections += [(f"{PROG} {n}", p.format_help()) for n, p in action.choices.items()]
    finally:
        if width is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = width
    out = []
    for title, text in sections:
        body = "\n".join(f"   {line}".rstrip() for line in text.splitlines())
        out.append(f"{title}\n{'-' * len(title)}\n\n.. code-block:: text\n\n{body}\n")
    return "\n".join(out)


def _connection_info(args: argparse.Namespace, stdin: IO[str]) -> dict[str, Any]:
    try:
        if args.file:
            with open(args.file, encoding="utf-8") as f:
                text = f.read()
        else:
            text = stdin.read()
    except OSError as error:
        raise UsageError(f"cannot read the connection info: {error.strerror}") from None
    try:
        value = json.loads(text)
    except ValueError as error:
        # The position only: the text may hold a password.
        raise UsageError(
            f"connection info is not JSON (line {getattr(error, 'lineno', '?')})"
        ) from None
    if not isinstance(value, dict):
        raise UsageError("connection info must be a JSON object")
    data = value.get("data")
    password = os.environ.get(PASSWORD_ENV)
    if password and isinstance(data, dict) and not data.get("auth_password"):
        data["auth_password"] = password
    return value


def _run(
    args: argparse.Namespace, volumes: Callable[[], ManagedVolumes], stdin: IO[str]
) -> tuple[Any, Exit]:
    if args.verb == "connector-info":
        return volumes().connector_info(), Exit.OK
    if args.verb == "attach":
        connection_info = _connection_info(args, stdin)
        return volumes().attach_volume(args.vol_id, connection_info), Exit.OK
    if args.verb == "detach":
        volumes().detach_volume(args.vol_id)
        return {"vol_id": args.vol_id}, Exit.OK
    if args.verb == "info":
        found = volumes().volumes_info(args.vol_ids or None)
        missing = set(args.vol_ids) - {v["vol_id"] for v in found}
        return found, Exit.NOT_FOUND if missing else Exit.OK
    if args.verb == "paths":
        agent = volumes()
        if agent.store.get(args.vol_id) is None:
            raise NotStored(args.vol_id)
        return agent.paths(args.vol_id), Exit.OK
    from multipath_brick.agent import doctor

    checks = doctor.run_checks(volumes().connector.host)
    failed = any(c.status is doctor.Status.FAIL for c in checks)
    return [_check_dict(c) for c in checks], Exit.HOST_NOT_READY if failed else Exit.OK


def _check_dict(check: Check) -> dict[str, str]:
    return {
        "name": check.name,
        "status": check.status.value,
        "detail": check.detail,
        "fix": check.fix,
    }


def main(
    argv: Sequence[str] | None = None,
    *,
    volumes: Callable[[argparse.Namespace], ManagedVolumes] | None = None,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run the command; return its exit status.

    :param argv: arguments after the program name (default ``sys.argv[1:]``).
    :param volumes: makes the :class:`ManagedVolumes` from the parsed arguments
        (tests pass one on a FakeHost); default: this host.
    """
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:
        return Exit.BAD_INPUT if stop.code else Exit.OK
    library = logging.getLogger("multipath_brick")
    handler = logging.StreamHandler(stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    level = library.level
    if stderr.isatty():
        # Someone is watching: show the library's progress (logins, map ready,
        # flush) as it happens. Programs reading a pipe get only the result.
        library.addHandler(handler)
        library.setLevel(logging.INFO)
    try:
        return _main(args, volumes, stdin, stdout, stderr)
    finally:
        library.removeHandler(handler)
        library.setLevel(level)


def _main(
    args: argparse.Namespace,
    volumes: Callable[[argparse.Namespace], ManagedVolumes] | None,
    stdin: IO[str],
    stdout: IO[str],
    stderr: IO[str],
) -> int:
    make = volumes or _default_volumes
    made: list[ManagedVolumes] = []

    def agent() -> ManagedVolumes:
        if not made:
            made.append(make(args))
        return made[0]

    try:
        result, status = _run(args, agent, stdin)
    except NotStored as missing:
        return _fail(
            args, stdout, stderr, "NotStored", f"volume {missing} is not stored", Exit.NOT_FOUND
        )
    except Exception as error:  # noqa: BLE001 - every failure becomes a documented status
        return _fail(args, stdout, stderr, type(error).__name__, str(error), exit_for(error))
    stdout.write(output.render(args.verb, result, human=args.human))
    stdout.flush()
    if args.verb == "attach":
        # The answer is out as soon as the map is usable; slower paths go on in
        # this process's threads, which die with it: wait for them before exiting
        # so no path is left half made.
        agent().connector.wait_for_pending(PENDING_TIMEOUT)
    return status


def _default_volumes(args: argparse.Namespace) -> ManagedVolumes:
    from multipath_brick.agent.volumes import ManagedVolumes

    return ManagedVolumes(store=args.store, lock_path=args.lock_path, my_ip=args.ip)


def _fail(
    args: argparse.Namespace,
    stdout: IO[str],
    stderr: IO[str],
    kind: str,
    message: str,
    status: Exit,
) -> int:
    print(f"{PROG}: {args.verb}: {message}", file=stderr)
    if not args.human:
        error = {"type": kind, "message": message, "exit_code": int(status)}
        stdout.write(json.dumps({"error": error}, sort_keys=True) + "\n")
    return status


def start_process() -> None:
    """Ready the command's own process (never an importer's): run before :func:`main`.

    Eventlet is kept out. oslo.privsep's daemon module, which os-brick's
    initiator and our privileged context import, tries ``import eventlet`` only
    to cooperate with a monkey-patched process. The command's process is never
    monkey-patched, yet that import (eventlet's DNS resolver and dnspython) cost
    about 0.19 s of every run and a deprecation warning on stderr. ``None`` in
    ``sys.modules`` makes the import fail as if eventlet were not installed,
    which oslo.privsep handles. Hence also the lazy imports of :mod:`.volumes`
    and :mod:`.doctor` in this module: nothing here imports the connector.

    Then the library is imported with the cyclic garbage collector off, and
    what it made is frozen: a short-lived process gains nothing from the
    collector scanning the objects of some 400 modules while they load.
    """
    if "eventlet" not in sys.modules:
        sys.modules["eventlet"] = None  # type: ignore[assignment]
    gc.disable()
    try:
        import multipath_brick.agent.volumes
        import multipath_brick.host.linux  # noqa: F401 - the default connector's host
    finally:
        gc.freeze()
        gc.enable()


def end_process() -> None:
    """Before the command's process exits: leave its objects to the kernel.

    At exit the interpreter collects every object it still tracks, only to
    free memory the kernel takes back anyway: about 45 ms with the library
    loaded (``multipath_brick/tests/lab/bench/agent_cli.py``). Frozen objects are left out; atexit
    handlers (log flushing) and the kernel's closing of files and sockets are
    not affected, and every store transaction is committed by now.
    """
    gc.freeze()


def run() -> None:
    """Console-script entry point."""
    start_process()
    status = main()
    end_process()
    sys.exit(status)


if __name__ == "__main__":
    run()
