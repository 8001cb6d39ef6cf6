"""A deterministic judge for the judge tests: a ``python`` runtime plugin that reads the MT-Bench
prompts it is given and answers in MT-Bench's formats, so what is tested is evalhub's pipeline (prompts,
both orders, parsing, bookkeeping), not the quality of a judgement.

- pointwise: ``Rating: [[9]]`` for a right answer (the sum in the question), ``[[2]]`` for a wrong one,
  and, for an answer "?", an answer with no verdict at all;
- pairwise: the right answer wins (``[[A]]``/``[[B]]``), both right is a tie (``[[C]]``), both wrong is
  always ``[[A]]`` (a position bias, so those pairs come out inconsistent), and a pair where either
  answer is "?" gets no verdict.
"""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path
from typing import Any

PLUGIN = """
import re

QUESTION = re.compile(r"what is (\\d+) \\+ (\\d+)")
SINGLE = re.compile(r"\\[The Start of Assistant's Answer\\]\\n(.*?)\\n\\[The End of Assistant's Answer\\]", re.S)
A = re.compile(r"\\[The Start of Assistant A's Answer\\]\\n(.*?)\\n\\[The End of Assistant A's Answer\\]", re.S)
B = re.compile(r"\\[The Start of Assistant B's Answer\\]\\n(.*?)\\n\\[The End of Assistant B's Answer\\]", re.S)


def _right(prompt, answer):
    q = QUESTION.search(prompt)
    return q is not None and answer.strip() == str(int(q.group(1)) + int(q.group(2)))


class Judge:
    calls = 0

    def __init__(self, uri, params):
        self.params = params

    def generate(self, prompts, params):
        out = []
        for prompt in prompts:
            Judge.calls += 1
            if A.search(prompt):
                a, b = A.search(prompt).group(1), B.search(prompt).group(1)
                if "?" in a or "?" in b:
                    out.append("These answers are hard to compare.")
                    continue
                ra, rb = _right(prompt, a), _right(prompt, b)
                verdict = "[[C]]" if ra and rb else "[[A]]" if ra or not rb else "[[B]]"
                out.append(f"Comparing both answers to the question. My verdict: {verdict}")
            else:
                answer = SINGLE.search(prompt).group(1)
                if "?" in answer:
                    out.append("I cannot rate this one.")
                    continue
                rating = 9 if _right(prompt, answer) else 2
                out.append(f"The answer is {'right' if rating == 9 else 'wrong'}. Rating: [[{rating}]]")
        return out
"""


def register_judge(hub: Any, root: Path, model: str = "det-judge") -> str:
    """Write the plugin into ``root`` and register it as a model with one checkpoint; returns
    ``"model/checkpoint"``."""
    package = f"evalhub_test_judge_{uuid.uuid4().hex[:8]}"
    folder = root / "judge-repo"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{package}.py").write_text(textwrap.dedent(PLUGIN))
    hub.register_family("judges", modality="llm")
    hub.register_model(
        model, family="judges", runtime="python", code_uri=str(folder), adapter=f"{package}:Judge"
    )
    hub.register_checkpoint(model, "v1", uri=str(folder))
    return f"{model}/v1"


def outcome_with_unknowns(config: int, j: int) -> tuple[str, float]:
    """Config ``c`` gets sample ``j`` wrong when ``j % (c + 2) == 0``; samples 13 and 39 answer "?"
    (wrong, and unjudgeable by the test judge)."""
    if j in (13, 39):
        return "?", 0.0
    right = j % (config + 2) != 0
    return (str(2 * j), 1.0) if right else (f"{2 * j + config + 1}", 0.0)


class InProcessExecutor:
    """Runs each job through the real worker class (what the Ray actor is) in this process: the judge
    pipeline without a Ray cluster's start-up. The Ray path is tested on its own."""

    def __init__(self) -> None:
        self.jobs: list[Any] = []

    def execute(self, hub: Any, experiment_id: int, jobs: list[Any], resources: Any) -> dict[int, str]:
        from dataclasses import asdict

        from evalhub.client import client_of
        from evalhub.execution.worker import Worker as RayWorker

        class Worker(RayWorker):
            def info(self) -> dict[str, Any]:  # outside Ray: no Ray context to ask (it would start one)
                return {"node": "test", "ray_node_id": None, "pid": 0, "gpu": None}

        client = client_of(hub)
        out = {}
        workers: dict[Any, Any] = {}
        for job in jobs:
            self.jobs.append(job)
            worker = workers.get(job.group)
            if worker is None:
                worker = Worker(client.url, client.token, client.project, asdict(job.checkpoint))
                loaded = worker.load()
                assert loaded["ok"], loaded
                workers[job.group] = worker
            out[job.run_id] = worker.evaluate(job.payload(1))["status"]
        for worker in workers.values():
            worker.close()
        return out
