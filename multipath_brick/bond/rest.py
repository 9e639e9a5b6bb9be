"""The REST bodies of the oVirt iSCSI bond API, read and written safely.

The shapes (the feature page's)::

    POST /api/datacenters/{dc}/iscsibonds
    <iscsi_bond>
      <name>san</name>
      <description>two SAN fabrics</description>      (optional)
      <storage_connections><storage_connection id="c1"/>...</storage_connections>
      <networks><network id="n1"/>...</networks>
    </iscsi_bond>

    PUT /api/datacenters/{dc}/iscsibonds/{bond}     (name and description only)
    <iscsi_bond><name>san</name><description>...</description></iscsi_bond>

    POST .../iscsibonds/{bond}/storageconnections
    <storage_connection id="c3"/>

    GET /api/datacenters/{dc}/iscsibonds
    <iscsi_bonds><iscsi_bond id="b1">...</iscsi_bond>...</iscsi_bonds>

Why not ``xml.etree``: the standard library parsers expand entities, so a
body with an internal DTD (``<!ENTITY a "&b;&b;...">``, "billion laughs") or
an external entity can make a parser eat memory or read files. No REST body
needs a DTD, so the parser here is expat with a handler that refuses any
``<!DOCTYPE``, entity or notation declaration the moment expat meets it,
before anything is expanded (the handlers defusedxml installs, plus refusing
the DTD itself), and bodies over :data:`MAX_BODY` bytes are refused before
parsing. Unknown elements and attributes are refused by name, never ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any
from xml.parsers import expat

from multipath_brick.bond import checks
from multipath_brick.bond.model import IscsiBond
from multipath_brick.exception import BondValueError, BondXmlError

#: Largest body accepted, in bytes (characters for a str). A bond naming a
#: thousand connections is about 60 KiB.
MAX_BODY = 1 << 20
#: Deepest element nesting accepted (the shapes above need 4).
MAX_DEPTH = 8


@dataclasses.dataclass(frozen=True)
class BondBody:
    """An ``<iscsi_bond>`` body: what it says, checked field by field.

    None means the element was absent. Give a POST body's ids to
    :meth:`~multipath_brick.bond.datacenter.DataCenter.new_bond`, a PUT body's
    name and description to
    :meth:`~multipath_brick.bond.datacenter.DataCenter.update_bond`.

    :ivar id: the ``id`` attribute (GET answers carry it), or None.
    :ivar name: the ``<name>``, or None.
    :ivar description: the ``<description>`` (``""`` when empty), or None.
    :ivar networks: the ``id`` of each ``<network>``, or None.
    :ivar storage_connections: the ``id`` of each ``<storage_connection>``, or None.
    """

    id: str | None = None
    name: str | None = None
    description: str | None = None
    networks: tuple[str, ...] | None = None
    storage_connections: tuple[str, ...] | None = None


@dataclasses.dataclass
class _Element:
    tag: str
    attrs: dict[str, str]
    path: str
    children: list[_Element] = dataclasses.field(default_factory=list)
    text: list[str] = dataclasses.field(default_factory=list)


def parse_bond(body: str | bytes) -> BondBody:
    """Read an ``<iscsi_bond>`` body (POST, PUT, or one bond of a GET answer).

    :raises BondXmlError: for a hostile, oversized or malformed body, or an
        element or attribute not in the shape, naming where.
    :raises BondValueError: for a bad name, description or id.
    """
    return _bond(_parse(body, "iscsi_bond"))


def parse_bond_update(body: str | bytes) -> BondBody:
    """Read a PUT body: only ``<name>`` and ``<description>`` may be changed that way.

    :raises BondXmlError: when it names networks or storage connections, or is
        hostile or malformed.
    """
    bond = parse_bond(body)
    for element in ("networks", "storage_connections"):
        if getattr(bond, element) is not None:
            raise BondXmlError(
                f"iscsi_bond/{element}",
                "a PUT changes only name and description; "
                "add or remove networks and connections through their own resources",
            )
    return bond


def parse_bonds(body: str | bytes) -> tuple[BondBody, ...]:
    """Read an ``<iscsi_bonds>`` list (a GET answer).

    :raises BondXmlError: as :func:`parse_bond`.
    """
    root = _parse(body, "iscsi_bonds")
    for child in root.children:
        if child.tag != "iscsi_bond":
            raise BondXmlError(child.path, "unknown element")
    return tuple(_bond(child) for child in root.children)


def parse_reference(body: str | bytes, tag: str = "storage_connection") -> str:
    """Read a ``<storage_connection id="..."/>`` (or ``<network id="..."/>``) body.

    :returns: the id.
    :raises BondXmlError: as :func:`parse_bond`.
    """
    if tag not in ("storage_connection", "network"):
        raise BondValueError(
            "XML body", "tag", f"{tag[:40]!r} is not storage_connection or network"
        )
    return _reference(_parse(body, tag))


def bond_to_xml(bond: IscsiBond, *, with_id: bool = True) -> str:
    """Write a bond as an ``<iscsi_bond>`` body (a POST body when ``with_id`` is False)."""
    return _bond_xml(bond, with_id)


def bonds_to_xml(bonds: Iterable[IscsiBond]) -> str:
    """Write bonds as an ``<iscsi_bonds>`` list, as a GET answers."""
    return "<iscsi_bonds>" + "".join(_bond_xml(b, True) for b in bonds) + "</iscsi_bonds>"


def update_to_xml(name: str, description: str | None = None) -> str:
    """Write a PUT body changing a bond's name (and description)."""
    checks.name("XML body", "name", name, checks.BOND_NAME_MAX)
    parts = [f"<name>{_escape(name)}</name>"]
    if description is not None:
        checks.description("XML body", description)
        parts.append(f"<description>{_escape(description)}</description>")
    return "<iscsi_bond>" + "".join(parts) + "</iscsi_bond>"


def reference_to_xml(ident: str, tag: str = "storage_connection") -> str:
    """Write a ``<storage_connection id="..."/>`` body (or ``<network .../>``)."""
    checks.ident("XML body", "id", ident)
    if tag not in ("storage_connection", "network"):
        raise BondValueError(
            "XML body", "tag", f"{tag[:40]!r} is not storage_connection or network"
        )
    return f'<{tag} id="{_escape(ident)}"/>'


# --- writing ------------------------------------------------------------------


def _escape(text: str) -> str:
    # The model's rules keep control characters out, so escaping markup is enough.
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
    )


def _bond_xml(bond: IscsiBond, with_id: bool) -> str:
    head = f'<iscsi_bond id="{_escape(bond.id)}">' if with_id else "<iscsi_bond>"
    connections = "".join(
        f'<storage_connection id="{_escape(c.id)}"/>' for c in bond.storage_connections
    )
    networks = "".join(f'<network id="{_escape(n.id)}"/>' for n in bond.networks)
    return (
        f"{head}<name>{_escape(bond.name)}</name>"
        f"<description>{_escape(bond.description)}</description>"
        f"<storage_connections>{connections}</storage_connections>"
        f"<networks>{networks}</networks></iscsi_bond>"
    )


# --- reading ------------------------------------------------------------------


def _bond(root: _Element) -> BondBody:
    _attributes(root, ("id",))
    fields: dict[str, _Element] = {}
    for child in root.children:
        if child.tag not in ("name", "description", "networks", "storage_connections"):
            raise BondXmlError(child.path, "unknown element")
        if child.tag in fields:
            raise BondXmlError(child.path, "appears twice")
        fields[child.tag] = child
    ident = root.attrs.get("id")
    subject = "iscsi_bond" if ident is None else f"iscsi_bond {ident[:60]!r}"
    name = description = None
    if "name" in fields:
        name = checks.name(subject, "name", _text(fields["name"]), checks.BOND_NAME_MAX)
    if "description" in fields:
        description = checks.description(subject, _text(fields["description"]))
    return BondBody(
        None if ident is None else checks.ident("iscsi_bond", "id", ident),
        name,
        description,
        _references(fields.get("networks"), "network"),
        _references(fields.get("storage_connections"), "storage_connection"),
    )


def _references(container: _Element | None, tag: str) -> tuple[str, ...] | None:
    if container is None:
        return None
    _attributes(container, ())
    _no_text(container)
    ids = []
    for child in container.children:
        if child.tag != tag:
            raise BondXmlError(child.path, f"unknown element (expected <{tag}>)")
        ids.append(_reference(child))
    checks.unique_ids(f"XML {container.path}", tag, ids)
    return tuple(ids)


def _reference(element: _Element) -> str:
    _attributes(element, ("id",))
    _no_text(element)
    if element.children:
        raise BondXmlError(element.children[0].path, "unknown element")
    if "id" not in element.attrs:
        raise BondXmlError(element.path, "has no id attribute")
    return checks.ident(f"XML {element.path}", "id", element.attrs["id"])


def _attributes(element: _Element, allowed: tuple[str, ...]) -> None:
    for attr in element.attrs:
        if attr not in allowed and attr != "href":
            raise BondXmlError(f"{element.path}/@{attr[:40]}", "unknown attribute")


def _no_text(element: _Element) -> None:
    if "".join(element.text).strip():
        raise BondXmlError(element.path, "holds text where only elements may be")


def _text(element: _Element) -> str:
    _attributes(element, ())
    if element.children:
        raise BondXmlError(element.children[0].path, "unknown element")
    return "".join(element.text)


def _refuse(what: str) -> Callable[..., Any]:
    def handler(*_args: object) -> Any:
        raise BondXmlError(what, "refused: REST bodies need no DTD, entities or notations")

    return handler


def _parse(body: str | bytes, root_tag: str) -> _Element:
    if not isinstance(body, (str, bytes)):
        raise BondXmlError("(body)", f"expected str or bytes, got {checks.kind(body)}")
    if len(body) > MAX_BODY:
        raise BondXmlError("(body)", f"larger than {MAX_BODY} bytes")
    parser = expat.ParserCreate()
    # Refuse the DTD where expat first sees it: no entity is declared, so none
    # can be expanded; an undeclared &name; is then a well-formedness error.
    parser.StartDoctypeDeclHandler = _refuse("<!DOCTYPE>")
    parser.EntityDeclHandler = _refuse("<!ENTITY>")
    parser.UnparsedEntityDeclHandler = _refuse("<!ENTITY>")
    parser.NotationDeclHandler = _refuse("<!NOTATION>")
    parser.ExternalEntityRefHandler = _refuse("external entity")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[_Element] = []
    roots: list[_Element] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        parent = stack[-1] if stack else None
        if parent is None:
            if roots:
                raise BondXmlError(tag[:40], "a second root element")
            path = tag[:40]
        else:
            path = f"{parent.path}/{tag[:40]}[{len(parent.children) + 1}]"
        if len(stack) >= MAX_DEPTH:
            raise BondXmlError(path, f"nested deeper than {MAX_DEPTH} elements")
        element = _Element(tag, dict(attrs), path)
        (parent.children if parent else roots).append(element)
        stack.append(element)

    def end(_tag: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if stack:
            stack[-1].text.append(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(body, True)
    except expat.ExpatError as error:
        where = f"line {error.lineno} column {error.offset}"
        raise BondXmlError(
            where, f"not well-formed XML: {expat.ErrorString(error.code)}"
        ) from None
    root = roots[0]
    if root.tag != root_tag:
        raise BondXmlError(root.path, f"expected <{root_tag}>")
    _no_text(root)
    return root
