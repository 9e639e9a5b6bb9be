"""Tiny subprocess helpers shared by the guest setup and the fixtures."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


class LabCommandError(RuntimeError):
    def __init__(self, argv: Sequence[str], proc: subprocess.CompletedProcess[str]):
        self.argv = list(argv)
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        super().__init__(
            f"{' '.join(argv)!s} exited {proc.returncode}: "
            f"{(proc.stderr or proc.stdout or '').strip()[:2000]}"
        )


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 60,
    input: str | None = None,
    ok_codes: Sequence[int] = (0,),
) -> subprocess.CompletedProcess[str]:
    """Run argv (never through a shell), capture text output, bound the time."""
    proc = subprocess.run(
        list(argv),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode not in ok_codes:
        raise LabCommandError(argv, proc)
    return proc


def wait_for(
    what: str,
    predicate: Callable[[], T | None],
    *,
    timeout: float = 30,
    interval: float = 0.2,
) -> T:
    """Poll predicate until it returns something truthy; TimeoutError names what."""
    deadline = time.monotonic() + timeout
    while True:
        value: T | None
        try:
            value = predicate()
        except (OSError, subprocess.SubprocessError):
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def write_file(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def read_file(path: str, default: str = "") -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return default
