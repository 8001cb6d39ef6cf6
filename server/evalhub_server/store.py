"""The Store: every operation of the REST API as one method over SQL. The app only translates HTTP.

Projects, tokens and the registry live here; runs and experiments in ``runs.py``; event ingest in
``ingest.py``; series, samples and comparisons in ``reads.py``. ``Store`` gathers them.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from typing import Any

import sqlalchemy as sa

from . import tables as t
from .db import Database
from .errors import Conflict, Invalid, NotFound
from .rows import count, dump, iso, load, new_id, now, page


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RegistryStore:
    """Projects, tokens, families, models, checkpoints, datasets, tasks, benchmarks."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._projects: dict[str, int] = {}
        self._tokens: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()

    # ---- projects and tokens --------------------------------------------------------------------

    def project_id(self, name: str, *, create: bool) -> int:
        """The id of project ``name``; created on first use when ``create`` (embedded mode)."""
        cached = self._projects.get(name)
        if cached is not None:
            return cached
        with self.db.read() as conn:
            pid = conn.execute(sa.select(t.projects.c.id).where(t.projects.c.name == name)).scalar()
        if pid is None:
            if not create:
                raise NotFound(f"project '{name}' does not exist")
            pid = self._create_project(name, exist_ok=True)["id"]
        self._projects[name] = int(pid)
        return int(pid)

    def _create_project(self, name: str, *, exist_ok: bool) -> dict[str, Any]:
        def tx(conn: sa.Connection) -> dict[str, Any]:
            row = conn.execute(sa.select(t.projects).where(t.projects.c.name == name)).first()
            if row is not None:
                if not exist_ok:
                    raise Conflict(f"project '{name}' already exists", field="body.name")
                return _project(row)
            created = now()
            pid = new_id(conn.execute(t.projects.insert().values(name=name, created_at=created)))
            return {"id": pid, "name": name, "created_at": iso(created)}

        try:
            return self.db.write(tx)
        except sa.exc.IntegrityError:
            # Created by a concurrent request between our read and our insert.
            if not exist_ok:
                raise Conflict(f"project '{name}' already exists", field="body.name") from None
            with self.db.read() as conn:
                return _project(conn.execute(sa.select(t.projects).where(t.projects.c.name == name)).one())

    def create_project(self, name: str) -> dict[str, Any]:
        return self._create_project(name, exist_ok=False)

    def list_projects(self, limit: int, offset: int) -> dict[str, Any]:
        q = sa.select(t.projects).order_by(t.projects.c.id)
        with self.db.read() as conn:
            items = [_project(r) for r in conn.execute(q.limit(limit).offset(offset))]
            return page(items, count(conn, q), limit, offset)

    def create_token(self, project: str, name: str) -> dict[str, Any]:
        pid = self.project_id(project, create=False)
        token = "ehk_" + secrets.token_urlsafe(32)

        def tx(conn: sa.Connection) -> None:
            exists = conn.execute(
                sa.select(t.tokens.c.id).where(t.tokens.c.project_id == pid, t.tokens.c.name == name)
            ).first()
            if exists:
                raise Conflict(f"project '{project}' already has a token named '{name}'", field="body.name")
            conn.execute(
                t.tokens.insert().values(
                    project_id=pid, name=name, token_hash=token_hash(token), created_at=now()
                )
            )

        self.db.write(tx)
        return {"token": token, "name": name, "project": project}

    def token_project(self, token: str) -> tuple[int, str] | None:
        """(project id, project name) of a project token, or None."""
        h = token_hash(token)
        hit = self._tokens.get(h)
        if hit is not None:
            return hit
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(t.projects.c.id, t.projects.c.name)
                .join(t.tokens, t.tokens.c.project_id == t.projects.c.id)
                .where(t.tokens.c.token_hash == h)
            ).first()
        if row is None:
            return None
        self._tokens[h] = (int(row.id), row.name)
        return self._tokens[h]

    # ---- registry -------------------------------------------------------------------------------

    def _insert_named(self, table: sa.Table, kind: str, pid: int, values: dict[str, Any]) -> int:
        """Insert a named registry object; 409 on a duplicate name."""

        def tx(conn: sa.Connection) -> int:
            return new_id(conn.execute(table.insert().values(project_id=pid, created_at=now(), **values)))

        try:
            return self.db.write(tx)
        except sa.exc.IntegrityError:
            what = f"{kind} '{values['name']}'"
            if "version" in values:
                what += f" version '{values['version']}'"
            raise Conflict(f"{what} already exists in this project", field="body.name") from None

    def _ref_clause(self, table: sa.Table, pid: int, ref: str) -> sa.ColumnElement[bool]:
        if ref.isdigit():
            return sa.and_(table.c.project_id == pid, table.c.id == int(ref))
        return sa.and_(table.c.project_id == pid, table.c.name == ref)

    def _id_of(self, conn: sa.Connection, table: sa.Table, kind: str, pid: int, ref: str, field: str) -> int:
        q = sa.select(table.c.id).where(self._ref_clause(table, pid, ref)).order_by(table.c.id.desc())
        found = conn.execute(q).scalar()
        if found is None:
            raise NotFound(f"{kind} '{ref}' not found in this project", field=field)
        return int(found)

    # families

    def create_family(self, pid: int, body: dict[str, Any]) -> dict[str, Any]:
        fid = self._insert_named(
            t.families,
            "family",
            pid,
            {
                "name": body["name"],
                "modality": body["modality"],
                "description": body.get("description"),
                "metadata": dump(body.get("metadata") or {}),
            },
        )
        return self.get_family(pid, str(fid))

    def _family_query(self, pid: int) -> sa.Select[Any]:
        return (
            sa.select(t.families, t.projects.c.name.label("project"))
            .join(t.projects, t.projects.c.id == t.families.c.project_id)
            .where(t.families.c.project_id == pid)
        )

    def get_family(self, pid: int, ref: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(self._family_query(pid).where(self._ref_clause(t.families, pid, ref))).first()
        if row is None:
            raise NotFound(f"family '{ref}' not found in this project")
        return _family(row)

    def list_families(self, pid: int, limit: int, offset: int, modality: str | None = None) -> dict[str, Any]:
        q = self._family_query(pid).order_by(t.families.c.id)
        if modality:
            q = q.where(t.families.c.modality == modality)
        with self.db.read() as conn:
            return page(
                [_family(r) for r in conn.execute(q.limit(limit).offset(offset))],
                count(conn, q),
                limit,
                offset,
            )

    # models

    def create_model(self, pid: int, body: dict[str, Any]) -> dict[str, Any]:
        with self.db.read() as conn:
            fid = self._id_of(conn, t.families, "family", pid, body["family"], "body.family")
        mid = self._insert_named(
            t.models,
            "model",
            pid,
            {
                "name": body["name"],
                "family_id": fid,
                "runtime": body["runtime"],
                "code_uri": body.get("code_uri"),
                "adapter": body.get("adapter"),
                "default_params": dump(body.get("default_params") or {}),
                "metadata": dump(body.get("metadata") or {}),
            },
        )
        return self.get_model(pid, str(mid))

    def _model_query(self, pid: int) -> sa.Select[Any]:
        return (
            sa.select(t.models, t.families.c.name.label("family"), t.projects.c.name.label("project"))
            .join(t.families, t.families.c.id == t.models.c.family_id)
            .join(t.projects, t.projects.c.id == t.models.c.project_id)
            .where(t.models.c.project_id == pid)
        )

    def get_model(self, pid: int, ref: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(self._model_query(pid).where(self._ref_clause(t.models, pid, ref))).first()
        if row is None:
            raise NotFound(f"model '{ref}' not found in this project")
        return _model(row)

    def list_models(
        self,
        pid: int,
        limit: int,
        offset: int,
        family: str | None = None,
        runtime: str | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        q = self._model_query(pid).order_by(t.models.c.id)
        if family:
            q = q.where(t.families.c.name == family)
        if runtime:
            q = q.where(t.models.c.runtime == runtime)
        if name:
            q = q.where(t.models.c.name == name)
        with self.db.read() as conn:
            return page(
                [_model(r) for r in conn.execute(q.limit(limit).offset(offset))],
                count(conn, q),
                limit,
                offset,
            )

    # checkpoints

    def create_checkpoint(self, pid: int, body: dict[str, Any]) -> dict[str, Any]:
        with self.db.read() as conn:
            mid = self._id_of(conn, t.models, "model", pid, body["model"], "body.model")
            if body.get("run_id") is not None:
                run = conn.execute(
                    sa.select(t.runs.c.id).where(t.runs.c.id == body["run_id"], t.runs.c.project_id == pid)
                ).first()
                if run is None:
                    raise NotFound(f"run {body['run_id']} not found in this project", field="body.run_id")

        def tx(conn: sa.Connection) -> int:
            return new_id(
                conn.execute(
                    t.checkpoints.insert().values(
                        project_id=pid,
                        model_id=mid,
                        name=body["name"],
                        uri=body["uri"],
                        step=body.get("step"),
                        epoch=body.get("epoch"),
                        dataset_version=body.get("dataset_version"),
                        training_config=dump(body.get("training_config") or {}),
                        run_id=body.get("run_id"),
                        metadata=dump(body.get("metadata") or {}),
                        created_at=now(),
                    )
                )
            )

        try:
            cid = self.db.write(tx)
        except sa.exc.IntegrityError:
            raise Conflict(
                f"checkpoint '{body['name']}' of model '{body['model']}' already exists", field="body.name"
            ) from None
        return self.get_checkpoint(pid, cid)

    def _checkpoint_query(self, pid: int) -> sa.Select[Any]:
        return (
            sa.select(t.checkpoints, t.models.c.name.label("model"), t.projects.c.name.label("project"))
            .join(t.models, t.models.c.id == t.checkpoints.c.model_id)
            .join(t.projects, t.projects.c.id == t.checkpoints.c.project_id)
            .where(t.checkpoints.c.project_id == pid)
        )

    def get_checkpoint(self, pid: int, cid: int) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(self._checkpoint_query(pid).where(t.checkpoints.c.id == cid)).first()
        if row is None:
            raise NotFound(
                f"checkpoint {cid} not found in this project (by name: GET /api/checkpoints?model=M&name=N)"
            )
        return _checkpoint(row)

    def list_checkpoints(
        self, pid: int, limit: int, offset: int, model: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        c = t.checkpoints.c
        q = self._checkpoint_query(pid).order_by(c.step.is_(None), c.step, c.id)
        if model:
            q = q.where(t.models.c.name == model)
        if name:
            q = q.where(c.name == name)
        with self.db.read() as conn:
            return page(
                [_checkpoint(r) for r in conn.execute(q.limit(limit).offset(offset))],
                count(conn, q),
                limit,
                offset,
            )

    # datasets

    def create_dataset(self, pid: int, body: dict[str, Any]) -> dict[str, Any]:
        did = self._insert_named(
            t.datasets,
            "dataset",
            pid,
            {
                "name": body["name"],
                "version": body["version"],
                "uri": body.get("uri"),
                "schema": dump(body.get("schema") or {}),
                "num_rows": body.get("num_rows"),
                "content_hash": body.get("content_hash"),
                "metadata": dump(body.get("metadata") or {}),
            },
        )
        return self.get_dataset(pid, str(did))

    def _dataset_query(self, pid: int) -> sa.Select[Any]:
        return (
            sa.select(t.datasets, t.projects.c.name.label("project"))
            .join(t.projects, t.projects.c.id == t.datasets.c.project_id)
            .where(t.datasets.c.project_id == pid)
        )

    def get_dataset(self, pid: int, ref: str) -> dict[str, Any]:
        """By id, or by name (the newest version)."""
        q = (
            self._dataset_query(pid)
            .where(self._ref_clause(t.datasets, pid, ref))
            .order_by(t.datasets.c.id.desc())
        )
        with self.db.read() as conn:
            row = conn.execute(q).first()
        if row is None:
            raise NotFound(f"dataset '{ref}' not found in this project")
        return _dataset(row)

    def list_datasets(self, pid: int, limit: int, offset: int, name: str | None = None) -> dict[str, Any]:
        q = self._dataset_query(pid).order_by(t.datasets.c.id)
        if name:
            q = q.where(t.datasets.c.name == name)
        with self.db.read() as conn:
            return page(
                [_dataset(r) for r in conn.execute(q.limit(limit).offset(offset))],
                count(conn, q),
                limit,
                offset,
            )

    # tasks

    def create_task(self, pid: int, body: dict[str, Any]) -> dict[str, Any]:
        dataset_id = None
        if body.get("dataset"):
            with self.db.read() as conn:
                dataset_id = self._id_of(conn, t.datasets, "dataset", pid, body["dataset"], "body.dataset")
        tid = self._insert_named(
            t.tasks,
            "task",
            pid,
            {
                "name": body["name"],
                "type": body.get("type"),
                "dataset_id": dataset_id,
                "engine": body["engine"],
                "engine_config": dump(body["engine_config"]),
                "metrics": dump(list(body.get("metrics") or [])),
                "metadata": dump(body.get("metadata") or {}),
            },
        )
        return self.get_task(pid, str(tid))

    def _task_query(self, pid: int) -> sa.Select[Any]:
        return (
            sa.select(t.tasks, t.datasets.c.name.label("dataset"), t.projects.c.name.label("project"))
            .outerjoin(t.datasets, t.datasets.c.id == t.tasks.c.dataset_id)
            .join(t.projects, t.projects.c.id == t.tasks.c.project_id)
            .where(t.tasks.c.project_id == pid)
        )

    def get_task(self, pid: int, ref: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(self._task_query(pid).where(self._ref_clause(t.tasks, pid, ref))).first()
        if row is None:
            raise NotFound(f"task '{ref}' not found in this project")
        return _task(row)

    def list_tasks(
        self, pid: int, limit: int, offset: int, type: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        q = self._task_query(pid).order_by(t.tasks.c.id)
        if type:
            q = q.where(t.tasks.c.type == type)
        if name:
            q = q.where(t.tasks.c.name == name)
        with self.db.read() as conn:
            return page(
                [_task(r) for r in conn.execute(q.limit(limit).offset(offset))], count(conn, q), limit, offset
            )

    # benchmarks

    def create_benchmark(self, pid: int, body: dict[str, Any]) -> dict[str, Any]:
        bid = self._insert_named(
            t.benchmarks,
            "benchmark",
            pid,
            {
                "name": body["name"],
                "tasks": dump(list(body["tasks"])),
                "config": dump(body.get("config") or {}),
                "metadata": dump(body.get("metadata") or {}),
            },
        )
        return self.get_benchmark(pid, str(bid))

    def _benchmark_query(self, pid: int) -> sa.Select[Any]:
        return (
            sa.select(t.benchmarks, t.projects.c.name.label("project"))
            .join(t.projects, t.projects.c.id == t.benchmarks.c.project_id)
            .where(t.benchmarks.c.project_id == pid)
        )

    def get_benchmark(self, pid: int, ref: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(
                self._benchmark_query(pid).where(self._ref_clause(t.benchmarks, pid, ref))
            ).first()
        if row is None:
            raise NotFound(f"benchmark '{ref}' not found in this project")
        return _benchmark(row)

    def list_benchmarks(self, pid: int, limit: int, offset: int, name: str | None = None) -> dict[str, Any]:
        q = self._benchmark_query(pid).order_by(t.benchmarks.c.id)
        if name:
            q = q.where(t.benchmarks.c.name == name)
        with self.db.read() as conn:
            return page(
                [_benchmark(r) for r in conn.execute(q.limit(limit).offset(offset))],
                count(conn, q),
                limit,
                offset,
            )


def check_limit(limit: int, offset: int) -> None:
    if not 1 <= limit <= 1000:
        raise Invalid(f"limit must be between 1 and 1000, got {limit}", field="query.limit")
    if offset < 0:
        raise Invalid(f"offset must be >= 0, got {offset}", field="query.offset")


# ---- row -> dict -------------------------------------------------------------------------------


def _common(row: Any) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "project": row.project,
        "name": row.name,
        "created_at": iso(row.created_at),
        "metadata": load(row.metadata, {}),
    }


def _project(row: Any) -> dict[str, Any]:
    return {"id": int(row.id), "name": row.name, "created_at": iso(row.created_at)}


def _family(row: Any) -> dict[str, Any]:
    return {**_common(row), "modality": row.modality, "description": row.description or ""}


def _model(row: Any) -> dict[str, Any]:
    return {
        **_common(row),
        "family": row.family,
        "runtime": row.runtime,
        "code_uri": row.code_uri,
        "adapter": row.adapter,
        "default_params": load(row.default_params, {}),
    }


def _checkpoint(row: Any) -> dict[str, Any]:
    return {
        **_common(row),
        "model": row.model,
        "uri": row.uri,
        "step": row.step,
        "epoch": row.epoch,
        "dataset_version": row.dataset_version,
        "training_config": load(row.training_config, {}),
        "run_id": row.run_id,
    }


def _dataset(row: Any) -> dict[str, Any]:
    return {
        **_common(row),
        "version": row.version,
        "uri": row.uri,
        "schema": load(row.schema, {}),
        "num_rows": row.num_rows,
        "content_hash": row.content_hash,
    }


def _task(row: Any) -> dict[str, Any]:
    return {
        **_common(row),
        "type": row.type,
        "dataset": row.dataset,
        "engine": row.engine,
        "engine_config": load(row.engine_config, {}),
        "metrics": load(row.metrics, []),
    }


def _benchmark(row: Any) -> dict[str, Any]:
    return {**_common(row), "tasks": load(row.tasks, []), "config": load(row.config, {})}


class Store:
    """Everything the app calls: ``store.registry``, ``store.runs``, ``store.reads``, ``store.artifacts``,
    and ``store.ingest(...)``."""

    def __init__(self, db: Database, artifacts_dir: Any) -> None:
        from .artifacts import ArtifactStore
        from .reads import ReadStore
        from .runs import RunStore

        self.db = db
        self.registry = RegistryStore(db)
        self.runs = RunStore(db)
        self.reads = ReadStore(db, self.runs)
        self.artifacts = ArtifactStore(db, artifacts_dir)

    def ingest(self, pid: int, run_id: int, stream: str, events: list[Any]) -> dict[str, Any]:
        from .ingest import apply_batch

        return apply_batch(self.db, self.runs, pid, run_id, stream, events)
