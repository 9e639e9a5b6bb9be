"""os-brick's contracts the connector keeps, beyond its method signatures.

Encrypted volumes
   os-brick wraps ``connect_volume`` in ``utils.connect_volume_prepare_result``
   (outermost, outside its lock) and ``disconnect_volume`` /
   ``extend_volume`` in ``utils.connect_volume_undo_prepare_result``
   (innermost). With ``encrypted`` true, the path returned is a link,
   ``/dev/disk/by-id/os-brick+dev+dm-3``, that the encryptors replace with a
   link to their crypt device (``ln -sf``); a detach or an extend gets the
   device back from the link's name. :func:`prepare_result` and
   :func:`undo_prepare_result` keep that contract. The undo side *is*
   os-brick's decorator; the link is made and removed by our privsep daemon
   (:mod:`~multipath_brick.verbs.blockdev`), not by os-brick's
   ``link_root`` / ``unlink_root``: those run in os-brick's own daemon
   (``os_brick.privileged.default``, with CAP_SYS_ADMIN and
   CAP_DAC_READ_SEARCH) and link or unlink any path as root, which would be a
   second daemon, and a generic one, next to ours.

Multipath fallbacks
   :func:`check_multipath` is os-brick's ``BaseLinuxConnector.check_multipath``
   with an answer: ``enforce_multipath`` comes from the connection
   properties; with multipathd down it raises when enforced, and otherwise
   warns and says to attach through one path.

Transports
   :func:`iface_for_transport` reads os-brick's ``transport`` argument (nova's
   ``[libvirt] iscsi_iface``) as os-brick's ``_validate_iface_transport`` does,
   and honours it for software iSCSI (an iface whose transport is ``tcp``).
   iSER and offload ifaces, which os-brick's ISCSIConnector drives, are
   refused with :class:`~multipath_brick.exception.UnsupportedTransportError`
   rather than attached through ``default`` behind the caller's back.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from os_brick import initiator as brick_initiator
from os_brick import utils as brick_utils

from multipath_brick.exception import (
    InvalidArgument,
    MultipathUnavailableError,
    UnsupportedTransportError,
)
from multipath_brick.host.base import Host
from multipath_brick.iscsi.ifaces import Ifaces
from multipath_brick.verbs import blockdev

__all__ = [
    "INITIATOR_FILE",
    "OsBrickMethods",
    "read_initiator_name",
    "OFFLOAD_TRANSPORTS",
    "SUPPORTED_TRANSPORTS",
    "check_multipath",
    "device_of",
    "enforce_multipath",
    "iface_for_transport",
    "prepare_result",
    "undo_prepare_result",
    "valid_device",
]

LOG = logging.getLogger(__name__)

#: What this connector logs in through: open-iscsi's ``default`` iface, or an
#: iface whose ``iface.transport_name`` is ``tcp``.
SUPPORTED_TRANSPORTS = ("default", "tcp")
#: The transports os-brick's ISCSIConnector drives that this one refuses.
OFFLOAD_TRANSPORTS = ("be2iscsi", "bnx2i", "cxgb3i", "cxgb4i", "qla4xxx", "ocs", "iser")
_F = TypeVar("_F", bound=Callable[..., Any])
INITIATOR_FILE = "/etc/iscsi/initiatorname.iscsi"


def read_initiator_name(host: Host) -> str | None:
    """The host's initiator IQN from /etc/iscsi/initiatorname.iscsi."""
    try:
        text = host.read_text(INITIATOR_FILE)
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.strip() == "InitiatorName":
            return value.strip()
    return None


class OsBrickMethods:
    """os-brick ``ISCSIConnector``'s public methods and attributes beyond the
    attach and detach verbs, for a connector with ``host``, ``settings``,
    ``use_multipath`` and ``_multipath`` (mixed into the connector)."""

    #: os-brick's ISCSIConnector is a BaseLinuxConnector: Linux only.
    os_type = brick_initiator.OS_TYPE_LINUX
    #: What ``transport`` may name (see :func:`iface_for_transport`).
    supported_transports = ["default", "tcp"]

    host: Host
    settings: Any
    use_multipath: bool
    _multipath: Any

    def get_initiator(self) -> str | None:
        """The host's initiator IQN (os-brick's ``get_initiator``), or None."""
        return read_initiator_name(self.host)

    def supports_multipath(self) -> bool:
        """Whether multipathd answers (os-brick's ``supports_multipath``)."""
        return bool(self._multipath.running())

    def check_multipath(self, connection_properties: dict[str, Any]) -> bool:
        """os-brick's ``check_multipath``: whether this attach goes through a map.

        :raises MultipathUnavailableError: multipathd is down and the properties
            say ``enforce_multipath``.
        """
        return check_multipath(self.use_multipath, self.supports_multipath, connection_properties)

    def check_valid_device(self, path: str, run_as_root: bool = True) -> bool:
        """Whether a block of the volume can be read (see :func:`valid_device`)."""
        return valid_device(self.host, path, self.settings.command_timeout)

    def transport_iface(self, transport: str | None) -> str:
        """The iface ``transport`` names (see :func:`iface_for_transport`)."""
        return iface_for_transport(self.host, transport, self.settings.command_timeout)

    def link_encrypted(self, device: str) -> str:
        """Make os-brick's link for an encrypted volume's ``device``; return it."""
        verb = blockdev.LinkEncrypted(device)
        self.host.run(verb, timeout=self.settings.command_timeout).check()
        return blockdev.encrypted_link(device)

    def unlink_encrypted(self, device: str) -> None:
        """Remove os-brick's link for an encrypted volume's ``device``."""
        verb = blockdev.UnlinkEncrypted(device)
        self.host.run(verb, timeout=self.settings.command_timeout).check()


def _flag(connection_properties: Mapping[str, Any], key: str) -> bool:
    # Read for truth, as os-brick reads it; a whole connection_info is unwrapped
    # as ConnectionProperties.from_dict unwraps it.
    data = connection_properties.get("data")
    if "driver_volume_type" in connection_properties and isinstance(data, Mapping):
        return bool(data.get(key))
    return bool(connection_properties.get(key))


def _encrypted(connection_properties: Mapping[str, Any]) -> bool:
    return _flag(connection_properties, "encrypted")


def enforce_multipath(connection_properties: Mapping[str, Any]) -> bool:
    """``enforce_multipath`` of the properties (False when absent, as for an older
    Cinder that does not send it)."""
    return _flag(connection_properties, "enforce_multipath")


def device_of(path: object) -> str | None:
    """``dm-3`` for ``/dev/dm-3`` or os-brick's link to it; None for anything else."""
    if not isinstance(path, str):
        return None
    decoded: str = brick_utils._device_path_from_symlink(path)  # noqa: SLF001 - os-brick's rule
    device = decoded.removeprefix("/dev/")
    try:
        blockdev.check_block_device(device)
    except InvalidArgument:
        return None
    return device if decoded == f"/dev/{device}" else None


def valid_device(host: Host, path: str, timeout: float) -> bool:
    """os-brick's ``check_valid_device``: whether a block of the volume can be read.

    The read goes to our disk or map: an encrypted volume's link is read back
    to its device by name, since the encryptor points it at its crypt device.
    Only an iSCSI disk or a multipath map over them is read (the daemon checks
    it, :class:`~multipath_brick.verbs.ReadBlock`); anything else
    is not valid here.
    """
    device = device_of(path)
    if device is None and host.exists(path):
        device = device_of(host.realpath(path))
    if device is None:
        LOG.warning("%s is not an iSCSI disk or map of this host", path)
        return False
    try:
        result = host.run(blockdev.ReadBlock(device), timeout=timeout)
    except InvalidArgument as error:
        LOG.warning("not reading %s: %s", path, error)
        return False
    if not result.ok:
        LOG.error("Failed to access the device on the path %s: %s", path, result.stderr)
    return result.ok


def prepare_result(func: _F) -> _F:
    """os-brick's ``connect_volume_prepare_result``: an encrypted volume's path
    becomes os-brick's link to it.

    If the link cannot be made, the volume is detached (forced, errors
    ignored) and the error raised, as os-brick does; unlike os-brick, the
    detach is given the connection properties, so it finds the paths.
    """

    @functools.wraps(func)
    def change_encrypted(self: Any, connection_properties: dict[str, Any]) -> Any:
        res = func(self, connection_properties)
        device = device_of(res.get("path"))
        if _encrypted(connection_properties) and device is not None:
            try:
                res["path"] = self.link_encrypted(device)
            except Exception as exc:
                LOG.debug("Failed to create symlink, cleaning connection: %s", exc)
                self.disconnect_volume(connection_properties, res, force=True, ignore_errors=True)
                raise
        return res

    return change_encrypted  # type: ignore[return-value]


def undo_prepare_result(*, unlink_after: bool = False) -> Callable[[_F], _F]:
    """os-brick's ``connect_volume_undo_prepare_result``, with the link removed
    by our daemon once the call succeeded (``unlink_after``, for a detach).

    The device path given back to the method is os-brick's decorator's doing:
    its own code runs here, so a volume attached by os-brick and one attached
    by this connector are read back alike.
    """

    def decorator(func: _F) -> _F:
        rewritten = brick_utils.connect_volume_undo_prepare_result(func)

        @functools.wraps(func)
        def change_encrypted(*args: Any, **kwargs: Any) -> Any:
            call = inspect.getcallargs(func, *args, **kwargs)
            props = call["connection_properties"]
            link = brick_utils.get_dev_path(props, call.get("device_info"))
            res = rewritten(*args, **kwargs)
            custom = isinstance(link, str) and link.startswith(blockdev.LINK_PREFIX + "+")
            device = device_of(link) if custom else None
            if unlink_after and _encrypted(props) and device is not None:
                try:
                    call["self"].unlink_encrypted(device)
                except Exception:  # noqa: BLE001 - os-brick only warns too
                    LOG.warning("Failed to remove encrypted custom symlink %s", link)
            return res

        return change_encrypted  # type: ignore[return-value]

    return decorator


def check_multipath(
    use_multipath: bool, running: Callable[[], bool], connection_properties: Mapping[str, Any]
) -> bool:
    """Whether to attach through a multipath map, as os-brick decides it.

    :param use_multipath: the connector's ``use_multipath``.
    :param running: whether multipathd answers (asked only when multipath is wanted).
    :param connection_properties: read for ``enforce_multipath`` (default
        False, as for an older Cinder that does not send it).
    :returns: True to attach through a map; False for one path (not wanted, or
        multipathd down and not enforced: then with a warning).
    :raises MultipathUnavailableError: multipathd is down and multipath is enforced.
    """
    if not use_multipath:
        return False
    if running():
        return True
    if enforce_multipath(connection_properties):
        raise MultipathUnavailableError(
            "multipathing is enforced (enforce_multipath) but multipathd does not answer"
        )
    LOG.warning(
        "Multipathing is requested but the host doesn't support multipathing: "
        "multipathd does not answer; attaching through one path"
    )
    return False


def iface_for_transport(host: Host, transport: str | None, timeout: float) -> str:
    """The iface to log in through for os-brick's ``transport`` argument.

    ``default`` (or none) is ``default``; an iface whose transport is ``tcp`` is
    used as given. A missing iface, or one of a transport os-brick does not
    know either, falls back to ``default`` with os-brick's warning.

    :raises UnsupportedTransportError: ``iser``, an iface of an offload or iSER
        transport, or a name iscsiadm must not be given.
    """
    if not transport or transport == "default":
        return "default"
    if transport == "iser":
        raise UnsupportedTransportError(
            transport, "iSER is not supported by multipath-brick; use os-brick's ISCSIConnector"
        )
    try:
        record = Ifaces(host, timeout=timeout).show(transport)
    except InvalidArgument as error:
        raise UnsupportedTransportError(transport, f"not an iface name: {error.reason}") from None
    kind = None if record is None else record.get("iface.transport_name")
    if kind == "tcp":
        return transport
    if kind in OFFLOAD_TRANSPORTS:
        raise UnsupportedTransportError(
            transport,
            f"its transport is {kind}; multipath-brick logs in over software iSCSI (tcp) "
            "only: use os-brick's ISCSIConnector for offload and iSER ifaces",
        )
    LOG.warning(
        "No useable transport found for iscsi iface %s. Falling back to default transport.",
        transport,
    )
    return "default"
