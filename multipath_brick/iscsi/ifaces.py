"""Typed ``iscsiadm -m iface``: the iface records that bind sessions to a netdev.

Parsers are pure functions, tested against output captured from a real
open-iscsi in ``multipath_brick/tests/fixtures/`` (``iscsiadm_iface_*.txt``).
"""

from __future__ import annotations

import dataclasses

from multipath_brick import verbs
from multipath_brick.exception import CommandError
from multipath_brick.host.base import CommandResult, Host
from multipath_brick.iscsi.iscsiadm import IscsiadmExit

#: How iscsiadm prints an empty value.
EMPTY = "<empty>"


@dataclasses.dataclass(frozen=True)
class IfaceRecord:
    """One line of ``iscsiadm -m iface``.

    :ivar name: the iface's name (``default``, ``mpb-eth1``...).
    :ivar transport: ``tcp`` for software iSCSI (``iser``...).
    :ivar hwaddress: the MAC it is bound to, empty when none.
    :ivar ipaddress: the address it is bound to, empty when none.
    :ivar netdev: ``iface.net_ifacename``, the netdev it is bound to; empty when none.
    :ivar initiatorname: the initiator name it logs in as; empty for the host's own.
    """

    name: str
    transport: str
    hwaddress: str = ""
    ipaddress: str = ""
    netdev: str = ""
    initiatorname: str = ""


def _value(text: str) -> str:
    text = text.strip()
    return "" if text == EMPTY else text


def parse_iface_list(text: str) -> list[IfaceRecord]:
    """Parse ``iscsiadm -m iface``: ``name transport,hwaddress,ipaddress,netdev,initiatorname``.

    Example line: ``mpb-eth1 tcp,<empty>,<empty>,eth1,<empty>``. Lines that do
    not have that shape are skipped.
    """
    records = []
    for line in text.splitlines():
        name, _, rest = line.strip().partition(" ")
        fields = rest.split(",", 4)
        if not name or len(fields) != 5:
            continue
        records.append(IfaceRecord(name, *(_value(f) for f in fields)))
    return records


def parse_record(text: str) -> dict[str, str]:
    """Parse ``-o show``: ``name = value`` lines between ``# BEGIN/END RECORD``.

    Example line: ``iface.net_ifacename = eth1``; ``<empty>`` becomes ``""``.
    """
    record = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name, sep, value = line.partition(" = ")
        if sep:
            record[name.strip()] = _value(value)
    return record


class Ifaces:
    """The iface verbs on one Host.

    :param host: the host.
    :param timeout: seconds each iscsiadm call may take.
    """

    def __init__(self, host: Host, *, timeout: float = 30.0) -> None:
        self._host = host
        self._timeout = timeout

    def _run(self, command: verbs.Command) -> CommandResult:
        return self._host.run(command, timeout=self._timeout)

    def list(self) -> list[IfaceRecord]:
        """Every iface record, open-iscsi's built-in ones included.

        :raises CommandError: when iscsiadm fails.
        """
        result = self._run(verbs.IfaceList()).check()
        return parse_iface_list(result.stdout)

    def show(self, iface: str) -> dict[str, str] | None:
        """One iface record's settings; None when there is no such iface.

        open-iscsi 2.1.8 answers a missing one with exit 6 (IDBM) and the
        failed open's ``No such file or directory``.

        :raises CommandError: when iscsiadm fails otherwise.
        """
        result = self._run(verbs.IfaceShow(iface))
        if result.exit_code == IscsiadmExit.IDBM and _NO_FILE in result.stderr:
            return None
        return parse_record(result.check().stdout)

    def create(self, iface: str) -> None:
        """Create an iface record of ours (``mpb-<netdev>``).

        Never on an existing one: iscsiadm writes the defaults over it (exit 0).

        :raises CommandError: when iscsiadm fails.
        """
        self._run(verbs.IfaceNew(iface)).check()

    def update(self, iface: str, name: str, value: str) -> None:
        """Write one setting of an iface record of ours.

        iscsiadm exits 0 when it refuses a setting after reading the record (a
        built-in iface, an unknown name): only ``<iface> updated.`` on stdout
        says it was written, so that is what is checked.

        :raises CommandError: when iscsiadm fails (a missing record included) or
            does not say it updated the record.
        """
        result = self._run(verbs.IfaceUpdate(iface, name, value)).check()
        if f"{iface} updated." not in result.stdout.splitlines():
            raise CommandError(result.argv, IscsiadmExit.INVAL, result.stderr)

    def delete(self, iface: str) -> bool:
        """Delete an iface record of ours, and the node records bound to it; False
        when it was not there (exit 7, ``Could not read iface info``).

        :raises CommandError: when iscsiadm fails otherwise, e.g. 15 while a
            session uses one of its node records (the others are deleted by then).
        """
        result = self._run(verbs.IfaceDelete(iface))
        if result.exit_code == IscsiadmExit.INVAL and _UNREADABLE in result.stderr:
            return False
        result.check()
        return True


# How open-iscsi 2.1.8 says an iface record is not there (lab captures).
_NO_FILE = "No such file or directory"
_UNREADABLE = "Could not read iface info"
