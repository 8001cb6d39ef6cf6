"""Generation throughput: evalhub's ``hf`` adapter against a hand-written transformers batched greedy loop.

Same model (GPT-2-sized from its config, random weights: nothing is downloaded), same prompts, same batch
size, greedy, no stop sequence. Prints both figures side by side; asserts nothing.

    bench/gpu_throughput.sh            # GPT-2 size (124M) on CUDA
    bench/gpu_throughput.sh --cpu      # a small model on CPU, to check the script runs
"""

from __future__ import annotations

import argparse
import inspect
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZES = {
    "gpt2": {"n_layer": 12, "n_embd": 768, "n_head": 12, "n_positions": 1024, "vocab_size": 50257},
    "small": {"n_layer": 4, "n_embd": 256, "n_head": 4, "n_positions": 256, "vocab_size": 4096},
}


def make_checkpoint(folder: Path, size: dict[str, int], seed: int) -> None:
    """A random-weight GPT-2 of ``size`` with a word-level tokenizer of the same vocabulary size."""
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from evalhub.tiny._tokenizer import vocab as char_vocab

    table = dict(char_vocab())
    for i in range(len(table), size["vocab_size"]):
        table[f"<t{i}>"] = i  # filler tokens: the model has GPT-2's full output layer
    tok = Tokenizer(models.WordLevel(vocab=table, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    torch.manual_seed(seed)
    config = GPT2Config(**size, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():  # never predict EOS, so every sequence runs its full length in both paths
        model.lm_head.weight[2].zero_()
        model.transformer.wte.weight[2].fill_(0.0)
    model.generation_config.pad_token_id = 0
    model.generation_config.eos_token_id = None
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def prompts(n: int, seed: int, lo: int, hi: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789+= "
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi))) for _ in range(n)]


def _cache_of(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def hand_loop(
    folder: Path, texts: list[str], batch_size: int, max_new: int, device: str, dtype: Any
) -> tuple[float, int, list[list[int]]]:
    """The peer: plain transformers, left-padded batches, KV cache, argmax, fixed length."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    outputs: list[list[int]] = [[] for _ in texts]
    generated = 0
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    # the cache argument is `cache` in newer transformers, `past_key_values` before
    params = inspect.signature(model.forward).parameters
    cache_arg = "cache" if "cache" in params else "past_key_values"
    keep = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True).to(device)
            ids, mask = enc["input_ids"], enc["attention_mask"]
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **keep)
            cache, new = _cache_of(out), []
            nxt = out.logits[:, -1, :].argmax(-1, keepdim=True)
            for _ in range(max_new):
                new.append(nxt)
                mask = torch.cat([mask, torch.ones_like(nxt)], dim=1)
                positions = positions[:, -1:] + 1
                out = model(
                    input_ids=nxt,
                    attention_mask=mask,
                    position_ids=positions,
                    use_cache=True,
                    **{cache_arg: cache},
                )
                cache = _cache_of(out)
                nxt = out.logits[:, -1, :].argmax(-1, keepdim=True)
            tokens = torch.cat(new, dim=1).tolist()
            for row, i in enumerate(idx):
                outputs[i] = tokens[row]
            generated += len(idx) * max_new
    sync()
    return time.perf_counter() - start, generated, outputs


def adapter_run(
    folder: Path, texts: list[str], batch_size: int, max_new: int, device: str
) -> tuple[float, int, list[str], Any]:
    import torch

    from evalhub.adapters import CheckpointRef, GenerationParams, load_adapter

    adapter = load_adapter(
        CheckpointRef(
            "bench", "random", str(folder), "hf", params={"batch_size": batch_size, "device": device}
        )
    )
    params = GenerationParams(max_new_tokens=max_new)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    out = adapter.generate(texts, params)
    sync()
    return time.perf_counter() - start, sum(g.tokens_out for g in out), [g.text for g in out], adapter


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cpu", action="store_true", help="small model on CPU (checks the script runs)")
    parser.add_argument("--size", choices=sorted(SIZES), default=None)
    parser.add_argument("--prompts", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each path; the best is reported")
    args = parser.parse_args(argv)

    device = "cpu" if args.cpu or not torch.cuda.is_available() else "cuda"
    size_name = args.size or ("small" if device == "cpu" else "gpt2")
    n = args.prompts or (32 if device == "cpu" else 512)
    batch_size = args.batch_size or (8 if device == "cpu" else 64)
    max_new = args.max_new_tokens or (16 if device == "cpu" else 64)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    texts = prompts(n, args.seed, 16, 64)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        make_checkpoint(folder, SIZES[size_name], args.seed)
        # warm-up both paths once (CUDA kernels, allocator), then measure
        hand_loop(folder, texts[:batch_size], batch_size, 4, device, dtype)
        adapter_run(folder, texts[:batch_size], batch_size, 4, device)[3].close()
        # alternate the two paths and keep each one's best run, so neither gains from going second
        hand_s = eval_s = float("inf")
        for _ in range(args.repeat):
            seconds, hand_tokens, hand_ids = hand_loop(folder, texts, batch_size, max_new, device, dtype)
            hand_s = min(hand_s, seconds)
            seconds, eval_tokens, eval_texts, adapter = adapter_run(
                folder, texts, batch_size, max_new, device
            )
            eval_s = min(eval_s, seconds)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
        same = sum(
            tokenizer.decode(ids, skip_special_tokens=True) == text
            for ids, text in zip(hand_ids, eval_texts, strict=True)
        )
        peak = adapter.peak_memory_mb()

    label = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(
        f"device: {label}  model: {size_name} (random weights)  prompts: {n}  batch: {batch_size}  new tokens: {max_new}  dtype: {dtype}  best of {args.repeat}"
    )
    print(f"{'':28}{'tokens':>10}{'seconds':>10}{'tokens/s':>12}")
    print(f"{'hand-written greedy loop':28}{hand_tokens:>10}{hand_s:>10.2f}{hand_tokens / hand_s:>12.1f}")
    print(f"{'evalhub hf adapter':28}{eval_tokens:>10}{eval_s:>10.2f}{eval_tokens / eval_s:>12.1f}")
    print(
        f"adapter/loop throughput: {(eval_tokens / eval_s) / (hand_tokens / hand_s):.2f}x   identical outputs: {same}/{n}   adapter peak memory: {peak:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
