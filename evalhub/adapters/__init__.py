"""Model adapters: one per runtime (``hf``, ``vllm``, ``openai``, ``python``), behind ``Adapter``.

>>> from evalhub.adapters import CheckpointRef, load_adapter
>>> adapter = load_adapter(CheckpointRef("tiny-gpt", "step-300", "/data/tiny/step-300", "hf"))
>>> adapter.generate(["1+2= "], GenerationParams(until=("\\n",)))[0].text
'3'
"""

from __future__ import annotations

import importlib

from evalhub.adapters.base import Adapter, CallStats, CheckpointRef, Generation, GenerationParams

# runtime -> "module:Class"; each module imports its heavy dependencies only when loaded.
RUNTIMES: dict[str, str] = {
    "hf": "evalhub.adapters.hf:HFAdapter",
    "vllm": "evalhub.adapters.vllm:VLLMAdapter",
    "openai": "evalhub.adapters.openai:OpenAIAdapter",
    "python": "evalhub.adapters.python:PythonAdapter",
    "diffusers": "evalhub.adapters.diffusers:DiffusersAdapter",
}


def adapter_class(runtime: str) -> type[Adapter]:
    """The ``Adapter`` subclass of a runtime name (``hf``, ``vllm``, ``openai``, ``python``)."""
    from evalhub.errors import AdapterError

    target = RUNTIMES.get(runtime)
    if target is None:
        raise AdapterError(f"unknown runtime {runtime!r}: use one of {', '.join(sorted(RUNTIMES))}")
    module_name, attr = target.split(":")
    cls: type[Adapter] = getattr(importlib.import_module(module_name), attr)
    return cls


def load_adapter(ref: CheckpointRef) -> Adapter:
    """An adapter for ``ref.runtime`` with ``ref``'s weights loaded."""
    adapter = adapter_class(ref.runtime)()
    adapter.load(ref)
    return adapter


__all__ = [
    "RUNTIMES",
    "Adapter",
    "CallStats",
    "CheckpointRef",
    "Generation",
    "GenerationParams",
    "adapter_class",
    "load_adapter",
]
