"""Scores over stored outputs: a scoring (one rescoring of a run) starts, its per-sample scores and judge
calls come in batches, and it finishes with summary metrics stored among the run's metrics.

A scoring named ``n`` writes only score keys ``n.<metric>`` (and summary metrics ``n.<metric>``,
``<subtask>:n.<metric>``, their ``_stderr``), merged into the samples' scores beside the ones the run was
evaluated with. Starting a scoring under a name the run was scored with before removes that name's
scores and metrics first, so what a run shows under a name is exactly its latest scoring's.

Writers of a run's samples serialize on the run's row (as ingest does), so a results batch and a late
event batch never interleave their read-merge-write of the same sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from evalhub.protocol import TERMINAL, to_wire

from . import tables as t
from .db import Database
from .errors import Conflict, Invalid, NotFound
from .numbers import store, store_or_none, wire, wire_or_none
from .rows import count, dump, iso, like_pattern, load, new_id, now, page

CHUNK = 500
OPEN_RUN_TYPES = ("trace",)  # runs that keep taking samples may be scored while they do


def _owns(name: str, key: str) -> bool:
    """Whether a score or metric key belongs to scorer ``name`` (``n.m``, ``sub:n.m``, ``…_stderr``)."""
    _, sep, rest = key.partition(":")
    return (rest if sep else key).startswith(name + ".")


class ScoringStore:
    """Scorings, their results and judge calls. ``runs`` is the :class:`~.runs.RunStore` (the run's
    row lock and reads)."""

    def __init__(self, db: Database, runs: Any) -> None:
        self.db = db
        self.runs = runs

    # ---- a scoring's life -----------------------------------------------------------------------

    def create(self, pid: int, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Start a scoring; the same ``client_key`` again answers the first one (``False``)."""
        key = body.get("client_key")
        if key:
            with self.db.read() as conn:
                found = conn.execute(
                    sa.select(t.scorings.c.id).where(
                        t.scorings.c.project_id == pid, t.scorings.c.client_key == key
                    )
                ).scalar()
            if found is not None:
                return self.get(pid, int(found)), False

        def tx(conn: sa.Connection) -> int:
            run = self.runs.lock_run(conn, pid, int(body["run_id"]))
            if run["status"] not in TERMINAL and run["type"] not in OPEN_RUN_TYPES:
                raise Conflict(
                    f"run {run['id']} is {run['status']}: score its samples once it has finished",
                    field="body.run_id",
                )
            for field in ("baseline_run_id", "judge_run_id"):
                other = body.get(field)
                if other is not None:
                    self._check_run(conn, pid, int(other), f"body.{field}")
            name = body["name"]
            self._drop_scores(conn, int(run["id"]), name)
            judge = body.get("judge")
            return new_id(
                conn.execute(
                    t.scorings.insert().values(
                        project_id=pid,
                        run_id=int(run["id"]),
                        experiment_id=run["experiment_id"],
                        name=name,
                        kind=body["kind"],
                        version=body["version"],
                        config=dump(body.get("config") or {}),
                        judge=dump(judge) if judge else None,
                        judge_run_id=body.get("judge_run_id"),
                        baseline_run_id=body.get("baseline_run_id"),
                        status="running",
                        counts=dump({}),
                        client_key=key,
                        created_at=now(),
                    )
                )
            )

        try:
            scoring_id = self.db.write(tx)
        except sa.exc.IntegrityError:  # the same client_key from a concurrent retry
            if not key:
                raise
            return self.create(pid, body)
        return self.get(pid, scoring_id), True

    def _check_run(self, conn: sa.Connection, pid: int, run_id: int, field: str) -> None:
        found = conn.execute(
            sa.select(t.runs.c.id).where(t.runs.c.id == run_id, t.runs.c.project_id == pid)
        ).first()
        if found is None:
            raise NotFound(f"run {run_id} not found in this project", field=field)

    def _drop_scores(self, conn: sa.Connection, run_id: int, name: str) -> None:
        """Remove the scores and metrics an earlier scoring ``name`` of the run wrote."""
        s, m = t.samples.c, t.metrics.c
        rows = conn.execute(
            sa.select(s.id, s.scores).where(
                s.run_id == run_id, s.scores.like(like_pattern(f'"{name}.'), escape="\\")
            )
        ).all()
        updates = []
        for row in rows:
            scores = load(row.scores, {})
            kept = {k: v for k, v in scores.items() if not _owns(name, k)}
            if len(kept) != len(scores):
                updates.append({"b_id": row.id, "b_scores": dump(kept)})
        if updates:
            conn.execute(
                t.samples.update()
                .where(s.id == sa.bindparam("b_id"))
                .values(scores=sa.bindparam("b_scores")),
                updates,
            )
        stale = [
            k for k in conn.execute(sa.select(m.key).where(m.run_id == run_id)).scalars() if _owns(name, k)
        ]
        if stale:
            conn.execute(t.metrics.delete().where(m.run_id == run_id, m.key.in_(stale)))

    def _scoring_row(self, conn: sa.Connection, pid: int, scoring_id: int) -> Any:
        row = conn.execute(
            sa.select(t.scorings).where(t.scorings.c.id == scoring_id, t.scorings.c.project_id == pid)
        ).first()
        if row is None:
            raise NotFound(f"scoring {scoring_id} not found in this project")
        return row

    def results(self, pid: int, scoring_id: int, items: list[Any]) -> dict[str, Any]:
        """Merge a batch of per-sample scores into the run's samples and store the judge calls."""
        with self.db.read() as conn:
            head = self._scoring_row(conn, pid, scoring_id)
        name = head.name
        for i, item in enumerate(items):
            for key in item.scores:
                if not key.startswith(name + "."):
                    raise Invalid(
                        f"scoring '{name}' writes score keys '{name}.<metric>'; got '{key}'",
                        field=f"body.items[{i}].scores",
                    )
        by_key: dict[str, Any] = {}
        for item in items:
            by_key[item.sample_key] = item  # a key sent twice in a batch: the later one wins
        ts = now()

        def tx(conn: sa.Connection) -> dict[str, Any]:
            self.runs.lock_run(conn, pid, int(head.run_id))
            row = self._scoring_row(conn, pid, scoring_id)
            if row.status != "running":
                raise Conflict(f"scoring {scoring_id} is {row.status}: it takes no more results")
            s = t.samples.c
            keys = list(by_key)
            found: dict[str, Any] = {}
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                for r in conn.execute(
                    sa.select(s.id, s.sample_key, s.scores).where(
                        s.run_id == head.run_id, s.sample_key.in_(chunk)
                    )
                ):
                    found[r.sample_key] = r
            updates = []
            calls = []
            for key, item in by_key.items():
                hit = found.get(key)
                if hit is None:
                    continue
                if item.scores:
                    scores = load(hit.scores, {})
                    scores.update(to_wire(dict(item.scores)))
                    updates.append({"b_id": hit.id, "b_scores": dump(scores)})
                for call in item.calls:
                    calls.append(
                        {
                            "scoring_id": scoring_id,
                            "run_id": int(head.run_id),
                            "sample_key": key,
                            "position": call.position,
                            "other_run_id": call.other_run_id,
                            "judge": call.judge,
                            "prompt": call.prompt,
                            "raw_output": call.raw_output,
                            "verdict": call.verdict,
                            "score": store_or_none(call.score),
                            "rationale": call.rationale,
                            "latency_ms": call.latency_ms,
                            "created_at": ts,
                        }
                    )
            if updates:
                conn.execute(
                    t.samples.update()
                    .where(s.id == sa.bindparam("b_id"))
                    .values(scores=sa.bindparam("b_scores")),
                    updates,
                )
            if calls:
                self.db.upsert(
                    conn,
                    t.judge_calls,
                    calls,
                    update=("other_run_id", "judge", "prompt", "raw_output", "verdict", "score", "rationale",
                            "latency_ms", "created_at"),
                )  # fmt: skip
            missing = [k for k in by_key if k not in found]
            return {"applied": len(updates), "calls": len(calls), "missing": missing}

        return self.db.write(tx)

    def finish(self, pid: int, scoring_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """End a scoring: its summary metrics go among the run's metrics (keys of its name only)."""
        with self.db.read() as conn:
            head = self._scoring_row(conn, pid, scoring_id)
        name = head.name
        metrics: dict[str, float] = body.get("metrics") or {}
        directions: dict[str, bool] = body.get("higher_is_better") or {}
        for key in [*metrics, *directions]:
            if not _owns(name, key):
                raise Invalid(
                    f"scoring '{name}' writes metrics '{name}.<metric>' (or '<subtask>:{name}.<metric>'); "
                    f"got '{key}'",
                    field="body.metrics",
                )
        ts = now()

        def tx(conn: sa.Connection) -> None:
            self.runs.lock_run(conn, pid, int(head.run_id))
            row = self._scoring_row(conn, pid, scoring_id)
            if row.status != "running":
                raise Conflict(f"scoring {scoring_id} is {row.status} already")
            if metrics:
                self.db.upsert(
                    conn,
                    t.metrics,
                    [
                        {
                            "run_id": int(head.run_id),
                            "key": k,
                            "value": store(v),
                            "higher_is_better": None if k not in directions else int(directions[k]),
                            "updated_at": ts,
                        }
                        for k, v in metrics.items()
                    ],
                    update=("value", "higher_is_better", "updated_at"),
                )
            conn.execute(
                t.scorings.update()
                .where(t.scorings.c.id == scoring_id)
                .values(
                    status=body.get("status") or "completed",
                    counts=dump(body.get("counts") or {}),
                    error=body.get("error"),
                    finished_at=ts,
                )
            )

        self.db.write(tx)
        return self.get(pid, scoring_id)

    # ---- reads ----------------------------------------------------------------------------------

    def _query(self) -> sa.Select[Any]:
        return sa.select(t.scorings, t.projects.c.name.label("project")).join(
            t.projects, t.projects.c.id == t.scorings.c.project_id
        )

    def get(self, pid: int, scoring_id: int) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(
                self._query().where(t.scorings.c.id == scoring_id, t.scorings.c.project_id == pid)
            ).first()
            if row is None:
                raise NotFound(f"scoring {scoring_id} not found in this project")
            return self._with_metrics(conn, [row])[0]

    def list_scorings(
        self,
        pid: int,
        limit: int,
        offset: int,
        run_id: int | None = None,
        experiment_id: int | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        c = t.scorings.c
        q = self._query().where(c.project_id == pid).order_by(c.id)
        if run_id is not None:
            q = q.where(c.run_id == run_id)
        if experiment_id is not None:
            q = q.where(c.experiment_id == experiment_id)
        if name is not None:
            q = q.where(c.name == name)
        with self.db.read() as conn:
            rows = conn.execute(q.limit(limit).offset(offset)).all()
            return page(self._with_metrics(conn, rows), count(conn, q), limit, offset)

    def _with_metrics(self, conn: sa.Connection, rows: Sequence[Any]) -> list[dict[str, Any]]:
        """Scoring rows as answers; the latest scoring of a (run, name) shows the metrics it wrote."""
        latest: dict[tuple[int, str], int] = {}
        runs = sorted({int(r.run_id) for r in rows})
        if runs:
            c = t.scorings.c
            for run_id, name, top in conn.execute(
                sa.select(c.run_id, c.name, sa.func.max(c.id))
                .where(c.run_id.in_(runs))
                .group_by(c.run_id, c.name)
            ):
                latest[(int(run_id), str(name))] = int(top)
        values: dict[int, dict[str, float | str]] = {}
        if runs:
            m = t.metrics.c
            for run_id, key, value in conn.execute(
                sa.select(m.run_id, m.key, m.value).where(m.run_id.in_(runs))
            ):
                values.setdefault(int(run_id), {})[key] = wire(value)
        out = []
        for r in rows:
            mine = latest.get((int(r.run_id), r.name)) == int(r.id)
            metrics = (
                {k: v for k, v in values.get(int(r.run_id), {}).items() if _owns(r.name, k)} if mine else {}
            )
            out.append(
                {
                    "id": int(r.id),
                    "project": r.project,
                    "run_id": int(r.run_id),
                    "experiment_id": r.experiment_id,
                    "name": r.name,
                    "kind": r.kind,
                    "version": r.version,
                    "config": load(r.config, {}),
                    "judge": load(r.judge, None),
                    "judge_run_id": r.judge_run_id,
                    "baseline_run_id": r.baseline_run_id,
                    "status": r.status,
                    "counts": load(r.counts, {}),
                    "metrics": metrics,
                    "error": r.error,
                    "client_key": r.client_key,
                    "created_at": iso(r.created_at),
                    "finished_at": iso(r.finished_at),
                }
            )
        return out

    def judge_calls(
        self,
        pid: int,
        run_id: int,
        limit: int,
        offset: int,
        sample_key: str | None = None,
        scoring_id: int | None = None,
    ) -> dict[str, Any]:
        """The judge calls on a run's samples (every scoring's, or one's), by sample key and position."""
        j, c = t.judge_calls.c, t.scorings.c
        q = (
            sa.select(t.judge_calls, c.name.label("scorer"))
            .join(t.scorings, c.id == j.scoring_id)
            .where(j.run_id == run_id, c.project_id == pid)
            .order_by(j.sample_key, j.scoring_id, j.position)
        )
        if sample_key is not None:
            q = q.where(j.sample_key == sample_key)
        if scoring_id is not None:
            q = q.where(j.scoring_id == scoring_id)
        with self.db.read() as conn:
            self._check_run(conn, pid, run_id, "path.run_id")
            items = [
                {
                    "id": int(r.id),
                    "scoring_id": int(r.scoring_id),
                    "scorer": r.scorer,
                    "run_id": int(r.run_id),
                    "sample_key": r.sample_key,
                    "position": r.position,
                    "other_run_id": r.other_run_id,
                    "judge": r.judge,
                    "prompt": r.prompt,
                    "raw_output": r.raw_output,
                    "verdict": r.verdict,
                    "score": wire_or_none(r.score),
                    "rationale": r.rationale,
                    "latency_ms": r.latency_ms,
                    "created_at": iso(r.created_at),
                }
                for r in conn.execute(q.limit(limit).offset(offset))
            ]
            return page(items, count(conn, q), limit, offset)


def purge_runs(conn: sa.Connection, ids: list[int]) -> None:
    """A purge of runs takes their scorings and judge calls along (inside the caller's transaction)."""
    if not ids:
        return
    c = t.scorings.c
    scoring_ids = [int(i) for i in conn.execute(sa.select(c.id).where(c.run_id.in_(ids))).scalars()]
    for start in range(0, len(scoring_ids), CHUNK):
        chunk = scoring_ids[start : start + CHUNK]
        conn.execute(t.judge_calls.delete().where(t.judge_calls.c.scoring_id.in_(chunk)))
    conn.execute(t.scorings.delete().where(c.run_id.in_(ids)))


__all__ = ["ScoringStore", "purge_runs"]
