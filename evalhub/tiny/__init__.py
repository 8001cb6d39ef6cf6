"""The tiny GPT-2-style model evalhub builds locally, and its arithmetic tasks.

>>> from evalhub import tiny
>>> tiny.write_tasks("/tmp/tiny")                  # arith-add.jsonl, arith-mc.jsonl, arith-spell.jsonl
>>> result = tiny.build("/tmp/tiny", hub=hub)      # step-100, step-200, step-300 in HF format
>>> tiny.register_tasks(hub, "/tmp/tiny")          # tasks arith-add, arith-mc, arith-spell; benchmark arith

The model is a GPT-2-style transformer with a byte-level BPE tokenizer trained here and a chat template.
"""

from __future__ import annotations

from evalhub.tiny._tasks import (
    ADD_TASK,
    BENCHMARK,
    MC_TASK,
    SPELL_TASK,
    Problem,
    add_rows,
    mc_rows,
    register_tasks,
    spell,
    spell_rows,
    write_tasks,
)
from evalhub.tiny._tokenizer import CHAT_TEMPLATE, build_tokenizer
from evalhub.tiny._train import FAMILY, MODEL, TinyBuild, TinyConfig, build

__all__ = [
    "ADD_TASK",
    "BENCHMARK",
    "CHAT_TEMPLATE",
    "FAMILY",
    "MC_TASK",
    "MODEL",
    "SPELL_TASK",
    "Problem",
    "TinyBuild",
    "TinyConfig",
    "add_rows",
    "build",
    "build_tokenizer",
    "mc_rows",
    "register_tasks",
    "spell",
    "spell_rows",
    "write_tasks",
]
