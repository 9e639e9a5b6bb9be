"""The host plan: inventory checked on the host, (target, iface) pairs, the verdict."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from multipath_brick.bond.inventory import HostInventory, check_netdevs
from multipath_brick.bond.plan import HostPlan, check_on_host, plan, verdict
from multipath_brick.exception import (
    BondValueError,
    HostNonOperationalError,
    NetdevError,
    SameSubnetError,
)
from multipath_brick.iscsi.paths import PathResult, PathState
from multipath_brick.iscsi.properties import ConnectionProperties
from multipath_brick.testing import FakeHost
from multipath_brick.tests.unit.bondutil import C1, IQN, MGMT, P1, P2, SAN1, SAN2, bond, path

P3 = "10.0.3.2:3260"  # a portal in no bond
ALL = HostInventory({"san1": "eth1", "san2": "eth2", "ovirtmgmt": "ovirtmgmt"})
SOME = HostInventory({"san1": "eth1", "ovirtmgmt": "ovirtmgmt"})
NONE = HostInventory({"ovirtmgmt": "ovirtmgmt"})
BONDS = (bond(networks=(SAN1, SAN2)),)


def props(*portals: str, lun: int = 1) -> ConnectionProperties:
    return ConnectionProperties.from_dict(
        {
            "target_portals": list(portals),
            "target_iqns": [IQN] * len(portals),
            "target_luns": [lun] * len(portals),
        }
    )


@pytest.fixture
def host() -> Iterator[FakeHost]:
    with FakeHost(time_scale=0) as fake:
        fake.add_netdev("eth1", "10.0.1.5/24")
        fake.add_netdev("eth2", "10.0.2.5/24")
        yield fake


# --- plan ------------------------------------------------------------------------------


def test_host_with_all_networks_logs_in_every_target_through_every_netdev() -> None:
    result = plan(BONDS, ALL, props(P1, P2))
    assert result.paths == (
        path(P1, "mpb-eth1"),
        path(P1, "mpb-eth2"),
        path(P2, "mpb-eth1"),
        path(P2, "mpb-eth2"),
    )
    assert result.ifaces == ("mpb-eth1", "mpb-eth2")
    assert result.netdevs == {"san1": "eth1", "san2": "eth2"}
    (route,) = result.routes
    assert (route.bond, route.networks, len(route.paths)) == ("san", ("san1", "san2"), 4)


def test_host_with_some_networks_uses_those_only() -> None:
    result = plan(BONDS, SOME, props(P1, P2))
    assert result.paths == (path(P1, "mpb-eth1"), path(P2, "mpb-eth1"))
    assert result.routes[0].networks == ("san1",)


def test_host_with_none_of_the_networks_uses_default() -> None:
    result = plan(BONDS, NONE, props(P1, P2))
    assert result.paths == (path(P1, "default"), path(P2, "default"))
    assert (result.routes, result.ifaces, result.netdevs) == ((), (), {})


def test_target_in_no_bond_uses_default_beside_bonded_ones() -> None:
    result = plan((bond(networks=(SAN1,), connections=(C1,)),), ALL, props(P1, P3))
    assert result.paths == (path(P1, "mpb-eth1"), path(P3, "default"))


def test_two_bonds_sharing_a_netdev_share_its_iface_once() -> None:
    bonds = (bond("b1", "a", (SAN1,)), bond("b2", "b", (SAN1, SAN2)))
    result = plan(bonds, ALL, props(P1))
    assert result.paths == (path(P1, "mpb-eth1"), path(P1, "mpb-eth2"))
    assert [r.bond for r in result.routes] == ["a", "b"]


def test_dormant_bond_and_no_bonds_route_nothing() -> None:
    assert plan((bond(networks=()),), ALL, props(P1)).paths == (path(P1, "default"),)
    assert plan((), ALL, props(P1)).paths == (path(P1, "default"),)


def test_every_lun_keeps_its_target() -> None:
    result = plan(BONDS, SOME, props(P1, lun=7))
    assert result.paths[0].target.lun == 7


def test_bad_inventory_names_the_network() -> None:
    with pytest.raises(BondValueError, match="san1.*netdev") as info:
        HostInventory({"san1": "eth1; rm -rf /"})
    assert info.value.field == "netdev"
    with pytest.raises(BondValueError, match="network"):
        HostInventory({"bad name": "eth1"})
    assert HostInventory.from_dict(ALL.to_dict()) == ALL
    with pytest.raises(BondValueError, match="unknown key"):
        HostInventory.from_dict({"networks": {}, "extra": 1})


def test_carried_lists_only_the_bonds_networks() -> None:
    assert ALL.carried(BONDS) == {"san1": "eth1", "san2": "eth2"}
    assert NONE.carried(BONDS) == {}
    assert MGMT.name in ALL.networks


# --- the inventory against the host ----------------------------------------------------


def test_netdevs_that_exist_and_are_up_pass(host: FakeHost) -> None:
    check_netdevs(host, plan(BONDS, ALL, props(P1)).netdevs)
    check_on_host(host, plan(BONDS, ALL, props(P1)))


def test_check_on_host_refuses_a_shared_subnet(host: FakeHost) -> None:
    host.add_netdev("eth3", "10.0.1.6/24")
    inventory = HostInventory({"san1": "eth1", "san2": "eth3"})
    with pytest.raises(SameSubnetError, match="eth1, eth3 share subnet 10.0.1.0/24"):
        check_on_host(host, plan(BONDS, inventory, props(P1)))


def test_missing_netdev_is_named(host: FakeHost) -> None:
    with pytest.raises(NetdevError, match="network 'san3': netdev 'eth9' does not exist") as info:
        check_netdevs(host, {"san3": "eth9"})
    assert (info.value.network, info.value.netdev) == ("san3", "eth9")


def test_netdev_down_or_without_link_is_named(host: FakeHost) -> None:
    host.set_netdev("eth2", up=False)
    with pytest.raises(NetdevError, match="'eth2' is administratively down"):
        check_netdevs(host, {"san1": "eth1", "san2": "eth2"})
    host.set_netdev("eth2", up=True, carrier=False)
    with pytest.raises(NetdevError, match="'eth2' has no link"):
        check_netdevs(host, {"san2": "eth2"})
    host.set_netdev("eth2", carrier=True)
    check_netdevs(host, {"san2": "eth2"})


# --- the verdict -----------------------------------------------------------------------


def results(host_plan: HostPlan, failed: set[str]) -> list[PathResult]:
    out = []
    for p in host_plan.paths:
        if p.iface in failed:
            out.append(PathResult(p, PathState.FAILED, reason="connection timed out"))
        else:
            out.append(PathResult(p, PathState.ACTIVE, device="sda"))
    return out


def test_all_paths_up_is_not_degraded() -> None:
    host_plan = plan(BONDS, ALL, props(P1, P2))
    assert not verdict(host_plan, results(host_plan, set())).degraded


def test_some_paths_failed_is_degraded_and_says_which() -> None:
    host_plan = plan(BONDS, ALL, props(P1, P2))
    outcome = verdict(host_plan, results(host_plan, {"mpb-eth2"}))
    assert outcome.degraded
    assert [r.path for r in outcome.failed] == [path(P1, "mpb-eth2"), path(P2, "mpb-eth2")]
    assert outcome.failed[0].as_dict()["iface"] == "mpb-eth2"
    assert outcome.failed[0].as_dict()["reason"] == "connection timed out"


def test_no_path_through_the_bond_networks_is_non_operational() -> None:
    host_plan = plan(BONDS, ALL, props(P1, P2))
    with pytest.raises(HostNonOperationalError) as info:
        verdict(host_plan, results(host_plan, {"mpb-eth1", "mpb-eth2"}))
    error = info.value
    assert error.networks == ("san1", "san2")
    assert len(error.failures) == 4
    assert "10.0.1.2:3260" in str(error) and "10.0.2.2:3260" in str(error)
    assert "via mpb-eth1: connection timed out" in str(error)
    networks, failures = error.args  # as oslo.privsep rebuilds it
    assert str(HostNonOperationalError(networks, failures)) == str(error)  # type: ignore[arg-type]


def test_default_paths_do_not_save_a_bond_that_failed() -> None:
    # The bonded target may not fall back to the management network.
    host_plan = plan((bond(networks=(SAN1,), connections=(C1,)),), ALL, props(P1, P3))
    with pytest.raises(HostNonOperationalError, match="san1"):
        verdict(host_plan, results(host_plan, {"mpb-eth1"}))


def test_pending_bond_paths_are_not_a_failure_yet() -> None:
    host_plan = plan(BONDS, SOME, props(P1, P2))
    first, second = host_plan.paths
    outcome = verdict(
        host_plan,
        [PathResult(first, PathState.FAILED, reason="x"), PathResult.pending(second, 1.0)],
    )
    assert [r.path for r in outcome.failed] == [first]


def test_host_without_bond_networks_is_never_non_operational() -> None:
    host_plan = plan(BONDS, NONE, props(P1, P2))
    outcome = verdict(host_plan, results(host_plan, {"default"}))
    assert outcome.degraded and len(outcome.failed) == 2


def test_missing_results_count_as_failed() -> None:
    host_plan = plan(BONDS, SOME, props(P1))
    with pytest.raises(HostNonOperationalError, match="not attempted"):
        verdict(host_plan, [])
