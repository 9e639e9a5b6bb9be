"""Every privileged call of a benchmarked attach, timed.

multipath-brick's calls are timed through :class:`TimingHost`, a Host wrapping
the real one; os-brick's through its ``execute`` (:func:`osbrick_label` names
them). :func:`profile` and :func:`timeline` turn the calls into the report's
breakdowns and the raw file's timeline.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from multipath_brick.host.base import CommandResult
from multipath_brick.multipath.control import map_usable, usable_wwids
from multipath_brick.verbs import (
    Command,
    MultipathdShowMap,
    MultipathdShowPaths,
    RecordVerb,
    SysfsWrite,
)


@dataclasses.dataclass
class Call:
    label: str
    start: float
    end: float
    thread: str
    rc: int | None = None
    argv: str = ""
    out: str = ""


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []

    @contextmanager
    def timed(self, label: str) -> Iterator[dict[str, Any]]:
        """Time the block; it may fill the yielded dict with rc, argv and out."""
        note: dict[str, Any] = {}
        start = time.monotonic()
        try:
            yield note
        finally:
            self.calls.append(
                Call(
                    label,
                    start,
                    time.monotonic(),
                    threading.current_thread().name,
                    note.get("rc"),
                    str(note.get("argv", ""))[:160],
                    str(note.get("out", ""))[:160],
                )
            )

    def take(self) -> list[Call]:
        calls, self.calls = self.calls, []
        return calls


def _usable_map(answer: str) -> str:
    """The WWID of a ``show map`` answer whose map is usable; empty if not."""
    try:
        wwid = json.loads(answer)["map"]["uuid"]
    except (ValueError, KeyError, TypeError):
        return ""
    return wwid if isinstance(wwid, str) and map_usable(answer, wwid) else ""


class TimingHost:
    """A Host that times every privileged call of the real one it wraps."""

    def __init__(self, inner: Any, recorder: Recorder) -> None:
        self._inner = inner
        self._rec = recorder

    def run(self, command: Command | RecordVerb, *, timeout: float) -> CommandResult:
        with self._rec.timed(type(command).__name__) as note:
            note["argv"] = " ".join(command.display())  # secrets masked
            result: CommandResult = self._inner.run(command, timeout=timeout)
            note["rc"] = result.exit_code
            note["out"] = (result.stderr.strip() or result.stdout.strip()).replace("\n", " | ")
            if isinstance(command, MultipathdShowPaths):
                # The whole table is too long to keep: what usable_s needs of it.
                note["out"] = "usable: " + " ".join(sorted(usable_wwids(result.stdout)))
            elif isinstance(command, MultipathdShowMap):
                note["out"] = "usable: " + _usable_map(result.stdout)
            return result

    def write(self, write: SysfsWrite, *, timeout: float) -> None:
        with self._rec.timed(type(write).__name__) as note:
            note["argv"] = f"{write.path()} <- {write.value()}"
            self._inner.write(write, timeout=timeout)
            note["rc"] = 0

    def read_text(self, path: str) -> str:
        text: str = self._inner.read_text(path)
        return text

    def list_dir(self, path: str) -> list[str]:
        names: list[str] = self._inner.list_dir(path)
        return names

    def exists(self, path: str) -> bool:
        return bool(self._inner.exists(path))

    def realpath(self, path: str) -> str:
        real: str = self._inner.realpath(path)
        return real

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def osbrick_label(cmd: Sequence[str]) -> str:
    """A short name for a command os-brick ran: 'iscsiadm update', 'tee .../scan'."""
    if not cmd:
        return "?"
    prog = os.path.basename(cmd[0])
    args = list(cmd[1:])
    if prog == "iscsiadm":
        for flag in ("--op", "-o"):
            if flag in args and args.index(flag) + 1 < len(args):
                return f"iscsiadm {args[args.index(flag) + 1]}"
        for word in ("--login", "--logout", "--rescan", "-R"):
            if word in args:
                return f"iscsiadm {word.lstrip('-')}"
        mode = (
            args[args.index("-m") + 1] if "-m" in args and args.index("-m") + 1 < len(args) else ""
        )
        return f"iscsiadm -m {mode}".strip()
    if prog == "tee" and args:
        return "tee " + "/".join(args[-1].split("/")[-1:])
    return " ".join([prog, *args[:1]])


def profile(calls: Sequence[Call], t0: float) -> list[dict[str, Any]]:
    """Calls grouped by label: count, summed and max seconds, first start, last end."""
    groups: dict[str, list[Call]] = {}
    for c in calls:
        groups.setdefault(c.label, []).append(c)
    out = []
    for label, cs in groups.items():
        out.append(
            {
                "call": label,
                "n": len(cs),
                "sum_s": round(sum(c.end - c.start for c in cs), 3),
                "max_s": round(max(c.end - c.start for c in cs), 3),
                "first_start_s": round(min(c.start for c in cs) - t0, 3),
                "last_end_s": round(max(c.end for c in cs) - t0, 3),
                "failed": sum(1 for c in cs if c.rc not in (None, 0)),
            }
        )
    return sorted(out, key=lambda g: g["first_start_s"])


def timeline(calls: Sequence[Call], t0: float) -> list[list[Any]]:
    """Every call: [start s, seconds, thread, label, rc, argv (masked), output head]."""
    return [
        [round(c.start - t0, 3), round(c.end - c.start, 3), c.thread, c.label, c.rc, c.argv, c.out]
        for c in sorted(calls, key=lambda c: c.start)
    ]
