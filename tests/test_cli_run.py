"""``evalhub run``, ``evalhub cancel`` and ``evalhub demo`` as a user runs them: real subprocesses against
a real server (and a real local Ray where runs execute)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from _evalsetup import register_plugin, write_plugins


def _cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evalhub.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "EVALHUB_RAY_DASHBOARD": "0", "EVALHUB_RAY_START_NICE": "-19", **(env or {})},
        check=False,
    )


@pytest.fixture
def project(hub: Any, tmp_path: Path) -> Any:
    from evalhub import tiny

    tiny.write_tasks(tmp_path, n=20)
    tiny.register_tasks(hub, tmp_path)
    plugins = write_plugins(tmp_path / "plugins")
    register_plugin(hub, plugins, "quick", "Slow", delay=0)
    register_plugin(hub, plugins, "short", "ShortAnswers")
    return hub


def _env(hub: Any) -> dict[str, str]:
    return {"EVALHUB_URL": hub.url, "EVALHUB_PROJECT": hub.project}


def test_a_malformed_spec_exits_2_with_one_line(project: Any, tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\nmodels:\n  - model: quick\n    checkpoints: [v1\ntasks: [arith-add]\n")
    result = _cli("run", str(spec), env=_env(project))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "line 5" in lines[0] and "malformed YAML" in lines[0]
    assert project.experiments().height == 0


def test_an_unknown_model_exits_2_with_a_suggestion(project: Any, tmp_path: Path) -> None:
    spec = tmp_path / "typo.yaml"
    spec.write_text("name: x\nmodels: [{model: quik}]\ntasks: [arith-add]\n")
    result = _cli("run", str(spec), env=_env(project))
    assert result.returncode == 2
    assert "did you mean 'quick'" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cancel_cancels_every_queued_run(project: Any) -> None:
    from evalhub.orchestrator import plan, submit

    experiment, _ = submit(
        project, plan(project, "name: c\nmodels: [{model: quick}, {model: short}]\ntasks: [arith-add]\n")
    )
    result = _cli("cancel", str(experiment["id"]), env=_env(project))
    assert result.returncode == 0, result.stderr
    assert "2 cancelled" in result.stdout
    assert set(project.runs(experiment_id=experiment["id"])["status"]) == {"cancelled"}


@pytest.mark.ray
@pytest.mark.slow
def test_run_prints_the_comparison_and_exits_1_when_a_run_failed(project: Any, tmp_path: Path) -> None:
    spec = tmp_path / "exp.yaml"
    name = f"cli-{uuid.uuid4().hex[:6]}"
    spec.write_text(
        f"name: {name}\nmodels: [{{model: quick}}, {{model: short}}]\ntasks: [arith-add]\nconfig: {{limit: 5}}\n"
    )
    result = _cli("run", str(spec), "--no-progress", env=_env(project))
    assert result.returncode == 1, result.stdout + result.stderr
    table = result.stdout
    assert "exact_match" in table and "quick" in table and "completed" in table
    assert "failed: short/v1/python/arith-add: " in result.stderr and "outputs for" in result.stderr
    runs = project.runs()
    assert sorted(runs["status"]) == ["completed", "failed"]


@pytest.mark.ray
@pytest.mark.slow
def test_demo_tells_the_whole_story(tmp_path: Path) -> None:
    from evalhub import _embedded

    try:
        result = _cli(
            "demo", "--home", str(tmp_path / "home"), "--steps", "60", "--limit", "10", "--no-progress"
        )
    finally:
        _embedded.stop(tmp_path / "home")  # the embedded server outlives the CLI by design
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for marker in ("1/4 tracking server", "2/4 training", "3/4 evaluating", "4/4 comparison", "step-60"):
        assert marker in out, out
    assert out.count("completed") >= 6
    assert "failed:" not in result.stderr, result.stderr  # only failed runs are listed as failed
    assert str(tmp_path / "home") in out
