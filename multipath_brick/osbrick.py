"""Plugging into os-brick's connector factory, so nova and cinder use us unchanged.

nova (``nova/virt/libvirt/volume/iscsi.py``) and cinder (``brick_get_connector``
in ``cinder/utils.py``) never name a connector class: they call
``os_brick.initiator.connector.InitiatorConnector.factory("ISCSI", root_helper,
use_multipath=..., device_scan_attempts=..., transport=...)``, which looks the
protocol up in one of three private maps, chosen by architecture
(``_connector_mapping_linux``, ``..._s390x``, ``..._ppc64``), and imports the
class path it finds there. :func:`install` points the ``ISCSI`` entry of every
map at :class:`~multipath_brick.connector.ISCSIMultipathConnector`;
:func:`uninstall` puts os-brick's class back.

The maps are private, so :func:`install` checks them first and changes nothing
unless it finds exactly the maps it knows, each with os-brick's own iSCSI class
(or ours, when installed already). ``ISER`` is left to os-brick: the factory
passes ``transport='iser'`` for it, which this connector refuses (see
:mod:`multipath_brick.transport`).

How a service calls :func:`install` without a change to its code: it is started
through ``multipath-brick-dropin`` (:func:`run`), for example in a systemd
drop-in, ``ExecStart=/usr/bin/multipath-brick-dropin /usr/bin/nova-compute ...``;
see ``doc/source/user/nova.rst``. :func:`run` does not import os-brick itself:
it installs when the service first imports os-brick's connector module, so the
service's own start-up (eventlet's monkey patching in nova and cinder) still
comes first.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import logging
import runpy
import shutil
import sys
import threading
from collections.abc import MutableMapping, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

from multipath_brick.exception import OsBrickMapsError

__all__ = [
    "CONNECTOR",
    "MAPS",
    "OS_BRICK_ISCSI",
    "install",
    "install_on_import",
    "installed",
    "run",
    "uninstall",
]

LOG = logging.getLogger(__name__)

#: The class path the factory imports once installed.
CONNECTOR = "multipath_brick.connector.ISCSIMultipathConnector"
#: os-brick's own iSCSI class path, put back by :func:`uninstall`.
OS_BRICK_ISCSI = "os_brick.initiator.connectors.iscsi.ISCSIConnector"
#: The per-architecture maps of ``os_brick.initiator.connector`` (os-brick 2.x to 7.x).
MAPS = (
    "_connector_mapping_linux",
    "_connector_mapping_linux_s390x",
    "_connector_mapping_linux_ppc64",
)
_MODULE = "os_brick.initiator.connector"
_PROTOCOL = "ISCSI"
_PREFIX = "_connector_mapping"
_lock = threading.Lock()


def _connector_module() -> ModuleType:
    return importlib.import_module(_MODULE)


def _version() -> str:
    try:
        from importlib import metadata

        return metadata.version("os-brick")
    except Exception:  # noqa: BLE001 - only for the message
        return "(unknown version)"


def _maps(module: ModuleType) -> dict[str, MutableMapping[str, str]]:
    """The maps, checked: exactly :data:`MAPS`, each with an iSCSI entry we know."""
    found = sorted(name for name in vars(module) if name.startswith(_PREFIX))
    if found != sorted(MAPS):
        raise OsBrickMapsError(
            _version(), f"its maps are {found}, this library knows {sorted(MAPS)}"
        )
    maps: dict[str, MutableMapping[str, str]] = {}
    for name in MAPS:
        table = getattr(module, name)
        if not isinstance(table, MutableMapping):
            raise OsBrickMapsError(_version(), f"{name} is not a dict")
        entry = table.get(_PROTOCOL)
        if entry not in (OS_BRICK_ISCSI, CONNECTOR):
            raise OsBrickMapsError(
                _version(),
                f"{name}[{_PROTOCOL!r}] is {entry!r}, neither {OS_BRICK_ISCSI} nor {CONNECTOR}",
            )
        maps[name] = table
    if not callable(getattr(module, "get_connector_mapping", None)):
        raise OsBrickMapsError(_version(), "it has no get_connector_mapping()")
    return maps


def install() -> None:
    """Make ``InitiatorConnector.factory("ISCSI", ...)`` build our connector.

    Every architecture map is changed, or none: the maps are all checked
    before the first is touched. Calling it again is harmless.

    :raises OsBrickMapsError: the installed os-brick's maps are not the ones
        this library knows (nothing was changed).
    """
    with _lock:
        maps = _maps(_connector_module())
        for table in maps.values():
            table[_PROTOCOL] = CONNECTOR
    LOG.info("os-brick's factory builds %s for %s", CONNECTOR, _PROTOCOL)


def uninstall() -> None:
    """Give the ``ISCSI`` protocol back to os-brick's ``ISCSIConnector``.

    Connectors built before keep working; only new factory calls change.
    Calling it when not installed is harmless.

    :raises OsBrickMapsError: as :func:`install` (nothing was changed).
    """
    with _lock:
        maps = _maps(_connector_module())
        for table in maps.values():
            table[_PROTOCOL] = OS_BRICK_ISCSI
    LOG.info("os-brick's factory builds %s for %s again", OS_BRICK_ISCSI, _PROTOCOL)


def installed() -> bool:
    """Whether every map hands ``ISCSI`` to this library.

    :raises OsBrickMapsError: as :func:`install`.
    """
    with _lock:
        maps = _maps(_connector_module())
        return all(table[_PROTOCOL] == CONNECTOR for table in maps.values())


class _InstallAfterLoad(importlib.abc.Loader):
    """os-brick's own loader for its connector module, then :func:`install`."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        install()


class _Hook(importlib.abc.MetaPathFinder):
    """Finds os-brick's connector module the usual way and wraps its loader."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != _MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _InstallAfterLoad(spec.loader)
        return spec


def install_on_import() -> None:
    """:func:`install` now if os-brick's connector module is loaded, else when it is.

    :raises OsBrickMapsError: as :func:`install`, now or at that import.
    """
    if _MODULE in sys.modules:
        install()
    elif not any(isinstance(finder, _Hook) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Hook())


def run(argv: Sequence[str] | None = None) -> int:
    """``multipath-brick-dropin PROGRAM [ARGS...]``: run a Python program installed.

    PROGRAM (a path, or a name found on ``PATH``, such as ``nova-compute``) is
    run in this interpreter as ``__main__`` with ARGS, after
    :func:`install_on_import`. Going back is starting PROGRAM directly again.

    :returns: 2 on a usage error; otherwise PROGRAM's exit ends the process.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stderr.write("usage: multipath-brick-dropin PROGRAM [ARGS...]\n")
        return 2
    program = shutil.which(args[0]) or args[0]
    install_on_import()
    sys.argv = [program, *args[1:]]
    runpy.run_path(program, run_name="__main__")
    return 0
