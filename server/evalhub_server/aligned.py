"""The aligned-key table: one row per (experiment, task, sample_key), kept by every samples batch.

``refresh`` recomputes the rows of the keys a batch touched from the stored samples of the
experiment's runs of that task (one GROUP BY over those keys only, through the (run_id, sample_key)
unique index), so a row always equals what the aligned read used to compute by grouping all samples:
a replaced sample (a retried attempt writing the same key again) counts once, and its new output and
score replace the old ones in ``disagree``/``n_wrong`` (nothing is sticky).

Concurrency (MariaDB, READ COMMITTED): before recomputing, a samples batch locks its experiment's row
(FOR UPDATE, after the run's row, which every writer of the run locks first). Two batches of different
runs of one experiment therefore recompute one after the other, and the second one sees the first
one's samples (its plain reads see what committed before them). SQLite has one writer at a time.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from . import tables as t

CHUNK = 500

# The aggregate of one key over the rows of the runs: the same expressions the old GROUP BY used.
_WRONG = "SUM(CASE WHEN s.primary_score < 1 THEN 1 ELSE 0 END)"
_DISTINCT = "COUNT(DISTINCT COALESCE(s.filtered_output, s.output, ''))"
AGGREGATE = (
    f"MIN(s.sample_index) AS idx, COUNT(*) AS n_runs, {_WRONG} AS n_wrong, "
    f"CASE WHEN {_DISTINCT} > 1 THEN 1 ELSE 0 END AS disagree, "
    f"CASE WHEN {_WRONG} > 0 THEN 1 ELSE 0 END AS any_wrong, "
    f"CASE WHEN {_WRONG} > 0 AND {_WRONG} = COUNT(*) THEN 1 ELSE 0 END AS all_wrong"
)
COLUMNS = ("idx", "n_runs", "n_wrong", "disagree", "any_wrong", "all_wrong")


def refresh(conn: sa.Connection, backend: str, exp_id: int, task: str, keys: Iterable[str]) -> None:
    """Recompute the aligned rows of ``keys`` for (experiment, task) inside the caller's transaction."""
    ordered = sorted(set(keys))
    if not ordered:
        return
    r = t.runs.c
    run_ids = [
        int(x)
        for x in conn.execute(
            sa.select(r.id).where(r.experiment_id == exp_id, r.task == task, r.archived_at.is_(None))
        ).scalars()
    ]
    if not run_ids:
        return
    if backend == "mysql":
        # Samples batches of one experiment's runs recompute one after the other (see the module doc).
        conn.execute(sa.select(t.experiments.c.id).where(t.experiments.c.id == exp_id).with_for_update())
    a = t.aligned_samples
    for i in range(0, len(ordered), CHUNK):
        chunk = ordered[i : i + CHUNK]
        stmt = sa.text(
            f"SELECT s.sample_key AS sample_key, {AGGREGATE} FROM samples s "
            "WHERE s.run_id IN :runs AND s.sample_key IN :keys GROUP BY s.sample_key"
        ).bindparams(sa.bindparam("runs", expanding=True), sa.bindparam("keys", expanding=True))
        rows = [
            {"experiment_id": exp_id, "task": task, **dict(m)}
            for m in conn.execute(stmt, {"runs": run_ids, "keys": chunk}).mappings()
        ]
        _upsert(conn, backend, a, rows)


def _upsert(conn: sa.Connection, backend: str, table: sa.Table, rows: list[dict[str, object]]) -> None:
    if not rows:
        return
    if backend == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["experiment_id", "task", "sample_key"],
            set_={c: stmt.excluded[c] for c in COLUMNS},
        )
        conn.execute(stmt, rows)
    else:
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        mstmt = mysql_insert(table)
        mstmt = mstmt.on_duplicate_key_update({c: mstmt.inserted[c] for c in COLUMNS})
        conn.execute(mstmt, rows)
