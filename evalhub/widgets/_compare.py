"""ComparisonTable: runs x metrics grouped by task, with a baseline, deltas and the best marked."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import traitlets

from evalhub.widgets._base import EvalhubWidget, fmt_number, html_table, text_table
from evalhub.widgets._source import ClientLike, client_of, id_of, run_labels
from evalhub.widgets._static import esm_source

if TYPE_CHECKING:
    import polars as pl

# metrics where a smaller number is the better one
_LOWER_IS_BETTER = re.compile(
    r"(latency|_ms$|_s$|^time|perplexity|loss|mem|rss|_mb$|_gb$|bytes$|error|wer|cer|ter$|bits_per_byte)"
)
_INFO_COLUMNS = ("run_id", "label", "name", "model", "checkpoint", "step", "runtime", "task", "status")


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better (latency, memory, loss, perplexity, ...)."""
    return bool(_LOWER_IS_BETTER.search(metric)) and not metric.endswith("per_s")


class ComparisonTable(EvalhubWidget):
    """An experiment's runs side by side: one table per task, one column per metric.

    Pick a ``baseline`` (a configuration label) to see every other row's delta to it, coloured by
    whether it is better or worse; the best value of each column is marked; click a column to sort.

    >>> table = evalhub.compare(exp)
    >>> table.baseline = "step-100"
    >>> table.to_polars()
    """

    _esm = esm_source("compare.js")

    experiment_id = traitlets.Int(0).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    tasks = traitlets.List(traitlets.Dict()).tag(sync=True)
    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    baseline = traitlets.Unicode("").tag(sync=True)
    sort_by = traitlets.Unicode("").tag(sync=True)
    sort_desc = traitlets.Bool(True).tag(sync=True)
    lower_better = traitlets.List(traitlets.Unicode()).tag(sync=True)

    def __init__(self, exp: Any, *, hub: Any = None, baseline: str = "") -> None:
        super().__init__()
        self._client: ClientLike = client_of(exp, hub)
        self.experiment_id = id_of(exp, "an experiment")
        self._raw: list[dict[str, Any]] = []
        self.refresh()
        if baseline:
            self.baseline = baseline

    def refresh(self) -> None:
        """Read the comparison from the server again."""
        data = self._client.get(f"/api/experiments/{self.experiment_id}/compare")
        try:
            exp = self._client.get(f"/api/experiments/{self.experiment_id}")
            self.title = str(exp.get("name") or "")
        except Exception:
            self.title = ""
        runs = list(data.get("runs", []))
        labels = run_labels(runs)
        raw = []
        for run in runs:
            row = {k: run.get(k) for k in _INFO_COLUMNS if k != "label"}
            row["run_id"] = int(run["run_id"])
            row["label"] = labels[row["run_id"]]
            row["task"] = run.get("task") or ""
            row["metrics"] = {k: v for k, v in (run.get("metrics") or {}).items() if _finite(v)}
            raw.append(row)
        self._raw = raw
        self._rebuild()

    @traitlets.validate("baseline")
    def _check_baseline(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        if value and value not in self.labels:
            raise traitlets.TraitError(f"baseline {value!r} is not one of the runs: {', '.join(self.labels)}")
        return value

    @traitlets.observe("baseline", "sort_by", "sort_desc")
    def _on_view_change(self, change: dict[str, Any]) -> None:
        self._rebuild()

    def _rebuild(self) -> None:
        raw = self._raw
        order: list[str] = []
        for row in raw:
            if row["task"] not in order:
                order.append(row["task"])
        tasks = []
        out_rows: list[dict[str, Any]] = []
        lower: set[str] = set()
        for task in order:
            rows = [dict(r) for r in raw if r["task"] == task]
            metrics = sorted(
                {k for r in rows for k in r["metrics"] if not k.endswith("_stderr")}, key=_metric_order
            )
            lower.update(m for m in metrics if lower_is_better(m))
            base = next((r for r in rows if r["label"] == self.baseline), None)
            best: dict[str, float] = {}
            for m in metrics:
                values = [r["metrics"][m] for r in rows if isinstance(r["metrics"].get(m), (int, float))]
                if len(values) > 1:
                    best[m] = min(values) if lower_is_better(m) else max(values)
            for r in rows:
                values = r["metrics"]
                r["stderr"] = {m: values[f"{m}_stderr"] for m in metrics if f"{m}_stderr" in values}
                r["best"] = [m for m in metrics if m in best and values.get(m) == best[m]]
                r["is_baseline"] = base is r
                r["deltas"] = {}
                if base is not None and base is not r:
                    for m in metrics:
                        a, b = values.get(m), base["metrics"].get(m)
                        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
                            r["deltas"][m] = a - b
            if self.sort_by and (self.sort_by in metrics or self.sort_by in _INFO_COLUMNS):
                rows = _sorted(rows, self.sort_by, self.sort_desc)
            tasks.append({"task": task, "metrics": metrics, "runs": len(rows)})
            out_rows.extend(rows)
        with self.hold_sync():
            self.tasks = tasks
            self.rows = out_rows
            self.labels = list(dict.fromkeys(r["label"] for r in raw))
            self.lower_better = sorted(lower)

    def to_polars(self) -> pl.DataFrame:
        """One row per run: its configuration and one column per metric (stderr columns included)."""
        import polars as pl

        metrics = sorted({k for r in self._raw for k in r["metrics"]}, key=_metric_order)
        records = []
        for r in self._raw:
            rec = {k: r.get(k) for k in _INFO_COLUMNS}
            for m in metrics:
                v = r["metrics"].get(m)
                rec[m] = float(v) if v is not None else None
            records.append(rec)
        schema: dict[str, Any] = {
            "run_id": pl.Int64,
            "label": pl.Utf8,
            "name": pl.Utf8,
            "model": pl.Utf8,
            "checkpoint": pl.Utf8,
            "step": pl.Int64,
            "runtime": pl.Utf8,
            "task": pl.Utf8,
            "status": pl.Utf8,
        }
        schema.update({m: pl.Float64 for m in metrics})
        return pl.DataFrame(records, schema=schema, orient="row") if records else pl.DataFrame(schema=schema)

    def _table(self) -> tuple[list[str], list[list[Any]]]:
        metrics = [m for t in self.tasks for m in t["metrics"]]
        metrics = list(dict.fromkeys(metrics))
        header = ["task", "config", "status", *metrics]
        rows = []
        for r in self.rows:
            cells = []
            for m in metrics:
                v = r["metrics"].get(m)
                text = fmt_number(v) if v is not None else ""
                if m in r["best"]:
                    text += " *"
                if m in r["deltas"]:
                    text += f" ({r['deltas'][m]:+.3g})"
                cells.append(text)
            label = r["label"] + (" (baseline)" if r["is_baseline"] else "")
            rows.append([r["task"], label, r["status"], *cells])
        return header, rows

    def _text(self) -> str:
        head = f"Comparison of experiment {self.experiment_id} {self.title!r} (* best per column)"
        return head + "\n" + text_table(*self._table()) if self.rows else head + ": no runs"

    def _html(self) -> str:
        return html_table(*self._table(), caption=f"Experiment {self.experiment_id} {self.title} (* best)")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _metric_order(metric: str) -> tuple[int, str]:
    # quality metrics first, then performance ones
    return (1 if lower_is_better(metric) or metric.endswith("per_s") else 0, metric)


def _sorted(rows: list[dict[str, Any]], key: str, desc: bool) -> list[dict[str, Any]]:
    def value(r: dict[str, Any]) -> Any:
        return r["metrics"].get(key) if key not in _INFO_COLUMNS else r.get(key)

    present = [r for r in rows if value(r) is not None]
    missing = [r for r in rows if value(r) is None]
    present.sort(key=lambda r: value(r) if not isinstance(value(r), str) else str(value(r)), reverse=desc)
    return present + missing


def compare(exp: Any, *, hub: Any = None, baseline: str = "") -> ComparisonTable:
    """A :class:`ComparisonTable` of an experiment (an Experiment or its id)."""
    return ComparisonTable(exp, hub=hub, baseline=baseline)
