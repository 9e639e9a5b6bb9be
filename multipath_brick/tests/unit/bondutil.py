"""Builders and hypothesis strategies shared by the bond model's unit tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from multipath_brick.bond import DataCenter, HostState, IscsiBond, Network, StorageConnection
from multipath_brick.iscsi.paths import Path
from multipath_brick.iscsi.properties import Target

IQN = "iqn.2003-01.org.linux-iscsi.storage:vol"
P1, P2 = "10.0.1.2:3260", "10.0.2.2:3260"
SAN1 = Network("n1", "san1")
SAN2 = Network("n2", "san2", vlan_id=100, mtu=9000)
MGMT = Network("n0", "ovirtmgmt")
C1 = StorageConnection("c1", P1, IQN)
C2 = StorageConnection("c2", P2, IQN)
NFS = StorageConnection("c9", None, None, type="nfs")


def datacenter(*bonds: IscsiBond) -> DataCenter:
    """A data center with san1, san2, ovirtmgmt, two iSCSI portals and an NFS export."""
    return DataCenter("dc1", "Default", (MGMT, SAN1, SAN2), (C1, C2, NFS), bonds)


def bond(
    bond_id: str = "b1",
    name: str = "san",
    networks: tuple[Network, ...] = (SAN1,),
    connections: tuple[StorageConnection, ...] = (C1, C2),
) -> IscsiBond:
    return IscsiBond(bond_id, name, "", networks, connections)


def hosts(attached: dict[str, dict[str, Any]] | None = None) -> HostState:
    """h-all carries both SAN networks, h-some only san1, h-none neither."""
    return HostState(
        {
            "h-all": {"san1": "eth1", "san2": "eth2", "ovirtmgmt": "ovirtmgmt"},
            "h-some": {"san1": "eth1", "ovirtmgmt": "ovirtmgmt"},
            "h-none": {"ovirtmgmt": "ovirtmgmt"},
        },
        attached or {},
    )


def path(portal: str, iface: str, lun: int = 1) -> Path:
    return Path(Target(portal, IQN, lun), iface)


# --- hypothesis strategies ----------------------------------------------------------

idents = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,24}", fullmatch=True)
names = st.text(
    alphabet=st.characters(categories=("L", "Nd")) | st.sampled_from("._-"),
    min_size=1,
    max_size=50,
)
descriptions = st.text(
    alphabet=st.characters(
        exclude_categories=["Cs"],
        exclude_characters="".join(map(chr, [*range(9), *range(11, 32), 127, 0xFFFE, 0xFFFF])),
    ),
    max_size=200,
)
portals = st.one_of(
    st.builds(lambda a, p: f"{a}:{p}", st.ip_addresses(v=4), st.integers(1, 65535)),
    st.builds(lambda a, p: f"[{a}]:{p}", st.ip_addresses(v=6), st.integers(1, 65535)),
)
iqns = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,30}", fullmatch=True).map(
    lambda s: f"iqn.2010-06.com.example:{s}"
)


@st.composite
def networks(draw: Any, ident: str | None = None, required: bool = False) -> Network:
    return Network(
        ident or draw(idents),
        draw(names),
        draw(st.none() | st.integers(1, 4094)),
        draw(st.none() | st.integers(68, 65535)),
        required,
    )


@st.composite
def connections(draw: Any, ident: str | None = None) -> StorageConnection:
    return StorageConnection(ident or draw(idents), draw(portals), draw(iqns))


@st.composite
def datacenters(draw: Any) -> DataCenter:
    """A data center of up to 4 networks, 4 connections and 3 bonds, all rules kept."""
    nets = [
        draw(networks(f"n{i}", required=draw(st.booleans())))
        for i in range(draw(st.integers(1, 4)))
    ]
    unique = {n.name: n for n in nets}
    nets = list(unique.values())
    conns = [draw(connections(f"c{i}")) for i in range(draw(st.integers(0, 4)))]
    optional = [n for n in nets if not n.required]
    bonds = []
    if optional:
        bond_names = draw(st.lists(names, max_size=3, unique=True))
        for i, name in enumerate(bond_names):
            members = draw(st.lists(st.sampled_from(optional), min_size=1, unique=True))
            covered = draw(st.lists(st.sampled_from(conns), unique=True)) if conns else []
            bonds.append(
                IscsiBond(f"b{i}", name, draw(descriptions), tuple(members), tuple(covered))
            )
    return DataCenter(draw(idents), draw(names), tuple(nets), tuple(conns), tuple(bonds))
