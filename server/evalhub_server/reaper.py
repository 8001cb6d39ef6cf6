"""The reaper: a thread of the server that declares lost every running attempt whose lease lapsed
(:meth:`RunStore.reap`), so no run claims ``running`` without a live worker, whatever died.

After the server starts, leases get one lease of grace before the first sweep: a worker that kept
trying while the server was down has that long to be heard again. Several server processes on one
database each run a reaper; a run changes once (see :meth:`RunStore.reap`).
"""

from __future__ import annotations

import logging
import threading
import time

from .runs import RunStore

log = logging.getLogger("evalhub_server.reaper")


class Reaper:
    """``start()`` a daemon thread that sweeps every quarter lease (at least every 15 s); ``stop()``."""

    def __init__(self, runs: RunStore, lease_s: float) -> None:
        self.runs = runs
        self.lease_s = lease_s
        self.interval = min(15.0, max(0.25, lease_s / 4))
        self.not_before = time.time() + lease_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="evalhub-reaper", daemon=True)

    def start(self) -> Reaper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if time.time() < self.not_before:
                continue
            try:
                changed = self.runs.reap()
            except Exception:  # the database may be away for a while: try again next sweep
                log.exception("evalhub: reaping lapsed leases failed")
                continue
            if changed:
                log.info("evalhub: %d runs lost their lease", changed)
