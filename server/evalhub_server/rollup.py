"""Series rollups: per-block count/min/max/last on a grid of step blocks (see ``tables.series_blocks``).

Writes merge a batch's blocks with one upsert per block; reads of a whole series pick the level whose
blocks are just finer than the requested buckets and aggregate those rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from .db import driver_mark
from .numbers import wire
from .tables import ROLLUP_SHIFTS

_COLS = "series_id, lvl, blk, n, vmin, vmax, last_step, last_value, last_wall"

_UPSERT_SQLITE = f"""
INSERT INTO series_blocks ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (series_id, lvl, blk) DO UPDATE SET
  n = n + excluded.n,
  vmin = min(coalesce(vmin, excluded.vmin), coalesce(excluded.vmin, vmin)),
  vmax = max(coalesce(vmax, excluded.vmax), coalesce(excluded.vmax, vmax)),
  last_value = CASE WHEN excluded.last_step >= last_step THEN excluded.last_value ELSE last_value END,
  last_wall = CASE WHEN excluded.last_step >= last_step THEN excluded.last_wall ELSE last_wall END,
  last_step = max(last_step, excluded.last_step)
"""

# MySQL assigns left to right with the new values: last_step must come last.
_UPSERT_MYSQL = f"""
INSERT INTO series_blocks ({_COLS}) VALUES ({{m}}, {{m}}, {{m}}, {{m}}, {{m}}, {{m}}, {{m}}, {{m}}, {{m}})
ON DUPLICATE KEY UPDATE
  n = n + VALUES(n),
  vmin = LEAST(COALESCE(vmin, VALUES(vmin)), COALESCE(VALUES(vmin), vmin)),
  vmax = GREATEST(COALESCE(vmax, VALUES(vmax)), COALESCE(VALUES(vmax), vmax)),
  last_value = IF(VALUES(last_step) >= last_step, VALUES(last_value), last_value),
  last_wall = IF(VALUES(last_step) >= last_step, VALUES(last_wall), last_wall),
  last_step = GREATEST(last_step, VALUES(last_step))
"""


def _lo(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None or a <= b else b


def _hi(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None or a >= b else b


def blocks(points: Iterable[tuple[int, int, float | None, float | None]]) -> list[tuple[Any, ...]]:
    """(series_id, step, value, wall) in arrival order -> rows of every level for the upsert.

    A stored value may be None (NaN): min and max skip it; it can still be a block's last value."""
    level: dict[
        tuple[int, int], list[Any]
    ] = {}  # (sid, blk) -> [n, vmin, vmax, last_step, last_value, last_wall]
    shift0 = ROLLUP_SHIFTS[0]
    for sid, step, value, wall in points:
        key = (sid, step >> shift0)
        b = level.get(key)
        if b is None:
            level[key] = [1, value, value, step, value, wall]
            continue
        b[0] += 1
        if value is not None:
            b[1] = _lo(b[1], value)
            b[2] = _hi(b[2], value)
        if step >= b[3]:
            b[3], b[4], b[5] = step, value, wall
    rows: list[tuple[Any, ...]] = []
    for lvl, shift in enumerate(ROLLUP_SHIFTS):
        rows.extend((sid, lvl, blk, *agg) for (sid, blk), agg in level.items())
        if lvl + 1 == len(ROLLUP_SHIFTS):
            break
        up = ROLLUP_SHIFTS[lvl + 1] - shift
        parent: dict[tuple[int, int], list[Any]] = {}
        for (sid, blk), (n, lo, hi, ls, lv, lw) in level.items():
            key = (sid, blk >> up)
            p = parent.get(key)
            if p is None:
                parent[key] = [n, lo, hi, ls, lv, lw]
                continue
            p[0] += n
            p[1] = _lo(p[1], lo)
            p[2] = _hi(p[2], hi)
            if ls >= p[3]:
                p[3], p[4], p[5] = ls, lv, lw
        level = parent
    return rows


def merge(conn: sa.Connection, backend: str, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        sql = _UPSERT_SQLITE if backend == "sqlite" else _UPSERT_MYSQL.format(m=driver_mark(conn.dialect))
        conn.exec_driver_sql(sql, rows)


def plan(lo: int, hi: int, max_points: int) -> tuple[int, int, int] | None:
    """(level, first block, blocks per bucket) for a whole-series read, or None when the buckets are
    finer than the finest blocks (then the points themselves are bucketed)."""
    span = hi - lo + 1
    wanted = -(-span // max_points)  # ceil: steps per bucket
    level = None
    for lvl, shift in enumerate(ROLLUP_SHIFTS):
        if (1 << shift) <= wanted:
            level = lvl
    if level is None:
        return None
    shift = ROLLUP_SHIFTS[level]
    first, last = lo >> shift, hi >> shift
    per_bucket = -(-(last - first + 1) // max_points)
    return level, first, per_bucket


# Buckets of ``:k`` consecutive blocks, aggregated in SQL: min/max over the bucket's blocks, and the
# last point of its last block (blocks never overlap in steps, so the highest block holds the last step).
_READ = """
SELECT s.last_step, s.last_value, a.mn, a.mx, s.last_wall
FROM (
  SELECT MAX(blk) AS lb, MIN(vmin) AS mn, MAX(vmax) AS mx
  FROM series_blocks WHERE series_id = :sid AND lvl = :lvl
  GROUP BY (blk - :first) {div} :k
) a
JOIN series_blocks s ON s.series_id = :sid AND s.lvl = :lvl AND s.blk = a.lb
ORDER BY s.blk
"""
_READ_SQL = {"sqlite": sa.text(_READ.format(div="/")), "mysql": sa.text(_READ.format(div="DIV"))}


def read(
    conn: sa.Connection, backend: str, series_id: int, level: int, first: int, per_bucket: int
) -> list[dict[str, Any]]:
    """Aggregate one level's blocks into buckets of ``per_bucket`` blocks (in SQL): step/value of the
    last point, min and max of the values."""
    rows = conn.execute(
        _READ_SQL[backend], {"sid": series_id, "lvl": level, "first": first, "k": per_bucket}
    ).fetchall()
    return [
        {"step": s, "value": wire(v), "min": wire(lo), "max": wire(hi), "wall_time": w}
        for s, v, lo, hi, w in rows
    ]
