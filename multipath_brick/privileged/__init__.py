"""The privileged layer: one oslo.privsep context and how its daemon is started.

Every operation done as root is a verb of :mod:`multipath_brick.verbs`, sent to
the function of the same name in :mod:`.entrypoints`, which runs inside the
privsep daemon. This package holds the one :data:`context` those entrypoints
belong to, and :func:`start_daemon`, which picks how that daemon is started:

* the caller is root and no ``helper_command`` is configured: ``python -m
  multipath_brick.privsep_daemon`` with the caller's interpreter, no sudo, no
  privsep-helper on ``PATH``;
* otherwise: ``<root_helper> privsep-helper --privsep_context
  multipath_brick.privileged.context --privsep_sock_path <tmpdir>/privsep.sock``
  (``sudo`` when no root helper is given), or the configured ``helper_command``.

The daemon is always a new interpreter, never a fork of the caller. A forked
daemon (oslo.privsep's ``Method.FORK``) ends with ``os._exit`` as soon as its
caller's socket closes, so a caller killed while the daemon held open-iscsi's
node database lock (``lock.write``, a file, not a lock the kernel drops) left
the lock behind, and every later ``iscsiadm`` on the host waited 30 s for it. A
daemon started as a program leaves through ``sys.exit``, which lets the calls in
its pool finish first. Nor does a fork of a threaded caller (an agent, a
connector whose logins run in threads) inherit locks another thread held.

Options live in the ``[multipath_brick_privileged]`` section (oslo.privsep's
``user``, ``group``, ``capabilities``, ``thread_pool_size``, ``helper_command``,
``logger_name``, ``log_daemon_traceback``).

Importing this package builds the context, and with it imports oslo.privsep
(whose daemon module tries eventlet): only :class:`~multipath_brick.host.LinuxHost`
imports it. The verbs (:mod:`multipath_brick.verbs`) live outside it, so code
that only builds verbs or runs on :class:`~multipath_brick.testing.FakeHost`
never pays for it.
"""

from __future__ import annotations

import os
import shlex
import sys
import threading

from oslo_config import cfg
from oslo_privsep import capabilities as caps
from oslo_privsep import priv_context

__all__ = [
    "CFG_SECTION",
    "PYPATH",
    "THREAD_POOL_SIZE",
    "context",
    "helper_command",
    "start_daemon",
]

CFG_SECTION = "multipath_brick_privileged"
PYPATH = __name__ + ".context"

#: Default size of the daemon's thread pool (oslo.privsep's default is the CPU count).
#: Each privileged call holds a pool thread for as long as its command runs (a
#: ``multipath -f`` or a login can take many seconds), and several volumes attach
#: at once: with 2 CPUs the third concurrent caller would queue behind the others.
THREAD_POOL_SIZE = 32

_start_lock = threading.Lock()


def _make_context() -> priv_context.PrivContext:
    ctx = priv_context.PrivContext(
        # The prefix is this package, not the whole library: privsep refuses to make
        # an entrypoint of any function defined outside it.
        __name__,
        cfg_section=CFG_SECTION,
        pypath=PYPATH,
        capabilities=[
            # The one capability the daemon keeps. Device-mapper ioctls (map flush and
            # removal) and SCSI/block management are gated by CAP_SYS_ADMIN when the
            # daemon runs under a non-root ``user``. Sysfs writes need nothing more:
            # the scan/delete/rescan attributes are mode 0200, owned by uid 0, which
            # the daemon keeps by default (no CAP_DAC_OVERRIDE). Besides sysfs (its
            # ownership checks), which every user may read, the only files the daemon
            # reads and writes are open-iscsi's records and lock (nodedb.py), root's
            # own, mode 0600/0700: owner access, so no CAP_DAC_READ_SEARCH or
            # CAP_DAC_OVERRIDE either. Note that programs the daemon
            # execs while uid 0 regain the capabilities of the bounding set (the
            # kernel treats root's file capabilities as full): this list confines the
            # daemon's own code, the verbs' validation confines what it may exec.
            caps.CAP_SYS_ADMIN,
        ],
        logger_name=__name__,
    )
    # Set on our section only (oslo.config keeps defaults per group), in this module,
    # so that a daemon started through privsep-helper, which imports this context by
    # its pypath, gets the same default. A value in the config file still wins.
    cfg.CONF.set_default("thread_pool_size", THREAD_POOL_SIZE, group=CFG_SECTION)
    return ctx


#: The privsep context of every entrypoint.
context = _make_context()


def helper_command(root_helper: str | None, *, euid: int | None = None) -> list[str]:
    """The command that starts the daemon as root, without the context and socket
    arguments (oslo.privsep appends ``--privsep_context`` and ``--privsep_sock_path``).

    :param root_helper: the connector's ``root_helper``, e.g. ``sudo`` or ``sudo
        cinder-rootwrap /etc/cinder/rootwrap.conf``; ``sudo`` when None or empty.
        Ignored when the caller is root.
    :param euid: the caller's effective uid (default: this process's).
    :returns: the argv prefix, e.g. ``["sudo", "privsep-helper", "--config-file",
        "/etc/cinder/cinder.conf"]``, or for root ``[sys.executable, "-m",
        "multipath_brick.privsep_daemon"]``.
    """
    if (os.geteuid() if euid is None else euid) == 0:
        cmd = [sys.executable, "-m", "multipath_brick.privsep_daemon"]
    else:
        cmd = shlex.split(root_helper) if root_helper else ["sudo"]
        cmd.append("privsep-helper")
    # The helper is a new interpreter: give it our configuration files so that it
    # rebuilds the same [multipath_brick_privileged] section (oslo.privsep does the
    # same for its default command). They are only registered once CONF was called.
    try:
        for path in cfg.CONF.config_file:
            cmd.extend(["--config-file", path])
        for path in cfg.CONF.config_dir or ():
            cmd.extend(["--config-dir", path])
    except cfg.NoSuchOptError:
        pass
    return cmd


def start_daemon(root_helper: str | None = None) -> None:
    """Start the privsep daemon unless it is running; restart it if it died.

    Called before every privileged call by :class:`~multipath_brick.host.LinuxHost`,
    because oslo.privsep, left alone, starts a missing daemon through ``sudo
    privsep-helper`` even when the caller is root.

    :param root_helper: prefix used to gain root when the caller is not root
        (ignored when ``helper_command`` is configured).
    :raises oslo_privsep.daemon.FailedToDropPrivileges: the daemon did not start.
    """
    ctx = context
    if not ctx.client_mode:
        # We are the daemon (or a test runs the entrypoints in process): calls run here.
        return
    channel = ctx.channel
    if channel is not None and channel.running:
        return
    with _start_lock:
        if ctx.channel is not None and not ctx.channel.running:
            # The daemon died (killed, or its socket closed): start a new one the way
            # we choose, not the way privsep would (always sudo).
            try:
                ctx.stop()
            except OSError:
                ctx.channel = None
        if ctx.channel is not None:
            return
        if not ctx.conf.helper_command:
            # Our section's default only, so os-brick's own context is left alone
            # (privsep's init(root_helper=...) would change the prefix of every context).
            cfg.CONF.set_default(
                "helper_command", shlex.join(helper_command(root_helper)), group=CFG_SECTION
            )
        ctx.start(priv_context.Method.ROOTWRAP)
