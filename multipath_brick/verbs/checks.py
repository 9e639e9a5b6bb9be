"""Argument checks for the privileged verbs.

Every verb runs them on construction, and the privsep daemon constructs the
verb again from the fields it was sent, so the checks run where the privilege
is. The rules themselves are :mod:`multipath_brick.validate`, the same the
connection-properties parser runs at the edge; here each refusal becomes
:class:`~multipath_brick.exception.InvalidArgument` naming the verb's field.

A value must also already be in the rule's normal form (a portal as
``host:port``, no leading zeros): what the daemon checked is exactly what it
runs, and it runs only what the parser could have produced.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TypeVar

from multipath_brick import validate
from multipath_brick.exception import InvalidArgument
from multipath_brick.validate import DISCOVERY_SETTINGS, NODE_SETTINGS

__all__ = [
    "DISCOVERY_SETTINGS",
    "IFACE_PREFIX",
    "IFACE_SETTINGS",
    "MASK",
    "NETDEV",
    "NODE_SETTINGS",
    "RESERVED_IFACES",
    "check_deadline",
    "check_device",
    "check_int",
    "check_iqn",
    "check_name",
    "check_netdev",
    "check_our_iface",
    "check_portal",
    "check_setting_name",
    "check_timeout",
    "check_value",
    "is_netdev",
]

MASK = "***"

_T = TypeVar("_T")

#: Prefix of every iscsiadm iface this library creates (``mpb-<netdev>``).
IFACE_PREFIX = "mpb-"
#: Names open-iscsi reserves for its built-in ifaces.
RESERVED_IFACES = frozenset({"default", "tcp", "iser"})
#: iface settings the library writes, and nothing else: the netdev the iface is
#: bound to, its transport, and optionally the initiator name it logs in as.
IFACE_SETTINGS = frozenset({"iface.net_ifacename", "iface.transport_name", "iface.initiatorname"})
# Linux netdev names are at most 15 bytes (IFNAMSIZ 16) and may not hold '/',
# ':' or whitespace; we also refuse what a command line or a config parser could
# misread, so that IFACE_PREFIX + netdev is always a safe iface name.
NETDEV = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")


def _checked(
    field: str, rule: Callable[[object], _T], value: object, *, secret: bool = False
) -> _T:
    try:
        normal = rule(value)
    except validate.ValidationError as error:
        raise InvalidArgument(field, error.reason) from None
    if normal != value or type(normal) is not type(value):
        shown = MASK if secret else validate.shown(value)
        expected = MASK if secret else validate.shown(normal)
        raise InvalidArgument(field, f"not in normal form (expected {expected}): {shown}")
    return normal


def check_portal(value: object) -> None:
    """``host:port`` or ``[v6]:port``, exactly as :class:`ConnectionProperties` writes it."""
    _checked("portal", validate.portal, value)


def check_iqn(value: object) -> None:
    """An ``iqn.``, ``eui.`` or ``naa.`` target name (:func:`.validate.target_name`)."""
    _checked("iqn", validate.target_name, value)


_NAMES: dict[str, Callable[[object], str]] = {
    "iface": validate.iface,
    "wwid": validate.wwid,
    "map_name": validate.map_name,
}


def check_name(field: str, value: object) -> None:
    """An iface name, a WWID or a map name, by ``field`` (``iface``, ``wwid``, ``map_name``)."""
    _checked(field, _NAMES[field], value)


def check_device(value: object) -> None:
    """A SCSI disk's kernel name: ``sdX``."""
    _checked("device", validate.disk, value)


def check_int(field: str, value: object, maximum: int = validate.MAX_LUN) -> None:
    """An ``int`` in ``0..maximum`` (never a bool or a string)."""
    _checked(field, lambda v: validate.integer(v, maximum), value)


def check_timeout(value: object) -> float:
    """Seconds in ``(0, MAX_TIMEOUT]``; an int is taken as a float."""
    try:
        return validate.timeout(value)
    except validate.ValidationError as error:
        raise InvalidArgument("timeout", error.reason) from None


def check_deadline(value: object) -> float:
    """A ``time.monotonic()`` reading: a finite number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument("deadline", f"not a monotonic clock reading: {value!r}")
    return float(value)


def check_setting_name(name: object, allowed: frozenset[str], what: str) -> None:
    """A setting name of ``allowed`` (:data:`NODE_SETTINGS` or :data:`DISCOVERY_SETTINGS`)."""
    if not isinstance(name, str) or name not in allowed:
        raise InvalidArgument("name", f"not a {what} setting we write: {validate.shown(name)}")


def check_value(field: str, value: object, *, secret: bool) -> None:
    """The value of the node or discovery setting ``field``, by its own rule.

    :param secret: the value is a CHAP secret and is never shown (setting
        names holding one are secret whatever this says).
    """
    hidden = secret or validate.is_secret(field)
    _checked(field, lambda v: validate.setting(field, v), value, secret=hidden)


def is_netdev(value: object) -> bool:
    """True for a netdev name safe on a command line (``eth1``, ``bond0.100``)."""
    return isinstance(value, str) and bool(NETDEV.fullmatch(value)) and value not in (".", "..")


def check_netdev(value: object, field: str = "netdev") -> None:
    """A Linux netdev name: 1-15 of ``A-Z a-z 0-9 . _ -``, not ``.`` or ``..``."""
    if not is_netdev(value):
        raise InvalidArgument(field, f"not a netdev name: {validate.shown(value)}")


def check_our_iface(value: object) -> None:
    """An iface this library may create, change or delete: ``mpb-<netdev>``.

    Narrower than any iface name on purpose: the privileged iface verbs can then
    never touch open-iscsi's reserved ifaces nor another program's.
    """
    if (
        not isinstance(value, str)
        or not value.startswith(IFACE_PREFIX)
        or not is_netdev(value[len(IFACE_PREFIX) :])
    ):
        reason = f"not an iface of ours ({IFACE_PREFIX}<netdev>): {validate.shown(value)}"
        raise InvalidArgument("iface", reason)
