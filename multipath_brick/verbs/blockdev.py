"""Verbs on a volume's block device: read a block of it, link it for an encryptor.

Each names the device only (``sdX`` or ``dm-N``); the daemon builds the
program's arguments from it, and checks that the device is an iSCSI disk or a
multipath map over iSCSI disks before it reads or links it
(:func:`~multipath_brick.verbs.ownership.check_command`).

The link is os-brick's, for encrypted volumes: ``os_brick.utils`` names it
``/dev/disk/by-id/os-brick`` followed by the device path with ``/`` written
``+`` (``/dev/disk/by-id/os-brick+dev+dm-3``), the encryptors replace it with a
link to their crypt device, and os-brick's undo decorator reads the device
back from the name. The same name here, so a volume attached by either
library is detached by the other.
"""

from __future__ import annotations

import dataclasses
import re

from multipath_brick.exception import InvalidArgument
from multipath_brick.verbs.base import Command
from multipath_brick.verbs.checks import check_device

__all__ = [
    "LINK_PREFIX",
    "LinkEncrypted",
    "ReadBlock",
    "UnlinkEncrypted",
    "check_block_device",
    "encrypted_link",
]

#: os-brick's ``CUSTOM_LINK_PREFIX`` (os_brick/utils.py).
LINK_PREFIX = "/dev/disk/by-id/os-brick"
_DM = re.compile(r"dm-(?:0|[1-9][0-9]{0,8})")


def check_block_device(value: object) -> None:
    """A volume's kernel name: ``sdX`` (a disk) or ``dm-N`` (a map).

    :raises InvalidArgument: anything else (field ``device``).
    """
    if isinstance(value, str) and _DM.fullmatch(value):
        return
    try:
        check_device(value)
    except InvalidArgument:
        raise InvalidArgument(
            "device", f"not a disk (sdX) or map (dm-N) name: {value!r:.60}"
        ) from None


def encrypted_link(device: str) -> str:
    """os-brick's link name for ``/dev/<device>``, e.g. ``.../os-brick+dev+dm-3``."""
    return LINK_PREFIX + f"/dev/{device}".replace("/", "+")


@dataclasses.dataclass(frozen=True)
class _BlockVerb(Command):
    device: str

    def __post_init__(self) -> None:
        check_block_device(self.device)


@dataclasses.dataclass(frozen=True)
class ReadBlock(_BlockVerb):
    """Read the first 4 KiB of the device, bypassing the page cache.

    What os-brick's ``check_valid_device`` does (``dd ... count=1`` as root),
    with ``iflag=direct`` so that a disk whose session is dead cannot pass on
    a block cached before it died. 4096 bytes is a whole block of every
    logical block size (512 and 4096), as direct I/O requires.
    """

    entrypoint = "read_block"

    def argv(self) -> tuple[str, ...]:
        return (
            "dd",
            f"if=/dev/{self.device}",
            "of=/dev/null",
            "bs=4096",
            "count=1",
            "iflag=direct",
        )


@dataclasses.dataclass(frozen=True)
class LinkEncrypted(_BlockVerb):
    """Make os-brick's link for an encrypted volume point at the device.

    ``-T`` so that an existing directory of that name is an error rather than
    a place to put the link in; ``-f`` replaces an earlier link, as
    os-brick's ``link_root(force=True)`` does.
    """

    entrypoint = "link_encrypted"

    def argv(self) -> tuple[str, ...]:
        return ("ln", "-sfT", f"/dev/{self.device}", encrypted_link(self.device))


@dataclasses.dataclass(frozen=True)
class UnlinkEncrypted(_BlockVerb):
    """Remove os-brick's link for an encrypted volume (the device may be gone)."""

    entrypoint = "unlink_encrypted"

    def argv(self) -> tuple[str, ...]:
        return ("rm", "-f", encrypted_link(self.device))
