"""Evaluations that run themselves: a training run of the tiny model logs its checkpoints with
``evaluate=``; each is evaluated on a real local Ray while training goes on, into one growing
experiment whose curve has a point per checkpoint (the loss's run beside it)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from _evalsetup import tiny_build

from evalhub.errors import InvalidValue, SpecError


def _register(hub: Any, build: Any) -> None:
    from evalhub import tiny

    hub.register_family(tiny.FAMILY, modality="llm")
    hub.register_model(tiny.MODEL, family=tiny.FAMILY, runtime="hf")
    tiny.register_tasks(hub, build.out_dir)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return tiny_build(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def executor(ray_executor: Any) -> Any:
    return ray_executor


def test_evaluate_is_refused_naming_what_is_wrong_before_anything_runs(hub: Any, build: Any) -> None:
    from evalhub import tiny
    from evalhub.checkpoint_evals import spec_fragment

    _register(hub, build)
    assert spec_fragment(hub, tiny.BENCHMARK) == {"benchmark": tiny.BENCHMARK}
    assert spec_fragment(hub, "arith-add") == {"tasks": ["arith-add"]}
    assert spec_fragment(hub, "tasks: [arith-add]\nconfig: {limit: 3}\n") == {
        "tasks": ["arith-add"], "config": {"limit": 3}
    }  # fmt: skip
    run = hub.init_run("train-bad", model=tiny.MODEL, type="training", system_metrics=False)
    path = build.checkpoints[100]
    with pytest.raises(InvalidValue, match="may not set models"):
        run.log_checkpoint(path, step=100, evaluate={"models": [{"model": "x"}], "tasks": ["arith-add"]})
    with pytest.raises(InvalidValue, match="does not apply scorers"):
        run.log_checkpoint(
            path, step=100, evaluate={"tasks": ["arith-add"], "scorers": [{"type": "exact_match"}]}
        )
    with pytest.raises(InvalidValue, match="takes a task or benchmark name"):
        run.log_checkpoint(path, step=100, evaluate=42)
    with pytest.raises(InvalidValue, match="no such spec file"):
        run.log_checkpoint(path, step=100, evaluate="missing.yaml")
    assert hub.checkpoints(tiny.MODEL).height == 0  # refused before the checkpoint was registered
    with pytest.raises(SpecError, match="arith-ad"):  # the registry's answer, with close names
        run.log_checkpoint(path, step=100, evaluate="arith-ad")
    assert run.evaluations is None and hub.experiments().height == 0
    run.finish()


@pytest.mark.ray
@pytest.mark.slow
def test_checkpoints_logged_with_evaluate_grow_one_experiment_while_training_goes_on(
    hub: Any, build: Any, executor: Any
) -> None:
    from evalhub import tiny

    _register(hub, build)
    run = hub.init_run("train-live", model=tiny.MODEL, type="training", system_metrics=False)
    evaluate = {"tasks": ["arith-add"], "config": {"limit": 12, "batch_size": 12}}
    step = 0

    def train(until: int) -> None:
        nonlocal step
        while step < until:
            step += 1
            run.log({"loss": 3.0 / step}, step=step)

    train(100)
    run.log_checkpoint(Path(build.checkpoints[100]), step=100, evaluate=evaluate, executor=executor)
    exp = run.evaluations
    assert exp is not None and exp.name == "train-live evals"
    # training goes on (more steps logged) while the first checkpoint is evaluated beside it
    deadline = time.monotonic() + 240
    while exp.status() != "completed":
        assert time.monotonic() < deadline, exp.runs()
        train(step + 5)
        time.sleep(0.2)
    assert hub.run(run.id)["status"] == "running" and step > 100
    first = exp.runs()
    assert first.height == 1
    # two more checkpoints back to back: both driven at once, from one executor, into the same experiment
    train(200)
    run.log_checkpoint(build.checkpoints[200], step=200, evaluate=evaluate)
    train(300)
    run.log_checkpoint(build.checkpoints[300], step=300, evaluate=evaluate)
    assert run.evaluations is not None and run.evaluations.id == exp.id
    run.finish()
    exp.wait(timeout=240)
    table = exp.compare().sort("step")
    assert table["checkpoint"].to_list() == ["step-100", "step-200", "step-300"]
    assert set(table["status"]) == {"completed"} and table["exact_match"].null_count() == 0
    for run_id in table["run_id"]:
        assert hub.samples(run_id).height == 12
    assert exp.info()["metadata"]["evalhub_checkpoint_evals"] == {"training_run": run.id}
    assert hub.run(run.id)["status"] == "completed"
    # the checkpoints' writer is this run: its loss and the eval metric share the curve's step axis
    import polars as pl

    import evalhub

    df = evalhub.curves(exp, "exact_match", training="loss", live=False).to_polars()
    assert df.filter(pl.col("key") == "exact_match")["step"].to_list() == [100.0, 200.0, 300.0]
    loss = df.filter(pl.col("key") == "loss")
    assert set(loss["run_id"]) == {run.id} and loss["step"].max() == float(step)


SCRIPT = """
import sys
import evalhub
from evalhub import tiny
hub = evalhub.connect(sys.argv[1], project=sys.argv[2])
run = hub.init_run("train-script", model=tiny.MODEL, type="training", system_metrics=False)
for step in range(1, 101):
    run.log({"loss": 3.0 / step}, step=step)
run.log_checkpoint(sys.argv[3], step=100, evaluate={"tasks": ["arith-add"], "config": {"limit": 6}})
run.finish()
print("EXPERIMENT", run.evaluations.id, flush=True)
"""


@pytest.mark.ray
@pytest.mark.slow
def test_a_training_script_that_ends_waits_for_its_checkpoints_evaluations(
    hub: Any, build: Any, tmp_path: Path
) -> None:
    """The script finishes its run and falls off its end: the process waits at exit for the evaluation
    still going (Ray still up), so its run completes instead of being left to the reaper."""
    import os
    import subprocess
    import sys

    _register(hub, build)
    env = {**os.environ, "EVALHUB_HOME": str(tmp_path / "home"), "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, hub.url, hub.project, str(build.checkpoints[100])],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp_id = int(proc.stdout.split("EXPERIMENT", 1)[1].split()[0])
    assert "waiting for the evaluations of run" in proc.stderr
    exp = hub.experiment(exp_id)
    assert exp.status() == "completed"  # at once: the script's exit waited for it
    assert hub.samples(int(exp.runs()["id"][0])).height == 6
