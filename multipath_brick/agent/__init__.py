"""The host agent: managed volumes in a local store, and the ``multipath-brick`` command.

:class:`ManagedVolumes` is the Python API (oVirt's Managed Block Storage flow:
``connector_info``, ``attach_volume``, ``detach_volume``, ``volumes_info``);
:mod:`.cli` is the command, :mod:`.helper` speaks vdsm's managedvolume-helper
protocol, :mod:`.doctor` checks the host.
"""

from multipath_brick.agent.store import DEFAULT_STORE, State, VolumeRow, VolumeStore
from multipath_brick.agent.volumes import ManagedVolumes

__all__ = ["DEFAULT_STORE", "ManagedVolumes", "State", "VolumeRow", "VolumeStore"]
