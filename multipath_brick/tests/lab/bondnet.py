"""The lab's bond topology: two initiator NICs, routed, and two on one subnet.

Built at boot for every run (one ``ip -batch`` per namespace, three more tgt
portals: about a second under TCG), so any test may use it; the per-portal
veths of the other tests are untouched. Layout (:func:`commands`)::

    root namespace (initiator)                namespace "mpbtgt" (router + tgtd)
    routed: two SAN fabrics, the array behind a router
    mpbn0 192.168.200.1/24  <--- veth --->  mpbr0 192.168.200.2/24
    mpbn1 192.168.201.1/24  <--- veth --->  mpbr1 192.168.201.2/24
                                            lo    192.168.210.1, .2 (the bond portals)
    192.168.210.0/24 via 192.168.200.2 dev mpbn0 metric 100
    192.168.210.0/24 via 192.168.201.2 dev mpbn1 metric 101

    same subnet: two NICs on one switch
    mpbs0 192.168.220.11/24 <--- veth --->  mpbsp0 \\
    mpbs1 192.168.220.12/24 <--- veth --->  mpbsp1  bridge mpbsw 192.168.220.2/24 (portal)

Routed: iscsid binds the socket of a session whose iface names a netdev to
that netdev (SO_BINDTODEVICE), and the kernel's route lookup for a bound socket
only takes routes through that netdev. So a session through ``mpb-mpbn1``
leaves by the metric-101 route, and one through ``default`` (unbound) by the
metric-100 route via mpbn0: each NIC reaches both portals by real routing,
not by the on-link guess a netdev without a route gets. Replies come back on
the NIC that sent (the router's connected routes), where a strict
reverse-path filter would drop those on mpbn1 (its lookup prefers mpbn0's
route): the routed NICs get loose ``rp_filter``, as on any host with two
routes to one storage network.

Same subnet: both NICs answer ARP for each other's address and reach the
portal's subnet by two connected routes. They start with strict ``rp_filter``
(RHEL's default, where vdsm BZ 1112861 was seen; the kernel's own is 0) and the
kernel's ARP defaults; the library refuses them until
``arp_ignore``/``arp_announce``/``rp_filter`` are set (:meth:`BondNet.set_pair_sysctls`).

A NIC "fails" by losing its link: its switch port (the veth peer in the
target namespace) goes down, the NIC loses carrier, its routes stay (flagged
linkdown) and come back usable with the link, as with a pulled cable.
"""

from __future__ import annotations

from .config import LabConfig
from .shell import run

#: The same-subnet NICs' sysctls: name -> (the value bond/subnets.py asks for,
#: the untuned value they start with and are reset to).
PAIR_SYSCTLS = {"arp_ignore": (1, 0), "arp_announce": (2, 0), "rp_filter": (2, 1)}


def _sysctl_path(dev: str, name: str) -> str:
    return f"/proc/sys/net/ipv4/conf/{dev}/{name}"


def _write(path: str, value: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{value}\n")


def commands(cfg: LabConfig) -> tuple[list[str], list[str]]:
    """The ``ip -batch`` lines of both variants: (root namespace, target namespace).

    guest.create_network runs them in its own two batches (root first: it
    creates the veth pairs), so the topology costs no extra process at boot.
    """
    root = []
    ns = []
    for j in range(cfg.bond_nic_count):
        nic, peer = cfg.bond_nic(j), cfg.bond_router_veth(j)
        root += [
            f"link add {nic} type veth peer name {peer} netns {cfg.netns}",
            f"addr add {cfg.bond_nic_ip(j)}/24 dev {nic}",
            f"link set {nic} up",
            # onlink: the gateway is on the NIC's subnet, whose far end is not up yet.
            f"route add {cfg.bond_portal_subnet} via {cfg.bond_router_ip(j)}"
            f" dev {nic} metric {100 + j} onlink",
        ]
        ns += [f"addr add {cfg.bond_router_ip(j)}/24 dev {peer}", f"link set {peer} up"]
    for k in range(cfg.bond_portal_count):
        ns.append(f"addr add {cfg.bond_portal(k).split(':')[0]}/32 dev lo")
    ns += [
        f"link add {cfg.pair_switch} type bridge",
        f"addr add {cfg.pair_target_ip}/24 dev {cfg.pair_switch}",
        f"link set {cfg.pair_switch} up",
    ]
    for j in range(cfg.bond_nic_count):
        nic, port = cfg.pair_nic(j), cfg.pair_switch_port(j)
        root += [
            f"link add {nic} type veth peer name {port} netns {cfg.netns}",
            f"addr add {cfg.pair_nic_ip(j)}/24 dev {nic}",
            f"link set {nic} up",
        ]
        ns += [f"link set {port} master {cfg.pair_switch}", f"link set {port} up"]
    return root, ns


def configure(cfg: LabConfig) -> None:
    """After the links exist: loose rp_filter on the routed NICs, the
    same-subnet NICs untuned (see above)."""
    for j in range(cfg.bond_nic_count):
        _write(_sysctl_path(cfg.bond_nic(j), "rp_filter"), 2)
    write_pair_sysctls(cfg, tuned=False)


def write_pair_sysctls(cfg: LabConfig, tuned: bool) -> None:
    for j in range(cfg.bond_nic_count):
        for name, (good, untuned) in PAIR_SYSCTLS.items():
            _write(_sysctl_path(cfg.pair_nic(j), name), good if tuned else untuned)


def portals(cfg: LabConfig) -> list[str]:
    """The portals tgtd must listen on for this topology."""
    return [*cfg.bond_portal_list, cfg.pair_portal]


class BondNet:
    """Test-time control of the topology: NIC links and the same-subnet sysctls.

    Remembers what it changed, so :meth:`reset` costs nothing after a test
    that changed nothing.
    """

    def __init__(self, cfg: LabConfig) -> None:
        self.cfg = cfg
        self._down: set[int] = set()
        self._delayed: set[int] = set()
        self._tuned = False

    def _check(self, j: int) -> None:
        if not 0 <= j < self.cfg.bond_nic_count:
            raise IndexError(f"NIC index {j} out of 0..{self.cfg.bond_nic_count - 1}")

    def _switch_port(self, j: int, state: str) -> None:
        peer = self.cfg.bond_router_veth(j)
        run(["ip", "-n", self.cfg.netns, "link", "set", peer, state])

    def nic_down(self, j: int) -> None:
        """Cut routed NIC j's link (its switch port goes down: carrier lost)."""
        self._check(j)
        self._switch_port(j, "down")
        self._down.add(j)

    def nic_up(self, j: int) -> None:
        self._check(j)
        self._switch_port(j, "up")
        self._down.discard(j)

    def set_latency(self, j: int, ms: int) -> None:
        """Delay what the router sends back on routed NIC j's subnet by ms (0: none)."""
        self._check(j)
        peer = self.cfg.bond_router_veth(j)
        tc = ["ip", "netns", "exec", self.cfg.netns, "tc", "qdisc"]
        if ms <= 0:
            run([*tc, "del", "dev", peer, "root"], check=False)
            self._delayed.discard(j)
        else:
            run([*tc, "replace", "dev", peer, "root", "netem", "delay", f"{int(ms)}ms"])
            self._delayed.add(j)

    def set_pair_sysctls(self, tuned: bool) -> None:
        """Give the same-subnet NICs the ARP and rp_filter settings, or take them back."""
        write_pair_sysctls(self.cfg, tuned)
        self._tuned = tuned

    def reset(self) -> None:
        for j in sorted(self._down):
            self.nic_up(j)
        for j in sorted(self._delayed):
            self.set_latency(j, 0)
        if self._tuned:
            self.set_pair_sysctls(False)
