"""The two libraries a lab benchmark compares, behind one small interface.

Both run as root with a forked privsep daemon (no sudo, no privsep-helper);
os-brick's daemon gets the same thread pool size as ours (``--osbrick-pool``, 0
keeps oslo.privsep's default: the CPU count) so that the guest's 2 vCPUs do not
cap os-brick's parallel logins.
"""

from __future__ import annotations

import tempfile
from typing import Any

from .timing import Recorder, TimingHost, osbrick_label

OURS = "multipath-brick"


OSB = "os-brick"


def ours_name(gather: float | None) -> str:
    """The column of multipath-brick run with ``gather`` seconds (None: its default)."""
    return OURS if gather is None else f"{OURS} gather={gather:g}"


class Library:
    name = ""

    def __init__(self) -> None:
        self.recorder = Recorder()

    def connect(self, props: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def disconnect(self, props: dict[str, Any], info: dict[str, Any]) -> None:
        raise NotImplementedError


class Ours(Library):
    """multipath-brick with its default settings, or with ``gather`` seconds of
    gathering (then named ``multipath-brick gather=S``, a column of its own)."""

    name = OURS

    def __init__(self, grace: float, gather: float | None = None) -> None:
        super().__init__()
        from multipath_brick import ISCSIMultipathConnector
        from multipath_brick.host.linux import LinuxHost
        from multipath_brick.privileged import start_daemon
        from multipath_brick.settings import AttachSettings

        start_daemon(None)  # start the privsep daemon now, outside any timing
        self.grace = grace
        self.gather = gather
        if gather is None:
            self.settings = AttachSettings(grace=grace)
        else:
            self.settings = AttachSettings(grace=grace, gather=gather)
            self.name = ours_name(gather)
        self.conn = ISCSIMultipathConnector(
            use_multipath=True,
            root_helper=None,
            host=TimingHost(LinuxHost(), self.recorder),
            settings=self.settings,
            lock_path=tempfile.mkdtemp(prefix="mpb-bench-locks-"),
        )

    def connect(self, props: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = self.conn.connect_volume(props)
        return info

    def disconnect(self, props: dict[str, Any], info: dict[str, Any]) -> None:
        self.conn.disconnect_volume(props, info)


class OsBrick(Library):
    name = OSB

    def __init__(self, privsep: str, pool: int) -> None:
        super().__init__()
        from oslo_concurrency import lockutils  # noqa: F401 - registers [oslo_concurrency]
        from oslo_config import cfg

        cfg.CONF(args=[], project="mpb-lab-bench", default_config_files=[])
        cfg.CONF.set_override(
            "lock_path", tempfile.mkdtemp(prefix="osbrick-locks-"), "oslo_concurrency"
        )
        import os_brick
        from os_brick import privileged
        from os_brick.initiator.connectors.iscsi import ISCSIConnector
        from os_brick.privileged import rootwrap
        from oslo_privsep import priv_context

        os_brick.setup(cfg.CONF)  # 7.x: sets [os_brick] lock_path from oslo_concurrency's
        if pool > 0:
            cfg.CONF.set_override("thread_pool_size", pool, "privsep_osbrick")
        self.pool = cfg.CONF.privsep_osbrick.thread_pool_size
        self.privsep = privsep
        for ctx in (privileged.default, privileged.brick_privsep_hide_output):
            if privsep == "inprocess":
                ctx.set_client_mode(False)
            else:
                # We are root: fork the daemon as oslo.privsep would after sudo
                # privsep-helper, without needing either.
                ctx.start(priv_context.Method.FORK)
        recorder = self.recorder

        from oslo_concurrency import processutils
        from oslo_utils import strutils

        def execute(*cmd: str, **kwargs: Any) -> Any:
            with recorder.timed(osbrick_label(cmd)) as note:
                note["argv"] = strutils.mask_password(" ".join(str(c) for c in cmd))
                try:
                    out = rootwrap.execute(*cmd, **kwargs)
                except processutils.ProcessExecutionError as error:
                    note["rc"] = error.exit_code
                    note["out"] = str(error.stderr or "").strip().replace("\n", " | ")
                    raise
                note["rc"] = 0
                if isinstance(out, tuple) and out:
                    note["out"] = str(out[0] or "").strip().replace("\n", " | ")
                return out

        self.conn = ISCSIConnector(root_helper=None, execute=execute, use_multipath=True)
        self.version = getattr(os_brick, "__version__", "")
        try:
            from importlib.metadata import version

            self.version = version("os-brick")
        except Exception:  # noqa: BLE001, S110 - cosmetic only
            pass

    def connect(self, props: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = self.conn.connect_volume(dict(props))
        return info

    def disconnect(self, props: dict[str, Any], info: dict[str, Any]) -> None:
        self.conn.disconnect_volume(dict(props), info)
