"""Runs and experiments: creation, status changes (through :mod:`.lifecycle`), cancel, lost attempts,
the reaper's sweep, and the experiment status derived from its runs."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from evalhub.protocol import STATUSES

from . import aligned, lifecycle
from . import tables as t
from .annotation import purge_experiment as purge_queues
from .annotation import purge_runs as purge_items
from .db import Database
from .errors import Conflict, Invalid, NotFound, StaleAttempt
from .registry import common, patch_values
from .rows import count, dump, iso, load, new_id, now, page
from .scoring import purge_runs as purge_scorings

_MUTABLE = (
    "status",
    "started_at",
    "ended_at",
    "attempt",
    "lease_expires_at",
    "error",
    "worker",
    "progress_done",
    "progress_total",
    "max_attempts",
    "work_key",
    "reused_from",
)


class RunStore:
    """Runs and experiments."""

    def __init__(self, db: Database, lease_s: float = 60.0) -> None:
        self.db = db
        self.lease_s = lease_s
        self.artifacts: Any = None  # the ArtifactStore (a purge removes a run's files too)

    # ---- runs -----------------------------------------------------------------------------------

    def _resolve_run(
        self,
        conn: sa.Connection,
        pid: int,
        body: dict[str, Any],
        field: str,
        memo: dict[tuple[Any, ...], Any] | None = None,
    ) -> dict[str, Any]:
        """RunCreate -> column values (model/checkpoint names checked against the registry; ``memo``
        keeps the lookups of one request, so a page of runs over a few checkpoints asks once each)."""
        memo = {} if memo is None else memo
        values: dict[str, Any] = {
            "project_id": pid,
            "name": body["name"],
            "type": body.get("type") or "inference",
            "status": "queued",
            "experiment_id": body.get("experiment_id"),
            "model": body.get("model"),
            "checkpoint": body.get("checkpoint"),
            "checkpoint_id": body.get("checkpoint_id"),
            "runtime": body.get("runtime"),
            "task": body.get("task"),
            "config": dump(body.get("config") or {}),
            "tags": dump(body.get("tags") or {}),
            "description": body.get("description"),
            "metadata": dump(body.get("metadata") or {}),
            "attempt": 1,
            "max_attempts": int(body.get("max_attempts") or (1 if body.get("type") == "training" else 3)),
            "progress_done": 0,
            "progress_total": None,
            "created_at": now(),
        }
        if values["checkpoint_id"] is not None:
            key: tuple[Any, ...] = ("id", values["checkpoint_id"])
            if key not in memo:
                memo[key] = conn.execute(
                    sa.select(t.checkpoints.c.name, t.models.c.name.label("model"))
                    .join(t.models, t.models.c.id == t.checkpoints.c.model_id)
                    .where(t.checkpoints.c.id == values["checkpoint_id"], t.checkpoints.c.project_id == pid)
                ).first()
            row = memo[key]
            if row is None:
                raise NotFound(
                    f"checkpoint {values['checkpoint_id']} not found in this project",
                    field=f"{field}.checkpoint_id",
                )
            values["checkpoint"], values["model"] = row.name, row.model
        elif values["checkpoint"] is not None:
            if not values["model"]:
                raise Invalid(
                    "a checkpoint name needs its model: give 'model' too", field=f"{field}.checkpoint"
                )
            key = ("checkpoint", values["model"], values["checkpoint"])
            if key not in memo:
                memo[key] = conn.execute(
                    sa.select(t.checkpoints.c.id)
                    .join(t.models, t.models.c.id == t.checkpoints.c.model_id)
                    .where(
                        t.models.c.project_id == pid,
                        t.models.c.name == values["model"],
                        t.checkpoints.c.name == values["checkpoint"],
                    )
                ).first()
            row = memo[key]
            if row is None:
                raise NotFound(
                    f"checkpoint '{values['checkpoint']}' of model '{values['model']}' not found in this project",
                    field=f"{field}.checkpoint",
                )
            values["checkpoint_id"] = int(row.id)
        elif values["model"] is not None:
            key = ("model", values["model"])
            if key not in memo:
                memo[key] = conn.execute(
                    sa.select(t.models.c.id).where(
                        t.models.c.project_id == pid, t.models.c.name == values["model"]
                    )
                ).first()
            found = memo[key]
            if found is None:
                raise NotFound(f"model '{values['model']}' not found in this project", field=f"{field}.model")
        return values

    def create_run(self, pid: int, body: dict[str, Any]) -> dict[str, Any]:
        def tx(conn: sa.Connection) -> int:
            if body.get("experiment_id") is not None:
                self._experiment_row(conn, pid, int(body["experiment_id"]), field="body.experiment_id")
            values = self._resolve_run(conn, pid, body, "body")
            return new_id(conn.execute(t.runs.insert().values(**values)))

        return self.get_run(pid, self.db.write(tx))

    def _run_query(self) -> sa.Select[Any]:
        return (
            sa.select(t.runs, t.projects.c.name.label("project"), t.checkpoints.c.step.label("step"))
            .join(t.projects, t.projects.c.id == t.runs.c.project_id)
            .outerjoin(t.checkpoints, t.checkpoints.c.id == t.runs.c.checkpoint_id)
        )

    def get_run(self, pid: int, run_id: int) -> dict[str, Any]:
        with self.db.read() as conn:
            return self._get_run(conn, pid, run_id)

    def _get_run(self, conn: sa.Connection, pid: int, run_id: int) -> dict[str, Any]:
        row = conn.execute(self._run_query().where(t.runs.c.id == run_id, t.runs.c.project_id == pid)).first()
        if row is None:
            raise NotFound(f"run {run_id} not found in this project")
        return run_dict(row)

    def list_runs(
        self, pid: int, limit: int, offset: int, archived: bool = False, **filters: Any
    ) -> dict[str, Any]:
        c = t.runs.c
        q = self._run_query().where(c.project_id == pid).order_by(c.id)
        q = q.where(c.archived_at.is_not(None) if archived else c.archived_at.is_(None))
        for name in ("experiment_id", "status", "type", "model", "task", "name"):
            if filters.get(name) is not None:
                q = q.where(c[name] == filters[name])
        with self.db.read() as conn:
            return page(
                [run_dict(r) for r in conn.execute(q.limit(limit).offset(offset))],
                count(conn, q),
                limit,
                offset,
            )

    def lock_run(self, conn: sa.Connection, pid: int, run_id: int) -> dict[str, Any]:
        """The run's row, locked for this transaction (MySQL: FOR UPDATE; SQLite: the write lock)."""
        row = conn.execute(
            sa.select(t.runs).where(t.runs.c.id == run_id, t.runs.c.project_id == pid).with_for_update()
        ).first()
        if row is None:
            raise NotFound(f"run {run_id} not found in this project")
        return dict(row._mapping)

    def save_run(self, conn: sa.Connection, before: dict[str, Any], after: dict[str, Any]) -> None:
        changed = {k: after[k] for k in _MUTABLE if after[k] != before[k]}
        if changed:
            conn.execute(t.runs.update().where(t.runs.c.id == after["id"]).values(**changed))

    def set_status(
        self,
        pid: int,
        run_id: int,
        status: str,
        error: str | None = None,
        worker: Any = None,
        attempt: int | None = None,
    ) -> dict[str, Any]:
        def tx(conn: sa.Connection) -> None:
            before = self.lock_run(conn, pid, run_id)
            if attempt is not None:
                stale = lifecycle.stale_attempt(before, attempt)
                if stale:
                    raise StaleAttempt(stale, field="body.attempt")
            after = dict(before)
            problem = lifecycle.transition(
                after,
                status,
                now=now(),
                lease_s=self.lease_s,
                error=error,
                worker=dump(worker) if worker is not None else None,
            )
            if problem:
                raise Conflict(f"run {run_id}: {problem}", field="body.status")
            self.save_run(conn, before, after)

        self.db.write(tx)
        return self.get_run(pid, run_id)

    def cancel_run(self, pid: int, run_id: int) -> dict[str, Any]:
        def tx(conn: sa.Connection) -> None:
            before = self.lock_run(conn, pid, run_id)
            after = dict(before)
            problem = lifecycle.cancel(after, now=now())
            if problem:
                raise Conflict(f"run {run_id} cannot be cancelled: {problem}")
            self.save_run(conn, before, after)

        self.db.write(tx)
        return self.get_run(pid, run_id)

    def lost(self, pid: int, run_id: int, attempt: int, reason: str) -> dict[str, Any]:
        """Attempt ``attempt``'s worker is gone: re-queue or fail the run (a no-op once the run has
        moved on from that attempt, so a repeated report changes nothing)."""

        def tx(conn: sa.Connection) -> None:
            before = self.lock_run(conn, pid, run_id)
            if int(before["attempt"]) != attempt:
                return
            after = dict(before)
            line = lifecycle.lapse(after, reason, now=now())
            if line is not None:
                self.save_run(conn, before, after)
                conn.execute(
                    t.logs.insert().values(run_id=run_id, level="warning", message=line, wall_time=now())
                )

        self.db.write(tx)
        return self.get_run(pid, run_id)

    def reap(self, batch: int = 500) -> int:
        """Declare lost every running attempt whose lease lapsed; returns how many runs changed.

        Safe with several server processes on one database: each run changes in one conditional
        UPDATE (still running, same attempt, lease still lapsed), and only the process whose UPDATE
        took effect logs the line.
        """
        c = t.runs.c
        ts = now()
        with self.db.read() as conn:
            rows = [
                dict(r._mapping)
                for r in conn.execute(
                    sa.select(c.id, c.type, c.experiment_id, c.attempt, c.max_attempts, c.status,
                              c.lease_expires_at, c.error, c.started_at, c.ended_at)
                    .where(c.status == "running", c.lease_expires_at < ts)
                    .order_by(c.lease_expires_at)
                    .limit(batch)
                )
            ]  # fmt: skip
        changed = 0
        for before in rows:
            silent = ts - float(before["lease_expires_at"]) + self.lease_s
            after = dict(before)
            line = lifecycle.lapse(after, f"no heartbeat for {silent:.0f} s", now=ts)
            if line is None:
                continue

            def tx(conn: sa.Connection, before: dict[str, Any] = before, after: dict[str, Any] = after,
                   line: str = line) -> bool:  # fmt: skip
                updated = conn.execute(
                    t.runs.update()
                    .where(
                        c.id == before["id"],
                        c.status == "running",
                        c.attempt == before["attempt"],
                        c.lease_expires_at < ts,
                    )
                    .values(**{k: after[k] for k in ("status", "attempt", "lease_expires_at", "error",
                                                     "started_at", "ended_at")})
                )  # fmt: skip
                if updated.rowcount != 1:
                    return False
                conn.execute(
                    t.logs.insert().values(run_id=before["id"], level="warning", message=line, wall_time=ts)
                )
                return True

            changed += bool(self.db.write(tx))
        return changed

    # ---- experiments ----------------------------------------------------------------------------

    def _experiment_row(
        self, conn: sa.Connection, pid: int, exp_id: int, field: str | None = None, *, lock: bool = False
    ) -> Any:
        """The experiment's row; ``lock``: for this transaction (MySQL: FOR UPDATE; SQLite: the write
        lock), as a read-modify-write needs."""
        q = (
            sa.select(t.experiments, t.projects.c.name.label("project"))
            .join(t.projects, t.projects.c.id == t.experiments.c.project_id)
            .where(t.experiments.c.id == exp_id, t.experiments.c.project_id == pid)
        )
        row = conn.execute(q.with_for_update(of=t.experiments) if lock else q).first()
        if row is None:
            raise NotFound(f"experiment {exp_id} not found in this project", field=field)
        return row

    def create_experiment(self, pid: int, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create an experiment and its runs in one transaction; (experiment, created)."""
        key = body.get("client_key")

        def existing(conn: sa.Connection) -> int | None:
            if not key:
                return None
            found = conn.execute(
                sa.select(t.experiments.c.id).where(
                    t.experiments.c.project_id == pid, t.experiments.c.client_key == key
                )
            ).scalar()
            return None if found is None else int(found)

        def tx(conn: sa.Connection) -> tuple[int, bool]:
            prior = existing(conn)
            if prior is not None:
                return prior, False
            exp_id = new_id(
                conn.execute(
                    t.experiments.insert().values(
                        project_id=pid,
                        name=body["name"],
                        spec=dump(body.get("spec") or {}),
                        spec_yaml=body.get("spec_yaml"),
                        config=dump(body.get("config") or {}),
                        client_key=key,
                        created_at=now(),
                    )
                )
            )
            self._insert_runs(conn, pid, exp_id, body.get("runs") or [])
            return exp_id, True

        try:
            exp_id, created = self.db.write(tx)
        except sa.exc.IntegrityError:
            with self.db.read() as conn:
                prior = existing(conn)
            if prior is None:
                raise
            exp_id, created = prior, False
        exp = self.get_experiment(pid, exp_id)
        exp["runs"] = self.list_runs(pid, 1000, 0, experiment_id=exp_id)["items"]
        return exp, created

    def _insert_runs(
        self, conn: sa.Connection, pid: int, exp_id: int, runs: list[dict[str, Any]]
    ) -> dict[str, int]:
        """Create the runs of ``runs`` the experiment does not have yet (by name); ``{name: id}`` of
        those created."""
        names = [str(r["name"]) for r in runs]
        have: set[str] = set()
        for start in range(0, len(names), 500):
            have.update(
                conn.execute(
                    sa.select(t.runs.c.name).where(
                        t.runs.c.experiment_id == exp_id, t.runs.c.name.in_(names[start : start + 500])
                    )
                ).scalars()
            )
        memo: dict[tuple[Any, ...], Any] = {}
        rows = []
        for i, run in enumerate(runs):
            if run["name"] in have:
                continue
            have.add(run["name"])
            rows.append(
                self._resolve_run(conn, pid, {**run, "experiment_id": exp_id}, f"body.runs.{i}", memo)
            )
        if not rows:
            return {}
        conn.execute(t.runs.insert(), rows)
        made = {str(r["name"]) for r in rows}
        out: dict[str, int] = {}
        for start in range(0, len(rows), 500):
            chunk = [str(r["name"]) for r in rows[start : start + 500]]
            for rid, name in conn.execute(
                sa.select(t.runs.c.id, t.runs.c.name).where(
                    t.runs.c.experiment_id == exp_id, t.runs.c.name.in_(chunk)
                )
            ):
                if name in made:
                    out[str(name)] = int(rid)
        return out

    def add_runs(self, pid: int, exp_id: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
        """A further page of an experiment's runs (``POST /experiments/{id}/runs``): the runs it
        names, created where the experiment has no run of that name yet (a retried page adds none)."""

        def tx(conn: sa.Connection) -> int:
            conn.execute(  # serialize pages of one experiment (MySQL; SQLite has one writer)
                sa.select(t.experiments.c.id)
                .where(t.experiments.c.id == exp_id, t.experiments.c.project_id == pid)
                .with_for_update()
            )
            self._experiment_row(conn, pid, exp_id)
            return len(self._insert_runs(conn, pid, exp_id, runs))

        created = self.db.write(tx)
        names = [str(r["name"]) for r in runs]
        found: dict[str, dict[str, Any]] = {}
        with self.db.read() as conn:
            for start in range(0, len(names), 500):
                for rid, name, status in conn.execute(
                    sa.select(t.runs.c.id, t.runs.c.name, t.runs.c.status).where(
                        t.runs.c.experiment_id == exp_id, t.runs.c.name.in_(names[start : start + 500])
                    )
                ):
                    found[str(name)] = {"id": int(rid), "name": str(name), "status": str(status)}
        return {"experiment_id": exp_id, "created": created, "runs": [found[n] for n in names if n in found]}

    def resume_experiment(self, pid: int, exp_id: int) -> dict[str, Any]:
        """Put the experiment's failed and cancelled runs back in the queue as their next attempt (each
        with the experiment's ``max_attempts`` more); completed runs stay as they are."""

        def tx(conn: sa.Connection) -> None:
            row = self._experiment_row(conn, pid, exp_id)
            attempts = int((load(row.config, {}) or {}).get("max_attempts") or 3)
            r = t.runs.c
            ids = [
                int(i)
                for i in conn.execute(
                    sa.select(r.id).where(
                        r.experiment_id == exp_id,
                        r.status.in_(lifecycle.RESUMABLE),
                        r.archived_at.is_(None),
                    )
                ).scalars()
            ]
            ts = now()
            for run_id in ids:
                before = self.lock_run(conn, pid, run_id)
                after = dict(before)
                if lifecycle.resume(after, attempts):
                    self.save_run(conn, before, after)
                    conn.execute(
                        t.logs.insert().values(
                            run_id=run_id,
                            level="info",
                            message=f"resumed: queued again as attempt {after['attempt']}",
                            wall_time=ts,
                        )
                    )

        self.db.write(tx)
        return self.get_experiment(pid, exp_id)

    def reuse(self, pid: int, run_id: int, attempt: int, work_key: str) -> dict[str, Any]:
        """Attempt ``attempt`` of a running run computes ``work_key``: when a completed run of the project
        computed the same, copy its metrics and samples into this run and complete it (``reused_from``
        names the original). Otherwise only the key is recorded. Returns ``{"reused", "run"}``."""

        def tx(conn: sa.Connection) -> bool:
            before = self.lock_run(conn, pid, run_id)
            stale = lifecycle.stale_attempt(before, attempt)
            if stale:
                raise StaleAttempt(stale, field="body.attempt")
            after = dict(before)
            after["work_key"] = work_key
            if before["status"] != "running":
                raise Conflict(
                    f"run {run_id} is {before['status']}: only a running attempt may reuse finished work",
                    field="body.attempt",
                )
            r = t.runs.c
            source = conn.execute(
                sa.select(r.id, r.reused_from, r.progress_done, r.progress_total)
                .where(
                    r.project_id == pid,
                    r.work_key == work_key,
                    r.status == "completed",
                    r.archived_at.is_(None),
                    r.id != run_id,
                )
                .order_by(r.reused_from.is_not(None), r.id.desc())
                .limit(1)
            ).first()
            if source is None:
                self.save_run(conn, before, after)
                return False
            origin = int(source.reused_from or source.id)
            self._copy_results(conn, int(source.id), run_id)
            ts = now()
            problem = lifecycle.transition(after, "completed", now=ts, lease_s=self.lease_s)
            if problem:
                raise Conflict(f"run {run_id}: {problem}")
            after["reused_from"] = origin
            after["progress_done"] = int(source.progress_done or 0)
            after["progress_total"] = source.progress_total
            self.save_run(conn, before, after)
            conn.execute(
                t.logs.insert().values(
                    run_id=run_id,
                    level="info",
                    message=f"reused the results of run {origin} (same checkpoint content, task and config)",
                    wall_time=ts,
                )
            )
            return True

        reused = self.db.write(tx)
        return {"reused": reused, "run": self.get_run(pid, run_id)}

    def _copy_results(self, conn: sa.Connection, source: int, target: int) -> None:
        """The metrics and samples of run ``source`` become run ``target``'s (its own are replaced)."""
        m, s = t.metrics, t.samples
        conn.execute(m.delete().where(m.c.run_id == target))
        conn.execute(s.delete().where(s.c.run_id == target))
        metric_cols = [c.name for c in m.columns if c.name != "run_id"]
        conn.execute(
            m.insert().from_select(
                ["run_id", *metric_cols],
                sa.select(sa.literal(target).label("run_id"), *[m.c[c] for c in metric_cols]).where(
                    m.c.run_id == source
                ),
            )
        )
        sample_cols = [c.name for c in s.columns if c.name not in ("run_id", "id")]
        conn.execute(
            s.insert().from_select(
                ["run_id", *sample_cols],
                sa.select(sa.literal(target).label("run_id"), *[s.c[c] for c in sample_cols]).where(
                    s.c.run_id == source
                ),
            )
        )
        row = conn.execute(
            sa.select(t.runs.c.experiment_id, t.runs.c.task).where(t.runs.c.id == target)
        ).first()
        if row is not None and row.experiment_id is not None and row.task:
            keys = set(conn.execute(sa.select(s.c.sample_key).where(s.c.run_id == target)).scalars())
            if keys:
                aligned.refresh(conn, self.db.backend, int(row.experiment_id), str(row.task), keys)

    def _rollup(self) -> sa.Subquery:
        c = t.runs.c
        cols = [sa.func.sum(sa.case((c.status == s, 1), else_=0)).label(s) for s in STATUSES]
        return (
            sa.select(
                c.experiment_id,
                *cols,
                sa.func.sum(c.progress_done).label("done"),
                sa.func.sum(sa.func.coalesce(c.progress_total, 0)).label("total"),
            )
            .where(c.experiment_id.is_not(None), c.archived_at.is_(None))
            .group_by(c.experiment_id)
            .subquery()
        )

    def _experiment_query(self, pid: int) -> tuple[sa.Select[Any], sa.ColumnElement[str]]:
        r = self._rollup()
        n = {s: sa.func.coalesce(r.c[s], 0) for s in STATUSES}
        derived = sa.case(
            (n["running"] > 0, "running"),
            (n["queued"] > 0, "queued"),
            (n["failed"] > 0, "failed"),
            (n["cancelled"] > 0, "cancelled"),
            else_="completed",
        )
        q = (
            sa.select(
                t.experiments,
                t.projects.c.name.label("project"),
                *[n[s].label(f"n_{s}") for s in STATUSES],
                sa.func.coalesce(r.c.done, 0).label("p_done"),
                sa.func.coalesce(r.c.total, 0).label("p_total"),
                derived.label("derived_status"),
            )
            .join(t.projects, t.projects.c.id == t.experiments.c.project_id)
            .outerjoin(r, r.c.experiment_id == t.experiments.c.id)
            .where(t.experiments.c.project_id == pid)
        )
        return q, derived

    def get_experiment(self, pid: int, exp_id: int) -> dict[str, Any]:
        q, _ = self._experiment_query(pid)
        with self.db.read() as conn:
            row = conn.execute(q.where(t.experiments.c.id == exp_id)).first()
        if row is None:
            raise NotFound(f"experiment {exp_id} not found in this project")
        return experiment_dict(row)

    def list_experiments(
        self,
        pid: int,
        limit: int,
        offset: int,
        status: str | None = None,
        name: str | None = None,
        archived: bool = False,
    ) -> dict[str, Any]:
        q, derived = self._experiment_query(pid)
        q = q.order_by(t.experiments.c.id.desc())
        e = t.experiments.c
        q = q.where(e.archived_at.is_not(None) if archived else e.archived_at.is_(None))
        if status:
            q = q.where(derived == status)
        if name:
            q = q.where(t.experiments.c.name == name)
        with self.db.read() as conn:
            items = [experiment_dict(r) for r in conn.execute(q.limit(limit).offset(offset))]
            return page(items, count(conn, q), limit, offset)

    def cancel_experiment(self, pid: int, exp_id: int) -> dict[str, Any]:
        def tx(conn: sa.Connection) -> None:
            self._experiment_row(conn, pid, exp_id)
            ts = now()
            conn.execute(
                t.runs.update()
                .where(t.runs.c.experiment_id == exp_id, t.runs.c.status.in_(lifecycle.CANCELLABLE))
                .values(**lifecycle.cancelled(ts))
            )

        self.db.write(tx)
        return self.get_experiment(pid, exp_id)

    # ---- correct and remove -----------------------------------------------------------------------

    def patch_run(self, pid: int, run_id: int, body: dict[str, Any]) -> dict[str, Any]:
        def tx(conn: sa.Connection) -> None:
            row = conn.execute(  # locked: a merge PATCH reads what it writes back
                sa.select(t.runs).where(t.runs.c.id == run_id, t.runs.c.project_id == pid).with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"run {run_id} not found in this project")
            values = patch_values(row, body)
            if values:
                conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(**values))

        self.db.write(tx)
        return self.get_run(pid, run_id)

    def patch_experiment(self, pid: int, exp_id: int, body: dict[str, Any]) -> dict[str, Any]:
        def tx(conn: sa.Connection) -> None:
            row = self._experiment_row(conn, pid, exp_id, lock=True)  # a merge PATCH reads what it writes
            values = patch_values(row, body)
            if values:
                conn.execute(t.experiments.update().where(t.experiments.c.id == exp_id).values(**values))

        self.db.write(tx)
        return self.get_experiment(pid, exp_id)

    def delete_run(self, pid: int, run_id: int, *, purge: bool) -> dict[str, Any]:
        stamp = now()

        def tx(conn: sa.Connection) -> None:
            if (
                conn.execute(
                    sa.select(t.runs.c.id).where(t.runs.c.id == run_id, t.runs.c.project_id == pid)
                ).first()
                is None
            ):
                raise NotFound(f"run {run_id} not found in this project")
            self.remove_runs(conn, [run_id], stamp, purge=purge)

        self.db.write(tx)
        if purge:
            self.remove_files([run_id])
        return {"kind": "run", "id": run_id, "purged": purge, "archived_at": None if purge else iso(stamp),
                "cascaded": {}}  # fmt: skip

    def restore_run(self, pid: int, run_id: int) -> dict[str, Any]:
        def tx(conn: sa.Connection) -> None:
            row = conn.execute(
                sa.select(t.runs).where(t.runs.c.id == run_id, t.runs.c.project_id == pid)
            ).first()
            if row is None:
                raise NotFound(f"run {run_id} not found in this project")
            if row.archived_at is not None:
                self.unarchive_runs(conn, [run_id], float(row.archived_at))

        self.db.write(tx)
        return self.get_run(pid, run_id)

    def delete_experiment(self, pid: int, exp_id: int, *, purge: bool) -> dict[str, Any]:
        """Archive (or purge) an experiment with all its runs (they make no sense without it)."""
        stamp = now()

        def tx(conn: sa.Connection) -> list[int]:
            row = self._experiment_row(conn, pid, exp_id)
            ids = [
                int(i)
                for i in conn.execute(
                    sa.select(t.runs.c.id).where(t.runs.c.experiment_id == exp_id)
                ).scalars()
            ]
            live = ids if purge else [
                int(i) for i in conn.execute(
                    sa.select(t.runs.c.id).where(t.runs.c.experiment_id == exp_id, t.runs.c.archived_at.is_(None))
                ).scalars()
            ]  # fmt: skip
            self.remove_runs(conn, live, stamp, purge=purge)
            e = t.experiments
            if purge:
                conn.execute(t.aligned_samples.delete().where(t.aligned_samples.c.experiment_id == exp_id))
                purge_queues(conn, exp_id)
                conn.execute(e.delete().where(e.c.id == exp_id))
            elif row.archived_at is None:
                conn.execute(e.update().where(e.c.id == exp_id).values(archived_at=stamp))
            return live

        taken = self.db.write(tx)
        if purge:
            self.remove_files(taken)
        return {"kind": "experiment", "id": exp_id, "purged": purge, "archived_at": None if purge else iso(stamp),
                "cascaded": {"runs": taken} if taken else {}}  # fmt: skip

    def restore_experiment(self, pid: int, exp_id: int) -> dict[str, Any]:
        def tx(conn: sa.Connection) -> None:
            row = self._experiment_row(conn, pid, exp_id)
            if row.archived_at is None:
                return
            stamp = float(row.archived_at)
            ids = [int(i) for i in conn.execute(
                sa.select(t.runs.c.id).where(t.runs.c.experiment_id == exp_id, t.runs.c.archived_at == stamp)
            ).scalars()]  # fmt: skip
            self.unarchive_runs(conn, ids, stamp)
            conn.execute(t.experiments.update().where(t.experiments.c.id == exp_id).values(archived_at=None))

        self.db.write(tx)
        return self.get_experiment(pid, exp_id)

    def remove_runs(self, conn: sa.Connection, ids: list[int], stamp: float, *, purge: bool) -> None:
        """Archive (hide) or purge (delete with everything they hold) runs, inside the caller's
        transaction; the aligned samples of their experiments are recomputed without them."""
        if not ids:
            return
        r = t.runs.c
        touched = self._aligned_keys(conn, ids)
        if not purge:
            conn.execute(
                t.runs.update().where(r.id.in_(ids), r.archived_at.is_(None)).values(archived_at=stamp)
            )
        else:
            series = [int(i) for i in conn.execute(
                sa.select(t.series_latest.c.id).where(t.series_latest.c.run_id.in_(ids))
            ).scalars()]  # fmt: skip
            for start in range(0, len(series), 500):
                chunk = series[start : start + 500]
                conn.execute(t.series_points.delete().where(t.series_points.c.series_id.in_(chunk)))
                conn.execute(t.series_blocks.delete().where(t.series_blocks.c.series_id.in_(chunk)))
            purge_scorings(conn, ids)
            purge_items(conn, ids)
            for table in (t.series_latest, t.samples, t.metrics, t.logs, t.artifacts, t.event_streams):
                conn.execute(table.delete().where(table.c.run_id.in_(ids)))
            conn.execute(t.checkpoints.update().where(t.checkpoints.c.run_id.in_(ids)).values(run_id=None))
            conn.execute(t.runs.delete().where(r.id.in_(ids)))
        self._realign(conn, touched)

    def remove_files(self, ids: list[int]) -> None:
        """After a purge committed: the purged runs' artifact files."""
        if self.artifacts is not None:
            for run_id in ids:
                self.artifacts.remove_files(run_id)

    def unarchive_runs(self, conn: sa.Connection, ids: list[int], stamp: float) -> None:
        """Bring back runs that one delete archived (those with its ``stamp``)."""
        if not ids:
            return
        r = t.runs.c
        back = [
            int(i)
            for i in conn.execute(sa.select(r.id).where(r.id.in_(ids), r.archived_at == stamp)).scalars()
        ]
        if back:
            conn.execute(t.runs.update().where(r.id.in_(back)).values(archived_at=None))
            self._realign(conn, self._aligned_keys(conn, back))

    def _aligned_keys(self, conn: sa.Connection, ids: list[int]) -> dict[tuple[int, str], set[str]]:
        """The aligned-sample rows (experiment, task) -> keys that these runs' samples take part in."""
        r, s = t.runs.c, t.samples.c
        out: dict[tuple[int, str], set[str]] = {}
        rows = conn.execute(
            sa.select(r.experiment_id, r.task, s.sample_key)
            .join(t.samples, s.run_id == r.id)
            .where(r.id.in_(ids), r.experiment_id.is_not(None), r.task.is_not(None))
        )
        for exp_id, task, key in rows:
            out.setdefault((int(exp_id), str(task)), set()).add(str(key))
        return out

    def _realign(self, conn: sa.Connection, touched: dict[tuple[int, str], set[str]]) -> None:
        a = t.aligned_samples.c
        for (exp_id, task), keys in touched.items():
            ordered = sorted(keys)
            for start in range(0, len(ordered), 500):
                chunk = ordered[start : start + 500]
                conn.execute(
                    t.aligned_samples.delete().where(
                        a.experiment_id == exp_id, a.task == task, a.sample_key.in_(chunk)
                    )
                )
            aligned.refresh(conn, self.db.backend, exp_id, task, keys)


def run_dict(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        **common(row),
        "type": m["type"],
        "status": m["status"],
        "experiment_id": m["experiment_id"],
        "model": m["model"],
        "checkpoint": m["checkpoint"],
        "checkpoint_id": m["checkpoint_id"],
        "step": m["step"],
        "runtime": m["runtime"],
        "task": m["task"],
        "config": load(m["config"], {}),
        "attempt": m["attempt"],
        "max_attempts": m["max_attempts"],
        "lease_expires_at": iso(m["lease_expires_at"]),
        "worker": load(m["worker"], None),
        "error": m["error"],
        "progress": {"done": m["progress_done"], "total": m["progress_total"]},
        "started_at": iso(m["started_at"]),
        "ended_at": iso(m["ended_at"]),
        "work_key": m["work_key"],
        "reused_from": m["reused_from"],
    }


def experiment_dict(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        **common(row),
        "spec": load(m["spec"], {}),
        "spec_yaml": m["spec_yaml"],
        "config": load(m["config"], {}),
        "client_key": m["client_key"],
        "status": m["derived_status"],
        "counts": {s: int(m[f"n_{s}"]) for s in STATUSES},
        "progress": {"done": int(m["p_done"]), "total": int(m["p_total"])},
    }
