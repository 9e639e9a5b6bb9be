"""Connection properties: the one parser of what Cinder drivers hand us.

Drivers send ``connection_info['data']`` in three shapes:

* singular only: ``target_portal`` / ``target_iqn`` / ``target_lun``;
* plural only: ``target_portals`` / ``target_iqns`` / ``target_luns`` (Pure, 3PAR,
  Hitachi, Huawei, Fujitsu...), no singular keys at all;
* both (NetApp, PowerStore, Unity, Storwize...), where the singular triple is not
  always the first plural entry.

When the plural lists are present they are the truth, in their order. The value is
parsed once, here, at the edge: nothing below the connector ever sees the dict.

Discovery rule: a volume *needs discovery* when the dict names only one path,
that is when it has no ``target_iqns`` (singular only, or ``target_portals``
without ``target_iqns``, which os-brick also ignores). ``targets`` then holds the
singular target, and the connector asks that portal (sendtargets) for the others.

Leniency is os-brick's: whatever its ``ISCSIConnector`` takes is taken here,
coerced when that is harmless (an int ``volume_id``, ``encrypted`` as 0/1,
plural lists of unequal length cut to the shortest with a warning, as os-brick's
``zip`` does silently). What is still refused is a value that would be unsafe to
hand to ``iscsiadm`` as root, or one no session could ever be made with (see
``doc/source/user/properties.rst``). :meth:`ConnectionProperties.for_cleanup`
is the detach side: it never refuses what os-brick's ``connect_volume`` could
have been given, except a hazard, and drops (with a warning) targets no session
can exist for.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from multipath_brick import validate
from multipath_brick.exception import InvalidConnectionProperties
from multipath_brick.validate import DEFAULT_PORT, ValidationError

__all__ = ["DEFAULT_PORT", "Chap", "ConnectionProperties", "Target"]

LOG = logging.getLogger(__name__)

# Flat-space addressing (SAM-2/SAM-3) has 14 bits of LUN.
_FLAT_SPACE = 16384
_ADDRESSING_MODES = ("SAM", "transparent", "SAM2", "SAM3-flat")
_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True, order=True)
class Target:
    """One path to a volume: a portal, the target behind it, and the LUN.

    The unique key of a path is the whole triple, not the portal: one portal can
    serve two IQNs, and LUN numbers can differ per portal.

    :ivar portal: ``host:port``; IPv6 as ``[addr]:port``.
    :ivar iqn: the target name, as given.
    :ivar lun: the LUN number the kernel sees (addressing mode applied).
    """

    portal: str
    iqn: str
    lun: int

    @property
    def address(self) -> str:
        """The portal's host part, without brackets."""
        return self.portal.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        """The portal's TCP port."""
        return int(self.portal.rpartition(":")[2])

    def __str__(self) -> str:
        return f"{self.portal} {self.iqn} lun {self.lun}"


@dataclasses.dataclass(frozen=True)
class Chap:
    """CHAP credentials. ``repr`` and ``str`` never show a password.

    :ivar username: the initiator's CHAP name.
    :ivar password: its secret.
    :ivar username_in: the target's name, for mutual CHAP, or None.
    :ivar password_in: the target's secret, for mutual CHAP, or None.
    """

    username: str
    password: str
    username_in: str | None = None
    password_in: str | None = None

    @property
    def mutual(self) -> bool:
        """True when the target must authenticate itself too."""
        return self.username_in is not None

    def __repr__(self) -> str:
        mutual = f", username_in={self.username_in!r}, password_in='***'" if self.mutual else ""
        return f"Chap(username={self.username!r}, password='***'{mutual})"

    __str__ = __repr__


@dataclasses.dataclass(frozen=True)
class ConnectionProperties:
    """A volume's iSCSI connection properties, parsed and checked.

    Build it with :meth:`from_dict`; give it back to os-brick style code with
    :meth:`to_dict`.

    :ivar targets: the paths, in the order the driver listed them, without
        exact duplicates.
    :ivar needs_discovery: True when only one path was named and sendtargets
        discovery on it must find the others (see the module docstring).
    :ivar chap: session CHAP, or None.
    :ivar discovery_chap: CHAP for sendtargets discovery, or None.
    :ivar volume_id: the Cinder volume id, when given.
    :ivar encrypted: whether Cinder says the volume is encrypted.
    :ivar access_mode: ``rw`` / ``ro`` when given.
    """

    targets: tuple[Target, ...]
    needs_discovery: bool = False
    chap: Chap | None = None
    discovery_chap: Chap | None = None
    volume_id: str | None = None
    encrypted: bool = False
    access_mode: str | None = None

    @classmethod
    def from_dict(cls, data: object) -> ConnectionProperties:
        """Parse a Cinder ``connection_info['data']`` dict.

        The whole ``connection_info`` (with ``driver_volume_type`` and ``data``)
        is accepted too. Unknown keys are ignored.

        :raises InvalidConnectionProperties: naming the key and the reason.
        """
        return cls._parse(data, cleanup=False)

    @classmethod
    def for_cleanup(cls, data: object) -> ConnectionProperties:
        """Parse for a detach, a path lookup or a cleanup: never stricter than os-brick.

        A target whose portal or LUN no session can exist for (``ip1:port1``, a
        missing portal, LUN ``"x"``) is left out with a warning instead of
        refusing the whole dict: os-brick's ``connect_volume`` could have been
        given it, and could not have logged in with it, so nothing of it is on
        this host. ``targets`` may then be empty: nothing to do.

        :raises InvalidConnectionProperties: a hazard only (a target name that
            would name a path in the node database, an option-like or
            whitespace-holding value, a malformed CHAP credential), or not a dict.
        """
        return cls._parse(data, cleanup=True)

    @classmethod
    def _parse(cls, data: object, *, cleanup: bool) -> ConnectionProperties:
        if not isinstance(data, Mapping):
            raise InvalidConnectionProperties("data", f"expected a dict, got {_kind(data)}")
        inner = data.get("data")
        if "driver_volume_type" in data and isinstance(inner, Mapping):
            kind = data["driver_volume_type"]
            if not isinstance(kind, str) or kind.lower() != "iscsi":
                raise InvalidConnectionProperties("driver_volume_type", "not an iSCSI volume")
            return cls._from_mapping(inner, cleanup)
        return cls._from_mapping(data, cleanup)

    @classmethod
    def _from_mapping(cls, data: Mapping[str, Any], cleanup: bool) -> ConnectionProperties:
        mode = _addressing_mode(data)
        targets, needs_discovery = _Targets(data, mode, cleanup).parse()
        return cls(
            targets=targets,
            needs_discovery=needs_discovery,
            # A detach never logs in: credentials are not read, so a malformed
            # one (os-brick's tests send discovery method 'CHAP1') cannot stop it.
            chap=None if cleanup else _chap(data, "auth_", with_mutual=True),
            discovery_chap=None if cleanup else _chap(data, "discovery_auth_", with_mutual=False),
            volume_id=_volume_id(data.get("volume_id")),
            # os-brick's decorators test ``connection_properties.get('encrypted')``
            # for truth; the same test here, so both agree on which volumes get a link.
            encrypted=bool(data.get("encrypted")),
            access_mode=_optional_str(data.get("access_mode")),
        )

    def to_dict(self) -> dict[str, Any]:
        """An os-brick style dict that :meth:`from_dict` parses back to this value.

        LUNs are written as the kernel sees them, so no ``addressing_mode`` is
        emitted. A value that needs discovery is written in singular form only,
        which is what keeps it needing discovery.
        """
        out: dict[str, Any] = {"encrypted": self.encrypted}
        if self.targets:
            first = self.targets[0]
            out.update(target_portal=first.portal, target_iqn=first.iqn, target_lun=first.lun)
        if self.targets and not self.needs_discovery:
            out["target_portals"] = [t.portal for t in self.targets]
            out["target_iqns"] = [t.iqn for t in self.targets]
            out["target_luns"] = [t.lun for t in self.targets]
        for prefix, chap in (("auth_", self.chap), ("discovery_auth_", self.discovery_chap)):
            if chap is not None:
                out[prefix + "method"] = "CHAP"
                out[prefix + "username"] = chap.username
                out[prefix + "password"] = chap.password
                if chap.mutual:
                    out[prefix + "username_in"] = chap.username_in
                    out[prefix + "password_in"] = chap.password_in
        if self.volume_id is not None:
            out["volume_id"] = self.volume_id
        if self.access_mode is not None:
            out["access_mode"] = self.access_mode
        return out


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


class _Targets:
    """The paths of a dict; in cleanup mode a path no session can exist for is dropped."""

    def __init__(self, data: Mapping[str, Any], mode: str, cleanup: bool) -> None:
        self.data = data
        self.mode = mode
        self.cleanup = cleanup

    def parse(self) -> tuple[tuple[Target, ...], bool]:
        data = self.data
        portals = _plural(data, "target_portals", empty_ok=self.cleanup)
        iqns = _plural(data, "target_iqns", empty_ok=self.cleanup)
        # os-brick: ``target_luns or [target_lun] * n``, so an empty list means "absent".
        luns = _plural(data, "target_luns", empty_ok=True) or None
        if iqns is not None and portals is None and not self.cleanup:
            raise InvalidConnectionProperties("target_portals", "required with target_iqns")
        if portals is None or iqns is None:
            # One path named: the singular triple, and sendtargets finds the rest.
            one = self._target(
                ("target_portal", self._single(data.get("target_portal"))),
                ("target_iqn", self._single(data.get("target_iqn"))),
                ("target_lun", self._single(data.get("target_lun", 0))),
            )
            return (() if one is None else (one,)), True
        self._warn_unequal(portals, iqns, luns)
        for key in ("target_portal", "target_iqn"):
            if isinstance(data.get(key), (list, tuple)):
                raise InvalidConnectionProperties(key, "expected a single value, got a list")
        default_lun: object = data.get("target_lun", 0)
        if luns is None and not self.cleanup:
            # Parsed even when unused, so that a bad singular value is never silently accepted.
            _lun("target_lun", default_lun, self.mode)
        seen: dict[Target, None] = {}
        # zip, not zip(strict=True): os-brick cuts unequal lists to the shortest.
        for i, (raw_portal, raw_iqn) in enumerate(zip(portals, iqns, strict=False)):
            if luns is None:
                lun_field: tuple[str, object] = ("target_lun", default_lun)
            elif i < len(luns):
                lun_field = (f"target_luns[{i}]", luns[i])
            else:
                break
            target = self._target(
                (f"target_portals[{i}]", raw_portal), (f"target_iqns[{i}]", raw_iqn), lun_field
            )
            if target is not None:
                seen.setdefault(target, None)
        return tuple(seen), False

    def _target(
        self, portal: tuple[str, object], iqn: tuple[str, object], lun: tuple[str, object]
    ) -> Target | None:
        # The target name is checked first and always: a hostile name is refused
        # even on detach, where every other unusable value only drops its path.
        name = _iqn(*iqn) if iqn[1] is not None or not self.cleanup else None
        try:
            number = _lun(lun[0], lun[1], self.mode)
            address = _portal(*portal)
        except InvalidConnectionProperties as error:
            if not self.cleanup:
                raise
            LOG.warning("leaving out a path no session can exist for: %s", error)
            return None
        if name is None:
            LOG.warning("leaving out %s: no target name", address)
            return None
        return Target(address, name, number)

    def _single(self, value: object) -> object:
        # os-brick's own tests give the singular keys as one-element lists; no
        # attach can have been made with them (iscsiadm's argv would hold a
        # list), but a lookup or a detach takes them rather than refuse.
        if self.cleanup and isinstance(value, (list, tuple)) and len(value) == 1:
            return value[0]
        return value

    @staticmethod
    def _warn_unequal(portals: list[Any], iqns: list[Any], luns: list[Any] | None) -> None:
        lengths = {"target_portals": len(portals), "target_iqns": len(iqns)}
        if luns is not None:
            lengths["target_luns"] = len(luns)
        if len(set(lengths.values())) > 1:
            LOG.warning(
                "plural lists of unequal length (%s): "
                "using the first %d entries, as os-brick does",
                ", ".join(f"{k} has {n}" for k, n in lengths.items()),
                min(lengths.values()),
            )


def _plural(data: Mapping[str, Any], key: str, *, empty_ok: bool) -> list[Any] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, (list, tuple)):
        raise InvalidConnectionProperties(key, f"expected a list, got {_kind(value)}")
    if not value and not empty_ok:
        raise InvalidConnectionProperties(key, "is empty")
    return list(value)


def _rule(key: str, rule: Callable[[object], _T], value: object) -> _T:
    """Run a shared rule (:mod:`multipath_brick.validate`), naming the key on refusal."""
    if isinstance(value, (list, tuple)):
        raise InvalidConnectionProperties(key, "expected a single value, got a list")
    try:
        return rule(value)
    except ValidationError as error:
        raise InvalidConnectionProperties(key, error.reason) from None


def _iqn(key: str, value: object) -> str:
    return _rule(key, validate.target_name, value)


def _portal(key: str, value: object) -> str:
    return _rule(key, validate.portal, value)


def _lun(key: str, value: object, mode: str) -> int:
    lun = _rule(key, validate.lun, value)
    if mode in ("SAM2", "SAM3-flat"):
        if lun >= _FLAT_SPACE:
            raise InvalidConnectionProperties(key, f"LUN {lun} too large for {mode} addressing")
        if mode == "SAM3-flat" or lun >= 256:
            return _FLAT_SPACE + lun
    return lun


def _addressing_mode(data: Mapping[str, Any]) -> str:
    mode = data.get("addressing_mode")
    if mode is None:
        return "transparent"
    for known in _ADDRESSING_MODES:
        if mode == known:
            return known
    raise InvalidConnectionProperties(
        "addressing_mode",
        f"unknown mode {validate.shown(mode)}; expected one of {_ADDRESSING_MODES}",
    )


def _chap(data: Mapping[str, Any], prefix: str, *, with_mutual: bool) -> Chap | None:
    method = data.get(prefix + "method")
    if method is None or (isinstance(method, str) and method.lower() in ("", "none")):
        return None
    if not isinstance(method, str) or method.upper() != "CHAP":
        raise InvalidConnectionProperties(
            prefix + "method", f"unsupported method {validate.shown(method)}"
        )
    username = _rule(prefix + "username", validate.chap_name, data.get(prefix + "username"))
    password = _rule(prefix + "password", validate.chap_secret, data.get(prefix + "password"))
    username_in = password_in = None
    if with_mutual and data.get(prefix + "username_in") is not None:
        username_in = _rule(
            prefix + "username_in", validate.chap_name, data[prefix + "username_in"]
        )
        password_in = _rule(
            prefix + "password_in", validate.chap_secret, data.get(prefix + "password_in")
        )
    return Chap(username, password, username_in, password_in)


def _optional_str(value: object) -> str | None:
    # access_mode and the like are informational: a value of another type is
    # ignored, as os-brick ignores it, rather than refusing the attach.
    return value if isinstance(value, str) else None


def _volume_id(value: object) -> str | None:
    # Cinder's generic driver data and os-brick's own tests give an int.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _optional_str(value)
