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

from collections.abc import Callable
from typing import TypeVar

from multipath_brick import validate
from multipath_brick.exception import InvalidArgument
from multipath_brick.validate import DISCOVERY_SETTINGS, NODE_SETTINGS

__all__ = [
    "DISCOVERY_SETTINGS",
    "MASK",
    "NODE_SETTINGS",
    "check_device",
    "check_int",
    "check_iqn",
    "check_name",
    "check_portal",
    "check_setting_name",
    "check_timeout",
    "check_value",
]

MASK = "***"

_T = TypeVar("_T")


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
