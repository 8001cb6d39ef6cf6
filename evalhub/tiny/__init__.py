"""The tiny GPT-2-style model evalhub builds locally, and its arithmetic tasks.

>>> from evalhub import tiny
>>> tiny.write_tasks("/tmp/tiny")                  # arith-add.jsonl, arith-mc.jsonl
>>> result = tiny.build("/tmp/tiny", hub=hub)      # step-100, step-200, step-300 in HF format
>>> tiny.register_tasks(hub, "/tmp/tiny")          # tasks arith-add, arith-mc, benchmark arith
"""

from __future__ import annotations

from evalhub.tiny._tasks import (
    ADD_TASK,
    BENCHMARK,
    MC_TASK,
    Problem,
    add_rows,
    mc_rows,
    register_tasks,
    write_tasks,
)
from evalhub.tiny._tokenizer import build_tokenizer
from evalhub.tiny._train import FAMILY, MODEL, TinyBuild, TinyConfig, build

__all__ = [
    "ADD_TASK",
    "BENCHMARK",
    "FAMILY",
    "MC_TASK",
    "MODEL",
    "Problem",
    "TinyBuild",
    "TinyConfig",
    "add_rows",
    "build",
    "build_tokenizer",
    "mc_rows",
    "register_tasks",
    "write_tasks",
]
