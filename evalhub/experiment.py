"""A handle on an experiment: its status, its runs, the comparison table and the aligned samples.

>>> exp = hub.run_experiment("spec.yaml", wait=False)
>>> exp.wait(timeout=600)
>>> exp.compare()                 # one row per run, one column per metric
>>> exp.samples(task="arith-add") # one row per sample, each run's output side by side
"""

from __future__ import annotations

import html
import threading
import time
from typing import TYPE_CHECKING, Any

from evalhub.errors import EvalhubError

if TYPE_CHECKING:
    import polars as pl

    from evalhub.hub import Hub

ACTIVE = ("queued", "running")


class Experiment:
    """An experiment on the tracking server; everything is read from the server when asked."""

    def __init__(self, hub: Hub, experiment_id: int, data: dict[str, Any] | None = None) -> None:
        self.hub = hub
        self.id = int(experiment_id)
        self._data = data
        self._driver: threading.Thread | None = None
        self._driver_error: BaseException | None = None
        self.executor: Any = None

    # -- reads ------------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """The experiment as the server has it now (status, counts, progress, spec)."""
        data: dict[str, Any] = self.hub.client.get(f"/experiments/{self.id}")
        self._data = data
        return data

    @property
    def name(self) -> str:
        """The experiment's name."""
        data = self._data or self.info()
        return str(data.get("name"))

    def status(self) -> str:
        """``queued``, ``running``, ``completed``, ``failed`` or ``cancelled`` (derived from its runs)."""
        return str(self.info().get("status"))

    def runs(self) -> pl.DataFrame:
        """The experiment's runs as a DataFrame."""
        return self.hub.runs(experiment_id=self.id)

    def compare(self) -> pl.DataFrame:
        """One row per run, one column per metric."""
        return self.hub.compare(self.id)

    def samples(
        self, task: str | None = None, filter: str = "all", q: str | None = None, limit: int | None = None
    ) -> pl.DataFrame:
        """Per-sample outputs of every run of ``task``, aligned by sample key.

        Columns: ``sample_key, index, prompt, reference``, then for each run ``<label>`` (its filtered
        output) and ``<label>:score`` (its primary score). ``filter`` is ``all``, ``disagree``,
        ``any_wrong`` or ``all_wrong``; ``q`` a text search.
        """
        import polars as pl

        page_size = 200 if limit is None else min(200, limit)
        rows: list[dict[str, Any]] = []
        labels: dict[str, str] = {}
        offset = 0
        while True:
            answer = self.hub.client.get(
                f"/experiments/{self.id}/samples",
                task=task,
                filter=filter,
                q=q,
                limit=page_size,
                offset=offset,
            )
            for run in answer.get("runs", []):
                labels[str(run["run_id"])] = str(run.get("label") or run["run_id"])
            items = answer.get("items", [])
            for item in items:
                row: dict[str, Any] = {k: item.get(k) for k in ("sample_key", "index", "prompt", "reference")}
                outputs = item.get("outputs") or {}
                for run_id, label in labels.items():
                    out = outputs.get(run_id) or {}
                    text = out.get("filtered_output")
                    row[label] = text if text is not None else out.get("output")
                    row[f"{label}:score"] = out.get("primary_score")
                rows.append(row)
            offset += len(items)
            total = int(answer.get("total", 0))
            if not items or offset >= total or (limit is not None and len(rows) >= limit):
                break
        schema: dict[str, Any] = {
            "sample_key": pl.String,
            "index": pl.Int64,
            "prompt": pl.String,
            "reference": pl.String,
        }
        for label in labels.values():
            schema[label] = pl.String
            schema[f"{label}:score"] = pl.Float64
        rows = rows if limit is None else rows[:limit]
        return pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema, orient="row")

    # -- control ----------------------------------------------------------------------------------

    def cancel(self) -> Experiment:
        """Cancel every queued or running run (running ones stop between batches)."""
        self._data = self.hub.client.post(f"/experiments/{self.id}/cancel", {})
        return self

    def wait(self, timeout: float | None = None, progress: bool = False, poll: float = 0.5) -> Experiment:
        """Block until no run is queued or running (or ``timeout`` seconds pass: ``TimeoutError``).

        ``progress=True`` shows a progress bar over all runs' progress.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = _bar(self) if progress else None
        try:
            while True:
                data = self.info()
                if bar is not None:
                    _update_bar(bar, data)
                driver_alive = self._driver is not None and self._driver.is_alive()
                if data.get("status") not in ACTIVE and not driver_alive:
                    break
                if self._driver is not None and not driver_alive and self._driver_error is not None:
                    raise EvalhubError(
                        f"the driver of experiment {self.id} stopped: {self._driver_error}"
                    ) from self._driver_error
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"experiment {self.id} still {data.get('status')} after {timeout}s")
                time.sleep(poll)
        finally:
            if bar is not None:
                bar.close()
        if self._driver_error is not None:
            raise EvalhubError(f"the driver of experiment {self.id} stopped: {self._driver_error}")
        return self

    def done(self) -> bool:
        """True when no run is queued or running."""
        return self.status() not in ACTIVE

    def failed_runs(self) -> list[dict[str, Any]]:
        """The runs that ended ``failed``, with their errors."""
        return list(self.hub.client.paged(f"/experiments/{self.id}/runs", status="failed"))

    # -- display ----------------------------------------------------------------------------------

    def __repr__(self) -> str:
        try:
            data = self.info()
        except EvalhubError:
            return f"Experiment(id={self.id})"
        counts = data.get("counts") or {}
        progress = data.get("progress") or {}
        parts = ", ".join(f"{k}={v}" for k, v in counts.items() if v)
        return (
            f"Experiment(id={self.id}, name={data.get('name')!r}, status={data.get('status')!r}, "
            f"runs: {parts or 'none'}, progress {progress.get('done', 0)}/{progress.get('total') or '?'})"
        )

    def _repr_html_(self) -> str:
        try:
            data = self.info()
            table = self.compare()
        except EvalhubError as exc:
            return f"<pre>{html.escape(repr(self))}: {html.escape(str(exc))}</pre>"
        counts = data.get("counts") or {}
        summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        head = (
            f"<b>Experiment {self.id}</b> <code>{html.escape(str(data.get('name')))}</code> — "
            f"{html.escape(str(data.get('status')))} ({html.escape(summary)})"
        )
        cols = [c for c in table.columns if c not in ("run_id", "name")]
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(row.get(c)))}</td>" for c in cols) + "</tr>"
            for row in table.iter_rows(named=True)
        )
        header = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        return f"<div>{head}<table><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table></div>"


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _bar(exp: Experiment) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=0, desc=f"experiment {exp.id}", unit="req", dynamic_ncols=True)


def _update_bar(bar: Any, data: dict[str, Any]) -> None:
    progress = data.get("progress") or {}
    total = int(progress.get("total") or 0)
    done = int(progress.get("done") or 0)
    counts = data.get("counts") or {}
    if total and bar.total != total:
        bar.total = total
    bar.n = min(done, total) if total else done
    bar.set_postfix_str(" ".join(f"{k}={v}" for k, v in counts.items() if v), refresh=False)
    bar.refresh()


def table_text(frame: pl.DataFrame, metrics: list[str] | None = None) -> str:
    """A comparison DataFrame as a plain-text table (what the CLI prints)."""
    base = [c for c in ("model", "checkpoint", "step", "runtime", "task", "status") if c in frame.columns]
    skip = {"run_id", "name", *base}
    cols = base + (metrics if metrics is not None else [c for c in frame.columns if c not in skip])
    rows = [[_fmt(r.get(c)) for c in cols] for r in frame.iter_rows(named=True)]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


__all__ = ["Experiment", "table_text"]
