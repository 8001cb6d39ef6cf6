"""API objects as polars DataFrames: one definition of each list's columns, and of how series points,
comparisons and nested values become columns."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evalhub.protocol import number_from_wire

if TYPE_CHECKING:
    import polars as pl

# Column order of each list read (other fields follow).
COLUMNS: dict[str, list[str]] = {
    "families": ["id", "name", "modality", "description", "created_at"],
    "models": ["id", "name", "family", "runtime", "code_uri", "adapter", "created_at"],
    "checkpoints": ["id", "model", "name", "step", "epoch", "uri", "run_id", "created_at"],
    "datasets": ["id", "name", "version", "uri", "num_rows", "content_hash", "created_at"],
    "tasks": ["id", "name", "type", "dataset", "engine", "metrics", "created_at"],
    "benchmarks": ["id", "name", "tasks", "created_at"],
    "experiments": ["id", "name", "status", "counts", "progress", "created_at"],
    "runs": [
        "id",
        "name",
        "type",
        "status",
        "experiment_id",
        "model",
        "checkpoint",
        "step",
        "runtime",
        "task",
        "attempt",
        "error",
        "created_at",
        "started_at",
        "ended_at",
    ],
}

COMPARE_BASE = ["run_id", "name", "model", "checkpoint", "step", "runtime", "task", "status"]


def frame(items: Sequence[Mapping[str, Any]], columns: Sequence[str] = ()) -> pl.DataFrame:
    """A DataFrame of API objects: nested objects become JSON text, lists of strings stay lists."""
    import polars as pl

    names: list[str] = list(columns)
    for item in items:
        for key in item:
            if key not in names:
                names.append(key)
    data: dict[str, list[Any]] = {name: [] for name in names}
    for item in items:
        for name in names:
            value = item.get(name)
            if isinstance(value, dict) or (
                isinstance(value, list) and not all(isinstance(v, str) for v in value)
            ):
                value = json.dumps(value, sort_keys=True)
            data[name].append(value)
    series = []
    for name, values in data.items():
        if any(isinstance(v, list) for v in values):
            series.append(pl.Series(name, values, dtype=pl.List(pl.String)))
        elif all(v is None for v in values):
            series.append(pl.Series(name, values, dtype=pl.String))
        else:
            series.append(pl.Series(name, values, strict=False))
    return pl.DataFrame(series)


def kind_frame(kind: str, items: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """A list of one kind (``runs``, ``models``, …) with its columns first."""
    return frame(items, COLUMNS.get(kind, ()))


def point(p: Mapping[str, Any]) -> dict[str, Any]:
    """A series point of the API as a row (``"NaN"``/``"Infinity"`` strings back to floats)."""
    value = number_from_wire(p.get("value"))
    return {
        "step": p.get("step"),
        "value": value,
        "min": number_from_wire(p["min"]) if "min" in p else value,
        "max": number_from_wire(p["max"]) if "max" in p else value,
        "wall_time": p.get("wall_time"),
    }


def series_frame(points: Iterable[Mapping[str, Any]], run_id: int | None = None) -> pl.DataFrame:
    """Points as ``step, value, min, max, wall_time`` (with ``run_id`` first when given)."""
    # one pass into columns (a full read is hundreds of thousands of points: no dict per row)
    steps: list[Any] = []
    values: list[float | None] = []
    lows: list[float | None] = []
    highs: list[float | None] = []
    walls: list[Any] = []
    for p in points:
        value = number_from_wire(p.get("value"))
        steps.append(p.get("step"))
        values.append(value)
        lows.append(number_from_wire(p["min"]) if "min" in p else value)
        highs.append(number_from_wire(p["max"]) if "max" in p else value)
        walls.append(p.get("wall_time"))
    return _series(steps, values, lows, highs, walls, run_id)


def raw_frame(page: Mapping[str, Any]) -> pl.DataFrame:
    """One page of raw points (``step``, ``value`` and ``wall_time`` columns, as ``GET
    …/series/points`` answers) as the frame :func:`series_frame` makes (``min == max == value``)."""
    values = number_column(page.get("value", []))
    return _series(page.get("step", []), values, values, values, page.get("wall_time", []))


def _series(
    steps: list[Any], values: list[Any], lows: list[Any], highs: list[Any], walls: list[Any],
    run_id: int | None = None,
) -> pl.DataFrame:  # fmt: skip
    """The one shape of a series frame: ``step, value, min, max, wall_time`` (``run_id`` first)."""
    import polars as pl

    schema: dict[str, Any] = {
        "step": pl.Int64,
        "value": pl.Float64,
        "min": pl.Float64,
        "max": pl.Float64,
        "wall_time": pl.Float64,
    }
    columns: dict[str, Any] = {"step": steps, "value": values, "min": lows, "max": highs, "wall_time": walls}
    if run_id is not None:
        schema = {"run_id": pl.Int64, **schema}
        columns = {"run_id": [run_id] * len(steps), **columns}
    return pl.DataFrame(columns, schema=schema, strict=False)


def number_column(values: list[Any]) -> list[Any]:
    """A column of wire numbers as floats (the list itself when none is one of the wire's strings)."""
    if any(type(v) is str for v in values):
        return [number_from_wire(v) for v in values]
    return values


def comparison(client: Any, experiment_id: int, page: int = 1000) -> dict[str, Any]:
    """``GET /experiments/{id}/compare`` over every page: all the runs, the metric names and directions
    of all of them (``client`` is anything with ``get(path, **params)``)."""
    runs: list[dict[str, Any]] = []
    metrics: dict[str, None] = {}
    directions: dict[str, bool] = {}
    answer: dict[str, Any] = {}
    while True:
        answer = client.get(f"/api/experiments/{int(experiment_id)}/compare", limit=page, offset=len(runs))
        got = list(answer.get("runs") or [])
        runs += got
        metrics.update(dict.fromkeys(answer.get("metrics") or []))
        directions.update(answer.get("higher_is_better") or {})
        total = answer.get("total")
        if not got or not isinstance(total, int) or len(runs) >= total:
            break
    return {**answer, "runs": runs, "metrics": sorted(metrics), "higher_is_better": directions,
            "total": len(runs), "offset": 0, "limit": len(runs)}  # fmt: skip


def compare_frame(answer: Mapping[str, Any]) -> pl.DataFrame:
    """``GET /experiments/{id}/compare`` as a DataFrame: run columns, then one column per metric."""
    import polars as pl

    metrics = list(answer.get("metrics", []))
    rows = []
    for run in answer.get("runs", []):
        row = {k: run.get(k) for k in COMPARE_BASE}
        values = run.get("metrics") or {}
        for m in metrics:
            row[m] = number_from_wire(values.get(m))
        rows.append(row)
    schema: dict[str, Any] = {
        "run_id": pl.Int64,
        "name": pl.String,
        "model": pl.String,
        "checkpoint": pl.String,
        "step": pl.Int64,
        "runtime": pl.String,
        "task": pl.String,
        "status": pl.String,
        **{m: pl.Float64 for m in metrics},
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


__all__ = [
    "COLUMNS",
    "compare_frame",
    "comparison",
    "frame",
    "kind_frame",
    "number_column",
    "point",
    "raw_frame",
    "series_frame",
]
