"""Every rule of the data center (the oVirt feature page and ovirt-engine's validator)."""

from __future__ import annotations

import dataclasses

import pytest

from multipath_brick.bond import DataCenter, IscsiBond, Network, StorageConnection
from multipath_brick.exception import BondNotFoundError, BondRuleError, BondValueError
from multipath_brick.iscsi.properties import Target
from multipath_brick.tests.unit import bondutil as u


def test_zero_or_more_bonds_per_datacenter():
    empty = u.datacenter()
    assert empty.iscsi_bonds == ()
    one = empty.add_bond(u.bond()).datacenter
    assert one is not None
    dc = one.add_bond(u.bond("b2", "san-b", (u.SAN2,), (u.C1,))).datacenter
    assert dc is not None
    assert [b.id for b in dc.iscsi_bonds] == ["b1", "b2"]
    assert dc.bonds_covering(Target(u.P1, u.IQN, 1)) == dc.iscsi_bonds
    assert dc.bonds_covering(Target(u.P2, u.IQN, 1)) == (dc.bond("b1"),)


def test_bond_name_is_unique_in_its_datacenter_case_sensitively():
    dc = u.datacenter(u.bond())
    with pytest.raises(BondRuleError) as info:
        dc.add_bond(u.bond("b2", "san"))
    assert info.value.subject == "iSCSI bond 'san' (id b2)"
    assert "taken" in info.value.reason and "b1" in info.value.reason
    # ovirt-engine compares names with String.equals: case matters.
    edit = dc.add_bond(u.bond("b2", "SAN"))
    assert edit.datacenter is not None
    assert {b.name for b in edit.datacenter.iscsi_bonds} == {"san", "SAN"}
    with pytest.raises(BondRuleError, match="taken"):
        edit.datacenter.update_bond("b2", name="san")
    # Renaming a bond to its own name, or changing only its description, is fine.
    renamed = dc.update_bond("b1", name="san", description="two fabrics")
    assert renamed.bond("b1").description == "two fabrics"
    assert dc.update_bond("b1", name="san2").bond("b1").name == "san2"


def test_bond_ids_are_unique_too():
    with pytest.raises(BondRuleError, match="two iSCSI bonds are 'b1'"):
        u.datacenter(u.bond()).add_bond(u.bond("b1", "other"))


def test_bond_needs_at_least_one_network():
    with pytest.raises(BondRuleError) as info:
        u.datacenter().add_bond(u.bond(networks=()))
    assert "at least one network" in str(info.value)
    dc = u.datacenter(u.bond())
    with pytest.raises(BondRuleError, match="network 'san1' .* is its last network"):
        dc.remove_network_from_bond("b1", "n1")


def test_bond_holds_only_networks_of_its_datacenter():
    foreign = Network("n7", "elsewhere")
    with pytest.raises(BondRuleError) as info:
        u.datacenter().add_bond(u.bond(networks=(foreign,)))
    assert info.value.subject == "iSCSI bond 'san' (id b1)"
    assert "network 'elsewhere' (id n7) is not a network of data center 'Default'" in str(
        info.value
    )
    # Same id, different value: not the data center's network either.
    with pytest.raises(BondRuleError, match="differs"):
        u.datacenter().add_bond(u.bond(networks=(Network("n1", "san1", mtu=1500),)))
    with pytest.raises(BondNotFoundError) as missing:
        u.datacenter().new_bond("b1", "san", networks=["n7"])
    assert (missing.value.kind, missing.value.ident) == ("network", "n7")
    with pytest.raises(BondNotFoundError):
        u.datacenter(u.bond()).add_network_to_bond("b1", "n7")


def test_required_network_cannot_be_in_a_bond():
    required = Network("n5", "storage", required=True)
    dc = u.datacenter().add_network(required)
    with pytest.raises(BondRuleError, match="'storage' .* required"):
        dc.add_bond(u.bond(networks=(required,)))
    with pytest.raises(BondRuleError, match="required"):
        dc.add_bond(u.bond()).datacenter.add_network_to_bond("b1", "n5")  # type: ignore[union-attr]


def test_storage_connections_must_be_iscsi_connections_of_the_datacenter():
    with pytest.raises(BondRuleError) as info:
        u.datacenter().add_bond(u.bond(connections=(u.NFS,)))
    assert "storage connection 'c9' (nfs) is not an iSCSI connection" in str(info.value)
    stranger = StorageConnection("c5", "10.9.9.9", u.IQN)
    with pytest.raises(BondRuleError, match="'c5'.* is not a connection of"):
        u.datacenter().add_bond(u.bond(connections=(stranger,)))
    dc = u.datacenter(u.bond())
    with pytest.raises(BondRuleError, match="not an iSCSI"):
        dc.add_connection_to_bond("b1", "c9")
    with pytest.raises(BondNotFoundError, match="storage connection 'c5'"):
        dc.add_connection_to_bond("b1", "c5")


def test_adding_what_a_bond_holds_or_removing_what_it_lacks_is_refused():
    dc = u.datacenter(u.bond(connections=(u.C1,)))
    with pytest.raises(BondRuleError, match="already holds network 'san1'"):
        dc.add_network_to_bond("b1", "n1")
    with pytest.raises(BondRuleError, match="already holds storage connection 'c1'"):
        dc.add_connection_to_bond("b1", "c1")
    with pytest.raises(BondRuleError, match="does not hold network 'n2'"):
        dc.remove_network_from_bond("b1", "n2")
    with pytest.raises(BondRuleError, match="does not hold storage connection 'c2'"):
        dc.remove_connection_from_bond("b1", "c2")
    with pytest.raises(BondNotFoundError, match="iSCSI bond 'b9'"):
        dc.remove_bond("b9")


def test_network_ids_and_names_are_unique_in_the_datacenter():
    dc = u.datacenter()
    with pytest.raises(BondRuleError, match="two networks are 'n1'"):
        dc.add_network(Network("n1", "other"))
    with pytest.raises(BondRuleError, match="two network names are 'san1'"):
        dc.add_network(Network("n8", "san1"))
    with pytest.raises(BondRuleError, match="two storage connections are 'c1'"):
        dc.add_storage_connection(StorageConnection("c1", "10.1.1.1", u.IQN))


def test_removing_a_network_removes_it_from_every_bond_and_keeps_an_emptied_bond_dormant():
    dc = u.datacenter(
        u.bond("b1", "both", (u.SAN1, u.SAN2)), u.bond("b2", "only-san2", (u.SAN2,), (u.C1,))
    )
    edit = dc.remove_network("n2", u.hosts())
    after = edit.datacenter
    assert after is not None
    assert [n.id for n in after.networks] == ["n0", "n1"]
    assert after.bond("b1").networks == (u.SAN1,)
    # The engine keeps a bond whose last network left the data center; so do we.
    assert after.bond("b2").dormant
    assert after.bond("b2").storage_connections == (u.C1,)
    assert [b.id for b in edit.emptied_bonds] == ["b2"]
    # A dormant bond routes nothing: every host reaches C1 through san1 (b1) or default.
    assert {s.iface for s in after.sessions(u.hosts())["h-all"]} == {"mpb-eth1"}
    assert {s.iface for s in after.sessions(u.hosts())["h-none"]} == {"default"}
    # ... and it wakes up when it gets a network again.
    woken = after.add_network_to_bond("b2", "n1").datacenter
    assert woken is not None and not woken.bond("b2").dormant
    # It survives a JSON round trip as it is.
    assert DataCenter.from_dict(after.to_dict()) == after
    with pytest.raises(BondNotFoundError):
        after.remove_network("n2")


def test_removing_a_connection_removes_it_from_every_bond():
    dc = u.datacenter(u.bond(), u.bond("b2", "other", (u.SAN2,), (u.C2,)))
    after = dc.remove_storage_connection("c2").datacenter
    assert after is not None
    assert after.bond("b1").storage_connections == (u.C1,)
    assert after.bond("b2").storage_connections == ()
    assert [c.id for c in after.storage_connections] == ["c1", "c9"]


def test_removing_the_datacenter_removes_its_bonds_and_every_session_is_to_go():
    dc = u.datacenter(u.bond())
    edit = dc.remove(u.hosts())
    assert edit.datacenter is None
    h = edit.work.for_host("h-all")
    assert h.logins == ()
    assert {(s.portal, s.iface) for s in h.logouts} == {(u.P1, "mpb-eth1"), (u.P2, "mpb-eth1")}
    assert {s.iface for s in edit.work.for_host("h-none").logouts} == {"default"}


def test_a_refused_edit_changes_nothing():
    dc = u.datacenter(u.bond())
    before = dc.to_dict()
    for edit in (
        lambda: dc.add_bond(u.bond("b2", "san")),
        lambda: dc.remove_network_from_bond("b1", "n1"),
        lambda: dc.add_connection_to_bond("b1", "c9"),
        lambda: dc.update_bond("b1", name="bad name"),
    ):
        with pytest.raises((BondRuleError, BondValueError)):
            edit()
        assert dc.to_dict() == before


def test_datacenter_checks_its_own_values():
    with pytest.raises(BondRuleError, match="holds a str"):
        DataCenter("dc1", "Default", ("n1",))  # type: ignore[arg-type]
    with pytest.raises(BondValueError):
        DataCenter("dc 1", "Default")
    b = u.bond()
    with pytest.raises(BondRuleError, match="not a network of"):
        DataCenter("dc1", "Default", (), (u.C1, u.C2), (b,))
    assert dataclasses.replace(u.datacenter(b), name="Other").bond("b1") == b


def test_new_bond_builds_from_ids_as_a_rest_body_names_them():
    dc = u.datacenter()
    b = dc.new_bond("b1", "san", "fabrics", ["n1", "n2"], ["c1"])
    assert b == IscsiBond("b1", "san", "fabrics", (u.SAN1, u.SAN2), (u.C1,))
