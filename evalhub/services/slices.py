"""Error slicing: where a model fails. An experiment's samples of a task are cut into slices by a column
of the task's documents (``subject``), a derived feature (prompt or answer length bucket, lm-eval
subtask) or a judge's or person's label (a per-sample score key), and every metric with per-sample
scores is measured per slice and run: its mean with a confidence interval (Wilson for 0/1 metrics, a
bootstrap of 1,000 resamples otherwise), and against a baseline the paired delta with its interval and
p-value (McNemar for 0/1, paired bootstrap otherwise), Holm-adjusted across the slices and runs
compared. :func:`worst` ranks the slices where a candidate loses most.

Slice membership is a property of the item: a per-run feature (answer length, a judge's score) is read
from the baseline's run (the first run without a baseline), so every run is measured on the same items
of a slice and the deltas are paired.

>>> exp.slices(by="subject", baseline="step-100")       # polars: task, slice, run, metric, n, mean, …
>>> evalhub.services.slices.worst(frame, k=5)           # the most significant losses first
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evalhub.client import Client
from evalhub.errors import InvalidValue
from evalhub.metric_names import higher_is_better, parse_key
from evalhub.protocol import number_from_wire

if TYPE_CHECKING:
    import numpy as np
    import polars as pl
    from numpy.typing import NDArray

COLUMN_PAGE = 100_000
DERIVED = {
    "prompt_length": "prompt_chars",
    "answer_length": "output_chars",
    "output_length": "output_chars",
    "reference_length": "reference_chars",
}
"""Derived features and the column each is cut from (characters; bucketed, see ``bins``)."""
SUBTASK = ("task", "subtask")

COLUMNS = ["task", "by", "slice", "run_id", "label", "baseline", "metric", "n", "mean", "low", "high", "method",
           "delta", "delta_low", "delta_high", "p_value", "p_holm", "test"]  # fmt: skip
"""The slices frame's columns (the delta columns are null without a baseline and for the baseline's rows)."""


def read_columns(client: Client, run_id: int, fields: Sequence[str]) -> dict[str, list[Any]]:
    """A run's samples as columns (``keys`` plus each field), every page."""
    out: dict[str, list[Any]] = {"keys": [], **{f: [] for f in fields}}
    after = None
    while True:
        page = client.get(f"/runs/{int(run_id)}/columns", fields=list(fields), after=after, limit=COLUMN_PAGE)
        out["keys"].extend(page["keys"])
        for field in fields:
            out[field].extend(page["columns"].get(field) or [])
        after = page.get("next")
        if after is None:
            return out


def _field_of(by: str, score_keys: Sequence[str]) -> tuple[str, str]:
    """The column a ``by`` reads and how it becomes a slice (``bucket`` or ``value``)."""
    if by in DERIVED:
        return DERIVED[by], "bucket"
    if by in SUBTASK:
        return "task", "value"
    for prefix in ("score:", "doc:"):
        if by.startswith(prefix):
            return by, "value"
    if by in score_keys:
        return f"score:{by}", "value"
    return f"doc:{by}", "value"


def _buckets(values: Sequence[Any], bins: int | Sequence[float]) -> list[str | None]:
    """Numbers cut into buckets: ``bins`` equal-count buckets (quantile edges), or the given edges;
    labelled ``[lo, hi)`` (the last one closed)."""
    import numpy as np

    numbers = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    present = numbers[~np.isnan(numbers)]
    if present.size == 0:
        return [None] * len(values)
    if isinstance(bins, int):
        if bins < 1:
            raise InvalidValue(f"bins must be at least 1, got {bins}")
        edges = np.quantile(present, np.linspace(0, 1, bins + 1))
        if np.all(present == np.round(present)):  # counts (lengths): whole-number edges
            edges = np.concatenate([[edges[0]], np.ceil(edges[1:-1]), [edges[-1]]])
        edges = np.unique(edges)
    else:
        edges = np.unique(np.asarray(list(bins), dtype=np.float64))
    if edges.size < 2:
        edges = np.array([present.min(), present.max()])
    labels = [f"[{_num(lo)}, {_num(hi)})" for lo, hi in itertools.pairwise(edges)]
    labels[-1] = labels[-1][:-1] + "]"
    out: list[str | None] = []
    for value in numbers:
        if np.isnan(value) or value < edges[0] or value > edges[-1]:
            out.append(None)
            continue
        i = int(np.searchsorted(edges, value, side="right")) - 1
        out.append(labels[min(i, len(labels) - 1)])
    return out


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _label(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def score_columns(metrics: Sequence[str]) -> list[str]:
    """The per-sample score keys behind an experiment's summary metrics (``exact_match/strict-match``
    from ``mmlu_x:exact_match/strict-match``; stderr and evalhub's own figures have none)."""
    out: dict[str, None] = {}
    for metric in metrics:
        key = parse_key(metric)
        if (
            key.is_stderr
            or key.metric.startswith(("latency_", "ttft_"))
            or key.metric.endswith(("_per_s", "_mb"))
        ):
            continue
        out[key.metric if not key.filter else f"{key.metric}/{key.filter}"] = None
    return list(out)


def slices(
    client: Client,
    experiment_id: int,
    by: str,
    *,
    task: str | None = None,
    metrics: Sequence[str] | None = None,
    baseline: str | int | None = None,
    bins: int | Sequence[float] = 5,
    confidence: float = 0.95,
    resamples: int | None = None,
    seed: int = 0,
) -> pl.DataFrame:
    """Per slice of ``by``, run and metric: ``n``, ``mean`` with ``low``/``high`` (``method`` wilson or
    bootstrap); with a ``baseline``, ``delta``/``delta_low``/``delta_high``, ``p_value``, ``p_holm`` (across
    the slices and runs compared, per task and metric) and ``test`` (mcnemar or bootstrap). See the
    module docstring for what ``by`` may be; ``bins`` cuts a length into that many equal-count buckets
    (or at the given edges)."""
    import polars as pl

    from evalhub import stats
    from evalhub.services.comparison import baseline_runs

    answer = client.get(f"/experiments/{int(experiment_id)}/compare")
    runs = [r for r in answer.get("runs", []) if r.get("status") == "completed"]
    tasks = sorted({str(r["task"]) for r in runs if r.get("task")})
    if task is not None:
        if task not in tasks:
            raise InvalidValue(
                f"experiment {experiment_id} has no completed runs of task {task!r} ({', '.join(tasks)})"
            )
        tasks = [task]
    if not tasks:
        raise InvalidValue(f"experiment {experiment_id} has no completed runs to slice")
    known = score_columns(answer.get("metrics", []))
    wanted = list(metrics) if metrics is not None else known
    directions = dict(answer.get("higher_is_better") or {})
    bases = baseline_runs({"runs": runs}, baseline) if baseline is not None else {}
    labels = _labels(runs)
    frames = []
    for name in tasks:
        members = [r for r in runs if str(r.get("task")) == name]
        base_id = bases.get(name)
        order = sorted(members, key=lambda r: (int(r["run_id"]) != base_id, int(r["run_id"])))
        field, how = _field_of(by, known)
        fields = [f"score:{m}" for m in wanted]
        columns = {int(r["run_id"]): read_columns(client, int(r["run_id"]), fields) for r in order}
        reference = int(order[0]["run_id"])
        feature = read_columns(client, reference, [field])
        values = feature[field]
        if all(v is None for v in values):
            raise InvalidValue(_no_feature(client, reference, by, field))
        cut = _buckets(values, bins) if how == "bucket" else [_label(v) for v in values]
        slice_of = dict(zip(feature["keys"], cut, strict=True))
        keys = [k for k in columns[reference]["keys"] if slice_of.get(k) is not None]
        rows = _measure(
            name, by, keys, slice_of, order, columns, wanted, base_id, labels, directions, confidence,
            resamples, seed, stats,
        )  # fmt: skip
        frames.append(rows)
    table = [row for rows in frames for row in rows]
    return pl.DataFrame(table, schema=_schema(), orient="row")


def _labels(runs: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """Short run labels: the parts (model, checkpoint, runtime) that vary across the runs."""
    parts = [p for p in ("model", "checkpoint", "runtime") if len({r.get(p) for r in runs}) > 1] or [
        "checkpoint"
    ]
    return {
        int(r["run_id"]): " · ".join(str(r.get(p)) for p in parts if r.get(p)) or str(r.get("name"))
        for r in runs
    }


def _no_feature(client: Client, run_id: int, by: str, field: str) -> str:
    sample = next(iter(client.get(f"/runs/{run_id}/samples", limit=1).get("items") or []), None)
    doc = ((sample or {}).get("extra") or {}).get("doc") or {}
    derived = ", ".join([*DERIVED, "subtask"])
    if field.startswith("doc:"):
        have = ", ".join(sorted(doc)) or "none (the run kept no document columns)"
        return (f"no sample of run {run_id} has {by!r}: not a column of the task's documents ({have}), "
                f"a derived feature ({derived}) or a per-sample score")  # fmt: skip
    return f"no sample of run {run_id} has a value for {by!r} ({field})"


def _schema() -> dict[str, Any]:
    import polars as pl

    return {
        "task": pl.String, "by": pl.String, "slice": pl.String, "run_id": pl.Int64, "label": pl.String,
        "baseline": pl.Int64, "metric": pl.String, "n": pl.Int64, "mean": pl.Float64, "low": pl.Float64,
        "high": pl.Float64, "method": pl.String, "delta": pl.Float64, "delta_low": pl.Float64,
        "delta_high": pl.Float64, "p_value": pl.Float64, "p_holm": pl.Float64, "test": pl.String,
        "higher_is_better": pl.Boolean,
    }  # fmt: skip


def _measure(
    task: str,
    by: str,
    keys: list[str],
    slice_of: Mapping[str, str | None],
    order: list[Mapping[str, Any]],
    columns: Mapping[int, Mapping[str, list[Any]]],
    metrics: Sequence[str],
    base_id: int | None,
    labels: Mapping[int, str],
    directions: Mapping[str, bool],
    confidence: float,
    resamples: int | None,
    seed: int,
    stats: Any,
) -> list[dict[str, Any]]:
    import numpy as np
    import polars as pl

    run_ids = [int(r["run_id"]) for r in order]
    # one matrix per metric: runs x items, aligned on the items' keys (NaN where a run has no value)
    frame = pl.DataFrame({"sample_key": keys}, schema={"sample_key": pl.String})
    for rid in run_ids:
        col = columns[rid]
        data: dict[str, Any] = {"sample_key": col["keys"]}
        for metric in metrics:
            data[f"{rid}:{metric}"] = [
                v if type(v) is float else _number(v) for v in col.get(f"score:{metric}") or []
            ]
        schema = {"sample_key": pl.String, **{f"{rid}:{m}": pl.Float64 for m in metrics}}
        frame = frame.join(pl.DataFrame(data, schema=schema), on="sample_key", how="left")
    matrices: dict[str, NDArray[np.float64]] = {}
    for metric in metrics:
        matrix = frame.select([f"{rid}:{metric}" for rid in run_ids]).to_numpy().T.astype(np.float64)
        if not np.all(np.isnan(matrix)):
            matrices[metric] = matrix
    names = [str(slice_of[k]) for k in keys]  # the keys kept are those with a slice
    slice_names = sorted(set(names), key=_natural)
    position = {name: i for i, name in enumerate(slice_names)}
    codes = np.fromiter((position[name] for name in names), dtype=np.int64, count=len(names))
    by_slice = np.argsort(codes, kind="stable")  # each slice's items in their order
    bounds = np.searchsorted(codes[by_slice], np.arange(len(slice_names) + 1))
    members = {name: by_slice[bounds[i] : bounds[i + 1]] for i, name in enumerate(slice_names)}
    base_row = run_ids.index(base_id) if base_id is not None else None
    rows: list[dict[str, Any]] = []
    draws = resamples or stats.SLICE_RESAMPLES
    for metric, matrix in matrices.items():
        binary = bool(stats.is_binary(matrix))
        direction = higher_is_better(metric, directions)
        tested: list[dict[str, Any]] = []
        for name in slice_names:
            part = matrix[:, members[name]]
            estimates, drawn = _estimates(part, binary, confidence, draws, seed, stats, base_row)
            paired: dict[int, Any] = {}
            if base_row is not None:
                paired = _paired(part, base_row, binary, confidence, draws, seed, stats, drawn)
            for row, rid in enumerate(run_ids):
                e = estimates[row]
                entry = {"task": task, "by": by, "slice": name, "run_id": rid, "label": labels.get(rid, str(rid)),
                         "baseline": base_id, "metric": metric, "n": e.n, "mean": e.mean, "low": e.low, "high": e.high,
                         "method": e.method, "delta": None, "delta_low": None, "delta_high": None, "p_value": None,
                         "p_holm": None, "test": None, "higher_is_better": direction}  # fmt: skip
                if row in paired:
                    c = paired[row]
                    entry.update(
                        delta=c.delta, delta_low=c.low, delta_high=c.high, p_value=c.p_value, test=c.method
                    )
                    tested.append(entry)
                rows.append(entry)
        if tested:
            adjusted = stats.holm([_nan(e["p_value"]) for e in tested])
            for entry, value in zip(tested, adjusted, strict=True):
                entry["p_holm"] = None if math.isnan(value) else float(value)
    for entry in rows:
        for key in ("mean", "low", "high", "delta", "delta_low", "delta_high", "p_value"):
            value = entry[key]
            if value is not None and isinstance(value, float) and math.isnan(value) and key != "mean":
                entry[key] = None
    return rows


def _number(value: Any) -> float | None:
    return number_from_wire(value) if isinstance(value, str) else (None if value is None else float(value))


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def _natural(name: str) -> tuple[Any, ...]:
    """Slices in a readable order: numbers and buckets by their value, text alphabetically."""
    text = name.lstrip("[")
    head = text.split(",")[0]
    try:
        return (0, float(head), name)
    except ValueError:
        return (1, 0.0, name)


def _estimates(part: NDArray[np.float64], binary: bool, confidence: float, resamples: int, seed: int,
               stats: Any, base_row: int | None = None) -> tuple[list[Any], dict[int, Any] | None]:  # fmt: skip
    """:func:`evalhub.stats.mean_interval` of each run's values of one slice and, with a ``base_row``,
    each other run's resampled mean differences to it (``{row: means}``). When no run misses an item,
    the bootstrap's resampled items are drawn once (the same draw each run's own call would make from
    ``seed``) for the baseline and the differences: the paired answers are exactly ``paired_compare``'s;
    a candidate's resampled means are the baseline's plus its differences, so its interval equals
    ``mean_interval``'s up to floating-point rounding."""
    import numpy as np

    from evalhub.stats._bootstrap import percentile_interval, resampled_means

    complete = not np.any(np.isnan(part))
    if binary or not complete or part.shape[1] < 2:
        return [stats.mean_interval(row, binary=binary, confidence=confidence, resamples=resamples, seed=seed)
                for row in part], None  # fmt: skip
    others = [row for row in range(part.shape[0]) if base_row is not None and row != base_row]
    if base_row is None or not others:
        means = resampled_means(part, resamples, seed)
        differences: dict[int, Any] = {}
    else:  # the baseline and the differences drawn; a candidate's means follow from them
        drawn = resampled_means(np.vstack([part[base_row : base_row + 1], part[others] - part[base_row]]),
                                resamples, seed)  # fmt: skip
        differences = {row: drawn[1 + i] for i, row in enumerate(others)}
        means = np.empty((part.shape[0], resamples), dtype=np.float64)
        means[base_row] = drawn[0]
        for row, diff in differences.items():
            means[row] = drawn[0] + diff
    out = []
    for row, resampled in zip(part, means, strict=True):
        if np.all(row == row[0]):
            out.append(
                stats.mean_interval(row, binary=False, confidence=confidence, resamples=resamples, seed=seed)
            )
            continue
        low, high = percentile_interval(resampled, confidence)
        out.append(
            stats.Estimate(
                float(row.mean()), low, high, int(row.size), "bootstrap", confidence, resamples, seed
            )
        )
    return out, differences if others else None


def _paired(part: NDArray[np.float64], base_row: int, binary: bool, confidence: float, resamples: int,
            seed: int, stats: Any, drawn: dict[int, Any] | None = None) -> dict[int, Any]:  # fmt: skip
    """:func:`evalhub.stats.paired_compare_many` of every other run against the baseline's row; from
    the resampled differences :func:`_estimates` drew (``drawn``) where it did, with the same answer."""
    candidates = {str(row): part[row] for row in range(part.shape[0]) if row != base_row}
    if not candidates:
        return {}
    if drawn is not None:
        from evalhub.stats._paired import paired_bootstrap_drawn

        return {
            row: paired_bootstrap_drawn(part[base_row], part[row], means, confidence=confidence,
                                        resamples=resamples, seed=seed)
            for row, means in drawn.items()
        }  # fmt: skip
    results = stats.paired_compare_many(
        part[base_row], candidates, binary=binary, confidence=confidence, resamples=resamples, seed=seed
    )
    return {int(name): result for name, result in results.items()}


def worst(frame: pl.DataFrame, k: int = 10, alpha: float = 0.05) -> pl.DataFrame:
    """The slices where a candidate loses to the baseline most, by significance: rows whose delta goes
    the wrong way (per the metric's direction), ordered by Holm-adjusted p-value, then by the size of
    the loss; ``significant`` marks those with ``p_holm <= alpha``."""
    import polars as pl

    if frame.is_empty() or frame["delta"].null_count() == frame.height:
        raise InvalidValue("worst() needs slices compared with a baseline: slices(..., baseline=...)")
    sign = pl.when(pl.col("higher_is_better") == False).then(-1.0).otherwise(1.0)  # noqa: E712
    losing = frame.filter(pl.col("delta").is_not_null()).with_columns((pl.col("delta") * sign).alias("gain"))
    losing = losing.filter(pl.col("gain") < 0)
    ranked = losing.sort(["p_holm", "gain"], nulls_last=True).with_columns(
        (pl.col("p_holm") <= alpha).fill_null(False).alias("significant")
    )
    return ranked.drop("gain").head(k)


__all__ = ["COLUMNS", "DERIVED", "read_columns", "score_columns", "slices", "worst"]
