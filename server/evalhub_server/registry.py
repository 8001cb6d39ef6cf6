"""The registry: families, models, checkpoints, datasets, tasks and benchmarks, as one table each.

Every kind is described once (:data:`KINDS`): its table, how a create body becomes columns, which
parent it names (a model's family, a checkpoint's model, a task's dataset), which filters its list
takes, and who refers to it (what a delete must cascade to, or refuse over). Create, read, list,
PATCH (description, tags, metadata), DELETE (archive, or purge), restore: one implementation for all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from . import tables as t
from .db import Database
from .errors import Conflict, NotFound
from .rows import count, dump, iso, load, merge_patch, new_id, now, page


@dataclass(frozen=True)
class Parent:
    """A registry object another one names in its create body (``body[field]``, column ``column``)."""

    field: str
    kind: str
    column: str
    label: str  # the parent's name under this label in the answers (``family``, ``model``, ``dataset``)
    required: bool = True


@dataclass(frozen=True)
class Referrer:
    """Rows that refer to an object of a kind: a delete refuses over them unless it cascades."""

    kind: str  # a registry kind, or "runs"
    column: str  # their column holding our id (or our name, with by_name)
    by_name: bool = False


@dataclass(frozen=True)
class Kind:
    name: str  # the URL segment: families, models, ...
    singular: str
    table: sa.Table
    columns: Callable[[dict[str, Any]], dict[str, Any]]  # create body -> own columns
    fields: Callable[[Any], dict[str, Any]]  # row -> the answer's own fields
    parent: Parent | None = None
    filters: tuple[str, ...] = ("name",)
    referrers: tuple[Referrer, ...] = ()
    unique_by_version: bool = False
    order: tuple[str, ...] = ("id",)
    extra_columns: tuple[str, ...] = ()  # columns of joined tables selected for the answer
    name_filters: dict[str, str] = field(default_factory=dict)  # list filter -> joined name column


def _family_columns(b: dict[str, Any]) -> dict[str, Any]:
    return {"modality": b["modality"]}


def _model_columns(b: dict[str, Any]) -> dict[str, Any]:
    return {
        "runtime": b["runtime"],
        "code_uri": b.get("code_uri"),
        "adapter": b.get("adapter"),
        "default_params": dump(b.get("default_params") or {}),
    }


def _checkpoint_columns(b: dict[str, Any]) -> dict[str, Any]:
    return {
        "uri": b["uri"],
        "step": b.get("step"),
        "epoch": b.get("epoch"),
        "dataset_version": b.get("dataset_version"),
        "training_config": dump(b.get("training_config") or {}),
        "run_id": b.get("run_id"),
    }


def _dataset_columns(b: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": b["version"],
        "uri": b.get("uri"),
        "schema": dump(b.get("schema") or {}),
        "num_rows": b.get("num_rows"),
        "content_hash": b.get("content_hash"),
    }


def _task_columns(b: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": b.get("type"),
        "engine": b["engine"],
        "engine_config": dump(b["engine_config"]),
        "metrics": dump(list(b.get("metrics") or [])),
    }


def _benchmark_columns(b: dict[str, Any]) -> dict[str, Any]:
    return {"tasks": dump(list(b["tasks"])), "config": dump(b.get("config") or {})}


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "families",
            "family",
            t.families,
            _family_columns,
            lambda r: {"modality": r.modality},
            filters=("name", "modality"),
            referrers=(Referrer("models", "family_id"),),
        ),
        Kind(
            "models",
            "model",
            t.models,
            _model_columns,
            lambda r: {
                "family": r.family,
                "runtime": r.runtime,
                "code_uri": r.code_uri,
                "adapter": r.adapter,
                "default_params": load(r.default_params, {}),
            },
            parent=Parent("family", "families", "family_id", "family"),
            filters=("name", "family", "runtime"),
            referrers=(Referrer("checkpoints", "model_id"),),
        ),
        Kind(
            "checkpoints",
            "checkpoint",
            t.checkpoints,
            _checkpoint_columns,
            lambda r: {
                "model": r.model,
                "uri": r.uri,
                "step": r.step,
                "epoch": r.epoch,
                "dataset_version": r.dataset_version,
                "training_config": load(r.training_config, {}),
                "run_id": r.run_id,
            },
            parent=Parent("model", "models", "model_id", "model"),
            filters=("name", "model"),
            referrers=(Referrer("runs", "checkpoint_id"),),
            order=("step_nulls_last", "step", "id"),
        ),
        Kind(
            "datasets",
            "dataset",
            t.datasets,
            _dataset_columns,
            lambda r: {
                "version": r.version,
                "uri": r.uri,
                "schema": load(r.schema, {}),
                "num_rows": r.num_rows,
                "content_hash": r.content_hash,
            },
            filters=("name",),
            referrers=(Referrer("tasks", "dataset_id"),),
            unique_by_version=True,
        ),
        Kind(
            "tasks",
            "task",
            t.tasks,
            _task_columns,
            lambda r: {
                "type": r.type,
                "dataset": r.dataset,
                "engine": r.engine,
                "engine_config": load(r.engine_config, {}),
                "metrics": load(r.metrics, []),
            },
            parent=Parent("dataset", "datasets", "dataset_id", "dataset", required=False),
            filters=("name", "type"),
            referrers=(Referrer("runs", "task", by_name=True),),
        ),
        Kind(
            "benchmarks",
            "benchmark",
            t.benchmarks,
            _benchmark_columns,
            lambda r: {"tasks": load(r.tasks, []), "config": load(r.config, {})},
            filters=("name",),
        ),
    )
}


def common(row: Any) -> dict[str, Any]:
    """The fields every registry object, run and experiment answers with."""
    return {
        "id": int(row.id),
        "project": row.project,
        "name": row.name,
        "created_at": iso(row.created_at),
        "description": row.description or "",
        "tags": load(row.tags, {}),
        "metadata": load(row.metadata, {}),
        "archived_at": iso(row.archived_at),
    }


def patch_values(before: Any, body: dict[str, Any]) -> dict[str, Any]:
    """The columns a PATCH of description, tags and metadata writes (tags and metadata merge: a key
    set to null is removed, RFC 7396)."""
    values: dict[str, Any] = {}
    if body.get("description") is not None:
        values["description"] = body["description"]
    for name in ("tags", "metadata"):
        if body.get(name) is not None:
            values[name] = dump(merge_patch(load(getattr(before, name), {}), body[name]))
    return values


class RegistryStore:
    """Every registry kind through one set of operations (see :data:`KINDS`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- queries --------------------------------------------------------------------------------

    def _query(self, kind: Kind, pid: int) -> sa.Select[Any]:
        tb = kind.table
        q = sa.select(tb, t.projects.c.name.label("project")).join(
            t.projects, t.projects.c.id == tb.c.project_id
        )
        if kind.parent is not None:
            parent = KINDS[kind.parent.kind].table
            join = parent.c.id == tb.c[kind.parent.column]
            q = q.add_columns(parent.c.name.label(kind.parent.label))
            q = q.outerjoin(parent, join) if not kind.parent.required else q.join(parent, join)
        return q.where(tb.c.project_id == pid)

    def _ref_clause(self, kind: Kind, pid: int, ref: str) -> sa.ColumnElement[bool]:
        c = kind.table.c
        if ref.isdigit():
            return sa.and_(c.project_id == pid, c.id == int(ref))
        return sa.and_(c.project_id == pid, c.name == ref)

    def _row(self, conn: sa.Connection, kind: Kind, pid: int, ref: str, *, lock: bool = False) -> Any:
        """The row ``ref`` names; ``lock``: for this transaction (MySQL: FOR UPDATE), as a
        read-modify-write needs."""
        if kind.name == "checkpoints" and not ref.isdigit():  # names are unique per model, not project
            raise NotFound(
                f"checkpoint '{ref}': address a checkpoint by id (by name: GET /api/checkpoints?model=M&name=N)"
            )
        q = self._query(kind, pid).where(self._ref_clause(kind, pid, ref))
        q = q.order_by(kind.table.c.archived_at.is_not(None), kind.table.c.id.desc())  # a live one first
        row = conn.execute(q.with_for_update(of=kind.table) if lock else q).first()
        if row is None:
            raise NotFound(f"{kind.singular} '{ref}' not found in this project")
        return row

    def answer(self, kind: Kind, row: Any) -> dict[str, Any]:
        return {**common(row), **kind.fields(row)}

    def id_of(self, conn: sa.Connection, kind_name: str, pid: int, ref: str, field: str) -> int:
        """The id of a live object named (or numbered) ``ref``; 404 naming ``field`` if none."""
        kind = KINDS[kind_name]
        c = kind.table.c
        found = conn.execute(
            sa.select(c.id)
            .where(self._ref_clause(kind, pid, ref), c.archived_at.is_(None))
            .order_by(c.id.desc())
        ).scalar()
        if found is None:
            raise NotFound(f"{kind.singular} '{ref}' not found in this project", field=field)
        return int(found)

    # ---- create, read, list ---------------------------------------------------------------------

    def create(self, kind_name: str, pid: int, body: dict[str, Any]) -> dict[str, Any]:
        kind = KINDS[kind_name]
        values = {
            "project_id": pid,
            "name": body["name"],
            "description": body.get("description"),
            "tags": dump(body.get("tags") or {}),
            "metadata": dump(body.get("metadata") or {}),
            "created_at": now(),
            **kind.columns(body),
        }
        with self.db.read() as conn:
            if kind.parent is not None and body.get(kind.parent.field):
                values[kind.parent.column] = self.id_of(
                    conn, kind.parent.kind, pid, str(body[kind.parent.field]), f"body.{kind.parent.field}"
                )
            if kind_name == "checkpoints" and body.get("run_id") is not None:
                run = conn.execute(
                    sa.select(t.runs.c.id).where(t.runs.c.id == body["run_id"], t.runs.c.project_id == pid)
                ).first()
                if run is None:
                    raise NotFound(f"run {body['run_id']} not found in this project", field="body.run_id")
        try:
            oid = self.db.write(lambda conn: new_id(conn.execute(kind.table.insert().values(**values))))
        except sa.exc.IntegrityError:
            raise self._duplicate(kind, pid, body) from None
        return self.get(kind_name, pid, str(oid))

    def _duplicate(self, kind: Kind, pid: int, body: dict[str, Any]) -> Conflict:
        what = f"{kind.singular} '{body['name']}'"
        if kind.unique_by_version:
            what += f" version '{body.get('version')}'"
        if kind.parent is not None and kind.name == "checkpoints":
            what += f" of model '{body.get('model')}'"
        where = "of this model" if kind.name == "checkpoints" else "in this project"
        hint = ""
        with self.db.read() as conn:
            c = kind.table.c
            archived = conn.execute(
                sa.select(c.id).where(c.project_id == pid, c.name == body["name"], c.archived_at.is_not(None))
            ).first()
        if archived is not None:
            hint = f" (archived, id {archived.id}: restore it with POST /api/{kind.name}/{archived.id}/restore, or purge it)"
        return Conflict(f"{what} already exists {where}{hint}", field="body.name")

    def get(self, kind_name: str, pid: int, ref: str) -> dict[str, Any]:
        kind = KINDS[kind_name]
        with self.db.read() as conn:
            return self.answer(kind, self._row(conn, kind, pid, ref))

    def list_of(
        self, kind_name: str, pid: int, limit: int, offset: int, archived: bool = False, **filters: Any
    ) -> dict[str, Any]:
        kind = KINDS[kind_name]
        tb = kind.table
        q = self._query(kind, pid)
        q = q.where(tb.c.archived_at.is_not(None) if archived else tb.c.archived_at.is_(None))
        for name, value in filters.items():
            if value is None:
                continue
            if kind.parent is not None and name == kind.parent.label:
                q = q.where(KINDS[kind.parent.kind].table.c.name == value)
            else:
                q = q.where(tb.c[name] == value)
        if kind.order[0] == "step_nulls_last":
            q = q.order_by(tb.c.step.is_(None), tb.c.step, tb.c.id)
        else:
            q = q.order_by(*(tb.c[o] for o in kind.order))
        with self.db.read() as conn:
            items = [self.answer(kind, r) for r in conn.execute(q.limit(limit).offset(offset))]
            return page(items, count(conn, q), limit, offset)

    # ---- correct and remove ---------------------------------------------------------------------

    def patch(self, kind_name: str, pid: int, ref: str, body: dict[str, Any]) -> dict[str, Any]:
        kind = KINDS[kind_name]

        def tx(conn: sa.Connection) -> int:
            row = self._row(conn, kind, pid, ref, lock=True)  # a merge PATCH reads what it writes back
            values = patch_values(row, body)
            if values:
                conn.execute(kind.table.update().where(kind.table.c.id == row.id).values(**values))
            return int(row.id)

        return self.get(kind_name, pid, str(self.db.write(tx)))

    def referrers(self, conn: sa.Connection, kind: Kind, row: Any, live: bool = True) -> dict[str, list[int]]:
        """Ids of the rows that refer to ``row`` (live ones, or every one), by kind."""
        found: dict[str, list[int]] = {}
        for ref in kind.referrers:
            table = t.runs if ref.kind == "runs" else KINDS[ref.kind].table
            value = row.name if ref.by_name else row.id
            q = sa.select(table.c.id).where(
                table.c.project_id == row.project_id, table.c[ref.column] == value
            )
            if live:
                q = q.where(table.c.archived_at.is_(None))
            ids = [int(i) for i in conn.execute(q.order_by(table.c.id)).scalars()]
            if ids:
                found[ref.kind] = ids
        return found

    def delete(
        self, kind_name: str, pid: int, ref: str, *, cascade: bool, purge: bool, runs: Any
    ) -> dict[str, Any]:
        """Archive (or purge) an object; refuse (409) while live rows refer to it, unless ``cascade``.

        ``runs`` is the RunStore: runs among the referrers are archived or purged through it."""
        kind = KINDS[kind_name]
        stamp = now()

        def tx(conn: sa.Connection) -> dict[str, Any]:
            row = self._row(conn, kind, pid, ref)
            taken: dict[str, list[int]] = {}
            self._remove(conn, kind, row, stamp, cascade=cascade, purge=purge, runs=runs, taken=taken)
            return {
                "kind": kind.singular,
                "id": int(row.id),
                "purged": purge,
                "archived_at": None if purge else iso(stamp),
                "cascaded": taken,
            }

        result: dict[str, Any] = self.db.write(tx)
        if purge:
            runs.remove_files(result["cascaded"].get("runs", []))
        return result

    def _remove(
        self,
        conn: sa.Connection,
        kind: Kind,
        row: Any,
        stamp: float,
        *,
        cascade: bool,
        purge: bool,
        runs: Any,
        taken: dict[str, list[int]],
    ) -> None:
        found = self.referrers(conn, kind, row, live=not purge)
        if found and not cascade:
            listed = "; ".join(
                f"{k} {', '.join(map(str, ids[:10]))}{' …' if len(ids) > 10 else ''}"
                for k, ids in found.items()
            )
            raise Conflict(
                f"{kind.singular} '{row.name}' is still referred to by {listed}: delete those first, or pass "
                "cascade=true to delete them with it",
                field="query.cascade",
            )
        for ref_kind, ids in found.items():
            taken.setdefault(ref_kind, []).extend(ids)
            if ref_kind == "runs":
                runs.remove_runs(conn, ids, stamp, purge=purge)
                continue
            child = KINDS[ref_kind]
            for child_row in conn.execute(
                self._query(child, row.project_id).where(child.table.c.id.in_(ids))
            ):
                self._remove(conn, child, child_row, stamp, cascade=True, purge=purge, runs=runs, taken=taken)
        if purge:
            conn.execute(kind.table.delete().where(kind.table.c.id == row.id))
        elif row.archived_at is None:
            conn.execute(kind.table.update().where(kind.table.c.id == row.id).values(archived_at=stamp))

    def restore(self, kind_name: str, pid: int, ref: str, runs: Any) -> dict[str, Any]:
        """Bring back an archived object, and what its delete archived with it (same stamp)."""
        kind = KINDS[kind_name]

        def tx(conn: sa.Connection) -> int:
            row = self._row(conn, kind, pid, ref)
            if row.archived_at is None:
                return int(row.id)
            self._unarchive(conn, kind, row, float(row.archived_at), runs)
            return int(row.id)

        return self.get(kind_name, pid, str(self.db.write(tx)))

    def _unarchive(self, conn: sa.Connection, kind: Kind, row: Any, stamp: float, runs: Any) -> None:
        conn.execute(kind.table.update().where(kind.table.c.id == row.id).values(archived_at=None))
        for ref_kind, ids in self.referrers(conn, kind, row, live=False).items():
            if ref_kind == "runs":
                runs.unarchive_runs(conn, ids, stamp)
                continue
            child = KINDS[ref_kind]
            q = self._query(child, row.project_id).where(
                child.table.c.id.in_(ids), child.table.c.archived_at == stamp
            )
            for child_row in conn.execute(q):
                self._unarchive(conn, child, child_row, stamp, runs)


__all__ = ["KINDS", "Kind", "RegistryStore", "common", "patch_values"]
