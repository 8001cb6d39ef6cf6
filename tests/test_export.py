"""hub.export(exp): an experiment's runs, metrics, samples with every scorer's scores and people's labels,
scorings, judge calls and annotation labels, written as JSON, CSV and Parquet and read back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _widgetdata import finished_experiment

pl = pytest.importorskip("polars")


def _judged(hub: Any, run_id: int) -> None:
    """A recorded judge scoring of one sample, as a judge's worker sends it."""
    scoring = hub.client.post(
        "/scorings", {"run_id": run_id, "name": "judge", "kind": "judge", "version": "1"}
    )
    call = {
        "position": "single",
        "prompt": "Rate: 0 + 0 = 0",
        "raw_output": "Rating: [[7]]",
        "verdict": "7",
        "score": 7.0,
    }
    hub.client.post(f"/scorings/{scoring['id']}/results",
                    {"items": [{"sample_key": "doc-0", "scores": {"judge.score": 7.0}, "calls": [call]}]})  # fmt: skip
    hub.client.post(f"/scorings/{scoring['id']}/finish", {"metrics": {"judge.score": 7.0}})


def test_an_export_carries_scores_judge_calls_and_labels_in_every_format(hub: Any, tmp_path: Path) -> None:
    exp = finished_experiment(hub, n=3, steps=(100, 200))
    runs = [r["id"] for r in exp["runs"]]
    _judged(hub, runs[0])
    queue = hub.annotation_queue(exp["id"], "quality", {"kind": "scale", "min": 1, "max": 5})
    queue.person = "alice"
    for item, value in zip(queue.items(), (5, 4, 3), strict=False):
        queue.label(item, value)
    bob = hub.queue("quality", person="bob")
    bob.label(bob.items()[0], 2)

    tables = hub.export_tables(exp["id"])
    assert set(tables) == {"runs", "metrics", "samples", "scorings", "judge_calls", "labels"}
    assert sorted(tables["runs"]["id"].to_list()) == runs and tables["samples"].height == 6
    samples = tables["samples"].sort("run_id", "index")
    first = samples.filter((pl.col("run_id") == runs[0]) & (pl.col("sample_key") == "doc-0")).row(
        0, named=True
    )
    assert first["score:exact_match"] == 0.0 and first["score:judge.score"] == 7.0
    assert first["score:quality.alice"] == 5.0 and first["score:quality.bob"] == 2.0
    labels = tables["labels"].sort("person", "item_id")
    assert labels.select("queue", "person", "value").rows() == [
        ("quality", "alice", 5.0), ("quality", "alice", 4.0), ("quality", "alice", 3.0), ("quality", "bob", 2.0)]  # fmt: skip
    assert tables["judge_calls"].select("sample_key", "verdict", "score").rows() == [("doc-0", "7", 7.0)]
    assert tables["scorings"]["name"].to_list() == ["judge"]
    metrics = tables["metrics"]
    assert metrics.filter((pl.col("run_id") == runs[0]) & (pl.col("key") == "judge.score"))[
        "value"
    ].to_list() == [7.0]

    doc = json.loads(hub.export(exp["id"], tmp_path / "exp.json").read_text())
    assert doc["experiment"]["id"] == exp["id"] and len(doc["labels"]) == 4 and len(doc["samples"]) == 6
    assert doc["judge_calls"][0]["raw_output"] == "Rating: [[7]]"
    for fmt, read in (("csv", pl.read_csv), ("parquet", pl.read_parquet)):
        folder = hub.export(exp["id"], tmp_path / f"exp-{fmt}", format=fmt)
        assert sorted(p.name for p in folder.iterdir()) == sorted(f"{t}.{fmt}" for t in tables)
        back = read(folder / f"labels.{fmt}").sort("person", "item_id")
        assert back.select("person", "value").rows() == labels.select("person", "value").rows()
        again = read(folder / f"samples.{fmt}")
        doc0 = again.filter(pl.col("sample_key") == "doc-0").sort("run_id")
        assert doc0["score:quality.alice"].to_list() == [5.0, 4.0]  # doc-0 of each run: the first two items
        assert doc0["score:quality.bob"].to_list() == [2.0, None]


def test_an_unknown_format_is_refused(hub: Any, tmp_path: Path) -> None:
    from evalhub.errors import InvalidValue

    exp = finished_experiment(hub, n=1, steps=(100,))
    with pytest.raises(InvalidValue, match="json, csv, parquet"):
        hub.export(exp["id"], tmp_path / "x.xlsx")
