"""Trace runs (the LLM calls applications send over OTLP, one ``trace`` run per service) and their online
evaluation: a scorer applied to a sampled share of the calls as they come in.

>>> online = Traces(client).evaluate("qa-bot", Regex(r"answer is (\\d+)"), share=0.1, every=30)
>>> ...                       # the application keeps calling its model; every 30 s the new calls are scored
>>> online.stop()             # the last calls scored, the scoring finished with its summary metrics

Which calls are scored is decided by their sample key alone (a hash under ``share``, with ``seed``), so a
restarted evaluator, or a second one, picks the same calls. A call is scored once it has an output (its
answer may arrive after its span, as a log record); the application's own spans around its calls
(``not_genai``) are not calls. Each evaluation is one scoring of the run, kept ``running`` while it goes
and finished by :meth:`OnlineEvaluation.stop` with metrics over every call it scored.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from evalhub.client import Client
from evalhub.errors import EvalhubError, InvalidValue
from evalhub.protocol import number_from_wire
from evalhub.services.scoring import PAGE, Scoring, _wire

if TYPE_CHECKING:
    import polars as pl

    from evalhub.scorers import Scorer

MARGIN = 1000  # samples before the last end seen that each step reads again (calls that began earlier)


def picked(sample_key: str, share: float, seed: int = 0) -> bool:
    """Whether online evaluation with ``share`` and ``seed`` scores the call ``sample_key``."""
    digest = hashlib.sha256(f"{seed}:{sample_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


class Traces:
    """The trace runs of one project."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def runs(self, service: str | None = None) -> pl.DataFrame:
        """The trace runs (of one service), oldest first: a closed one gave way to the next."""
        from evalhub._frames import frame

        params: dict[str, Any] = {"type": "trace"}
        if service is not None:
            params["name"] = service
        return frame(list(self.client.paged("/runs", limit=PAGE, **params)), ["id", "name", "status"])

    def open_run(self, service: str) -> dict[str, Any]:
        """The open (running) trace run of ``service``."""
        found = self.client.get("/runs", type="trace", name=service, status="running")
        items: list[dict[str, Any]] = found["items"]
        if not items:
            raise InvalidValue(
                f"service '{service}' has no open trace run in project '{self.client.project}': "
                "it opens with the first span the application exports"
            )
        return items[-1]

    def evaluate(
        self,
        run: str | int,
        scorer: Scorer | Mapping[str, Any],
        *,
        share: float = 1.0,
        seed: int = 0,
        every: float | None = None,
    ) -> OnlineEvaluation:
        """Score ``share`` of the calls of a trace run (a run id, or a service's open run) as they come;
        with ``every`` (seconds) a background thread steps by itself until :meth:`OnlineEvaluation.stop`."""
        from evalhub.scorers import Judge, from_spec

        scorer = from_spec(scorer)
        if isinstance(scorer, Judge):
            raise InvalidValue(
                "online evaluation applies a metric, a regex or a function; a judge runs on the cluster: "
                "judge a trace run with hub.score(run_id, judge)"
            )
        if getattr(scorer, "corpus", False):
            raise InvalidValue(f"scorer '{scorer.name}' is a corpus metric: it can't score calls one by one")
        if not 0 < share <= 1:
            raise InvalidValue(f"share must be in (0, 1], got {share}")
        target = self.client.get(f"/runs/{int(run)}") if isinstance(run, int) else self.open_run(run)
        if target.get("type") != "trace":
            raise InvalidValue(f"run {target['id']} is a {target.get('type')} run, not a trace run")
        online = OnlineEvaluation(Scoring(self.client), target, scorer, share=share, seed=seed)
        if every is not None:
            online.start(every)
        return online


class OnlineEvaluation:
    """One scorer over a sampled share of one trace run's calls; :meth:`step` scores what came since
    the last step. ``scored`` counts the calls scored, ``error`` is the last failure of a background step."""

    def __init__(
        self, scoring: Scoring, run: Mapping[str, Any], scorer: Scorer, *, share: float, seed: int
    ) -> None:
        self.scoring = scoring
        self.client = scoring.client
        self.run_id = int(run["id"])
        self.scorer = scorer
        self.share = share
        self.seed = seed
        online = {"online": {"share": share, "seed": seed}}
        self.started = scoring._start(run, scorer, config={**scorer.config(), **online})
        self.scoring_id = int(self.started["id"])
        self.scored = 0
        self.error: BaseException | None = None
        self._done: set[str] = set()
        self._values: dict[str, list[float | None]] = {}
        self._tasks: list[str | None] = []
        self._offset = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _due(self) -> list[dict[str, Any]]:
        """The picked calls, not scored yet, that have an output: from a little before the last end seen."""
        due: list[dict[str, Any]] = []
        offset = max(0, self._offset - MARGIN)
        while True:
            page = self.client.get(f"/runs/{self.run_id}/samples", limit=PAGE, offset=offset)
            items: list[dict[str, Any]] = page["items"]
            for item in items:
                key = item["sample_key"]
                extra = item.get("extra") or {}
                if (
                    key in self._done
                    or item.get("output") is None
                    or "not_genai" in (extra.get("flags") or [])
                ):
                    continue
                if picked(key, self.share, self.seed):
                    item["scores"] = {k: number_from_wire(v) for k, v in (item.get("scores") or {}).items()}
                    due.append(item)
            offset += len(items)
            if not items or offset >= int(page["total"]):
                self._offset = offset
                return due

    def step(self) -> int:
        """Score the picked calls that came (or got their answer) since the last step; how many."""
        with self._lock:
            due = self._due()
            if not due:
                return 0
            got = self.scorer.score(due)
            items = []
            for sample, values in zip(due, got, strict=True):
                for metric in values:
                    self._values.setdefault(metric, [None] * len(self._tasks))
                for metric, column in self._values.items():
                    column.append(values.get(metric))
                self._tasks.append(sample.get("task"))
                stored = {f"{self.scorer.name}.{m}": v for m, v in values.items() if v is not None}
                items.append({"sample_key": sample["sample_key"], "scores": _wire(stored)})
            self.scoring._send(self.scoring_id, items)
            self._done.update(s["sample_key"] for s in due)
            self.scored += len(due)
            return len(due)

    def start(self, every: float) -> OnlineEvaluation:
        """Step every ``every`` seconds on a daemon thread (a failed step is kept in ``error``, retried)."""
        if every <= 0:
            raise InvalidValue(f"every must be a positive number of seconds, got {every}")

        def loop() -> None:
            while not self._stop.wait(every):
                try:
                    self.step()
                    self.error = None
                except EvalhubError as exc:  # the server away for a while: the next step tries again
                    self.error = exc

        self._thread = threading.Thread(target=loop, name=f"evalhub-online-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        """Stop stepping, score the last calls, and finish the scoring with its summary metrics."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        name = self.scorer.name
        try:
            self.step()
            summary = self.scorer.summarize(self._values, self._tasks)
            null = {m: sum(v is None for v in column) for m, column in self._values.items()}
            counts = {"samples": len(self._tasks), "null": null, "share": self.share}
            return self.scoring._finish(
                self.scoring_id, name, summary, self.scorer.directions(list(self._values)), counts
            )
        except BaseException as exc:
            self.scoring._fail(self.scoring_id, name, exc)
            raise

    def __enter__(self) -> OnlineEvaluation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["OnlineEvaluation", "Traces", "picked"]
