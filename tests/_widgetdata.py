"""Realistic experiment data for the widget, magic and browser tests and the widget benchmark,
written through the real REST API (registry, ``POST /api/experiments``, run events)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

Outcome = Callable[[int, int], tuple[str, float]]
"""(config index, sample index) -> (output, primary score)."""


def arith_outcome(config: int, j: int) -> tuple[str, float]:
    """Config ``c`` gets sample ``j`` wrong when ``j % (c + 2) == 0``: later checkpoints do better;
    wrong answers differ per config."""
    right = j % (config + 2) != 0
    answer = str(2 * j) if right else f"{2 * j + config + 1} apples"
    return answer, 1.0 if right else 0.0


def register_tiny(hub: Any, steps: Sequence[int] = (100, 200, 300), model: str = "tiny-gpt") -> None:
    """A family, a model and checkpoints at ``steps`` (metadata only)."""
    hub.register_family("tiny-gpt", modality="llm", description="a tiny GPT")
    hub.register_model(model, family="tiny-gpt", runtime="hf")
    for s in steps:
        hub.register_checkpoint(model, f"step-{s}", uri=f"/data/tiny/step-{s}", step=s)


def create_experiment(
    hub: Any,
    *,
    name: str = "progress",
    steps: Sequence[int] = (100, 200, 300),
    tasks: Sequence[str] = ("arith-add",),
    model: str = "tiny-gpt",
) -> dict[str, Any]:
    """An experiment with one queued run per (checkpoint, task); returns it with ``runs``."""
    runs = [
        {
            "name": f"{model}@step-{s}/{t}",
            "type": "inference",
            "model": model,
            "checkpoint": f"step-{s}",
            "runtime": "hf",
            "task": t,
        }
        for t in tasks
        for s in steps
    ]
    spec = {
        "name": name,
        "models": [{"model": model, "checkpoints": [f"step-{s}" for s in steps]}],
        "tasks": list(tasks),
    }
    body = {
        "name": name,
        "spec": spec,
        "spec_yaml": "",
        "config": {},
        "client_key": str(uuid.uuid4()),
        "runs": runs,
    }
    return dict(hub.client.post("/api/experiments", body))


def post_events(
    hub: Any, run_id: int, events: list[dict[str, Any]], stream: str = "attempt-1", start_seq: int = 1
) -> int:
    """Post events with consecutive ``seq`` numbers; returns the next ``seq``."""
    for i, e in enumerate(events):
        e["seq"] = start_seq + i
    hub.client.post(f"/api/runs/{run_id}/events", {"stream": stream, "events": events})
    return start_seq + len(events)


def samples_for(
    config: int, n: int, outcome: Outcome = arith_outcome, start: int = 0
) -> list[dict[str, Any]]:
    """``n`` samples of the arithmetic task as config ``config`` answered them."""
    out = []
    for j in range(start, start + n):
        answer, score = outcome(config, j)
        out.append(
            {
                "sample_key": f"doc-{j}",
                "index": j,
                "prompt": f"Question: what is {j} + {j}?\nAnswer:",
                "reference": str(2 * j),
                "output": answer,
                "scores": {"exact_match": score},
                "primary_score": score,
                "latency_ms": 1.5,
            }
        )
    return out


def complete_run(
    hub: Any,
    run: dict[str, Any],
    config: int,
    *,
    n: int = 30,
    outcome: Outcome = arith_outcome,
    batch: int = 2000,
    status: str = "completed",
    error: str | None = None,
) -> None:
    """Run ``run`` to the end as a worker would: running, progress, samples, metrics, final status."""
    seq = post_events(
        hub,
        run["id"],
        [{"type": "status", "status": "running", "worker": {"node": "test", "pid": 1, "gpu": None}}],
    )
    for start in range(0, n, batch):
        size = min(batch, n - start)
        seq = post_events(
            hub,
            run["id"],
            [
                {"type": "samples", "samples": samples_for(config, size, outcome, start)},
                {"type": "progress", "done": start + size, "total": n},
            ],
            start_seq=seq,
        )
    right = sum(outcome(config, j)[1] for j in range(n))
    metrics = {
        "exact_match": right / n if n else 0.0,
        "exact_match_stderr": 0.01,
        "latency_p50_ms": 10.0 + config,
    }
    final: dict[str, Any] = {"type": "status", "status": status}
    if error:
        final["error"] = error
    # as the worker sends them: lm-eval's direction of its metric with the values
    directions = {"exact_match": True}
    post_events(
        hub,
        run["id"],
        [{"type": "metrics", "values": metrics, "higher_is_better": directions}, final],
        start_seq=seq,
    )


def finished_experiment(
    hub: Any, *, n: int = 30, steps: Sequence[int] = (100, 200, 300), tasks: Sequence[str] = ("arith-add",)
) -> dict[str, Any]:
    """A registered model and a completed experiment: one run per (checkpoint, task), ``n`` samples each."""
    register_tiny(hub, steps)
    exp = create_experiment(hub, steps=steps, tasks=tasks)
    for run in exp["runs"]:
        config = list(steps).index(run["step"]) if run.get("step") in steps else 0
        complete_run(hub, run, config, n=n)
    return exp


def trained_experiment(
    hub: Any, steps: Sequence[int] = (100, 200, 300), n: int = 30
) -> tuple[dict[str, Any], Any]:
    """Checkpoints at ``steps`` written by one training run (its loss logged every 10 steps from 0 to
    the last checkpoint), each evaluated on ``n`` samples; (the experiment, the training run)."""
    hub.register_family("tiny-gpt", modality="llm")
    hub.register_model("tiny-gpt", family="tiny-gpt", runtime="hf")
    run = hub.init_run("train", model="tiny-gpt", system_metrics=False)
    for step in range(0, max(steps) + 1, 10):
        run.log({"loss": 3.0 / (1 + step / 50)}, step=step)
        if step in steps:
            run.log_checkpoint(f"/data/tiny/step-{step}", step=step)
    run.finish()
    exp = create_experiment(hub, steps=steps)
    for config, r in enumerate(exp["runs"]):
        complete_run(hub, r, config, n=n)
    return exp, run
