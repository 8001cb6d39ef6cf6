"""Runs and experiments: creation, status transitions, cancel, derived experiment status."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from . import tables as t
from .db import Database
from .errors import Conflict, Invalid, NotFound
from .rows import count, dump, iso, load, new_id, now, page

STATUSES = ("queued", "running", "completed", "failed", "cancelled")
TERMINAL = ("completed", "failed", "cancelled")
LEGAL: dict[str, tuple[str, ...]] = {
    "queued": ("running", "cancelled", "failed"),
    "running": ("completed", "failed", "cancelled", "queued"),
}


def transition(run: dict[str, Any], new: str, *, error: str | None = None, worker: Any = None) -> str | None:
    """Apply a status change to a run's column values in place; returns an error message if illegal."""
    cur = run["status"]
    if new not in LEGAL.get(cur, ()):
        where = "a terminal state" if cur in TERMINAL else f"'{cur}'"
        return f"illegal status change: '{cur}' -> '{new}' (from {where}; allowed: {', '.join(LEGAL.get(cur, ())) or 'none'})"
    ts = now()
    run["status"] = new
    if new == "running":
        run["started_at"] = ts
        run["ended_at"] = None
    elif new == "queued":  # re-queue after a worker died
        run["attempt"] = int(run["attempt"]) + 1
        run["ended_at"] = None
    else:
        run["ended_at"] = ts
    if error is not None:
        run["error"] = error
    if worker is not None:
        run["worker"] = dump(worker)
    return None


_MUTABLE = (
    "status",
    "started_at",
    "ended_at",
    "attempt",
    "error",
    "worker",
    "progress_done",
    "progress_total",
)


class RunStore:
    """Runs and experiments."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- runs -----------------------------------------------------------------------------------

    def _resolve_run(self, conn: sa.Connection, pid: int, body: dict[str, Any], field: str) -> dict[str, Any]:
        """RunCreate -> column values (model/checkpoint names checked against the registry)."""
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
            "attempt": 1,
            "progress_done": 0,
            "progress_total": None,
            "created_at": now(),
        }
        if values["checkpoint_id"] is not None:
            row = conn.execute(
                sa.select(t.checkpoints.c.name, t.models.c.name.label("model"))
                .join(t.models, t.models.c.id == t.checkpoints.c.model_id)
                .where(t.checkpoints.c.id == values["checkpoint_id"], t.checkpoints.c.project_id == pid)
            ).first()
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
            row = conn.execute(
                sa.select(t.checkpoints.c.id)
                .join(t.models, t.models.c.id == t.checkpoints.c.model_id)
                .where(
                    t.models.c.project_id == pid,
                    t.models.c.name == values["model"],
                    t.checkpoints.c.name == values["checkpoint"],
                )
            ).first()
            if row is None:
                raise NotFound(
                    f"checkpoint '{values['checkpoint']}' of model '{values['model']}' not found in this project",
                    field=f"{field}.checkpoint",
                )
            values["checkpoint_id"] = int(row.id)
        elif values["model"] is not None:
            found = conn.execute(
                sa.select(t.models.c.id).where(
                    t.models.c.project_id == pid, t.models.c.name == values["model"]
                )
            ).first()
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

    def list_runs(self, pid: int, limit: int, offset: int, **filters: Any) -> dict[str, Any]:
        c = t.runs.c
        q = self._run_query().where(c.project_id == pid).order_by(c.id)
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
        self, pid: int, run_id: int, status: str, error: str | None = None, worker: Any = None
    ) -> dict[str, Any]:
        def tx(conn: sa.Connection) -> None:
            before = self.lock_run(conn, pid, run_id)
            after = dict(before)
            problem = transition(after, status, error=error, worker=worker)
            if problem:
                raise Conflict(f"run {run_id}: {problem}", field="body.status")
            self.save_run(conn, before, after)

        self.db.write(tx)
        return self.get_run(pid, run_id)

    def cancel_run(self, pid: int, run_id: int) -> dict[str, Any]:
        def tx(conn: sa.Connection) -> None:
            before = self.lock_run(conn, pid, run_id)
            if before["status"] == "cancelled":
                return
            after = dict(before)
            problem = transition(after, "cancelled")
            if problem:
                raise Conflict(f"run {run_id} cannot be cancelled: {problem}")
            self.save_run(conn, before, after)

        self.db.write(tx)
        return self.get_run(pid, run_id)

    # ---- experiments ----------------------------------------------------------------------------

    def _experiment_row(self, conn: sa.Connection, pid: int, exp_id: int, field: str | None = None) -> Any:
        row = conn.execute(
            sa.select(t.experiments, t.projects.c.name.label("project"))
            .join(t.projects, t.projects.c.id == t.experiments.c.project_id)
            .where(t.experiments.c.id == exp_id, t.experiments.c.project_id == pid)
        ).first()
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
            rows = []
            for i, run in enumerate(body.get("runs") or []):
                values = self._resolve_run(conn, pid, {**run, "experiment_id": exp_id}, f"body.runs.{i}")
                rows.append(values)
            if rows:
                conn.execute(t.runs.insert(), rows)
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
            .where(c.experiment_id.is_not(None))
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
        self, pid: int, limit: int, offset: int, status: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        q, derived = self._experiment_query(pid)
        q = q.order_by(t.experiments.c.id.desc())
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
                .where(t.runs.c.experiment_id == exp_id, t.runs.c.status.in_(("queued", "running")))
                .values(status="cancelled", ended_at=ts)
            )

        self.db.write(tx)
        return self.get_experiment(pid, exp_id)


def run_dict(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        "id": int(m["id"]),
        "project": m["project"],
        "name": m["name"],
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
        "tags": load(m["tags"], {}),
        "attempt": m["attempt"],
        "worker": load(m["worker"], None),
        "error": m["error"],
        "progress": {"done": m["progress_done"], "total": m["progress_total"]},
        "created_at": iso(m["created_at"]),
        "started_at": iso(m["started_at"]),
        "ended_at": iso(m["ended_at"]),
    }


def experiment_dict(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        "id": int(m["id"]),
        "project": m["project"],
        "name": m["name"],
        "spec": load(m["spec"], {}),
        "spec_yaml": m["spec_yaml"],
        "config": load(m["config"], {}),
        "client_key": m["client_key"],
        "created_at": iso(m["created_at"]),
        "status": m["derived_status"],
        "counts": {s: int(m[f"n_{s}"]) for s in STATUSES},
        "progress": {"done": int(m["p_done"]), "total": int(m["p_total"])},
    }
