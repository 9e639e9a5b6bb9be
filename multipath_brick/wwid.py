"""WWIDs as multipathd spells them.

Pure text, used by the library's sysfs lookups and by the privileged daemon's
ownership checks alike, so that both name a volume the same way and neither
depends on the other.
"""

from __future__ import annotations

import re

__all__ = ["multipath_wwid"]


def multipath_wwid(sysfs_wwid: str) -> str:
    """The WWID multipathd uses, from the kernel's ``device/wwid``.

    The kernel prints the VPD 0x83 designator with its type (``naa.``, ``eui.``,
    ``t10.``); udev's scsi_id, which multipathd relies on, prefixes the type's
    number instead (3, 2, 1) and squeezes t10 spaces to underscores.

    :param sysfs_wwid: e.g. ``naa.60000000000000004d42000100010001``.
    :returns: e.g. ``360000000000000004d42000100010001``.
    """
    text = sysfs_wwid.strip()
    kind, _, value = text.partition(".")
    if kind == "naa":
        return "3" + value
    if kind == "eui":
        return "2" + value
    if kind == "t10":
        return "1" + re.sub(r"\s+", "_", value.strip())
    return re.sub(r"\s+", "_", text)
