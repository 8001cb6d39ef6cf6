"""The ``diffusers`` runtime: a text-to-image pipeline loaded with ``DiffusionPipeline.from_pretrained``.

Params (the model's ``default_params`` and run overrides): ``device`` (``cuda`` when available, else
``cpu``), ``dtype`` (``auto``: float16 on CUDA, float32 on CPU; or a torch dtype name), ``batch_size``
(8), and defaults for :class:`ImageParams` (``steps``, ``guidance``, ``width``, ``height``,
``negative_prompt``, ``seed``).

Each prompt gets its own seed (``ImageParams.seeds``, else ``seed + i``) and its own
``torch.Generator``, so an image depends on its prompt and seed only: two runs see the same noise, a
rerun reproduces its images, and the batch an image is drawn in does not change its noise.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalhub.adapters.base import Adapter, CheckpointRef, Generation, GenerationParams
from evalhub.errors import AdapterError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

DEFAULT_BATCH_SIZE = 8
DEFAULT_SEED = 1234
MAX_SIDE = 4096


@dataclass(frozen=True)
class ImageParams:
    """Settings of one ``generate_images`` call. ``width``/``height`` None: the pipeline's native size."""

    steps: int = 20
    guidance: float = 4.0
    width: int | None = None
    height: int | None = None
    negative_prompt: str | None = None
    seed: int = DEFAULT_SEED
    seeds: tuple[int, ...] | None = None  # one per prompt; overrides seed + i
    batch_size: int | None = None  # None: the adapter's

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any] | None) -> ImageParams:
        """From spec-style names: ``steps``/``num_inference_steps``, ``guidance``/``guidance_scale``,
        ``width``, ``height``, ``size`` (one side or ``[w, h]``), ``negative_prompt``, ``seed``, ``batch_size``."""
        k = dict(kwargs or {})
        width, height = k.get("width"), k.get("height")
        size = k.get("size")
        if size is not None:
            width, height = (size, size) if isinstance(size, int) else tuple(size)
        seeds = k.get("seeds")
        return cls(
            steps=int(k.get("steps", k.get("num_inference_steps", cls.steps))),
            guidance=float(k.get("guidance", k.get("guidance_scale", cls.guidance))),
            width=None if width is None else int(width),
            height=None if height is None else int(height),
            negative_prompt=k.get("negative_prompt"),
            seed=int(k.get("seed", DEFAULT_SEED)),
            seeds=None if seeds is None else tuple(int(s) for s in seeds),
            batch_size=None if k.get("batch_size") is None else int(k["batch_size"]),
        )

    def seed_of(self, i: int) -> int:
        return self.seeds[i] if self.seeds is not None else self.seed + i


@dataclass
class GeneratedImage:
    """One generated image (uint8 H x W x 3) with what made it."""

    pixels: NDArray[np.uint8]
    prompt: str
    seed: int
    latency_ms: float  # wall time of the batch that drew it: every image of a batch is done at its end
    batch_size: int
    width: int
    height: int
    params: dict[str, Any] = field(default_factory=dict)

    def to_pil(self) -> Any:
        from PIL import Image

        return Image.fromarray(self.pixels)

    def save(self, path: Any) -> None:
        self.to_pil().save(path)


@dataclass
class ImageStats:
    """Timing of ``generate_images`` calls: images, busy time, per-image latencies."""

    images: int = 0
    busy_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def images_per_s(self) -> float:
        return self.images / self.busy_s if self.busy_s > 0 else 0.0


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


class DiffusersAdapter(Adapter):
    """A diffusers text-to-image pipeline on one device, batched, with a seed per prompt."""

    runtime = "diffusers"

    def __init__(self) -> None:
        super().__init__()
        self.pipeline: Any = None
        self.device = "cpu"
        self.batch_size = DEFAULT_BATCH_SIZE
        self.defaults = ImageParams()
        self.image_stats = ImageStats()
        self.native_size: tuple[int, int] = (0, 0)
        self.size_multiple = 8

    def load(self, checkpoint: CheckpointRef) -> None:
        import torch

        from evalhub.adapters.uris import resolve

        path = resolve(checkpoint.uri)
        name = f"{checkpoint.model}/{checkpoint.name}"
        check_pipeline_folder(path, name)
        params = dict(checkpoint.params)
        self.device = str(params.get("device") or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.batch_size = int(params.get("batch_size", DEFAULT_BATCH_SIZE))
        self.defaults = ImageParams.from_kwargs(params)
        dtype = _torch_dtype(params.get("dtype", "auto"), self.device)
        try:
            from diffusers import DiffusionPipeline

            pipeline = DiffusionPipeline.from_pretrained(str(path), dtype=dtype)
        except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
            raise AdapterError(
                f"cannot load a diffusers pipeline from {path} (checkpoint {name}): {exc}"
            ) from exc
        if not hasattr(pipeline, "unet") and not hasattr(pipeline, "transformer"):
            raise AdapterError(
                f"{path} (checkpoint {name}) holds a {type(pipeline).__name__}, not a text-to-image pipeline"
            )
        pipeline = pipeline.to(self.device)
        pipeline.set_progress_bar_config(disable=True)
        self.pipeline = pipeline
        self.native_size, self.size_multiple = _sizes(pipeline)
        self.checkpoint = checkpoint
        self.image_stats = ImageStats()
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(self.device)

    def close(self) -> None:
        self.pipeline = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover - torch is needed to load at all
            pass

    def peak_memory_mb(self) -> float | None:
        """Peak memory: ``torch.cuda.max_memory_allocated`` on a GPU, the process's peak RSS on CPU."""
        if self.device.startswith("cuda"):
            import torch

            return float(torch.cuda.max_memory_allocated(self.device)) / 2**20
        return _peak_rss_mb()

    def check_size(self, width: int, height: int) -> None:
        """Refuse a size this pipeline can't produce, naming what it can."""
        check_size(width, height, self.native_size, self.size_multiple)

    def resolve(self, params: ImageParams | None) -> ImageParams:
        """``params`` with the unset size filled from the pipeline and checked."""
        p = params if params is not None else self.defaults
        p = replace(p, width=p.width or self.native_size[0], height=p.height or self.native_size[1])
        assert p.width is not None and p.height is not None
        self.check_size(p.width, p.height)
        if p.steps < 1:
            raise AdapterError(f"steps must be at least 1, got {p.steps}")
        return p

    def generate_images(
        self, prompts: Sequence[str], params: ImageParams | None = None
    ) -> list[GeneratedImage]:
        """One image per prompt, in order, drawn in batches; timed into ``image_stats``."""
        import numpy as np
        import torch

        if self.pipeline is None:
            raise AdapterError("the diffusers adapter is not loaded: call load(checkpoint) first")
        p = self.resolve(params)
        if p.seeds is not None and len(p.seeds) != len(prompts):
            raise AdapterError(f"{len(p.seeds)} seeds for {len(prompts)} prompts: give one seed per prompt")
        empty = [i for i, text in enumerate(prompts) if not str(text).strip()]
        if empty:
            raise AdapterError(f"prompt {empty[0]} is empty: every prompt needs text")
        batch = max(1, p.batch_size or self.batch_size)
        settings = {"steps": p.steps, "guidance": p.guidance, "width": p.width, "height": p.height,
                    "negative_prompt": p.negative_prompt, "scheduler": type(self.pipeline.scheduler).__name__}  # fmt: skip
        out: list[GeneratedImage] = []
        for start in range(0, len(prompts), batch):
            chunk = [str(t) for t in prompts[start : start + batch]]
            seeds = [p.seed_of(start + i) for i in range(len(chunk))]
            generators = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
            t0 = time.perf_counter()
            # an early checkpoint's activations underflow into denormals, which CPUs compute slowly
            flush = not self.device.startswith("cuda") and torch.set_flush_denormal(True)
            try:
                with torch.inference_mode():
                    result = self.pipeline(
                        prompt=chunk,
                        negative_prompt=[p.negative_prompt] * len(chunk) if p.negative_prompt else None,
                        num_inference_steps=p.steps,
                        guidance_scale=p.guidance,
                        width=p.width,
                        height=p.height,
                        generator=generators,
                        output_type="np",
                    )
            finally:
                if flush:
                    torch.set_flush_denormal(False)
            seconds = time.perf_counter() - t0
            images = np.clip(np.round(np.asarray(result.images) * 255.0), 0, 255).astype(np.uint8)
            self.image_stats.images += len(chunk)
            self.image_stats.busy_s += seconds
            self.image_stats.latencies_ms.extend([seconds * 1000.0] * len(chunk))
            for text, seed, pixels in zip(chunk, seeds, images, strict=True):
                out.append(GeneratedImage(pixels, text, seed, seconds * 1000.0, len(chunk), int(p.width or 0),
                                          int(p.height or 0), settings))  # fmt: skip
        return out

    def _generate(self, prompts: list[str], params: GenerationParams) -> list[Generation]:
        raise AdapterError("the diffusers runtime makes images: call generate_images(prompts, params)")


def check_pipeline_folder(path: str | Path, name: str) -> None:
    """Refuse a folder that isn't a saved diffusers pipeline (``name`` is the checkpoint it was given for)."""
    if not (Path(path) / "model_index.json").is_file():
        raise AdapterError(
            f"{path} (checkpoint {name}) is not a diffusers pipeline: it has no model_index.json; "
            "save one with pipeline.save_pretrained(folder)"
        )


def check_size(width: int, height: int, native: tuple[int, int], multiple: int) -> None:
    """Refuse a size a pipeline of this native size and size multiple can't produce, naming what it can."""
    for side, value in (("width", width), ("height", height)):
        if value <= 0 or value > MAX_SIDE or value % multiple:
            raise AdapterError(
                f"this pipeline can't produce {side} {value}: sizes must be multiples of "
                f"{multiple} up to {MAX_SIDE} (its native size is {native[0]}x{native[1]})"
            )


def _sizes_of(scale: int, denoiser: Mapping[str, Any]) -> tuple[tuple[int, int], int]:
    sample = denoiser.get("sample_size")
    side = int(sample[0] if isinstance(sample, list | tuple) else sample or 64) * scale
    levels = len(denoiser.get("block_out_channels") or ())
    multiple = max(8, scale * 2 ** max(0, levels - 1))  # Stable Diffusion pipelines check multiples of 8
    return (side, side), multiple


def _sizes(pipeline: Any) -> tuple[tuple[int, int], int]:
    """The pipeline's native (width, height) and the multiple every size must be."""
    scale = int(getattr(pipeline, "vae_scale_factor", 8) or 8)
    denoiser = getattr(pipeline, "unet", None) or getattr(pipeline, "transformer", None)
    return _sizes_of(scale, dict(getattr(denoiser, "config", None) or {}))


def folder_sizes(path: str | Path) -> tuple[tuple[int, int], int]:
    """:func:`_sizes` of a saved pipeline read from its config files, loading no weights (for plan time):
    the VAE's scale is ``2 ** (len(block_out_channels) - 1)``, as diffusers' pipelines compute it."""

    def config(part: str) -> dict[str, Any]:
        try:
            return dict(json.loads((Path(path) / part / "config.json").read_text()))
        except (OSError, ValueError):
            return {}

    blocks = config("vae").get("block_out_channels")
    scale = 2 ** (len(blocks) - 1) if blocks else 8
    return _sizes_of(scale, config("unet") or config("transformer"))


def _torch_dtype(name: Any, device: str) -> Any:
    import torch

    if name in (None, "auto"):
        return torch.float16 if device.startswith("cuda") else torch.float32
    if isinstance(name, torch.dtype):
        return name
    value = getattr(torch, str(name), None)
    if not isinstance(value, torch.dtype):
        raise AdapterError(f"unknown dtype {name!r}: use auto, float32, float16 or bfloat16")
    return value
