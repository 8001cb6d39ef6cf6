"""RunMonitor: a live row per run of an experiment (status, progress, throughput, ETA, error)."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import traitlets

from evalhub.protocol import TERMINAL
from evalhub.widgets._base import EvalhubWidget, html_table, text_table
from evalhub.widgets._source import ClientLike, client_of, id_of, parse_time, run_labels
from evalhub.widgets._static import esm_source


class RunMonitor(EvalhubWidget):
    """Live status of an experiment's runs.

    A background thread polls the tracking server every ``interval`` seconds and updates the
    traits; it stops by itself once every run is terminal (completed, failed or cancelled).

    >>> mon = evalhub.monitor(exp)      # displays live in a notebook
    >>> mon.wait()                      # block until every run is terminal
    """

    _esm = esm_source("monitor.js")

    experiment_id = traitlets.Int(0).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    runs = traitlets.List(traitlets.Dict()).tag(sync=True)
    counts = traitlets.Dict().tag(sync=True)
    dashboard_url = traitlets.Unicode("").tag(sync=True)
    live = traitlets.Bool(False).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    updated_at = traitlets.Float(0.0).tag(sync=True)
    terminal = traitlets.List(default_value=list(TERMINAL)).tag(sync=True)  # statuses after which a run is done

    def __init__(
        self,
        exp: Any,
        *,
        hub: Any = None,
        interval: float = 1.0,
        dashboard_url: str | None = None,
        start: bool = True,
    ) -> None:
        super().__init__()
        self._client: ClientLike = client_of(exp, hub)
        self.experiment_id = id_of(exp, "an experiment")
        self.interval = interval
        self._explicit_dashboard = dashboard_url or getattr(exp, "dashboard_url", None) or ""
        self._executor = getattr(exp, "executor", None)  # run_experiment's executor knows Ray's dashboard
        self._exp = exp if not isinstance(exp, (int, str, dict)) else None
        self._seen: dict[int, tuple[float, int]] = {}  # run id -> (when, done) at the last poll
        self._rate: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.refresh()
        if start and not self.done:
            self.start()

    @property
    def done(self) -> bool:
        """True when every run is terminal (and there is at least one run)."""
        return bool(self.runs) and all(r["status"] in TERMINAL for r in self.runs)

    @property
    def stalled(self) -> bool:
        """True when the driver that runs this experiment in this process stopped with an error."""
        return bool(self._driver_error())

    def _driver_error(self) -> str:
        # run_experiment(wait=False) drives the runs from a thread of this process; if it died
        # (Ray did not start, ...) the runs stay queued: say why instead of polling forever.
        error = getattr(self._exp, "_driver_error", None)
        driver = getattr(self._exp, "_driver", None)
        if error is None or (driver is not None and driver.is_alive()):
            return ""
        return f"the driver of experiment {self.experiment_id} stopped: {error}"

    def refresh(self) -> None:
        """Read the experiment and its runs once and update the traits."""
        with self._lock:
            try:
                exp = self._client.get(f"/api/experiments/{self.experiment_id}")
                runs = list(self._client.paged(f"/api/experiments/{self.experiment_id}/runs"))
            except Exception as exc:  # shown in the widget; the poller keeps trying
                self.error = f"{type(exc).__name__}: {exc}"
                return
            now = time.time()
            labels = run_labels(runs)
            rows = [self._row(run, labels, now) for run in runs]
            with self.hold_sync():
                self.title = str(exp.get("name") or f"experiment {self.experiment_id}")
                self.status = str(exp.get("status", ""))
                self.counts = dict(exp.get("counts") or {})
                self.runs = rows
                self.dashboard_url = self._dashboard(exp, runs)
                self.error = self._driver_error()
                self.updated_at = now

    def _row(self, run: dict[str, Any], labels: dict[int, str], now: float) -> dict[str, Any]:
        run_id = int(run["id"])
        progress = run.get("progress") or {}
        done = int(progress.get("done") or 0)
        total = int(progress.get("total") or 0)
        started = parse_time(run.get("started_at"))
        ended = parse_time(run.get("ended_at"))
        status = str(run.get("status", ""))
        elapsed = max(0.0, (ended or now) - started) if started else None
        # throughput: from what this monitor saw between polls, else the run's average so far
        previous = self._seen.get(run_id)
        if previous is not None and done > previous[1] and now > previous[0]:
            instant = (done - previous[1]) / (now - previous[0])
            old = self._rate.get(run_id)
            self._rate[run_id] = instant if old is None else 0.5 * old + 0.5 * instant
        self._seen[run_id] = (now, done)
        rate = self._rate.get(run_id)
        if rate is None and elapsed and elapsed > 0.5 and done:
            rate = done / elapsed
        eta = (total - done) / rate if status == "running" and rate and total > done else None
        return {
            "run_id": run_id,
            "label": labels.get(run_id, run.get("name", "")),
            "name": run.get("name", ""),
            "task": run.get("task") or "",
            "status": status,
            "done": done,
            "total": total,
            "throughput": rate,
            "elapsed_s": elapsed,
            "eta_s": eta,
            "attempt": run.get("attempt") or 1,
            "error": run.get("error") or "",
            "worker": run.get("worker") or {},
        }

    def _dashboard(self, exp: dict[str, Any], runs: list[dict[str, Any]]) -> str:
        url = self._explicit_dashboard or getattr(self._executor, "dashboard_url", None) or ""
        if not url:
            config = exp.get("config") or {}
            url = config.get("ray_dashboard_url") or config.get("dashboard_url") or ""
        if not url:
            for run in runs:
                url = (run.get("worker") or {}).get("dashboard_url") or ""
                if url:
                    break
        if not url and "ray" in sys.modules:  # never import ray just for a link
            ray = sys.modules["ray"]
            try:
                if ray.is_initialized():
                    url = ray.get_dashboard_url() or ""
            except Exception:
                url = ""
        if url and "://" not in url:
            url = "http://" + url
        return str(url)

    def start(self) -> None:
        """Start polling in the background (no-op when already polling)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self.live = True
        self._thread = threading.Thread(
            target=self._poll, name=f"evalhub-monitor-{self.experiment_id}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.live = False

    def _poll(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self.refresh()
                if self.done or self.stalled:
                    break
        finally:
            self.live = False

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every run is terminal (polling meanwhile); True if they all are."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done and not self.stalled:
            if deadline is not None and time.monotonic() >= deadline:
                break
            if self._thread is None or not self._thread.is_alive():
                self.refresh()
                if self.done or self.stalled:
                    break
            time.sleep(min(self.interval, 0.5))
        return self.done

    def _table(self) -> tuple[list[str], list[list[Any]]]:
        header = ["run", "config", "task", "status", "progress", "samples/s", "elapsed", "eta", "error"]
        rows = []
        for r in self.runs:
            rate = r.get("throughput")
            rows.append(
                [
                    r["run_id"],
                    r["label"],
                    r["task"],
                    r["status"],
                    f"{r['done']}/{r['total']}" if r["total"] else str(r["done"]),
                    f"{rate:.1f}" if rate else "",
                    _duration(r.get("elapsed_s")),
                    _duration(r.get("eta_s")),
                    (r.get("error") or "")[:80],
                ]
            )
        return header, rows

    def _text(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items() if v)
        head = f"Experiment {self.experiment_id} {self.title!r}: {self.status} ({counts})"
        if self.error:
            head += f"\n{self.error}"
        if not self.runs:
            return head
        return head + "\n" + text_table(*self._table())

    def _html(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items() if v)
        return html_table(
            *self._table(), caption=f"Experiment {self.experiment_id} {self.title}: {self.status} ({counts})"
        )


def _duration(seconds: Any) -> str:
    if seconds is None:
        return ""
    s = round(float(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def monitor(
    exp: Any, *, hub: Any = None, interval: float = 1.0, dashboard_url: str | None = None
) -> RunMonitor:
    """A live :class:`RunMonitor` of an experiment (an Experiment or its id)."""
    return RunMonitor(exp, hub=hub, interval=interval, dashboard_url=dashboard_url)
