"""How the daemon runs a program or writes a sysfs attribute, within a time limit.

The entrypoints (:mod:`.entrypoints`) validate and check ownership; this module
only runs what they accepted, so that no daemon thread is ever held longer
than its request's time: a program is killed at its deadline, one that does
not die is left to a reaper thread, and a sysfs write the kernel holds is
abandoned to a thread of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from concurrent import futures

from multipath_brick.exception import CommandTimeout

#: Exit status of a command killed at its timeout. The same value as
#: :data:`multipath_brick.host.base.TIMED_OUT` (a test keeps them equal): it is
#: repeated here because host/ imports this package and not the other way round.
TIMED_OUT = -9

#: ``(exit_code, stdout, stderr, duration)``: what a command entrypoint returns.
Outcome = tuple[int, str, str, float]

# After a kill, how long to wait for the program to die, then for the pipes to
# close: a program stuck in the kernel (D state: a scan or a flush on a dead
# path) dies only when the kernel lets go, and a helper that left the process
# group could keep the pipes open forever. Neither may hold a daemon thread.
REAP_SECONDS = 1.0


def run(argv: Sequence[str], deadline: float) -> Outcome:
    """Run ``argv`` until it ends or ``deadline`` (``time.monotonic()``) passes.

    :returns: ``(exit_code, stdout, stderr, duration)``; :data:`TIMED_OUT` when
        it was killed; 127 when the program is missing, 126 when it cannot be
        executed, as a shell would answer.
    """
    started = time.monotonic()
    return _finish(_start(argv), started, deadline)


def _start(argv: Sequence[str]) -> subprocess.Popen[str] | Outcome:
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # The parsers expect untranslated messages and C number formats.
            env={**os.environ, "LC_ALL": "C"},
            text=True,
            errors="replace",
            close_fds=True,
            # multipath reads an argument naming an existing block device file
            # as that device (stat() relative to the working directory): run
            # from / so that a map name or WWID can only be read as one.
            cwd="/",
            # Its own process group, so that a kill at the timeout also takes the
            # program's children, which would otherwise hold our pipes open.
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        return (127, "", str(exc), 0.0)
    except OSError as exc:
        return (126, "", str(exc), 0.0)


def _finish(proc: subprocess.Popen[str] | Outcome, started: float, deadline: float) -> Outcome:
    if isinstance(proc, tuple):
        return proc
    try:
        out, err = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        code = proc.poll()
        if code is None:
            # Note for logins: iscsid goes on logging in after iscsiadm is killed;
            # the session may still appear, and the caller must expect it.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=REAP_SECONDS)
            except subprocess.TimeoutExpired:
                _reap_later(proc)
                why = f"killed, but still there {REAP_SECONDS:.0f} s later (stuck in the kernel)"
                return (TIMED_OUT, "", why, time.monotonic() - started)
        try:
            out, err = proc.communicate(timeout=REAP_SECONDS)
        except subprocess.TimeoutExpired:
            out, err = "", ""
        if code is None:
            return (TIMED_OUT, out, err, time.monotonic() - started)
    return (proc.returncode, out, err, time.monotonic() - started)


def _reap_later(proc: subprocess.Popen[str]) -> None:
    """Leave a killed program that did not die to a thread of its own, which
    waits for it (the kernel lets go some day) and closes its pipes."""

    def reap() -> None:
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()

    threading.Thread(target=reap, name=f"reaper {proc.pid}", daemon=True).start()


def write_attribute(path: str, value: str, timeout: float) -> None:
    """Write ``value`` to the sysfs attribute ``path`` in one write(2).

    The write runs in a thread because the kernel may hold it for minutes (a
    scan waits for every LUN's inquiry to time out on a dead path); the thread
    is abandoned, not killed, since nothing can interrupt it.

    :raises CommandTimeout: the write did not return in time.
    :raises OSError: the kernel refused the write.
    """
    done: futures.Future[None] = futures.Future()

    def work() -> None:
        done.set_running_or_notify_cancel()
        try:
            # No O_CREAT: an attribute that does not exist must fail, not be made.
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                # One write(2): sysfs takes the value from a single call.
                os.write(fd, value.encode())
            finally:
                os.close(fd)
        except BaseException as exc:  # handed over to the waiting thread, raised there
            done.set_exception(exc)
        else:
            done.set_result(None)

    threading.Thread(target=work, name=f"sysfs-write {path}", daemon=True).start()
    try:
        done.result(timeout)
    except futures.TimeoutError:
        if done.done():  # the kernel's own ETIMEDOUT, not ours
            raise
        raise CommandTimeout(("write", path, value), TIMED_OUT, "") from None
