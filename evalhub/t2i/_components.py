"""The parts of the tiny text-to-image pipeline, as diffusers and transformers objects.

- tokenizer: a ``CLIPTokenizer`` whose BPE merges spell the captions' words (other text falls back to
  letters), shared with the tiny CLIP;
- text encoder: a 2-layer ``CLIPTextModel``;
- autoencoder: an ``AutoencoderTiny`` set by hand, not trained: its latent is the image at half
  resolution (2x2 average down, bilinear up), so the UNet denoises 16x16x3 "pixels" and the pipeline
  returns 32x32 images;
- UNet: a small ``UNet2DConditionModel`` with cross-attention on the caption at 8x8 and below;
- scheduler: DDPM for training, DPM-Solver++ saved with the pipeline for sampling.
"""

from __future__ import annotations

import itertools
import string
from typing import TYPE_CHECKING, Any

from evalhub.t2i._shapes import SIZE, words

if TYPE_CHECKING:
    from diffusers import AutoencoderTiny, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

MAX_TOKENS = 16  # captions are 11 words; CLIP's own 77 would only cost attention
TEXT_DIM = 64
LATENT_SIZE = SIZE // 2
# the autoencoder's latent is s * image; its scaling factor 1/s makes the UNet see the image's own scale.
# s is small so that DecoderTiny's input clamp, tanh(x / 3) * 3, is the identity to ~1e-6.
_LATENT_SCALE = 0.01
TRAIN_TIMESTEPS = 1000


def _bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """How BPE splits ``word`` with merges ``ranks``: always merge the best-ranked adjacent pair."""
    pieces = [*word[:-1], word[-1] + "</w>"]
    while len(pieces) > 1:
        pairs = [(ranks.get(pair, len(ranks)), i) for i, pair in enumerate(itertools.pairwise(pieces))]
        rank, i = min(pairs)
        if rank == len(ranks):
            break
        pieces = [*pieces[:i], pieces[i] + pieces[i + 1], *pieces[i + 2 :]]
    return pieces


def tokenizer_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The BPE vocabulary and merges: special tokens, letters (inside and at the end of a word), and
    merges under which every caption word is one token (each new merge ranks last, so it never
    changes how an earlier word splits)."""
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in string.ascii_lowercase:
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    ranks: dict[tuple[str, str], int] = {}
    for word in words():
        pieces = _bpe(word, ranks)
        while len(pieces) > 1:
            ranks[(pieces[0], pieces[1])] = len(ranks)
            vocab.setdefault(pieces[0] + pieces[1], len(vocab))
            pieces = _bpe(word, ranks)
    return vocab, list(ranks)


def build_tokenizer() -> CLIPTokenizer:
    from transformers import CLIPTokenizer

    vocab, merges = tokenizer_vocab()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges)  # type: ignore[arg-type]  # tokenizers takes pairs
    tokenizer.model_max_length = MAX_TOKENS
    return tokenizer


def text_config(vocab_size: int) -> dict[str, Any]:
    return {
        "vocab_size": vocab_size,
        "hidden_size": TEXT_DIM,
        "intermediate_size": 2 * TEXT_DIM,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": MAX_TOKENS,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "pad_token_id": 1,
    }


def build_text_encoder(vocab_size: int) -> CLIPTextModel:
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(**text_config(vocab_size)))


def build_autoencoder() -> AutoencoderTiny:
    """The hand-set half-resolution autoencoder (see the module docstring); no parameter is trained."""
    import torch
    from diffusers import AutoencoderTiny

    vae = AutoencoderTiny(
        encoder_block_out_channels=(3, 3),
        decoder_block_out_channels=(3, 3),
        num_encoder_blocks=(0, 0),
        num_decoder_blocks=(0, 0),
        latent_channels=3,
        upsample_fn="bilinear",
        scaling_factor=1.0 / _LATENT_SCALE,
    )
    eye = torch.eye(3)
    s = _LATENT_SCALE
    with torch.no_grad():
        for conv in (m for m in vae.modules() if isinstance(m, torch.nn.Conv2d)):
            conv.weight.zero_()
            if conv.bias is not None:
                conv.bias.zero_()
        enc_in, enc_down, enc_out = (m for m in vae.encoder.layers if isinstance(m, torch.nn.Conv2d))
        enc_in.weight[:, :, 1, 1] = eye  # u = (x + 1) / 2, as EncoderTiny hands it over
        enc_down.weight[:, :, 1:3, 1:3] = eye[:, :, None, None] * 0.25  # 2x2 average, stride 2
        enc_out.weight[:, :, 1, 1] = eye * (2 * s)  # latent = s * (2u - 1) = s * x
        torch.nn.init.constant_(enc_out.bias, -s)  # type: ignore[arg-type]
        dec_in, dec_mid, dec_out = (m for m in vae.decoder.layers if isinstance(m, torch.nn.Conv2d))
        dec_in.weight[:, :, 1, 1] = eye / (2 * s)  # back to u = x / 2 + 1/2 (ReLU keeps it, clipping below 0)
        torch.nn.init.constant_(dec_in.bias, 0.5)  # type: ignore[arg-type]
        dec_mid.weight[:, :, 1, 1] = eye  # after the bilinear upsample
        dec_out.weight[:, :, 1, 1] = eye  # DecoderTiny returns 2u - 1
    vae.requires_grad_(False)
    return vae


def build_unet() -> UNet2DConditionModel:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=LATENT_SIZE,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_DIM,
        attention_head_dim=8,
        norm_num_groups=8,
        only_cross_attention=True,
    )


def train_scheduler() -> Any:
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=TRAIN_TIMESTEPS,
        # Stable Diffusion's schedule: a cosine one reaches alpha_bar ~ 0 at the last step, where the
        # samplers' first x0 estimate divides by sqrt(alpha_bar) and blows up
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        prediction_type="epsilon",
        clip_sample=False,
    )


def sample_scheduler(train: Any) -> Any:
    from diffusers import DPMSolverMultistepScheduler

    return DPMSolverMultistepScheduler.from_config(train.config)
