"""The ``hf`` runtime: a transformers causal LM loaded from a local folder (any weights URI resolves to one).

Params (the model's ``default_params`` and run overrides): ``batch_size`` (16), ``device`` (``cuda`` when
available, else ``cpu``), ``dtype`` (``auto``: bfloat16 on CUDA, float32 on CPU; or a torch dtype name),
``max_length`` (the model's context size), ``add_bos_token`` (``None``: the tokenizer's default),
``trust_remote_code`` (False), ``seed`` (sampling seed, 1234).

Tokenization, batching order, padding, stop handling and chat templates follow lm-eval's ``hf`` backend, so
greedy outputs and log-likelihoods equal those of ``lm_eval.simple_evaluate(model="hf",
model_args="pretrained=<dir>")``. Requests are sorted by length over the whole call and answered
``batch_size`` at a time; each request's latency is that of its own batch (a likelihood: the forward pass
that scored it; a generation: from its batch's start until its own sequence finished, and until its first
token, ``ttft_ms``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalhub.adapters._text import (
    Encoder,
    TokenPair,
    cut_at_stop,
    group_by_input,
    render_chat,
    rolling_windows,
    sorted_batches,
    stop_at,
    tokenizer_chat_template,
)
from evalhub.adapters.base import Adapter, CheckpointRef, Generation, GenerationParams, Message

if TYPE_CHECKING:
    import torch

DEFAULT_BATCH_SIZE = 16
DEFAULT_MAX_LENGTH = 2048
DEFAULT_SEED = 1234


@dataclass
class TokenLogprob:
    """One prompt token: its text, its character offset, its log-probability given what precedes it
    (``None`` for the first token) and the ``top`` most likely tokens at its position."""

    token: str
    offset: int
    logprob: float | None
    top: dict[str, float] = field(default_factory=dict)


class HFAdapter(Adapter):
    """transformers ``AutoModelForCausalLM`` + ``AutoTokenizer``, batched, on one device."""

    runtime = "hf"
    reports_batches = True

    def __init__(self) -> None:
        super().__init__()
        self.model: Any = None
        self.tokenizer: Any = None
        self.encoder: Encoder | None = None
        self.device = "cpu"
        self.batch_size = DEFAULT_BATCH_SIZE
        self.max_length = DEFAULT_MAX_LENGTH
        self.seed = DEFAULT_SEED

    # -- loading ---------------------------------------------------------------------------------

    def load(self, checkpoint: CheckpointRef) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from evalhub.adapters.uris import resolve
        from evalhub.errors import AdapterError

        path = resolve(checkpoint.uri)
        params = dict(checkpoint.params)
        self.batch_size = int(params.get("batch_size", DEFAULT_BATCH_SIZE))
        self.seed = int(params.get("seed", DEFAULT_SEED))
        self.device = str(params.get("device") or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = _torch_dtype(params.get("dtype", "auto"), self.device)
        trust = bool(params.get("trust_remote_code", False))
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust)
            model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype, trust_remote_code=trust)
        except (OSError, ValueError) as exc:
            raise AdapterError(
                f"cannot load a transformers causal LM from {path} (checkpoint {checkpoint.model}/"
                f"{checkpoint.name}): {exc}"
            ) from exc
        _ensure_pad_token(tokenizer)
        self.model = model.to(self.device)  # type: ignore[arg-type]
        self.model.eval()
        self.tokenizer = tokenizer
        self.encoder = Encoder(tokenizer, params.get("add_bos_token"))
        self.max_length = int(params.get("max_length") or _context_size(model.config, tokenizer))
        self.checkpoint = checkpoint
        self.reset_peak_memory()

    def close(self) -> None:
        self.model = None
        self.tokenizer = None
        self.encoder = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover - torch is needed to load at all
            pass

    def reset_peak_memory(self) -> None:
        """Start a new peak-memory window (``torch.cuda.reset_peak_memory_stats`` on a GPU)."""
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_memory_mb(self) -> float | None:
        """Peak GPU memory allocated since the last ``reset_peak_memory`` (``None`` on CPU: the engine
        samples the process's resident memory instead)."""
        if self.device.startswith("cuda"):
            import torch

            return float(torch.cuda.max_memory_allocated(self.device)) / 2**20
        return None

    # -- chats -----------------------------------------------------------------------------------

    def chat_template(self) -> str | None:
        return tokenizer_chat_template(self.tokenizer)

    def apply_chat_template(self, messages: list[Message], add_generation_prompt: bool = True) -> str:
        """The tokenizer's chat template over ``messages`` (as lm-eval's ``hf`` backend applies it)."""
        _, tokenizer, _ = self._require()
        return render_chat(tokenizer, messages, add_generation_prompt, _name(self.checkpoint))

    def _require(self) -> tuple[Any, Any, Encoder]:
        from evalhub.errors import AdapterError

        if self.model is None or self.encoder is None:
            raise AdapterError("the hf adapter is not loaded: call load(checkpoint) first")
        return self.model, self.tokenizer, self.encoder

    # -- generation ------------------------------------------------------------------------------

    def _generate(self, prompts: list[str], params: GenerationParams) -> list[Generation]:
        import torch

        model, tokenizer, encoder = self._require()
        eos = tokenizer.decode(tokenizer.eos_token_id, skip_special_tokens=False)
        until = list(params.until)
        if eos and eos not in until:
            until.append(eos)
        max_new = int(params.max_new_tokens)
        max_ctx = self.max_length - max_new
        if max_ctx <= 0:
            from evalhub.errors import AdapterError

            raise AdapterError(
                f"max_new_tokens={max_new} leaves no room for a prompt in the model's context of "
                f"{self.max_length} tokens: lower max_new_tokens"
            )
        sampling = params.do_sample and params.temperature > 0
        lengths = [len(encoder.encode(p)) for p in prompts]
        out: list[Generation | None] = [None] * len(prompts)
        seed = params.seed if params.seed is not None else self.seed
        if sampling:
            torch.manual_seed(seed)
        for batch in sorted_batches(
            range(len(prompts)), lambda i: (-lengths[i], prompts[i]), self.batch_size
        ):
            texts = [prompts[i] for i in batch]
            old_side = tokenizer.padding_side
            tokenizer.padding_side = "left"
            try:
                enc = tokenizer(texts, padding="longest", return_tensors="pt", **encoder.batch_kwargs(texts))
            finally:
                tokenizer.padding_side = old_side
            ids = enc["input_ids"][:, -max_ctx:].to(self.device)
            mask = enc["attention_mask"][:, -max_ctx:].to(self.device)
            width = ids.shape[1]
            kwargs: dict[str, Any] = {"do_sample": False}
            if sampling:
                kwargs = {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p}
            clock = _RowClock(len(batch))
            with torch.inference_mode():
                seqs = model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_length=width + max_new,
                    stopping_criteria=_stop_criteria(tokenizer, until, width, clock),
                    pad_token_id=tokenizer.pad_token_id,
                    use_cache=True,
                    **kwargs,
                )
            clock.finish()
            for row, i in enumerate(batch):
                new = seqs[row, width:].tolist()
                text = cut_at_stop(tokenizer.decode(new, skip_special_tokens=True), until)
                out[i] = Generation(
                    text=text,
                    tokens_in=int(mask[row].sum()),
                    tokens_out=_count_generated(new, tokenizer, until),
                    latency_ms=clock.latency_ms(row),
                    ttft_ms=clock.ttft_ms(),
                )
            self._batch_done(batch)
        return [g for g in out if g is not None]

    # -- likelihoods -----------------------------------------------------------------------------

    def _loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        _, _, encoder = self._require()
        return self._score_tokens(encoder.encode_pairs(requests))

    def _loglikelihood_rolling(self, texts: list[str]) -> list[float]:
        _, _, encoder = self._require()
        windows: list[TokenPair] = []
        owners: list[int] = []
        for i, text in enumerate(texts):
            for window in rolling_windows(encoder.encode(text), encoder.prefix_token_id, self.max_length):
                windows.append(window)
                owners.append(i)
        totals = [0.0] * len(texts)
        left = [owners.count(i) for i in range(len(texts))]
        # lm-eval scores the windows batch by batch, in their order
        for start in range(0, len(windows), self.batch_size):
            chunk = windows[start : start + self.batch_size]
            t0 = time.perf_counter()
            scored = self._score_tokens(chunk, report=False)
            seconds = time.perf_counter() - t0
            done = []
            for j, (logprob, _) in enumerate(scored):
                owner = owners[start + j]
                totals[owner] += logprob
                left[owner] -= 1
                if left[owner] == 0:
                    done.append(owner)
            self._add_latency(sorted(set(owners[start : start + len(chunk)])), seconds)
            self._batch_done(done)
        return totals

    def prompt_logprobs(self, texts: list[str], top: int = 1) -> list[list[TokenLogprob]]:
        """Per-token log-probabilities of each text (what an OpenAI ``echo`` + ``logprobs`` answer holds).

        The first token has no context, so its ``logprob`` is ``None``; longer texts than the model's
        context are scored in rolling windows.
        """
        import torch
        import torch.nn.functional as F

        model, tokenizer, encoder = self._require()
        answers: list[list[TokenLogprob]] = []
        for text in texts:
            ids, offsets = _encode_with_offsets(tokenizer, encoder, text)
            items = [TokenLogprob(tokenizer.decode([t]), offsets[i], None) for i, t in enumerate(ids)]
            position = 1
            for ctx, cont in rolling_windows(ids[1:], ids[0], self.max_length) if ids else []:
                inp = (ctx + cont)[-(self.max_length + 1) :][:-1]
                with torch.inference_mode():
                    logits = model(torch.tensor([inp], dtype=torch.long, device=self.device)).logits
                    rows = F.log_softmax(logits[0, len(inp) - len(cont) : len(inp)], dim=-1)
                for j, token in enumerate(cont):
                    values, indices = rows[j].topk(max(1, top))
                    item = items[position + j]
                    item.logprob = float(rows[j, token])
                    item.top = {
                        tokenizer.decode([int(k)]): float(v) for v, k in zip(values, indices, strict=True)
                    }
                position += len(cont)
            answers.append(items)
        return answers

    def _score_tokens(self, pairs: list[TokenPair], report: bool = True) -> list[tuple[float, bool]]:
        import torch
        import torch.nn.functional as F

        from evalhub.errors import AdapterError

        model, _, _ = self._require()
        for ctx, cont in pairs:
            if not ctx or not cont:
                raise AdapterError("a log-likelihood request needs a non-empty continuation")
        results: list[tuple[float, bool] | None] = [None] * len(pairs)
        groups = group_by_input(pairs)

        def order(group: list[int]) -> tuple[int, tuple[int, ...]]:
            ctx, cont = pairs[group[0]]
            return -len(ctx + cont), tuple(ctx + cont)

        for batch in sorted_batches(groups, order, self.batch_size):
            inputs: list[torch.Tensor] = []
            for g in batch:
                ctx, cont = pairs[groups[g][0]]
                inputs.append(torch.tensor((ctx + cont)[-(self.max_length + 1) :][:-1], dtype=torch.long))
            width = max(t.shape[0] for t in inputs)
            padded = torch.zeros((len(inputs), width), dtype=torch.long)
            for row, t in enumerate(inputs):
                padded[row, : t.shape[0]] = t  # right padding: a causal model never looks right
            t0 = time.perf_counter()
            with torch.inference_mode():
                logits = model(padded.to(self.device)).logits
                for row, g in enumerate(batch):
                    lead_cont = pairs[groups[g][0]][1]
                    n_in = inputs[row].shape[0]
                    # only the positions that predict the continuation: the values lm-eval's log_softmax
                    # over the whole batch gives there, without normalising every padded position
                    selected = F.log_softmax(logits[row, n_in - len(lead_cont) : n_in], dim=-1).unsqueeze(0)
                    greedy = selected.argmax(dim=-1)
                    for i in groups[g]:
                        cont = pairs[i][1]
                        target = torch.tensor(cont, dtype=torch.long, device=selected.device).unsqueeze(0)
                        is_greedy = bool((greedy[:, -len(cont) :] == target).all())
                        picked = torch.gather(selected[:, -len(cont) :], 2, target.unsqueeze(-1)).squeeze(-1)
                        results[i] = (float(picked.sum()), is_greedy)
            scored_s = time.perf_counter() - t0  # the pass that scored the batch's requests, whole
            if report:
                self._batch_done([i for g in batch for i in groups[g]], scored_s)
        return [r for r in results if r is not None]


def has_chat_template(uri: str) -> bool | None:
    """Whether the tokenizer in a local checkpoint folder has a chat template, read from its files (nothing is
    loaded): ``None`` when the folder is not on this machine (a remote URI, a path only workers see)."""
    import json
    from pathlib import Path

    path = Path(uri[len("file://") :] if uri.startswith("file://") else uri).expanduser()
    if ("://" in uri and not uri.startswith("file://")) or not path.is_dir():
        return None
    if (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file():
        return True
    if (path / "additional_chat_templates").is_dir():
        return True
    config = path / "tokenizer_config.json"
    if not config.is_file():
        return None
    try:
        return bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template"))
    except (ValueError, OSError):
        return None


def _name(ref: CheckpointRef | None) -> str:
    return f"checkpoint {ref.model}/{ref.name}" if ref is not None else "this checkpoint"


def _torch_dtype(value: Any, device: str) -> torch.dtype:
    import torch

    if value in (None, "auto"):
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if isinstance(value, torch.dtype):
        return value
    dtype = getattr(torch, str(value), None)
    if not isinstance(dtype, torch.dtype):
        from evalhub.errors import AdapterError

        raise AdapterError(f"unknown dtype {value!r}: use auto, float32, bfloat16 or float16")
    return dtype


def _ensure_pad_token(tokenizer: Any) -> None:
    """Pad with the tokenizer's pad token, else its unknown token, else EOS (as lm-eval does)."""
    if tokenizer.pad_token_id is not None:
        return
    if getattr(tokenizer, "unk_token", None):
        tokenizer.pad_token_id = tokenizer.unk_token_id
    elif getattr(tokenizer, "eos_token", None):
        tokenizer.pad_token_id = tokenizer.eos_token_id
    else:
        tokenizer.add_special_tokens({"pad_token": "<|pad|>"})


def _context_size(config: Any, tokenizer: Any) -> int:
    cfg = getattr(config, "text_config", None) or config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(cfg, attr, None)
        if value is not None:
            return int(value)
    limit = getattr(tokenizer, "model_max_length", None)
    if limit is not None and limit < 10**20:
        return int(limit)
    return DEFAULT_MAX_LENGTH


def _encode_with_offsets(tokenizer: Any, encoder: Encoder, text: str) -> tuple[list[int], list[int]]:
    """Token ids of ``text`` (as ``Encoder.encode`` gives them) and each token's start offset."""
    ids = encoder.encode(text)
    if getattr(tokenizer, "is_fast", False):
        kwargs = encoder.special_kwargs()
        if text.startswith(tokenizer.decode(encoder.prefix_token_id)):
            kwargs["add_special_tokens"] = False
        enc = tokenizer(text, return_offsets_mapping=True, **kwargs)
        if list(enc["input_ids"]) == ids:
            return ids, [int(start) for start, _ in enc["offset_mapping"]]
    offsets, length = [], 0
    for i in range(len(ids)):
        offsets.append(length)
        length = len(tokenizer.decode(ids[: i + 1]))
    return ids, offsets


def _count_generated(new_tokens: list[int], tokenizer: Any, until: list[str]) -> int:
    """Tokens generated up to and including the one that completed a stop sequence (or all of them)."""
    # a finished row is padded only after its stop sequence, so the padding is never counted
    text = ""
    for n, token in enumerate(new_tokens, start=1):
        text += tokenizer.decode([token], skip_special_tokens=False)
        if stop_at(text, until) is not None:
            return n
    return len(new_tokens)


class _RowClock:
    """When each row of a generation batch finished, and when the first token came (all rows at once)."""

    def __init__(self, rows: int) -> None:
        self.start = time.perf_counter()
        self.first: float | None = None
        self.done: list[float | None] = [None] * rows

    def step(self, finished: list[bool]) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        for row, flag in enumerate(finished):
            if flag and self.done[row] is None:
                self.done[row] = now

    def finish(self) -> None:
        now = time.perf_counter()
        self.done = [t if t is not None else now for t in self.done]

    def latency_ms(self, row: int) -> float:
        end = self.done[row]
        return ((end if end is not None else time.perf_counter()) - self.start) * 1000.0

    def ttft_ms(self) -> float | None:
        return (self.first - self.start) * 1000.0 if self.first is not None else None


def _stop_criteria(
    tokenizer: Any, until: list[str], prompt_width: int, clock: _RowClock | None = None
) -> Any:
    """Per-row stop: a row is done once its new text holds a stop sequence (``clock`` notes when)."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopSequences(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
            texts = tokenizer.batch_decode(input_ids[:, prompt_width:], skip_special_tokens=False)
            done = [stop_at(t, until) is not None for t in texts]
            if clock is not None:
                clock.step(done)
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([StopSequences()])
