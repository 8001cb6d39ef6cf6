"""ImageGrid: a text-to-image experiment's prompts x runs, thumbnails loaded from the server per page.

Each page of prompts comes from the aligned samples of the task (paged and filtered on the server);
its thumbnails are the runs' artifacts, fetched for that page only (and the next one, ahead of time).
A click opens the full image with its settings.

>>> grid = evalhub.images(exp, baseline="step-100")
>>> grid.set_filter("mixed")          # the runs disagree on correctness
>>> grid.set_order("clip_score")      # the lowest CLIPScore first
"""

from __future__ import annotations

import base64
import html
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import traitlets

from evalhub._frames import comparison
from evalhub.errors import EvalhubError
from evalhub.protocol import number_from_wire
from evalhub.widgets._base import EvalhubWidget, fmt_number
from evalhub.widgets._source import ClientLike, client_of, id_of, run_labels
from evalhub.widgets._static import esm_source

FILTERS = {"all": "all prompts", "mixed": "runs disagree on correctness", "any_wrong": "any run wrong",
           "all_wrong": "every run wrong"}  # fmt: skip
"""The server-side filters of the grid, with what the front end calls them."""


def _thumbnail_of(image: str) -> str:
    return image[: -len(".png")] + ".thumb.png" if image.endswith(".png") else image


class ImageGrid(EvalhubWidget):
    """Prompts (rows) x runs (columns) of a text-to-image task, with each image's scores under it."""

    _esm = esm_source("images.js")

    experiment_id = traitlets.Int(0).tag(sync=True)
    task = traitlets.Unicode("").tag(sync=True)
    runs = traitlets.List(traitlets.Dict()).tag(sync=True)  # [{"run_id", "label", "baseline"}]
    query = traitlets.Dict().tag(sync=True)  # {"filter", "order", "offset", "limit"}
    page = traitlets.Dict().tag(
        sync=True
    )  # {"total", "offset", "items": [{"sample_key", "prompt", "cells"}]}
    opened = traitlets.Dict().tag(sync=True)  # the full image a click asked for, with its settings
    loading = traitlets.Bool(False).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    filters = traitlets.List(default_value=[list(kv) for kv in FILTERS.items()]).tag(sync=True)
    orders = traitlets.List(traitlets.Unicode()).tag(sync=True)  # the scores the prompts may be ordered by

    def __init__(
        self, exp: Any, *, hub: Any = None, task: str | None = None, baseline: str = "", limit: int = 12
    ) -> None:
        super().__init__()
        self._client: ClientLike = client_of(exp, hub)
        self.experiment_id = id_of(exp, "an experiment")
        compare = comparison(self._client, self.experiment_id)
        tasks = list(dict.fromkeys(str(r["task"]) for r in compare.get("runs", []) if r.get("task")))
        if task is None:
            task = tasks[0] if tasks else ""
        elif task not in tasks:
            raise EvalhubError(
                f"task {task!r} is not in experiment {self.experiment_id}; its tasks: {', '.join(tasks)}"
            )
        runs = [r for r in compare.get("runs", []) if r.get("task") == task]
        labels = run_labels(runs)
        if baseline and baseline not in labels.values():
            raise EvalhubError(f"baseline {baseline!r} is not one of the runs: {', '.join(labels.values())}")
        ordered = sorted(runs, key=lambda r: labels[int(r["run_id"])] != baseline)  # the baseline first
        self.runs = [
            {"run_id": int(r["run_id"]), "label": labels[int(r["run_id"])], "baseline": labels[int(r["run_id"])] == baseline}
            for r in ordered
        ]  # fmt: skip
        self.task = task
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="evalhub-images")
        self._thumbs: dict[tuple[int, str], str] = {}
        self._order: list[str] | None = None
        self._ahead: Future[Any] | None = None
        self.on_msg(self._on_message)
        self.query = {"filter": "all", "order": "", "offset": 0, "limit": max(1, min(int(limit), 100))}

    # -- moves --------------------------------------------------------------------------------------

    def goto(self, offset: int) -> None:
        self.query = {**self.query, "offset": max(0, int(offset))}

    def next_page(self) -> None:
        q = self.query
        if q["offset"] + q["limit"] < int(self.page.get("total", 0)):
            self.goto(q["offset"] + q["limit"])

    def prev_page(self) -> None:
        self.goto(self.query["offset"] - self.query["limit"])

    def set_filter(self, name: str) -> None:
        """``all``, ``mixed`` (the runs disagree on correctness), ``any_wrong`` or ``all_wrong``."""
        if name not in FILTERS:
            raise EvalhubError(f"unknown filter {name!r}; use one of {', '.join(FILTERS)}")
        self.query = {**self.query, "filter": name, "order": "", "offset": 0}

    def set_order(self, score: str) -> None:
        """Show the prompts by a score, lowest first (its lowest over the runs: ``clip_score``), or ``""``
        for the prompt set's own order."""
        self._order = None
        self.query = {**self.query, "order": score, "filter": "all", "offset": 0}

    def show_image(self, run_id: int, sample_key: str) -> dict[str, Any]:
        """The full image of one cell, with its prompt, seed, settings and scores (what a click shows)."""
        item = next((i for i in self.page.get("items", []) if i["sample_key"] == sample_key), None)
        cell = next((c for c in (item or {}).get("cells", []) if c["run_id"] == run_id), None)
        if cell is None or not cell.get("image"):
            raise EvalhubError(f"no image of sample {sample_key!r} for run {run_id} on this page")
        data = self._client.get_bytes(f"/api/runs/{run_id}/artifacts/{quote(cell['image'], safe='')}")  # type: ignore[attr-defined]
        sample = next(
            (s for s in self._client.paged(f"/api/runs/{run_id}/samples") if s["sample_key"] == sample_key),
            {},
        )
        self.opened = {
            "run_id": run_id,
            "sample_key": sample_key,
            "prompt": item["prompt"] if item else "",
            "src": "data:image/png;base64," + base64.b64encode(data).decode(),
            "scores": cell["scores"],
            "settings": (sample.get("extra") or {}).get("settings") or {},
            "seed": (sample.get("extra") or {}).get("seed"),
        }
        return self.opened

    # -- loading ------------------------------------------------------------------------------------

    @traitlets.observe("query")
    def _on_query(self, change: dict[str, Any]) -> None:
        self.loading = True
        try:
            self.page = self._load(dict(change["new"]))
            self.error = ""
        except EvalhubError as exc:
            self.error = str(exc)
        finally:
            self.loading = False
        q = dict(change["new"])
        if q["offset"] + q["limit"] < int(self.page.get("total", 0)):  # the next page's thumbnails, ahead
            ahead = {**q, "offset": q["offset"] + q["limit"]}
            self._ahead = self._pool.submit(self._load, ahead)

    def _keys_by(self, score: str) -> list[str]:
        """Every sample key of the task, by the lowest value of ``score`` over the runs."""
        if self._order is None:
            from evalhub.services.comparison import iter_scores

            lowest: dict[str, float] = {}
            for run in self.runs:
                for item in iter_scores(self._client, run["run_id"]):  # type: ignore[arg-type]
                    value = number_from_wire((item.get("scores") or {}).get(score))
                    if value is not None and value == value:
                        key = item["sample_key"]
                        lowest[key] = min(value, lowest.get(key, value))
            self._order = sorted(lowest, key=lambda k: (lowest[k], k))
        return self._order

    def _load(self, q: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {"task": self.task, "limit": q["limit"], "offset": q["offset"]}
        total = None
        if q.get("order"):
            ordered = self._keys_by(str(q["order"]))
            total = len(ordered)
            wanted = ordered[q["offset"] : q["offset"] + q["limit"]]
            params = {"task": self.task, "keys": wanted, "limit": max(1, len(wanted)), "offset": 0}
            if not wanted:
                return {"total": total, "offset": q["offset"], "items": []}
        else:
            params["filter"] = q.get("filter", "all")
        answer = self._client.get(f"/api/experiments/{self.experiment_id}/samples", **params)
        items = answer.get("items", [])
        if q.get("order"):
            rank = {k: i for i, k in enumerate(params["keys"])}
            items.sort(key=lambda i: rank.get(i["sample_key"], 0))
        jobs = {}
        for item in items:
            for run in self.runs:
                out = (item.get("outputs") or {}).get(str(run["run_id"])) or {}
                image = out.get("output")
                if image and (run["run_id"], image) not in self._thumbs:
                    jobs[(run["run_id"], image)] = self._pool.submit(self._thumbnail, run["run_id"], image)
        for key, job in jobs.items():
            self._thumbs[key] = job.result()
        rows = []
        for item in items:
            cells = []
            for run in self.runs:
                out = (item.get("outputs") or {}).get(str(run["run_id"])) or {}
                image = out.get("output")
                scores = {k: number_from_wire(v) for k, v in (out.get("scores") or {}).items()}
                cells.append({"run_id": run["run_id"], "image": image, "thumb": self._thumbs.get((run["run_id"], image), ""),
                              "scores": scores})  # fmt: skip
            rows.append(
                {"sample_key": item["sample_key"], "prompt": item.get("prompt") or "", "cells": cells}
            )
        found = sorted({k for row in rows for c in row["cells"] for k in c["scores"]})
        if found and not self.orders:
            self.orders = found
        return {
            "total": int(answer.get("total", 0)) if total is None else total,
            "offset": q["offset"],
            "items": rows,
        }

    def _thumbnail(self, run_id: int, image: str) -> str:
        path = f"/api/runs/{run_id}/artifacts/{quote(_thumbnail_of(image), safe='')}"
        try:
            data = self._client.get_bytes(path)  # type: ignore[attr-defined]
        except EvalhubError:
            return ""
        return "data:image/png;base64," + base64.b64encode(data).decode()

    def _on_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        kind = content.get("type")
        try:
            if kind == "open":
                self.show_image(int(content["run_id"]), str(content["sample_key"]))
            elif kind == "next":
                self.next_page()
            elif kind == "prev":
                self.prev_page()
            elif kind == "filter":
                self.set_filter(str(content.get("value") or "all"))
            elif kind == "order":
                self.set_order(str(content.get("value") or ""))
        except EvalhubError as exc:
            self.error = str(exc)

    # -- fallbacks ----------------------------------------------------------------------------------

    def _text(self) -> str:
        lines = [
            f"ImageGrid of experiment {self.experiment_id}, task {self.task}: {self.page.get('total', 0)} prompts"
        ]
        for item in self.page.get("items", []):
            scores = "; ".join(
                f"{r['label']}: " + ", ".join(f"{k}={fmt_number(v)}" for k, v in c["scores"].items())
                for r, c in zip(self.runs, item["cells"], strict=True)
            )
            lines.append(f"- {item['prompt']} | {scores}")
        return "\n".join(lines)

    def _html(self) -> str:
        head = "".join(f"<th>{html.escape(r['label'])}</th>" for r in self.runs)
        body = "".join(
            f"<tr><td>{html.escape(i['prompt'])}</td>"
            + "".join(f"<td><img src='{c['thumb']}' alt='' width=64></td>" for c in i["cells"])
            + "</tr>"
            for i in self.page.get("items", [])
        )
        return f"<table><thead><tr><th>prompt</th>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self._pool.shutdown(wait=False)
        except Exception:
            pass


def images(
    exp: Any, *, hub: Any = None, task: str | None = None, baseline: str = "", limit: int = 12
) -> ImageGrid:
    """An :class:`ImageGrid` of a text-to-image experiment (an Experiment or its id)."""
    return ImageGrid(exp, hub=hub, task=task, baseline=baseline, limit=limit)


__all__ = ["FILTERS", "ImageGrid", "images"]
