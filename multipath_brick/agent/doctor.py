"""``multipath-brick doctor``: is this host ready for the library? One check per concern.

Every check only reads (through the :class:`~multipath_brick.host.base.Host`
where it can), says what it found, and when something is wrong, the line that
fixes it. Nothing is changed.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import shutil

from multipath_brick.connector import INITIATOR_FILE, read_initiator_name
from multipath_brick.host.base import Host
from multipath_brick.multipath.control import Multipath

MULTIPATH_CONF = "/etc/multipath.conf"
ISCSID_CONF = "/etc/iscsi/iscsid.conf"

#: multipath.conf ``defaults`` the library relies on, and why.
MULTIPATH_SETTINGS = {
    # The agent answers /dev/mapper/<wwid>: maps must be named by WWID.
    "user_friendly_names": ("no",),
    # Any value multipath-tools knows: the library lists each WWID in the WWID file
    # itself (as `multipath -a`) before `add path`, which even "strict" honours. A value
    # multipathd does not know makes it fall back to its compiled-in default,
    # which differs between distributions.
    "find_multipaths": ("strict", "yes", "on", "no", "off", "greedy", "smart"),
}
#: iscsid.conf timeouts: how long a dead portal holds a login, and how long I/O
#: queues on a failed session before multipath may use another path.
ISCSID_LIMITS = {
    "node.session.timeo.replacement_timeout": 30,
    "node.conn[0].timeo.login_timeout": 30,
}


class Status(str, enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclasses.dataclass(frozen=True)
class Check:
    """One finding.

    :ivar name: stable key, e.g. ``multipathd``.
    :ivar status: ok, warn or fail.
    :ivar detail: what was found.
    :ivar fix: the command or edit that fixes it (empty when ok).
    """

    name: str
    status: Status
    detail: str
    fix: str = ""


def _processes(host: Host) -> set[str]:
    names = set()
    for entry in host.list_dir("/proc"):
        if entry.isdigit():
            try:
                names.add(host.read_text(f"/proc/{entry}/comm").strip())
            except OSError:
                continue  # the process ended while we looked
    return names


def check_daemons(host: Host) -> list[Check]:
    """iscsid running (from /proc) and multipathd answering (its socket)."""
    running = _processes(host)
    iscsid = (
        Check("iscsid", Status.OK, "iscsid is running")
        if "iscsid" in running
        else Check(
            "iscsid",
            Status.FAIL,
            "iscsid is not running: logins fail with iscsiadm exit 20",
            "systemctl enable --now iscsid",
        )
    )
    multipathd = (
        Check("multipathd", Status.OK, "multipathd answers")
        if Multipath(host, timeout=10.0).running()
        else Check(
            "multipathd",
            Status.FAIL,
            "multipathd does not answer: no map can be made",
            "systemctl enable --now multipathd",
        )
    )
    return [iscsid, multipathd]


def defaults_section(text: str) -> dict[str, str]:
    """``key value`` pairs of multipath.conf's ``defaults { }`` section.

    Example: ``defaults {\\n user_friendly_names no\\n}`` -> ``{"user_friendly_names": "no"}``.
    """
    found: dict[str, str] = {}
    match = re.search(r"^\s*defaults\s*\{(.*?)^\s*\}", text, re.MULTILINE | re.DOTALL)
    for line in (match.group(1) if match else "").splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2:
            found[words[0]] = words[1].strip("\"'")
    return found


def check_multipath_conf(host: Host) -> list[Check]:
    """The multipath.conf settings the library relies on."""
    try:
        settings = defaults_section(host.read_text(MULTIPATH_CONF))
    except OSError:
        return [
            Check(
                "multipath.conf",
                Status.FAIL,
                f"{MULTIPATH_CONF} is missing: multipathd runs on built-in defaults",
                "mpathconf --enable --user_friendly_names n --find_multipaths y "
                f"(RHEL) or write {MULTIPATH_CONF} with a defaults section",
            )
        ]
    checks = []
    for key, accepted in MULTIPATH_SETTINGS.items():
        value = settings.get(key)
        # user_friendly_names defaults to no; find_multipaths to strict on RHEL 8+.
        effective = value or ("no" if key == "user_friendly_names" else "strict")
        if effective in accepted:
            checks.append(Check(key, Status.OK, f"{key} {effective}"))
        else:
            want = accepted[0]
            checks.append(
                Check(
                    key,
                    Status.FAIL,
                    f"{key} is {effective!r}; the library needs one of {', '.join(accepted)}",
                    f"set '{key} {want}' in the defaults section of {MULTIPATH_CONF}, "
                    "then: multipathd reconfigure",
                )
            )
    return checks


#: Initiator names that distributions ship before one is generated.
_PLACEHOLDERS = re.compile(r"^(GenerateName=yes|iqn\.[0-9-]+\.[^:]+:(01:)?)$")


def check_initiator(host: Host) -> Check:
    """The initiator name is set and not the distribution's placeholder."""
    name = read_initiator_name(host)
    fix = f'echo "InitiatorName=$(iscsi-iname)" > {INITIATOR_FILE} && systemctl restart iscsid'
    if not name:
        return Check("initiator", Status.FAIL, f"no InitiatorName in {INITIATOR_FILE}", fix)
    if _PLACEHOLDERS.match(name) or not name.startswith(("iqn.", "eui.", "naa.")):
        return Check("initiator", Status.FAIL, f"{name!r} is a placeholder, not a name", fix)
    return Check("initiator", Status.OK, name)


def check_iscsid_conf(host: Host) -> list[Check]:
    """Timeouts in iscsid.conf that decide how long a dead portal or path costs."""
    try:
        text = host.read_text(ISCSID_CONF)
    except OSError:
        return [Check("iscsid.conf", Status.WARN, f"{ISCSID_CONF} is missing", "")]
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, setting = line.split("#", 1)[0].partition("=")
        if sep:
            values[name.strip()] = setting.strip()
    checks = []
    for key, limit in ISCSID_LIMITS.items():
        value = values.get(key)
        number = int(value) if value is not None and value.isdigit() else None
        if number is not None and number <= limit:
            checks.append(Check(key, Status.OK, f"{key} = {number}"))
        else:
            checks.append(
                Check(
                    key,
                    Status.WARN,
                    f"{key} = {value}: above {limit}s, a dead path stalls I/O or logins "
                    "that long (the library writes its own per-node login timeouts)",
                    f"set '{key} = {limit}' or lower in {ISCSID_CONF}",
                )
            )
    return checks


IFACES_DIR = "/etc/iscsi/ifaces"
#: What each NIC an iSCSI iface is bound to needs when several share a subnet:
#: replies must leave by the NIC the request came in on, or they are dropped.
BOND_SYSCTLS = {"rp_filter": ("2",), "arp_ignore": ("1",), "arp_announce": ("2",)}


def bound_nics(host: Host) -> list[str]:
    """NICs that iscsiadm ifaces are bound to (``iface.net_ifacename``), sorted."""
    nics = set()
    for name in host.list_dir(IFACES_DIR):
        try:
            text = host.read_text(f"{IFACES_DIR}/{name}")
        except OSError:
            continue
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if (
                sep
                and key.strip() == "iface.net_ifacename"
                and value.strip() not in ("", "<empty>")
            ):
                nics.add(value.strip())
    return sorted(nics)


def check_bond_sysctls(host: Host) -> list[Check]:
    """rp_filter and ARP settings of every NIC an iface is bound to (an iSCSI bond)."""
    checks = []
    for nic in bound_nics(host):
        wrong = []
        for key, accepted in BOND_SYSCTLS.items():
            try:
                value = host.read_text(f"/proc/sys/net/ipv4/conf/{nic}/{key}").strip()
            except OSError:
                value = "missing"
            if value not in accepted:
                wrong.append((key, value, accepted[0]))
        name = f"sysctl {nic}"
        if not wrong:
            checks.append(Check(name, Status.OK, "rp_filter 2, arp_ignore 1, arp_announce 2"))
            continue
        checks.append(
            Check(
                name,
                Status.WARN,
                ", ".join(f"{k} is {v}" for k, v, _ in wrong)
                + ": with several iSCSI NICs on one subnet, replies leave by the wrong NIC",
                "sysctl -w " + " ".join(f"net.ipv4.conf.{nic}.{k}={w}" for k, _, w in wrong),
            )
        )
    return checks


def check_privsep() -> Check:
    """The privsep helper the library starts to reach root."""
    helper = shutil.which("privsep-helper")
    if helper is None:
        return Check(
            "privsep",
            Status.FAIL,
            "privsep-helper is not on PATH: privileged verbs cannot start",
            "install oslo.privsep in the environment that runs multipath-brick",
        )
    return Check("privsep", Status.OK, helper)


def run_checks(host: Host) -> list[Check]:
    """Every check, in a stable order."""
    return [
        *check_daemons(host),
        *check_multipath_conf(host),
        check_initiator(host),
        *check_iscsid_conf(host),
        *check_bond_sysctls(host),
        check_privsep(),
    ]
