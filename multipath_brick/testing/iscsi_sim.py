"""iscsiadm and iscsid: the node database, sessions and sendtargets discovery.

Messages, their stream (stdout for ``log_info``/``printf``, stderr with an
``iscsiadm:`` prefix for errors) and exit codes follow open-iscsi 2.1.9.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from multipath_brick.testing import iscsi_db
from multipath_brick.testing.ifaces import FakeIfaces
from multipath_brick.testing.iscsi_db import err, initiator_error, node_line
from multipath_brick.testing.netdevs import Netdevs
from multipath_brick.testing.scsi_sim import Kernel
from multipath_brick.testing.state import (
    ERR_FATAL_LOGIN,
    ERR_IDBM,
    ERR_LOGIN_AUTH_FAILED,
    ERR_NO_OBJS_FOUND,
    ERR_PDU_TIMEOUT,
    ERR_SESS_EXISTS,
    ERR_TEXT,
    ERR_TRANS_TIMEOUT,
    Credentials,
    FakeTarget,
    NodeDbScan,
    Outcome,
    Plan,
    SimState,
    done,
    split_portal,
)
from multipath_brick.verbs import RecordVerb

#: sendtargets retries a dead portal reopen_max (5) + 1 times, login_timeout (15 s) each.
DISCOVERY_TIMEOUT = 6 * 15.0
#: how long a logout to a dead portal waits (node.conn[0].timeo.logout_timeout).
LOGOUT_TIMEOUT = 15.0

_VALUED = {"-m", "-T", "-p", "-I", "-o", "-n", "-v", "-r", "-t"}


def with_listing_errors(scan: NodeDbScan, outcome: Outcome) -> Outcome:
    """What iscsiadm reports when its listing of the node database tripped.

    It went on with the record it found, so the command's own output stands,
    but the exit code is 6 (IDBM) whatever the command did (open-iscsi 2.1.8,
    seen in the lab: a login to one target while another's records are deleted).
    """
    if not scan.vanished:
        return outcome
    listing = "".join(f"iscsiadm: iface iter could not stat {d}.\n" for d in scan.vanished)
    return Outcome(
        ERR_IDBM,
        outcome.stdout,
        listing
        + "iscsiadm: Could not execute operation on all records: "
        + f"{ERR_TEXT[ERR_IDBM]}\n"
        + outcome.stderr,
    )


@dataclasses.dataclass
class Args:
    """iscsiadm's command line, as far as the library uses it."""

    opts: dict[str, str]
    flags: set[str]
    #: ``-n NAME -v VALUE`` pairs, in order (iscsiadm takes several in one update).
    pairs: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @classmethod
    def parse(cls, argv: Sequence[str]) -> Args:
        """Split ``-x value`` options from ``--flag`` flags."""
        opts: dict[str, str] = {}
        flags: set[str] = set()
        names: list[str] = []
        values: list[str] = []
        it = iter(argv[1:])
        for arg in it:
            if arg in _VALUED:
                opts[arg] = next(it)
                if arg == "-n":
                    names.append(opts[arg])
                elif arg == "-v":
                    values.append(opts[arg])
            else:
                flags.add(arg)
        return cls(opts, flags, list(zip(names, values, strict=False)))


def _chap_ok(required: Credentials | None, method: str, user: str, password: str) -> bool:
    # A target without CHAP picks "None" from what the initiator offers.
    if required is None:
        return True
    return method.upper() == "CHAP" and (user, password) == required


class Iscsid:
    """Answers ``iscsiadm -m node|session|discoverydb`` argv.

    :param state: the shared state (every method runs under its lock).
    :param kernel: creates and removes sessions and disks.
    :param ifaces: the iface records (:mod:`.ifaces`); a host without netdevs when None.
    """

    def __init__(self, state: SimState, kernel: Kernel, ifaces: FakeIfaces | None = None) -> None:
        self.st = state
        self.kernel = kernel
        self.ifaces = ifaces if ifaces is not None else FakeIfaces(state, Netdevs(state.tree))

    def handle(self, argv: Sequence[str]) -> Plan:
        """Plan one iscsiadm command.

        :raises NotImplementedError: for a command line the fake does not know.
        """
        a = Args.parse(argv)
        mode = a.opts.get("-m")
        if mode == "node":
            return self._node(a)
        if mode == "session":
            if not a.opts.keys() - {"-m"} and not a.flags:
                return done(self._session_list())
        if mode == "iface" and not a.flags:
            return done(self.ifaces.handle(a.opts, a.pairs))
        if mode == "discoverydb" and a.opts.get("-t") == "sendtargets" and "-p" in a.opts:
            return self._discoverydb(a)
        raise NotImplementedError(f"fake host does not emulate: {' '.join(argv)}")

    def record(self, verb: RecordVerb) -> Plan:
        """Plan one of the daemon's record verbs (:func:`.iscsi_db.record_verb`).
        It opens the record by its path, under the database lock, and lists
        nothing: unlike ``-o update`` it never trips.

        :raises NotImplementedError: for a record verb the fake does not know.
        """
        return done(iscsi_db.record_verb(self.st, verb))

    # --- node mode ---------------------------------------------------------------------

    def _node(self, a: Args) -> Plan:
        if a.opts.keys() == {"-m"} and not a.flags:
            return done(self._node_list())
        # "-p ip:port,tpgt": the tag only places a new record (matching ignores it).
        portal, _, tag = a.opts["-p"].partition(",")
        key = (portal, a.opts["-T"], a.opts["-I"])
        op = a.opts.get("-o")
        if "--login" in a.flags:
            return self._login(key)
        if "--logout" in a.flags:
            return self._logout(key)
        if op == "new":
            refused = self.ifaces.node_new(key)
            if refused is not None:
                return done(refused)
            tpgt = int(tag) if tag else None
            return done(self.ifaces.bind(key, iscsi_db.node_new(self.st, key, tpgt)))
        if op == "update":
            return self._listing(lambda: iscsi_db.node_update(self.st, key, a.pairs))
        if op == "delete":  # another program's iscsiadm (the daemon deletes its own)
            return self._listing(lambda: iscsi_db.node_delete(self.st, key))
        if op == "show":
            return done(iscsi_db.node_show(self.st, key))
        raise NotImplementedError(f"fake host does not emulate node op {op!r}")

    def _node_list(self) -> Outcome:
        if not self.st.nodes:
            return err(ERR_NO_OBJS_FOUND, "No records found")
        lines = [
            node_line(portal, rec["node.tpgt"], iqn)
            for (portal, iqn, _), rec in sorted(
                self.st.nodes.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])
            )
        ]
        return Outcome(0, "".join(lines))

    def _login(self, key: tuple[str, str, str]) -> Plan:
        portal, iqn, iface = key
        rec = self.st.nodes.get(key)
        if rec is None:
            return done(err(ERR_NO_OBJS_FOUND, "No records found"))
        if self.st.session_for(key) is not None:
            return done(
                err(
                    ERR_SESS_EXISTS,
                    f"{iface}: 1 session requested, but 1 already present.",
                    "Could not log into all portals",
                )
            )
        rec = dict(rec)  # iscsiadm hands iscsid the record as read now
        address, port = split_portal(portal)
        where = f"[iface: {iface}, target: {iqn}, portal: {address},{port}]"
        logging_in = f"Logging in to {where}\n"
        latency = self.st.latency.get(portal, 0.0)
        login_timeout = float(rec["node.conn[0].timeo.login_timeout"])
        # A target slower than login_timeout is as good as dead to iscsid.
        reachable = (
            self.st.portal_up(portal)
            and latency <= login_timeout
            and self.ifaces.login_failure(rec) is None
        )
        if reachable:
            duration = latency
        else:
            # iscsid tries initial_login_retry_max times, login_timeout each
            # (lab: 2 s x 1 -> exit 8 after 2.2 s).
            tries = max(1, int(rec["node.session.initial_login_retry_max"]))
            duration = login_timeout * tries
        self.st.logins_in_flight += 1
        self.st.max_logins_in_flight = max(self.st.max_logins_in_flight, self.st.logins_in_flight)
        scan = self._list_node_db()
        duration += self.st.node_db_scan

        def failed(code: int) -> Outcome:
            return Outcome(
                code,
                logging_in,
                f"iscsiadm: Could not login to {where}.\n"
                + initiator_error(code)
                + "iscsiadm: Could not log into all portals\n",
            )

        def finish() -> Outcome:
            target = self.st.targets.get(iqn)
            if not reachable:
                return failed(ERR_TRANS_TIMEOUT)
            if target is None or portal not in target.portals:
                return failed(ERR_FATAL_LOGIN)
            refused = self._auth_refused(target, rec)
            if refused:
                return failed(refused)
            if self.st.session_for(key) is not None:
                return failed(ERR_SESS_EXISTS)
            session = self.kernel.create_session(portal, iqn, iface, rec)
            if rec["node.session.scan"] != "manual":
                # The kernel scans every LUN of the target at login.
                self.kernel.scan_all(session)
            return Outcome(0, logging_in + f"Login to {where} successful.\n")

        def commit() -> Outcome:
            self.st.logins_in_flight -= 1
            return with_listing_errors(scan, finish())

        def on_kill(remaining: float) -> None:
            # Killing iscsiadm does not stop iscsid: the login goes on.
            self.st.logins_in_flight -= 1
            self.st.later(remaining, finish)

        return Plan(duration, commit, on_kill)

    def _list_node_db(self) -> NodeDbScan:
        """Start listing the node database, as iscsiadm does to find one record.

        The listing lasts ``node_db_scan`` simulated seconds; a portal
        directory removed meanwhile is remembered in the scan.
        """
        scan = NodeDbScan()
        if self.st.node_db_scan > 0:
            self.st.node_db_scans.append(scan)
            self.st.later(self.st.node_db_scan, lambda: self._end_listing(scan))
        return scan

    def _end_listing(self, scan: NodeDbScan) -> None:
        if scan in self.st.node_db_scans:
            self.st.node_db_scans.remove(scan)

    def _listing(self, act: Callable[[], Outcome]) -> Plan:
        """A node command (``-o update``, ``-o delete``) that lists the database, then acts."""
        if self.st.node_db_scan <= 0:
            return done(act())
        scan = self._list_node_db()

        def commit() -> Outcome:
            self._end_listing(scan)  # its own deletion does not trip it
            return with_listing_errors(scan, act())

        return Plan(self.st.node_db_scan, commit)

    @staticmethod
    def _auth_refused(target: FakeTarget, rec: dict[str, str]) -> int:
        """0 when CHAP passes; else iscsid's error code.

        The target refusing our secret is 24 (authorization failure); our
        refusing the target's answer in mutual CHAP is 19, a non-retryable
        login failure (lab: ``chap_modes_sequence.txt``).
        """
        method = rec["node.session.auth.authmethod"]
        if not _chap_ok(
            target.chap,
            method,
            rec["node.session.auth.username"],
            rec["node.session.auth.password"],
        ):
            return ERR_LOGIN_AUTH_FAILED
        mutual = (rec["node.session.auth.username_in"], rec["node.session.auth.password_in"])
        if target.mutual_chap is None and not mutual[0]:
            return 0
        if method.upper() == "CHAP" and mutual == target.mutual_chap:
            return 0
        return ERR_FATAL_LOGIN

    def _logout(self, key: tuple[str, str, str]) -> Plan:
        portal, iqn, _ = key
        session = self.st.session_for(key)
        if session is None:
            return done(err(ERR_NO_OBJS_FOUND, "No matching sessions found"))
        address, port = split_portal(portal)
        where = f"[sid: {session.sid}, target: {iqn}, portal: {address},{port}]"

        def commit() -> Outcome:
            if self.st.sessions.get(session.sid) is session:
                self.kernel.remove_session(session)
            return Outcome(0, f"Logging out of session {where}\nLogout of {where} successful.\n")

        # Latency scripts slow logins; a logout waits only on a dead portal.
        duration = LOGOUT_TIMEOUT if portal in self.st.unreachable else 0.0

        def on_kill(remaining: float) -> None:
            # The kernel finishes tearing the session down anyway.
            self.st.later(remaining, commit)

        return Plan(duration, commit, on_kill)

    # --- session mode ------------------------------------------------------------------

    def _session_list(self) -> Outcome:
        if not self.st.sessions:
            return err(ERR_NO_OBJS_FOUND, "No active sessions.")
        lines = []
        for s in sorted(self.st.sessions.values(), key=lambda s: s.sid):
            shown = s.address if "." in s.address else f"[{s.address}]"
            lines.append(f"tcp: [{s.sid}] {shown}:{s.port},{s.tpgt} {s.iqn} (non-flash)\n")
        return Outcome(0, "".join(lines))

    # --- discoverydb -------------------------------------------------------------------

    def _discoverydb(self, a: Args) -> Plan:
        portal = a.opts["-p"]
        op = a.opts.get("-o")
        if "--discover" in a.flags:
            return self._discover(portal)
        if op == "new":
            return done(iscsi_db.discovery_new(self.st, portal))
        if op == "update":
            return done(iscsi_db.discovery_update(self.st, portal, a.opts["-n"], a.opts["-v"]))
        if op == "delete":
            return done(iscsi_db.discovery_delete(self.st, portal))
        raise NotImplementedError(f"fake host does not emulate discoverydb op {op!r}")

    def _discover(self, portal: str) -> Plan:
        rec = dict(self.st.discovery.get(portal) or iscsi_db.discovery_defaults())
        address, _ = split_portal(portal)
        latency = self.st.latency.get(portal, 0.0)
        reachable = latency <= float(rec["discovery.sendtargets.timeo.login_timeout"]) and (
            self.st.portal_up(portal)
            or (portal in self.st.discovery_answers and portal not in self.st.unreachable)
        )
        if not reachable:
            stderr = f"iscsiadm: connect to {address} timed out\n" * 6 + (
                "iscsiadm: connection login retries (reopen_max) 5 exceeded\n"
                "iscsiadm: Could not perform SendTargets discovery: iSCSI PDU timed out\n"
            )
            return Plan(DISCOVERY_TIMEOUT, lambda: Outcome(ERR_PDU_TIMEOUT, "", stderr))

        def commit() -> Outcome:
            serving = [t for t in self.st.targets.values() if portal in t.portals]
            for target in serving:
                if not _chap_ok(
                    target.discovery_chap,
                    rec["discovery.sendtargets.auth.authmethod"],
                    rec["discovery.sendtargets.auth.username"],
                    rec["discovery.sendtargets.auth.password"],
                ):
                    return Outcome(
                        ERR_LOGIN_AUTH_FAILED,
                        "",
                        "iscsiadm: Login failed to authenticate with target \n"
                        f"iscsiadm: discovery login to {address} rejected: "
                        "initiator failed authorization\n"
                        "iscsiadm: Could not perform SendTargets discovery: "
                        "iSCSI login failed due to authorization failure\n",
                    )
            if portal in self.st.discovery_answers:
                found = [(p, q, 1) for p, q in self.st.discovery_answers[portal]]
            else:
                found = [(p, t.iqn, t.tpgt) for t in serving for p in t.portals]
            if not found:
                return err(ERR_NO_OBJS_FOUND, "No portals found")
            return Outcome(0, "".join(node_line(p, str(tag), q) for p, q, tag in found))

        return Plan(latency, commit)
