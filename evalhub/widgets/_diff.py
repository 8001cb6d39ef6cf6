"""OutputDiff: per sample, every run's answer side by side, paged and filtered on the server."""

from __future__ import annotations

import html
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import traitlets

from evalhub._frames import comparison
from evalhub.errors import EvalhubError
from evalhub.widgets._base import EvalhubWidget, fmt_number
from evalhub.widgets._source import ClientLike, client_of, id_of, run_labels
from evalhub.widgets._static import esm_source
from evalhub.widgets._worddiff import word_diff

_PREFETCH_TTL = 15.0  # seconds a prefetched page counts as fresh (runs may still be writing samples)
_PREFETCH_KEEP = 6  # pages kept

FILTERS = ("all", "disagree", "any_wrong", "all_wrong")
"""The sample filters the server applies: every sample, runs disagree, any run wrong, all wrong."""


class OutputDiff(EvalhubWidget):
    """Per-sample outputs of an experiment's runs, aligned by sample key.

    Each page comes from the server (``/api/experiments/{id}/samples``), so an experiment with
    100,000 samples stays fast: the front end sets ``query`` (task, filter, q, offset, limit) and
    Python answers with ``page``. The same moves are methods: ``next_page()``, ``set_filter()``,
    ``search()``, ``set_task()``, ``goto()``.

    >>> d = evalhub.diff(exp, task="arith-add")
    >>> d.set_filter("disagree")
    >>> d.page["total"], d.page["items"][0]["cells"][0]["output"]
    """

    _esm = esm_source("diff.js")

    experiment_id = traitlets.Int(0).tag(sync=True)
    tasks = traitlets.List(traitlets.Unicode()).tag(sync=True)
    query = traitlets.Dict().tag(sync=True)
    page = traitlets.Dict().tag(sync=True)
    baseline_run = traitlets.Int(0).tag(sync=True)
    loading = traitlets.Bool(False).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        exp: Any,
        *,
        hub: Any = None,
        task: str | None = None,
        filter: str = "all",
        q: str = "",
        limit: int = 20,
    ) -> None:
        super().__init__()
        self._client: ClientLike = client_of(exp, hub)
        self.experiment_id = id_of(exp, "an experiment")
        self._lock = threading.Lock()
        self._raw_items: list[dict[str, Any]] = []
        self._runs: list[dict[str, Any]] = []
        self._cache: dict[tuple[Any, ...], tuple[float, Future[Any]]] = {}
        self._cache_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        compare = comparison(self._client, self.experiment_id)
        self._labels = run_labels(compare.get("runs", []))
        self.tasks = list(dict.fromkeys(str(r["task"]) for r in compare.get("runs", []) if r.get("task")))
        if task is None:
            task = self.tasks[0] if self.tasks else ""
        elif self.tasks and task not in self.tasks:
            raise EvalhubError(
                f"task {task!r} is not in experiment {self.experiment_id}; its tasks: {', '.join(self.tasks)}"
            )
        self.query = self._checked({"task": task, "filter": filter, "q": q, "offset": 0, "limit": limit})

    # -- the moves a user (or the front end) makes -------------------------------------------------

    def goto(self, offset: int) -> None:
        """Show the page starting at sample ``offset`` of the filtered list."""
        self.query = {**self.query, "offset": max(0, int(offset))}

    def next_page(self) -> None:
        """The next page (stays on the last one)."""
        total = int(self.page.get("total", 0))
        q = self.query
        if q["offset"] + q["limit"] < total:
            self.goto(q["offset"] + q["limit"])

    def prev_page(self) -> None:
        """The previous page."""
        self.goto(max(0, self.query["offset"] - self.query["limit"]))

    def set_filter(self, name: str) -> None:
        """``all``, ``disagree`` (runs' outputs differ), ``any_wrong`` or ``all_wrong``; back to page 1."""
        self.query = {**self.query, "filter": name, "offset": 0}

    def search(self, text: str) -> None:
        """Keep samples whose prompt, reference or any output contains ``text``; back to page 1."""
        self.query = {**self.query, "q": text, "offset": 0}

    def set_task(self, task: str) -> None:
        """Show another task of the experiment; back to page 1."""
        self.query = {**self.query, "task": task, "offset": 0}

    # -- loading -----------------------------------------------------------------------------------

    @traitlets.validate("query")
    def _validate_query(self, proposal: dict[str, Any]) -> dict[str, Any]:
        return self._checked(dict(proposal["value"]))

    def _checked(self, q: dict[str, Any]) -> dict[str, Any]:
        filt = str(q.get("filter") or "all")
        if filt not in FILTERS:
            raise traitlets.TraitError(f"unknown filter {filt!r}; use one of {', '.join(FILTERS)}")
        limit = int(q.get("limit") or 20)
        if not 1 <= limit <= 1000:
            raise traitlets.TraitError(f"limit must be between 1 and 1000, got {limit}")
        return {
            "task": str(q.get("task") or ""),
            "filter": filt,
            "q": str(q.get("q") or ""),
            "offset": max(0, int(q.get("offset") or 0)),
            "limit": limit,
            "seq": int(q.get("seq") or 0),  # the front end's request number, echoed in the page
        }

    @traitlets.observe("query")
    def _on_query(self, change: dict[str, Any]) -> None:
        self.load()

    @traitlets.observe("baseline_run")
    def _on_baseline(self, change: dict[str, Any]) -> None:
        if self._raw_items:
            self.page = {**self.page, "items": [self._item(it) for it in self._raw_items]}

    def load(self) -> None:
        """Fetch the page that ``query`` names and publish it in ``page``."""
        q = dict(self.query)
        params: dict[str, Any] = {"filter": q["filter"], "limit": q["limit"], "offset": q["offset"]}
        if q["task"]:
            params["task"] = q["task"]
        if q["q"]:
            params["q"] = q["q"]
        with self._lock:
            self.loading = True
            try:
                data = self._fetch(params)
            except Exception as exc:  # shown in the widget, the old page stays
                self.error = f"{type(exc).__name__}: {exc}"
                self.loading = False
                return
            runs: list[dict[str, Any]] = [
                {
                    "run_id": int(r["run_id"]),
                    "label": self._labels.get(int(r["run_id"])) or str(r.get("label") or r["run_id"]),
                }
                for r in data.get("runs", [])
            ]
            self._runs = runs
            if runs and self.baseline_run not in {r["run_id"] for r in runs}:
                with self.hold_trait_notifications():
                    self.baseline_run = runs[0]["run_id"]
            self._raw_items = list(data.get("items", []))
            with self.hold_sync():
                self.page = {
                    "task": data.get("task") or q["task"],
                    "filter": q["filter"],
                    "q": q["q"],
                    "seq": q["seq"],
                    "total": int(data.get("total", 0)),
                    "offset": int(data.get("offset", q["offset"])),
                    "limit": int(data.get("limit", q["limit"])),
                    "runs": runs,
                    "items": [self._item(it) for it in self._raw_items],
                }
                self.error = ""
                self.loading = False
            if q["offset"] + q["limit"] < int(data.get("total", 0)):
                self._prefetch({**params, "offset": q["offset"] + q["limit"]})

    def refresh(self) -> None:
        """Forget prefetched pages and load the current page again (runs may have written more)."""
        with self._cache_lock:
            self._cache.clear()
        self.load()

    # The next page is fetched in the background while the user reads this one, so "next" is
    # answered from memory; a page older than _PREFETCH_TTL is fetched again.
    def _fetch(self, params: dict[str, Any]) -> Any:
        key = tuple(sorted(params.items()))
        with self._cache_lock:
            hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < _PREFETCH_TTL:
            try:
                return hit[1].result()
            except Exception:
                pass  # the prefetch failed: ask again, in the foreground
        return self._client.get(f"/api/experiments/{self.experiment_id}/samples", **params)

    def _prefetch(self, params: dict[str, Any]) -> None:
        key = tuple(sorted(params.items()))
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < _PREFETCH_TTL:
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalhub-diff")
            future = self._pool.submit(
                self._client.get, f"/api/experiments/{self.experiment_id}/samples", **params
            )
            self._cache[key] = (time.monotonic(), future)
            while len(self._cache) > _PREFETCH_KEEP:
                self._cache.pop(next(iter(self._cache)))

    def _item(self, item: dict[str, Any]) -> dict[str, Any]:
        outputs: dict[str, Any] = item.get("outputs") or {}
        base = outputs.get(str(self.baseline_run)) or {}
        base_text = _answer(base)
        cells = []
        answers = set()
        for run in self._runs:
            out = outputs.get(str(run["run_id"]))
            if out is None:
                cells.append({"run_id": run["run_id"], "missing": True})
                continue
            text = _answer(out)
            answers.add(text)
            primary = out.get("primary_score")
            cells.append(
                {
                    "run_id": run["run_id"],
                    "missing": False,
                    "output": out.get("output") or "",
                    "filtered_output": out.get("filtered_output"),
                    "segments": [["=", text]]
                    if run["run_id"] == self.baseline_run
                    else word_diff(base_text, text),
                    "scores": out.get("scores") or {},
                    "primary_score": primary,
                    "correct": None if primary is None else bool(primary >= 1),
                }
            )
        return {
            "sample_key": item.get("sample_key"),
            "index": item.get("index"),
            "prompt": item.get("prompt") or "",
            "reference": item.get("reference") if item.get("reference") is not None else "",
            "agree": len(answers) <= 1,
            "cells": cells,
        }

    # -- fallbacks ---------------------------------------------------------------------------------

    def _text(self) -> str:
        p = self.page
        runs = {r["run_id"]: r["label"] for r in p.get("runs", [])}
        first, last = p.get("offset", 0) + 1, p.get("offset", 0) + len(p.get("items", []))
        lines = [
            f"Output diff of experiment {self.experiment_id}, task {p.get('task', '')!r}, "
            f"filter {p.get('filter', 'all')}: samples {first}-{last} of {p.get('total', 0)}"
        ]
        for item in p.get("items", []):
            lines.append(
                f"#{item['index']} {_clip(item['prompt'])!r} -> reference {_clip(str(item['reference']))!r}"
            )
            for c in item["cells"]:
                if c["missing"]:
                    lines.append(f"    {runs.get(c['run_id'], c['run_id'])}: (no output)")
                else:
                    mark = {True: "ok", False: "wrong", None: ""}[c["correct"]]
                    lines.append(
                        f"    {runs.get(c['run_id'], c['run_id'])}: {_clip(_answer(c))!r} {mark}".rstrip()
                    )
        return "\n".join(lines)

    def _html(self) -> str:
        p = self.page
        runs = p.get("runs", [])
        head = "".join(f"<th>{html.escape(r['label'])}</th>" for r in runs)
        body = []
        for item in p.get("items", []):
            cells = []
            for c in item["cells"]:
                if c["missing"]:
                    cells.append("<td>—</td>")
                    continue
                score = fmt_number(c["primary_score"]) if c["primary_score"] is not None else ""
                cells.append(f"<td>{html.escape(_answer(c))} <small>{score}</small></td>")
            body.append(
                f"<tr><td>{item['index']}</td><td>{html.escape(_clip(item['prompt'], 200))}</td>"
                f"<td>{html.escape(str(item['reference']))}</td>{''.join(cells)}</tr>"
            )
        caption = html.escape(
            f"Experiment {self.experiment_id}, task {p.get('task', '')}, filter {p.get('filter', 'all')}: "
            f"{p.get('total', 0)} samples, from {p.get('offset', 0) + 1}"
        )
        return (
            f'<table class="evh-static"><caption>{caption}</caption><thead><tr><th>#</th><th>prompt</th>'
            f"<th>reference</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        )


def _answer(out: dict[str, Any]) -> str:
    """The answer a run gave: the filtered output when the task filters, else the raw output."""
    filtered = out.get("filtered_output")
    return str(filtered if filtered not in (None, "") else out.get("output") or "")


def _clip(text: str, n: int = 60) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= n else text[: n - 1] + "…"


def diff(
    exp: Any, task: str | None = None, *, hub: Any = None, filter: str = "all", q: str = "", limit: int = 20
) -> OutputDiff:
    """An :class:`OutputDiff` of an experiment (an Experiment or its id), one task at a time."""
    return OutputDiff(exp, hub=hub, task=task, filter=filter, q=q, limit=limit)
