"""Model adapters: one per runtime (``hf``, ``vllm``, ``openai``, ``python``), behind ``Adapter``."""

from __future__ import annotations

from evalhub.adapters.base import Adapter, CallStats, CheckpointRef, Generation, GenerationParams

__all__ = ["Adapter", "CallStats", "CheckpointRef", "Generation", "GenerationParams"]
