"""Train the tiny GPT-2-style model on generated arithmetic and spelling, on CPU, in well under a minute.

Each training example is one line that starts with ``<|bos|>`` as an evaluated prompt does: mostly
additions (``"12+7= 19\n"``), some numbers spelled out (``"spell 305: three zero five\n"``) and some
additions in the chat template (``<|user|>12+7= <|end|>\n<|assistant|>19<|end|>``), so the model answers
under ``apply_chat_template`` too.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalhub.tiny._tasks import sample_number, sample_problem, spell_text

if TYPE_CHECKING:
    import torch

    from evalhub.hub import Hub
    from evalhub.tracking import Run

log = logging.getLogger(__name__)

FAMILY = "tiny-gpt"
MODEL = "tiny-gpt"


@dataclass(frozen=True)
class TinyConfig:
    """Architecture and optimisation of the tiny model (the defaults are what the quickstart uses)."""

    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 256
    batch_size: int = 64
    lr: float = 3e-3
    warmup: int = 20
    weight_decay: float = 0.01
    threads: int = 1  # on a shared 2-core box one thread trains fastest
    spell_share: float = 0.15  # of the training lines: numbers spelled out
    chat_share: float = 0.15  # additions in the chat template


@dataclass
class TinyBuild:
    """What ``build`` made: the checkpoint folders by step, the training run id, the timings."""

    out_dir: Path
    checkpoints: dict[int, Path] = field(default_factory=dict)
    run_id: int | None = None
    train_seconds: float = 0.0
    final_loss: float = math.nan
    tasks: dict[str, Path] = field(default_factory=dict)


def _lr_at(step: int, steps: int, cfg: TinyConfig) -> float:
    """Linear warm-up then cosine decay to a tenth of the peak."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


def _line(rng: random.Random, tokenizer: Any, cfg: TinyConfig) -> list[int]:
    """One training example's token ids (``<|bos|>`` first, like every evaluated prompt)."""
    draw = rng.random()
    if draw < cfg.spell_share:
        return list(tokenizer.encode(spell_text(sample_number(rng))))
    problem = sample_problem(rng)
    if draw < cfg.spell_share + cfg.chat_share:
        chat = [
            {"role": "user", "content": problem.prompt + " "},
            {"role": "assistant", "content": str(problem.answer)},
        ]
        text = tokenizer.apply_chat_template(chat, tokenize=False)
        return list(tokenizer.encode(text, add_special_tokens=False))  # the template starts with <|bos|>
    return list(tokenizer.encode(problem.text()))


def _batch(rng: random.Random, tokenizer: Any, cfg: TinyConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """A right-padded batch of single examples, each starting at position 0 like an eval prompt."""
    import torch

    rows = [_line(rng, tokenizer, cfg) for _ in range(cfg.batch_size)]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        labels[i, : len(row)] = torch.tensor(row)
    return ids, labels


def _register_model(hub: Hub) -> None:
    from evalhub.errors import Conflict

    try:
        hub.register_family(FAMILY, modality="llm", description="tiny GPT-2-style arithmetic model")
    except Conflict:
        pass
    try:
        hub.register_model(MODEL, family=FAMILY, runtime="hf", code_uri=None, adapter=None)
    except Conflict:
        pass


def build(
    out_dir: str | Path,
    hub: Hub | None = None,
    steps: int = 300,
    save_every: int = 100,
    seed: int = 0,
    config: TinyConfig | None = None,
    run: Run | None = None,
    evaluate: Any = None,
) -> TinyBuild:
    """Train the tiny model and save HF-format checkpoints ``out_dir/step-<n>``.

    With a ``hub``, logs loss/lr/grad_norm/tokens_per_s through ``hub.init_run`` and registers family
    ``tiny-gpt``, model ``tiny-gpt`` (runtime ``hf``) and one checkpoint ``step-<n>`` per save.
    Deterministic in ``seed`` (for a given number of threads). Pass ``run`` (from ``hub.init_run``) to log
    into a run you already show, e.g. with ``evalhub.curves(run.id, "loss")`` before training starts.
    ``evaluate`` (a task name or a spec without models) evaluates each checkpoint as it is saved, into
    the run's growing experiment ``run.evaluations`` (see :meth:`evalhub.tracking.Run.log_checkpoint`).

    >>> result = build("/tmp/tiny", steps=300)     # result.checkpoints[300] is a folder
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from evalhub.tiny._tokenizer import build_tokenizer

    cfg = config or TinyConfig()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    result = TinyBuild(out_dir=out)

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(cfg.threads, os.cpu_count() or 1)))
    torch.manual_seed(seed)
    rng = random.Random(f"tiny-train-{seed}")

    tokenizer = build_tokenizer(model_max_length=cfg.n_positions)
    model_config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=cfg.n_positions,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    model = GPT2LMHeadModel(model_config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    if hub is not None:
        _register_model(hub)
    if run is None and hub is not None:
        run = hub.init_run(
            "train-tiny-gpt",
            config={"steps": steps, "save_every": save_every, "seed": seed, **cfg.__dict__},
            type="training",
        )
    if run is not None:
        result.run_id = getattr(run, "id", None)

    ok = False
    try:
        start = time.perf_counter()
        model.train()
        for step in range(1, steps + 1):
            t0 = time.perf_counter()
            lr = _lr_at(step - 1, steps, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            ids, labels = _batch(rng, tokenizer, cfg)
            loss = model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
            optimizer.step()
            n_tokens = int((labels != -100).sum())
            result.final_loss = float(loss.detach())
            if run is not None:
                elapsed = max(time.perf_counter() - t0, 1e-9)
                run.log(
                    {
                        "loss": result.final_loss,
                        "lr": lr,
                        "grad_norm": grad_norm,
                        "tokens_per_s": n_tokens / elapsed,
                    },
                    step=step,
                )
            if step % save_every == 0 or step == steps:
                path = out / f"step-{step}"
                model.save_pretrained(path)
                tokenizer.save_pretrained(path)
                result.checkpoints[step] = path
                if run is not None:
                    _log_checkpoint(run, path, step, evaluate)
        result.train_seconds = time.perf_counter() - start
        ok = True
    finally:
        torch.set_num_threads(previous_threads)
        if run is not None:
            if ok:
                run.finish(status="completed")
            else:
                run.finish(status="failed", error="tiny build interrupted")
    log.info("tiny model trained in %.1fs, final loss %.3f", result.train_seconds, result.final_loss)
    return result


def _log_checkpoint(run: Any, path: Path, step: int, evaluate: Any = None) -> None:
    from evalhub.errors import Conflict

    try:
        run.log_checkpoint(str(path), step=step, model=MODEL, name=f"step-{step}", evaluate=evaluate)
    except Conflict:
        log.warning("checkpoint step-%d of %s is already registered; kept the existing entry", step, MODEL)
