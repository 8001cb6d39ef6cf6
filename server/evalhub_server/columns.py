"""A run's samples read as columns (``GET /api/runs/{id}/columns``): what slicing and exports read.

Fields a request may name:

- ``score:<key>``: a per-sample score (``score:acc``, ``score:judge.score``), null where absent;
- ``doc:<column>``: a column of the task's document the sample was made from (``doc:subject``);
- ``task``, ``index``, ``primary_score``, ``latency_ms``, ``tokens_in``, ``tokens_out``;
- ``prompt_chars``, ``output_chars``, ``reference_chars``: the texts' lengths in characters (the
  output is the filtered one where the run has it).

JSON values are taken out in SQL (SQLite's ``json_extract``, MariaDB's ``JSON_EXTRACT``), so a page
of 100,000 samples never decodes a whole ``scores`` or ``extra`` object in Python.
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa

from . import tables as t
from .db import Database
from .errors import Invalid, NotFound
from .numbers import wire_or_none
from .rows import driver_rows

MAX_FIELDS = 64
MAX_PAGE = 100_000
PLAIN = ("task", "index", "primary_score", "latency_ms", "tokens_in", "tokens_out")
LENGTHS = {"prompt_chars": "prompt", "output_chars": None, "reference_chars": "reference"}
_KEY = re.compile(r'^[^"\\\x00-\x1f]{1,255}$')
_NUMBERS = ("primary_score", "latency_ms")


def _path(prefix: str, key: str, field: str) -> str:
    if not _KEY.match(key):
        raise Invalid(f"field '{field}': a key may not hold quotes, backslashes or control characters",
                      field="query.fields")  # fmt: skip
    return f'$.{prefix}"{key}"' if not prefix else f'$.{prefix}."{key}"'


class ColumnReader:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _expression(self, field: str) -> tuple[str, str]:
        """The SQL of a field, and how its values come back (``json``, ``number``, ``plain``)."""
        json_fn = "json_extract" if self.db.backend == "sqlite" else "JSON_EXTRACT"
        length = "length" if self.db.backend == "sqlite" else "CHAR_LENGTH"
        kind, sep, key = field.partition(":")
        if sep and kind == "score":
            return f"{json_fn}(scores, '{_path('', key, field)}')", "score"
        if sep and kind == "doc":
            return f"{json_fn}(extra, '{_path('doc', key, field)}')", "json"
        if not sep and field in PLAIN:
            column = "sample_index" if field == "index" else field
            return column, "number" if field in _NUMBERS else "plain"
        if not sep and field in LENGTHS:
            source = LENGTHS[field] or "COALESCE(filtered_output, output)"
            return f"{length}({source})", "plain"
        raise Invalid(
            f"unknown field '{field}': use score:<key>, doc:<column>, {', '.join(PLAIN)}, "
            f"{', '.join(LENGTHS)}",
            field="query.fields",
        )

    def read(self, pid: int, run_id: int, fields: list[str], after: str | None, limit: int) -> dict[str, Any]:
        if not fields:
            raise Invalid("name at least one field", field="query.fields")
        if len(fields) > MAX_FIELDS:
            raise Invalid(f"at most {MAX_FIELDS} fields per request", field="query.fields")
        if not 1 <= limit <= MAX_PAGE:
            raise Invalid(f"limit must be between 1 and {MAX_PAGE}, got {limit}", field="query.limit")
        fields = list(dict.fromkeys(fields))
        exprs = [self._expression(f) for f in fields]
        select = ", ".join(["sample_key", *(e for e, _ in exprs)])
        where = "run_id = :run" + (" AND sample_key > :after" if after else "")
        params: dict[str, Any] = {"run": run_id, "n": limit + 1, **({"after": after} if after else {})}
        stmt = sa.text(f"SELECT {select} FROM samples WHERE {where} ORDER BY sample_key LIMIT :n").bindparams(
            **params
        )
        with self.db.read() as conn:
            found = conn.execute(
                sa.select(t.runs.c.id).where(t.runs.c.id == run_id, t.runs.c.project_id == pid)
            ).first()
            if found is None:
                raise NotFound(f"run {run_id} not found in this project")
            rows = driver_rows(conn, stmt)  # plain tuples: up to 100,000 rows of keys and numbers
        more = len(rows) > limit
        rows = rows[:limit]
        columns: dict[str, list[Any]] = {}
        mysql = self.db.backend != "sqlite"
        for i, (field, (_, how)) in enumerate(zip(fields, exprs, strict=True), start=1):
            values = [r[i] for r in rows]
            if how in ("json", "score") and mysql:  # MariaDB answers JSON text
                values = [None if v is None else json.loads(v) for v in values]
            if how == "json":
                values = [
                    v if v is None or isinstance(v, str | int | float | bool) else json.dumps(v)
                    for v in values
                ]
            elif how == "number":
                values = [wire_or_none(v) for v in values]
            columns[field] = values
        keys = [str(r[0]) for r in rows]
        return {
            "run_id": run_id,
            "keys": keys,
            "columns": columns,
            "next": keys[-1] if more and keys else None,
        }


__all__ = ["ColumnReader"]
