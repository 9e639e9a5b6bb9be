"""The errors multipath-brick raises: one tree, one root.

::

    MultipathBrickError                 (os_brick.exception.BrickException)
     +-- InvalidConnectionProperties    (ValueError) a connection dict we refuse
     +-- InvalidArgument                (ValueError) a privileged verb's bad argument
     |    +-- NotOwnedError             ... naming a disk, host or map that is not iSCSI's
     +-- CommandError                   a command exited non-zero
     |    +-- CommandTimeout            ... or did not exit in time
     +-- DiscoveryError                 (os_brick TargetPortalNotFound)
     +-- NoUsablePathError              (os_brick VolumeDeviceNotFound) every path failed
     |    +-- AuthenticationError       ... and every failure was a CHAP rejection
     +-- DeviceNotReadyTimeout          (os_brick VolumeDeviceNotFound) map never usable
     +-- AttachError                    (os_brick VolumeDeviceNotFound) attach failed otherwise
     +-- InvalidSettings                (ValueError) a bad AttachSettings value
     +-- MultipathUnavailableError      multipathd is not answering
     +-- FlushError                     a map could not be flushed (detach stops)
     +-- DetachError                    one or more detach steps failed (force=True)
     +-- VolumePathsError               (os_brick VolumePathsNotFound)
     +-- LockPathError                  the lock directory is unset or unsafe
     +-- LockTimeout                    a lock was not free in time
     +-- OsBrickMapsError               os-brick's factory maps are not the ones we know
     +-- UnsupportedTransportError      (ValueError) an iface/transport we do not attach through
     +-- BondError                      the iSCSI bond model refused something
     |    +-- BondValueError            (ValueError) a field of a bond value, bad
     |    |    +-- BondXmlError         ... or a REST body that is hostile or malformed
     |    +-- BondRuleError             a data-center rule refused an edit
     |    |    +-- BondNotFoundError    ... naming an id the data center does not hold
     |    +-- BondHostError             this host cannot carry the bond as asked
     |         +-- NetdevError          a bond network's netdev is missing or down
     |         +-- IfaceConflictError   an iface of our name is bound to another netdev
     |         +-- SameSubnetError      bond netdevs share a subnet without the sysctls
     |         +-- HostNonOperationalError  no path through the bond's networks came up
     +-- AgentError                     the host agent (multipath_brick.agent) refused a request
     |    +-- InvalidVolumeRequest      (ValueError) a vol_id or connection_info we refuse
     |         +-- UnsupportedVolumeType  ... whose driver_volume_type we do not attach
     |         +-- ConnectionMismatch   ... stored before with another connection
     +-- StoreError                     the agent's volume store cannot be used
          +-- StoreCorruptError         ... it is not a database, or a damaged one
          +-- StoreLockedError          ... another process holds it too long
          +-- StoreVersionError         ... a newer multipath-brick wrote it

Each class lives in a module of this package by concern (:mod:`.root`,
:mod:`.refusals`, :mod:`.environment`, :mod:`.attachment`, :mod:`.iscsi_bond`,
:mod:`.host_agent`); import them from here, their public home, whose name
they carry (``multipath_brick.exception.InvalidArgument``).

Why subclass os-brick: callers written against os-brick (``except
exception.VolumeDeviceNotFound``) keep working when they switch connector.

Why fields live in ``args``: oslo.privsep sends an exception raised in the
daemon back to the caller as its class name and ``args``, and rebuilds it with
``cls(*args)``. Every class here therefore takes its fields positionally and
keeps exactly them in ``args``; the human message is derived, never stored as
an argument. No field ever holds a secret.
"""

from __future__ import annotations

from multipath_brick.exception.attachment import (
    AttachError,
    AuthenticationError,
    DetachError,
    DeviceNotReadyTimeout,
    DiscoveryError,
    FlushError,
    NoUsablePathError,
    VolumePathsError,
)
from multipath_brick.exception.environment import (
    CommandError,
    CommandTimeout,
    LockPathError,
    LockTimeout,
    MultipathUnavailableError,
    OsBrickMapsError,
)
from multipath_brick.exception.host_agent import (
    AgentError,
    ConnectionMismatch,
    InvalidVolumeRequest,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreVersionError,
    UnsupportedVolumeType,
)
from multipath_brick.exception.iscsi_bond import (
    BondError,
    BondHostError,
    BondNotFoundError,
    BondRuleError,
    BondValueError,
    BondXmlError,
    HostNonOperationalError,
    IfaceConflictError,
    NetdevError,
    SameSubnetError,
)
from multipath_brick.exception.refusals import (
    InvalidArgument,
    InvalidConnectionProperties,
    InvalidSettings,
    NotOwnedError,
    UnsupportedTransportError,
)
from multipath_brick.exception.root import MultipathBrickError

__all__ = [
    "AttachError",
    "AgentError",
    "AuthenticationError",
    "BondError",
    "BondNotFoundError",
    "BondRuleError",
    "BondValueError",
    "BondXmlError",
    "CommandError",
    "CommandTimeout",
    "ConnectionMismatch",
    "DetachError",
    "DeviceNotReadyTimeout",
    "DiscoveryError",
    "FlushError",
    "BondHostError",
    "HostNonOperationalError",
    "IfaceConflictError",
    "NetdevError",
    "SameSubnetError",
    "InvalidArgument",
    "InvalidConnectionProperties",
    "OsBrickMapsError",
    "UnsupportedTransportError",
    "InvalidSettings",
    "InvalidVolumeRequest",
    "LockPathError",
    "LockTimeout",
    "MultipathBrickError",
    "MultipathUnavailableError",
    "NoUsablePathError",
    "NotOwnedError",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "StoreVersionError",
    "UnsupportedVolumeType",
    "VolumePathsError",
]

# The classes' public home is this module: tracebacks, reprs and the class name
# oslo.privsep sends back from its daemon (``module.name``, imported again on the
# caller's side) say ``multipath_brick.exception.X``, as before the split.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
