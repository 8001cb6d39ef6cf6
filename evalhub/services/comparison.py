"""Paired statistics of an experiment's runs against a baseline, from their aligned per-sample scores.

For every task, every other run of the task is compared with the baseline's run of that task on the
items both answered: for 0/1 scores (acc, exact_match) McNemar's exact test and Newcombe's interval of
the difference of paired proportions, otherwise a paired percentile bootstrap (``resamples`` draws
from ``seed``, recorded). The p-values are adjusted with Holm across the runs compared, per task and
metric. A metric without per-sample scores (latency, throughput) gets no test: its columns stay null.

>>> frame = paired_comparison(client, 7, baseline="step-100")
>>> frame.select("checkpoint", "exact_match", "exact_match_delta", "exact_match_p_holm")
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from evalhub._frames import compare_frame, comparison
from evalhub.client import Client
from evalhub.errors import InvalidValue
from evalhub.metric_names import parse_key
from evalhub.protocol import number_from_wire

if TYPE_CHECKING:
    import polars as pl

SUFFIXES = ("_delta", "_delta_low", "_delta_high", "_p_value", "_p_holm")
"""The columns each tested metric gains, in this order."""


def matches(run: Mapping[str, Any], baseline: str | int) -> bool:
    """Whether ``run`` (an entry of the comparison) is what ``baseline`` names: its run id, its
    checkpoint, its name, ``model/checkpoint``, its model or its runtime."""
    if isinstance(baseline, int) or (isinstance(baseline, str) and baseline.isdigit()):
        return int(run["run_id"]) == int(baseline)
    names = {run.get("checkpoint"), run.get("name"), f"{run.get('model')}/{run.get('checkpoint')}", run.get("model"),
             run.get("runtime")}  # fmt: skip
    return baseline in names


def baseline_runs(answer: Mapping[str, Any], baseline: str | int) -> dict[str, int]:
    """task -> the baseline's run id in it; an ambiguous or absent baseline is a clear error."""
    tasks: dict[str, list[Mapping[str, Any]]] = {}
    for run in answer.get("runs", []):
        tasks.setdefault(str(run.get("task")), []).append(run)
    chosen: dict[str, int] = {}
    for task, runs in tasks.items():
        hits = [r for r in runs if matches(r, baseline)]
        if len(hits) > 1:
            raise InvalidValue(
                f"baseline {baseline!r} names {len(hits)} runs of task {task!r} "
                f"({', '.join(str(r['name']) for r in hits)}); name one (its run id or 'model/checkpoint')"
            )
        if hits:
            chosen[task] = int(hits[0]["run_id"])
    if not chosen:
        known = sorted({str(r.get("checkpoint") or r.get("name")) for r in answer.get("runs", [])})
        raise InvalidValue(f"baseline {baseline!r} is none of the experiment's runs ({', '.join(known)})")
    return chosen


def iter_scores(client: Client, run_id: int) -> Iterator[dict[str, Any]]:
    """Every sample's ``sample_key``, ``task`` and ``scores`` of a run, paged from the server."""
    after = None
    while True:
        page = client.get(f"/runs/{int(run_id)}/scores", after=after, limit=10_000)
        yield from page.get("items", [])
        after = page.get("next")
        if after is None:
            return


def scores_frame(client: Client, run_id: int) -> pl.DataFrame:
    """A run's per-sample scores: ``sample_key``, ``task``, then one column per score key."""
    import polars as pl

    rows = []
    keys: dict[str, None] = {}
    for item in iter_scores(client, run_id):
        scores = {k: number_from_wire(v) for k, v in (item.get("scores") or {}).items()}
        keys.update(dict.fromkeys(scores))
        rows.append({"sample_key": item["sample_key"], "task": item.get("task"), **scores})
    schema: dict[str, Any] = {"sample_key": pl.String, "task": pl.String, **{k: pl.Float64 for k in keys}}
    return pl.DataFrame(rows, schema=schema, orient="row")


def _items_of(frame: pl.DataFrame, metric: str) -> tuple[str, str | None] | None:
    """The score column and subtask a summary metric is made of, if its samples carry it."""
    key = parse_key(metric)
    if key.is_stderr:
        return None
    column = key.metric if not key.filter else f"{key.metric}/{key.filter}"
    if column not in frame.columns:
        return None
    return column, key.subtask


def paired_comparison(
    client: Client,
    experiment_id: int,
    baseline: str | int,
    *,
    seed: int = 0,
    resamples: int | None = None,
    confidence: float = 0.95,
) -> pl.DataFrame:
    """The comparison of an experiment (one row per run, one column per metric) with, for every metric
    that has per-sample scores, the columns of :data:`SUFFIXES` against ``baseline`` (unadjusted and
    Holm-adjusted p-values), a ``baseline`` column (the run each row was compared with) and, per
    tested metric, ``<metric>_test`` (``mcnemar`` or ``bootstrap``)."""
    import polars as pl

    from evalhub import stats

    answer = comparison(client, int(experiment_id))
    table = compare_frame(answer)
    bases = baseline_runs(answer, baseline)
    metrics = [m for m in answer.get("metrics", []) if not parse_key(m).is_stderr]
    frames: dict[int, pl.DataFrame] = {}

    def frame_of(run_id: int) -> pl.DataFrame:
        if run_id not in frames:
            frames[run_id] = scores_frame(client, run_id)
        return frames[run_id]

    cells: dict[tuple[int, str], float | str | None] = {}
    for task, base_id in bases.items():
        others = [
            int(r["run_id"])
            for r in answer["runs"]
            if str(r.get("task")) == task and int(r["run_id"]) != base_id
        ]
        base = frame_of(base_id)
        for metric in metrics:
            found = _items_of(base, metric)
            if found is None or not others:
                continue
            column, subtask = found
            mine = base if subtask is None else base.filter(pl.col("task") == subtask)
            # one frame aligned on the baseline's items: a key the baseline lacks cannot be paired
            aligned = mine.select("sample_key", column)
            names = []
            for run_id in others:
                theirs = frame_of(run_id)
                if column in theirs.columns:
                    aligned = aligned.join(
                        theirs.select("sample_key", pl.col(column).alias(str(run_id))),
                        on="sample_key",
                        how="left",
                    )
                    names.append(str(run_id))
            if not names:
                continue
            kw: dict[str, Any] = {"seed": seed, "confidence": confidence}
            if resamples is not None:
                kw["resamples"] = resamples
            results = stats.paired_compare_many(
                aligned[column].to_numpy(), {n: aligned[n].to_numpy() for n in names}, **kw
            )
            candidates = results
            holm = stats.holm([results[n].p_value for n in candidates])
            for (name, result), adjusted in zip(results.items(), holm, strict=True):
                run_id = int(name)
                for suffix, value in zip(SUFFIXES, (result.delta, result.low, result.high, result.p_value, adjusted),
                                         strict=True):  # fmt: skip
                    cells[(run_id, metric + suffix)] = float(value)
                cells[(run_id, metric + "_test")] = result.method
    tested = [m for m in metrics if any((rid, m + "_delta") in cells for rid in table["run_id"].to_list())]
    run_ids = table["run_id"].to_list()
    task_of = dict(zip(table["run_id"].to_list(), table["task"].to_list(), strict=True))
    columns: list[pl.Series] = [
        pl.Series("baseline", [bases.get(str(task_of[r])) for r in run_ids], dtype=pl.Int64)
    ]
    for metric in tested:
        for suffix in SUFFIXES:
            columns.append(
                pl.Series(
                    metric + suffix, [cells.get((r, metric + suffix)) for r in run_ids], dtype=pl.Float64
                )
            )
        columns.append(
            pl.Series(metric + "_test", [cells.get((r, metric + "_test")) for r in run_ids], dtype=pl.String)
        )
    out = table.with_columns(columns)
    out = out.with_columns(pl.lit(seed).alias("seed")) if tested else out
    return out


__all__ = ["SUFFIXES", "baseline_runs", "iter_scores", "matches", "paired_comparison", "scores_frame"]
