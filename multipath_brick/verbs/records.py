"""Record verbs: what the daemon does on open-iscsi's record files itself, running no program.

:class:`NodeWrite` and :class:`DiscoverySetSecrets` carry CHAP secrets, which
must never be on a command line, into a node or discovery record (with a node
record's other settings in the same write); :class:`NodeRead` reads a node
record without an iscsiadm process, and :class:`NodeDelete` deletes one. The daemon side is
:mod:`multipath_brick.privileged.nodedb`.
"""

from __future__ import annotations

import dataclasses

from multipath_brick.exception import InvalidArgument
from multipath_brick.verbs.base import RecordVerb
from multipath_brick.verbs.checks import MASK, check_portal, check_value
from multipath_brick.verbs.nodes import NodeRecordId, check_node_settings, settings_from_wire


@dataclasses.dataclass(frozen=True, repr=False)
class NodeWrite(NodeRecordId, RecordVerb):
    """Write settings and CHAP secrets into the node records of (portal, iqn, iface).

    The daemon rewrites the record file itself, under iscsiadm's lock
    (:mod:`multipath_brick.privileged.nodedb`): the secrets never reach an
    argv, and the settings cost no ``iscsiadm -o update`` process (about 0.12
    CPU-seconds in the TCG lab, once per path of every attach) and no listing
    of the database that can trip on a record coming or going. The record must
    exist (``-o new``); the login comes after.

    :ivar settings: allowed node settings (:data:`NODE_SETTINGS`), no secret.
    :ivar password: the CHAP secret; None leaves the record's secrets as they are.
    :ivar password_in: the mutual-CHAP secret; None with a password removes it.
    """

    entrypoint = "node_write"
    settings: tuple[tuple[str, str], ...] = ()
    password: str | None = None
    password_in: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_node_settings(self.settings, least=0)
        if self.password is None:
            if self.password_in is not None:
                raise InvalidArgument("password_in", "a mutual-CHAP secret needs a password")
            if not self.settings:
                raise InvalidArgument("settings", "nothing to write: no setting, no secret")
            return
        # The same rule as the properties parser's (validate.chap_secret): 1 to 255
        # bytes (open-iscsi reads a record value into a 256-byte buffer), no blank.
        for key, value in self.secrets().items():
            if value is not None or key.endswith("password"):
                check_value(key, value, secret=True)

    @classmethod
    def from_wire(
        cls,
        portal: str,
        iqn: str,
        iface: str,
        settings: object,
        password: str | None,
        password_in: str | None,
    ) -> NodeWrite:
        """Rebuild from what privsep sent."""
        pairs = settings_from_wire(settings)
        return cls(portal, iqn, iface, pairs, password, password_in)  # type: ignore[arg-type]

    def secrets(self) -> dict[str, str | None]:
        """The secret keys and what they become; empty when the secrets stay."""
        if self.password is None:
            return {}
        return {
            "node.session.auth.password": self.password,
            "node.session.auth.password_in": self.password_in,
        }

    def values(self) -> dict[str, str | None]:
        """Every record key written and what it becomes."""
        return {**dict(self.settings), **self.secrets()}

    def display(self) -> tuple[str, ...]:
        shown = tuple(f"{name}={value}" for name, value in self.settings)
        return ("write-record", "node", *self.where(), *shown, *_masked(self.secrets()))

    def __repr__(self) -> str:
        return f"NodeWrite({' '.join(self.display()[2:])})"


@dataclasses.dataclass(frozen=True)
class NodeRead(NodeRecordId, RecordVerb):
    """Read the node records of (portal, iqn, iface), secrets masked, as ``-o show`` prints them.

    The daemon reads the record files under iscsiadm's lock instead of running
    ``iscsiadm -o show``: an attach looks at each path's record before it
    writes it (is it ours?), and that look cost an iscsiadm process per path
    (about 0.1 CPU-seconds in the TCG lab). Only the lines in the files are
    given (no defaults for the keys a file leaves out); exit 21 when there is
    no record.
    """

    entrypoint = "node_read"

    def display(self) -> tuple[str, ...]:
        return ("read-record", "node", *self.where())


@dataclasses.dataclass(frozen=True)
class NodeDelete(NodeRecordId, RecordVerb):
    """Delete the node records of (portal, iqn, iface), as ``iscsiadm -o delete``
    leaves the database; exit 15 while a session uses one, 21 when there is none.

    The daemon removes the files under iscsiadm's lock instead of running
    ``iscsiadm -o delete``: that process lists the whole database first, so
    deletes were queued one at a time per target, and each cost 0.2-0.3 s in
    the TCG lab: the last second of a detach of 8 volumes (4 paths each)
    was four of them in a row.
    """

    entrypoint = "node_delete"

    def display(self) -> tuple[str, ...]:
        return ("delete-record", "node", *self.where())


def _masked(values: dict[str, str | None]) -> tuple[str, ...]:
    return tuple(f"{key}={MASK if value else '<empty>'}" for key, value in values.items())


@dataclasses.dataclass(frozen=True, repr=False)
class DiscoverySetSecrets(RecordVerb):
    """Write the CHAP secrets of the sendtargets discovery record of a portal, off the argv.

    open-iscsi keys a discovery record by portal only (no iface). It must exist
    (:class:`DiscoveryNew`) and carry its other CHAP settings before.
    """

    entrypoint = "discovery_set_secrets"
    portal: str
    password: str
    password_in: str | None = None

    def __post_init__(self) -> None:
        check_portal(self.portal)
        for key, value in self.values().items():
            if value is not None or key.endswith("password"):
                check_value(key, value, secret=True)

    def values(self) -> dict[str, str | None]:
        """The record keys and what they become."""
        return {
            "discovery.sendtargets.auth.password": self.password,
            "discovery.sendtargets.auth.password_in": self.password_in,
        }

    def display(self) -> tuple[str, ...]:
        return ("write-record", "discoverydb", "-p", self.portal, *_masked(self.values()))

    def __repr__(self) -> str:
        return f"DiscoverySetSecrets({' '.join(self.display()[2:])})"
