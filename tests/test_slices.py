"""Error slicing through a real server, checked against polars group-bys of the runs' samples and the
statistics computed directly: per slice means with intervals, paired deltas with Holm, the slices a
candidate loses most; slices by a data column, a length bucket, the subtask and a scorer's labels."""

from __future__ import annotations

import random
import uuid
from typing import Any

import numpy as np
import polars as pl
import pytest
from _widgetdata import post_events, register_tiny

from evalhub import stats
from evalhub.errors import InvalidValue
from evalhub.scorers import Function

SUBJECTS = ("algebra", "geometry", "history")
N = 90


def _right(config: int, j: int, subject: str) -> bool:
    """Later checkpoints get better, except at history, where the last one collapses."""
    rng = random.Random(f"{config}-{j}")
    p = {0: 0.5, 1: 0.7, 2: 0.8}[config]
    if subject == "history" and config == 2:
        p = 0.1
    return rng.random() < p


def _experiment(hub: Any) -> Any:
    register_tiny(hub, (100, 200, 300))
    runs = [{"name": f"tiny@{s}", "model": "tiny-gpt", "checkpoint": f"step-{s}", "runtime": "hf", "task": "qa"}
            for s in (100, 200, 300)]  # fmt: skip
    exp = hub.client.post("/experiments", {"name": "sliced", "client_key": uuid.uuid4().hex, "runs": runs})
    for config, run in enumerate(exp["runs"]):
        samples = []
        for j in range(N):
            subject = SUBJECTS[j % 3]
            right = _right(config, j, subject)
            samples.append({
                "sample_key": f"doc-{j:03d}", "index": j, "task": "qa_" + subject[:3] if j % 2 else "qa_x",
                "prompt": "Q" * (10 + j), "reference": str(j), "output": str(j) if right else "no " * (1 + j % 4),
                "scores": {"exact_match": float(right), "f1": round(random.Random(j + config).random(), 3)},
                "primary_score": float(right), "extra": {"doc": {"subject": subject, "level": j % 2}},
            })  # fmt: skip
        post_events(hub, run["id"], [
            {"type": "status", "status": "running"},
            {"type": "samples", "samples": samples},
            {"type": "metrics", "values": {"exact_match": 0.5, "f1": 0.5}, "higher_is_better": {"exact_match": True, "f1": True}},
            {"type": "status", "status": "completed"},
        ])  # fmt: skip
    return hub.experiment(exp["id"])


def _samples(hub: Any, exp: Any) -> pl.DataFrame:
    """Every run's samples, one row each (what an export holds), with the document's subject."""
    rows = []
    for run in exp.runs().iter_rows(named=True):
        for s in hub.client.paged(f"/runs/{run['id']}/samples"):
            rows.append({"run_id": run["id"], "checkpoint": run["checkpoint"], "sample_key": s["sample_key"],
                         "subject": s["extra"]["doc"]["subject"], "exact_match": s["scores"]["exact_match"],
                         "f1": s["scores"]["f1"], "prompt_chars": len(s["prompt"]), "task": s["task"]})  # fmt: skip
    return pl.DataFrame(rows)


def test_slices_by_a_data_column_match_group_bys_and_direct_statistics(hub: Any) -> None:
    exp = _experiment(hub)
    table = exp.slices(by="subject", baseline="step-100")
    samples = _samples(hub, exp)
    grouped = samples.group_by("run_id", "subject").agg(pl.len().alias("g_n"), pl.col("exact_match").mean().alias("g_em"),
                                                       pl.col("f1").mean().alias("g_f1"))  # fmt: skip
    em = table.filter(pl.col("metric") == "exact_match")
    assert em.height == 3 * 3 and set(em["slice"]) == set(SUBJECTS)
    joined = em.join(grouped, left_on=["run_id", "slice"], right_on=["run_id", "subject"])
    assert joined.height == 9
    assert (joined["n"] == joined["g_n"]).all()
    assert np.allclose(joined["mean"], joined["g_em"])
    f1 = table.filter(pl.col("metric") == "f1").join(
        grouped, left_on=["run_id", "slice"], right_on=["run_id", "subject"]
    )
    assert np.allclose(f1["mean"], f1["g_f1"]) and set(f1["method"]) == {"bootstrap"}
    assert set(em["method"]) == {"wilson"}
    # intervals and paired deltas are the statistics of the slice's items, computed directly
    base = samples.filter(pl.col("checkpoint") == "step-100").sort("sample_key")
    last = samples.filter(pl.col("checkpoint") == "step-300").sort("sample_key")
    mid = samples.filter(pl.col("checkpoint") == "step-200").sort("sample_key")
    tested = []
    for metric in ("exact_match", "f1"):
        for subject in SUBJECTS:
            b = base.filter(pl.col("subject") == subject)[metric].to_numpy()
            for run in (mid, last):
                c = run.filter(pl.col("subject") == subject)[metric].to_numpy()
                row = table.filter((pl.col("metric") == metric) & (pl.col("slice") == subject) &
                                   (pl.col("run_id") == run["run_id"][0])).row(0, named=True)  # fmt: skip
                estimate = stats.mean_interval(c)
                assert (row["low"], row["high"]) == pytest.approx((estimate.low, estimate.high))
                compared = stats.paired_compare_many(b, {"c": c}, resamples=1000)["c"]
                assert row["test"] == compared.method
                assert (row["delta"], row["delta_low"], row["delta_high"], row["p_value"]) == pytest.approx(
                    (compared.delta, compared.low, compared.high, compared.p_value), abs=1e-12
                )
                tested.append((metric, row["p_value"], row["p_holm"]))
        ps = [p for m, p, _ in tested if m == metric]
        assert [h for m, _, h in tested if m == metric] == pytest.approx(stats.holm(ps).tolist())
    base_rows = table.filter(pl.col("label") == "step-100")
    assert base_rows["delta"].null_count() == base_rows.height


def test_the_worst_slice_is_where_the_candidate_collapses(hub: Any) -> None:
    exp = _experiment(hub)
    ranked = exp.worst_slices("subject", baseline="step-100", k=3, metrics=["exact_match"])
    top = ranked.row(0, named=True)
    assert (top["slice"], top["label"], top["metric"]) == ("history", "step-300", "exact_match")
    assert top["delta"] < 0 and top["significant"]
    assert (ranked["delta"] < 0).all()


def test_slices_by_lengths_subtasks_and_a_scorers_labels(hub: Any) -> None:
    exp = _experiment(hub)
    samples = _samples(hub, exp)
    lengths = exp.slices(by="prompt_length", bins=3, metrics=["exact_match"])
    one = lengths.filter(pl.col("label") == "step-100").sort("slice")
    assert one["n"].to_list() == [30, 30, 30]
    assert set(one["slice"]) == {"[10, 40)", "[40, 70)", "[70, 99]"}
    by_task = exp.slices(by="subtask", metrics=["exact_match"]).filter(pl.col("label") == "step-200")
    counts = samples.filter(pl.col("checkpoint") == "step-200").group_by("task").len()
    assert dict(zip(by_task["slice"], by_task["n"], strict=True)) == dict(
        zip(counts["task"], counts["len"], strict=True)
    )
    # a scorer's per-sample labels slice the samples too
    exp.score(Function(lambda s: {"long": float(len(s["prompt"]) >= 50)}, name="size"))
    labelled = exp.slices(by="size.long", metrics=["exact_match"]).filter(pl.col("label") == "step-100")
    assert dict(zip(labelled["slice"], labelled["n"], strict=True)) == {"0": 40, "1": 50}


def test_a_column_the_documents_lack_is_named_with_the_ones_they_have(hub: Any) -> None:
    exp = _experiment(hub)
    with pytest.raises(
        InvalidValue, match=r"'difficulty': not a column of the task's documents \(level, subject\)"
    ):
        exp.slices(by="difficulty")
    with pytest.raises(InvalidValue, match="needs slices compared with a baseline"):
        from evalhub.services.slices import worst

        worst(exp.slices(by="subject"))
