"""The text-to-image engine: generate a prompt set's images with a loaded image adapter, score them.

>>> adapter = load_adapter(CheckpointRef("tiny-t2i", "step-300", "/data/t2i/step-300", "diffusers"))
>>> result = evaluate(adapter, task, seed=1234, batch_size=16, workdir="/tmp/run-17")
>>> result.metrics
{'correct': 0.42, 'correct_stderr': 0.05, 'clip_score': 61.0, 'fid': 140.2, 'kid': 0.08, 'kid_std': 0.01}

``task`` is a registry row: ``{"name": ..., "engine": "t2i", "engine_config": {...}, "metrics": [...]}``
with ``engine_config`` keys ``prompts`` (a JSONL or CSV prompt set: ``prompt`` per row, optional
``id``, ``seed``, ``reference`` image path relative to the file, attributes such as ``shape``/``colour``),
``references`` (a folder of reference images; default: the rows' ``reference`` images),
``classifier`` (a :class:`evalhub.t2i.ShapeClassifier` folder, for ``correct``), ``clip_model`` (a CLIP
checkpoint, for ``clip_score``) and ``generation`` (default :class:`ImageParams` names). ``metrics``
picks from :data:`METRICS` (default: each one the config makes possible).

The result is an :class:`evalhub.engines.lm_eval.EvalResult`: one sample per prompt whose ``extra``
holds the seed, the settings and ``image_path``, the generated PNG under ``workdir`` (the worker stores
it as an artifact); ``output`` is that path too.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalhub.adapters.diffusers import ImageParams
from evalhub.engines.lm_eval import EvalCancelled, EvalResult
from evalhub.errors import EvalhubError

if TYPE_CHECKING:
    import torch

    from evalhub.adapters.base import CheckpointRef
    from evalhub.adapters.diffusers import DiffusersAdapter

ProgressFn = Callable[[int, int], None]
METRICS = ("correct", "clip_score", "fid", "kid")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
_REFERENCE_FEATURES: dict[tuple[str, str], Any] = {}  # (folder digest, network) -> features, per process

__all__ = ["METRICS", "EvalCancelled", "check_task", "evaluate", "load_prompt_set", "options_from_config"]


def load_prompt_set(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a JSONL or CSV prompt set; refuses an empty file or prompt, naming the line."""
    file = Path(path)
    if not file.is_file():
        raise EvalhubError(f"prompt set {file} does not exist")
    numbered: list[tuple[int, dict[str, Any]]] = []
    if file.suffix.lower() == ".csv":
        with file.open(newline="", encoding="utf-8") as fh:
            numbered = [(i, dict(r)) for i, r in enumerate(csv.DictReader(fh), start=2)]
    else:
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalhubError(f"{file}, line {number}: not JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise EvalhubError(f"{file}, line {number}: expected an object with a 'prompt'")
            numbered.append((number, row))
    if not numbered:
        raise EvalhubError(f"prompt set {file} has no prompts")
    for number, row in numbered:
        if not str(row.get("prompt") or "").strip():
            raise EvalhubError(f"{file}, line {number}: the prompt is empty")
    rows = [row for _, row in numbered]
    return rows


def check_task(task: dict[str, Any]) -> dict[str, Any]:
    """A T2I task row's ``engine_config``, checked at plan time: the engine, the prompt set, the metric
    names and the files each metric needs. Raises :class:`EvalhubError` naming what is wrong."""
    name = task.get("name")
    engine = task.get("engine")
    if engine != "t2i":
        raise EvalhubError(
            f"task {name!r} uses engine {engine!r}; image metrics need a t2i task (engine 't2i')"
        )
    config = dict(task.get("engine_config") or {})
    if not config.get("prompts"):
        raise EvalhubError(f"task {name!r} has no engine_config.prompts (a JSONL or CSV prompt set)")
    load_prompt_set(config["prompts"])
    for metric in task.get("metrics") or ():
        if metric not in METRICS:
            raise EvalhubError(
                f"task {name!r}: {metric!r} is not an image metric (use {', '.join(METRICS)}); "
                "text metrics belong to lm_eval tasks"
            )
    for key in ("classifier", "clip_model", "references"):
        if config.get(key) and not str(config[key]).startswith(("hf://", "http://", "https://", "s3://")):
            if not Path(str(config[key])).exists():
                raise EvalhubError(f"task {name!r}: engine_config.{key} {config[key]} does not exist")
            if key == "clip_model":
                from evalhub.t2i.metrics import check_clip_folder

                try:
                    check_clip_folder(str(config[key]))
                except EvalhubError as exc:
                    raise EvalhubError(f"task {name!r}: engine_config.clip_model {exc}") from None
    return config


def generation_of(
    task: dict[str, Any], checkpoint_params: dict[str, Any] | None, generation: Any
) -> ImageParams:
    """A run's image settings: the checkpoint's params (the model's default_params and the spec's), then
    the task's ``engine_config.generation``, then the run's ``generation``, each over the one before."""
    config = dict(task.get("engine_config") or {})
    return ImageParams.from_kwargs(
        {**(checkpoint_params or {}), **(config.get("generation") or {}), **(generation or {})}
    )


def check_checkpoint(task: dict[str, Any], checkpoint: CheckpointRef, run_config: dict[str, Any]) -> None:
    """What a plan can refuse before a worker loads anything, where the checkpoint's folder is on this
    machine (a worker's own folders are checked when it loads them): a folder that isn't a diffusers
    pipeline, and a size the pipeline can't produce (read from its config files)."""
    from evalhub.adapters.diffusers import check_pipeline_folder, check_size, folder_sizes

    uri = checkpoint.uri
    path = Path(uri[len("file://"):] if uri.startswith("file://") else uri).expanduser()  # fmt: skip
    if ("://" in uri and not uri.startswith("file://")) or not path.is_dir():
        return
    name = f"{checkpoint.model}/{checkpoint.name}"
    check_pipeline_folder(path, name)
    params = generation_of(task, checkpoint.params, options_from_config(run_config)["generation"])
    native, multiple = folder_sizes(path)
    try:
        check_size(params.width or native[0], params.height or native[1], native, multiple)
    except EvalhubError as exc:
        raise EvalhubError(f"task {task.get('name')!r} on {name}: {exc}") from None


def options_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`evaluate` that a run's ``config`` sets (as lm_eval's does)."""
    return {
        "limit": config.get("limit"),
        "seed": int(config.get("seed", 1234)),
        "batch_size": int(config.get("batch_size", 16)),
        "generation": config.get("generation") or None,
    }


def sample_seed(seed: int, key: str) -> int:
    """The seed of one prompt: fixed by the run's seed and the prompt's key, whatever else is in the set."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _sample_key(row: dict[str, Any]) -> str:
    if row.get("id") is not None:
        return str(row["id"])
    return hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _wanted(task: dict[str, Any], config: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    asked = list(task.get("metrics") or ())
    possible = {
        "correct": bool(config.get("classifier")),
        "clip_score": bool(config.get("clip_model")),
        "fid": bool(config.get("references")) or any(r.get("reference") for r in rows),
    }
    possible["kid"] = possible["fid"]
    if not asked:
        return [m for m in METRICS if possible[m]]
    missing = {"correct": "classifier", "clip_score": "clip_model", "fid": "references", "kid": "references"}
    for metric in asked:
        if not possible[metric]:
            raise EvalhubError(
                f"task {task.get('name')!r}: metric {metric!r} needs engine_config.{missing[metric]}"
            )
    return asked


def _reference_paths(config: dict[str, Any], rows: list[dict[str, Any]], base: Path) -> list[Path]:
    if config.get("references"):
        from evalhub.adapters.uris import resolve

        folder = resolve(str(config["references"]))
        paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise EvalhubError(f"reference folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return paths
    return [base / str(r["reference"]) for r in rows if r.get("reference")]


def _reference_features(paths: list[Path], network: torch.nn.Module, batch_size: int) -> torch.Tensor:
    """The reference set's features, kept per process: every checkpoint of a task shares them."""
    from evalhub.t2i.metrics import extract_features

    digest = hashlib.sha256()
    for p in paths:
        stat = p.stat()
        digest.update(f"{p.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    key = (digest.hexdigest(), str(getattr(network, "network", "")))
    if key not in _REFERENCE_FEATURES:
        features = [extract_features(paths[i : i + batch_size], network, batch_size)
                    for i in range(0, len(paths), batch_size)]  # fmt: skip
        import torch

        _REFERENCE_FEATURES[key] = torch.cat(features)
    cached: torch.Tensor = _REFERENCE_FEATURES[key]
    return cached


def _mean_stderr(values: list[float]) -> tuple[float, float]:
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def evaluate(
    adapter: DiffusersAdapter,
    task: dict[str, Any],
    *,
    limit: int | None = None,
    seed: int = 1234,
    batch_size: int = 16,
    generation: dict[str, Any] | None = None,
    on_progress: ProgressFn | None = None,
    workdir: str | Path | None = None,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
) -> EvalResult:
    """Generate one image per prompt of ``task`` (batched, a fixed seed per prompt) and score them.

    ``generation`` overrides the task's generation settings (:class:`ImageParams` names: ``steps``,
    ``guidance``, ``width``, ``height``/``size``, ``negative_prompt``). ``on_progress(done, total)``
    runs after each batch and may raise :class:`EvalCancelled`. Images are written as PNG under
    ``workdir/images`` (a temporary folder when None: then the paths vanish with the process).
    """
    import tempfile

    import numpy as np
    import torch

    started = time.perf_counter()
    config = check_task(task)
    name = str(task.get("name") or Path(config["prompts"]).stem)
    prompts_path = Path(config["prompts"])
    rows = load_prompt_set(prompts_path)
    if limit is not None:
        rows = rows[: int(limit)]
    wanted = _wanted(task, config, rows)
    out_dir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="evalhub-t2i-"))
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)

    keys = [_sample_key(r) for r in rows]
    seeds = tuple(
        int(r["seed"]) if r.get("seed") is not None else sample_seed(seed, k)
        for r, k in zip(rows, keys, strict=True)
    )
    checkpoint = getattr(adapter, "checkpoint", None)
    params = generation_of(task, getattr(checkpoint, "params", None), generation)
    params = adapter.resolve(ImageParams(**{**params.__dict__, "seeds": seeds, "batch_size": batch_size}))

    total = len(rows)
    generated: list[Any] = []
    gen_start = time.perf_counter()
    for start in range(0, total, batch_size):
        chunk = slice(start, start + batch_size)
        batch_params = ImageParams(**{**params.__dict__, "seeds": seeds[chunk]})
        generated.extend(adapter.generate_images([str(r["prompt"]) for r in rows[chunk]], batch_params))
        if on_progress is not None:
            on_progress(len(generated), total)
    generate_s = time.perf_counter() - gen_start

    paths: list[Path] = []
    for key, image in zip(keys, generated, strict=True):
        path = image_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.png"
        image.save(path)
        paths.append(path)
    pixels = torch.from_numpy(np.stack([g.pixels for g in generated])).permute(0, 3, 1, 2)

    score_start = time.perf_counter()
    per_sample: list[dict[str, float]] = [{} for _ in rows]
    metrics: dict[str, float] = {}
    provenance_metrics: dict[str, Any] = {}
    if "correct" in wanted:
        from evalhub.t2i._classifier import ShapeClassifier
        from evalhub.t2i.metrics import correctness

        for scores, more in zip(
            per_sample, correctness(ShapeClassifier.load(config["classifier"]), pixels, rows), strict=True
        ):
            scores.update(more)
        for key in sorted({k for s in per_sample for k in s}):
            values = [s[key] for s in per_sample if key in s]
            metrics[key], metrics[f"{key}_stderr"] = _mean_stderr(values)
        provenance_metrics["correct"] = {"classifier": str(config["classifier"])}
    if "clip_score" in wanted:
        from evalhub.t2i.metrics import ClipScorer

        scorer = ClipScorer(config["clip_model"])
        clip = scorer.per_image(pixels, [str(r["prompt"]) for r in rows])
        for scores, value in zip(per_sample, clip, strict=True):
            scores["clip_score"] = value
        metrics["clip_score"] = scorer.summary(clip)
        metrics["clip_score_stderr"] = _mean_stderr(clip)[1]
        provenance_metrics["clip_score"] = {
            "clip_model": str(config["clip_model"]),
            "definition": "max(mean(100 cos), 0)",
        }
    if "fid" in wanted or "kid" in wanted:
        from evalhub.t2i.metrics import distribution_scores, inception_network

        network = inception_network()
        ref_paths = _reference_paths(config, rows, prompts_path.parent)
        reference = _reference_features(ref_paths, network, 50)
        scores_fid = distribution_scores(pixels, reference, network=network, kid_subsets=kid_subsets,
                                         kid_subset_size=kid_subset_size, seed=seed)  # fmt: skip
        if "fid" in wanted:
            metrics["fid"] = scores_fid.fid
        if "kid" in wanted:
            metrics["kid"], metrics["kid_std"] = scores_fid.kid, scores_fid.kid_std
        provenance_metrics["fid"] = scores_fid.as_dict() | {"references": len(ref_paths)}
    score_s = time.perf_counter() - score_start

    primary = "correct" if "correct" in wanted else ("clip_score" if "clip_score" in wanted else None)
    samples: list[dict[str, Any]] = []
    for i, (row, key, image, path, scores) in enumerate(
        zip(rows, keys, generated, paths, per_sample, strict=True)
    ):
        attributes = {k: v for k, v in row.items() if k not in ("prompt", "id", "seed", "reference")}
        sample: dict[str, Any] = {
            "sample_key": key,
            "index": i,
            "prompt": str(row["prompt"]),
            "reference": str(row.get("reference") or ""),
            "output": str(path),
            "scores": scores,
            "latency_ms": image.latency_ms,
            "extra": {"seed": image.seed, "image_path": str(path), "width": image.width, "height": image.height,
                      "batch_size": image.batch_size, "attributes": attributes, "settings": image.params},
        }  # fmt: skip
        if primary is not None and primary in scores:
            sample["primary_score"] = scores[primary]
        samples.append(sample)

    latencies = [g.latency_ms for g in generated]
    perf: dict[str, float] = {
        "latency_p50_ms": _percentile(latencies, 0.5),
        "latency_p95_ms": _percentile(latencies, 0.95),
        "images_per_s": total / generate_s if generate_s > 0 else 0.0,
        "samples_per_s": total / generate_s if generate_s > 0 else 0.0,
        "generate_s": generate_s,
        "score_s": score_s,
        "eval_wall_s": time.perf_counter() - started,
    }
    peak = adapter.peak_memory_mb()
    if peak is not None:
        perf["peak_gpu_mem_mb" if adapter.device.startswith("cuda") else "peak_rss_mb"] = peak
    provenance = {
        "engine": "t2i",
        "task": name,
        "prompt_set": str(prompts_path),
        "prompt_set_sha256": hashlib.sha256(prompts_path.read_bytes()).hexdigest(),
        "n_prompts": total,
        "limit": limit,
        "seed": seed,
        "seeds": "sha256(f'{seed}:{sample_key}')[:4] & 0x7fffffff unless the row sets 'seed'",
        "batch_size": batch_size,
        "generation": {k: v for k, v in params.__dict__.items() if k not in ("seeds", "batch_size")},
        "scheduler": _scheduler_name(adapter),
        "metrics": provenance_metrics,
        "versions": {p: _dist_version(p) for p in ("diffusers", "torch", "torchmetrics", "transformers")},
    }
    return EvalResult(name, metrics, samples, perf, provenance)


def _scheduler_name(adapter: Any) -> str | None:
    """The diffusers scheduler's class name, or None for a plugin that has no pipeline."""
    scheduler = getattr(getattr(adapter, "pipeline", None), "scheduler", None)
    return type(scheduler).__name__ if scheduler is not None else None


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None
