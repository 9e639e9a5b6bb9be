"""Argument checks for the privileged verbs.

Every verb runs them on construction, and the privsep daemon constructs the
verb again from the fields it was sent, so the checks run where the privilege
is. They refuse anything that could be read as an option (a leading ``-``),
split by a parser (whitespace, control characters), or name a path.
"""

from __future__ import annotations

import re

from multipath_brick.exception import InvalidArgument

_PORTAL = re.compile(
    r"(\[[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?\]|[A-Za-z0-9_][A-Za-z0-9_.-]*):[0-9]{1,5}"
)
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}")
_BLOCK_DEVICE = re.compile(r"sd[a-z]{1,4}")
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f]")

#: Node record settings the library writes; nothing else may be updated.
NODE_SETTINGS = frozenset(
    {
        "node.startup",
        "node.session.scan",
        "node.session.auth.authmethod",
        "node.session.auth.username",
        "node.session.auth.password",
        "node.session.auth.username_in",
        "node.session.auth.password_in",
        "node.session.initial_login_retry_max",
        "node.session.timeo.replacement_timeout",
        "node.conn[0].timeo.login_timeout",
        "node.conn[0].timeo.noop_out_interval",
        "node.conn[0].timeo.noop_out_timeout",
    }
)
DISCOVERY_SETTINGS = frozenset(
    {
        "discovery.sendtargets.auth.authmethod",
        "discovery.sendtargets.auth.username",
        "discovery.sendtargets.auth.password",
        "discovery.sendtargets.auth.username_in",
        "discovery.sendtargets.auth.password_in",
    }
)
MASK = "***"


def _text(field: str, value: object, pattern: re.Pattern[str], what: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidArgument(field, f"not a valid {what}: {value!r}")


def check_portal(value: object) -> None:
    """``host:port`` or ``[v6]:port``, as :class:`ConnectionProperties` normalises it."""
    _text("portal", value, _PORTAL, "portal (host:port)")


def check_iqn(value: object) -> None:
    """Any printable name up to 223 bytes (RFC 3720) that cannot pass as an option."""
    if (
        not isinstance(value, str)
        or not 0 < len(value.encode()) <= 223
        or _UNSAFE.search(value)
        or value.startswith("-")
    ):
        raise InvalidArgument("iqn", f"not a valid target name: {value!r}")


def check_name(field: str, value: object) -> None:
    """Iface names, WWIDs and map names: a safe token."""
    _text(field, value, _NAME, field)


def check_device(value: object) -> None:
    """A SCSI disk's kernel name: ``sdX``."""
    _text("device", value, _BLOCK_DEVICE, "SCSI disk name (sdX)")


def check_int(field: str, value: object, maximum: int = 2**64 - 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise InvalidArgument(field, f"not an integer in 0..{maximum}: {value!r}")


def check_value(field: str, value: object, *, secret: bool) -> None:
    shown = MASK if secret else repr(value)
    if not isinstance(value, str) or _UNSAFE.search(value):
        raise InvalidArgument(field, f"value with control characters or not a string: {shown}")
    if value.startswith("-") and not secret:
        raise InvalidArgument(field, f"value must not start with '-': {shown}")
