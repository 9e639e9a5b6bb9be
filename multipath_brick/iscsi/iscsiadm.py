"""Typed iscsiadm: exit codes, output parsers, and the node/discovery verbs.

Parsers are pure functions, tested against output captured from a real
open-iscsi in ``multipath_brick/tests/fixtures/``.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import re

from multipath_brick import verbs
from multipath_brick.host.base import CommandResult, Host
from multipath_brick.iscsi.properties import Chap, Target

LOG = logging.getLogger(__name__)


class IscsiadmExit(enum.IntEnum):
    """iscsiadm exit codes, from open-iscsi ``include/iscsi_err.h``."""

    SUCCESS = 0
    GENERIC = 1
    SESS_NOT_FOUND = 2
    NOMEM = 3
    TRANS = 4
    LOGIN = 5
    IDBM = 6
    INVAL = 7
    TRANS_TIMEOUT = 8
    INTERNAL = 9
    LOGOUT = 10
    PDU_TIMEOUT = 11
    TRANS_NOT_FOUND = 12
    ACCESS = 13
    TRANS_CAPS = 14
    #: On login: already logged in (success). On node delete: a session uses the record.
    SESS_EXISTS = 15
    INVALID_MGMT_REQ = 16
    ISNS_UNAVAILABLE = 17
    ISCSID_COMM_ERR = 18
    FATAL_LOGIN = 19
    ISCSID_NOTCONN = 20
    NO_OBJS_FOUND = 21
    SYSFS_LOOKUP = 22
    HOST_NOT_FOUND = 23
    LOGIN_AUTH_FAILED = 24
    ISNS_QUERY = 25
    ISNS_REG_FAILED = 26
    OP_NOT_SUPP = 27
    BUSY = 28
    AGAIN = 29
    UNKNOWN_DISCOVERY_TYPE = 30
    CHILD_TERMINATED = 31
    SESSION_NOT_CONNECTED = 32

    @classmethod
    def describe(cls, code: int) -> str:
        """A short name for any exit code, known or not (``'LOGIN_AUTH_FAILED (24)'``)."""
        try:
            return f"{cls(code).name} ({code})"
        except ValueError:
            return f"exit {code}"


@dataclasses.dataclass(frozen=True)
class DiscoveredTarget:
    """One line of sendtargets output (or ``iscsiadm -m node``)."""

    portal: str
    tpgt: int
    iqn: str


_NODE_LINE = re.compile(r"^(\S+?),(-?\d+) (\S+)$")


def parse_targets(text: str) -> list[DiscoveredTarget]:
    """Parse sendtargets output or ``iscsiadm -m node``.

    ``192.168.101.2:3260,1 iqn.2024-01.lab.mpb:target1``
    """
    found = []
    for line in text.splitlines():
        match = _NODE_LINE.match(line.strip())
        if match:
            portal, tpgt, iqn = match.groups()
            found.append(DiscoveredTarget(portal, int(tpgt), iqn))
    return found


def parse_record(text: str) -> dict[str, str]:
    """Parse ``iscsiadm -m node ... -o show``: ``node.session.scan = manual``."""
    record = {}
    for line in text.splitlines():
        name, sep, value = line.partition(" = ")
        if sep and not name.startswith("#"):
            record[name.strip()] = value.strip()
    return record


@dataclasses.dataclass(frozen=True)
class LoginTimeouts:
    """How long a login to a dead portal may take: ``login_timeout * retries`` seconds.

    Stock iscsid.conf says 15 s x 8 = 2 minutes; we write these per node before
    logging in so that a dead portal costs a bounded, known time. Failover
    timing of established sessions (``replacement_timeout``, nop-outs) stays the
    administrator's, from iscsid.conf.
    """

    login_timeout: int = 10
    retries: int = 2

    @property
    def worst_case(self) -> float:
        return float(self.login_timeout * self.retries)


@dataclasses.dataclass(frozen=True)
class NodeSettings:
    """What is written to a node record before login.

    :ivar settings: ``(name, value)`` pairs; no secret.
    :ivar chap: the CHAP credentials whose secrets are written with them; None
        without CHAP. Its ``repr`` masks them.
    """

    settings: tuple[tuple[str, str], ...]
    chap: Chap | None = None

    def write(self, target: Target, iface: str) -> verbs.NodeWrite:
        """The daemon's write of this record: settings and secrets, off the command line."""
        if self.chap is None:
            return verbs.NodeWrite(target.portal, target.iqn, iface, self.settings)
        password_in = self.chap.password_in if self.chap.mutual else None
        return verbs.NodeWrite(
            target.portal, target.iqn, iface, self.settings, self.chap.password, password_in
        )


def node_settings(chap: Chap | None, timeouts: LoginTimeouts) -> NodeSettings:
    """The settings written to every node record before login, in order.

    ``node.session.scan=manual``: the kernel must not create a disk for every LUN
    of a shared target; we scan exactly the LUN we attach. The CHAP secrets are
    not among the settings: iscsiadm would have them on its command line, which
    every local user can read in ``/proc``.
    """
    settings = [
        ("node.startup", "manual"),
        ("node.session.scan", "manual"),
        ("node.conn[0].timeo.login_timeout", str(timeouts.login_timeout)),
        ("node.session.initial_login_retry_max", str(timeouts.retries)),
    ]
    if chap is None:
        settings.append(("node.session.auth.authmethod", "None"))
        return NodeSettings(tuple(settings))
    settings += [
        ("node.session.auth.authmethod", "CHAP"),
        ("node.session.auth.username", chap.username),
    ]
    if chap.mutual:
        assert chap.username_in is not None  # noqa: S101
        settings.append(("node.session.auth.username_in", chap.username_in))
    return NodeSettings(tuple(settings), chap)


class Iscsiadm:
    """The iscsiadm verbs the connector uses, on one Host."""

    def __init__(self, host: Host, *, timeout: float = 30.0) -> None:
        self._host = host
        self._timeout = timeout

    def _run(self, command: verbs.Command | verbs.RecordVerb, *accepted: int) -> CommandResult:
        return self._host.run(command, timeout=self._timeout).check(*accepted)

    def create_node(
        self, target: Target, iface: str, settings: NodeSettings, tpgt: int | None = None
    ) -> None:
        """Create (or refresh) a node record, then write its settings and secrets.

        :param tpgt: the portal group tag to file the record under; None for
            open-iscsi's flat layout, one record per (target, portal) whatever
            the iface (see :class:`~multipath_brick.verbs.NodeNew`).

        In this order, before any login: ``-o new`` resets the record to
        iscsid.conf's defaults, then the daemon rewrites the record file with
        the settings and the CHAP secrets in one go
        (:class:`~multipath_brick.verbs.NodeWrite`): no secret on a command
        line, and one iscsiadm process per record instead of two.
        Callers queue these in the machine's node-record queue
        (:func:`multipath_brick.inflight.node_records`): never two at once for
        one target.
        """
        # The verb first: a secret it refuses (empty, too long) fails before
        # anything is made.
        write = settings.write(target, iface)
        self._run(verbs.NodeNew(target.portal, target.iqn, iface, tpgt), IscsiadmExit.SESS_EXISTS)
        self._run(write)

    def delete_node(self, target: Target, iface: str) -> bool:
        """Delete a node record; False when a session still uses it. A record
        that is not there (another volume's detach deleted it) is no error.

        Deleted by the daemon (:class:`~multipath_brick.verbs.NodeDelete`), not
        by ``iscsiadm -o delete``: no process, and no listing of the database
        that trips on another program's change.
        """
        result = self._host.run(
            verbs.NodeDelete(target.portal, target.iqn, iface), timeout=self._timeout
        )
        if result.exit_code == IscsiadmExit.SESS_EXISTS:
            return False
        result.check(IscsiadmExit.NO_OBJS_FOUND)
        return True

    def show_node(self, target: Target, iface: str) -> dict[str, str] | None:
        """A node record's settings (secrets masked), None when absent.

        Read by the daemon from the record file (:class:`~multipath_brick.verbs.NodeRead`),
        not by ``iscsiadm -o show``: an attach looks at every path's record, and a
        process per look was a third of the iscsiadm runs of an attach.
        """
        result = self._host.run(
            verbs.NodeRead(target.portal, target.iqn, iface), timeout=self._timeout
        )
        if result.check(IscsiadmExit.NO_OBJS_FOUND).exit_code:
            return None
        return parse_record(result.stdout)

    def login(self, target: Target, iface: str, *, timeout: float) -> CommandResult:
        """Log in; the result as it came, to be read with :func:`login_succeeded`.

        :param timeout: seconds before the command is killed.
        """
        result = self._host.run(verbs.NodeLogin(target.portal, target.iqn, iface), timeout=timeout)
        if result.exit_code == IscsiadmExit.IDBM and login_succeeded(result):
            LOG.info(
                "%s via %s logged in; iscsiadm exited 6 because the node database changed "
                "meanwhile",
                target,
                iface,
            )
        return result

    def logout(self, target: Target, iface: str) -> None:
        """Log out; a session that is already gone is not an error."""
        self._run(
            verbs.NodeLogout(target.portal, target.iqn, iface),
            IscsiadmExit.NO_OBJS_FOUND,
            IscsiadmExit.SESS_NOT_FOUND,
        )

    def discover(self, portal: str, iface: str, chap: Chap | None) -> list[DiscoveredTarget]:
        """Ask a portal for its targets (sendtargets) without touching node records.

        A discoverydb record carries the discovery CHAP (its secrets written off
        the command line, :class:`~multipath_brick.verbs.DiscoverySetSecrets`);
        it is deleted afterwards so that nothing of the discovery stays on the host.
        """
        updates = [verbs.DiscoveryUpdate(portal, iface, n, v) for n, v in discovery_settings(chap)]
        secrets = None
        if chap is not None:
            password_in = chap.password_in if chap.mutual else None
            secrets = verbs.DiscoverySetSecrets(portal, chap.password, password_in)
        self._run(verbs.DiscoveryNew(portal, iface))
        try:
            for update in updates:
                self._run(update)
            if secrets is not None:
                self._run(secrets)
            result = self._run(verbs.DiscoveryRun(portal, iface))
        finally:
            self._host.run(verbs.DiscoveryDelete(portal, iface), timeout=self._timeout)
        return parse_targets(result.stdout)


def discovery_settings(chap: Chap | None) -> list[tuple[str, str]]:
    """A discovery record's CHAP settings for ``iscsiadm -o update``: no secret."""
    if chap is None:
        return [("discovery.sendtargets.auth.authmethod", "None")]
    settings = [
        ("discovery.sendtargets.auth.authmethod", "CHAP"),
        ("discovery.sendtargets.auth.username", chap.username),
    ]
    if chap.mutual and chap.username_in:
        settings.append(("discovery.sendtargets.auth.username_in", chap.username_in))
    return settings


# What iscsid answered, as iscsiadm prints it: "initiator reported error (24 - ...)".
_REPORTED_ERROR = re.compile(r"initiator reported error \((\d+) - ")
# iscsiadm's line for a login iscsid completed.
_LOGIN_DONE = re.compile(r"^Login to \[.*\] successful\.$", re.MULTILINE)


def reported_error(result: CommandResult) -> int:
    """The login error iscsid reported, else iscsiadm's exit code.

    They can differ. ``iscsiadm -m node -T -p -I --login`` finds its record by
    reading every record in the node database, and it lists the directories
    without the database lock. When another program deletes the last record of
    some other target or portal meanwhile, opening that directory fails: the
    login still goes ahead with the record found, but iscsiadm exits 6 (IDBM)
    whatever the login did. iscsid's own code is what the target said.
    """
    reported = _REPORTED_ERROR.findall(result.stderr)
    return int(reported[-1]) if reported else result.exit_code


def login_succeeded(result: CommandResult) -> bool:
    """Whether the path is logged in after a one-record login, whatever the exit code.

    Exit 15 means a session was already there. Exit 6 with iscsiadm's
    "successful" line is a login that worked while some other record of the
    node database was being deleted (see :func:`reported_error`).
    """
    if result.exit_code in (IscsiadmExit.SUCCESS, IscsiadmExit.SESS_EXISTS):
        return True
    return (
        result.exit_code == IscsiadmExit.IDBM
        and not _REPORTED_ERROR.search(result.stderr)
        and bool(_LOGIN_DONE.search(result.stdout))
    )


def is_auth_failure(result: CommandResult) -> bool:
    """Whether the target refused our CHAP credentials."""
    return IscsiadmExit.LOGIN_AUTH_FAILED in (result.exit_code, reported_error(result))


def login_failure_reason(result: CommandResult) -> str:
    """A one-line reason for a failed login, naming iscsid's error code."""
    if result.timed_out:
        return "login timed out"
    reason = IscsiadmExit.describe(reported_error(result))
    detail = next(
        (line for line in reversed(result.stderr.splitlines()) if "error" in line.lower()), ""
    )
    return f"{reason}: {detail.strip()}" if detail else reason
