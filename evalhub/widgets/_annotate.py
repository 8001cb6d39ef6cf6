"""Annotator: label an annotation queue's items in a notebook, keyboard first.

Number keys answer (a scale's 1..n from its low end, a choice's n-th option, 1/2/3 for A/B/tie of a
pair), ``j``/``k`` move to the next/previous item, ``s`` skips, ``u`` undoes the last label; free text
is typed and sent with Enter. The widget shows the person's and the queue's progress and, once two
people labelled the same items, kappa between every pair of them (refreshed every few seconds, so
another person's labels show up).

>>> evalhub.annotate(hub.queue("quality"))                  # as the person of the hub's token
>>> evalhub.annotate("quality", hub=hub, person="alice")    # on a server without auth
"""

from __future__ import annotations

import base64
import html
import math
import threading
from typing import Any
from urllib.parse import quote

import traitlets

from evalhub.errors import EvalhubError
from evalhub.services.annotation import AnnotationQueue
from evalhub.widgets._base import EvalhubWidget
from evalhub.widgets._static import esm_source

PAGE = 100
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
"""An answer naming an artifact with one of these is shown as the image (text-to-image samples)."""


class Annotator(EvalhubWidget):
    """One person labelling one queue: the current item, their progress, and people's agreement."""

    _esm = esm_source("annotate.js")

    queue = traitlets.Dict().tag(sync=True)  # {"id", "name", "schema", "total"}
    person = traitlets.Unicode("").tag(sync=True)
    position = traitlets.Int(0).tag(sync=True)
    item = traitlets.Dict().tag(sync=True)  # the current item as the person sees it (with their label)
    progress = traitlets.Dict().tag(sync=True)
    agreement = traitlets.List(traitlets.Dict()).tag(sync=True)  # [{"a", "b", "kappa", "n", "weights"}]
    status = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, queue: AnnotationQueue, person: str | None = None) -> None:
        super().__init__()
        self._queue = queue
        if person is not None:
            queue.person = person
        self.person = queue.person or ""
        self._pages: dict[int, list[dict[str, Any]]] = {}
        self._images: dict[tuple[int, str], str] = {}
        self._done: list[int] = []  # the positions this widget labelled, for undo
        # ipykernel 7 may hand comm messages to threads: one key at a time, each on the state the
        # previous one left (else a quick second key labels the item the first one just left)
        self._lock = threading.Lock()
        total = int((queue.info.get("progress") or {}).get("total", 0))
        self.queue = {"id": queue.id, "name": queue.name, "schema": queue.schema, "total": total}
        self.on_msg(self._on_message)
        self.refresh()
        self._goto(self._first_open())

    # -- moves --------------------------------------------------------------------------------------

    def label(self, answer: Any = None, *, text: str | None = None) -> dict[str, Any]:
        """Label the current item and move to the next one."""
        if not self.item:
            raise EvalhubError(f"queue {self._queue.name!r} has no item at position {self.position}")
        made = self._queue.label(self.item, answer, text=text)
        self.person = str(made["person"])  # a person's token says who it is with its first label
        self._forget(self.position)
        self._done.append(self.position)
        self.status = f"labelled item {self.position + 1}: {_said(made)}"
        self.refresh()
        self._goto(self.position + 1)
        return made

    def undo(self) -> dict[str, Any] | None:
        """Take back the last label given here, and go back to its item."""
        if not self._done:
            self.status = "nothing to undo"
            return None
        at = self._done.pop()
        item = self._item(at)
        if item is None or item.get("label") is None:
            self.status = "nothing to undo"
            return None
        removed = self._queue.undo(item)
        self._forget(at)
        self.status = f"undid the label of item {at + 1}"
        self.refresh()
        self._goto(at)
        return removed

    def next(self) -> None:
        self._goto(self.position + 1)

    def prev(self) -> None:
        self._goto(self.position - 1)

    def skip(self) -> None:
        self.status = f"skipped item {self.position + 1}"
        self._goto(self.position + 1)

    def refresh(self) -> None:
        """Progress and agreement as the server has them now (other people label too)."""
        self.progress = self._queue.progress()
        if self._queue.schema["kind"] == "text":
            return
        rows = self._queue.agreement().to_dicts()
        self.agreement = [
            {**r, "kappa": None if r["kappa"] is None or math.isnan(r["kappa"]) else r["kappa"]} for r in rows
        ]

    # -- items --------------------------------------------------------------------------------------

    def _goto(self, position: int) -> None:
        total = int(self.queue["total"])
        position = max(0, min(position, max(total - 1, 0)))
        item = self._with_images(self._item(position) or {})
        with self.hold_sync():  # the item and its position reach the view together
            self.item = item
            self.position = position
            self.error = ""

    def _item(self, position: int) -> dict[str, Any] | None:
        start = position - position % PAGE
        if start not in self._pages:
            self._pages[start] = self._queue.items(offset=start, limit=PAGE)
        page = self._pages[start]
        return page[position - start] if 0 <= position - start < len(page) else None

    def _with_images(self, item: dict[str, Any]) -> dict[str, Any]:
        """An answer that names an image artifact of its run (a text-to-image sample) carries the
        image, so a person rates what the model drew (the run of a pair's slot follows its order)."""
        answers = item.get("answers") or []
        if not any(str(a.get("output") or "").lower().endswith(IMAGE_SUFFIXES) for a in answers):
            return item
        first, second = item.get("run_id"), item.get("other_run_id")
        runs = {"answer": first, "A": first if item.get("order") != "BA" else second,
                "B": second if item.get("order") != "BA" else first}  # fmt: skip
        shown = []
        for answer in answers:
            name, run_id = str(answer.get("output") or ""), runs.get(str(answer.get("slot")))
            if run_id is not None and name.lower().endswith(IMAGE_SUFFIXES):
                answer = {**answer, "image": self._image(int(run_id), name)}
            shown.append(answer)
        return {**item, "answers": shown}

    def _image(self, run_id: int, name: str) -> str:
        """The image as a data URL (fetched once per run and name); "" when the run doesn't have it."""
        key = (run_id, name)
        if key not in self._images:
            try:
                answer = self._queue.client.request(
                    "GET", f"/runs/{run_id}/artifacts/{quote(name)}", raw=True
                )
                kind = "jpeg" if name.lower().endswith((".jpg", ".jpeg")) else name.rsplit(".", 1)[-1].lower()
                self._images[key] = f"data:image/{kind};base64," + base64.b64encode(answer.content).decode()
            except EvalhubError:
                self._images[key] = ""
        return self._images[key]

    def _forget(self, position: int) -> None:
        self._pages.pop(position - position % PAGE, None)

    def _first_open(self) -> int:
        """The first item this person has not labelled (the last one when all are)."""
        total = int(self.queue["total"])
        for start in range(0, total, PAGE):
            for i, item in enumerate(self._queue.items(offset=start, limit=PAGE)):
                if item.get("label") is None:
                    return start + i
        return max(total - 1, 0)

    def _on_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        kind = content.get("type")
        with self._lock:
            self._handle(kind, content)

    def _handle(self, kind: Any, content: dict[str, Any]) -> None:
        try:
            if kind == "label":
                self.label(content.get("answer"), text=content.get("text") or None)
            elif kind == "undo":
                self.undo()
            elif kind == "next":
                self.next()
            elif kind == "prev":
                self.prev()
            elif kind == "skip":
                self.skip()
            elif kind == "refresh":
                self.refresh()
        except EvalhubError as exc:
            self.error = str(exc)

    # -- fallbacks ----------------------------------------------------------------------------------

    def _text(self) -> str:
        p = self.progress or {}
        mine = next((x["labelled"] for x in p.get("people", []) if x["person"] == self.person), 0)
        kappas = ", ".join(
            f"{r['a']}-{r['b']} {r['kappa']:.3f} (n={r['n']})"
            for r in self.agreement
            if r["kappa"] is not None
        )
        return (
            f"Annotator for queue {self.queue.get('name')!r} as {self.person or '?'}: {mine}/{p.get('total', 0)} "
            f"by you, {p.get('labelled', 0)}/{p.get('total', 0)} labelled"
            + (f"; kappa {kappas}" if kappas else "")
        )

    def _html(self) -> str:
        return f"<pre>{html.escape(self._text())}</pre>"


def _said(label: dict[str, Any]) -> str:
    for key in ("choice", "value", "text"):
        if label.get(key) is not None:
            value = label[key]
            return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return "—"


def annotate(queue: Any, *, hub: Any = None, person: str | None = None) -> Annotator:
    """A keyboard-first labelling widget for an annotation queue (an AnnotationQueue, or a queue's
    id or name with ``hub=``)."""
    if not isinstance(queue, AnnotationQueue):
        if hub is None:
            from evalhub.hub import connect

            hub = connect()
        queue = hub.queue(queue, person=person)
    return Annotator(queue, person)


__all__ = ["Annotator", "annotate"]
