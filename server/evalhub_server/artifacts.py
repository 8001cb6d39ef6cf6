"""Artifacts: named files of a run, kept in a local folder (``<artifacts>/<run id>/<name>``)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from . import tables as t
from .db import Database
from .errors import Invalid, NotFound
from .rows import count, iso, now, page

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._ +=-]{0,254}$")


class ArtifactStore:
    def __init__(self, db: Database, root: Path) -> None:
        self.db = db
        self.root = Path(root)

    def _check(self, conn: sa.Connection, pid: int, run_id: int) -> None:
        if (
            conn.execute(
                sa.select(t.runs.c.id).where(t.runs.c.id == run_id, t.runs.c.project_id == pid)
            ).first()
            is None
        ):
            raise NotFound(f"run {run_id} not found in this project")

    def put(self, pid: int, run_id: int, name: str, data: bytes) -> dict[str, Any]:
        if not _NAME.match(name) or name in (".", ".."):
            raise Invalid(
                f"artifact name '{name}' is not allowed: use letters, digits and . _ - + = (no slashes)",
                field="path.name",
            )
        with self.db.read() as conn:
            self._check(conn, pid, run_id)
        folder = self.root / str(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, path)
        digest = hashlib.sha256(data).hexdigest()
        row = {
            "run_id": run_id,
            "name": name,
            "uri": path.resolve().as_uri(),
            "size": len(data),
            "sha256": digest,
            "created_at": now(),
        }
        self.db.write(
            lambda conn: self.db.upsert(
                conn, t.artifacts, [row], update=("uri", "size", "sha256", "created_at")
            )
        )
        return {"name": name, "size": len(data), "sha256": digest, "uri": row["uri"]}

    def list(self, pid: int, run_id: int, limit: int, offset: int) -> dict[str, Any]:
        a = t.artifacts.c
        q = sa.select(t.artifacts).where(a.run_id == run_id).order_by(a.name)
        with self.db.read() as conn:
            self._check(conn, pid, run_id)
            items = [
                {
                    "name": r.name,
                    "uri": r.uri,
                    "size": r.size,
                    "sha256": r.sha256,
                    "created_at": iso(r.created_at),
                }
                for r in conn.execute(q.limit(limit).offset(offset))
            ]
            return page(items, count(conn, q), limit, offset)

    def path(self, pid: int, run_id: int, name: str) -> Path:
        """The stored file of an artifact (only files under the artifacts folder are served)."""
        a = t.artifacts.c
        with self.db.read() as conn:
            self._check(conn, pid, run_id)
            row = conn.execute(sa.select(t.artifacts).where(a.run_id == run_id, a.name == name)).first()
        if row is None:
            raise NotFound(f"run {run_id} has no artifact '{name}'")
        path = (self.root / str(run_id) / name).resolve()
        if row.uri != path.as_uri() or not path.is_file():
            raise NotFound(
                f"artifact '{name}' of run {run_id} has no bytes on this server; it lives at {row.uri}"
            )
        return path
