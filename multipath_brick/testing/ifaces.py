"""iscsiadm's iface records (``/etc/iscsi/ifaces``) and logins bound to a netdev.

Messages, streams and exit codes as open-iscsi 2.1.8 gives them in the lab
(``tests/fixtures/iscsiadm_iface_*.txt``):

* ``-o new`` writes a record with the defaults, *over* an existing one (the
  settings written earlier are lost) and exits 0 either way;
* ``-o update`` also writes the setting into every node record bound to the
  iface (open-iscsi copies an iface's settings into its node records); a refused
  setting (unknown name, a built-in iface) still exits 0: only stdout's
  ``<name> updated.`` says it worked;
* ``-o delete`` first deletes the node records bound to the iface, and fails
  (15) at one a session uses, after deleting the others;
* ``-o show`` of a missing iface exits 6, delete and update 7, ``-m node -o
  new`` through one 3;
* ``default`` and ``iser`` are built in: listed after the others, shown, never
  written.

A login through an iface bound to a netdev that is down fails (exit 8, after
the login timeout).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from multipath_brick.testing import iscsi_db
from multipath_brick.testing.iscsi_db import err
from multipath_brick.testing.netdevs import Netdevs
from multipath_brick.testing.state import (
    ERR_IDBM,
    ERR_SESS_EXISTS,
    ERR_TRANS_TIMEOUT,
    Outcome,
    SimState,
)

#: ISCSI_ERR_INVAL: what iscsiadm answers for an iface it cannot read or write.
ERR_INVAL = 7
#: Its text in open-iscsi's ``iscsi_err_msgs``.
INVAL_TEXT = "invalid parameter"
#: ISCSI_ERR_NOMEM: what ``-m node -o new`` answers for a missing iface.
ERR_NOMEM = 3
#: ISCSI_ERR_SESS_EXISTS's text as the iface mode prints it.
EXISTS_TEXT = "session exists"
IFACE_DIR = "/etc/iscsi/ifaces"
EMPTY = "<empty>"
#: Built-in ifaces: name -> transport.
BUILT_IN = {"default": "tcp", "iser": "iser"}
#: An iface record's settings in ``-o show`` order, with ``-o new``'s defaults:
#: the iface block of a node record.
IFACE_DEFAULTS: tuple[tuple[str, str], ...] = tuple(
    (k, v) for k, v in iscsi_db.NODE_DEFAULTS if k.startswith("iface.")
)
_LISTED = ("iface.transport_name", "iface.hwaddress", "iface.ipaddress", "iface.net_ifacename")


class FakeIfaces:
    """The iface records of a fake host and what they do to logins.

    :param state: the shared state (every method runs under its lock).
    :param netdevs: the host's netdevs.
    """

    def __init__(self, state: SimState, netdevs: Netdevs) -> None:
        self.st = state
        self.netdevs = netdevs
        self.records: dict[str, dict[str, str]] = {}

    # --- iscsiadm -m iface -------------------------------------------------------------

    def handle(self, opts: dict[str, str], pairs: Sequence[tuple[str, str]]) -> Outcome:
        """Answer ``iscsiadm -m iface [-I NAME -o OP [-n NAME -v VALUE]...]``."""
        name = opts.get("-I")
        op = opts.get("-o")
        if name is None:
            return self._list()
        if op in (None, "show"):
            return self._show(name)
        if op == "new":
            return self._new(name)
        if op == "update":
            return self._update(name, pairs)
        if op == "delete":
            return self._delete(name)
        raise NotImplementedError(f"fake host does not emulate iface op {op!r}")

    def _list(self) -> Outcome:
        # Records from /etc/iscsi/ifaces first, then the built-in ones.
        lines = []
        for name, rec in sorted(self.records.items()):
            fields = [rec[k] or EMPTY for k in _LISTED]
            fields.append(rec["iface.initiatorname"] or EMPTY)
            lines.append(f"{name} {','.join(fields)}\n")
        lines += [f"{n} {t},{EMPTY},{EMPTY},{EMPTY},{EMPTY}\n" for n, t in BUILT_IN.items()]
        return Outcome(0, "".join(lines))

    def _show(self, name: str) -> Outcome:
        rec = self.record(name)
        if rec is None:
            # Not iscsiadm's own wording: idbm's, with its source line, exit 6 (IDBM).
            return Outcome(
                ERR_IDBM,
                "",
                f"iSCSI ERROR: Failed to open {IFACE_DIR}/{name} using read mode: "
                "2 No such file or directory # idbm.c:_idbm_recs_read():834\n",
            )
        return Outcome(0, iscsi_db.show_record(rec))

    def record(self, name: str) -> dict[str, str] | None:
        """An iface's settings (built-in ones included); None when there is none."""
        if name in BUILT_IN:
            rec = self.new_record(name)
            rec["iface.transport_name"] = BUILT_IN[name]
            return rec
        return self.records.get(name)

    def _new(self, name: str) -> Outcome:
        if name in BUILT_IN:
            return err(
                ERR_INVAL,
                f"iface {name} is a special interface and is not stored in {IFACE_DIR}.",
                f"Could not create new interface {name}.",
            )
        if any(s.iface == name for s in self.st.sessions.values()):
            return err(ERR_SESS_EXISTS, f"Could not create new interface {name}.")
        # Written over an existing record: what was set there is lost.
        self.records[name] = self.new_record(name)
        return Outcome(0, f"{name} updated.\nNew interface {name} added\n")

    @staticmethod
    def new_record(name: str) -> dict[str, str]:
        """An iface record as ``-o new`` writes it."""
        rec = dict(IFACE_DEFAULTS)
        rec["iface.iscsi_ifacename"] = name
        return rec

    def _update(self, name: str, pairs: Sequence[tuple[str, str]]) -> Outcome:
        # Refusals after the record was read exit 0: only stdout's "updated." tells.
        failed = f"iscsiadm: Could not update iface {name}: {INVAL_TEXT}\n"
        if name in BUILT_IN:
            special = f"iscsiadm: iface {name} is a special interface and cannot be modified.\n"
            return Outcome(0, "", special + failed)
        rec = self.records.get(name)
        if rec is None:
            return err(ERR_INVAL, f"Could not read iface info for {name}.")
        for key, _ in pairs:
            if key not in rec or key == "iface.iscsi_ifacename":
                bad = f"iscsiadm: Cannot modify {key}. Invalid param name.\n"
                return Outcome(0, "", bad + failed)
        for key, value in pairs:
            rec[key] = value
            # open-iscsi writes the setting into every node record bound to the iface.
            for node_key, node in self.st.nodes.items():
                if node_key[2] == name:
                    node[key] = value
        return Outcome(0, f"{name} updated.\n")

    def _delete(self, name: str) -> Outcome:
        if name in BUILT_IN:
            return err(
                ERR_INVAL,
                f"iface {name} is a special interface and cannot be deleted.",
                f"Could not delete iface {name}: {INVAL_TEXT}",
            )
        if name not in self.records:
            return err(
                ERR_INVAL,
                f"Could not read iface info for {name}.",
                f"Could not delete iface {name}: {INVAL_TEXT}",
            )
        # The node records bound to it go first; one a session uses stops the delete
        # (after the others went).
        in_use = []
        for key in sorted(k for k in self.st.nodes if k[2] == name):
            outcome = iscsi_db.node_delete(self.st, key)
            if outcome.exit_code:
                in_use.append(outcome.stderr.splitlines()[0] + "\n")
        if in_use:
            return Outcome(
                ERR_SESS_EXISTS,
                "",
                "".join(in_use) + f"iscsiadm: Could not delete iface {name}: {EXISTS_TEXT}\n",
            )
        del self.records[name]
        return Outcome(0, f"{name} unbound and deleted.\n")

    # --- hooks of the node commands ----------------------------------------------------

    def node_new(self, key: tuple[str, str, str]) -> Outcome | None:
        """Check ``-m node -I NAME -o new``'s iface; None when it can go on.

        A missing iface exits 3 (ISCSI_ERR_NOMEM): iscsiadm reports the record it
        could not build as an allocation failure.
        """
        name = key[2]
        if self.record(name) is None:
            return err(ERR_NOMEM, f"Could not read iface info for {name}.")
        return None

    def bind(self, key: tuple[str, str, str], made: Outcome) -> Outcome:
        """Copy the iface's settings into a node record just made, as iscsiadm does.

        :param made: ``-o new``'s answer, whose ``net_if=`` then names the netdev.
        """
        rec = self.record(key[2])
        node = self.st.nodes.get(key)
        if rec is None or node is None:
            return made
        node.update(rec)
        netdev = rec["iface.net_ifacename"]
        stdout = made.stdout.replace("net_if=,", f"net_if={netdev},", 1)
        return dataclasses.replace(made, stdout=stdout)

    def login_failure(self, node: dict[str, str]) -> int | None:
        """Why a login through the node record's netdev cannot connect; None when it can.

        iscsid binds the socket to ``iface.net_ifacename``: through a netdev that
        does not exist or is down, the login times out like one to a dead portal
        (lab: exit 8). A portal off the netdev's subnet is *not* refused: with the
        socket bound to a netdev and no route through it, Linux assumes the
        destination is on-link and ARPs for it there; in the lab the target's
        namespace answers (``arp_ignore=0``) and the login succeeds. Whether it
        does on a real network is the L2 segment's business, which the fake does
        not model.
        """
        netdev = node.get("iface.net_ifacename", "")
        if not netdev:
            return None
        dev = self.netdevs.devices.get(netdev)
        if dev is None or not dev.running:
            return ERR_TRANS_TIMEOUT
        return None

    def leftovers(self) -> list[str]:
        """The iface records there are (built-in ones excepted)."""
        return sorted(self.records)


class NetworkControls:
    """Scripting the fake host's netdevs and ifaces (mixed into :class:`FakeHost`)."""

    _st: SimState
    _ifaces: FakeIfaces

    def add_netdev(self, name: str, address: str | None = None, *, up: bool = True) -> None:
        """Give the host a netdev (a NIC, VLAN, bond or bridge device).

        :param name: e.g. ``eth1``.
        :param address: its IPv4 address with prefix (``10.0.1.5/24``): logins
            through an iface bound to it reach portals on that subnet only.
        :param up: administratively up with a link.
        """
        with self._st.lock:
            self._ifaces.netdevs.add(name, address, up=up)

    def set_netdev(
        self, name: str, *, up: bool | None = None, carrier: bool | None = None
    ) -> None:
        """``ip link set NAME down/up`` (``up``), or a cable or switch port (``carrier``).

        Sessions already logged in through it are not touched (their recovery
        is the multipath layer's business); new logins through it fail.
        """
        with self._st.lock:
            self._ifaces.netdevs.set_state(name, up=up, carrier=carrier)

    def set_sysctl(self, netdev: str, name: str, value: int) -> None:
        """Set ``net.ipv4.conf.<netdev>.<name>`` (``arp_ignore``, ``arp_announce``,
        ``rp_filter``); ``netdev`` may be ``all``."""
        with self._st.lock:
            self._ifaces.netdevs.set_sysctl(netdev, name, value)

    def add_other_iface(self, name: str, netdev: str = "", transport: str = "tcp") -> None:
        """An iface record another program made (an admin's, vdsm's, an offload
        card's ``bnx2i.<mac>``), which the library's verbs could not create: it
        must never be touched. ``transport`` is its ``iface.transport_name``."""
        with self._st.lock:
            self._ifaces.records[name] = self._ifaces.new_record(name)
            self._ifaces.records[name]["iface.net_ifacename"] = netdev
            self._ifaces.records[name]["iface.transport_name"] = transport

    def iface_records(self) -> dict[str, dict[str, str]]:
        """The iface records (built-in ones excepted): name -> settings."""
        with self._st.lock:
            return {name: dict(rec) for name, rec in self._ifaces.records.items()}
