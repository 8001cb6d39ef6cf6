"""The training-log API (evalhub.tracking.Run) against the real tracking server."""

from __future__ import annotations

import math
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from evalhub import sysmetrics
from evalhub.client import Client
from evalhub.errors import EvalhubError, InvalidValue
from evalhub.hub import Hub


@pytest.fixture
def hub(server_url: str) -> Hub:
    return Hub(Client(server_url, project=f"t{uuid.uuid4().hex[:10]}"))


def test_curves_land(hub: Hub) -> None:
    run = hub.init_run("train", config={"lr": 3e-4}, system_metrics=False)
    for step in range(0, 300, 3):
        run.log({"loss": 3.0 - step / 100, "grad_norm": 0.5}, step=step)
    run.finish()
    loss = hub.series(run.id, "loss", max_points=1000)
    assert loss["step"].to_list() == list(range(0, 300, 3))
    assert loss["value"][0] == pytest.approx(3.0)
    assert hub.series(run.id, "grad_norm").height == 100
    info = hub.run(run.id)
    assert info["status"] == "completed" and info["config"] == {"lr": 3e-4} and info["type"] == "training"


def test_step_defaults_to_a_counter(hub: Hub) -> None:
    with hub.init_run("counter", system_metrics=False) as run:
        run.log({"a": 1.0})
        run.log({"a": 2.0})
        run.log({"a": 5.0}, step=10)
        run.log({"a": 6.0})
    assert hub.series(run.id, "a")["step"].to_list() == [0, 1, 10, 11]


def test_series_are_downsampled_on_read(hub: Hub) -> None:
    with hub.init_run("long", system_metrics=False) as run:
        for step in range(5000):
            run.log({"loss": float(step % 7)}, step=step)
    df = hub.series(run.id, "loss", max_points=100)
    assert df.height <= 100
    assert df.columns == ["step", "value", "min", "max", "wall_time"]
    assert df["min"].min() == 0.0 and df["max"].max() == 6.0


def test_nan_is_a_value_and_what_cannot_be_stored_is_dropped_with_a_warning(hub: Hub) -> None:
    run = hub.init_run("nan", system_metrics=False)
    run.log({"loss": float("nan")}, step=1)
    run.log({"loss": float("inf")}, step=2)
    with pytest.warns(UserWarning, match="'lr'"):
        run.log({"lr": "fast", "loss": 1.0}, step=3)
    run.log({"lr": "faster"}, step=4)  # the same reason again: counted, not warned again
    run.finish()
    values = hub.series(run.id, "loss")["value"].to_list()
    assert math.isnan(values[0]) and values[1:] == [math.inf, 1.0]
    assert "lr" not in hub.series_keys(run.id)["key"].to_list()
    assert run.dropped == 2
    assert any("dropped key 'lr'" in line["message"] for line in hub.logs(run.id))


def test_log_checkpoint_registers_it_with_the_run(hub: Hub, tmp_path: object) -> None:
    hub.register_family("tiny", modality="llm")
    hub.register_model("tiny-hf", family="tiny", runtime="hf")
    with hub.init_run("train", model="tiny-hf", system_metrics=False) as run:
        run.log({"loss": 1.0}, step=100)
        ckpt = run.log_checkpoint("/data/tiny/step-100", step=100)
        other = run.log_checkpoint("/data/tiny/final", model="tiny-hf", name="final", step=200)
    assert ckpt["name"] == "step-100" and ckpt["run_id"] == run.id and ckpt["step"] == 100
    assert hub.checkpoint("tiny-hf", "final")["id"] == other["id"]
    assert hub.checkpoints(model="tiny-hf")["name"].to_list() == ["step-100", "final"]


def test_log_checkpoint_without_a_model_says_what_to_do(hub: Hub) -> None:
    with hub.init_run("train", system_metrics=False) as run, pytest.raises(InvalidValue, match="model="):
        run.log_checkpoint("/data/x", step=1)


def test_context_manager_marks_failed_with_the_error(hub: Hub) -> None:
    with pytest.raises(RuntimeError), hub.init_run("boom", system_metrics=False) as run:
        run.log({"loss": 1.0}, step=1)
        raise RuntimeError("diverged at step 1")
    info = hub.run(run.id)
    assert info["status"] == "failed"
    assert "diverged at step 1" in info["error"]
    assert hub.series(run.id, "loss").height == 1


def test_summary_sets_metrics(hub: Hub) -> None:
    with hub.init_run("sum", system_metrics=False) as run:
        run.summary({"best_loss": 0.7})
        run.summary({"best_loss": 0.5, "epochs": 3})
    assert hub.metrics(run.id) == {"best_loss": 0.5, "epochs": 3.0}


def test_log_after_finish_is_refused(hub: Hub) -> None:
    run = hub.init_run("done", system_metrics=False)
    run.finish()
    with pytest.raises(EvalhubError, match="finished"):
        run.log({"x": 1.0})


def test_system_metrics_are_sampled(hub: Hub) -> None:
    run = hub.init_run("sys", system_metrics_interval=0.1)
    run.log({"loss": 1.0}, step=0)
    while run._sampler is not None and run._sampler.count < 3:
        run._sampler._stop.wait(0.05)
    run.finish()
    keys = set(hub.series_keys(run.id)["key"].to_list())
    assert {"sys/cpu_percent", "sys/rss_mb", "loss"} <= keys
    assert hub.series(run.id, "sys/rss_mb")["value"].min() > 0


def test_system_metrics_can_be_turned_off(hub: Hub) -> None:
    with hub.init_run("nosys", system_metrics=False) as run:
        run.log({"loss": 1.0}, step=0)
    assert hub.series_keys(run.id)["key"].to_list() == ["loss"]


def test_snapshot_without_gpu_has_only_process_keys() -> None:
    values = sysmetrics.snapshot()
    assert values["sys/rss_mb"] > 0
    gpu_keys = [k for k in values if k.startswith("sys/gpu/")]
    # No GPU here: nvidia-ml-py finds no driver and the GPU keys are skipped, not an error.
    assert gpu_keys == [] or all(k.endswith(("/util", "/mem_mb")) for k in gpu_keys)


def _script(server_url: str, project: str, body: str) -> subprocess.CompletedProcess[str]:
    code = (
        "from evalhub.hub import connect\n"
        f"hub = connect({server_url!r}, project={project!r})\n"
        "run = hub.init_run('script', system_metrics=False)\n"
        "print(run.id, flush=True)\n"
        "for s in range(100):\n"
        "    run.log({'loss': 1.0 / (s + 1)}, step=s)\n" + body
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_unfinished_run_completes_at_exit(hub: Hub, server_url: str) -> None:
    proc = _script(server_url, hub.project, "")
    assert proc.returncode == 0, proc.stderr
    run_id = int(proc.stdout.split()[0])
    assert hub.run(run_id)["status"] == "completed"
    assert hub.series(run_id, "loss").height == 100


def test_run_of_a_crashed_script_fails_with_the_error(hub: Hub, server_url: str) -> None:
    proc = _script(server_url, hub.project, "raise ValueError('bad batch')\n")
    assert proc.returncode == 1 and "bad batch" in proc.stderr
    info = hub.run(int(proc.stdout.split()[0]))
    assert info["status"] == "failed" and "ValueError: bad batch" in info["error"]
    assert hub.series(info["id"], "loss").height == 100


def test_log_artifact_round_trip(hub: Hub, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("lr: 0.0003\n")
    with hub.init_run("art", system_metrics=False) as run:
        stored = run.log_artifact(config)
    assert stored["name"] == "config.yaml" and stored["size"] == len("lr: 0.0003\n")
    assert hub.artifact(run.id, "config.yaml") == b"lr: 0.0003\n"
    assert hub.artifacts(run.id)["name"].to_list() == ["config.yaml"]
