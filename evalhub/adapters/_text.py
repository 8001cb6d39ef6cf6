"""Tokenization and text rules shared by the local adapters, kept the way lm-eval's ``hf`` backend does
them so that scores and generations match ``lm_eval.simple_evaluate(model="hf", ...)``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

TokenPair = tuple[list[int], list[int]]


class Encoder:
    """lm-eval's ``tok_encode``/``_encode_pair`` over a Hugging Face tokenizer.

    ``add_bos_token`` is lm-eval's model argument of the same name (``None``: the tokenizer's default).
    """

    def __init__(self, tokenizer: Any, add_bos_token: bool | None = None) -> None:
        self.tokenizer = tokenizer
        self.add_bos_token = add_bos_token
        self._prefix_text: str | None = None

    @property
    def prefix_token_id(self) -> int:
        """The token a context-free continuation is conditioned on: BOS, else EOS."""
        bos = self.tokenizer.bos_token_id
        return int(bos if bos is not None else self.tokenizer.eos_token_id)

    @property
    def prefix_text(self) -> str:
        """The prefix token as text (a text that starts with it gets no special tokens added)."""
        if self._prefix_text is None:
            self._prefix_text = str(self.tokenizer.decode(self.prefix_token_id))
        return self._prefix_text

    def _kwargs_for(self, text: str) -> dict[str, bool]:
        kwargs = self.special_kwargs()
        if text.startswith(self.prefix_text):
            kwargs["add_special_tokens"] = False  # the text already starts with BOS
        return kwargs

    def special_kwargs(self, add_special_tokens: bool | None = None) -> dict[str, bool]:
        if add_special_tokens is not None:
            return {"add_special_tokens": add_special_tokens}
        if self.add_bos_token is not None:
            return {"add_special_tokens": self.add_bos_token}
        return {}

    def encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        kwargs = (
            self.special_kwargs(add_special_tokens)
            if add_special_tokens is not None
            else self._kwargs_for(text)
        )
        return list(self.tokenizer.encode(text, **kwargs))

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        """:meth:`encode` of each text; a fast tokenizer encodes them in one batch call (the same ids)."""
        if len(texts) < 2 or not getattr(self.tokenizer, "is_fast", False):
            return [self.encode(t) for t in texts]
        out: list[list[int]] = [[] for _ in texts]
        by_kwargs: dict[tuple[tuple[str, bool], ...], list[int]] = {}
        for i, text in enumerate(texts):
            by_kwargs.setdefault(tuple(sorted(self._kwargs_for(text).items())), []).append(i)
        for key, indices in by_kwargs.items():
            encoded = self.tokenizer([texts[i] for i in indices], **dict(key))["input_ids"]
            for i, ids in zip(indices, encoded, strict=True):
                out[i] = list(ids)
        return out

    def batch_kwargs(self, texts: Sequence[str]) -> dict[str, bool]:
        """The ``add_special_tokens`` argument lm-eval passes when it encodes a batch of prompts."""
        bos = getattr(self.tokenizer, "bos_token", None)
        if texts and bos is not None and texts[0].startswith(bos):
            return {"add_special_tokens": False}
        if self.add_bos_token is not None:
            return {"add_special_tokens": self.add_bos_token}
        return {}

    def encode_pair(self, context: str, continuation: str) -> TokenPair:
        """Encode context + continuation whole, then split at the context's length.

        Trailing spaces of the context move to the continuation; an empty context becomes the prefix token.
        """
        if context == "":
            cont = self.encode(continuation, add_special_tokens=False)
            if cont and cont[0] == self.prefix_token_id:
                return cont[:1], cont[1:]
            return [self.prefix_token_id], cont
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces > 0:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = self.encode(context + continuation)
        ctx = self.encode(context)
        return ctx, whole[len(ctx) :]

    def encode_pairs(self, requests: Sequence[tuple[str, str]]) -> list[TokenPair]:
        """:meth:`encode_pair` of each request, with the texts encoded in batches and each distinct
        context once (the choices of a question share theirs)."""
        moved: list[tuple[str, str] | None] = []
        for context, continuation in requests:
            if context == "":
                moved.append(None)
                continue
            n_spaces = len(context) - len(context.rstrip())
            if n_spaces > 0:
                context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
            moved.append((context, continuation))
        contexts = list(dict.fromkeys(m[0] for m in moved if m is not None))
        by_context = dict(zip(contexts, self.encode_many(contexts), strict=True))
        wholes = self.encode_many([m[0] + m[1] for m in moved if m is not None])
        out: list[TokenPair] = []
        k = 0
        for request, m in zip(requests, moved, strict=True):
            if m is None:
                out.append(self.encode_pair(*request))
                continue
            ctx = by_context[m[0]]
            out.append((ctx, wholes[k][len(ctx) :]))
            k += 1
        return out


def rolling_windows(tokens: list[int], prefix_token: int, max_seq_len: int) -> list[TokenPair]:
    """Disjoint scoring windows over ``tokens`` (lm-eval's rolling windows with ``context_len=1``)."""
    if not tokens:
        return []
    windows: list[TokenPair] = []
    first = min(max_seq_len, len(tokens))
    windows.append(([prefix_token, *tokens[: first - 1]], tokens[:first]))
    predicted = first
    while predicted < len(tokens):
        pred_len = min(len(tokens) - predicted, max_seq_len)
        end = predicted + pred_len
        windows.append((tokens[end - max_seq_len - 1 : end - 1], tokens[end - pred_len : end]))
        predicted += pred_len
    # make the context disjoint from the continuation
    return [(ctx[: len(ctx) - (len(cont) - 1)], cont) for ctx, cont in windows]


def cut_at_stop(text: str, until: Sequence[str]) -> str:
    """The text before the first occurrence of each stop sequence, applied in order (as lm-eval does)."""
    for term in until:
        if term:
            text = text.split(term)[0]
    return text


def stop_at(text: str, until: Sequence[str]) -> int | None:
    """Index of the earliest stop sequence in ``text``, or ``None``."""
    hits = [text.find(term) for term in until if term and term in text]
    return min(hits) if hits else None


def sorted_batches(items: Sequence[Any], key: Callable[[Any], Any], size: int) -> Iterator[list[int]]:
    """Indices of ``items`` sorted by ``key``, in chunks of ``size`` (longest first cuts padding)."""
    order = sorted(range(len(items)), key=lambda i: key(items[i]))
    step = max(1, size)
    for start in range(0, len(order), step):
        yield order[start : start + step]


def group_by_input(pairs: Sequence[TokenPair]) -> list[list[int]]:
    """Group requests that feed the model the same tokens (context + continuation minus its last).

    One forward pass serves a group (lm-eval's ``logits_cache``); the first member with the longest
    continuation leads it.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (ctx, cont) in enumerate(pairs):
        groups.setdefault(tuple(ctx + cont[:-1]), []).append(i)
    result = []
    for members in groups.values():
        lead = max(members, key=lambda i: len(pairs[i][1]))
        result.append([lead] + [i for i in members if i != lead])
    return result


def tokenizer_chat_template(tokenizer: Any) -> str | None:
    """A Hugging Face tokenizer's chat template (the default one of named templates), or ``None``."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = template.get("default") or next(iter(template.values()), None)
    return str(template) if template else None


def render_chat(
    tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool, name: str
) -> str:
    """``messages`` through the tokenizer's chat template, as lm-eval's ``hf`` backend renders them (a template
    that refuses a system message gets the chat without it). ``name`` names the checkpoint in errors."""
    from evalhub.errors import AdapterError

    if tokenizer_chat_template(tokenizer) is None:
        raise AdapterError(
            f"the tokenizer of {name} has no chat template (no chat_template in tokenizer_config.json, no "
            "chat_template.jinja); set config.apply_chat_template: false"
        )
    import jinja2

    kwargs = {
        "tokenize": False,
        "add_generation_prompt": add_generation_prompt,
        "continue_final_message": not add_generation_prompt,
    }
    try:
        text = tokenizer.apply_chat_template(messages, **kwargs)
    except jinja2.exceptions.TemplateError:
        text = tokenizer.apply_chat_template([m for m in messages if m.get("role") != "system"], **kwargs)
    return str(text)
