"""Host side: boot one virtme-ng guest (QEMU TCG) and run a command in it.

The guest shares the host's / read-only over 9p, with tmpfs overlays on
/etc, /var, /tmp, /usr and /run. Consequences handled here:
- the guest's PATH is the system one: interpreters are called by absolute
  path and PATH is passed explicitly;
- paths under /var/tmp are NOT visible in the guest (fresh tmpfs there), so
  the Python and the repo must live elsewhere (checked);
- the repo is read-only in the guest: results come back through --rwdir.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

DEFAULT_VENV = os.environ.get("MPB_LAB_VENV", "/var/tmp/mpb-lab-venv")
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
GUEST_INVISIBLE = ("/var/tmp/",)  # tmpfs in the guest: host files there vanish


class LabHostError(RuntimeError):
    pass


def find_kernel() -> str:
    """Newest installed Debian kernel that ships iscsi_tcp (MPB_LAB_KERNEL wins)."""
    forced = os.environ.get("MPB_LAB_KERNEL")
    if forced:
        return forced

    def version_key(path: str) -> list[int]:
        return [int(x) for x in re.findall(r"\d+", os.path.basename(path))]

    for path in sorted(glob.glob("/boot/vmlinuz-*"), key=version_key, reverse=True):
        ver = os.path.basename(path)[len("vmlinuz-") :]
        if glob.glob(f"/lib/modules/{ver}/kernel/drivers/scsi/iscsi_tcp.ko*"):
            return path
    raise LabHostError(
        "no kernel with iscsi_tcp under /boot: run multipath_brick/tests/lab/prepare_host.sh"
    )


def find_vng() -> str:
    candidates = [
        os.environ.get("MPB_LAB_VNG", ""),
        os.path.join(DEFAULT_VENV, "bin", "vng"),
        shutil.which("vng") or "",
    ]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    raise LabHostError("virtme-ng (vng) not found: run multipath_brick/tests/lab/prepare_host.sh")


def check_guest_visible(path: str, what: str) -> None:
    real = os.path.realpath(path)
    if any(real.startswith(p) for p in GUEST_INVISIBLE):
        raise LabHostError(
            f"{what} {real} is under /var/tmp, which the guest "
            "cannot see (tmpfs there); use another location"
        )


def guest_env(python: str) -> dict[str, str]:
    """The environment of the guest's command: ``python`` (by absolute path) runs it."""
    return {
        # The guest's PATH is the system one: hand it ours (sbin included:
        # iscsiadm, multipathd, tgtd...).
        "PATH": os.pathsep.join(
            [os.path.dirname(python), os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin"]
            + ["/sbin", "/bin"]
        ),
        "HOME": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",  # the repo is read-only in the guest
        # The checkout, read-only at the host's path: the package imports from it.
        "PYTHONPATH": REPO_ROOT,
        "PYTHONUNBUFFERED": "1",
        "MPB_LAB_GUEST": "1",
        "CI": os.environ.get("CI", ""),
    }


def vng_argv(
    vng: str,
    kernel: str,
    guest_argv: list[str],
    rwdirs: list[tuple[str, str]],
    env: dict[str, str],
    cpus: int,
    memory: str,
) -> list[str]:
    """virtme-ng's command line: the guest runs guest_argv in env, cwd = repo root."""
    env_args = [f"{k}={v}" for k, v in sorted(env.items())]
    exec_cmd = shlex.join(["env", *env_args, *guest_argv])
    argv = [vng, "-r", kernel, "--disable-kvm", "--cpus", str(cpus), "-m", memory]
    argv += ["--cwd", REPO_ROOT]
    for guest_path, host_path in rwdirs:
        os.makedirs(host_path, exist_ok=True)
        argv.append(f"--rwdir={guest_path}={host_path}")
    return [*argv, "--exec", exec_cmd]


def stream(proc: subprocess.Popen[bytes], log_path: str | None, deadline: float) -> None:
    """Copy the guest's console to our stdout (and log_path) until it ends or the
    deadline passes (then :class:`subprocess.TimeoutExpired`)."""
    assert proc.stdout is not None
    log = open(log_path, "w", encoding="utf-8", errors="replace") if log_path else None
    try:
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            sys.stdout.write(line)
            sys.stdout.flush()
            if log:
                log.write(line)
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(proc.args, deadline)
    finally:
        if log:
            log.close()


def boot(
    guest_argv: list[str],
    *,
    rwdirs: list[tuple[str, str]],
    env: dict[str, str],
    cpus: int = 2,
    memory: str = "2G",
    timeout: float = 2400,
    log_path: str | None = None,
) -> int:
    """Boot a guest running guest_argv (cwd = repo root); stream its console
    to our stdout (and log_path); return its exit code."""
    kernel = find_kernel()
    vng = find_vng()
    argv = vng_argv(vng, kernel, guest_argv, rwdirs, env, cpus, memory)
    host_env = dict(os.environ)
    # vng calls its sibling virtme-run by name.
    host_env["PATH"] = os.path.dirname(vng) + os.pathsep + host_env.get("PATH", "")
    print(f"[lab] booting {os.path.basename(kernel)} (TCG, {cpus} vCPU, {memory})", flush=True)
    t0 = time.monotonic()
    # Output goes through a pipe (never a file): QEMU's chardev truncates a
    # regular file per channel and mangles the console.
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=host_env,
        start_new_session=True,
    )
    deadline = t0 + timeout
    try:
        stream(proc, log_path, deadline)
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        print(f"[lab] guest killed after {timeout:.0f}s timeout", flush=True)
        rc = 124
    print(f"[lab] guest finished in {time.monotonic() - t0:.1f}s, exit {rc}", flush=True)
    return rc
