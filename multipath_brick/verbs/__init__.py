"""The verbs: every command or sysfs write the library may do as root.

Each verb is a frozen dataclass that validates its fields on construction and
knows its argv (or its sysfs path and value). They are the vocabulary spoken at
the :class:`~multipath_brick.host.base.Host` door, and live beside it, below
both the host and the privileged layer, which each speak them:

* :class:`~multipath_brick.host.linux.LinuxHost` sends a verb's fields to the
  privsep entrypoint of the same name, which rebuilds the verb *inside the
  daemon* (so validation runs where the privilege is) and runs its argv;
* :class:`~multipath_brick.testing.FakeHost` answers the same argv.

Two checks come with them, both run inside the daemon and by FakeHost:
:mod:`.checks` (is each field well formed, run on construction) and
:mod:`.ownership` (is the disk, host or map named an iSCSI one, as sysfs shows
it).

A :class:`RecordVerb` runs no program: it carries what must never be on a
command line (CHAP secrets) to an entrypoint that writes it into an
open-iscsi record, or asks for a record the daemon reads itself
(:mod:`multipath_brick.privileged.nodedb`).

This package imports nothing privileged (no oslo.privsep) and runs nothing;
:mod:`.ownership` only reads sysfs.
"""

from __future__ import annotations

from multipath_brick.verbs.base import Command, RecordVerb, SysfsWrite, Verb
from multipath_brick.verbs.blockdev import LinkEncrypted, ReadBlock, UnlinkEncrypted
from multipath_brick.verbs.checks import (
    DISCOVERY_SETTINGS,
    MASK,
    NODE_SETTINGS,
    check_device,
    check_int,
    check_iqn,
    check_name,
    check_portal,
    check_value,
)
from multipath_brick.verbs.devices import (
    MultipathAddWwid,
    MultipathdAddPath,
    MultipathdDelMap,
    MultipathdDelPath,
    MultipathdResizeMap,
    MultipathdShowDaemon,
    MultipathdShowMap,
    MultipathdShowPaths,
    MultipathFlush,
    MultipathRemoveWwid,
    ScsiDelete,
    ScsiRemoveLun,
    ScsiRescan,
    ScsiScan,
)
from multipath_brick.verbs.ifaces import (
    IfaceDelete,
    IfaceList,
    IfaceNew,
    IfaceShow,
    IfaceUpdate,
)
from multipath_brick.verbs.nodes import (
    SECRET_SETTINGS,
    DiscoveryDelete,
    DiscoveryNew,
    DiscoveryRun,
    DiscoveryUpdate,
    NodeList,
    NodeLogin,
    NodeLogout,
    NodeNew,
    NodeShow,
    NodeUpdate,
    SessionList,
)
from multipath_brick.verbs.records import DiscoverySetSecrets, NodeDelete, NodeRead, NodeWrite

ALL_VERBS: tuple[type[Verb], ...] = (
    NodeNew,
    NodeDelete,
    NodeShow,
    NodeLogin,
    NodeLogout,
    NodeUpdate,
    NodeWrite,
    NodeRead,
    NodeList,
    SessionList,
    DiscoveryNew,
    DiscoveryDelete,
    DiscoveryRun,
    DiscoveryUpdate,
    DiscoverySetSecrets,
    MultipathdShowDaemon,
    MultipathdShowMap,
    MultipathdShowPaths,
    MultipathdAddPath,
    MultipathdDelPath,
    MultipathAddWwid,
    MultipathFlush,
    MultipathdDelMap,
    MultipathdResizeMap,
    MultipathRemoveWwid,
    ScsiScan,
    ScsiDelete,
    ScsiRemoveLun,
    ScsiRescan,
    IfaceNew,
    IfaceUpdate,
    IfaceDelete,
    IfaceShow,
    IfaceList,
    ReadBlock,
    LinkEncrypted,
    UnlinkEncrypted,
)

__all__ = [
    "ALL_VERBS",
    "Command",
    "DISCOVERY_SETTINGS",
    "DiscoveryDelete",
    "DiscoveryNew",
    "DiscoveryRun",
    "DiscoverySetSecrets",
    "DiscoveryUpdate",
    "IfaceDelete",
    "IfaceList",
    "IfaceNew",
    "IfaceShow",
    "IfaceUpdate",
    "LinkEncrypted",
    "MASK",
    "MultipathAddWwid",
    "MultipathFlush",
    "MultipathRemoveWwid",
    "MultipathdAddPath",
    "MultipathdDelMap",
    "MultipathdDelPath",
    "MultipathdResizeMap",
    "MultipathdShowDaemon",
    "MultipathdShowMap",
    "MultipathdShowPaths",
    "NODE_SETTINGS",
    "NodeDelete",
    "NodeList",
    "NodeLogin",
    "NodeLogout",
    "NodeNew",
    "NodeRead",
    "NodeWrite",
    "NodeShow",
    "NodeUpdate",
    "ReadBlock",
    "RecordVerb",
    "SECRET_SETTINGS",
    "ScsiDelete",
    "ScsiRemoveLun",
    "ScsiRescan",
    "ScsiScan",
    "SessionList",
    "UnlinkEncrypted",
    "SysfsWrite",
    "Verb",
    "check_device",
    "check_int",
    "check_iqn",
    "check_name",
    "check_portal",
    "check_value",
]
