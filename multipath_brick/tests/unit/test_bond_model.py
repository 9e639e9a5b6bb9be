"""The bond model's values: their checks, JSON round trips and hostile JSON."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multipath_brick.bond import (
    DataCenter,
    IscsiBond,
    Network,
    StorageConnection,
    iface_for,
    is_ours,
    netdev_of,
)
from multipath_brick.exception import (
    BondError,
    BondNotFoundError,
    BondRuleError,
    BondValueError,
    BondXmlError,
    MultipathBrickError,
)
from multipath_brick.iscsi.properties import Target
from multipath_brick.tests.unit import bondutil as u

# --- networks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": ""}, "id"),
        ({"id": "-n"}, "id"),
        ({"id": "a/b"}, "id"),
        ({"name": ""}, "name"),
        ({"name": "san 1"}, "name"),
        ({"name": "san/1"}, "name"),
        ({"name": "x" * 257}, "name"),
        ({"vlan_id": 0}, "vlan_id"),
        ({"vlan_id": 4095}, "vlan_id"),
        ({"vlan_id": True}, "vlan_id"),
        ({"vlan_id": "100"}, "vlan_id"),
        ({"mtu": 67}, "mtu"),
        ({"mtu": 65536}, "mtu"),
        ({"mtu": 10**400}, "mtu"),
        ({"required": "yes"}, "required"),
    ],
)
def test_network_refuses_bad_fields_by_name(changes: dict[str, Any], field: str):
    fields = {"id": "n1", "name": "san1", "vlan_id": None, "mtu": None, "required": False}
    with pytest.raises(BondValueError) as info:
        Network(**{**fields, **changes})
    assert info.value.field == field
    assert "network" in info.value.subject


def test_network_names_may_use_any_script_as_ovirt_engine_allows():
    assert Network("n1", "réseau_SAN-1.a").name == "réseau_SAN-1.a"


# --- storage connections ----------------------------------------------------------------


def test_connection_portal_is_written_as_an_attach_writes_it():
    assert StorageConnection("c1", "10.0.0.1", u.IQN).portal == "10.0.0.1:3260"
    v6 = StorageConnection("c1", "[fe80:0::1]:3261", u.IQN)
    assert v6.portal == "[fe80::1]:3261"
    assert v6.matches(Target("[fe80::1]:3261", u.IQN, 7))
    assert not v6.matches(Target("[fe80::1]:3260", u.IQN, 7))
    assert not v6.matches(Target("[fe80::1]:3261", u.IQN + "x", 7))


@pytest.mark.parametrize(
    ("portal", "iqn", "field"),
    [
        (None, u.IQN, "portal"),
        ("10.0.0.1", None, "iqn"),
        ("-p", u.IQN, "portal"),
        ("10.0.0.1:99999", u.IQN, "portal"),
        ("10.0.0.1", "iqn.x y", "iqn"),
        ("10.0.0.1", "-T", "iqn"),
        ("10.0.0.1", ["a"], "iqn"),
    ],
)
def test_iscsi_connection_refuses_bad_portal_or_iqn(portal: Any, iqn: Any, field: str):
    with pytest.raises(BondValueError) as info:
        StorageConnection("c7", portal, iqn)
    assert info.value.field == field
    assert info.value.subject == "storage connection 'c7'"


def test_non_iscsi_connection_has_no_portal_or_iqn():
    assert not u.NFS.is_iscsi
    assert not u.NFS.matches(Target(u.P1, u.IQN, 0))
    with pytest.raises(BondValueError, match="only an iSCSI connection"):
        StorageConnection("c8", u.P1, None, type="nfs")
    with pytest.raises(BondValueError) as info:
        StorageConnection("c8", None, None, type="NFS!")
    assert info.value.field == "type"


# --- bonds -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 51}, "name"),
        ({"name": "my bond"}, "name"),
        ({"description": "a\x00b"}, "description"),
        ({"description": "a\rb"}, "description"),
        ({"description": "x" * 4001}, "description"),
        ({"networks": (u.SAN1, u.SAN1)}, "networks"),
        ({"networks": ("n1",)}, "networks"),
        ({"networks": "n1"}, "networks"),
        ({"storage_connections": (u.C1, u.C1)}, "storage_connections"),
    ],
)
def test_bond_refuses_bad_fields_by_name(changes: dict[str, Any], field: str):
    fields = {"bond_id": "b1", "name": "san", "networks": (u.SAN1,), "connections": (u.C1,)}
    fields.update({"connections": changes.pop("storage_connections", fields["connections"])})
    description = changes.pop("description", "")
    with pytest.raises(BondValueError) as info:
        b = u.bond(**{**fields, **changes})
        IscsiBond(b.id, b.name, description, b.networks, b.storage_connections)
    assert info.value.field == field
    assert info.value.subject.startswith("iSCSI bond")


def test_bond_covers_its_connections_targets_and_says_when_dormant():
    b = u.bond()
    assert b.covers(Target(u.P2, u.IQN, 3))
    assert not b.covers(Target("10.0.3.2:3260", u.IQN, 3))
    assert b.network_names == {"san1"}
    assert not b.dormant
    assert IscsiBond("b2", "empty").dormant
    assert IscsiBond("b2", "x" * 50, "tab\tand\nnewline").description == "tab\tand\nnewline"


# --- the iface naming scheme -------------------------------------------------------------


def test_iface_names_are_prefixed_netdevs_and_never_reserved():
    assert iface_for("eth1") == "mpb-eth1"
    assert iface_for("bond0.100") == "mpb-bond0.100"
    assert netdev_of("mpb-bond0.100") == "bond0.100"
    assert is_ours("mpb-eth1")
    for name in ("default", "tcp", "iser", "eth1", "mpb-", "mpb-a/b", "mpb-" + "x" * 16):
        assert not is_ours(name)
        assert netdev_of(name) is None
    for bad in ("", ".", "..", "eth 1", "-eth1", "eth1/x", "eth:1", "x" * 16, "é"):
        with pytest.raises(BondValueError) as info:
            iface_for(bad)
        assert info.value.field == "netdev"


# --- JSON --------------------------------------------------------------------------------

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(u.networks())
def test_network_round_trips(network: Network):
    assert Network.from_dict(network.to_dict()) == network


@FAST
@given(u.connections())
def test_connection_round_trips(connection: StorageConnection):
    assert StorageConnection.from_dict(connection.to_dict()) == connection


@FAST
@given(u.datacenters())
def test_bond_and_datacenter_round_trip(dc: DataCenter):
    assert DataCenter.from_dict(dc.to_dict()) == dc
    for b in dc.iscsi_bonds:
        assert IscsiBond.from_dict(b.to_dict()) == b


def test_to_dict_keys_are_stable():
    dc = u.datacenter(u.bond())
    assert list(dc.to_dict()) == ["id", "name", "networks", "storage_connections", "iscsi_bonds"]
    assert dc.to_dict()["iscsi_bonds"] == [
        {
            "id": "b1",
            "name": "san",
            "description": "",
            "networks": ["n1"],
            "storage_connections": ["c1", "c2"],
        }
    ]
    assert u.SAN2.to_dict() == {
        "id": "n2",
        "name": "san2",
        "vlan_id": 100,
        "mtu": 9000,
        "required": False,
    }
    assert u.C1.to_dict() == {"id": "c1", "type": "iscsi", "portal": u.P1, "iqn": u.IQN}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d.pop("networks"), "networks"),
        (lambda d: d.update(networks="n1"), "networks"),
        (lambda d: d["networks"][0].update(vlan_id=True), "vlan_id"),
        (lambda d: d["networks"][0].update(vlan=5), "vlan"),
        (lambda d: d["networks"][0].update(mtu=2**80), "mtu"),
        (lambda d: d["storage_connections"][0].update(portal="-o"), "portal"),
        (lambda d: d["storage_connections"][0].update(iqn="../../../tmp/x y"), "iqn"),
        (lambda d: d["iscsi_bonds"][0].update(networks=[None]), "networks"),
        (lambda d: d["iscsi_bonds"][0].update(name=["san"]), "name"),
        (lambda d: d.update(id={"a": 1}), "id"),
    ],
)
def test_hostile_json_is_refused_naming_the_key(mutate: Any, field: str):
    data = u.datacenter(u.bond()).to_dict()
    mutate(data)
    with pytest.raises(BondValueError) as info:
        DataCenter.from_dict(data)
    assert info.value.field == field


def test_json_breaking_a_rule_is_refused_naming_the_bond():
    data = u.datacenter(u.bond(), u.bond("b2", "other")).to_dict()
    data["iscsi_bonds"][1]["name"] = "san"
    with pytest.raises(BondRuleError, match="iSCSI bond name"):
        DataCenter.from_dict(data)
    data = u.datacenter(u.bond()).to_dict()
    data["iscsi_bonds"][0]["storage_connections"] = ["c9"]
    with pytest.raises(BondRuleError, match="storage connection 'c9'.*not an iSCSI"):
        DataCenter.from_dict(data)
    data["iscsi_bonds"][0]["storage_connections"] = ["c404"]
    with pytest.raises(BondNotFoundError, match="'c404'"):
        DataCenter.from_dict(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@FAST
@given(
    st.dictionaries(
        st.sampled_from(
            ["id", "name", "networks", "storage_connections", "iscsi_bonds", "description", "x"]
        ),
        json_values,
    )
)
def test_any_json_gives_a_value_or_a_bond_error(data: dict[str, Any]):
    for parse in (DataCenter.from_dict, IscsiBond.from_dict, Network.from_dict):
        try:
            parse(data)
        except BondError:
            pass


# --- the error family ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        BondValueError("network 'n1'", "mtu", "67 is outside 68..65535"),
        BondXmlError("iscsi_bond/foo[1]", "unknown element"),
        BondRuleError("iSCSI bond 'san' (id b1)", "a bond needs at least one network"),
        BondNotFoundError("network", "n9", "dc1"),
    ],
)
def test_bond_errors_rebuild_from_args_as_privsep_does(error: BondError):
    assert isinstance(error, MultipathBrickError)
    cls: Any = type(error)
    rebuilt = cls(*error.args)
    assert str(rebuilt) == str(error)
    assert rebuilt.args == error.args
    assert error.__reduce__() == (type(error), error.args)
