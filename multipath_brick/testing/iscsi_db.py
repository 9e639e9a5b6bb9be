"""open-iscsi's node and discovery databases (``/etc/iscsi/nodes``, ``send_targets``).

The only place the fake keeps CHAP passwords: like iscsiadm, ``-o show``
prints them masked. They arrive as the real ones do: never on an argv
(``-o update`` of a secret is refused by the verb before it reaches a host),
always through the daemon's record write (:func:`node_write`,
:func:`discovery_set_secrets`), which answers like
:mod:`multipath_brick.privileged.nodedb`.
"""

from __future__ import annotations

from multipath_brick.testing.state import (
    ERR_IDBM,
    ERR_NO_OBJS_FOUND,
    ERR_SESS_EXISTS,
    ERR_TEXT,
    Outcome,
    SimState,
    split_portal,
)
from multipath_brick.verbs import DiscoverySetSecrets, NodeDelete, NodeRead, NodeWrite, RecordVerb
from multipath_brick.verbs.record_users import session_using

VERSION = "2.1.8"
NODE_DIR = "/etc/iscsi/nodes"
NodeKey = tuple[str, str, str]

#: The iface block of a node record (``name`` empty, ``name=value`` otherwise).
_IFACE = (
    "iscsi_ifacename net_ifacename ipaddress prefix_len=0 hwaddress "
    "transport_name=tcp initiatorname state vlan_id=0 vlan_priority=0 vlan_state "
    "iface_num=0 mtu=0 port=0 bootproto subnet_mask gateway dhcp_alt_client_id_state "
    "dhcp_alt_client_id dhcp_dns dhcp_learn_iqn dhcp_req_vendor_id_state "
    "dhcp_vendor_id_state dhcp_vendor_id dhcp_slp_da fragmentation gratuitous_arp "
    "incoming_forwarding tos_state tos=0 ttl=0 delayed_ack tcp_nagle tcp_wsf_state "
    "tcp_wsf=0 tcp_timer_scale=0 tcp_timestamp redirect def_task_mgmt_timeout=0 "
    "header_digest data_digest immediate_data initial_r2t data_seq_inorder "
    "data_pdu_inorder erl=0 max_receive_data_len=0 first_burst_len=0 "
    "max_outstanding_r2t=0 max_burst_len=0 chap_auth bidi_chap "
    "strict_login_compliance discovery_auth discovery_logout"
)

#: A node record's settings in ``iscsiadm -o show`` order, with the values a
#: stock iscsid.conf gives ``-o new`` (identity fields are filled in per record).
NODE_DEFAULTS: tuple[tuple[str, str], ...] = (
    ("node.name", ""),
    ("node.tpgt", "-1"),
    ("node.startup", "manual"),
    ("node.leading_login", "No"),
    *((f"iface.{k}", v) for k, _, v in (t.partition("=") for t in _IFACE.split())),
    ("node.discovery_address", ""),
    ("node.discovery_port", "0"),
    ("node.discovery_type", "static"),
    ("node.session.initial_cmdsn", "0"),
    ("node.session.initial_login_retry_max", "8"),
    ("node.session.xmit_thread_priority", "-20"),
    ("node.session.cmds_max", "128"),
    ("node.session.queue_depth", "32"),
    ("node.session.nr_sessions", "1"),
    ("node.session.auth.authmethod", "None"),
    ("node.session.auth.username", ""),
    ("node.session.auth.password", ""),
    ("node.session.auth.username_in", ""),
    ("node.session.auth.password_in", ""),
    ("node.session.auth.chap_algs", "MD5"),
    ("node.session.timeo.replacement_timeout", "120"),
    ("node.session.err_timeo.abort_timeout", "15"),
    ("node.session.err_timeo.lu_reset_timeout", "30"),
    ("node.session.err_timeo.tgt_reset_timeout", "30"),
    ("node.session.err_timeo.host_reset_timeout", "60"),
    ("node.session.iscsi.FastAbort", "Yes"),
    ("node.session.iscsi.InitialR2T", "No"),
    ("node.session.iscsi.ImmediateData", "Yes"),
    ("node.session.iscsi.FirstBurstLength", "262144"),
    ("node.session.iscsi.MaxBurstLength", "16776192"),
    ("node.session.iscsi.DefaultTime2Retain", "0"),
    ("node.session.iscsi.DefaultTime2Wait", "2"),
    ("node.session.iscsi.MaxConnections", "1"),
    ("node.session.iscsi.MaxOutstandingR2T", "1"),
    ("node.session.iscsi.ERL", "0"),
    ("node.session.scan", "auto"),
    ("node.session.reopen_max", "0"),
    ("node.conn[0].address", ""),
    ("node.conn[0].port", ""),
    ("node.conn[0].startup", "manual"),
    ("node.conn[0].tcp.window_size", "524288"),
    ("node.conn[0].tcp.type_of_service", "0"),
    ("node.conn[0].timeo.logout_timeout", "15"),
    ("node.conn[0].timeo.login_timeout", "15"),
    ("node.conn[0].timeo.auth_timeout", "45"),
    ("node.conn[0].timeo.noop_out_interval", "5"),
    ("node.conn[0].timeo.noop_out_timeout", "5"),
    ("node.conn[0].iscsi.MaxXmitDataSegmentLength", "0"),
    ("node.conn[0].iscsi.MaxRecvDataSegmentLength", "262144"),
    ("node.conn[0].iscsi.HeaderDigest", "None"),
    ("node.conn[0].iscsi.DataDigest", "None"),
    ("node.conn[0].iscsi.IFMarker", "No"),
    ("node.conn[0].iscsi.OFMarker", "No"),
)

DISCOVERY_DEFAULTS: tuple[tuple[str, str], ...] = (
    ("discovery.startup", "manual"),
    ("discovery.type", "sendtargets"),
    ("discovery.sendtargets.address", ""),
    ("discovery.sendtargets.port", ""),
    ("discovery.sendtargets.auth.authmethod", "None"),
    ("discovery.sendtargets.auth.username", ""),
    ("discovery.sendtargets.auth.password", ""),
    ("discovery.sendtargets.auth.username_in", ""),
    ("discovery.sendtargets.auth.password_in", ""),
    ("node.session.auth.chap_algs", "MD5"),
    ("discovery.sendtargets.timeo.login_timeout", "15"),
    ("discovery.sendtargets.use_discoveryd", "No"),
    ("discovery.sendtargets.discoveryd_poll_inval", "30"),
    ("discovery.sendtargets.reopen_max", "5"),
    ("discovery.sendtargets.timeo.auth_timeout", "45"),
    ("discovery.sendtargets.timeo.active_timeout", "30"),
    ("discovery.sendtargets.iscsi.MaxRecvDataSegmentLength", "32768"),
)


def err(code: int, *lines: str) -> Outcome:
    """An iscsiadm failure: each line on stderr behind ``iscsiadm: ``."""
    return Outcome(code, "", "".join(f"iscsiadm: {line}\n" for line in lines))


def initiator_error(code: int) -> str:
    """``iscsi_err_print_msg``: the line naming an error code."""
    return f"iscsiadm: initiator reported error ({code} - {ERR_TEXT[code]})\n"


def node_line(portal: str, tpgt: str, iqn: str) -> str:
    """``10.0.0.1:3260,1 iqn...`` (IPv6 bracketed), as node lists and discovery print.

    A static record's tpgt -1 prints as 4294967295: iscsiadm 2.1 formats the
    int32 as unsigned (seen in the lab's ``iscsiadm -m node``).
    """
    if tpgt == "-1":
        tpgt = "4294967295"
    address, port = split_portal(portal)
    shown = address if "." in address else f"[{address}]"
    return f"{shown}:{port},{tpgt} {iqn}\n"


def _new_record(key: NodeKey) -> dict[str, str]:
    portal, iqn, iface = key
    address, port = split_portal(portal)
    rec = dict(NODE_DEFAULTS)
    rec.update(
        {
            "node.name": iqn,
            "iface.iscsi_ifacename": iface,
            "node.conn[0].address": address,
            "node.conn[0].port": str(port),
        }
    )
    return rec


def flat_record(st: SimState, portal: str, iqn: str) -> NodeKey | None:
    """The record of (portal, iqn) kept in the old flat layout, if any.

    ``-o new`` without a tpgt writes ``nodes/<iqn>/<address>,<port>``: one file
    for the portal whatever the iface (its ``node.tpgt`` is -1). With a tpgt a
    record is ``nodes/<iqn>/<address>,<port>,<tpgt>/<iface>``, one per iface.
    At most one flat record exists per (portal, iqn).
    """
    for key in st.nodes.keys_under("target", (portal, iqn)):
        if st.nodes[key]["node.tpgt"] == "-1":
            return key
    return None


def node_new(st: SimState, key: NodeKey, tpgt: int | None = None) -> Outcome:
    """``-o new``: like iscsiadm, an existing record is *overwritten with defaults*
    (idbm_add_node(..., overwrite=1)): settings written earlier are lost.

    Without a tpgt the flat file of the portal is written, so a record of
    another iface in it is *replaced*: two ifaces to one portal keep one record
    (lab: ``node_tpgt_sequence.txt`` A). With a tpgt the record has a file of
    its own, but a flat record of the portal, whatever its iface, is deleted
    first: ``idbm_rec_read`` finds the flat file before any tpgt directory and
    the overwrite deletes what it read (D).
    """
    portal, iqn, iface = key
    flat = flat_record(st, portal, iqn)
    if flat is not None:
        del st.nodes[flat]
    rec = _new_record(key)
    if tpgt is not None:
        rec["node.tpgt"] = str(tpgt)
    st.nodes[key] = rec
    address, port = split_portal(portal)
    return Outcome(
        0,
        f"New iSCSI node [tcp:[hw=,ip=,net_if=,iscsi_if={iface}] "
        f"{address},{port},{rec['node.tpgt']} {iqn}] added\n",
    )


def node_update(st: SimState, key: NodeKey, pairs: list[tuple[str, str]]) -> Outcome:
    """``-o update -n NAME -v VALUE [-n NAME -v VALUE ...]``; 21 when the record
    does not exist; an unknown name stops the update there."""
    rec = st.nodes.get(key)
    if rec is None:
        return err(ERR_NO_OBJS_FOUND, "No records found")
    for name, value in pairs:
        if name not in rec:
            return err(ERR_IDBM, f"Cannot modify {name}. Invalid param name.")
        rec[name] = value
    return Outcome(0)


def node_write(st: SimState, key: NodeKey, values: dict[str, str | None]) -> Outcome:
    """The daemon's node record write (:class:`~multipath_brick.verbs.NodeWrite`):
    21 when the record does not exist; None empties a key, as removing its line
    does."""
    rec = st.nodes.get(key)
    if rec is None:
        return Outcome(ERR_NO_OBJS_FOUND, "", "No records found\n")
    for name, value in values.items():
        rec[name] = value or ""
    return Outcome(0)


def node_delete(st: SimState, key: NodeKey) -> Outcome:
    """``-o delete``; refused (15) while a session uses the record.

    The file removed is the portal's flat record when there is one, whatever
    its iface (``idbm_delete_node``).
    """
    if key not in st.nodes:
        return err(ERR_NO_OBJS_FOUND, "No records found")
    if st.session_for(key) is not None:
        portal, iqn, iface = key
        address, port = split_portal(portal)
        return err(
            ERR_SESS_EXISTS,
            f"This command will remove the record [iface: {iface}, target: {iqn}, "
            f"portal: {address},{port}], but a session is using it. Logout session "
            "then rerun command to remove record.",
            f"Could not execute operation on all records: {ERR_TEXT[ERR_SESS_EXISTS]}",
        )
    portal, iqn, _ = key
    # idbm_delete_node unlinks the portal's flat file when there is one, before
    # it looks for the record's own file: with a flat record of another iface
    # beside it, that one goes and this one stays (node_tpgt_sequence.txt E).
    _remove(st, flat_record(st, portal, iqn) or key)
    return Outcome(0)


def record_delete(st: SimState, key: NodeKey) -> Outcome:
    """The daemon's node record delete (:class:`~multipath_brick.verbs.NodeDelete`):
    21 when the record does not exist, 15 while a session made from it is up
    (asked of the fake's sysfs tree with the daemon's own look), else exactly
    this iface's record goes (lab: ``node_delete_sequence.txt``; unlike
    ``iscsiadm -o delete``, never the portal's flat record of another iface).
    """
    portal, iqn, iface = key
    if key not in st.nodes:
        return Outcome(ERR_NO_OBJS_FOUND, "", "No records found\n")
    user = session_using(st.tree.root, portal, iqn, iface)
    if user is not None:
        return Outcome(
            ERR_SESS_EXISTS, "", f"{user} uses the record; log it out before deleting it\n"
        )
    _remove(st, key)
    return Outcome(0)


def _remove(st: SimState, key: NodeKey) -> None:
    """Remove a record. The portal's directory goes with its last record, under
    the lock; iscsiadm's listings (a login's, an update's) read directories
    without it, and trip."""
    portal, iqn, _ = key
    del st.nodes[key]
    if not st.nodes.keys_under("target", (portal, iqn)):
        address, port = split_portal(portal)
        for scan in st.node_db_scans:
            scan.vanished.append(f"{NODE_DIR}/{iqn}/{address},{port}")


def record_verb(st: SimState, verb: RecordVerb) -> Outcome:
    """One of the daemon's record verbs: a write (settings, and CHAP secrets
    off the argv), a read or a delete.

    :raises NotImplementedError: for a record verb the fake does not know.
    """
    if isinstance(verb, (NodeRead, NodeWrite, NodeDelete)):
        key = (verb.portal, verb.iqn, verb.iface)
        if isinstance(verb, NodeRead):
            return node_read(st, key)
        if isinstance(verb, NodeDelete):
            return record_delete(st, key)
        return node_write(st, key, verb.values())
    if isinstance(verb, DiscoverySetSecrets):
        return discovery_set_secrets(st, verb.portal, verb.values())
    raise NotImplementedError(f"fake host does not emulate: {' '.join(verb.display())}")


def show_record(rec: dict[str, str]) -> str:
    """``# BEGIN RECORD`` ... ``# END RECORD``, passwords masked, empties ``<empty>``."""
    lines = [f"# BEGIN RECORD {VERSION}\n"]
    for name, value in rec.items():
        if "password" in name and value:
            value = "********"
        lines.append(f"{name} = {value or '<empty>'}\n")
    lines.append("# END RECORD\n")
    return "".join(lines)


def node_read(st: SimState, key: NodeKey) -> Outcome:
    """The daemon's read of a node record (:class:`~multipath_brick.verbs.NodeRead`):
    the file's lines (a line per non-empty setting), secrets masked; 21 when the
    record does not exist."""
    rec = st.nodes.get(key)
    if rec is None:
        return Outcome(ERR_NO_OBJS_FOUND, "", "No records found\n")
    lines = [f"# BEGIN RECORD {VERSION}\n"]
    for name, value in rec.items():
        if value:
            lines.append(f"{name} = {'********' if 'password' in name else value}\n")
    lines.append("# END RECORD\n")
    return Outcome(0, "".join(lines))


def node_show(st: SimState, key: NodeKey) -> Outcome:
    """``-o show``; 21 when the record does not exist."""
    rec = st.nodes.get(key)
    if rec is None:
        return err(ERR_NO_OBJS_FOUND, "No records found")
    return Outcome(0, show_record(rec))


def discovery_defaults() -> dict[str, str]:
    """A discovery record as iscsid.conf makes it."""
    return dict(DISCOVERY_DEFAULTS)


def discovery_new(st: SimState, portal: str) -> Outcome:
    """``-m discoverydb -o new``."""
    address, port = split_portal(portal)
    rec = discovery_defaults()
    rec["discovery.sendtargets.address"] = address
    rec["discovery.sendtargets.port"] = str(port)
    st.discovery[portal] = rec
    return Outcome(0, f"New discovery record for [{address},{port}] added.\n")


def _missing(portal: str) -> Outcome:
    address, port = split_portal(portal)
    return err(ERR_IDBM, f"Discovery record [{address},{port}] not found.")


def discovery_update(st: SimState, portal: str, name: str, value: str) -> Outcome:
    """``-m discoverydb -o update``; 6 when the record does not exist."""
    rec = st.discovery.get(portal)
    if rec is None:
        return _missing(portal)
    rec[name] = value
    return Outcome(0)


def discovery_set_secrets(st: SimState, portal: str, values: dict[str, str | None]) -> Outcome:
    """The daemon's discovery record write
    (:class:`~multipath_brick.verbs.DiscoverySetSecrets`): 21 when the
    record does not exist."""
    rec = st.discovery.get(portal)
    if rec is None:
        return Outcome(ERR_NO_OBJS_FOUND, "", "No records found\n")
    for name, value in values.items():
        rec[name] = value or ""
    return Outcome(0)


def discovery_delete(st: SimState, portal: str) -> Outcome:
    """``-m discoverydb -o delete``; 6 when the record does not exist."""
    if portal not in st.discovery:
        return _missing(portal)
    del st.discovery[portal]
    return Outcome(0)
