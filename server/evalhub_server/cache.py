"""The request cache: answers of model requests per project, keyed by what was asked of which weights.

A worker computes each request's key (checkpoint content, runtime and params, the request, its
generation settings: see ``evalhub.engines._cache``), looks the keys of a run up before it calls the
model and stores every answer as it comes, in its event batches (events of type ``cache``). A run
evaluated again after a crash, a kill or a cancel calls its model only for the requests whose answers
are not here. The server never reads the answers: each is the JSON text the worker wrote.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from . import tables as t
from .db import Database
from .rows import now


def store(db: Database, conn: sa.Connection, pid: int, entries: dict[str, str]) -> None:
    """Upsert ``{key: value}`` inside the caller's transaction (a key written again is replaced)."""
    if not entries:
        return
    ts = now()
    rows = [{"project_id": pid, "key": k, "value": v, "created_at": ts} for k, v in entries.items()]
    db.upsert(conn, t.request_cache, rows, update=("value", "created_at"))


def lookup(db: Database, pid: int, keys: list[str]) -> dict[str, Any]:
    """The stored answers of ``keys`` (at most 1,000) in the project: ``{"values": {key: value}}``."""
    c = t.request_cache.c
    values: dict[str, str] = {}
    wanted = sorted(set(keys))
    with db.read() as conn:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for key, value in conn.execute(
                sa.select(c.key, c.value).where(c.project_id == pid, c.key.in_(chunk))
            ):
                values[str(key)] = str(value)
    return {"values": values}


__all__ = ["lookup", "store"]
