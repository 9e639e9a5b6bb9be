"""iscsiadm iface verbs: the records that bind sessions to a netdev.

An iface record (``/etc/iscsi/ifaces/<name>``) tells iscsid which netdev a
session leaves by (``iface.net_ifacename``: the socket is bound to it with
``SO_BINDTODEVICE``). The verbs that change records accept only this library's
names (``mpb-<netdev>``, :func:`~multipath_brick.verbs.checks.check_our_iface`),
so they can never change open-iscsi's reserved ``default``, ``tcp`` and ``iser``
nor another program's ifaces; reading is open to any valid name.
"""

from __future__ import annotations

import dataclasses

from multipath_brick.exception import InvalidArgument
from multipath_brick.verbs.base import Command
from multipath_brick.verbs.checks import (
    IFACE_SETTINGS,
    check_iqn,
    check_name,
    check_netdev,
    check_our_iface,
    check_setting_name,
)


@dataclasses.dataclass(frozen=True)
class _OurIfaceVerb(Command):
    iface: str

    def __post_init__(self) -> None:
        check_our_iface(self.iface)

    def _iface(self) -> tuple[str, ...]:
        return ("iscsiadm", "-m", "iface", "-I", self.iface)


@dataclasses.dataclass(frozen=True)
class IfaceNew(_OurIfaceVerb):
    """Create an empty iface record (transport ``tcp``, bound to no netdev yet)."""

    entrypoint = "iface_new"

    def argv(self) -> tuple[str, ...]:
        return (*self._iface(), "-o", "new")


@dataclasses.dataclass(frozen=True)
class IfaceDelete(_OurIfaceVerb):
    """Delete an iface record of ours."""

    entrypoint = "iface_delete"

    def argv(self) -> tuple[str, ...]:
        return (*self._iface(), "-o", "delete")


@dataclasses.dataclass(frozen=True)
class IfaceUpdate(_OurIfaceVerb):
    """Write one setting of an iface record of ours.

    Only :data:`~multipath_brick.verbs.checks.IFACE_SETTINGS`, each with
    its own rule: ``iface.net_ifacename`` a netdev name, ``iface.transport_name``
    exactly ``tcp`` (the library drives software iSCSI only), and
    ``iface.initiatorname`` a printable name that cannot pass as an option.
    """

    entrypoint = "iface_update"
    name: str
    value: str

    def __post_init__(self) -> None:
        super().__post_init__()
        check_setting_name(self.name, IFACE_SETTINGS, "iface")
        if self.name == "iface.net_ifacename":
            check_netdev(self.value, "value")
        elif self.name == "iface.transport_name":
            if self.value != "tcp":
                raise InvalidArgument("value", f"transport must be 'tcp': {self.value!r}")
        else:
            try:
                check_iqn(self.value)
            except InvalidArgument:
                raise InvalidArgument(
                    "value", f"not a valid initiator name: {self.value!r}"
                ) from None

    def argv(self) -> tuple[str, ...]:
        return (*self._iface(), "-o", "update", "-n", self.name, "-v", self.value)


@dataclasses.dataclass(frozen=True)
class IfaceShow(Command):
    """Print one iface record (any valid name: reading changes nothing)."""

    entrypoint = "iface_show"
    iface: str

    def __post_init__(self) -> None:
        check_name("iface", self.iface)

    def argv(self) -> tuple[str, ...]:
        return ("iscsiadm", "-m", "iface", "-I", self.iface, "-o", "show")


@dataclasses.dataclass(frozen=True)
class IfaceList(Command):
    """List every iface record, one line each."""

    entrypoint = "iface_list"

    def argv(self) -> tuple[str, ...]:
        return ("iscsiadm", "-m", "iface")
