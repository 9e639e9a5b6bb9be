"""multipathd and multipath: make, check, resize and flush maps.

Why the library adds the WWID itself: with ``find_multipaths`` (strict or
smart) multipathd will not map a WWID it has never seen with two paths, so a
first attach through one live path would get no map. The privileged daemon
records it in /etc/multipath/wwids itself, as ``multipath -a WWID`` would
(:mod:`multipath_brick.privileged.wwids_file`); ``multipathd add path sdX``
then makes the map at once instead of waiting for a uevent.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import tenacity

from multipath_brick import verbs
from multipath_brick.exception import MultipathUnavailableError
from multipath_brick.host.base import CommandResult, Host

# A flush gets this many command timeouts: it must not be killed early, since
# multipath suspends the map before removing it and resumes it if the removal
# fails, so a kill in between leaves a suspended map that blocks every I/O. And
# it can be slow without being stuck: after the removal it waits for udev,
# which took up to 27 s in the lab while 8 volumes were detached at once.
_FLUSH_TIMEOUTS = 10


class Multipath:
    """The multipath verbs the connector uses, on one Host."""

    def __init__(self, host: Host, *, timeout: float = 30.0, flush_busy_for: float = 10.0) -> None:
        self._host = host
        self._timeout = timeout
        self._flush_busy_for = flush_busy_for

    def _run(
        self, command: verbs.Command | verbs.RecordVerb, timeout: float | None = None
    ) -> CommandResult:
        return self._host.run(command, timeout=timeout or self._timeout)

    def _retried(
        self,
        command: verbs.Command,
        again: Callable[[CommandResult], bool],
        pause: float,
        timeout: float | None = None,
    ) -> CommandResult:
        """Run the command, and again every ``pause`` seconds while ``again``
        says so, for ``flush_busy_for`` seconds; the last result."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(again),
            stop=tenacity.stop_after_delay(self._flush_busy_for),
            wait=tenacity.wait_fixed(pause),
            sleep=self._host.sleep,
            retry_error_callback=lambda state: state.outcome.result(),  # type: ignore[union-attr]
            reraise=True,
        )
        result: CommandResult = retrying(self._run, command, timeout)
        return result

    def running(self) -> bool:
        """Whether multipathd answers on its socket."""
        return self._run(verbs.MultipathdShowDaemon()).ok

    def require_running(self) -> None:
        result = self._run(verbs.MultipathdShowDaemon())
        if not result.ok:
            raise MultipathUnavailableError(result.stderr.strip() or f"exit {result.exit_code}")

    def add_wwid(self, wwid: str, device: str) -> None:
        """Record the WWID of ``device`` in /etc/multipath/wwids (idempotent).

        This alone makes no map: multipathd only acts on the next uevent or
        ``add path`` of one of its disks.
        """
        self._run(verbs.MultipathAddWwid(wwid, device)).check()

    def remove_wwid(self, wwid: str) -> None:
        """Forget the WWID in /etc/multipath/wwids (idempotent: an absent one is fine).

        :raises CommandError: when the file could not be edited.
        """
        self._run(verbs.MultipathRemoveWwid(wwid)).check()

    def add_path(self, device: str) -> bool:
        """Hand multipathd a disk of a whitelisted WWID; True if it answered ok.

        The first one creates the map and pulls in every other known path of the
        WWID. ``ok`` does not mean the disk is in the map yet: multipathd keeps
        later disks aside until udev has processed the new map, then adds them
        itself. A failure is not raised: whether the map has the path is what
        the caller checks.
        """
        return self._run(verbs.MultipathdAddPath(device)).ok

    def remove_path(self, device: str) -> None:
        """Make multipathd forget a path; unknown paths are fine."""
        self._run(verbs.MultipathdDelPath(device))

    def flush(
        self,
        map_name: str,
        *,
        pause: float = 0.5,
        on_busy: Callable[[], object] | None = None,
    ) -> CommandResult:
        """Flush (remove) a map, retrying while something briefly holds it open.

        Right after a map appears, udev probes it (blkid, kpartx) and holds it
        open for a moment; a flush then answers "map in use". That is worth
        waiting out for ``flush_busy_for`` seconds. A map still in use after that is
        really in use (a mounted file system, a VM), and the last result says so.
        Each try may take ten command timeouts (see ``_FLUSH_TIMEOUTS``).

        :param on_busy: called once, after the first "map in use", instead of
            the first pause (the detach waits for udev there).
        """
        command, timeout = verbs.MultipathFlush(map_name), self._timeout * _FLUSH_TIMEOUTS
        first = self._run(command, timeout)
        if not _busy(first):
            return first
        if on_busy is None:
            self._host.sleep(pause)
        else:
            on_busy()
        return self._retried(command, _busy, pause, timeout)

    def del_map(self, map_name: str) -> CommandResult:
        """``multipathd del map``: multipathd drops the map and removes it, as
        os-brick's forced detach does for a map it could not flush."""
        return self._run(verbs.MultipathdDelMap(map_name))

    def usable(self, wwid: str, map_name: str) -> bool:
        """Whether the WWID's map has a path that can take I/O.

        What ``multipath -C`` checks (a path active in the map's table whose
        checker says ready), asked of multipathd: ``multipath -C`` is a program
        that rediscovers every disk of the host first, which took 1-6 s in the
        lab with 32 disks, while multipathd answers from what it knows. It is
        asked about this one map (:class:`~.verbs.MultipathdShowMap`), not for
        every path of the host: the attach asks at every look while it waits,
        and a host with hundreds of volumes would pay for all of them each time.

        :param map_name: the map's ``dm-N`` (or its name). device-mapper gives a
            freed number to the next map, so the answer counts only if the map
            it describes carries ``wwid``.
        """
        result = self._run(verbs.MultipathdShowMap(map_name))
        return result.ok and map_usable(result.stdout, wwid)

    def resize(self, map_name: str, *, pause: float = 0.5) -> None:
        """Grow (or shrink) a map to the size of its paths.

        multipathd refuses, with a bare "fail", while the map is still being
        created (until udev has processed it, seconds after an attach can
        return) or while its paths disagree on their size. Both pass, and a
        resize to the current size succeeds, so a refusal is retried for
        ``flush_busy_for`` seconds before it is raised.

        :raises CommandError: when multipathd still refuses.
        """
        command = verbs.MultipathdResizeMap(map_name)
        self._retried(command, lambda result: not result.ok, pause).check()


def usable_wwids(table: str) -> set[str]:
    """WWIDs with a path active in their map and checker ready, from the
    answer to :class:`~.verbs.MultipathdShowPaths`."""
    found = set()
    for line in table.splitlines():
        fields = line.split(maxsplit=4)  # device wwid map dm-state checker-state
        if len(fields) == 5 and fields[2] != "[orphan]" and fields[3:] == ["active", "ready"]:
            found.add(fields[1])
    return found


def map_usable(answer: str, wwid: str) -> bool:
    """Whether the answer to :class:`~.verbs.MultipathdShowMap` is the map of
    ``wwid`` with a path active in its table and checker ready.

    multipathd's JSON (format version 0.1), trimmed to what is read::

        {"major_version": 0, "minor_version": 1,
         "map": {"uuid": "3600...", "sysfs": "dm-0", "path_groups": [
            {"paths": [{"dev": "sda", "dm_st": "active", "chk_st": "ready"}]}]}}

    Anything else (not JSON, another layout) is not a usable map.
    """
    try:
        shown = json.loads(answer)["map"]
        if shown["uuid"] != wwid:
            return False
        return any(
            path["dm_st"] == "active" and path["chk_st"] == "ready"
            for group in shown["path_groups"]
            for path in group["paths"]
        )
    except (ValueError, KeyError, TypeError):
        return False


def _busy(result: CommandResult) -> bool:
    """multipath 0.9: ``<ts> | <map>: map in use`` on stderr, exit 1."""
    return not result.ok and "in use" in result.stderr
