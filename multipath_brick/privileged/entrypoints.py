"""The privsep entrypoints: one narrow function per verb, run inside the daemon.

Each function is named after its verb's :attr:`~.verbs.Verb.entrypoint`, takes
the verb's fields positionally plus ``timeout``, and rebuilds the verb first, so
its validation runs in the daemon, where the privilege is: a compromised caller
can only send field values, and every value is checked again here. No function
accepts an argv or a path, and none runs anything but its verb's argv.

Every verb that deletes, scans, rescans, flushes, resizes, reads, links, hands a
device to multipathd or lists a WWID is also checked for ownership
(:mod:`.ownership`) first: the disk, host or map it names must be an iSCSI one,
as sysfs shows it, or :class:`~multipath_brick.exception.NotOwnedError` is
raised and nothing runs (:func:`_gone`, called by :func:`_run`, :func:`_ask`,
:func:`_record`; :func:`_write`).

Commands and record verbs return ``(exit_code, stdout, stderr, duration)``
(msgpack carries tuples): :data:`TIMED_OUT` when killed at their timeout, 127
and 126 for a missing or unexecutable program, as a shell would, and 1 unrun
when the disk or map they name does not exist. Sysfs writes return None or raise.

Every entrypoint also takes an optional keyword ``deadline``, a
``time.monotonic()`` instant (one clock for every process of a host) after
which the caller no longer waits: a request reaching a pool thread later is
dropped unrun (:class:`~multipath_brick.exception.CommandTimeout`), one starting
earlier gets only the time left. A login or scan queued behind a busy pool never
runs after its caller gave up, cleaned up its record, or detached the volume.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import TypeVar

from multipath_brick import verbs
from multipath_brick.exception import CommandTimeout, InvalidArgument
from multipath_brick.privileged import context, multipathd, nodedb, process, wwids_file
from multipath_brick.privileged.process import TIMED_OUT as TIMED_OUT  # re-exported
from multipath_brick.privileged.process import Outcome as Outcome
from multipath_brick.verbs import checks, ownership

_F = TypeVar("_F", bound=Callable[..., object])


def _entrypoint(func: _F) -> _F:
    @functools.wraps(func)
    def bounded(*args: object, deadline: object = None) -> object:
        if deadline is not None:
            # The timeout is every entrypoint's last argument.
            left = checks.check_deadline(deadline) - time.monotonic()
            if left <= 0:
                raise CommandTimeout(
                    (func.__name__,), TIMED_OUT, "dropped: its deadline passed before it could run"
                )
            args = (*args[:-1], min(checks.check_timeout(args[-1]), left))
        return func(*args)

    wrapped = context.entrypoint(bounded)
    # privsep returns a functools.partial: with the function's name, docstring and
    # __wrapped__, inspect.signature() and the docs show the real parameters.
    functools.update_wrapper(wrapped, func)
    return wrapped  # type: ignore[return-value]


def _gone(command: verbs.Command | verbs.RecordVerb) -> Outcome | None:
    """Check what the command touches; the answer to give instead of running
    it when that does not exist. :raises NotOwnedError: it is not ours."""
    error = ownership.check_command(command)
    return None if error is None else (1, "", error, 0.0)


def _ask(command: verbs.Command, timeout: float) -> Outcome:
    """Send a ``multipathd`` verb over the daemon's socket instead of running
    the client program (see :mod:`.multipathd`): same words, same outcome."""
    timeout = checks.check_timeout(timeout)
    program, *words = command.argv()
    if program != "multipathd":
        raise InvalidArgument("command", f"not a multipathd verb: {program}")
    if (gone := _gone(command)) is not None:
        return gone
    started = time.monotonic()
    code, out, err = multipathd.ask(words, timeout)
    return (code, out, err, time.monotonic() - started)


def _run(command: verbs.Command, timeout: float) -> Outcome:
    """Run a verb's argv with a timeout; never raises for its exit status."""
    timeout = checks.check_timeout(timeout)
    if (gone := _gone(command)) is not None:
        return gone
    started = time.monotonic()
    return process.run(command.argv(), started + timeout)


def _write(write: verbs.SysfsWrite, timeout: float) -> None:
    """Write a verb's value to its sysfs attribute, giving up after ``timeout``.

    The attribute written (by :func:`.process.write_attribute`) is the one in the
    device directory the ownership check accepted, not the verb's path through
    ``/sys/block`` or ``/sys/class``, whose links could name another device by now.

    :raises CommandTimeout: the write did not return in time.
    :raises NotOwnedError: the disk, LUN or host is not an iSCSI one.
    :raises OSError: the kernel refused the write; ENOENT also when the disk,
        LUN or host does not exist.
    """
    timeout = checks.check_timeout(timeout)
    path, value = ownership.attribute(write), write.value()
    if os.path.normpath(path) != path or not path.startswith("/sys/"):
        raise InvalidArgument("path", f"not a sysfs attribute: {path!r}")
    process.write_attribute(path, value, timeout)


# --- iscsiadm: node records and sessions -------------------------------------------


@_entrypoint
def node_new(portal: str, iqn: str, iface: str, tpgt: int | None, timeout: float) -> Outcome:
    """Create the node record of (portal, iqn, iface[, tpgt]): :class:`~.verbs.NodeNew`."""
    return _run(verbs.NodeNew(portal, iqn, iface, tpgt), timeout)


@_entrypoint
def node_show(portal: str, iqn: str, iface: str, timeout: float) -> Outcome:
    """Show a node record: :class:`~.verbs.NodeShow`."""
    return _run(verbs.NodeShow(portal, iqn, iface), timeout)


@_entrypoint
def node_login(portal: str, iqn: str, iface: str, timeout: float) -> Outcome:
    """Log in to one node: :class:`~.verbs.NodeLogin`."""
    return _run(verbs.NodeLogin(portal, iqn, iface), timeout)


@_entrypoint
def node_logout(portal: str, iqn: str, iface: str, timeout: float) -> Outcome:
    """Log out of one node: :class:`~.verbs.NodeLogout`."""
    return _run(verbs.NodeLogout(portal, iqn, iface), timeout)


@_entrypoint
def node_update(portal: str, iqn: str, iface: str, settings: object, timeout: float) -> Outcome:
    """Set allowed node settings, in one call: :class:`~.verbs.NodeUpdate`."""
    return _run(verbs.NodeUpdate.from_wire(portal, iqn, iface, settings), timeout)


@_entrypoint
def node_list(timeout: float) -> Outcome:
    """List node records: :class:`~.verbs.NodeList`."""
    return _run(verbs.NodeList(), timeout)


@_entrypoint
def session_list(timeout: float) -> Outcome:
    """List sessions: :class:`~.verbs.SessionList`."""
    return _run(verbs.SessionList(), timeout)


# --- iscsiadm: sendtargets discovery --------------------------------------------------


@_entrypoint
def discovery_new(portal: str, iface: str, timeout: float) -> Outcome:
    """Create a sendtargets discovery record: :class:`~.verbs.DiscoveryNew`."""
    return _run(verbs.DiscoveryNew(portal, iface), timeout)


@_entrypoint
def discovery_delete(portal: str, iface: str, timeout: float) -> Outcome:
    """Delete a discovery record: :class:`~.verbs.DiscoveryDelete`."""
    return _run(verbs.DiscoveryDelete(portal, iface), timeout)


@_entrypoint
def discovery_run(portal: str, iface: str, timeout: float) -> Outcome:
    """Discover without writing node records: :class:`~.verbs.DiscoveryRun`."""
    return _run(verbs.DiscoveryRun(portal, iface), timeout)


@_entrypoint
def discovery_update(portal: str, iface: str, name: str, value: str, timeout: float) -> Outcome:
    """Set one allowed discovery setting: :class:`~.verbs.DiscoveryUpdate`."""
    return _run(verbs.DiscoveryUpdate(portal, iface, name, value), timeout)


# --- multipath / multipathd ------------------------------------------------------------


@_entrypoint
def multipathd_show_daemon(timeout: float) -> Outcome:
    """Ask multipathd whether it runs: :class:`~.verbs.MultipathdShowDaemon`."""
    return _ask(verbs.MultipathdShowDaemon(), timeout)


@_entrypoint
def multipathd_show_paths(timeout: float) -> Outcome:
    """Path states: :class:`~.verbs.MultipathdShowPaths`."""
    return _ask(verbs.MultipathdShowPaths(), timeout)


@_entrypoint
def multipathd_show_map(map_name: str, timeout: float) -> Outcome:
    """One map's paths: :class:`~.verbs.MultipathdShowMap`."""
    return _ask(verbs.MultipathdShowMap(map_name), timeout)


@_entrypoint
def multipathd_add_path(device: str, timeout: float) -> Outcome:
    """Hand a path to multipathd: :class:`~.verbs.MultipathdAddPath`."""
    return _ask(verbs.MultipathdAddPath(device), timeout)


@_entrypoint
def multipathd_del_path(device: str, timeout: float) -> Outcome:
    """Take a path from multipathd: :class:`~.verbs.MultipathdDelPath`."""
    return _ask(verbs.MultipathdDelPath(device), timeout)


@_entrypoint
def multipath_add_wwid(wwid: str, device: str, timeout: float) -> Outcome:
    """Record the WWID of a disk: :class:`~.verbs.MultipathAddWwid`."""
    v = verbs.MultipathAddWwid(wwid, device)
    return _record(v, timeout, lambda t: WWIDS.add(v.wwid, t))


@_entrypoint
def multipath_remove_wwid(wwid: str, timeout: float) -> Outcome:
    """Forget a WWID: :class:`~.verbs.MultipathRemoveWwid`."""
    v = verbs.MultipathRemoveWwid(wwid)
    return _record(v, timeout, lambda t: WWIDS.remove(v.wwid, t))


@_entrypoint
def multipath_flush(map_name: str, timeout: float) -> Outcome:
    """Flush and remove a map: :class:`~.verbs.MultipathFlush`."""
    return _run(verbs.MultipathFlush(map_name), timeout)


@_entrypoint
def multipathd_del_map(map_name: str, timeout: float) -> Outcome:
    """Drop and remove a map: :class:`~.verbs.MultipathdDelMap`."""
    return _ask(verbs.MultipathdDelMap(map_name), timeout)


@_entrypoint
def multipathd_resize_map(map_name: str, timeout: float) -> Outcome:
    """Resize a map after its paths grew: :class:`~.verbs.MultipathdResizeMap`."""
    return _ask(verbs.MultipathdResizeMap(map_name), timeout)


# --- sysfs writes ---------------------------------------------------------------------


@_entrypoint
def scsi_scan(host: int, channel: int, target: int, lun: int, timeout: float) -> None:
    """Scan one H:C:T:L: :class:`~.verbs.ScsiScan`."""
    _write(verbs.ScsiScan(host, channel, target, lun), timeout)


@_entrypoint
def scsi_remove_lun(host: int, channel: int, target: int, lun: int, timeout: float) -> None:
    """Remove the SCSI device at H:C:T:L: :class:`~.verbs.ScsiRemoveLun`."""
    _write(verbs.ScsiRemoveLun(host, channel, target, lun), timeout)


@_entrypoint
def scsi_delete(device: str, timeout: float) -> None:
    """Remove a SCSI disk: :class:`~.verbs.ScsiDelete`."""
    _write(verbs.ScsiDelete(device), timeout)


@_entrypoint
def scsi_rescan(device: str, timeout: float) -> None:
    """Re-read a SCSI disk's size: :class:`~.verbs.ScsiRescan`."""
    _write(verbs.ScsiRescan(device), timeout)


# --- open-iscsi records: written by the daemon, secrets never on a command line ---

#: The host's record database and WWID file; the entrypoints take no path from the caller.
NODE_DB, WWIDS = nodedb.NodeDb(), wwids_file.WwidsFile()


def _record(verb: verbs.RecordVerb, timeout: float, apply: Callable[[float], object]) -> Outcome:
    """Carry out a record verb after the ownership check: failures as an exit code,
    with a stderr naming paths and keys only; a read's answer as stdout."""
    timeout = checks.check_timeout(timeout)
    if (gone := _gone(verb)) is not None:
        return gone
    started = time.monotonic()
    try:
        out = apply(timeout)
    except nodedb.NodeDbError as exc:
        return (exc.code, "", f"{exc.reason}\n", time.monotonic() - started)
    except OSError as exc:
        # strerror and errno only: the message may name a temporary file's path.
        reason = f"{' '.join(verb.display()[:2])}: {exc.strerror} (errno {exc.errno})\n"
        return (nodedb.ERR_IDBM, "", reason, time.monotonic() - started)
    return (0, out if isinstance(out, str) else "", "", time.monotonic() - started)


@_entrypoint
def node_write(
    portal: str,
    iqn: str,
    iface: str,
    settings: object,
    password: str | None,
    password_in: str | None,
    timeout: float,
) -> Outcome:
    """Write a node record's settings and CHAP secrets: :class:`~.verbs.NodeWrite`."""
    verb = verbs.NodeWrite.from_wire(portal, iqn, iface, settings, password, password_in)
    return _record(
        verb,
        timeout,
        lambda t: NODE_DB.write_node(verb.portal, verb.iqn, verb.iface, verb.values(), t),
    )


@_entrypoint
def node_read(portal: str, iqn: str, iface: str, timeout: float) -> Outcome:
    """Read a node record, secrets masked: :class:`~.verbs.NodeRead`."""
    verb = verbs.NodeRead(portal, iqn, iface)
    return _record(
        verb, timeout, lambda t: NODE_DB.read_node(verb.portal, verb.iqn, verb.iface, t)
    )


@_entrypoint
def node_delete(portal: str, iqn: str, iface: str, timeout: float) -> Outcome:
    """Delete a node record, refused while a session uses it: :class:`~.verbs.NodeDelete`."""
    v = verbs.NodeDelete(portal, iqn, iface)
    return _record(v, timeout, lambda t: NODE_DB.delete_node(v.portal, v.iqn, v.iface, t))


@_entrypoint
def discovery_set_secrets(
    portal: str, password: str, password_in: str | None, timeout: float
) -> Outcome:
    """Write a discovery record's CHAP secrets: :class:`~.verbs.DiscoverySetSecrets`."""
    verb = verbs.DiscoverySetSecrets(portal, password, password_in)
    return _record(
        verb, timeout, lambda t: NODE_DB.set_discovery_secrets(verb.portal, verb.values(), t)
    )


# --- iscsiadm: iface records ----------------------------------------------------------


@_entrypoint
def iface_new(iface: str, timeout: float) -> Outcome:
    """Create an iface record of ours: :class:`~.verbs.IfaceNew`."""
    return _run(verbs.IfaceNew(iface), timeout)


@_entrypoint
def iface_update(iface: str, name: str, value: str, timeout: float) -> Outcome:
    """Write one allowed setting of an iface of ours: :class:`~.verbs.IfaceUpdate`."""
    return _run(verbs.IfaceUpdate(iface, name, value), timeout)


@_entrypoint
def iface_delete(iface: str, timeout: float) -> Outcome:
    """Delete an iface record of ours: :class:`~.verbs.IfaceDelete`."""
    return _run(verbs.IfaceDelete(iface), timeout)


@_entrypoint
def iface_show(iface: str, timeout: float) -> Outcome:
    """Print one iface record: :class:`~.verbs.IfaceShow`."""
    return _run(verbs.IfaceShow(iface), timeout)


@_entrypoint
def iface_list(timeout: float) -> Outcome:
    """List iface records: :class:`~.verbs.IfaceList`."""
    return _run(verbs.IfaceList(), timeout)


@_entrypoint
def read_block(device: str, timeout: float) -> Outcome:
    """Read a block of an iSCSI disk or map: :class:`~.verbs.ReadBlock`."""
    return _run(verbs.ReadBlock(device), timeout)


@_entrypoint
def link_encrypted(device: str, timeout: float) -> Outcome:
    """os-brick's link to an iSCSI disk or map: :class:`~.verbs.LinkEncrypted`."""
    return _run(verbs.LinkEncrypted(device), timeout)


@_entrypoint
def unlink_encrypted(device: str, timeout: float) -> Outcome:
    """Remove os-brick's link of a device: :class:`~.verbs.UnlinkEncrypted`."""
    return _run(verbs.UnlinkEncrypted(device), timeout)
