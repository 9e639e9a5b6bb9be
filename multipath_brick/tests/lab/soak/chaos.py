"""The chaos thread: one fault at a time on one portal, then a read-back.

A fault is either a cut portal (the lab's ``portal_down``: iptables DROP in
the target namespace, so the initiator sees a dead path, not a reset) or
latency on it (``set_latency``: netem on the target's veth). Faults never
overlap, so at most one portal of every volume is down at any time and the
others carry the I/O: the lab's multipath.conf sets no ``no_path_retry``
(multipath-tools' default is to fail I/O at once when no path is left), so
an all-paths-down window would turn into I/O errors, and the soak never
makes one. While the fault is in place every attached volume is read back;
then the portal is restored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..api import Lab
from .params import Fault, SoakParams
from .report import Tally


class Chaos(threading.Thread):
    """Injects the faults of ``plan`` until :meth:`finish` is called."""

    def __init__(
        self,
        lab: Lab,
        plan: list[Fault],
        params: SoakParams,
        tally: Tally,
        verify: Callable[[str], None],
    ) -> None:
        super().__init__(name="soak-chaos", daemon=True)
        self.lab = lab
        self.plan = plan
        self.params = params
        self.tally = tally
        self.verify = verify
        self.done = 0
        self.current: Fault | None = None
        self._halt = threading.Event()
        self._progress = threading.Condition()

    def run(self) -> None:
        try:
            for fault in self.plan:
                if self._halt.wait(fault.gap):
                    return
                self._one(fault)
                with self._progress:
                    self.done += 1
                    self._progress.notify_all()
        except Exception as e:  # noqa: BLE001 - a broken lab command ends the chaos
            self.tally.failure(f"chaos {type(e).__name__}", str(e))
        finally:
            with self._progress:
                self._halt.set()
                self._progress.notify_all()

    def _one(self, fault: Fault) -> None:
        print(f"[soak] fault: {fault} for {self.params.fault_hold:g}s", flush=True)
        self.tally.fault(fault.kind)
        self.current = fault
        try:
            if fault.kind == "drop":
                self.lab.portal_down(fault.portal)
            else:
                self.lab.set_latency(fault.portal, self.params.latency_ms)
            # Not cut short by finish(): the fault must be seen by the I/O
            # and the read-back whatever phase the round is in.
            time.sleep(self.params.fault_hold)
            t0 = time.monotonic()
            self.verify(str(fault))
            self.tally.took("read-back all volumes", time.monotonic() - t0)
        finally:
            if fault.kind == "drop":
                self.lab.portal_up(fault.portal)
            else:
                self.lab.set_latency(fault.portal, 0)
            self.current = None

    def describe(self) -> str:
        fault = self.current
        return str(fault) if fault else "no fault"

    def wait_faults(self, n: int, timeout: float) -> bool:
        """Wait until ``n`` faults of this round are over (or the chaos ended)."""
        with self._progress:
            return self._progress.wait_for(
                lambda: self.done >= n or self._halt.is_set(), timeout=timeout
            )

    def finish(self, timeout: float = 600) -> None:
        """Stop after the fault in progress (which is then restored)."""
        self._halt.set()
        self.join(timeout)
        if self.is_alive():
            self.tally.failure("chaos hung", f"fault thread alive after {timeout:g}s")
