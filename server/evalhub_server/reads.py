"""Reads of runs and experiments: metrics, series (downsampled in SQL), samples, logs, comparisons."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from . import rollup
from . import tables as t
from .db import Database
from .errors import Invalid, NotFound
from .numbers import wire, wire_column, wire_or_none
from .rows import count, driver_rows, iso, like_pattern, load, page
from .runs import RunStore

FILTERS = ("all", "disagree", "any_wrong", "all_wrong", "mixed")
"""Aligned samples: every one; the runs' outputs differ; any run wrong; every run wrong; the runs disagree
on correctness (some right, some wrong)."""
MAX_KEYS = 200
MAX_POINTS = 100_000  # a downsampled read (a raw read pages through every point instead)
RAW_PAGE = 100_000

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
            return {"metrics": {r.key: wire(r.value) for r in rows}}

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
                    "last_value": wire(m["last_value"]),
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
            points = []
            for s, v, w in rows:
                value = wire(v)
                points.append({"step": s, "value": value, "min": value, "max": value, "wall_time": w})
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
            by_step[s] = {"step": s, "value": wire(v), "min": wire(mn), "max": wire(mx), "wall_time": w}
        return {"key": key, "total": total, "downsampled": True, "points": list(by_step.values())}

    def raw_points(
        self, pid: int, run_id: int, key: str, after: str | None, limit: int = 50_000
    ) -> dict[str, Any]:
        """One page of every raw point of a series, in step order; ``next`` is the cursor of the
        next page. A page never splits the points of one step, so it may hold a few more than
        ``limit``; the cursor is the last step it holds."""
        if not 1 <= limit <= RAW_PAGE:
            raise Invalid(f"limit must be between 1 and {RAW_PAGE}, got {limit}", field="query.limit")
        after_step: int | None = None
        if after:
            try:
                after_step = int(after)
                if not -(2**63) <= after_step < 2**63:
                    raise ValueError
            except ValueError:
                raise Invalid(
                    f"after must be the cursor of a page (a step), got '{after}'", field="query.after"
                ) from None
        sl, sp = t.series_latest.c, t.series_points.c
        with self.db.read() as conn:
            self._check_run(conn, pid, run_id)
            head = conn.execute(
                sa.select(sl.id, sl.count.label("n")).where(sl.run_id == run_id, sl.key == key)
            ).first()
            if head is None:
                return {"key": key, "total": 0, "step": [], "value": [], "wall_time": [], "next": None}
            columns = sp.step, sp.value, sp.wall_time
            q = sa.select(*columns).where(sp.series_id == head.id)
            if after_step is not None:
                q = q.where(sp.step > after_step)
            rows = driver_rows(conn, q.order_by(sp.step).limit(limit))
            more = len(rows) == limit
            if more:  # the rest of the last step's points, so that no step is split between pages
                last = rows[-1][0]
                cut = len(rows)
                while cut and rows[cut - 1][0] == last:
                    cut -= 1
                rows = rows[:cut] + driver_rows(
                    conn, sa.select(*columns).where(sp.series_id == head.id, sp.step == last)
                )
                more = (
                    conn.execute(
                        sa.select(sp.step).where(sp.series_id == head.id, sp.step > last).limit(1)
                    ).first()
                    is not None
                )
        steps, values, walls = (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [])
        cursor = str(steps[-1]) if more and steps else None
        return {"key": key, "total": int(head.n), "step": steps, "value": wire_column(values),
                "wall_time": walls, "next": cursor}  # fmt: skip

    def samples(self, pid: int, run_id: int, limit: int, offset: int) -> dict[str, Any]:
        s = t.samples.c
        q = sa.select(t.samples).where(s.run_id == run_id).order_by(s.sample_index, s.id)
        with self.db.read() as conn:
            self._check_run(conn, pid, run_id)
            items = [sample_dict(r) for r in conn.execute(q.limit(limit).offset(offset))]
            return page(items, count(conn, q), limit, offset)

    def sample_scores(self, pid: int, run_id: int, after: str | None, limit: int) -> dict[str, Any]:
        """Every sample's key, subtask and scores, in key order, one page at a time (what paired
        statistics align): the scores go out as stored, without decoding them here."""
        s = t.samples.c
        q = sa.select(s.sample_key, s.task, s.scores).where(s.run_id == run_id)
        if after:
            q = q.where(s.sample_key > after)
        with self.db.read() as conn:
            self._check_run(conn, pid, run_id)
            rows = conn.execute(q.order_by(s.sample_key).limit(limit + 1)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        items = [
            {"sample_key": k, "task": task, "scores": _json_fragment(scores)} for k, task, scores in rows
        ]
        return {"run_id": run_id, "items": items, "next": rows[-1][0] if more and rows else None}

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

    def compare(self, pid: int, exp_id: int, limit: int = 1000, offset: int = 0) -> dict[str, Any]:
        """One page of the experiment's runs (by id) with their metrics; ``total`` counts them all."""
        listed = self.runs.list_runs(pid, limit, offset, experiment_id=exp_id)
        runs = listed["items"]
        with self.db.read() as conn:
            self.runs._experiment_row(conn, pid, exp_id)
            ids = [r["id"] for r in runs]
            values: dict[int, dict[str, float | str]] = {i: {} for i in ids}
            directions: dict[str, bool] = {}
            if ids:
                for row in conn.execute(
                    sa.select(
                        t.metrics.c.run_id, t.metrics.c.key, t.metrics.c.value, t.metrics.c.higher_is_better
                    ).where(t.metrics.c.run_id.in_(ids))
                ):
                    values[int(row.run_id)][row.key] = wire(row.value)
                    if row.higher_is_better is not None:
                        directions[row.key] = bool(row.higher_is_better)
        keys = sorted({k for v in values.values() for k in v})
        return {
            "experiment_id": exp_id,
            "total": listed["total"],
            "limit": limit,
            "offset": offset,
            "metrics": keys,
            "higher_is_better": {k: directions[k] for k in keys if k in directions},
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
        self,
        pid: int,
        exp_id: int,
        task: str | None,
        filter: str,
        q: str | None,
        limit: int,
        offset: int,
        keys: list[str] | None = None,
    ) -> dict[str, Any]:
        if filter not in FILTERS:
            raise Invalid(f"filter must be one of {', '.join(FILTERS)}; got '{filter}'", field="query.filter")
        r, s = t.runs.c, t.samples.c
        with self.db.read() as conn:
            self.runs._experiment_row(conn, pid, exp_id)
            tasks = sorted(
                x
                for x in conn.execute(
                    sa.select(r.task).where(r.experiment_id == exp_id, r.archived_at.is_(None)).distinct()
                ).scalars()
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
                sa.select(r.id, r.name)
                .where(r.experiment_id == exp_id, r.task == task, r.archived_at.is_(None))
                .order_by(r.id)
            ).all()
            run_ids = [int(x.id) for x in run_rows]
            # The keys come from the aligned table (kept at ingest): the filters and the order are index
            # range scans there, and only the page's samples are read.
            a = t.aligned_samples.c
            wanted = keys
            keys = sa.select(a.sample_key, a.idx).where(a.experiment_id == exp_id, a.task == task)
            if filter == "mixed":  # the runs disagree on correctness: some right, some wrong
                keys = keys.where(a.any_wrong == 1, a.all_wrong == 0)
            elif filter != "all":
                keys = keys.where(getattr(a, filter) == 1)
            if wanted is not None:
                keys = keys.where(a.sample_key.in_(wanted))
            # MariaDB's optimizer tends to take the order index and read every row for the filter.
            index = "order" if filter in ("all", "mixed") or wanted is not None else filter
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
                        "primary_score": wire_or_none(row.primary_score),
                    }
        return {
            "task": task,
            "runs": [{"run_id": int(x.id), "label": x.name} for x in run_rows],
            "total": total,
            "limit": limit,
            "offset": offset,
            "items": list(items.values()),
        }


def _json_fragment(text: str | None) -> Any:
    """Stored JSON text handed to the answer as it is (orjson writes it verbatim)."""
    if text is None:
        return {}
    try:
        import orjson

        return orjson.Fragment(text)
    except (ImportError, AttributeError):
        return load(text, {})


def sample_dict(row: Any) -> dict[str, Any]:
    m = row._mapping
    return {
        "sample_key": m["sample_key"],
        "index": m["sample_index"],
        "task": m["task"],
        "prompt": m["prompt"],
        "reference": m["reference"],
        "output": m["output"],
        "filtered_output": m["filtered_output"],
        "scores": load(m["scores"], {}),
        "primary_score": wire_or_none(m["primary_score"]),
        "latency_ms": wire_or_none(m["latency_ms"]),
        "tokens_in": m["tokens_in"],
        "tokens_out": m["tokens_out"],
        "extra": load(m["extra"], None),
    }


__all__ = ["ReadStore", "iso"]
