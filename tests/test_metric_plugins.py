"""Metric plugins over a run's events, against a real tracking server: a training run's plugins see
its points as they are logged and add series and metrics (checked against numpy), a plugin that
raises or blocks costs nothing but itself, and a spec's plugins run on the worker of every run."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _evalsetup import register_plugin, write_plugins

from evalhub.errors import InvalidValue, SpecError
from evalhub.metric_plugins import MetricPlugin, Quantiles, SampleQuantiles, resolve


def _grad_norms(n: int) -> list[float]:
    rng = np.random.default_rng(0)
    return [float(v) for v in rng.lognormal(0.0, 0.5, n)]


class Exploding(MetricPlugin):
    name = "exploding"

    def on_points(self, points: Any) -> None:
        raise RuntimeError("boom")


class Gated(MetricPlugin):
    """Holds its thread until released: run.log must not wait for it."""

    name = "gated"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.points = 0

    def on_points(self, points: Any) -> None:
        self.release.wait(60)
        self.points += len(points)

    def finish(self) -> dict[str, float]:
        return {"gated/points": float(self.points)}


def test_a_training_runs_quantiles_per_window_and_overall_equal_numpys(hub: Any) -> None:
    values = _grad_norms(250)
    run = hub.init_run("train", system_metrics=False, plugins=[Quantiles("grad_norm", every=100)])
    for step, value in enumerate(values):
        run.log({"grad_norm": value, "loss": 1.0 / (1 + step)}, step=step)
    run.finish()
    for suffix, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        series = hub.series(run.id, f"grad_norm/{suffix}", max_points=None)
        assert series["step"].to_list() == [99, 199]  # closed windows only; 200-249 is still open
        expected = [np.quantile(values[0:100], q), np.quantile(values[100:200], q)]
        assert series["value"].to_list() == pytest.approx(expected, rel=1e-12)
        assert hub.metrics(run.id)[f"grad_norm/{suffix}"] == pytest.approx(np.quantile(values, q), rel=1e-12)
    assert hub.series(run.id, "grad_norm/max", max_points=None)["value"].to_list() == [max(values[:100]),
                                                                                        max(values[100:200])]  # fmt: skip
    assert hub.series(run.id, "loss", max_points=None).height == 250  # the run's own points, untouched


def test_a_plugin_that_raises_is_switched_off_and_one_that_blocks_never_slows_the_log(hub: Any) -> None:
    gated = Gated()
    run = hub.init_run("train", system_metrics=False, plugins=[Exploding(), gated, Quantiles("x", every=10)])
    for step in range(1000):
        run.log({"x": float(step)}, step=step)
    assert not gated.release.is_set() and gated.points == 0  # every run.log returned with the plugin held
    assert run.flush().stored >= 1000  # and the points reached the server meanwhile
    gated.release.set()
    run.finish()
    metrics = hub.metrics(run.id)
    assert metrics["gated/points"] == 1000.0 and metrics["x/max"] == 999.0
    lines = [line["message"] for line in hub.logs(run.id)]
    assert any("metric plugin exploding failed in on_points and is off for this run: RuntimeError: boom" in m
               for m in lines)  # fmt: skip
    assert hub.run(run.id)["status"] == "completed"


def test_plugins_are_found_by_entry_point_path_or_mapping_and_bad_ones_are_refused(
    hub: Any, tmp_path: Path
) -> None:
    assert isinstance(resolve("quantiles"), Quantiles)
    assert isinstance(resolve("sample_quantiles"), SampleQuantiles)
    assert resolve({"plugin": "quantiles", "key": "loss", "every": 5}).every == 5
    assert isinstance(resolve("evalhub.metric_plugins:SampleQuantiles"), SampleQuantiles)
    with pytest.raises(
        InvalidValue,
        match=r"no metric plugin named 'quantile' \(the evalhub.metrics entry points: .*quantiles",
    ):
        resolve("quantile")
    with pytest.raises(InvalidValue, match="cannot be imported"):
        resolve("no_such_module:Plugin")
    with pytest.raises(InvalidValue, match="unexpected keyword"):
        resolve({"plugin": "quantiles", "window": 3})
    with pytest.raises(InvalidValue, match="every must be at least 1"):
        Quantiles(every=0)
    before = hub.runs().height
    with pytest.raises(InvalidValue, match="no metric plugin named"):
        hub.init_run("train", plugins=["quantile"])
    assert hub.runs().height == before  # refused before the run was made

    from evalhub.orchestrator import plan

    hub.register_family("f", modality="llm")
    hub.register_model("m", family="f", runtime="hf")
    hub.register_checkpoint("m", "v1", uri="/w")
    data = tmp_path / "t.jsonl"
    data.write_text('{"q": "1+1=", "a": "2"}\n')
    hub.register_task("t", data=str(data), prompt="{{q}}", target="{{a}}")
    spec = "name: p\nmodels: [{model: m, checkpoints: [v1]}]\ntasks: [t]\nconfig:\n  metric_plugins: [quantile]\n"
    with pytest.raises(SpecError, match="no metric plugin named") as err:
        plan(hub, spec)
    assert err.value.field == "config.metric_plugins[0]" and err.value.line == 5


@pytest.fixture(scope="module")
def executor(ray_executor: Any) -> Any:
    return ray_executor


@pytest.mark.ray
@pytest.mark.slow
def test_a_specs_plugins_run_on_the_worker_of_every_run(hub: Any, executor: Any, tmp_path: Path) -> None:
    from evalhub import tiny
    from evalhub.orchestrator import run_experiment

    folder = write_plugins(tmp_path / "plugins")
    register_plugin(hub, folder, "adder", "Slow", delay=0.0)
    tiny.write_tasks(tmp_path / "tasks", n=20)
    tiny.register_tasks(hub, tmp_path / "tasks")
    spec = (
        f"name: plugged-{uuid.uuid4().hex[:6]}\nmodels: [{{model: adder, checkpoints: [v1]}}]\n"
        "tasks: [arith-add]\nconfig:\n  limit: 20\n"
        "  metric_plugins: [{plugin: sample_quantiles, field: latency_ms, qs: [0.5, 0.9]},"
        " {plugin: sample_quantiles, field: scores.exact_match, qs: [0.5]}]\n"
    )
    exp = run_experiment(hub, spec, executor=executor, progress=False)
    assert exp.status() == "completed"
    run_id = int(exp.runs()["id"][0])
    samples = hub.samples(run_id)
    metrics = hub.metrics(run_id)
    latencies = samples["latency_ms"].to_numpy()
    assert metrics["samples/latency_ms_p90"] == pytest.approx(np.quantile(latencies, 0.9), rel=1e-9)
    assert metrics["samples/latency_ms_max"] == pytest.approx(latencies.max(), rel=1e-9)
    assert metrics["samples/scores_exact_match_p50"] == 1.0  # the adder is right on every sample
