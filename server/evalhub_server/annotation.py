"""People as scorers: annotation queues over an experiment's samples, and the labels people give.

A queue's items are chosen once, at creation, from the aligned samples of one task (the same filters
and search as the aligned read), optionally a seeded random sample of them. A label is one person's
answer for one item; it is kept in ``annotation_labels`` and written as a per-sample score of the
labelled run under ``<queue>.<person>``, merged into the sample's scores under the run's row lock as a
scoring's results are, so slices, comparisons and exports read people's labels like any scorer's.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from evalhub.protocol import to_wire

from . import tables as t
from .db import Database
from .errors import Conflict, Invalid, NotFound
from .numbers import store, wire_or_none
from .rows import count, dump, iso, load, new_id, now, page

PAGE = 1000
PREFERENCE = {"A": 1.0, "B": 0.0, "tie": 0.5}  # the first answer shown, the second, a tie


def shown_order(queue_id: int, seed: int, item_id: int, person: str) -> str:
    """How a pair is shown to a person: ``AB`` (the item's run first) or ``BA``, drawn per item and per
    person, and the same every time that person opens the item."""
    digest = hashlib.sha256(f"{queue_id}/{seed}/{item_id}/{person}".encode()).digest()
    return "BA" if digest[0] & 1 else "AB"


class AnnotationStore:
    """Queues, items and labels. ``runs`` is the :class:`~.runs.RunStore`, ``reads`` the
    :class:`~.reads.ReadStore` (the aligned samples a queue is chosen from)."""

    def __init__(self, db: Database, runs: Any, reads: Any) -> None:
        self.db = db
        self.runs = runs
        self.reads = reads

    # ---- queues ---------------------------------------------------------------------------------

    def create(self, pid: int, body: dict[str, Any], created_by: str | None) -> dict[str, Any]:
        schema, name, exp_id = body["schema"], body["name"], int(body["experiment_id"])
        keys, task, task_runs = self._select(pid, exp_id, body)
        run_ids = [int(r) for r in body.get("run_ids") or task_runs]
        unknown = [r for r in run_ids if r not in task_runs]
        if unknown:
            raise Invalid(
                f"runs {unknown} are not runs of task '{task}' in experiment {exp_id} "
                f"(its runs: {task_runs})",
                field="body.run_ids",
            )
        if len(set(run_ids)) != len(run_ids):
            raise Invalid("run_ids repeat a run", field="body.run_ids")
        if schema["kind"] == "pairwise" and len(run_ids) != 2:
            raise Invalid(
                f"a pairwise queue compares two runs' answers: give run_ids=[run, other] "
                f"(task '{task}' has runs {task_runs})",
                field="body.run_ids",
            )
        present = self._present(keys, run_ids)
        items: list[dict[str, Any]] = []
        for key in keys:
            if schema["kind"] == "pairwise":
                if present[key] >= set(run_ids):
                    items.append({"sample_key": key, "run_id": run_ids[0], "other_run_id": run_ids[1]})
            else:
                items.extend(
                    {"sample_key": key, "run_id": r, "other_run_id": None}
                    for r in run_ids
                    if r in present[key]
                )
        if not items:
            raise Invalid(
                f"queue '{name}' would have no items: runs {run_ids} have no samples among those chosen "
                f"from task '{task}' of experiment {exp_id}",
                field="body.run_ids",
            )
        ts = now()

        def tx(conn: sa.Connection) -> int:
            c = t.annotation_queues.c
            taken = conn.execute(
                sa.select(c.id).where(c.project_id == pid, c.name == name)
            ).first()  # fmt: skip
            if taken:
                raise Conflict(
                    f"this project already has an annotation queue named '{name}'", field="body.name"
                )
            qid = new_id(
                conn.execute(
                    t.annotation_queues.insert().values(
                        project_id=pid,
                        experiment_id=exp_id,
                        name=name,
                        schema=dump(schema),
                        task=task,
                        filter=body.get("filter") or "all",
                        q=body.get("q"),
                        sample=body.get("sample"),
                        seed=int(body.get("seed") or 0),
                        run_ids=dump(run_ids),
                        created_by=created_by,
                        created_at=ts,
                    )
                )
            )
            for start in range(0, len(items), PAGE):
                conn.execute(
                    t.annotation_items.insert(),
                    [{"queue_id": qid, "idx": start + i, **item} for i, item in enumerate(items[start : start + PAGE])],
                )  # fmt: skip
            return qid

        try:
            qid = self.db.write(tx)
        except sa.exc.IntegrityError:  # the same name from a concurrent request
            raise Conflict(
                f"this project already has an annotation queue named '{name}'", field="body.name"
            ) from None
        return self.get(pid, qid)

    def _select(self, pid: int, exp_id: int, body: dict[str, Any]) -> tuple[list[str], str, list[int]]:
        """The sample keys a queue is over (in order), the task, and the task's runs."""
        flt, q = body.get("filter") or "all", body.get("q")
        keys: list[str] = []
        offset, task, runs = 0, body.get("task"), []
        while True:
            answer = self.reads.aligned_samples(pid, exp_id, task, flt, q, PAGE, offset)
            task, runs = answer["task"], [int(r["run_id"]) for r in answer["runs"]]
            keys.extend(item["sample_key"] for item in answer["items"])
            offset += PAGE
            if offset >= answer["total"]:
                break
        if not keys:
            chosen = f"filter '{flt}'" + (f" and search '{q}'" if q else "")
            raise Invalid(
                f"the annotation queue would be empty: no sample of task '{task}' in experiment {exp_id} "
                f"matches {chosen}; widen the filter (filter='all') or check the search",
                field="body.filter" if flt != "all" or not q else "body.q",
            )
        n = body.get("sample")
        if n is not None and n < len(keys):
            keys = random.Random(int(body.get("seed") or 0)).sample(keys, int(n))
        return keys, str(task), runs

    def _present(self, keys: list[str], run_ids: list[int]) -> dict[str, set[int]]:
        """Which of the runs have a sample for each key."""
        s = t.samples.c
        found: dict[str, set[int]] = {k: set() for k in keys}
        with self.db.read() as conn:
            for start in range(0, len(keys), PAGE):
                chunk = keys[start : start + PAGE]
                for run_id, key in conn.execute(
                    sa.select(s.run_id, s.sample_key).where(s.run_id.in_(run_ids), s.sample_key.in_(chunk))
                ):
                    found[key].add(int(run_id))
        return found

    def _queue_row(self, conn: sa.Connection, pid: int, qid: int) -> Any:
        row = conn.execute(
            sa.select(t.annotation_queues, t.projects.c.name.label("project"))
            .join(t.projects, t.projects.c.id == t.annotation_queues.c.project_id)
            .where(t.annotation_queues.c.id == qid, t.annotation_queues.c.project_id == pid)
        ).first()
        if row is None:
            raise NotFound(f"annotation queue {qid} not found in this project")
        return row

    def check(self, pid: int, qid: int) -> None:
        """404 unless the queue is the project's (checked before who is asking)."""
        with self.db.read() as conn:
            self._queue_row(conn, pid, qid)

    def get(self, pid: int, qid: int) -> dict[str, Any]:
        with self.db.read() as conn:
            return self._queue(conn, self._queue_row(conn, pid, qid))

    def list_queues(
        self, pid: int, limit: int, offset: int, experiment_id: int | None = None
    ) -> dict[str, Any]:
        c = t.annotation_queues.c
        q = (
            sa.select(t.annotation_queues, t.projects.c.name.label("project"))
            .join(t.projects, t.projects.c.id == c.project_id)
            .where(c.project_id == pid)
            .order_by(c.id)
        )
        if experiment_id is not None:
            q = q.where(c.experiment_id == experiment_id)
        with self.db.read() as conn:
            items = [self._queue(conn, r) for r in conn.execute(q.limit(limit).offset(offset))]
            return page(items, count(conn, q), limit, offset)

    def _queue(self, conn: sa.Connection, row: Any) -> dict[str, Any]:
        return {
            "id": int(row.id),
            "project": row.project,
            "experiment_id": int(row.experiment_id),
            "name": row.name,
            "schema": load(row.schema, {}),
            "task": row.task,
            "filter": row.filter,
            "q": row.q,
            "sample": row.sample,
            "seed": int(row.seed),
            "run_ids": load(row.run_ids, []),
            "created_by": row.created_by,
            "created_at": iso(row.created_at),
            "progress": self._progress(conn, int(row.id)),
        }

    def _progress(self, conn: sa.Connection, qid: int) -> dict[str, Any]:
        i, lab = t.annotation_items.c, t.annotation_labels.c
        total = int(conn.execute(sa.select(sa.func.count()).where(i.queue_id == qid)).scalar() or 0)
        labelled = int(
            conn.execute(
                sa.select(sa.func.count(sa.distinct(lab.item_id))).where(lab.queue_id == qid)
            ).scalar()
            or 0
        )
        people = [
            {"person": person, "labelled": int(n), "total": total}
            for person, n in conn.execute(
                sa.select(lab.person, sa.func.count()).where(lab.queue_id == qid).group_by(lab.person).order_by(lab.person)
            )
        ]  # fmt: skip
        return {
            "total": total,
            "labelled": labelled,
            "labels": sum(p["labelled"] for p in people),
            "people": people,
        }

    def progress(self, pid: int, qid: int) -> dict[str, Any]:
        with self.db.read() as conn:
            self._queue_row(conn, pid, qid)
            return self._progress(conn, qid)

    # ---- items ----------------------------------------------------------------------------------

    def items(self, pid: int, qid: int, person: str | None, limit: int, offset: int) -> dict[str, Any]:
        """A page of the queue's items with their prompt and answers, as ``person`` sees them (a
        pair in that person's order) with that person's label."""
        i = t.annotation_items.c
        with self.db.read() as conn:
            queue = self._queue_row(conn, pid, qid)
            pairwise = load(queue.schema, {}).get("kind") == "pairwise"
            q = sa.select(t.annotation_items).where(i.queue_id == qid).order_by(i.idx)
            rows = conn.execute(q.limit(limit).offset(offset)).all()
            total = count(conn, q)
            samples = self._samples(conn, rows)
            labels = self._labels_of(conn, qid, [int(r.id) for r in rows], person)
        out = []
        for row in rows:
            mine = samples.get((int(row.run_id), row.sample_key))
            other = samples.get((int(row.other_run_id), row.sample_key)) if row.other_run_id else None
            order = shown_order(qid, int(queue.seed), int(row.id), person or "") if pairwise else None
            if pairwise:
                pair = [mine, other] if order == "AB" else [other, mine]
                answers = [{"slot": s, "output": _answer(x)} for s, x in zip("AB", pair, strict=True)]
            else:
                answers = [{"slot": "answer", "output": _answer(mine)}]
            out.append(
                {
                    "id": int(row.id),
                    "index": int(row.idx),
                    "sample_key": row.sample_key,
                    "run_id": int(row.run_id),
                    "other_run_id": row.other_run_id,
                    "prompt": mine.prompt if mine is not None else None,
                    "reference": mine.reference if mine is not None else None,
                    "answers": answers,
                    "order": order,
                    "label": labels.get(int(row.id)),
                }
            )
        return page(out, total, limit, offset)

    def _samples(self, conn: sa.Connection, rows: Sequence[Any]) -> dict[tuple[int, str], Any]:
        s = t.samples.c
        wanted: dict[int, set[str]] = {}
        for row in rows:
            wanted.setdefault(int(row.run_id), set()).add(row.sample_key)
            if row.other_run_id:
                wanted.setdefault(int(row.other_run_id), set()).add(row.sample_key)
        found: dict[tuple[int, str], Any] = {}
        for run_id, keys in wanted.items():
            for r in conn.execute(
                sa.select(s.run_id, s.sample_key, s.prompt, s.reference, s.output, s.filtered_output).where(
                    s.run_id == run_id, s.sample_key.in_(sorted(keys))
                )
            ):
                found[(int(r.run_id), r.sample_key)] = r
        return found

    def _labels_of(
        self, conn: sa.Connection, qid: int, item_ids: list[int], person: str | None
    ) -> dict[int, dict[str, Any]]:
        if not item_ids or not person:
            return {}
        lab = t.annotation_labels.c
        q = self._label_query().where(lab.queue_id == qid, lab.person == person, lab.item_id.in_(item_ids))
        return {int(r.item_id): _label(r) for r in conn.execute(q)}

    # ---- labels ---------------------------------------------------------------------------------

    def _label_query(self) -> sa.Select[Any]:
        i = t.annotation_items.c
        return sa.select(t.annotation_labels, i.sample_key, i.run_id, i.other_run_id).join(
            t.annotation_items, i.id == t.annotation_labels.c.item_id
        )

    def label(self, pid: int, qid: int, item_id: int, person: str, body: dict[str, Any]) -> dict[str, Any]:
        """Store ``person``'s label of an item (replacing theirs) and write it as the run's score."""
        with self.db.read() as conn:
            queue = self._queue_row(conn, pid, qid)
            item = self._item_row(conn, qid, item_id)
        schema = load(queue.schema, {})
        order = shown_order(qid, int(queue.seed), item_id, person) if schema["kind"] == "pairwise" else None
        value, choice = _value(schema, body, order)
        text = body.get("text")
        ts = now()
        key = f"{queue.name}.{person}"

        def tx(conn: sa.Connection) -> None:
            self.runs.lock_run(conn, pid, int(item.run_id))
            lab = t.annotation_labels.c
            values = {"value": store(value) if value is not None else None, "choice": choice, "text": text,
                      "shown_order": order, "updated_at": ts}  # fmt: skip
            mine = lab.item_id == item_id, lab.person == person
            if conn.execute(sa.select(lab.id).where(*mine)).first() is not None:
                conn.execute(t.annotation_labels.update().where(*mine).values(**values))
            else:
                conn.execute(
                    t.annotation_labels.insert().values(
                        queue_id=qid, item_id=item_id, person=person, created_at=ts, **values
                    )
                )
            _set_score(conn, int(item.run_id), item.sample_key, key, value)

        try:
            self.db.write(tx)
        except sa.exc.IntegrityError:  # the same person's label of the item from a concurrent request
            self.db.write(tx)
        return self._one_label(pid, qid, item_id, person)

    def unlabel(self, pid: int, qid: int, item_id: int, person: str) -> dict[str, Any]:
        """Take ``person``'s label of an item back (an undo): the label and its score go."""
        removed = self._one_label(pid, qid, item_id, person)
        with self.db.read() as conn:
            queue = self._queue_row(conn, pid, qid)

        def tx(conn: sa.Connection) -> None:
            self.runs.lock_run(conn, pid, int(removed["run_id"]))
            lab = t.annotation_labels.c
            conn.execute(t.annotation_labels.delete().where(lab.item_id == item_id, lab.person == person))
            _set_score(conn, int(removed["run_id"]), removed["sample_key"], f"{queue.name}.{person}", None)

        self.db.write(tx)
        return removed

    def _item_row(self, conn: sa.Connection, qid: int, item_id: int) -> Any:
        i = t.annotation_items.c
        row = conn.execute(sa.select(t.annotation_items).where(i.id == item_id, i.queue_id == qid)).first()
        if row is None:
            raise NotFound(f"annotation queue {qid} has no item {item_id}", field="path.item_id")
        return row

    def _one_label(self, pid: int, qid: int, item_id: int, person: str) -> dict[str, Any]:
        lab = t.annotation_labels.c
        with self.db.read() as conn:
            self._queue_row(conn, pid, qid)
            self._item_row(conn, qid, item_id)
            row = conn.execute(
                self._label_query().where(lab.item_id == item_id, lab.person == person)
            ).first()  # fmt: skip
        if row is None:
            raise NotFound(f"{person} has not labelled item {item_id} of annotation queue {qid}")
        return _label(row)

    def labels(
        self, pid: int, qid: int, limit: int, offset: int, person: str | None = None
    ) -> dict[str, Any]:
        """Every label of the queue (or one person's), in item order then by person."""
        lab, i = t.annotation_labels.c, t.annotation_items.c
        q = self._label_query().where(lab.queue_id == qid).order_by(i.idx, lab.person)
        if person is not None:
            q = q.where(lab.person == person)
        with self.db.read() as conn:
            self._queue_row(conn, pid, qid)
            items = [_label(r) for r in conn.execute(q.limit(limit).offset(offset))]
            return page(items, count(conn, q), limit, offset)


def purge_runs(conn: sa.Connection, ids: list[int]) -> None:
    """A purge of runs takes the queue items over their samples and those items' labels along."""
    if not ids:
        return
    i, lab = t.annotation_items.c, t.annotation_labels.c
    gone = sa.select(i.id).where(sa.or_(i.run_id.in_(ids), i.other_run_id.in_(ids)))
    conn.execute(t.annotation_labels.delete().where(lab.item_id.in_(gone)))
    conn.execute(t.annotation_items.delete().where(sa.or_(i.run_id.in_(ids), i.other_run_id.in_(ids))))


def purge_experiment(conn: sa.Connection, exp_id: int) -> None:
    """A purged experiment takes its annotation queues, their items and labels along."""
    q = t.annotation_queues.c
    queues = sa.select(q.id).where(q.experiment_id == exp_id)
    conn.execute(t.annotation_labels.delete().where(t.annotation_labels.c.queue_id.in_(queues)))
    conn.execute(t.annotation_items.delete().where(t.annotation_items.c.queue_id.in_(queues)))
    conn.execute(t.annotation_queues.delete().where(q.experiment_id == exp_id))


def _answer(row: Any) -> str | None:
    if row is None:
        return None
    text = row.output if row.output is not None else row.filtered_output
    return None if text is None else str(text)


def _value(
    schema: dict[str, Any], body: dict[str, Any], order: str | None
) -> tuple[float | None, str | None]:
    """(the score a label writes, the choice it records); 422 naming what the schema wanted."""
    kind, value, choice = schema["kind"], body.get("value"), body.get("choice")
    if kind == "scale":
        lo, hi = int(schema["min"]), int(schema["max"])
        if value is None or not lo <= int(value) <= hi:
            raise Invalid(f"this queue's scale is {lo}..{hi}: give value, an integer in it (got {value})",
                          field="body.value")  # fmt: skip
        return float(value), None
    if kind == "choice":
        options = list(schema["options"])
        if choice not in options:
            raise Invalid(f"choice must be one of {options} (got {choice!r})", field="body.choice")
        return float(options.index(choice)), choice
    if kind == "pairwise":
        if choice not in PREFERENCE:
            raise Invalid(f"a preference is 'A', 'B' or 'tie' (got {choice!r})", field="body.choice")
        first = PREFERENCE[choice]
        return (first if order == "AB" or choice == "tie" else 1.0 - first), choice
    if not body.get("text"):
        raise Invalid("this queue asks for free text: give text", field="body.text")
    return None, None


def _set_score(conn: sa.Connection, run_id: int, sample_key: str, key: str, value: float | None) -> None:
    """Set (or with None remove) one score key of a run's sample; the caller holds the run's lock."""
    s = t.samples.c
    row = conn.execute(
        sa.select(s.id, s.scores).where(s.run_id == run_id, s.sample_key == sample_key)
    ).first()  # fmt: skip
    if row is None:
        return
    scores = load(row.scores, {})
    if value is None:
        if scores.pop(key, None) is None:
            return
    else:
        scores[key] = to_wire(value)
    conn.execute(t.samples.update().where(s.id == row.id).values(scores=dump(scores)))


def _label(row: Any) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "queue_id": int(row.queue_id),
        "item_id": int(row.item_id),
        "sample_key": row.sample_key,
        "run_id": int(row.run_id),
        "other_run_id": row.other_run_id,
        "person": row.person,
        "value": wire_or_none(row.value),
        "choice": row.choice,
        "text": row.text,
        "order": row.shown_order,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


__all__ = ["AnnotationStore", "purge_experiment", "purge_runs", "shown_order"]
