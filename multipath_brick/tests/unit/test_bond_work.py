"""The reconnect and disconnect work of bond edits, for hosts with all, some or none of
the bond's networks, and with attached volumes that depend on sessions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from multipath_brick.bond import HostState, HostWork, Session, StorageConnection, Work
from multipath_brick.bond.work import desired_sessions, split_logouts
from multipath_brick.exception import BondValueError
from multipath_brick.tests.unit import bondutil as u


def pairs(sessions: Any) -> set[tuple[str, str]]:
    return {(s.portal, s.iface) for s in sessions}


BOTH = {(u.P1, "mpb-eth1"), (u.P2, "mpb-eth1")}
BOTH2 = {(u.P1, "mpb-eth2"), (u.P2, "mpb-eth2")}
DEFAULT = {(u.P1, "default"), (u.P2, "default")}


def test_without_bonds_every_host_uses_default_for_every_iscsi_connection():
    sessions = u.datacenter().sessions(u.hosts())
    assert {h: pairs(s) for h, s in sessions.items()} == {
        "h-all": DEFAULT,
        "h-some": DEFAULT,
        "h-none": DEFAULT,
    }


def test_adding_a_bond_moves_hosts_with_its_networks_off_default():
    edit = u.datacenter().add_bond(u.bond(networks=(u.SAN1, u.SAN2)), u.hosts())
    all_, some = edit.work.for_host("h-all"), edit.work.for_host("h-some")
    assert pairs(all_.logins) == BOTH | BOTH2
    assert pairs(all_.logouts) == DEFAULT
    assert pairs(some.logins) == BOTH
    assert pairs(some.logouts) == DEFAULT
    # A host with none of the bond's networks keeps its default sessions: no work.
    assert edit.work.for_host("h-none") == HostWork("h-none")
    assert [h.host for h in edit.work.hosts] == ["h-all", "h-some"]
    first = all_.logins[0]
    assert (first.netdev, first.iqn) == ("eth1", u.IQN)


def test_adding_a_network_to_a_bond_logs_in_hosts_that_carry_it():
    dc = u.datacenter(u.bond())
    edit = dc.add_network_to_bond("b1", "n2", u.hosts())
    assert edit.work.for_host("h-all") == HostWork(
        "h-all", tuple(sorted(Session(p, u.IQN, "mpb-eth2") for p in (u.P1, u.P2)))
    )
    # h-some lacks san2 and h-none lacks both: nothing changes for them.
    assert [h.host for h in edit.work.hosts] == ["h-all"]


def test_adding_a_connection_to_a_bond_logs_in_through_every_bond_network():
    dc = u.datacenter(u.bond(networks=(u.SAN1, u.SAN2), connections=(u.C1,)))
    edit = dc.add_connection_to_bond("b1", "c2", u.hosts())
    assert pairs(edit.work.for_host("h-all").logins) == {(u.P2, "mpb-eth1"), (u.P2, "mpb-eth2")}
    assert pairs(edit.work.for_host("h-all").logouts) == {(u.P2, "default")}
    assert pairs(edit.work.for_host("h-some").logins) == {(u.P2, "mpb-eth1")}
    assert edit.work.for_host("h-none").logins == ()


def test_removing_a_network_from_a_bond_logs_its_sessions_out():
    dc = u.datacenter(u.bond(networks=(u.SAN1, u.SAN2)))
    edit = dc.remove_network_from_bond("b1", "n2", u.hosts())
    assert pairs(edit.work.for_host("h-all").logouts) == BOTH2
    assert edit.work.for_host("h-all").logins == ()
    assert edit.work.empty is False
    assert [h.host for h in edit.work.hosts] == ["h-all"]


def test_host_losing_its_last_bond_network_falls_back_to_default():
    dc = u.datacenter(u.bond(networks=(u.SAN1, u.SAN2)))
    edit = dc.remove_network_from_bond("b1", "n1", u.hosts())
    some = edit.work.for_host("h-some")
    assert pairs(some.logins) == DEFAULT
    assert pairs(some.logouts) == BOTH
    removed = dc.remove_bond("b1", u.hosts())
    assert pairs(removed.work.for_host("h-all").logins) == DEFAULT
    assert pairs(removed.work.for_host("h-all").logouts) == BOTH | BOTH2


def test_a_session_used_alone_by_an_attached_volume_is_held():
    dc = u.datacenter(u.bond(networks=(u.SAN1, u.SAN2)))
    attached = {
        "h-all": {
            # vol-a has paths through both NICs: losing eth2 leaves it eth1.
            "vol-a": [u.path(u.P1, "mpb-eth1"), u.path(u.P1, "mpb-eth2")],
            # vol-b runs only over eth2: its sessions stay until it has another path.
            "vol-b": [u.path(u.P2, "mpb-eth2", lun=2)],
        }
    }
    edit = dc.remove_network_from_bond("b1", "n2", u.hosts(attached))
    h = edit.work.for_host("h-all")
    assert pairs(h.logouts) == {(u.P1, "mpb-eth2")}
    assert [(str(x.session), x.volumes) for x in h.held] == [
        (f"{u.P2} {u.IQN} via mpb-eth2", ("vol-b",))
    ]
    # Once vol-b's map has a path through eth1 the held session may go.
    leaving = {x.session for x in h.held}
    now, held = split_logouts(
        leaving, {"vol-b": [u.path(u.P2, "mpb-eth2", 2), u.path(u.P2, "mpb-eth1", 2)]}
    )
    assert pairs(now) == {(u.P2, "mpb-eth2")} and held == ()


def test_a_volume_losing_every_path_holds_all_its_sessions():
    dc = u.datacenter(u.bond())
    attached = {"h-some": {"vol-c": [u.path(u.P1, "mpb-eth1"), u.path(u.P2, "mpb-eth1")]}}
    edit = dc.remove_bond("b1", u.hosts(attached))
    h = edit.work.for_host("h-some")
    assert pairs(h.logins) == DEFAULT
    assert h.logouts == ()
    assert {(x.session.portal, x.volumes) for x in h.held} == {
        (u.P1, ("vol-c",)),
        (u.P2, ("vol-c",)),
    }
    # A volume on a session no bond ever asked for keeps nothing held.
    other = {"h-some": {"vol-d": [u.path("10.0.7.2:3260", "default")]}}
    assert dc.remove_bond("b1", u.hosts(other)).work.for_host("h-some").held == ()


def test_a_connection_in_two_bonds_uses_the_union_and_default_only_when_empty():
    b1 = u.bond("b1", "one", (u.SAN1,), (u.C1,))
    b2 = u.bond("b2", "two", (u.SAN2,), (u.C1,))
    carried = {"san2": "eth2"}
    sessions = desired_sessions((u.C1, u.C2, u.NFS), (b1, b2), carried)
    assert pairs(sessions) == {(u.P1, "mpb-eth2"), (u.P2, "default")}
    assert pairs(desired_sessions((u.C1,), (b1, b2), {"san1": "eth1", "san2": "eth2"})) == {
        (u.P1, "mpb-eth1"),
        (u.P1, "mpb-eth2"),
    }


def test_two_networks_on_one_netdev_share_one_iface():
    carried = {"san1": "bond0", "san2": "bond0"}
    b = u.bond(networks=(u.SAN1, u.SAN2), connections=(u.C1,))
    assert pairs(desired_sessions((u.C1,), (b,), carried)) == {(u.P1, "mpb-bond0")}


@pytest.mark.parametrize(
    ("networks", "attached", "field"),
    [
        ({"h 1": {}}, {}, "name"),
        ({"h1": {"san1": "eth1/x"}}, {}, "netdev"),
        ({"h1": {"san1": "-eth1"}}, {}, "netdev"),
        ({"h1": {"san1": "eth1 eth2"}}, {}, "netdev"),
        ({"h1": {"san1": "averyveryverylongnic"}}, {}, "netdev"),
        ({"h1": {"san 1": "eth1"}}, {}, "network"),
        ({"h1": ["san1"]}, {}, "networks"),
        ({}, {"h1": {"vol/1": []}}, "volume"),
        ({}, {"h1": {"vol1": ["10.0.0.1:3260"]}}, "paths"),
        ({}, {"h1": {"vol1": "abc"}}, "paths"),
        ({}, {"h1": []}, "volumes"),
    ],
)
def test_host_side_input_is_checked_naming_host_network_or_volume(
    networks: Any, attached: Any, field: str
):
    with pytest.raises(BondValueError) as info:
        HostState(networks, attached)
    assert info.value.field == field
    assert info.value.subject.startswith("host")


def test_sessions_only_through_default_or_our_ifaces():
    assert Session("10.0.0.1", u.IQN, "default").portal == "10.0.0.1:3260"
    for bad in ("tcp", "iser", "eth1", "mpb-", "mpb-a b"):
        with pytest.raises(BondValueError) as info:
            Session(u.P1, u.IQN, bad)
        assert info.value.field == "iface"
    with pytest.raises(BondValueError, match="netdev"):
        Session.from_dict({"portal": u.P1, "iqn": u.IQN, "iface": "mpb-eth1", "netdev": "eth2"})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(u.datacenters())
def test_work_round_trips_and_applies(dc: Any):
    hosts = HostState(
        {
            "h1": {n.name: f"eth{i}" for i, n in enumerate(dc.networks)},
            "h2": {dc.networks[0].name: "bond0"},
            "h3": {},
        }
    )
    for bond in dc.iscsi_bonds:
        edit = dc.remove_bond(bond.id, hosts)
        assert Work.from_dict(edit.work.to_dict()) == edit.work
        # Applying the work to what each host had gives what it should have now.
        before, after = dc.sessions(hosts), edit.datacenter.sessions(hosts)
        for host in before:
            w = edit.work.for_host(host)
            assert (before[host] - set(w.logouts)) | set(w.logins) == after[host]


def test_work_json_is_refused_clearly_when_hostile():
    good = u.datacenter().add_bond(u.bond(), u.hosts()).work.to_dict()
    good["hosts"]["h-all"]["logins"][0]["iface"] = "tcp"
    with pytest.raises(BondValueError, match="iface"):
        Work.from_dict(good)
    with pytest.raises(BondValueError, match="hosts"):
        Work.from_dict({"hosts": []})
    with pytest.raises(BondValueError, match="unknown key"):
        Work.from_dict({"hosts": {}, "x": 1})


def test_host_without_the_bonds_networks_reaches_a_new_connection_through_default():
    c3 = StorageConnection("c3", "10.0.3.2", u.IQN)
    dc = u.datacenter(u.bond())
    added = dc.add_storage_connection(c3, u.hosts())
    # In no bond yet: every host logs in to it through default.
    for host in ("h-all", "h-some", "h-none"):
        assert pairs(added.work.for_host(host).logins) == {("10.0.3.2:3260", "default")}
    assert added.datacenter is not None
    bonded = added.datacenter.add_connection_to_bond("b1", "c3", u.hosts())
    # h-none carries no san network: it stays on default, no work.
    assert bonded.work.for_host("h-none") == HostWork("h-none")
    some = bonded.work.for_host("h-some")
    assert pairs(some.logins) == {("10.0.3.2:3260", "mpb-eth1")}
    assert pairs(some.logouts) == {("10.0.3.2:3260", "default")}
