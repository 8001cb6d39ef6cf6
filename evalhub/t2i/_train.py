"""Train the tiny text-to-image model on CPU and save diffusers pipelines at several steps.

Alongside it: the shape classifier (correctness) and a tiny CLIP (CLIPScore), trained on the same
world, and the prompt-set task with its reference images. ``build`` is to the T2I side what
``evalhub.tiny.build`` is to the text side.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalhub.t2i import _components as parts
from evalhub.t2i._shapes import draw_many, write_prompt_set

if TYPE_CHECKING:
    import torch

    from evalhub.hub import Hub
    from evalhub.tracking import Run

log = logging.getLogger(__name__)

FAMILY = "tiny-t2i"
MODEL = "tiny-t2i"
RUNTIME = "diffusers"


@dataclass(frozen=True)
class T2IConfig:
    """Optimisation of the tiny T2I model (the defaults are what the tests and the quickstart use)."""

    batch_size: int = 32
    lr: float = 2e-3
    warmup: int = 25
    ema_decay: float = 0.995
    uncond_prob: float = 0.1  # captions dropped to "" so classifier-free guidance has an unconditional model
    min_snr_gamma: float = 5.0
    dataset_size: int = 4096
    classifier_steps: int = 200
    clip_steps: int = 250
    threads: int = 1  # on a shared 2-core box one thread trains fastest


@dataclass
class T2IBuild:
    """What ``build`` made: pipelines by step, the classifier, the CLIP, the prompt set, the timings."""

    out_dir: Path
    checkpoints: dict[int, Path] = field(default_factory=dict)
    classifier: Path | None = None
    clip: Path | None = None
    prompts: Path | None = None
    run_id: int | None = None
    train_seconds: float = 0.0
    final_loss: float = math.nan
    seconds: dict[str, float] = field(default_factory=dict)


def _lr_at(step: int, cfg: T2IConfig) -> float:
    return cfg.lr * min(1.0, (step + 1) / cfg.warmup)


def _pipeline(unet: Any, text_encoder: Any, tokenizer: Any, vae: Any, scheduler: Any) -> Any:
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


class _EMA:
    """Exponential moving average of a module's parameters (what each checkpoint saves)."""

    def __init__(self, module: torch.nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(module).eval().requires_grad_(False)
        self.decay = decay
        self.updates = 0

    def update(self, module: torch.nn.Module) -> None:
        import torch

        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            for ema, live in zip(self.module.parameters(), module.parameters(), strict=True):
                ema.lerp_(live, 1.0 - decay)


def train_diffusion(
    out: Path,
    steps: int,
    save_every: int,
    seed: int,
    cfg: T2IConfig,
    run: Run | None = None,
    on_checkpoint: Any = None,
) -> tuple[dict[int, Path], float]:
    """The UNet and the text encoder, trained together on (caption, half-resolution image) pairs."""
    import numpy as np
    import torch

    tokenizer = parts.build_tokenizer()
    vae = parts.build_autoencoder()
    text_encoder = parts.build_text_encoder(len(tokenizer))
    unet = parts.build_unet()
    noise_scheduler = parts.train_scheduler()
    scheduler = parts.sample_scheduler(noise_scheduler)

    scenes, images = draw_many(cfg.dataset_size, seed)
    pixels = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        latents = vae.encode(pixels).latents * vae.config.scaling_factor
    ids = tokenizer([s.caption() for s in scenes], padding="max_length", max_length=parts.MAX_TOKENS,
                    truncation=True, return_tensors="pt").input_ids  # fmt: skip
    empty = tokenizer([""], padding="max_length", max_length=parts.MAX_TOKENS, return_tensors="pt").input_ids

    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    ema_unet, ema_text = _EMA(unet, cfg.ema_decay), _EMA(text_encoder, cfg.ema_decay)
    alphas = noise_scheduler.alphas_cumprod
    rng = random.Random(f"t2i-train-{seed}")
    generator = torch.Generator().manual_seed(seed)
    checkpoints: dict[int, Path] = {}
    loss_value = math.nan
    unet.train()
    text_encoder.train()
    for step in range(1, steps + 1):
        t0 = time.perf_counter()
        lr = _lr_at(step - 1, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        idx = torch.tensor(rng.sample(range(len(scenes)), cfg.batch_size))
        batch_ids = ids[idx].clone()
        drop = torch.rand(cfg.batch_size, generator=generator) < cfg.uncond_prob
        batch_ids[drop] = empty[0]
        x0 = latents[idx]
        noise = torch.randn(x0.shape, generator=generator)
        t = torch.randint(
            0, noise_scheduler.config.num_train_timesteps, (cfg.batch_size,), generator=generator
        )
        noisy = noise_scheduler.add_noise(x0, noise, t)
        context = text_encoder(batch_ids)[0]
        pred = unet(noisy, t, context).sample
        # min-SNR-gamma weighting (Hang et al. 2023): converges in far fewer steps than plain MSE
        snr = alphas[t] / (1 - alphas[t])
        weight = torch.clamp(snr, max=cfg.min_snr_gamma) / snr
        loss = (weight * (pred - noise).pow(2).mean(dim=(1, 2, 3))).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, 1.0))
        optimizer.step()
        ema_unet.update(unet)
        ema_text.update(text_encoder)
        loss_value = float(loss.detach())
        if run is not None:
            elapsed = max(time.perf_counter() - t0, 1e-9)
            run.log({"loss": loss_value, "lr": lr, "grad_norm": grad_norm,
                     "images_per_s": cfg.batch_size / elapsed}, step=step)  # fmt: skip
        if step % save_every == 0 or step == steps:
            path = out / f"step-{step}"
            _pipeline(ema_unet.module, ema_text.module, tokenizer, vae, scheduler).save_pretrained(path)
            checkpoints[step] = path
            if on_checkpoint is not None:
                on_checkpoint(path, step)
    return checkpoints, loss_value


def build(
    out_dir: str | Path,
    hub: Hub | None = None,
    steps: int = 300,
    save_every: int = 100,
    seed: int = 0,
    config: T2IConfig | None = None,
    run: Run | None = None,
    prompts: int = 200,
) -> T2IBuild:
    """Train the tiny T2I model, its classifier and its CLIP; write the prompt set. A few CPU minutes.

    Saves diffusers pipelines ``out_dir/step-<n>`` (``DiffusionPipeline.from_pretrained`` loads each),
    ``out_dir/classifier`` (:class:`ShapeClassifier`), ``out_dir/clip`` (a transformers ``CLIPModel`` with
    its processor) and the prompt set ``out_dir/shapes.jsonl`` + ``out_dir/shapes-references/``
    (``prompts`` prompts). With a ``hub``, logs loss/lr/grad_norm through ``hub.init_run`` and registers
    family ``tiny-t2i`` (modality ``t2i``), model ``tiny-t2i`` (runtime ``diffusers``) and a checkpoint
    ``step-<n>`` per save. Deterministic in ``seed`` for a given number of threads.

    >>> result = build("/tmp/tiny-t2i")     # result.checkpoints[300] is a diffusers pipeline folder
    """
    import torch

    from evalhub.t2i._classifier import train_classifier
    from evalhub.t2i._clip import train_clip

    cfg = config or T2IConfig()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    result = T2IBuild(out_dir=out)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(cfg.threads, os.cpu_count() or 1)))
    torch.manual_seed(seed)
    if hub is not None:
        _register_model(hub)
    if run is None and hub is not None:
        run = hub.init_run("train-tiny-t2i", config={"steps": steps, "save_every": save_every, "seed": seed,
                                                      **cfg.__dict__}, type="training")  # fmt: skip
    if run is not None:
        result.run_id = getattr(run, "id", None)

    def checkpoint_saved(path: Path, step: int) -> None:
        if run is not None:
            _log_checkpoint(run, path, step)

    ok = False
    start = time.perf_counter()
    try:
        t0 = time.perf_counter()
        result.prompts = write_prompt_set(out, n=prompts, seed=seed)
        vae = parts.build_autoencoder()
        classifier = train_classifier(cfg.classifier_steps, seed=seed,
                                      roundtrip=lambda x: vae.decode(vae.encode(x).latents).sample)  # fmt: skip
        result.classifier = classifier.save(out / "classifier")
        result.seconds["classifier"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        result.clip = train_clip(out / "clip", steps=cfg.clip_steps, seed=seed)
        result.seconds["clip"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        result.checkpoints, result.final_loss = train_diffusion(
            out, steps, save_every, seed, cfg, run=run, on_checkpoint=checkpoint_saved
        )
        result.seconds["diffusion"] = time.perf_counter() - t0
        result.train_seconds = time.perf_counter() - start
        ok = True
    finally:
        torch.set_num_threads(previous_threads)
        if run is not None:
            run.finish(status="completed") if ok else run.finish(
                status="failed", error="tiny T2I build interrupted"
            )
    log.info("tiny T2I model trained in %.1fs, final loss %.3f", result.train_seconds, result.final_loss)
    return result


def _register_model(hub: Hub) -> None:
    from evalhub.errors import Conflict

    try:
        hub.register_family(FAMILY, modality="t2i", description="tiny text-to-image model of coloured shapes")
    except Conflict:
        pass
    try:
        hub.register_model(MODEL, family=FAMILY, runtime=RUNTIME, code_uri=None, adapter=None)
    except Conflict:
        pass


def _log_checkpoint(run: Any, path: Path, step: int) -> None:
    from evalhub.errors import Conflict

    try:
        run.log_checkpoint(str(path), step=step, model=MODEL, name=f"step-{step}")
    except Conflict:
        log.warning("checkpoint step-%d of %s is already registered; kept the existing entry", step, MODEL)
