"""The judge engine: a judge checkpoint's worker answers the prompts of a judge run in one batched
call and reads each verdict; every call becomes a sample of the judge run.

The task carries the rendered prompts (``engine_config.calls``: each with the run and sample it
judges and the position it was shown in) and the parser of the template's verdicts. The prompts all go
to the adapter at once, as any evaluation's requests do, so the adapter batches them its own way (hf
sorts by length); the only work besides the model's is reading the verdicts.

A judge run's sample per call: ``prompt`` (the rendered prompt, a chat as JSON), ``output`` (the raw
answer), ``scores`` ``{"verdict": n}`` where a rating was read, ``extra`` with the judged run and
sample, the position, the verdict (None when unparseable) and the rationale.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evalhub.adapters.base import Adapter, GenerationParams
from evalhub.engines._results import EvalResult
from evalhub.errors import EvalhubError
from evalhub.scorers._verdicts import parse


def call_key(run_id: int, sample_key: str, position: str) -> str:
    """The judge run's sample key of one call (short and unique per judged run, sample and position)."""
    digest = hashlib.sha256(f"{run_id}\x00{sample_key}\x00{position}".encode()).hexdigest()[:24]
    return f"{run_id}-{position}-{digest}"


def options_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """The judge run's config -> the options of :func:`evaluate`."""
    return {
        "batch_size": int(config.get("batch_size") or 16),
        "generation": dict(config.get("generation") or {}),
    }


def evaluate(
    adapter: Adapter,
    task: dict[str, Any],
    *,
    batch_size: int = 16,
    generation: dict[str, Any] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    workdir: Path | None = None,
) -> EvalResult:
    """Answer every call of the judge task and read its verdict."""
    config = task.get("engine_config") or {}
    calls: list[dict[str, Any]] = list(config.get("calls") or [])
    parser = str(config.get("parser") or "mt_bench_single")
    scale = tuple(config.get("scale") or (1, 10))
    judge = str(config.get("judge") or "")
    if not calls:
        raise EvalhubError(f"judge task {task.get('name')!r} has no calls")
    adapter.set_batch_size(batch_size)
    params = GenerationParams.from_kwargs(generation or {}, default_max=512)
    prompts = [c["prompt"] for c in calls]
    total = len(prompts)
    done = [0]

    def on_batch(n: int) -> None:
        done[0] += n
        if on_progress is not None:
            on_progress(min(done[0], total), total)

    if on_progress is not None:
        on_progress(0, total)
    start = time.perf_counter()
    generations = adapter.generate(prompts, params, on_batch=on_batch)
    wall = time.perf_counter() - start
    samples = []
    unparsed = 0
    for i, (call, gen) in enumerate(zip(calls, generations, strict=True)):
        verdict = parse(parser, gen.text, (int(scale[0]), int(scale[1])))
        unparsed += verdict.verdict is None
        prompt = call["prompt"]
        sample: dict[str, Any] = {
            "sample_key": call_key(int(call["run_id"]), str(call["sample_key"]), str(call["position"])),
            "index": i,
            "task": task.get("name"),
            "prompt": prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False),
            "output": gen.text,
            "scores": {} if verdict.score is None else {"verdict": verdict.score},
            "extra": {
                "run_id": int(call["run_id"]),
                "sample_key": str(call["sample_key"]),
                "position": str(call["position"]),
                "other_run_id": call.get("other_run_id"),
                "verdict": verdict.verdict,
                "rationale": verdict.rationale,
                "judge": judge,
            },
        }
        if verdict.score is not None:
            sample["primary_score"] = verdict.score
        if gen.latency_ms is not None:
            sample["latency_ms"] = gen.latency_ms
        if gen.tokens_in is not None and gen.tokens_out is not None:
            sample["tokens_in"], sample["tokens_out"] = gen.tokens_in, gen.tokens_out
        samples.append(sample)
    latencies = sorted(float(g.latency_ms) for g in generations if g.latency_ms is not None)
    perf = {"eval_wall_s": wall, "requests_per_s": total / wall if wall > 0 else 0.0}
    if latencies:
        perf["latency_p50_ms"] = latencies[len(latencies) // 2]
        perf["latency_p95_ms"] = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    metrics = {"calls": float(total), "unparsed": float(unparsed), "parsed": float(total - unparsed)}
    provenance = {
        "kind": "judge",
        "judge": judge,
        "parser": parser,
        "scale": list(scale),
        "calls": total,
        "batch_size": adapter.batch_size,
        "runtime": adapter.runtime,
        "generation": {"max_new_tokens": params.max_new_tokens, "temperature": params.temperature,
                       "until": list(params.until)},
    }  # fmt: skip
    return EvalResult(
        task=str(task.get("name")),
        metrics=metrics,
        samples=samples,
        perf=perf,
        provenance=provenance,
        higher_is_better={"unparsed": False, "parsed": True},
    )


__all__ = ["call_key", "evaluate", "options_from_config"]
