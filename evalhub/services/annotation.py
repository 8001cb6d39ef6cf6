"""People as scorers: annotation queues over an experiment's samples, labelled by people, each known by
the token the admin issued them; agreement between people as Cohen's kappa.

>>> queue = hub.annotation_queue(exp, "quality", {"kind": "scale", "min": 1, "max": 5}, sample=50, seed=1)
>>> item = queue.items()[0]
>>> queue.label(item, 4)                       # as the person whose token the hub holds
>>> queue.progress()                           # items labelled, per person
>>> queue.agreement()                          # kappa per pair of people (weighted for a scale)

A label is also a per-sample score of the labelled run, ``<queue>.<person>``, so comparisons, slices
(``exp.slices(by="score:quality.alice")``) and exports read it like any scorer's.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evalhub.client import Client
from evalhub.errors import EvalhubError

if TYPE_CHECKING:
    import polars as pl

    from evalhub.stats import Kappa

PAGE = 1000


class AnnotationQueue:
    """One queue on the server: its items, labels, progress and agreement. Labels are given as the
    person of the client's token (or, on a server without auth, the ``person`` named)."""

    def __init__(self, client: Client, info: Mapping[str, Any], person: str | None = None) -> None:
        self.client = client
        self.info = dict(info)
        self.person = person

    @property
    def id(self) -> int:
        return int(self.info["id"])

    @property
    def name(self) -> str:
        return str(self.info["name"])

    @property
    def schema(self) -> dict[str, Any]:
        return dict(self.info["schema"])

    def __repr__(self) -> str:
        p = self.info.get("progress") or {}
        return (
            f"AnnotationQueue({self.name!r}, {self.schema['kind']}, experiment {self.info['experiment_id']}, "
            f"{p.get('labelled', 0)}/{p.get('total', 0)} labelled)"
        )

    def refresh(self) -> AnnotationQueue:
        self.info = dict(self.client.get(f"/annotation-queues/{self.id}"))
        return self

    # -- reading ----------------------------------------------------------------------------------

    def items(self, offset: int = 0, limit: int = PAGE) -> list[dict[str, Any]]:
        """Items in order, as this person sees them (a pair in their order) with their label."""
        page = self.client.get(f"/annotation-queues/{self.id}/items", limit=limit, offset=offset,
                               person=self.person)  # fmt: skip
        return list(page["items"])

    def progress(self) -> dict[str, Any]:
        """``total`` items, ``labelled`` (by anyone), ``labels`` given, and each person's count."""
        return dict(self.client.get(f"/annotation-queues/{self.id}/progress"))

    def labels(self) -> pl.DataFrame:
        """Every label: item, sample, run, person, value (the score written), choice, text, order."""
        import polars as pl

        rows = list(self.client.paged(f"/annotation-queues/{self.id}/labels", limit=PAGE))
        schema = {"item_id": pl.Int64, "sample_key": pl.Utf8, "run_id": pl.Int64, "other_run_id": pl.Int64,
                  "person": pl.Utf8, "value": pl.Float64, "choice": pl.Utf8, "text": pl.Utf8, "order": pl.Utf8,
                  "updated_at": pl.Utf8}  # fmt: skip
        return pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema, orient="row")

    # -- labelling --------------------------------------------------------------------------------

    def label(
        self, item: int | Mapping[str, Any], answer: Any = None, *, text: str | None = None
    ) -> dict[str, Any]:
        """Label an item: a scale's integer, a choice's option, ``"A"``/``"B"``/``"tie"`` for a pair
        (in the order shown), or free text (``text=``, also a comment beside any other kind)."""
        kind = self.schema["kind"]
        body: dict[str, Any] = {"person": self.person, "text": text}
        if kind == "scale":
            body["value"] = answer
        elif kind in ("choice", "pairwise"):
            body["choice"] = answer
        elif answer is not None and text is None:
            body["text"] = answer
        path = f"/annotation-queues/{self.id}/items/{_item_id(item)}/label"
        return dict(
            self.client.request("PUT", path, json_body={k: v for k, v in body.items() if v is not None})
        )

    def undo(self, item: int | Mapping[str, Any]) -> dict[str, Any]:
        """Take this person's label of an item back (its score goes too); the removed label."""
        path = f"/annotation-queues/{self.id}/items/{_item_id(item)}/label"
        return dict(self.client.request("DELETE", path, params={"person": self.person}))

    # -- agreement --------------------------------------------------------------------------------

    def kappa(self, a: str, b: str, weights: str | None = "default") -> Kappa:
        """Cohen's kappa between two people over the items both labelled; a scale is weighted
        (quadratic by default, over the whole scale), a choice or a preference is not."""
        from evalhub.stats import cohen_kappa

        by_person = self._values()
        categories, default = self._categories()
        chosen = default if weights == "default" else weights
        items = sorted(set(by_person.get(a, {})) | set(by_person.get(b, {})))
        return cohen_kappa(
            [by_person.get(a, {}).get(i) for i in items],
            [by_person.get(b, {}).get(i) for i in items],
            weights=chosen,  # type: ignore[arg-type]
            labels=categories,
        )

    def agreement(self, weights: str | None = "default") -> pl.DataFrame:
        """Kappa for every pair of people who labelled this queue: ``a``, ``b``, ``kappa``, ``n`` (items
        both labelled), the observed and chance agreement, the weights, and why kappa is undefined."""
        import polars as pl

        people = sorted(self._values())
        rows = []
        for a, b in itertools.combinations(people, 2):
            k = self.kappa(a, b, weights)
            rows.append({"a": a, "b": b, "kappa": k.kappa, "n": k.n, "observed": k.observed,
                         "expected": k.expected, "weights": k.weights, "reason": k.reason})  # fmt: skip
        schema = {"a": pl.Utf8, "b": pl.Utf8, "kappa": pl.Float64, "n": pl.Int64, "observed": pl.Float64,
                  "expected": pl.Float64, "weights": pl.Utf8, "reason": pl.Utf8}  # fmt: skip
        return pl.DataFrame(rows, schema=schema, orient="row")

    def _values(self) -> dict[str, dict[int, float]]:
        if self.schema["kind"] == "text":
            raise EvalhubError(f"queue {self.name!r} takes free text: there is no kappa between texts")
        out: dict[str, dict[int, float]] = {}
        for r in self.client.paged(f"/annotation-queues/{self.id}/labels", limit=PAGE):
            if r.get("value") is not None:
                out.setdefault(str(r["person"]), {})[int(r["item_id"])] = float(r["value"])
        return out

    def _categories(self) -> tuple[list[float], str | None]:
        s = self.schema
        if s["kind"] == "scale":
            return [float(v) for v in range(int(s["min"]), int(s["max"]) + 1)], "quadratic"
        if s["kind"] == "choice":
            return [float(i) for i in range(len(s["options"]))], None
        return [0.0, 0.5, 1.0], None  # the other run's answer, a tie, the run's


def _item_id(item: int | Mapping[str, Any]) -> int:
    return int(item["id"]) if isinstance(item, Mapping) else int(item)


class Annotation:
    """Queues and people (``hub.annotation``): create and find queues; the admin issues people's tokens."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def create(
        self,
        experiment_id: int,
        name: str,
        schema: Mapping[str, Any],
        *,
        task: str | None = None,
        filter: str = "all",
        q: str | None = None,
        sample: int | None = None,
        seed: int = 0,
        run_ids: Sequence[int] | None = None,
        person: str | None = None,
    ) -> AnnotationQueue:
        body = {"experiment_id": int(experiment_id), "name": name, "schema": dict(schema), "task": task,
                "filter": filter, "q": q, "sample": sample, "seed": seed,
                "run_ids": None if run_ids is None else [int(r) for r in run_ids]}  # fmt: skip
        made = self.client.post("/annotation-queues", {k: v for k, v in body.items() if v is not None})
        return AnnotationQueue(self.client, made, person)

    def queue(self, ref: int | str, person: str | None = None) -> AnnotationQueue:
        """A queue by id or name."""
        if isinstance(ref, int) or str(ref).isdigit():
            return AnnotationQueue(self.client, self.client.get(f"/annotation-queues/{int(ref)}"), person)
        for info in self.client.paged("/annotation-queues", limit=PAGE):
            if info["name"] == ref:
                return AnnotationQueue(self.client, info, person)
        raise EvalhubError(f"no annotation queue named {ref!r} in project {self.client.project!r}")

    def queues(self, experiment_id: int | None = None) -> pl.DataFrame:
        import polars as pl

        rows = [
            {"id": q["id"], "name": q["name"], "kind": q["schema"]["kind"], "experiment_id": q["experiment_id"],
             "task": q["task"], "items": q["progress"]["total"], "labelled": q["progress"]["labelled"],
             "people": len(q["progress"]["people"])}
            for q in self.client.paged("/annotation-queues", limit=PAGE, experiment_id=experiment_id)
        ]  # fmt: skip
        return pl.DataFrame(rows)

    def add_person(self, name: str, expires_in_days: float | None = None) -> str:
        """Issue a token to a person of this project (the admin's token only); the token, shown once."""
        body = {"name": name, "expires_in_days": expires_in_days}
        made = self.client.post(
            f"/projects/{self.client.project}/people", {k: v for k, v in body.items() if v}
        )
        return str(made["token"])


__all__ = ["Annotation", "AnnotationQueue"]
