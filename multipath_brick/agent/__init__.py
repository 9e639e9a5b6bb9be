"""The host agent: managed volumes in a local store, and the ``multipath-brick`` command.

:class:`ManagedVolumes` is the Python API (oVirt's Managed Block Storage flow:
``connector_info``, ``attach_volume``, ``detach_volume``, ``volumes_info``);
:mod:`.cli` is the command, :mod:`.helper` speaks vdsm's managedvolume-helper
protocol, :mod:`.doctor` checks the host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from multipath_brick.agent.store import DEFAULT_STORE, State, VolumeRow, VolumeStore

if TYPE_CHECKING:
    from multipath_brick.agent.volumes import ManagedVolumes

__all__ = ["DEFAULT_STORE", "ManagedVolumes", "State", "VolumeRow", "VolumeStore"]


def __getattr__(name: str) -> Any:
    # ManagedVolumes pulls in the connector (os-brick's initiator, oslo.privsep):
    # import it on use, so that the command's entry point, which imports this
    # package first, can decide how those are imported (see cli.run).
    if name == "ManagedVolumes":
        from multipath_brick.agent.volumes import ManagedVolumes

        return ManagedVolumes
    raise AttributeError(name)
