"""Field rules of the bond model, and typed reads of JSON-style dicts.

Every value of :mod:`multipath_brick.bond` passes through one of these before it
is stored, whether it came from a constructor, ``from_dict`` or a REST body, so
the rules live in one place. A refused value raises
:class:`~multipath_brick.exception.BondValueError` naming the subject (the
network, connection, bond or host) and the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from multipath_brick.exception import BondValueError

#: Ids as ovirt-engine hands them out (GUIDs, or the short strings of tests).
_IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
#: ovirt-engine's ``@ValidI18NName``: letters of any script, digits, ``.``, ``_``, ``-``.
_I18N_NAME = re.compile(r"[\w.-]+")
#: Host names as an engine knows them: FQDNs, short names, UUIDs.
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,254}")
#: Storage types, lower case as ovirt-engine's REST API writes them (``iscsi``, ``nfs``...).
_STORAGE_TYPE = re.compile(r"[a-z][a-z_]{0,31}")
# XML 1.0 cannot carry most control characters, and an XML parser turns \r into
# \n: descriptions may hold tabs and newlines, nothing else below U+0020.
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff\ufffe\uffff]")

#: Longest bond name ovirt-engine stores (``iscsi_bonds.name varchar(50)``).
BOND_NAME_MAX = 50
#: Longest network name ovirt-engine accepts.
NETWORK_NAME_MAX = 256
#: Longest description ovirt-engine stores (``varchar(4000)``).
DESCRIPTION_MAX = 4000


def kind(value: object) -> str:
    """The JSON-ish type name of ``value``, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return type(value).__name__


def _text(subject: str, field: str, value: object) -> str:
    if not isinstance(value, str):
        raise BondValueError(subject, field, f"expected a string, got {kind(value)}")
    return value


def ident(subject: str, field: str, value: object) -> str:
    """An id: 1-128 characters of ``A-Z a-z 0-9 . _ : -``, not starting with a symbol."""
    text = _text(subject, field, value)
    if not _IDENT.fullmatch(text):
        raise BondValueError(
            subject, field, f"{text[:80]!r} is not an id (1-128 of A-Z a-z 0-9 . _ : -)"
        )
    return text


def name(subject: str, field: str, value: object, maximum: int) -> str:
    """A bond or network name: letters, digits, ``.``, ``_``, ``-``; 1 to ``maximum`` long."""
    text = _text(subject, field, value)
    if not text or len(text) > maximum:
        raise BondValueError(subject, field, f"must be 1 to {maximum} characters long")
    if not _I18N_NAME.fullmatch(text):
        raise BondValueError(
            subject, field, f"{text!r} may hold only letters, digits, '.', '_' and '-'"
        )
    return text


def description(subject: str, value: object) -> str:
    """Free text up to 4000 characters; tabs and newlines, no other control characters."""
    text = _text(subject, "description", value)
    if len(text) > DESCRIPTION_MAX:
        raise BondValueError(subject, "description", f"longer than {DESCRIPTION_MAX} characters")
    if _NOT_TEXT.search(text):
        raise BondValueError(
            subject, "description", "contains control characters XML cannot carry"
        )
    return text


def host(value: object) -> str:
    """A host's name as the caller knows it (FQDN, short name or id)."""
    text = _text("host", "name", value)
    if not _HOST.fullmatch(text):
        raise BondValueError("host", "name", f"{text[:80]!r} is not a host name")
    return text


def storage_type(subject: str, value: object) -> str:
    """A storage type in lower case: ``iscsi``, ``nfs``, ``fcp``..."""
    text = _text(subject, "type", value)
    if not _STORAGE_TYPE.fullmatch(text):
        raise BondValueError(subject, "type", f"{text[:40]!r} is not a storage type")
    return text


def optional_int(subject: str, field: str, value: object, low: int, high: int) -> int | None:
    """None, or an integer (not a boolean) in ``low..high``."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise BondValueError(subject, field, f"expected an integer or null, got {kind(value)}")
    if not low <= value <= high:
        raise BondValueError(subject, field, f"{value} is outside {low}..{high}")
    return value


def flag(subject: str, field: str, value: object) -> bool:
    """A JSON boolean."""
    if not isinstance(value, bool):
        raise BondValueError(subject, field, f"expected a boolean, got {kind(value)}")
    return value


def mapping(subject: str, value: object, keys: Sequence[str]) -> Mapping[str, Any]:
    """A dict holding exactly ``keys``: a missing or an unknown key is refused by name.

    Unknown keys are refused rather than ignored so that a misspelt key
    (``vlan`` for ``vlan_id``) is an error instead of a silently lost value.
    """
    if not isinstance(value, Mapping):
        raise BondValueError(subject, "(value)", f"expected an object, got {kind(value)}")
    for key in value:
        if key not in keys:
            shown = key[:40] if isinstance(key, str) else kind(key)
            raise BondValueError(subject, str(shown), "unknown key")
    for key in keys:
        if key not in value:
            raise BondValueError(subject, key, "missing")
    return value


def listing(subject: str, field: str, value: object) -> Sequence[Any]:
    """A JSON array (a list or tuple, never a string)."""
    if not isinstance(value, (list, tuple)):
        raise BondValueError(subject, field, f"expected a list, got {kind(value)}")
    return value


def unique_ids(subject: str, field: str, ids: Sequence[str]) -> None:
    """Refuse the first id that appears twice."""
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise BondValueError(subject, field, f"id {item!r} appears twice")
        seen.add(item)
