"""The rules for every value that reaches the privileged daemon, in one place.

The connection-properties parser (:mod:`multipath_brick.iscsi.properties`) runs
them at the edge, and the daemon runs them again on every verb it rebuilds
(:mod:`multipath_brick.verbs.checks`), so the two cannot disagree: a value
the parser lets through is one the daemon accepts, and a hostile value is
refused at ``from_dict`` with the key that held it.

Each rule takes any object and returns the value normalised, or raises
:class:`ValidationError` with a reason; the caller names the field (the parser
as ``target_iqns[2]``, the daemon as the verb's field). A reason never repeats
a secret, and shows at most a short excerpt of any other value.

Why each rule is as it is: ``doc/source/user/properties.rst``. In short, target
names, portals and ifaces become node-database paths as root (open-iscsi does
not check them), and every value is an argument of a command run as root.

This module imports nothing of the library but :mod:`multipath_brick.exception`.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping

from multipath_brick.exception import MultipathBrickError

DEFAULT_PORT = 3260
#: SCSI LUNs are 64-bit (SAM-5); the kernel's scan attribute reads a u64.
MAX_LUN = 2**64 - 1
#: The longest a privileged command or sysfs write may be given, in seconds.
MAX_TIMEOUT = 86400.0
#: RFC 3720 section 3.2.6.1: an iSCSI name is at most 223 bytes.
MAX_TARGET_NAME = 223


class ValidationError(MultipathBrickError, ValueError):
    """A value refused by one of the rules; callers re-raise it naming their field.

    The parser turns it into
    :class:`~multipath_brick.exception.InvalidConnectionProperties`, the daemon
    into :class:`~multipath_brick.exception.InvalidArgument`.

    :ivar reason: why, without the value when it may be a secret.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason, reason)


def shown(value: object) -> str:
    """A short ``repr`` of a refused value, safe for any object.

    A huge integer or a deep list cannot always be turned into text (Python
    limits int-to-decimal conversion), and a megabyte name would flood the log.
    """
    if isinstance(value, int) and value.bit_length() > 128:
        return f"<an integer of {value.bit_length()} bits>"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return f"<a {type(value).__name__}>"
    return text if len(text) <= 80 else text[:76] + "...'"


# Whitespace (Unicode's too) and control characters: iscsiadm's record files are
# parsed line by line and split on blanks.
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def _text(value: object, what: str) -> str:
    """A non-empty string with no whitespace or control character, not an option."""
    if value is None or value == "":
        raise ValidationError(f"missing {what}")
    if not isinstance(value, str):
        raise ValidationError(f"{what}: expected a string, got {type(value).__name__}")
    if _UNSAFE.search(value):
        raise ValidationError(f"{what} contains whitespace or control characters")
    if value.startswith("-"):
        raise ValidationError(f"{what} must not start with '-': {shown(value)}")
    return value


# --- target names (RFC 3720 section 3.2.6.3, RFC 3721, RFC 3980) -----------------------

_NAME_CHARS = re.compile(r"[A-Za-z0-9_.:-]+")


def target_name(value: object) -> str:
    """An iSCSI target name, kept as given, refused only where it is a hazard.

    Accepted: at most 223 bytes of ASCII letters of either case, digits, ``.``,
    ``-``, ``:`` and ``_``; RFC 3720's ``iqn.`` / ``eui.`` / ``naa.`` forms and
    any other such name, since open-iscsi, tgt and LIO take any name and
    os-brick's own tests use ``tgt1``: a volume attached by os-brick to such a
    target must be detachable here. The name is never case-folded: LIO finds
    its target with ``strcmp`` and arrays (Synology, Fujitsu) send capitals.
    Refused, each a hazard: ``/`` and a leading ``.`` (open-iscsi makes the
    node record's path from the name, so ``..`` or ``a/b`` would name files
    outside the node database, as root), any other punctuation, whitespace and
    control characters (the record file is split on blanks), a leading ``-``
    (an option), and non-ASCII (a look-alike letter would name a different
    record that an administrator cannot tell from the real one).

    :raises ValidationError: the value is not such a name.
    """
    text = _text(value, "target name")
    why = ""
    if "/" in text:
        why = "contains '/', which would name a path in the node database"
    elif text.startswith("."):
        why = "starts with '.', which would name a path in the node database"
    elif not text.isascii():
        why = "contains non-ASCII characters"
    elif len(text) > MAX_TARGET_NAME:
        why = f"is {len(text)} bytes long, more than {MAX_TARGET_NAME} (RFC 3720)"
    elif not _NAME_CHARS.fullmatch(text):
        why = "has characters other than A-Z a-z 0-9 . - : _"
    if why:
        raise ValidationError(f"target name {why}: {shown(text)}")
    return text


# --- portals ----------------------------------------------------------------------------

_PORT = re.compile(r"[0-9]{1,5}")
_HOST_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_NUMERIC = re.compile(r"[0-9]+")


def portal(value: object) -> str:
    """A target portal, normalised to ``host:port`` (``[v6]:port`` for IPv6).

    ``host`` is an IPv4 address, an IPv6 address (bracketed, or bare when no
    port follows) or a DNS name; the port defaults to 3260. IPv6 zone ids
    (``fe80::1%eth0``) are refused: the zone is an interface of this host, which
    an array cannot know, and open-iscsi would carry it into the node record's
    path. A dotted name whose last label is numeric must be a plain IPv4
    address (``010.0.0.1`` would be read as octal by the resolver).

    :raises ValidationError: the value is not such a portal.
    """
    text = _text(value, "portal")
    if not text.isascii():
        raise ValidationError(f"portal contains non-ASCII characters: {shown(text)}")
    if "%" in text:
        raise ValidationError(
            f"IPv6 zone ids are not supported in a portal ({shown(text)}): the zone names "
            "an interface of this host, which the array cannot know; use a global address"
        )
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValidationError(f"malformed bracketed address {shown(text)}")
        return f"[{_ipv6(host)}]:{_port(rest[1:] if rest else None)}"
    if text.count(":") > 1:
        # Unbracketed IPv6: fine alone, ambiguous when the last group could be a port.
        head, _, tail = text.rpartition(":")
        if _PORT.fullmatch(tail) and _ipv6(head, quiet=True):
            raise ValidationError(f"ambiguous IPv6 portal {shown(text)}: write [address]:port")
        return f"[{_ipv6(text)}]:{DEFAULT_PORT}"
    host, sep, port = text.partition(":")
    return f"{_host(host)}:{_port(port if sep else None)}"


def _host(text: str) -> str:
    labels = text.split(".")
    if _NUMERIC.fullmatch(labels[-1]):
        try:
            return str(ipaddress.IPv4Address(text))
        except ValueError:
            raise ValidationError(f"invalid IPv4 address {shown(text)}") from None
    if len(text) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValidationError(f"invalid host name {shown(text)}")
    return text


def _ipv6(text: str, *, quiet: bool = False) -> str:
    try:
        return ipaddress.IPv6Address(text).compressed
    except ValueError:
        if quiet:
            return ""
        raise ValidationError(f"invalid IPv6 address {shown(text)}") from None


def _port(text: str | None) -> int:
    if text is None:
        return DEFAULT_PORT
    if not _PORT.fullmatch(text) or not 0 < int(text) < 65536:
        raise ValidationError(f"invalid port {shown(text)} (1-65535)")
    return int(text)


# --- numbers ------------------------------------------------------------------------------


def integer(value: object, maximum: int) -> int:
    """An ``int`` (not a bool, not a string) in ``0..maximum``."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise ValidationError(f"expected an integer in 0..{maximum}, got {shown(value)}")
    return value


_DIGITS = re.compile(r"[0-9]{1,20}")


def lun(value: object) -> int:
    """A LUN as drivers send it: an int or a string of digits, in ``0..2**64-1``.

    :raises ValidationError: anything else, a bool or a list included.
    """
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, (list, tuple)):
        raise ValidationError("expected a single value, got a list")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(f"expected a non-negative integer, got {shown(value)}")
    if value > MAX_LUN:
        raise ValidationError(f"LUN {shown(value)} out of range (0..2**64-1)")
    return value


def timeout(value: object) -> float:
    """Seconds a privileged command may take: a number in ``(0, MAX_TIMEOUT]``.

    Bounded because the daemon hands it to ``communicate()`` and to a thread
    wait, which overflow on ``1e300`` after the command was started.

    :raises ValidationError: anything else, bools, NaN and infinities included.
    """
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not 0 < value <= MAX_TIMEOUT  # ints compared exactly: no float overflow
        or not math.isfinite(value)
    ):
        raise ValidationError(f"not a number of seconds in (0, {MAX_TIMEOUT:g}]: {shown(value)}")
    return float(value)


# --- names of host objects ------------------------------------------------------------

# open-iscsi's ISCSI_MAX_IFACE_LEN (65 with the NUL). Offload ifaces are named
# like ``bnx2i.00:0e:1e:aa:bb:cc``, hence ``.`` and ``:``.
_IFACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}")
_DISK = re.compile(r"sd[a-z]{1,4}")
# Device-mapper names and WWIDs: DM_NAME_LEN and multipath's WWID_SIZE are 128
# with the NUL.
_DM_TOKEN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,126}")
# multipath reads an argument as a device number when sscanf("%d:%d") matches.
_DEVICE_NUMBER = re.compile(r"[0-9]+:-?[0-9]")


def iface(value: object) -> str:
    """An open-iscsi iface name (``default``, ``iser``, ``bnx2i.00:0e:...``).

    :raises ValidationError: anything else (it names a file under ``ifaces/``).
    """
    text = _text(value, "iface name")
    if not _IFACE.fullmatch(text):
        raise ValidationError(
            f"not an iface name (A-Z a-z 0-9 _ . : -, 64 at most): {shown(text)}"
        )
    return text


def disk(value: object) -> str:
    """A SCSI disk's kernel name, ``sdX``."""
    if not isinstance(value, str) or not _DISK.fullmatch(value):
        raise ValidationError(f"not a SCSI disk name (sdX): {shown(value)}")
    return value


def _dm_token(value: object, what: str) -> str:
    text = _text(value, what)
    if not _DM_TOKEN.fullmatch(text):
        raise ValidationError(f"not a {what} (A-Z a-z 0-9 _ . : -, 127 at most): {shown(text)}")
    if _DEVICE_NUMBER.match(text):
        raise ValidationError(f"a {what} must not look like a device number: {shown(text)}")
    return text


def map_name(value: object) -> str:
    """A map's device-mapper name (``mpatha``, a WWID, an alias); never ``8:0``-like."""
    return _dm_token(value, "map name")


def wwid(value: object) -> str:
    """A WWID as multipathd writes it (``36001405...``); never ``8:0``-like."""
    return _dm_token(value, "WWID")


# --- CHAP and node record settings ----------------------------------------------------

# open-iscsi's AUTH_STR_MAX_LEN (256 with the NUL).
_AUTH_MAX = 255


def chap_name(value: object) -> str:
    """A CHAP user name: non-empty, at most 255 bytes, no blanks, no leading ``-``.

    :raises ValidationError: anything else.
    """
    text = _text(value, "CHAP user name")
    if len(text.encode()) > _AUTH_MAX:
        raise ValidationError(f"CHAP user name longer than {_AUTH_MAX} bytes")
    return text


def chap_secret(value: object) -> str:
    """A CHAP secret: non-empty, at most 255 bytes, no blanks; never shown.

    A leading ``-`` is allowed: a secret is always an option's value.

    :raises ValidationError: anything else; the reason never holds the value.
    """
    if not isinstance(value, str) or not value:
        raise ValidationError("a CHAP secret is required, as a non-empty string")
    if _UNSAFE.search(value):
        raise ValidationError("CHAP secret contains whitespace or control characters")
    if len(value.encode()) > _AUTH_MAX:
        raise ValidationError(f"CHAP secret longer than {_AUTH_MAX} bytes")
    return value


def _only(*allowed: str) -> Callable[[object], str]:
    def rule(value: object) -> str:
        if isinstance(value, str) and value in allowed:
            return value
        raise ValidationError(f"must be one of {', '.join(allowed)}, got {shown(value)}")

    return rule


def _count(low: int, high: int) -> Callable[[object], str]:
    def rule(value: object) -> str:
        # Canonical decimal only: iscsid reads it with atoi, which would take
        # "1e9" as 1 and "010" as 10.
        if not (isinstance(value, str) and re.fullmatch(r"0|[1-9][0-9]{0,8}", value)):
            raise ValidationError(f"expected a decimal integer, got {shown(value)}")
        if not low <= int(value) <= high:
            raise ValidationError(f"must be in {low}..{high}, got {value}")
        return value

    return rule


_AUTH = {
    "authmethod": _only("CHAP", "None"),
    "username": chap_name,
    "password": chap_secret,
    "username_in": chap_name,
    "password_in": chap_secret,
}
_DAY = int(MAX_TIMEOUT)
_NODE_RULES: Mapping[str, Callable[[object], str]] = {
    # The library's records are logged in by the library only, and the kernel
    # must not create a disk for every LUN of a shared target.
    "node.startup": _only("manual"),
    "node.session.scan": _only("manual"),
    **{f"node.session.auth.{key}": rule for key, rule in _AUTH.items()},
    "node.session.initial_login_retry_max": _count(0, 100),
    "node.session.timeo.replacement_timeout": _count(0, _DAY),
    "node.conn[0].timeo.login_timeout": _count(1, _DAY),
    "node.conn[0].timeo.noop_out_interval": _count(0, _DAY),
    "node.conn[0].timeo.noop_out_timeout": _count(0, _DAY),
}
_DISCOVERY_RULES: Mapping[str, Callable[[object], str]] = {
    f"discovery.sendtargets.auth.{key}": rule for key, rule in _AUTH.items()
}
_SETTING_RULES = {**_NODE_RULES, **_DISCOVERY_RULES}
#: Node record settings the library writes; nothing else may be updated.
NODE_SETTINGS = frozenset(_NODE_RULES)
#: Discovery record settings the library writes.
DISCOVERY_SETTINGS = frozenset(_DISCOVERY_RULES)


def is_secret(name: str) -> bool:
    """Whether a setting holds a CHAP secret (never logged, never shown)."""
    return name.rpartition(".")[2].startswith("password")


def setting(name: object, value: object) -> str:
    """The value of an allowed node or discovery setting, checked by its own rule
    (``node.startup``/``node.session.scan`` only ``manual``, bounded integers...).

    :raises ValidationError: an unknown name or a value its rule refuses.
    """
    if not isinstance(name, str) or name not in _SETTING_RULES:
        raise ValidationError(f"not a setting the library writes: {shown(name)}")
    return _SETTING_RULES[name](value)
