"""The request cache as the lm-eval bridge sees it: a key per request, answers looked up before the
adapter is called and stored as they come (lm-eval's ``use_cache``, but shared: the worker's cache
writes to the tracking server, so a run evaluated again on any node asks the model only for what is
missing).

A key is the sha256 of the cache's ``prefix`` (what answers: checkpoint content, runtime, adapter,
params, chat mode; the worker builds it), the request kind and its payload (the prompt and generation
settings, or the context and continuation). An answer is stored as JSON text (NaN and ±infinity as
JSON's ``NaN``/``Infinity`` tokens, which Python reads back).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class CacheCounts:
    """How many requests of a run the cache answered, and how many went to the model."""

    hits: int = 0
    misses: int = 0


class RequestCache:
    """Where answers live. Subclasses implement :meth:`lookup` and :meth:`store`; the bridge calls
    :meth:`key`, :meth:`answers` and :meth:`put`."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.counts = CacheCounts()

    def lookup(self, keys: Sequence[str]) -> Mapping[str, str]:
        """The stored JSON text of the keys that have an answer."""
        raise NotImplementedError

    def store(self, entries: Mapping[str, str]) -> None:
        """Keep these answers (JSON text by key)."""
        raise NotImplementedError

    def key(self, kind: str, payload: Any) -> str:
        text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(f"{self.prefix}\0{kind}\0{text}".encode()).hexdigest()

    def answers(self, keys: Sequence[str]) -> dict[str, Any]:
        """The decoded answers of ``keys`` the cache has (counted as hits; the rest as misses)."""
        found = {k: json.loads(v) for k, v in self.lookup(list(dict.fromkeys(keys))).items()}
        hits = sum(1 for k in keys if k in found)
        self.counts.hits += hits
        self.counts.misses += len(keys) - hits
        return found

    def put(self, answers: Mapping[str, Any]) -> None:
        if answers:
            self.store({k: json.dumps(v, allow_nan=True, ensure_ascii=False) for k, v in answers.items()})


class MemoryCache(RequestCache):
    """A cache in this process only (tests, and a bridge run outside a worker)."""

    def __init__(self, prefix: str = "") -> None:
        super().__init__(prefix)
        self.values: dict[str, str] = {}

    def lookup(self, keys: Sequence[str]) -> Mapping[str, str]:
        return {k: self.values[k] for k in keys if k in self.values}

    def store(self, entries: Mapping[str, str]) -> None:
        self.values.update(entries)


def chunk_size(batch_size: int) -> int:
    """How many missing requests go to the adapter per call when a cache is on: each call's answers are
    stored before the next starts (so a crash loses at most one chunk), and several batches per call
    keep an adapter that sorts requests by length efficient."""
    return max(64, 8 * max(1, int(batch_size)))


__all__ = ["CacheCounts", "MemoryCache", "RequestCache", "chunk_size"]
