"""Widget state from Python against a real tracking server (data posted through the REST API)."""

from __future__ import annotations

import json
import math
import re
import uuid
from typing import Any

import polars as pl
import pytest
import traitlets
from _widgetdata import (
    arith_outcome,
    complete_run,
    create_experiment,
    finished_experiment,
    post_events,
    register_tiny,
    samples_for,
    trained_experiment,
)

import evalhub
from evalhub.errors import EvalhubError
from evalhub.widgets import ComparisonTable, Curves, OutputDiff, RegistryBrowser, RunMonitor
from evalhub.widgets._source import run_labels
from evalhub.widgets._static import static_dir
from evalhub.widgets._worddiff import word_diff

N = 30  # samples per run
STEPS = (100, 200, 300)


@pytest.fixture
def exp(hub: Any) -> dict[str, Any]:
    return finished_experiment(hub, n=N, steps=STEPS)


def _wrong(config: int) -> set[int]:
    return {j for j in range(N) if arith_outcome(config, j)[1] < 1}


# -- front-end files -------------------------------------------------------------------------------


def test_front_end_files_are_plain_es_modules_without_cdn() -> None:
    folder = static_dir()
    for name in ("monitor.js", "compare.js", "diff.js", "registry.js"):
        text = (folder / name).read_text()
        assert "export default" in text
        assert not re.search(r"""(import|from)\s*\(?\s*["']https?://""", text), name
    assert (folder / "evalhub.css").is_file()


def test_a_groups_subtasks_fold_under_its_score_with_lm_evals_aggregation_named(hub: Any) -> None:
    register_tiny(hub, (100,))
    exp = create_experiment(hub, steps=(100,), tasks=("mmlu",))
    run = exp["runs"][0]
    metrics = {"acc": 0.4, "acc_stderr": 0.05, "mmlu_stem:acc": 0.3, "mmlu_anatomy:acc": 0.5}
    post_events(hub, run["id"], [{"type": "status", "status": "running"}, {"type": "metrics", "values": metrics},
                                 {"type": "status", "status": "completed"}])  # fmt: skip
    # the results.json a worker stores for an lm-eval run (tests/test_engine_lm_eval_builtin.py checks
    # that the engine's provenance names mmlu's aggregation this way)
    groups = {"mmlu": {"subtasks": ["mmlu_stem"], "aggregation_text": "acc: mean weighted by subtask size"}}
    body = {"provenance": {"task": "mmlu", "kind": "group", "groups": groups}, "perf": {}, "lm_eval": {}}
    hub.client.put_bytes(f"/runs/{run['id']}/artifacts/results.json", json.dumps(body).encode())
    table = evalhub.compare(exp["id"], hub=hub)
    assert table.tasks == [{"task": "mmlu", "metrics": ["acc"], "folded": ["mmlu_anatomy:acc", "mmlu_stem:acc"],
                            "runs": 1, "aggregation": "acc: mean weighted by subtask size"}]  # fmt: skip


def test_curves_use_the_offline_vega_bundle(hub: Any) -> None:
    run = hub.init_run("train", config={})
    run.log({"loss": 1.0}, step=1)
    run.finish()
    chart = evalhub.curves(run, "loss", hub=hub, live=False)
    assert "esm.sh" not in chart._esm and "https://" not in chart._esm[:2000]
    assert len(chart._esm) > 100_000  # vega, vega-lite and vega-embed bundled in


def test_word_diff_marks_changed_words() -> None:
    assert word_diff("the cat sat", "the dog sat") == [
        ["=", "the "],
        ["-", "cat"],
        ["+", "dog"],
        ["=", " sat"],
    ]
    assert word_diff("42", "42") == [["=", "42"]]
    assert "".join(t for op, t in word_diff("a b c", "a x c") if op != "-") == "a x c"


def test_run_labels_keep_only_the_parts_that_vary() -> None:
    runs = [
        {"run_id": 1, "model": "m", "checkpoint": "step-1", "runtime": "hf"},
        {"run_id": 2, "model": "m", "checkpoint": "step-2", "runtime": "hf"},
    ]
    assert run_labels(runs) == {1: "step-1", 2: "step-2"}
    runs[1]["runtime"] = "vllm"
    assert run_labels(runs) == {1: "step-1 · hf", 2: "step-2 · vllm"}


# -- RunMonitor ------------------------------------------------------------------------------------


def test_monitor_shows_a_row_per_run_with_status_and_progress(hub: Any, exp: dict[str, Any]) -> None:
    mon = evalhub.monitor(exp["id"], hub=hub)
    assert isinstance(mon, RunMonitor)
    assert [r["run_id"] for r in mon.runs] == [r["id"] for r in exp["runs"]]
    assert {r["status"] for r in mon.runs} == {"completed"}
    assert all(r["done"] == N and r["total"] == N for r in mon.runs)
    assert [r["label"] for r in mon.runs] == ["step-100", "step-200", "step-300"]
    assert mon.done and not mon.live
    assert mon.status == "completed" and mon.counts["completed"] == 3


def test_monitor_follows_runs_live_until_all_are_terminal(hub: Any) -> None:
    register_tiny(hub, (100, 200))
    exp = create_experiment(hub, steps=(100, 200))
    mon = evalhub.monitor(exp["id"], hub=hub, interval=0.1)
    assert mon.live and not mon.done
    assert {r["status"] for r in mon.runs} == {"queued"}
    first, second = exp["runs"]
    post_events(
        hub,
        first["id"],
        [{"type": "status", "status": "running"}, {"type": "progress", "done": 5, "total": 10}],
    )
    assert _eventually(lambda: mon.runs[0]["status"] == "running" and mon.runs[0]["done"] == 5)
    assert mon.runs[0]["total"] == 10 and mon.runs[0]["elapsed_s"] is not None
    complete_run(hub, first, 0, n=10)
    complete_run(hub, second, 1, n=10, status="failed", error="CUDA out of memory")
    assert mon.wait(timeout=20)
    assert [r["status"] for r in mon.runs] == ["completed", "failed"]
    assert mon.runs[1]["error"] == "CUDA out of memory"
    assert _eventually(lambda: not mon.live)


def test_monitor_links_the_dashboard_it_is_given(hub: Any, exp: dict[str, Any]) -> None:
    mon = evalhub.monitor(exp["id"], hub=hub, dashboard_url="127.0.0.1:8265")
    assert mon.dashboard_url == "http://127.0.0.1:8265"


# -- ComparisonTable -------------------------------------------------------------------------------


def test_compare_groups_runs_by_task_with_metrics_and_best_marked(hub: Any) -> None:
    exp = finished_experiment(hub, n=N, steps=STEPS, tasks=("arith-add", "arith-mul"))
    table = evalhub.compare(exp["id"], hub=hub)
    assert isinstance(table, ComparisonTable)
    assert [t["task"] for t in table.tasks] == ["arith-add", "arith-mul"]
    assert table.tasks[0]["metrics"] == ["exact_match", "latency_p50_ms"]  # stderr folded into its metric
    assert len(table.rows) == 6
    scores = {r["label"]: r["metrics"]["exact_match"] for r in table.rows if r["task"] == "arith-add"}
    best = max(scores, key=lambda k: scores[k])
    marked = [r["label"] for r in table.rows if r["task"] == "arith-add" and "exact_match" in r["best"]]
    assert marked == [k for k, v in scores.items() if v == scores[best]]
    fastest = [r["label"] for r in table.rows if r["task"] == "arith-add" and "latency_p50_ms" in r["best"]]
    assert fastest == ["step-100"]  # lower latency is better
    assert "latency_p50_ms" in table.lower_better
    assert table.rows[0]["stderr"]["exact_match"] == pytest.approx(0.01)


def test_compare_baseline_gives_deltas_to_every_other_run(hub: Any, exp: dict[str, Any]) -> None:
    table = evalhub.compare(exp["id"], hub=hub, baseline="step-100")
    base = next(r for r in table.rows if r["label"] == "step-100")
    assert base["is_baseline"] and base["deltas"] == {}
    for r in table.rows:
        if r is base:
            continue
        assert r["deltas"]["exact_match"] == pytest.approx(
            r["metrics"]["exact_match"] - base["metrics"]["exact_match"]
        )
        assert r["deltas"]["latency_p50_ms"] > 0
    table.baseline = ""
    assert all(r["deltas"] == {} for r in table.rows)


def test_compare_refuses_an_unknown_baseline(hub: Any, exp: dict[str, Any]) -> None:
    table = evalhub.compare(exp["id"], hub=hub)
    with pytest.raises(traitlets.TraitError, match="step-999"):
        table.baseline = "step-999"


def test_compare_sorts_by_a_column(hub: Any, exp: dict[str, Any]) -> None:
    table = evalhub.compare(exp["id"], hub=hub)
    table.sort_by = "latency_p50_ms"
    table.sort_desc = True
    assert [r["label"] for r in table.rows] == ["step-300", "step-200", "step-100"]
    table.sort_desc = False
    assert [r["label"] for r in table.rows] == ["step-100", "step-200", "step-300"]


def test_compare_to_polars_has_a_row_per_run_and_a_column_per_metric(hub: Any, exp: dict[str, Any]) -> None:
    df = evalhub.compare(exp["id"], hub=hub).to_polars()
    assert df.height == 3
    assert {
        "run_id",
        "label",
        "checkpoint",
        "step",
        "task",
        "exact_match",
        "exact_match_stderr",
        "latency_p50_ms",
    } <= set(df.columns)
    assert df["step"].to_list() == list(STEPS)


# -- OutputDiff ------------------------------------------------------------------------------------


def test_diff_first_page_aligns_every_runs_answer_per_sample(hub: Any, exp: dict[str, Any]) -> None:
    d = evalhub.diff(exp["id"], hub=hub, limit=10)
    assert isinstance(d, OutputDiff)
    page = d.page
    assert page["total"] == N and page["offset"] == 0 and len(page["items"]) == 10
    assert [r["label"] for r in page["runs"]] == ["step-100", "step-200", "step-300"]
    item = page["items"][0]
    assert item["index"] == 0 and item["reference"] == "0"
    assert [c["output"] for c in item["cells"]] == [arith_outcome(c, 0)[0] for c in range(3)]
    assert [c["correct"] for c in item["cells"]] == [arith_outcome(c, 0)[1] == 1 for c in range(3)]
    assert item["agree"] is False


def test_diff_highlights_words_that_differ_from_the_baseline_run(hub: Any, exp: dict[str, Any]) -> None:
    d = evalhub.diff(exp["id"], hub=hub, limit=5)
    item = d.page["items"][2]  # step-100 answered "5 apples", the others "4"
    assert item["cells"][0]["segments"] == [["=", "5 apples"]]
    assert item["cells"][1]["segments"] == [["-", "5 apples"], ["+", "4"]]
    d.baseline_run = exp["runs"][1]["id"]
    item = d.page["items"][2]
    assert item["cells"][1]["segments"] == [["=", "4"]]
    assert item["cells"][2]["segments"] == [["=", "4"]]
    assert item["cells"][0]["segments"] == [["-", "4"], ["+", "5 apples"]]


def test_diff_pages_through_the_server(hub: Any, exp: dict[str, Any]) -> None:
    d = evalhub.diff(exp["id"], hub=hub, limit=7)
    d.next_page()
    assert d.page["offset"] == 7 and [i["index"] for i in d.page["items"]] == list(range(7, 14))
    d.goto(28)
    assert [i["index"] for i in d.page["items"]] == [28, 29]
    d.next_page()  # already on the last page
    assert d.page["offset"] == 28
    d.prev_page()
    assert d.page["offset"] == 21


def test_diff_answers_next_from_the_page_fetched_in_the_background(hub: Any, exp: dict[str, Any]) -> None:
    d = evalhub.diff(exp["id"], hub=hub, limit=5)
    real_get, asked = d._client.get, []

    def counting_get(path: str, **params: Any) -> Any:
        asked.append(params.get("offset"))
        return real_get(path, **params)

    d._client.get = counting_get  # instrument the real client: count what reaches the server
    d._cache[next(iter(d._cache))][1].result()  # the prefetch of offset 5 has landed
    d.next_page()
    assert [i["index"] for i in d.page["items"]] == [5, 6, 7, 8, 9]
    assert 5 not in asked  # answered from memory; only the page after it was asked for
    assert _eventually(lambda: 10 in asked)


def test_diff_refresh_shows_samples_written_since(hub: Any) -> None:
    register_tiny(hub, (100,))
    exp = create_experiment(hub, steps=(100,))
    run = exp["runs"][0]
    seq = post_events(hub, run["id"], [{"type": "status", "status": "running"}])
    seq = post_events(hub, run["id"], [{"type": "samples", "samples": samples_for(0, 10)}], start_seq=seq)
    d = evalhub.diff(exp["id"], hub=hub, limit=5)
    assert d.page["total"] == 10
    post_events(hub, run["id"], [{"type": "samples", "samples": samples_for(0, 5, start=10)}], start_seq=seq)
    d.refresh()
    assert d.page["total"] == 15


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("disagree", lambda: {j for j in range(N) if len({arith_outcome(c, j)[0] for c in range(3)}) > 1}),
        ("any_wrong", lambda: _wrong(0) | _wrong(1) | _wrong(2)),
        ("all_wrong", lambda: _wrong(0) & _wrong(1) & _wrong(2)),
        ("all", lambda: set(range(N))),
    ],
)
def test_diff_filters_are_applied_on_the_server(
    hub: Any, exp: dict[str, Any], name: str, expected: Any
) -> None:
    d = evalhub.diff(exp["id"], hub=hub, limit=100)
    d.set_filter(name)
    assert d.page["filter"] == name
    assert {i["index"] for i in d.page["items"]} == expected()
    assert d.page["total"] == len(expected())


def test_diff_search_matches_prompt_reference_or_output(hub: Any, exp: dict[str, Any]) -> None:
    d = evalhub.diff(exp["id"], hub=hub, limit=100)
    d.search("apples")
    assert d.page["total"] == len(_wrong(0) | _wrong(1) | _wrong(2))
    d.search("what is 17 + 17")
    assert [i["index"] for i in d.page["items"]] == [17]


def test_diff_answers_a_query_from_the_front_end_with_its_sequence_number(
    hub: Any, exp: dict[str, Any]
) -> None:
    d = evalhub.diff(exp["id"], hub=hub, limit=5)
    d.query = {"task": "arith-add", "filter": "all", "q": "", "offset": 10, "limit": 5, "seq": 42}
    assert d.page["seq"] == 42 and d.page["offset"] == 10
    with pytest.raises(traitlets.TraitError, match="unknown filter"):
        d.query = {**d.query, "filter": "nonsense"}


def test_diff_switches_between_the_tasks_of_an_experiment(hub: Any) -> None:
    exp = finished_experiment(hub, n=N, steps=(100, 200), tasks=("arith-add", "arith-mul"))
    d = evalhub.diff(exp["id"], hub=hub)
    assert d.tasks == ["arith-add", "arith-mul"] and d.page["task"] == "arith-add"
    d.set_task("arith-mul")
    assert d.page["task"] == "arith-mul" and d.page["total"] == N
    assert {c["run_id"] for c in d.page["items"][0]["cells"]} == {
        r["id"] for r in exp["runs"] if r["task"] == "arith-mul"
    }
    with pytest.raises(evalhub.EvalhubError, match="arith-div"):
        evalhub.diff(exp["id"], "arith-div", hub=hub)


# -- Curves ----------------------------------------------------------------------------------------


def test_curves_overlay_the_series_of_several_runs(hub: Any) -> None:
    runs = []
    for name, scale in (("lr-3e-4", 1.0), ("lr-1e-3", 2.0)):
        run = hub.init_run(name, config={})
        for step in range(1, 21):
            run.log({"loss": scale / step, "grad_norm": 0.5}, step=step)
        run.finish()
        runs.append(run)
    chart = evalhub.curves(runs, ["loss", "grad_norm"], hub=hub, live=False)
    assert isinstance(chart, Curves)
    df = chart.to_polars()
    assert df.filter(df["key"] == "loss").group_by("run").len().sort("run")["len"].to_list() == [20, 20]
    assert set(df["run"].unique()) == {"lr-3e-4", "lr-1e-3"}
    assert len(chart.spec["vconcat"]) == 2  # one chart per key


def test_curves_show_the_min_max_band_when_the_server_downsamples(hub: Any) -> None:
    run = hub.init_run("long", config={})
    for step in range(1, 401):
        run.log({"loss": 1.0 + (step % 7)}, step=step)
    run.finish()
    chart = evalhub.curves(run, "loss", hub=hub, max_points=20, live=False)
    df = chart.to_polars()
    assert df.height <= 20
    assert (df["max"] > df["min"]).any()
    assert [layer["mark"]["type"] for layer in chart.spec["layer"]] == ["area", "line"]


def test_curves_show_non_finite_values_as_rules_at_their_steps(hub: Any) -> None:
    run = hub.init_run("diverging", config={}, system_metrics=False)
    for step in range(1, 21):
        run.log({"loss": 1.0 / step if step < 15 else (math.nan if step % 2 else math.inf)}, step=step)
    run.finish()
    chart = evalhub.curves(run, "loss", hub=hub, live=False)
    df = chart.to_polars()
    assert df.height == 20 and df["value"].is_nan().sum() == 3 and (df["value"] == math.inf).sum() == 3
    assert [layer["mark"]["type"] for layer in chart.spec["layer"]] == ["line", "rule"]
    assert "NaN" in str(chart.spec) and "Infinity" in str(chart.spec)


def test_compare_shows_a_non_finite_metric_without_ranking_it(hub: Any) -> None:
    register_tiny(hub, STEPS)
    exp = create_experiment(hub, name="nonfinite", steps=STEPS)
    ids = [r["id"] for r in exp["runs"]]
    for run_id, loss in zip(ids, (math.nan, 1.5, 2.0), strict=True):
        values = {
            "type": "metrics",
            "values": {"loss": loss, "acc": 0.5},
            "higher_is_better": {"loss": False},
        }
        post_events(hub, run_id, [values])
    table = evalhub.compare(exp["id"], hub=hub)
    rows = {r["run_id"]: r for r in table.rows}
    assert rows[ids[0]]["metrics"]["loss"] == "NaN" and "loss" not in rows[ids[0]]["best"]
    assert "loss" in rows[ids[1]]["best"]  # lower is better; NaN is shown, never ranked
    assert math.isnan(table.to_polars().filter(pl.col("loss").is_nan())["loss"][0])


def test_curves_redraw_while_a_training_run_logs(hub: Any) -> None:
    run = hub.init_run("live", config={})
    run.log({"loss": 2.0}, step=1)
    run.flush()
    chart = evalhub.curves(run, "loss", hub=hub, interval=0.1)
    assert _eventually(lambda: chart.to_polars().height == 1)
    run.log({"loss": 1.5}, step=2)
    run.log({"loss": 1.0}, step=3)
    assert _eventually(lambda: chart.to_polars().height == 3)
    assert _eventually(lambda: sorted(v["value"] for v in _spec_values(chart.spec)) == [1.0, 1.5, 2.0])
    run.finish()
    assert _eventually(lambda: chart.done)
    chart.stop()


def test_curves_of_an_experiment_plot_a_metric_against_checkpoint_step(hub: Any, exp: dict[str, Any]) -> None:
    chart = evalhub.curves(experiment=exp["id"], key="exact_match", hub=hub, live=False)
    df = chart.to_polars()
    assert df["step"].to_list() == [float(s) for s in STEPS]
    assert df["value"].to_list() == pytest.approx([1 - len(_wrong(c)) / N for c in range(3)])


def test_curves_of_an_experiment_draw_the_training_loss_beside_its_metrics(hub: Any) -> None:
    """The checkpoints' writer (run.log_checkpoint) is found from the registry; its loss shares the axis."""
    exp, run = trained_experiment(hub, STEPS, N)
    chart = evalhub.curves(experiment=exp["id"], key=["exact_match"], hub=hub, training="loss", live=False)
    df = chart.to_polars()
    loss = df.filter(pl.col("key") == "loss")
    assert loss["step"].to_list() == [float(s) for s in range(0, 301, 10)]
    assert set(loss["run"]) == {"train (training)"} and set(loss["run_id"]) == {run.id}
    assert df.filter(pl.col("key") == "exact_match")["step"].to_list() == [float(s) for s in STEPS]
    spec = chart.chart.to_dict()
    assert [c["title"] for c in spec["vconcat"]] == ["loss", "exact_match"]
    hub.register_checkpoint("tiny-gpt", "step-999", uri="/data/x", step=999)  # registered by hand: no writer
    orphan = _one_run_experiment(hub, "step-999")
    with pytest.raises(EvalhubError, match="no run wrote the checkpoints"):
        evalhub.curves(experiment=orphan["id"], key="exact_match", hub=hub, training="loss", live=False)
    with pytest.raises(EvalhubError, match="training= goes with an experiment"):
        evalhub.curves(run.id, "loss", hub=hub, training="loss", live=False)


def _one_run_experiment(hub: Any, checkpoint: str) -> dict[str, Any]:
    runs = [{"name": "r", "type": "inference", "model": "tiny-gpt", "checkpoint": checkpoint, "runtime": "hf",
             "task": "arith-add"}]  # fmt: skip
    return dict(hub.client.post("/api/experiments", {"name": "one", "client_key": uuid.uuid4().hex, "runs": runs}))


# -- RegistryBrowser -------------------------------------------------------------------------------


def test_registry_lists_families_models_checkpoints_tasks_and_benchmarks(hub: Any, tmp_path: Any) -> None:
    register_tiny(hub, (100, 200))
    data = tmp_path / "arith.jsonl"
    data.write_text('{"question": "1+1=", "answer": "2"}\n')
    hub.register_task("arith-add", data=str(data), prompt="{{question}}", target="{{answer}}")
    hub.register_benchmark("arith", tasks=["arith-add"])
    reg = evalhub.registry(hub)
    assert isinstance(reg, RegistryBrowser)
    assert reg.totals == {"families": 1, "models": 1, "checkpoints": 2, "tasks": 1, "benchmarks": 1}
    assert [c["name"] for c in reg.checkpoints] == ["step-100", "step-200"]
    assert reg.tasks[0]["name"] == "arith-add" and reg.benchmarks[0]["tasks"] == ["arith-add"]
    assert "step-100, step-200" in repr(reg)


# -- fallbacks -------------------------------------------------------------------------------------


def test_every_widget_carries_text_and_html_beside_the_widget_view(hub: Any, exp: dict[str, Any]) -> None:
    widgets = [
        evalhub.monitor(exp["id"], hub=hub),
        evalhub.compare(exp["id"], hub=hub),
        evalhub.diff(exp["id"], hub=hub, limit=3),
        evalhub.registry(hub),
        evalhub.curves(experiment=exp["id"], key="exact_match", hub=hub, live=False),
    ]
    for w in widgets:
        data, _ = w._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in data, type(w)
        assert data["text/plain"].strip() and data["text/html"].strip(), type(w)
    assert "step-300" in widgets[0]._repr_mimebundle_()[0]["text/plain"]
    assert "<table" in widgets[1]._repr_mimebundle_()[0]["text/html"]
    assert "apples" in widgets[2]._repr_mimebundle_()[0]["text/plain"]
    assert "<svg" in widgets[4]._repr_mimebundle_()[0]["text/html"]


def _spec_values(spec: Any) -> list[dict[str, Any]]:
    """Every inline data row of a Vega-Lite spec (the chart the browser draws)."""
    found: list[dict[str, Any]] = []
    if isinstance(spec, dict):
        data = spec.get("data")
        if isinstance(data, dict) and isinstance(data.get("values"), list):
            found.extend(data["values"])
        for key, value in spec.items():
            if key == "datasets" and isinstance(value, dict):
                for rows in value.values():
                    found.extend(rows)
            elif key != "data":
                found.extend(_spec_values(value))
    elif isinstance(spec, list):
        for value in spec:
            found.extend(_spec_values(value))
    return found


def _eventually(check: Any, timeout: float = 20.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


def test_monitor_says_why_when_the_driver_of_its_runs_stopped(hub: Any, tmp_path: Any) -> None:
    """Ray failing to start on an overloaded box (seen here): the monitor stops polling and shows
    the driver's error. The executor is a stand-in that fails the way Ray did."""

    class RayDidNotStart:
        def execute(self, hub: Any, experiment_id: int, jobs: Any, resources: Any) -> None:
            raise evalhub.EvalhubError("Ray did not start (The current node timed out during startup.)")

    register_tiny(hub, (100,))
    data = tmp_path / "arith.jsonl"
    data.write_text('{"question": "1+1=", "answer": "2"}\n')
    hub.register_task("arith-add", data=str(data), prompt="{{question}}", target="{{answer}}")
    spec = "name: stalled\nmodels:\n  - model: tiny-gpt\ntasks: [arith-add]\n"
    exp = hub.run_experiment(spec, wait=False, executor=RayDidNotStart(), progress=False)
    mon = evalhub.monitor(exp, hub=hub, interval=0.1)
    assert _eventually(lambda: not mon.live)  # stopped polling: the runs will not move any more
    assert mon.stalled or mon.done  # the orchestrator may also have marked the runs failed
    assert "Ray did not start" in repr(mon)
    assert mon.wait(timeout=5) is mon.done


@pytest.mark.parametrize(
    ("metric", "known", "lower"),
    [
        ("exact_match", {"exact_match": True}, False),
        ("acc", {"acc": True}, False),
        ("word_perplexity", {"word_perplexity": False}, True),  # lm-eval's own direction, from the run
        ("mmlu_stem:acc", {"mmlu_stem:acc": True}, False),
        ("latency_p95_ms", None, True),  # evalhub's own figures: metric_names
        ("peak_rss_mb", None, True),
        ("peak_gpu_mem_mb", None, True),
        ("eval_wall_s", None, True),
        ("samples_per_s", None, False),
        ("tokens_per_s", None, False),
        ("my_custom_score", None, False),  # unknown: no direction claimed
    ],
)
def test_which_direction_is_better_for_a_metric(metric: str, known: Any, lower: bool) -> None:
    from evalhub.widgets._compare import lower_is_better

    assert lower_is_better(metric, known) is lower


def test_compare_with_a_baseline_shows_paired_intervals_and_marks_significance_on_holm(hub: Any) -> None:
    exp = finished_experiment(hub, n=200, steps=STEPS)
    table = evalhub.compare(exp["id"], hub=hub, baseline="step-100")
    rows = {r["label"]: r for r in table.rows}
    assert rows["step-100"]["is_baseline"] and rows["step-100"]["deltas"] == {}
    best = rows["step-300"]
    low, high = best["ci"]["exact_match"]
    assert low < best["deltas"]["exact_match"] < high
    frame = hub.experiment(exp["id"]).compare(baseline="step-100")
    p_holm = frame.filter(frame["checkpoint"] == "step-300")["exact_match_p_holm"][0]
    assert best["p_holm"]["exact_match"] == pytest.approx(p_holm)
    assert ("exact_match" in best["significant"]) == (p_holm < 0.05)
    assert (
        "latency_p50_ms" in best["deltas"] and "latency_p50_ms" not in best["ci"]
    )  # untested: no per-sample scores
    assert "[" in table._text()  # the interval in the text fallback too


def test_experiment_curves_draw_each_checkpoints_95_percent_interval(hub: Any) -> None:
    exp = finished_experiment(hub, n=N, steps=STEPS)
    chart = evalhub.curves(experiment=exp["id"], key="exact_match", hub=hub, live=False)
    records = chart._records["exact_match"]
    from evalhub import stats

    for r in records:
        assert (r["low"], r["high"]) == pytest.approx(stats.wilson_interval(round(r["value"] * N), N))
    assert "errorbar" in [layer["mark"]["type"] for layer in chart.spec["layer"]]
