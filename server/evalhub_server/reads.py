"""Reads of runs and experiments: metrics, series (downsampled in SQL), samples, logs, comparisons."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from . import rollup
from . import tables as t
from .db import Database
from .errors import Invalid, NotFound
from .rows import count, iso, like_pattern, load, page
from .runs import RunStore

MAX_POINTS = 10_000

# Bucket of a point: the step range [lo, hi] cut into :n equal buckets. Integer arithmetic on both
# backends (SQLite's "/" on integers truncates; MySQL needs DIV).
_DOWNSAMPLE = """
WITH agg AS (
  SELECT ((step - :lo) * :n) {div} :span AS bk, MAX(step) AS last_step, MIN(value) AS mn, MAX(value) AS mx
  FROM series_points
  WHERE series_id = :sid AND step >= :lo AND step <= :hi
  GROUP BY ((step - :lo) * :n) {div} :span
)
SELECT agg.last_step, p.value, agg.mn, agg.mx, p.wall_time
FROM agg JOIN series_points p ON p.series_id = :sid AND p.step = agg.last_step
ORDER BY agg.last_step, p.id
"""


class ReadStore:
    def __init__(self, db: Database, runs: RunStore) -> None:
        self.db = db
        self.runs = runs
        div = "/" if db.backend == "sqlite" else "DIV"
        self._downsample = sa.text(_DOWNSAMPLE.format(div=div))

    def _check_run(self, conn: sa.Connection, pid: int, run_id: int) -> None:
        found = conn.execute(
            sa.select(t.runs.c.id).where(t.runs.c.id == run_id, t.runs.c.project_id == pid)
        ).first()
        if found is None:
            raise NotFound(f"run {run_id} not found in this project")

    def metrics(self, pid: int, run_id: int) -> dict[str, Any]:
        with self.db.read() as conn:
            self._check_run(conn, pid, run_id)
            rows = conn.execute(
                sa.select(t.metrics.c.key, t.metrics.c.value)
                .where(t.metrics.c.run_id == run_id)
                .order_by(t.metrics.c.key)
            )
            return {"metrics": {r.key: r.value for r in rows}}

    def series_keys(self, pid: int, run_id: int) -> dict[str, Any]:
        sl = t.series_latest.c
        with self.db.read() as conn:
            self._check_run(conn, pid, run_id)
            rows = conn.execute(sa.select(t.series_latest).where(sl.run_id == run_id).order_by(sl.key))
            keys = [
                {
                    "key": m["key"],
                    "count": int(m["count"]),
                    "last_step": m["last_step"],
                    "last_value": m["last_value"],
                    "min_step": m["min_step"],
                    "max_step": m["max_step"],
                }
                for m in (r._mapping for r in rows)
            ]
        return {"keys": keys}

    def series(
        self,
        pid: int,
        run_id: int,
        key: str,
        max_points: int = 1000,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> dict[str, Any]:
        if not 1 <= max_points <= MAX_POINTS:
            raise Invalid(
                f"max_points must be between 1 and {MAX_POINTS}, got {max_points}", field="query.max_points"
            )
        with self.db.read() as conn:
            self._check_run(conn, pid, run_id)
            return self._series(conn, run_id, key, max_points, min_step, max_step)

    def many_series(self, pid: int, run_ids: list[int], key: str, max_points: int = 1000) -> dict[str, Any]:
        if not 1 <= max_points <= MAX_POINTS:
            raise Invalid(
                f"max_points must be between 1 and {MAX_POINTS}, got {max_points}", field="query.max_points"
            )
        if len(run_ids) > 100:
            raise Invalid("at most 100 run_ids per request", field="query.run_ids")
        out = []
        with self.db.read() as conn:
            for rid in run_ids:
                self._check_run(conn, pid, rid)
                out.append({"run_id": rid, **self._series(conn, rid, key, max_points, None, None)})
        return {"series": out}

    def _series(
        self,
        conn: sa.Connection,
        run_id: int,
        key: str,
        max_points: int,
        min_step: int | None,
        max_step: int | None,
    ) -> dict[str, Any]:
        sl = t.series_latest.c
        head = conn.execute(sa.select(t.series_latest).where(sl.run_id == run_id, sl.key == key)).first()
        if head is None:
            return {"key": key, "total": 0, "downsampled": False, "points": []}
        h = head._mapping
        lo = h["min_step"] if min_step is None else max(min_step, h["min_step"])
        hi = h["max_step"] if max_step is None else min(max_step, h["max_step"])
        sp = t.series_points.c
        if lo > hi:
            return {"key": key, "total": 0, "downsampled": False, "points": []}
        if min_step is None and max_step is None:
            total = int(h["count"])
        else:
            total = int(
                conn.execute(
                    sa.select(sa.func.count()).where(sp.series_id == h["id"], sp.step >= lo, sp.step <= hi)
                ).scalar_one()
            )
        if total <= max_points:
            # The covering index (series_id, step, value, wall_time) hands the rows over in step order.
            cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cur.execute(
                    "SELECT step, value, wall_time FROM series_points WHERE series_id = {m} AND step >= {m} "
                    "AND step <= {m} ORDER BY step".format(m="?" if self.db.backend == "sqlite" else "%s"),
                    (h["id"], lo, hi),
                )
                rows = cur.fetchall()
            finally:
                cur.close()
            points = [{"step": s, "value": v, "min": v, "max": v, "wall_time": w} for s, v, w in rows]
            return {"key": key, "total": total, "downsampled": False, "points": points}
        if min_step is None and max_step is None:
            how = rollup.plan(lo, hi, max_points)
            if how is not None:
                points = rollup.read(conn, self.db.backend, h["id"], *how)
                return {"key": key, "total": total, "downsampled": True, "points": points}
        rows = conn.execute(
            self._downsample, {"sid": h["id"], "lo": lo, "hi": hi, "n": max_points, "span": hi - lo + 1}
        ).fetchall()
        by_step: dict[int, dict[str, Any]] = {}
        for s, v, mn, mx, w in rows:  # several points at the last step: the one stored last wins
            by_step[s] = {"step": s, "value": v, "min": mn, "max": mx, "wall_time": w}
        return {"key": key, "total": total, "downsampled": True, "points": list(by_step.values())}

    def samples(self, pid: int, run_id: int, limit: int, offset: int) -> dict[str, Any]:
        s = t.samples.c
        q = sa.select(t.samples).where(s.run_id == run_id).order_by(s.sample_index, s.id)
        with self.db.read() as conn:
            self._check_run(conn, pid, run_id)
            items = [sample_dict(r) for r in conn.execute(q.limit(limit).offset(offset))]
            return page(items, count(conn, q), limit, offset)

    def logs(self, pid: int, run_id: int, limit: int, offset: int) -> dict[str, Any]:
        lg = t.logs.c
        q = sa.select(t.logs).where(lg.run_id == run_id).order_by(lg.id)
        with self.db.read() as conn:
            self._check_run(conn, pid, run_id)
            items = [
                {"id": int(r.id), "level": r.level, "message": r.message, "wall_time": r.wall_time}
                for r in conn.execute(q.limit(limit).offset(offset))
            ]
            return page(items, count(conn, q), limit, offset)

    # ---- experiments ----------------------------------------------------------------------------

    def compare(self, pid: int, exp_id: int) -> dict[str, Any]:
        runs = self.runs.list_runs(pid, 1000, 0, experiment_id=exp_id)["items"]
        with self.db.read() as conn:
            self.runs._experiment_row(conn, pid, exp_id)
            ids = [r["id"] for r in runs]
            values: dict[int, dict[str, float]] = {i: {} for i in ids}
            if ids:
                for row in conn.execute(
                    sa.select(t.metrics.c.run_id, t.metrics.c.key, t.metrics.c.value).where(
                        t.metrics.c.run_id.in_(ids)
                    )
                ):
                    values[int(row.run_id)][row.key] = row.value
        keys = sorted({k for v in values.values() for k in v})
        return {
            "experiment_id": exp_id,
            "metrics": keys,
            "runs": [
                {
                    "run_id": r["id"],
                    "name": r["name"],
                    "model": r["model"],
                    "checkpoint": r["checkpoint"],
                    "step": r["step"],
                    "runtime": r["runtime"],
                    "task": r["task"],
                    "status": r["status"],
                    "metrics": values[r["id"]],
                }
                for r in runs
            ],
        }

    def aligned_samples(
        self, pid: int, exp_id: int, task: str | None, filter: str, q: str | None, limit: int, offset: int
    ) -> dict[str, Any]:
        if filter not in ("all", "disagree", "any_wrong", "all_wrong"):
            raise Invalid(
                f"filter must be one of all, disagree, any_wrong, all_wrong; got '{filter}'",
                field="query.filter",
            )
        r, s = t.runs.c, t.samples.c
        with self.db.read() as conn:
            self.runs._experiment_row(conn, pid, exp_id)
            tasks = sorted(
                x
                for x in conn.execute(sa.select(r.task).where(r.experiment_id == exp_id).distinct()).scalars()
                if x
            )
            if task is None:
                if len(tasks) != 1:
                    raise Invalid(
                        f"experiment {exp_id} has tasks {', '.join(tasks) or '(none)'}: pass task=",
                        field="query.task",
                    )
                task = tasks[0]
            elif task not in tasks:
                raise NotFound(f"experiment {exp_id} has no runs of task '{task}'", field="query.task")
            run_rows = conn.execute(
                sa.select(r.id, r.name).where(r.experiment_id == exp_id, r.task == task).order_by(r.id)
            ).all()
            run_ids = [int(x.id) for x in run_rows]
            # The keys come from the aligned table (kept at ingest): the filters and the order are index
            # range scans there, and only the page's samples are read.
            a = t.aligned_samples.c
            keys = sa.select(a.sample_key, a.idx).where(a.experiment_id == exp_id, a.task == task)
            if filter != "all":
                keys = keys.where(getattr(a, filter) == 1)
            # MariaDB's optimizer tends to take the order index and read every row for the filter.
            index = "order" if filter == "all" else filter
            keys = keys.with_hint(t.aligned_samples, f"FORCE INDEX (ix_aligned_samples_{index})", "mysql")
            if q:
                pattern = like_pattern(q)
                hits = sa.select(s.sample_key).where(
                    s.run_id.in_(run_ids),
                    sa.or_(
                        s.prompt.like(pattern, escape="\\"),
                        s.reference.like(pattern, escape="\\"),
                        s.output.like(pattern, escape="\\"),
                        s.filtered_output.like(pattern, escape="\\"),
                    ),
                )
                keys = keys.where(a.sample_key.in_(hits))
            total = count(conn, keys)
            page_keys = (
                conn.execute(keys.order_by(a.idx, a.sample_key).limit(limit).offset(offset)).all()
                if total
                else []
            )
            items: dict[str, dict[str, Any]] = {
                k.sample_key: {
                    "sample_key": k.sample_key,
                    "index": k.idx,
                    "prompt": None,
                    "reference": None,
                    "outputs": {},
                }
                for k in page_keys
            }
            if items:
                rows = conn.execute(
                    sa.select(t.samples)
                    .where(s.run_id.in_(run_ids), s.sample_key.in_(list(items)))
                    .order_by(s.run_id)
                )
                for row in rows:
                    item = items[row.sample_key]
                    if item["prompt"] is None:
                        item["prompt"] = row.prompt
                    if item["reference"] is None:
                        item["reference"] = row.reference
                    item["outputs"][str(row.run_id)] = {
                        "output": row.output,
                        "filtered_output": row.filtered_output,
                        "scores": load(row.scores, {}),
                        "primary_score": row.primary_score,
                    }
        return {
            "task": task,
            "runs": [{"run_id": int(x.id), "label": x.name} for x in run_rows],
            "total": total,
            "limit": limit,
            "offset": offset,
            "items": list(items.values()),
        }


def sample_dict(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        "sample_key": m["sample_key"],
        "index": m["sample_index"],
        "prompt": m["prompt"],
        "reference": m["reference"],
        "output": m["output"],
        "filtered_output": m["filtered_output"],
        "scores": load(m["scores"], {}),
        "primary_score": m["primary_score"],
        "latency_ms": m["latency_ms"],
        "tokens_in": m["tokens_in"],
        "tokens_out": m["tokens_out"],
        "extra": load(m["extra"], None),
    }


__all__ = ["ReadStore", "iso"]
