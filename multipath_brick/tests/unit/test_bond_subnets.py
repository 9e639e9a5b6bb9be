"""Several bond netdevs on one subnet: detected from the kernel's view, refused with the fix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from multipath_brick.bond.subnets import check_same_subnet, connected_subnets, sysctl_key
from multipath_brick.exception import SameSubnetError
from multipath_brick.testing import FakeHost


@pytest.fixture
def host() -> Iterator[FakeHost]:
    with FakeHost(time_scale=0) as fake:
        fake.add_netdev("eth1", "10.0.1.5/24")
        fake.add_netdev("eth2", "10.0.1.6/24")
        fake.add_netdev("eth3", "10.0.3.5/24")
        fake.add_netdev("bond0.100", "10.0.1.7/24")
        yield fake


def tune(host: FakeHost, *netdevs: str) -> None:
    for dev in netdevs:
        host.set_sysctl(dev, "arp_ignore", 1)
        host.set_sysctl(dev, "arp_announce", 2)
        host.set_sysctl(dev, "rp_filter", 2)


def test_netdevs_on_separate_subnets_pass(host: FakeHost) -> None:
    check_same_subnet(host, ["eth1", "eth3"])
    check_same_subnet(host, ["eth1"])


def test_same_subnet_without_sysctls_is_refused_with_the_exact_lines(host: FakeHost) -> None:
    with pytest.raises(SameSubnetError) as info:
        check_same_subnet(host, ["eth1", "eth2", "eth3"])
    error = info.value
    assert (error.subnet, error.netdevs) == ("10.0.1.0/24", ("eth1", "eth2"))
    assert error.lines == (
        "net.ipv4.conf.eth1.arp_ignore = 1",
        "net.ipv4.conf.eth1.arp_announce = 2",
        "net.ipv4.conf.eth1.rp_filter = 2",
        "net.ipv4.conf.eth2.arp_ignore = 1",
        "net.ipv4.conf.eth2.arp_announce = 2",
        "net.ipv4.conf.eth2.rp_filter = 2",
    )
    assert "\nnet.ipv4.conf.eth2.rp_filter = 2" in str(error)


def test_only_the_untuned_netdevs_are_listed(host: FakeHost) -> None:
    tune(host, "eth1")
    with pytest.raises(SameSubnetError) as info:
        check_same_subnet(host, ["eth1", "eth2"])
    assert all(".eth2." in line for line in info.value.lines)
    tune(host, "eth2")
    check_same_subnet(host, ["eth1", "eth2"])


def test_strict_rp_filter_in_all_wins_over_a_netdev_left_at_zero(host: FakeHost) -> None:
    for dev in ("eth1", "eth2"):
        host.set_sysctl(dev, "arp_ignore", 1)
        host.set_sysctl(dev, "arp_announce", 2)
    check_same_subnet(host, ["eth1", "eth2"])  # rp_filter 0 everywhere: no filtering
    host.set_sysctl("all", "rp_filter", 1)  # the kernel applies max(all, netdev)
    with pytest.raises(SameSubnetError, match="rp_filter = 2"):
        check_same_subnet(host, ["eth1", "eth2"])
    host.set_sysctl("eth1", "rp_filter", 2)
    host.set_sysctl("eth2", "rp_filter", 2)
    check_same_subnet(host, ["eth1", "eth2"])


def test_vlan_netdev_sysctl_key_uses_a_slash(host: FakeHost) -> None:
    assert sysctl_key("bond0.100", "rp_filter") == "net.ipv4.conf.bond0/100.rp_filter"
    with pytest.raises(SameSubnetError, match=r"net\.ipv4\.conf\.bond0/100\.arp_ignore = 1"):
        check_same_subnet(host, ["eth1", "bond0.100"])


def test_a_netdev_that_is_down_has_no_subnet(host: FakeHost) -> None:
    host.set_netdev("eth2", up=False)
    check_same_subnet(host, ["eth1", "eth2"])


def test_connected_subnets_skip_gateways_and_the_default_route() -> None:
    table = (
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        "eth0\t0000140A\t0100000A\t0003\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
        "broken line\n"
    )
    assert {dev: sorted(map(str, nets)) for dev, nets in connected_subnets(table).items()} == {
        "eth0": ["10.0.0.0/24"]
    }
