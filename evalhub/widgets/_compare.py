"""ComparisonTable: runs x metrics grouped by task, with a baseline, deltas and the best marked."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import traitlets

from evalhub._frames import comparison
from evalhub.metric_names import PERF_HIGHER_IS_BETTER, higher_is_better, parse_key
from evalhub.protocol.numbers import NAN, NEG_INF, POS_INF, number_from_wire
from evalhub.widgets._base import EvalhubWidget, fmt_number, html_table, text_table
from evalhub.widgets._source import ClientLike, client_of, id_of, run_labels
from evalhub.widgets._static import esm_source

if TYPE_CHECKING:
    import polars as pl

_INFO_COLUMNS = ("run_id", "label", "name", "model", "checkpoint", "step", "runtime", "task", "status")
SIGNIFICANCE = 0.05  # on the Holm-adjusted p-value


def lower_is_better(metric: str, known: dict[str, bool] | None = None) -> bool:
    """Whether a smaller value of ``metric`` is better: lm-eval's own direction of its metrics (``known``,
    from the runs), evalhub's own figures from :mod:`evalhub.metric_names`; False when unknown."""
    return higher_is_better(metric, known) is False


class ComparisonTable(EvalhubWidget):
    """An experiment's runs side by side: one table per task, one column per metric (a group's
    subtasks folded below it).

    Pick a ``baseline`` (a configuration label) to see every other row's delta to it: for a metric
    with per-sample scores, the paired delta with its 95% interval, marked significant on the
    Holm-adjusted p-value (:mod:`evalhub.services.comparison`); coloured by whether it is better or
    worse (lm-eval's own direction of its metrics). The best value of each column is marked; click a
    column to sort.

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
    stats_error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, exp: Any, *, hub: Any = None, baseline: str = "") -> None:
        super().__init__()
        self._client: ClientLike = client_of(exp, hub)
        self.experiment_id = id_of(exp, "an experiment")
        self._raw: list[dict[str, Any]] = []
        self._directions: dict[str, bool] = {}
        self._stats: dict[str, dict[int, dict[str, Any]]] = {}
        self._aggregations: dict[str, str] = {}
        self.refresh()
        if baseline:
            self.baseline = baseline

    def refresh(self) -> None:
        """Read the comparison from the server again."""
        data = comparison(self._client, self.experiment_id)
        try:
            exp = self._client.get(f"/api/experiments/{self.experiment_id}")
            self.title = str(exp.get("name") or "")
        except Exception:
            self.title = ""
        runs = list(data.get("runs", []))
        self._directions = dict(data.get("higher_is_better") or {})
        self._stats = {}
        labels = run_labels(runs)
        raw = []
        for run in runs:
            row = {k: run.get(k) for k in _INFO_COLUMNS if k != "label"}
            row["run_id"] = int(run["run_id"])
            row["label"] = labels[row["run_id"]]
            row["task"] = run.get("task") or ""
            # NaN and ±inf stay as the wire spells them ("NaN", "Infinity"): shown, never ranked
            row["metrics"] = {k: v for k, v in (run.get("metrics") or {}).items() if _shown(v)}
            raw.append(row)
        self._raw = raw
        self._aggregations = self._group_aggregations(runs)
        self._rebuild()

    def _group_aggregations(self, runs: list[dict[str, Any]]) -> dict[str, str]:
        """task -> how lm-eval aggregates its group's score ("acc: mean weighted by subtask size"), read
        from the provenance of one finished run of each task with subtask scores (its results.json)."""
        found: dict[str, str] = {}
        for run in runs:
            task = str(run.get("task") or "")
            metrics = run.get("metrics") or {}
            if task in found or run.get("status") != "completed":
                continue
            if not any(parse_key(k).subtask is not None for k in metrics):
                continue
            try:
                answer = self._client.request("GET", f"/api/runs/{int(run['run_id'])}/artifacts/results.json",
                                              raw=True)  # fmt: skip
                provenance = json.loads(answer.content).get("provenance") or {}
            except Exception:  # no results.json (not an lm-eval run), or unreadable: nothing to name
                found[task] = ""
                continue
            group = (provenance.get("groups") or {}).get(str(provenance.get("task") or ""))
            found[task] = str(group.get("aggregation_text") or "") if isinstance(group, dict) else ""
        return found

    @traitlets.validate("baseline")
    def _check_baseline(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        if value and value not in self.labels:
            raise traitlets.TraitError(f"baseline {value!r} is not one of the runs: {', '.join(self.labels)}")
        return value

    @traitlets.observe("baseline", "sort_by", "sort_desc")
    def _on_view_change(self, change: dict[str, Any]) -> None:
        self._rebuild()

    def _paired(self) -> dict[int, dict[str, Any]]:
        """run id -> the paired statistics of its metrics against the baseline (cached per baseline)."""
        if not self.baseline:
            return {}
        if self.baseline not in self._stats:
            from evalhub.services.comparison import SUFFIXES, paired_comparison

            by_label = {r["label"]: r["run_id"] for r in self._raw}
            target = by_label.get(self.baseline, self.baseline)
            found: dict[int, dict[str, Any]] = {}
            try:
                frame = paired_comparison(self._client, self.experiment_id, target)  # type: ignore[arg-type]
            except Exception as exc:  # the table still shows the plain differences
                self.stats_error = f"paired statistics unavailable: {exc}"
                frame = None
            if frame is not None:
                self.stats_error = ""
                tested = [c[: -len("_delta")] for c in frame.columns if c.endswith("_delta")]
                for row in frame.iter_rows(named=True):
                    found[int(row["run_id"])] = {
                        m: {s.lstrip("_"): row[m + s] for s in SUFFIXES} | {"test": row[m + "_test"]}
                        for m in tested
                        if row[m + "_delta"] is not None
                    }
            self._stats[self.baseline] = found
        return self._stats[self.baseline]

    def _rebuild(self) -> None:
        raw = self._raw
        known = self._directions
        order: list[str] = []
        for row in raw:
            if row["task"] not in order:
                order.append(row["task"])
        paired = self._paired()
        tasks = []
        out_rows: list[dict[str, Any]] = []
        lower: set[str] = set()
        for task in order:
            rows = [dict(r) for r in raw if r["task"] == task]
            keys = {k for r in rows for k in r["metrics"] if not parse_key(k).is_stderr}
            metrics = sorted(
                (k for k in keys if parse_key(k).subtask is None), key=lambda m: _metric_order(m, known)
            )
            folded = sorted(k for k in keys if parse_key(k).subtask is not None)  # a group's subtasks, folded
            lower.update(m for m in keys if lower_is_better(m, known))
            base = next((r for r in rows if r["label"] == self.baseline), None)
            best: dict[str, float] = {}
            for m in metrics:
                direction = higher_is_better(m, known)
                values = [r["metrics"][m] for r in rows if isinstance(r["metrics"].get(m), (int, float))]
                if len(values) > 1 and direction is not None:  # no direction known: nothing is "best"
                    best[m] = max(values) if direction else min(values)
            for r in rows:
                values = r["metrics"]
                r["stderr"] = {m: values[f"{m}_stderr"] for m in metrics if f"{m}_stderr" in values}
                r["best"] = [m for m in metrics if m in best and values.get(m) == best[m]]
                r["is_baseline"] = base is r
                r["deltas"], r["ci"], r["p_holm"], r["significant"] = {}, {}, {}, []
                if base is not None and base is not r:
                    tests = paired.get(r["run_id"], {})
                    for m in metrics:
                        if m in tests:  # the paired delta on the items both answered, with its interval
                            t = tests[m]
                            r["deltas"][m] = t["delta"]
                            r["ci"][m] = [t["delta_low"], t["delta_high"]]
                            r["p_holm"][m] = t["p_holm"]
                            if t["p_holm"] < SIGNIFICANCE:
                                r["significant"].append(m)
                            continue
                        a, b = values.get(m), base["metrics"].get(m)
                        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
                            r["deltas"][m] = a - b
            if self.sort_by and (self.sort_by in metrics or self.sort_by in _INFO_COLUMNS):
                rows = _sorted(rows, self.sort_by, self.sort_desc)
            tasks.append({"task": task, "metrics": metrics, "folded": folded, "runs": len(rows),
                          "aggregation": self._aggregations.get(task, "")})  # fmt: skip
            out_rows.extend(rows)
        with self.hold_sync():
            self.tasks = tasks
            self.rows = out_rows
            self.labels = list(dict.fromkeys(r["label"] for r in raw))
            self.lower_better = sorted(lower)

    def to_polars(self) -> pl.DataFrame:
        """One row per run: its configuration and one column per metric (stderr columns included)."""
        import polars as pl

        metrics = sorted(
            {k for r in self._raw for k in r["metrics"]}, key=lambda m: _metric_order(m, self._directions)
        )
        records = []
        for r in self._raw:
            rec = {k: r.get(k) for k in _INFO_COLUMNS}
            for m in metrics:
                v = r["metrics"].get(m)
                rec[m] = number_from_wire(v)
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
                    text += f" ({r['deltas'][m]:+.3g}"
                    if m in r["ci"]:
                        low, high = r["ci"][m]
                        text += f" [{low:+.3g}, {high:+.3g}]" + (" sig." if m in r["significant"] else "")
                    text += ")"
                cells.append(text)
            label = r["label"] + (" (baseline)" if r["is_baseline"] else "")
            rows.append([r["task"], label, r["status"], *cells])
        return header, rows

    def _text(self) -> str:
        head = f"Comparison of experiment {self.experiment_id} {self.title!r} (* best per column)"
        return head + "\n" + text_table(*self._table()) if self.rows else head + ": no runs"

    def _html(self) -> str:
        return html_table(*self._table(), caption=f"Experiment {self.experiment_id} {self.title} (* best)")


def _shown(value: Any) -> bool:
    """A metric value the table shows: a finite number, or a non-finite one as the wire spells it."""
    if isinstance(value, str):
        return value in (NAN, POS_INF, NEG_INF)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _metric_order(metric: str, known: dict[str, bool] | None = None) -> tuple[int, str]:
    # quality metrics first, then evalhub's performance figures
    return (1 if parse_key(metric).metric in PERF_HIGHER_IS_BETTER else 0, metric)


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
