"""The ``vllm`` runtime: vLLM's offline ``LLM`` engine on a GPU (``pip install 'evalhub[vllm]'``).

Params: ``dtype`` (``auto``), ``gpu_memory_utilization`` (0.85), ``max_model_len`` (the model's),
``tensor_parallel_size`` (1), ``seed`` (1234), ``enforce_eager`` (False), ``add_bos_token``,
``trust_remote_code`` (False), ``batch_size`` (requests handed to the engine per call, 256: vLLM schedules
them itself). Prompts are tokenized the way lm-eval's ``hf`` backend does it (``evalhub.adapters._text``)
and handed to vLLM as token ids; log-likelihoods come from ``prompt_logprobs``; chats are rendered with the
tokenizer's chat template, as for ``hf``. A request's latency and time to first token are vLLM's own
figures for it where the engine reports them (``RequestOutput.metrics``), else its call's wall time.
"""

from __future__ import annotations

from typing import Any

from evalhub.adapters._text import (
    Encoder,
    TokenPair,
    cut_at_stop,
    render_chat,
    rolling_windows,
    tokenizer_chat_template,
)
from evalhub.adapters.base import Adapter, CheckpointRef, Generation, GenerationParams, Message
from evalhub.errors import AdapterError


class VLLMAdapter(Adapter):
    """vLLM ``LLM.generate`` with ``SamplingParams``; one engine per loaded checkpoint."""

    runtime = "vllm"

    def __init__(self) -> None:
        super().__init__()
        self.llm: Any = None
        self.tokenizer: Any = None
        self.encoder: Encoder | None = None
        self.max_length = 2048
        self.seed = 1234

    def load(self, checkpoint: CheckpointRef) -> None:
        try:
            from vllm import LLM
        except ImportError as exc:
            raise AdapterError(
                "the vllm runtime needs vLLM on a CUDA machine: pip install 'evalhub[vllm]' "
                f"(import failed: {exc})"
            ) from exc
        from evalhub.adapters.uris import resolve

        path = str(resolve(checkpoint.uri))
        params = dict(checkpoint.params)
        self.seed = int(params.get("seed", 1234))
        self.batch_size = max(1, int(params.get("batch_size", 256)))
        kwargs: dict[str, Any] = {
            "model": path,
            "tokenizer": path,
            "dtype": params.get("dtype", "auto"),
            "gpu_memory_utilization": float(params.get("gpu_memory_utilization", 0.85)),
            "tensor_parallel_size": int(params.get("tensor_parallel_size", 1)),
            "seed": self.seed,
            "trust_remote_code": bool(params.get("trust_remote_code", False)),
            "enforce_eager": bool(params.get("enforce_eager", False)),
        }
        if params.get("max_model_len"):
            kwargs["max_model_len"] = int(params["max_model_len"])
        try:
            self.llm = LLM(**kwargs)
        except Exception as exc:
            raise AdapterError(
                f"vLLM cannot load {path} (checkpoint {checkpoint.model}/{checkpoint.name}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self.tokenizer = self.llm.get_tokenizer()
        self.encoder = Encoder(self.tokenizer, params.get("add_bos_token"))
        self.max_length = int(params.get("max_model_len") or _engine_max_len(self.llm) or 2048)
        self.checkpoint = checkpoint

    def close(self) -> None:
        self.llm = None
        self.encoder = None

    def peak_memory_mb(self) -> float | None:
        """GPU memory in use on the device (vLLM reserves its KV cache up front)."""
        try:
            import torch

            if torch.cuda.is_available():
                free, total = torch.cuda.mem_get_info()
                return float(total - free) / 2**20
        except ImportError:  # pragma: no cover
            pass
        return None

    def chat_template(self) -> str | None:
        return tokenizer_chat_template(self.tokenizer)

    def set_batch_size(self, size: int) -> None:
        """Kept: vLLM schedules its own batches; ``params.batch_size`` is how many prompts it gets per call."""

    def apply_chat_template(self, messages: list[Message], add_generation_prompt: bool = True) -> str:
        """The tokenizer's chat template over ``messages`` (as for the ``hf`` runtime)."""
        self._require()
        ref = self.checkpoint
        name = f"checkpoint {ref.model}/{ref.name}" if ref is not None else "this checkpoint"
        return render_chat(self.tokenizer, messages, add_generation_prompt, name)

    def _require(self) -> tuple[Any, Encoder]:
        if self.llm is None or self.encoder is None:
            raise AdapterError("the vllm adapter is not loaded: call load(checkpoint) first")
        return self.llm, self.encoder

    def _generate(self, prompts: list[str], params: GenerationParams) -> list[Generation]:
        from vllm import SamplingParams

        llm, encoder = self._require()
        greedy = not (params.do_sample and params.temperature > 0)
        eos = (
            self.tokenizer.decode(self.tokenizer.eos_token_id)
            if self.tokenizer.eos_token_id is not None
            else ""
        )
        until = [s for s in params.until if s]
        sampling = SamplingParams(
            max_tokens=params.max_new_tokens,
            temperature=0.0 if greedy else params.temperature,
            top_p=1.0 if greedy else params.top_p,
            stop=until or None,
            seed=None if greedy else (params.seed if params.seed is not None else self.seed),
        )
        max_ctx = max(1, self.max_length - params.max_new_tokens)
        token_prompts = [{"prompt_token_ids": encoder.encode(p)[-max_ctx:]} for p in prompts]
        outputs = llm.generate(token_prompts, sampling_params=sampling, use_tqdm=False)
        result = []
        for prompt, output in zip(token_prompts, outputs, strict=True):
            best = output.outputs[0]
            latency_ms, ttft_ms = _request_times(output)
            result.append(
                Generation(
                    text=cut_at_stop(best.text, [*until, eos]),
                    tokens_in=len(prompt["prompt_token_ids"]),
                    tokens_out=len(best.token_ids),
                    latency_ms=latency_ms,
                    ttft_ms=ttft_ms,
                )
            )
        return result

    def _score(self, pairs: list[TokenPair]) -> list[tuple[float, bool]]:
        from vllm import SamplingParams

        llm, _ = self._require()
        sampling = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False)
        inputs = [{"prompt_token_ids": (ctx + cont)[-self.max_length :]} for ctx, cont in pairs]
        outputs = llm.generate(inputs, sampling_params=sampling, use_tqdm=False)
        results = []
        for (_, cont), inp, output in zip(pairs, inputs, outputs, strict=True):
            ids = inp["prompt_token_ids"]
            positions = output.prompt_logprobs[len(ids) - len(cont) :]
            total, greedy = 0.0, True
            for token, entry in zip(cont, positions, strict=True):
                if not entry or token not in entry:
                    raise AdapterError("vLLM returned no log-probability for a continuation token")
                chosen = entry[token]
                total += float(chosen.logprob)
                best = max(entry.values(), key=lambda lp: lp.logprob)
                greedy = greedy and float(best.logprob) <= float(chosen.logprob)
            results.append((total, greedy))
        return results

    def _loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        _, encoder = self._require()
        return self._score(encoder.encode_pairs(requests))

    def _loglikelihood_rolling(self, texts: list[str]) -> list[float]:
        _, encoder = self._require()
        windows: list[TokenPair] = []
        owners: list[int] = []
        for i, text in enumerate(texts):
            # a window's context + continuation is one vLLM prompt: at most max_model_len tokens
            for window in rolling_windows(encoder.encode(text), encoder.prefix_token_id, self.max_length - 1):
                windows.append(window)
                owners.append(i)
        totals = [0.0] * len(texts)
        for owner, (logprob, _) in zip(owners, self._score(windows) if windows else [], strict=True):
            totals[owner] += logprob
        return totals


def _request_times(output: Any) -> tuple[float | None, float | None]:
    """vLLM's own latency and time to first token of one request (ms), where its engine reports them."""
    metrics = getattr(output, "metrics", None)
    arrival = getattr(metrics, "arrival_time", None)
    if not isinstance(arrival, int | float):
        return None, None
    finished = getattr(metrics, "finished_time", None) or getattr(metrics, "last_token_time", None)
    first = getattr(metrics, "first_token_time", None)
    latency = (finished - arrival) * 1000.0 if isinstance(finished, int | float) else None
    ttft = (first - arrival) * 1000.0 if isinstance(first, int | float) else None
    return latency, ttft


def _engine_max_len(llm: Any) -> int | None:
    for path in ("llm_engine.model_config.max_model_len", "model_config.max_model_len"):
        obj: Any = llm
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, int):
            return obj
    return None
