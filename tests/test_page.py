"""The experiment page from Python against a real tracking server: its tabs are evalhub's own live
widgets and tables read from the server, and each part with nothing to show says why."""

from __future__ import annotations

from typing import Any

import polars as pl
from _widgetdata import complete_run, create_experiment, trained_experiment

import evalhub
from evalhub.widgets import ComparisonTable, Curves, ExperimentPage, OutputDiff

N = 30
STEPS = (100, 200, 300)


def _trained_experiment(hub: Any) -> dict[str, Any]:
    return trained_experiment(hub, STEPS, N)[0]


def test_the_page_gathers_the_table_curves_diff_slices_and_queues_of_an_experiment(hub: Any) -> None:
    exp = _trained_experiment(hub)
    queue = hub.annotation_queue(
        exp["id"], "quality", {"kind": "scale", "min": 1, "max": 5}, sample=5, seed=0
    )
    page = evalhub.page(exp["id"], hub=hub, baseline="step-100", by="answer_length")
    assert isinstance(page, ExperimentPage)
    assert list(page.parts) == ["Runs", "Curves", "Diff", "Slices", "Judges", "Annotation"]
    assert page._tabs.titles == tuple(page.parts)
    assert isinstance(page.parts["Runs"], ComparisonTable) and page.parts["Runs"].baseline == "step-100"
    curves = page.parts["Curves"]
    assert isinstance(curves, Curves)
    drawn = curves.to_polars()
    assert set(drawn.filter(pl.col("key") == "loss")["step"]) == {float(s) for s in range(0, 301, 10)}
    assert drawn.filter(pl.col("key") == "exact_match")["step"].to_list() == [float(s) for s in STEPS]
    assert isinstance(page.parts["Diff"], OutputDiff)
    slices = page.parts["Slices"]
    assert isinstance(slices, pl.DataFrame) and {"slice", "label", "delta", "p_holm"} <= set(slices.columns)
    assert set(slices["label"]) == {
        "step-200",
        "step-300",
    }  # compared rows first; the baseline's have no delta
    assert page.parts["Judges"].startswith("no judge has scored this experiment")
    queues = page.parts["Annotation"]
    assert queues["name"].to_list() == [queue.name] and queues["items"].to_list() == [
        15
    ]  # 5 documents x 3 runs
    text = repr(page)
    assert f"experiment {exp['id']} · progress · completed — 3 completed" in text
    assert "## Slices" in text and "step-300" in text and "no judge" in text
    data, _ = page._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "<h4>Curves</h4>" in data["text/html"] and "evh-static" in data["text/html"]


def test_a_page_of_an_experiment_without_steps_or_slices_says_what_each_tab_needs(hub: Any) -> None:
    hub.register_family("f", modality="llm")
    hub.register_model("m", family="f", runtime="hf")
    hub.register_checkpoint("m", "v1", uri="/w")
    exp = create_experiment(hub, steps=(), model="m")
    run = hub.client.post(f"/api/experiments/{exp['id']}/runs", {"runs": [
        {"name": "m@v1/arith-add", "type": "inference", "model": "m", "checkpoint": "v1", "runtime": "hf",
         "task": "arith-add"}]})["runs"][0]  # fmt: skip
    page = evalhub.page(exp["id"], hub=hub)
    assert page.parts["Curves"].startswith("no run's checkpoint has a step")
    assert page.parts["Diff"].startswith("no completed run yet")
    assert page.parts["Slices"].startswith("give by=")
    complete_run(hub, {"id": run["id"]}, 0, n=4)
    page.refresh()
    assert isinstance(page.parts["Diff"], OutputDiff)
    assert evalhub.page(exp["id"], hub=hub, by="nothing").parts["Slices"].startswith("no slices by 'nothing'")
