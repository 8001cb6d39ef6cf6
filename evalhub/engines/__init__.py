"""Evaluation engines: how a loaded adapter is scored on a task. The main one is lm-evaluation-harness
(``lm_eval``); text-to-image tasks have their own (``t2i``), a judge's prompts theirs (``judge``).
:func:`engine_of` picks a task's module: each has ``evaluate(adapter, task, **options,
on_progress=..., workdir=...)`` and ``options_from_config(run_config)``."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from evalhub.errors import EvalhubError

ENGINES = {
    "lm_eval": "evalhub.engines.lm_eval",
    "t2i": "evalhub.engines.t2i",
    "judge": "evalhub.engines.judge",
}
"""Engine name (a task's ``engine``) -> the module that runs it."""

SERVES = {
    "lm_eval": frozenset({"hf", "vllm", "openai", "python"}),
    "t2i": frozenset({"diffusers", "python"}),
    "judge": frozenset({"hf", "vllm", "openai", "python"}),
}
"""Engine -> the runtimes whose adapters it can drive (text for lm_eval, images for t2i; a ``python``
plugin may do either)."""


def check_pairing(task: dict[str, Any], runtime: str) -> str | None:
    """Why ``runtime`` cannot be evaluated on ``task`` (an image metric on a text model, or the
    reverse), or None."""
    engine = str(task.get("engine") or "lm_eval")
    if engine in SERVES and runtime not in SERVES[engine]:
        kind = "an image" if engine == "t2i" else "a text"
        return (
            f"task {task.get('name')!r} is {kind} task (engine {engine!r}); runtime {runtime!r} cannot run it "
            f"(use {', '.join(sorted(SERVES[engine]))})"
        )
    return None


def engine_of(task: dict[str, Any]) -> ModuleType:
    """The engine module of a registered task row (``lm_eval`` when it names none)."""
    name = str(task.get("engine") or "lm_eval")
    module = ENGINES.get(name)
    if module is None:
        raise EvalhubError(f"task {task.get('name')!r} uses engine {name!r}; known: {', '.join(ENGINES)}")
    return importlib.import_module(module)


__all__ = ["ENGINES", "SERVES", "check_pairing", "engine_of"]
