"""Arithmetic tasks for the tiny model: a generation task (exact match) and a multiple-choice one (acc).

The text format is the one the tiny model is trained on: ``"12+7= 19\\n"``.

- ``arith-add`` (generate_until, exact_match): ``{"question": "12+7= ", "answer": "19"}``; the model
  continues the question and stops at ``"\\n"``.
- ``arith-mc`` (multiple_choice, acc): ``{"question": "12+7=", "choices": ["21", "19", ...], "gold": 1}``;
  lm-eval joins question and choice with its default target delimiter ``" "``, which gives the trained
  text ``"12+7= 19"`` (hence no trailing space in the question here).
- ``arith-spell`` (generate_until; bleu, chrf, rouge1, rougeL): ``{"question": "spell 305:",
  "answer": "three zero five"}``; the model continues with ``" three zero five"`` and stops at ``"\n"``
  (the question has no trailing space: the words are trained as space-led tokens).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evalhub.hub import Hub

ADD_TASK = "arith-add"
MC_TASK = "arith-mc"
SPELL_TASK = "arith-spell"
BENCHMARK = "arith"
N_CHOICES = 4
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPELL_METRICS = ("bleu", "chrf", "rouge1", "rougeL")


@dataclass(frozen=True)
class Problem:
    """One addition ``a + b``."""

    a: int
    b: int

    @property
    def answer(self) -> int:
        return self.a + self.b

    @property
    def prompt(self) -> str:
        """The text before the answer, without the separating space."""
        return f"{self.a}+{self.b}="

    def text(self) -> str:
        """The training line: ``"a+b= c\\n"``."""
        return f"{self.prompt} {self.answer}\n"


def sample_problem(rng: random.Random) -> Problem:
    """Half single-digit sums, half a two-digit number plus a digit: small enough to learn in a minute."""
    if rng.random() < 0.5:
        return Problem(rng.randint(0, 9), rng.randint(0, 9))
    a, b = rng.randint(10, 49), rng.randint(0, 9)
    return Problem(a, b) if rng.random() < 0.5 else Problem(b, a)


def _distractors(answer: int, rng: random.Random) -> list[int]:
    candidates = [answer + d for d in (-10, -2, -1, 1, 2, 10, 11, -11) if answer + d >= 0]
    rng.shuffle(candidates)
    return candidates[: N_CHOICES - 1]


def add_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` generation items ``{"question", "answer"}``, deterministic in ``seed``."""
    rng = random.Random(f"arith-add-{seed}")
    rows = []
    for _ in range(n):
        p = sample_problem(rng)
        rows.append({"question": p.prompt + " ", "answer": str(p.answer)})
    return rows


def mc_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` multiple-choice items ``{"question", "choices", "gold", "answer"}``, deterministic in ``seed``."""
    rng = random.Random(f"arith-mc-{seed}")
    rows = []
    for _ in range(n):
        p = sample_problem(rng)
        choices = [p.answer, *_distractors(p.answer, rng)]
        rng.shuffle(choices)
        rows.append(
            {
                "question": p.prompt,
                "choices": [str(c) for c in choices],
                "gold": choices.index(p.answer),
                "answer": str(p.answer),
            }
        )
    return rows


def spell(number: int) -> str:
    """The digits of ``number`` as words: ``305`` -> ``"three zero five"``."""
    return " ".join(DIGIT_WORDS[int(d)] for d in str(number))


def sample_number(rng: random.Random) -> int:
    """A number of three to six digits (four words at least make a 4-gram for BLEU, most of the time)."""
    digits = rng.choice((3, 4, 4, 5, 5, 6))
    return rng.randint(10 ** (digits - 1), 10**digits - 1)


def spell_text(number: int) -> str:
    """The training line: ``"spell 305: three zero five\n"``."""
    return f"spell {number}: {spell(number)}\n"


def spell_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` spelling items ``{"question", "answer"}``, deterministic in ``seed``."""
    rng = random.Random(f"arith-spell-{seed}")
    rows = []
    for _ in range(n):
        number = sample_number(rng)
        rows.append({"question": f"spell {number}:", "answer": spell(number)})
    return rows


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return path


def write_tasks(out_dir: str | Path, n: int = 200, seed: int = 0) -> dict[str, Path]:
    """Write the task files as JSONL under ``out_dir/tasks``.

    >>> paths = write_tasks("/tmp/tiny")   # {"arith-add": .../arith-add.jsonl, "arith-mc": ..., "arith-spell": ...}
    """
    task_dir = Path(out_dir) / "tasks"
    return {
        ADD_TASK: _write_jsonl(task_dir / f"{ADD_TASK}.jsonl", add_rows(n, seed)),
        MC_TASK: _write_jsonl(task_dir / f"{MC_TASK}.jsonl", mc_rows(n, seed)),
        SPELL_TASK: _write_jsonl(task_dir / f"{SPELL_TASK}.jsonl", spell_rows(n, seed)),
    }


def _task_paths(task_dir: str | Path) -> dict[str, Path]:
    root = Path(task_dir)
    for folder in (root / "tasks", root):
        paths = {name: folder / f"{name}.jsonl" for name in (ADD_TASK, MC_TASK)}
        if all(p.is_file() for p in paths.values()):
            if (folder / f"{SPELL_TASK}.jsonl").is_file():  # folders written before it have none
                paths[SPELL_TASK] = folder / f"{SPELL_TASK}.jsonl"
            return paths
    from evalhub.errors import EvalhubError

    raise EvalhubError(
        f"no {ADD_TASK}.jsonl and {MC_TASK}.jsonl under {root} or {root / 'tasks'}: "
        "write them first with `evalhub tiny tasks DIR`"
    )


def register_tasks(hub: Hub, task_dir: str | Path) -> dict[str, Any]:
    """Register ``arith-add``, ``arith-mc``, ``arith-spell`` (where its file exists) and the benchmark
    ``arith`` of the first two (an existing one is kept).

    ``task_dir`` is the folder given to ``write_tasks`` (or its ``tasks`` subfolder).
    """
    from evalhub.errors import Conflict

    paths = _task_paths(task_dir)
    specs: dict[str, dict[str, Any]] = {
        ADD_TASK: {
            "data": str(paths[ADD_TASK].resolve()),
            "prompt": "{{question}}",
            "target": "{{answer}}",
            "output_type": "generate_until",
            "metrics": ["exact_match"],
            "type": "qa",
            "generation": {"until": ["\n"], "max_gen_toks": 8, "do_sample": False},
        },
        MC_TASK: {
            "data": str(paths[MC_TASK].resolve()),
            "prompt": "{{question}}",
            "target": "{{gold}}",
            "choices": "{{choices}}",
            "output_type": "multiple_choice",
            "metrics": ["acc"],
            "type": "mcq",
        },
    }
    if SPELL_TASK in paths:
        specs[SPELL_TASK] = {
            "data": str(paths[SPELL_TASK].resolve()),
            "prompt": "{{question}}",
            "target": "{{answer}}",
            "output_type": "generate_until",
            "metrics": list(SPELL_METRICS),
            "type": "mt",
            "generation": {"until": ["\n"], "max_gen_toks": 12, "do_sample": False},
        }
    registered: dict[str, Any] = {}
    for name, kwargs in specs.items():
        try:
            registered[name] = hub.register_task(name, **kwargs)
        except Conflict:
            registered[name] = hub.task(name)
    try:
        registered[BENCHMARK] = hub.register_benchmark(BENCHMARK, [ADD_TASK, MC_TASK])
    except Conflict:
        registered[BENCHMARK] = hub.benchmark(BENCHMARK)
    return registered
