"""Where runs go: the resources a worker asks for, how many fit on the cluster, and how the workers are
shared out among the checkpoints (replicas of one checkpoint's worker when its tasks outnumber the
others'). The plan an experiment shows before it runs (``exp.plan()``, ``evalhub run --dry-run``) and
the scheduler's own decisions come from these same functions.

A worker asks for ``resources.cpus_per_worker`` CPUs and, on a cluster with GPUs,
``resources.gpus_per_worker`` GPUs (fractions allowed: ``0.5`` puts two workers on one GPU). A runtime
that holds a whole node asks for what the node must give it: vLLM with ``tensor_parallel_size`` (or
``pipeline_parallel_size``) N asks for N GPUs on one node (vLLM starts its own processes there).
``resources.max_workers`` caps the workers of the experiment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

UNBOUNDED_WORKERS = 64  # workers that ask for nothing fit without end: cap them here


@dataclass(frozen=True)
class WorkerShape:
    """What one worker asks of a node."""

    num_cpus: float
    num_gpus: float = 0.0
    whole_node: bool = False  # a runtime that holds a node (tensor parallel): the GPUs of one node

    def options(self) -> dict[str, Any]:
        """The Ray actor options for these resources."""
        out: dict[str, Any] = {"num_cpus": self.num_cpus}
        if self.num_gpus > 0:
            out["num_gpus"] = self.num_gpus
        return out

    def describe(self) -> str:
        parts = [f"{self.num_cpus:g} CPU"]
        if self.num_gpus:
            parts.append(f"{self.num_gpus:g} GPU")
        if self.whole_node:
            parts.append("on one node")
        return ", ".join(parts)


def shape_of(
    resources: Mapping[str, Any], runtime: str, params: Mapping[str, Any], gpus: float
) -> WorkerShape:
    """The shape of a worker for a checkpoint run by ``runtime`` with ``params``, on a cluster that
    has ``gpus`` GPUs in all (without any, workers run on CPUs; a tensor-parallel runtime still asks
    for its GPUs, and is refused)."""
    cpus = float(resources.get("cpus_per_worker", 1) if resources.get("cpus_per_worker") is not None else 1)
    asked = resources.get("gpus_per_worker")
    per_gpu = float(asked if asked is not None else 1)
    parallel = 1
    if runtime == "vllm":
        parallel = int(params.get("tensor_parallel_size") or 1) * int(
            params.get("pipeline_parallel_size") or 1
        )
    if parallel > 1:
        return WorkerShape(num_cpus=cpus, num_gpus=float(max(parallel, math.ceil(per_gpu))), whole_node=True)
    if gpus > 0 and per_gpu > 0:
        return WorkerShape(num_cpus=cpus, num_gpus=per_gpu)
    return WorkerShape(num_cpus=cpus)  # no GPU in the cluster: workers run on CPUs (the design's default)


def node_fit(shape: WorkerShape, node: Mapping[str, float]) -> int:
    """How many workers of ``shape`` one node (its total resources) holds."""
    fits = []
    if shape.num_cpus > 0:
        fits.append(int(float(node.get("CPU", 0)) // shape.num_cpus + 1e-9))
    if shape.num_gpus > 0:
        fits.append(int(float(node.get("GPU", 0)) / shape.num_gpus + 1e-9))
    return min(fits) if fits else UNBOUNDED_WORKERS


def capacity(shape: WorkerShape, nodes: Sequence[Mapping[str, float]], max_workers: int | None) -> int:
    """How many workers of ``shape`` the cluster's ``nodes`` hold at once, at most ``max_workers``."""
    total = sum(node_fit(shape, n) for n in nodes)
    total = min(total, UNBOUNDED_WORKERS)
    if max_workers:
        total = min(total, int(max_workers))
    return total


def refusal(
    shape: WorkerShape, nodes: Sequence[Mapping[str, float]], where: str = "the Ray cluster"
) -> str | None:
    """Why no node of the cluster can ever host a worker of ``shape`` (None when one can)."""
    if any(node_fit(shape, n) >= 1 for n in nodes):
        return None
    gpus = max((float(n.get("GPU", 0)) for n in nodes), default=0.0)
    cpus = max((float(n.get("CPU", 0)) for n in nodes), default=0.0)
    if shape.num_gpus > gpus:
        held = "a tensor-parallel runtime needs them on one node; " if shape.whole_node else ""
        return (
            f"a worker asks for {shape.num_gpus:g} GPU(s) ({held}resources.gpus_per_worker), but no node of "
            f"{where} has more than {gpus:g}; lower it, or run on a cluster with GPUs"
        )
    return (
        f"a worker asks for {shape.num_cpus:g} CPU(s) (resources.cpus_per_worker), but no node of {where} has "
        f"more than {cpus:g}"
    )


def share(queued: Mapping[Any, int], busy: Mapping[Any, int], slots: int) -> dict[Any, int]:
    """How many workers each group should have: every group with queued runs gets one while slots
    last (in the order given), then the spare slots go one by one to the group with the most queued
    runs per worker; a group never gets more workers than it has runs to give them. ``busy`` counts
    each group's workers evaluating a run now (they are kept)."""
    want = {g: (1 if queued.get(g, 0) or busy.get(g, 0) else 0) for g in queued}
    for g, n in busy.items():
        want[g] = max(want.get(g, 0), n)
    used = sum(want.values())
    if used > slots:  # more groups than slots: the first ones, busy workers kept
        out: dict[Any, int] = {}
        left = slots
        for g in want:
            keep = min(want[g], max(left, busy.get(g, 0)))
            out[g] = keep
            left -= keep
        return out
    left = slots - used
    while left > 0:
        best, ratio = None, 0.0
        for g, n in queued.items():
            room = n + busy.get(g, 0) - want[g]
            if room <= 0:
                continue
            r = (n + busy.get(g, 0)) / max(1, want[g])
            if r > ratio:
                best, ratio = g, r
        if best is None:
            break
        want[best] += 1
        left -= 1
    return want


def cluster_nodes() -> list[dict[str, float]]:
    """The total resources of each live node of the connected Ray cluster."""
    import ray

    return [dict(n.get("Resources") or {}) for n in ray.nodes() if n.get("Alive")]


def describe(
    groups: Mapping[Any, Sequence[str]], shapes: Mapping[Any, WorkerShape], replicas: Mapping[Any, int]
) -> str:
    """The plan as text: per worker group, its replicas and resources, and the runs it evaluates."""
    lines = []
    for key, runs in groups.items():
        shape = shapes[key]
        label = "/".join(str(k) for k in key) if isinstance(key, tuple) else str(key)
        lines.append(f"{label}: {replicas.get(key, 0)} worker(s) x ({shape.describe()}), {len(runs)} run(s)")
        shown = list(runs)[:5]
        lines += [f"    {name}" for name in shown]
        if len(runs) > len(shown):
            lines.append(f"    … {len(runs) - len(shown)} more")
    return "\n".join(lines)


__all__ = [
    "UNBOUNDED_WORKERS",
    "WorkerShape",
    "capacity",
    "cluster_nodes",
    "describe",
    "node_fit",
    "refusal",
    "shape_of",
    "share",
]
