"""Event ingest: one transaction per batch, deduplicated by the (run, stream) high-water mark.

A batch names the attempt it writes for: a stale attempt's batch is refused whole (409), a current
one renews the attempt's lease (an empty batch is a heartbeat). Status events go through the state
machine (:mod:`.lifecycle`); an illegal one is rejected alone, so a stream never jams.

Writers of one run serialize on the run's row (MySQL ``FOR UPDATE``; SQLite has one writer anyway),
so the latest-value rows are read, merged and written once per key per batch without races.
Points go in with one ``executemany`` (pymysql turns it into multi-row INSERTs, MariaDB's connector
into one bulk statement).
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from evalhub.protocol import to_wire

from . import aligned, cache, lifecycle, rollup
from . import tables as t
from .db import Database
from .errors import StaleAttempt
from .numbers import store, store_or_none
from .rows import dump, now
from .runs import RunStore


def apply_batch(
    db: Database,
    runs: RunStore,
    pid: int,
    run_id: int,
    stream: str,
    events: list[Any],
    attempt: int | None = None,
) -> dict[str, Any]:
    """Apply the events of ``stream`` above its high-water mark; returns the answer of the API."""
    lease_s = runs.lease_s

    def tx(conn: sa.Connection) -> dict[str, Any]:
        before = runs.lock_run(conn, pid, run_id)
        if attempt is not None:
            stale = lifecycle.stale_attempt(before, attempt)
            if stale:
                raise StaleAttempt(stale, field="body.attempt")
        ts = now()
        es = t.event_streams.c
        last = conn.execute(
            sa.select(es.last_seq).where(es.run_id == run_id, es.stream == stream).with_for_update()
        ).scalar()
        high = int(last or 0)
        fresh: list[Any] = []
        for ev in sorted(events, key=lambda e: e.seq):
            if ev.seq > high:
                fresh.append(ev)
                high = ev.seq
        duplicates = len(events) - len(fresh)
        run = dict(before)
        rejected: list[dict[str, Any]] = []
        points: list[tuple[str, int, float | None, float | None]] = []
        metric_values: dict[str, float] = {}
        directions: dict[str, bool] = {}
        sample_rows: dict[str, dict[str, Any]] = {}
        log_rows: list[dict[str, Any]] = []
        artifact_rows: dict[str, dict[str, Any]] = {}
        cached: dict[str, str] = {}
        for ev in fresh:
            kind = ev.type
            if kind == "status":
                if ev.work_key is not None:
                    run["work_key"] = ev.work_key
                problem = lifecycle.transition(
                    run,
                    ev.status,
                    now=ts,
                    lease_s=lease_s,
                    error=ev.error,
                    worker=dump(ev.worker) if ev.worker is not None else None,
                )
                if problem:
                    rejected.append({"seq": ev.seq, "error": problem})
            elif kind == "progress":
                run["progress_done"] = ev.done
                if ev.total is not None:
                    run["progress_total"] = ev.total
            elif kind == "series":
                points.extend((p.key, p.step, store(p.value), p.wall_time) for p in ev.points)
            elif kind == "metrics":
                metric_values.update(ev.values)
                if ev.higher_is_better:
                    directions.update(ev.higher_is_better)
            elif kind == "samples":
                for s in ev.samples:
                    sample_rows[s.sample_key] = sample_row(run_id, s)
            elif kind == "log":
                log_rows.extend(
                    {"run_id": run_id, "level": ln.level, "message": ln.message, "wall_time": ln.wall_time}
                    for ln in ev.lines
                )
            elif kind == "cache":
                cached.update((e.key, e.value) for e in ev.entries)
            elif kind == "artifact":
                artifact_rows[ev.name] = {
                    "run_id": run_id,
                    "name": ev.name,
                    "uri": ev.uri,
                    "size": ev.size,
                    "sha256": ev.sha256,
                    "created_at": now(),
                }
        if points:
            write_points(db, conn, run_id, points)
        if metric_values:
            db.upsert(
                conn,
                t.metrics,
                [
                    {
                        "run_id": run_id,
                        "key": k,
                        "value": store(v),
                        "higher_is_better": None if k not in directions else int(directions[k]),
                        "updated_at": ts,
                    }
                    for k, v in metric_values.items()
                ],
                update=("value", "higher_is_better", "updated_at"),
            )
        if sample_rows:
            write_samples(db, conn, before, sample_rows)
        if log_rows:
            conn.execute(t.logs.insert(), log_rows)
        if cached:
            cache.store(db, conn, pid, cached)
        if artifact_rows:
            db.upsert(
                conn,
                t.artifacts,
                list(artifact_rows.values()),
                update=("uri", "size", "sha256", "created_at"),
            )
        if attempt is None or attempt == int(run["attempt"]):
            lifecycle.renew(run, now=ts, lease_s=lease_s)
        runs.save_run(conn, before, run)
        if fresh:
            if last is None:
                conn.execute(t.event_streams.insert().values(run_id=run_id, stream=stream, last_seq=high))
            else:
                conn.execute(
                    t.event_streams.update()
                    .where(es.run_id == run_id, es.stream == stream)
                    .values(last_seq=high)
                )
        return {
            "applied": len(fresh) - len(rejected),
            "duplicates": duplicates,
            "rejected": rejected,
            "run_status": run["status"],
            "attempt": int(run["attempt"]),
            "lease_s": lease_s,
        }

    return db.write(tx)


def write_samples(db: Database, conn: sa.Connection, run: dict[str, Any], rows: dict[str, dict[str, Any]]) -> None:
    """Store ``rows`` (sample key -> :func:`sample_row`) of ``run`` (its row, locked by the caller): a
    row replaces the stored one of its key."""
    cols = [c for c in next(iter(rows.values())) if c not in ("run_id", "sample_key")]
    db.upsert(conn, t.samples, list(rows.values()), update=cols)
    if run["experiment_id"] is not None and run["task"]:
        aligned.refresh(conn, db.backend, int(run["experiment_id"]), run["task"], rows)


def sample_row(run_id: int, s: Any) -> dict[str, Any]:
    """The column values of a :class:`~evalhub.protocol.Sample` of run ``run_id``."""
    return {
        "run_id": run_id,
        "sample_key": s.sample_key,
        "sample_index": s.index,
        "task": s.task,
        "prompt": s.prompt,
        "reference": s.reference,
        "output": s.output,
        "filtered_output": s.filtered_output,
        "scores": dump(to_wire(s.scores)),
        "primary_score": store_or_none(s.primary_score),
        "latency_ms": store_or_none(s.latency_ms),
        "tokens_in": s.tokens_in,
        "tokens_out": s.tokens_out,
        "extra": dump(s.extra) if s.extra is not None else None,
    }


def write_points(
    db: Database, conn: sa.Connection, run_id: int, points: list[tuple[str, int, float | None, float | None]]
) -> None:
    """Store points (key, step, value, wall_time) and merge each key's latest row once."""
    wall_default = time.time()
    stats: dict[str, list[Any]] = {}  # key -> [count, min_step, max_step, last_step, last_value, last_wall]
    for key, step, value, wall in points:
        st = stats.get(key)
        if st is None:
            stats[key] = [1, step, step, step, value, wall]
            continue
        st[0] += 1
        if step < st[1]:
            st[1] = step
        if step > st[2]:
            st[2] = step
        if step >= st[3]:  # a later point at the same step wins
            st[3], st[4], st[5] = step, value, wall
    sl = t.series_latest.c
    existing = {
        r.key: r
        for r in conn.execute(sa.select(t.series_latest).where(sl.run_id == run_id, sl.key.in_(list(stats))))
    }
    new_keys = [k for k in stats if k not in existing]
    if new_keys:
        conn.execute(
            t.series_latest.insert(),
            [
                {
                    "run_id": run_id,
                    "key": k,
                    "count": 0,
                    "last_step": stats[k][3],
                    "last_value": stats[k][4],
                    "last_wall_time": stats[k][5],
                    "min_step": stats[k][1],
                    "max_step": stats[k][2],
                }
                for k in new_keys
            ],
        )
        for r in conn.execute(sa.select(t.series_latest).where(sl.run_id == run_id, sl.key.in_(new_keys))):
            existing[r.key] = r
    updates = []
    for key, (n, lo, hi, last_step, last_value, last_wall) in stats.items():
        m = existing[key]._mapping
        old_n = int(m["count"])
        if old_n and m["last_step"] > last_step:
            last_step, last_value, last_wall = m["last_step"], m["last_value"], m["last_wall_time"]
        updates.append(
            {
                "b_id": m["id"],
                "b_count": old_n + n,
                "b_min": min(lo, m["min_step"]) if old_n else lo,
                "b_max": max(hi, m["max_step"]) if old_n else hi,
                "b_last_step": last_step,
                "b_last_value": last_value,
                "b_last_wall": last_wall,
            }
        )
    conn.execute(
        t.series_latest.update()
        .where(sl.id == sa.bindparam("b_id"))
        .values(
            count=sa.bindparam("b_count"),
            min_step=sa.bindparam("b_min"),
            max_step=sa.bindparam("b_max"),
            last_step=sa.bindparam("b_last_step"),
            last_value=sa.bindparam("b_last_value"),
            last_wall_time=sa.bindparam("b_last_wall"),
        ),
        updates,
    )
    ids = {key: existing[key]._mapping["id"] for key in stats}
    mark = db.mark
    rows = [(ids[k], s, v, w if w is not None else wall_default) for k, s, v, w in points]
    conn.exec_driver_sql(
        f"INSERT INTO series_points (series_id, step, value, wall_time) VALUES ({mark}, {mark}, {mark}, {mark})",
        rows,
    )
    rollup.merge(conn, db.backend, rollup.blocks(rows))
