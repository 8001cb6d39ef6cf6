"""The aligned-key table behind GET /api/experiments/{id}/samples agrees with a GROUP BY over the samples
(the read's former query) for every filter, on both backends: after random batches with replaced
samples, after concurrent writers of one experiment, and after the 0003 migration's backfill."""

from __future__ import annotations

import random
import tempfile
import threading
from typing import Any

import sqlalchemy as sa

FILTERS = ("all", "disagree", "any_wrong", "all_wrong")


def _stores(db_url: str) -> tuple[Any, Any, Any, int]:
    from evalhub_server.db import Database
    from evalhub_server.migrate import upgrade
    from evalhub_server.store import AccessStore, Store

    db = Database(db_url)
    upgrade(db.engine)
    store = Store(db, tempfile.mkdtemp())
    pid = AccessStore(db).project_id("p", create=True)
    return db, store, store.runs, pid


def _experiment(store: Any, pid: int, tasks: list[str]) -> tuple[int, list[int]]:
    exp, _ = store.runs.create_experiment(
        pid, {"name": "e", "runs": [{"name": f"r{i}", "task": task} for i, task in enumerate(tasks)]}
    )
    return int(exp["id"]), [int(r["id"]) for r in exp["runs"]]


def _old_runs(db: Any, pid: int, exp_id: int | None, tasks: list[str]) -> list[int]:
    ids = []
    with db.engine.begin() as conn:
        for i, task in enumerate(tasks):
            ids.append(
                conn.execute(
                    sa.text(
                        "INSERT INTO runs (project_id, experiment_id, name, type, status, task, attempt, "
                        "progress_done, created_at) VALUES (:p, :e, :n, 'inference', 'queued', :t, 1, 0, 1.0) RETURNING id"
                    ),
                    {"p": pid, "e": exp_id, "n": f"r{i}", "t": task},
                ).scalar_one()  # RETURNING: not every driver sets lastrowid on text SQL
            )
    return [int(i) for i in ids]


def _old_experiment(db: Any, pid: int, tasks: list[str]) -> tuple[int, list[int]]:
    with db.engine.begin() as conn:
        exp_id = conn.execute(
            sa.text(
                "INSERT INTO experiments (project_id, name, created_at) VALUES (:p, 'e', 1.0) RETURNING id"
            ),
            {"p": pid},
        ).scalar_one()  # RETURNING: not every driver sets lastrowid on text SQL
    return int(exp_id), _old_runs(db, pid, int(exp_id), tasks)


def _ingest(store: Any, pid: int, run_id: int, stream: str, samples: list[dict[str, Any]]) -> None:
    from evalhub.protocol import EventBatch

    batch = EventBatch.model_validate(
        {"stream": stream, "events": [{"seq": 1, "type": "samples", "samples": samples}]}
    )
    store.ingest(pid, run_id, stream, batch.events)


def _reference(db: Any, run_ids: list[int], filter: str, q: str | None = None) -> list[tuple[str, Any]]:
    """The keys (and index) of the former read: a GROUP BY over every sample of the runs."""
    from evalhub_server import tables as t
    from evalhub_server.rows import like_pattern

    s = t.samples.c
    keys = sa.select(s.sample_key, sa.func.min(s.sample_index).label("idx")).where(s.run_id.in_(run_ids))
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
        keys = keys.where(s.sample_key.in_(hits))
    keys = keys.group_by(s.sample_key)
    wrong = sa.func.sum(sa.case((s.primary_score < 1, 1), else_=0))
    if filter == "disagree":
        keys = keys.having(sa.func.count(sa.distinct(sa.func.coalesce(s.filtered_output, s.output, ""))) > 1)
    elif filter == "any_wrong":
        keys = keys.having(wrong > 0)
    elif filter == "all_wrong":
        keys = keys.having(sa.and_(wrong > 0, wrong == sa.func.count()))
    with db.read() as conn:
        return [(r.sample_key, r.idx) for r in conn.execute(keys.order_by(sa.text("idx"), s.sample_key))]


def _check_agrees(db: Any, store: Any, pid: int, exp_id: int, task: str, run_ids: list[int]) -> None:
    for filter in FILTERS:
        for q in (None, "o1", "p2"):
            want = _reference(db, run_ids, filter, q)
            got = store.reads.aligned_samples(pid, exp_id, task, filter, q, 10_000, 0)
            assert got["total"] == len(want), (filter, q)
            assert [(i["sample_key"], i["index"]) for i in got["items"]] == want, (filter, q)
        for offset in (0, 7, len(want) - 3):
            page = store.reads.aligned_samples(pid, exp_id, task, filter, None, 5, max(offset, 0))
            want = _reference(db, run_ids, filter)
            assert [i["sample_key"] for i in page["items"]] == [
                k for k, _ in want[max(offset, 0) : max(offset, 0) + 5]
            ]


def _random_sample(rng: random.Random, key: int) -> dict[str, Any]:
    output = rng.choice(["o1", "o2", "o3", None])
    return {
        "sample_key": f"k{key:03d}",
        "index": key if rng.random() < 0.9 else None,
        "prompt": f"p{key % 5}",
        "reference": "ref",
        "output": output,
        "filtered_output": rng.choice([output, None, "f"]),
        "scores": {},
        "primary_score": rng.choice([0.0, 0.5, 1.0, None]),
    }


def test_aligned_rows_agree_with_group_by_for_each_filter(db_url: str) -> None:
    db, store, _, pid = _stores(db_url)
    try:
        rng = random.Random(7)
        exp_id, run_ids = _experiment(store, pid, ["t", "t", "t", "u"])
        for rid in run_ids:
            keys = rng.sample(range(120), 90)
            for b in range(0, 90, 30):
                _ingest(store, pid, rid, f"s{b}", [_random_sample(rng, k) for k in keys[b : b + 30]])
            # a retried attempt writes some keys again (new output, new score)
            _ingest(store, pid, rid, "retry", [_random_sample(rng, k) for k in keys[:40]])
        _check_agrees(db, store, pid, exp_id, "t", run_ids[:3])
        _check_agrees(db, store, pid, exp_id, "u", run_ids[3:])
    finally:
        db.dispose()


def test_replaced_sample_counts_once_and_replaces_its_output(db_url: str) -> None:
    from evalhub_server import tables as t

    db, store, _, pid = _stores(db_url)
    try:
        exp_id, (a, b) = _experiment(store, pid, ["t", "t"])
        _ingest(store, pid, a, "1", [{"sample_key": "k", "index": 3, "output": "x", "primary_score": 0.0}])
        _ingest(store, pid, b, "1", [{"sample_key": "k", "index": 3, "output": "y", "primary_score": 1.0}])
        totals = {f: store.reads.aligned_samples(pid, exp_id, "t", f, None, 50, 0)["total"] for f in FILTERS}
        assert totals == {"all": 1, "disagree": 1, "any_wrong": 1, "all_wrong": 0}
        _ingest(store, pid, a, "2", [{"sample_key": "k", "index": 3, "output": "y", "primary_score": 1.0}])
        with db.read() as conn:
            row = conn.execute(sa.select(t.aligned_samples)).one()._mapping
        assert (row["n_runs"], row["n_wrong"], row["disagree"], row["any_wrong"]) == (2, 0, 0, 0)
        totals = {f: store.reads.aligned_samples(pid, exp_id, "t", f, None, 50, 0)["total"] for f in FILTERS}
        assert totals == {"all": 1, "disagree": 0, "any_wrong": 0, "all_wrong": 0}
    finally:
        db.dispose()


def test_concurrent_writers_of_one_experiment_keep_rows_exact(db_url: str) -> None:
    db, store, _, pid = _stores(db_url)
    try:
        exp_id, run_ids = _experiment(store, pid, ["t"] * 4)
        errors: list[BaseException] = []

        def writer(n: int, rid: int) -> None:
            rng = random.Random(n)
            try:
                for b in range(6):
                    keys = rng.sample(range(60), 25)
                    _ingest(store, pid, rid, f"s{b}", [_random_sample(rng, k) for k in keys])
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n, rid)) for n, rid in enumerate(run_ids)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []
        _check_agrees(db, store, pid, exp_id, "t", run_ids)
    finally:
        db.dispose()


def test_upgrade_to_0003_backfills_aligned_rows(db_url: str) -> None:
    from alembic import command
    from evalhub_server.db import Database
    from evalhub_server.migrate import alembic_config, upgrade
    from evalhub_server.store import AccessStore, Store

    db = Database(db_url)
    try:
        cfg = alembic_config()
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0002")
        pid = AccessStore(db).project_id("old", create=True)
        store = Store(db, tempfile.mkdtemp())
        # experiments and runs as revision 0002 stored them (today's store writes newer columns)
        exp_id, run_ids = _old_experiment(db, pid, ["t", "t", "t", "u"])
        other_exp, other = _old_experiment(db, pid, ["t"])
        (loose,) = _old_runs(db, pid, None, ["t"])
        rng = random.Random(3)
        rows = []
        for rid in [*run_ids, *other, loose]:
            for k in rng.sample(range(80), 60):
                s = _random_sample(rng, k)
                s["run_id"], s["sample_index"] = rid, s.pop("index")
                s["scores"] = "{}"
                rows.append(s)
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO samples (run_id, sample_key, sample_index, prompt, reference, output, "
                    "filtered_output, scores, primary_score) VALUES (:run_id, :sample_key, :sample_index, "
                    ":prompt, :reference, :output, :filtered_output, :scores, :primary_score)"
                ),
                rows,
            )
        upgrade(db.engine)
        _check_agrees(db, store, pid, exp_id, "t", run_ids[:3])
        _check_agrees(db, store, pid, exp_id, "u", run_ids[3:])
        with db.read() as conn:
            n = conn.execute(sa.text("SELECT COUNT(*) FROM aligned_samples")).scalar_one()
        owner = {rid: (exp_id, "t") for rid in run_ids[:3]}
        owner |= {run_ids[3]: (exp_id, "u"), other[0]: (other_exp, "t")}
        assert n == len({(*owner[r["run_id"]], r["sample_key"]) for r in rows if r["run_id"] in owner})
    finally:
        db.dispose()
