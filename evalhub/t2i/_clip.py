"""A tiny CLIP trained on the shapes world, so CLIPScore runs for real without a download.

A transformers ``CLIPModel`` (2-layer text and vision towers, 8x8 patches of 32x32 images) trained
contrastively on captions and drawn images, saved with its ``CLIPProcessor`` (the PIL image processor:
transformers 5's default one needs torchvision). Any CLIP folder of the same layout works in its place.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalhub.t2i._components import MAX_TOKENS, build_tokenizer
from evalhub.t2i._shapes import SIZE, draw_many

if TYPE_CHECKING:
    import torch


def clip_config(vocab_size: int) -> Any:
    from transformers import CLIPConfig

    return CLIPConfig(
        text_config={
            "vocab_size": vocab_size, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 2, "max_position_embeddings": MAX_TOKENS, "bos_token_id": 0,
            "eos_token_id": 1, "pad_token_id": 1,
        },
        vision_config={
            "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
            "image_size": SIZE, "patch_size": 8,
        },
        projection_dim=64,
    )  # fmt: skip


def build_processor() -> Any:
    from transformers import CLIPProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    images = CLIPImageProcessorPil(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE})
    return CLIPProcessor(image_processor=images, tokenizer=build_tokenizer())  # type: ignore[no-untyped-call]


def _pixel_values(images: torch.Tensor, processor: Any) -> torch.Tensor:
    """What the processor makes of 32x32 uint8 NHWC images (no resize or crop at this size)."""
    import torch

    ip = processor.image_processor
    mean = torch.tensor(ip.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(ip.image_std).view(1, 3, 1, 1)
    return (images.permute(0, 3, 1, 2).float() / 255.0 - mean) / std


def train_clip(out_dir: str | Path, steps: int = 400, seed: int = 0, batch_size: int = 64) -> Path:
    """Train and save the tiny CLIP (``CLIPModel.from_pretrained(out_dir)`` and the processor load it)."""
    import numpy as np
    import torch
    from transformers import CLIPModel

    processor = build_processor()
    tokenizer = processor.tokenizer
    torch.manual_seed(seed)
    model = CLIPModel(clip_config(len(tokenizer))).train()
    scenes, images = draw_many(4096, seed + 30_000)
    pixels = _pixel_values(torch.from_numpy(np.ascontiguousarray(images)), processor)
    tokens = tokenizer([s.caption() for s in scenes], padding="max_length", max_length=MAX_TOKENS,
                       truncation=True, return_tensors="pt")  # fmt: skip
    captions = [s.caption() for s in scenes]
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    rng = random.Random(f"clip-{seed}")
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = 2e-3 * min(1.0, (step + 1) / 20)
        # one image per caption in a batch: a repeated caption would be a false negative
        picked: dict[str, int] = {}
        while len(picked) < batch_size:
            i = rng.randrange(len(scenes))
            picked.setdefault(captions[i], i)
        idx = torch.tensor(list(picked.values()))
        out = model(input_ids=tokens.input_ids[idx], attention_mask=tokens.attention_mask[idx],
                    pixel_values=pixels[idx], return_loss=True)  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
    out_path = Path(out_dir)
    model.eval().save_pretrained(out_path)
    processor.save_pretrained(out_path)
    return out_path
