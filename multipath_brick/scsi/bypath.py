"""udev's ``/dev/disk/by-path`` names of iSCSI disks, exactly as ``path_id`` builds them.

systemd's ``src/udev/udev-builtin-path_id.c`` names an iSCSI disk
``ip-<persistent_address>:<persistent_port>-iscsi-<targetname>-lun-<lun>``:

* the address is the connection's ``persistent_address``, which iscsid sets
  from the numeric host it connected to: an IPv6 address compressed and
  *without* brackets (``ip-2001:db8::1:3260-...``);
* the LUN is the kernel's (the ``L`` of ``H:C:T:L``, after the addressing
  mode): below 256 in decimal, otherwise ``format_lun_number`` writes
  ``0x%04lx%04lx00000000`` of ``lun & 0xffff`` and ``(lun >> 16) & 0xffff``
  (LUN 16684, a SAM2 LUN 300, is ``lun-0x412c000000000000``).

A portal given as a host name has the resolved address in its link, which
only sysfs knows; such a path has no name here.
"""

from __future__ import annotations

import ipaddress

__all__ = ["BY_PATH", "by_path", "lun_part"]

BY_PATH = "/dev/disk/by-path"


def lun_part(lun: int) -> str:
    """The ``lun-...`` part of the name, as ``path_id``'s ``format_lun_number``."""
    if lun < 256:
        return f"lun-{lun}"
    return f"lun-0x{lun & 0xFFFF:04x}{(lun >> 16) & 0xFFFF:04x}00000000"


def by_path(portal: str, iqn: str, lun: int) -> str | None:
    """The by-path link of one path, or None when the portal is a host name.

    :param portal: ``host:port``, IPv6 as ``[addr]:port`` (the parser's form).
    :param iqn: the target name.
    :param lun: the LUN as the kernel sees it.
    """
    host, _, port = portal.rpartition(":")
    address = host.strip("[]")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return None
    return f"{BY_PATH}/ip-{address}:{port}-iscsi-{iqn}-{lun_part(lun)}"
