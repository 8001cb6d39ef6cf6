"""GET /api/experiments/{id}/samples over N samples x R runs, in-process (no HTTP): the aligned-table
read (evalhub) beside the former GROUP BY over all samples (the peer), per filter and offset, plus
the ingest time of the samples with and without keeping the aligned table. Prints, asserts nothing.

    python bench/aligned_samples.py                       # 100,000 x 4 on a SQLite file
    python bench/aligned_samples.py --db mysql+pymysql://root@127.0.0.1:3306/bench_x
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--db", default=None)
    args = ap.parse_args()

    from evalhub_server import aligned
    from evalhub_server.db import Database
    from evalhub_server.migrate import upgrade
    from evalhub_server.store import AccessStore, Store
    from test_server_aligned import _reference

    from evalhub.protocol import EventBatch

    folder = Path(tempfile.mkdtemp())
    db = Database(args.db or f"sqlite:///{folder / 'b.db'}")
    upgrade(db.engine)
    store = Store(db, folder / "artifacts")
    pid = AccessStore(db).project_id("bench", create=True)

    def experiment() -> tuple[int, list[int]]:
        exp, _ = store.runs.create_experiment(
            pid, {"name": "e", "runs": [{"name": f"r{i}", "task": "t"} for i in range(args.runs)]}
        )
        return int(exp["id"]), [int(r["id"]) for r in exp["runs"]]

    def fill(run_ids: list[int]) -> float:
        t0 = time.perf_counter()
        for n, rid in enumerate(run_ids):
            for b in range(0, args.samples, args.batch):
                samples: list[dict[str, Any]] = [
                    {
                        "sample_key": f"doc-{i}",
                        "index": i,
                        "prompt": f"Question {i}: what is {i} + {n}?",
                        "reference": str(i),
                        "output": str(i if (i + n) % 7 else i + 1),
                        "scores": {"exact_match": float((i + n) % 7 != 0)},
                        "primary_score": float((i + n) % 7 != 0),
                    }
                    for i in range(b, min(b + args.batch, args.samples))
                ]
                batch = EventBatch.model_validate(
                    {"stream": f"s{b}", "events": [{"seq": 1, "type": "samples", "samples": samples}]}
                )
                store.ingest(pid, rid, f"s{b}", batch.events)
        return time.perf_counter() - t0

    keep = aligned.refresh
    aligned.refresh = lambda *a, **k: None  # type: ignore[assignment]
    _, plain_runs = experiment()
    plain = fill(plain_runs)
    aligned.refresh = keep
    exp_id, run_ids = experiment()
    kept = fill(run_ids)
    total = args.samples * args.runs
    print(f"ingest {total:,} samples in batches of {args.batch}: {kept:.1f} s with the aligned table, "
          f"{plain:.1f} s without")  # fmt: skip

    def best(fn: Any, n: int = 3) -> float:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times) * 1000

    print(f"{'filter':10} {'q':5} {'offset':>7} {'evalhub ms':>11} {'GROUP BY ms':>12} {'total':>8}")
    for filter in ("all", "disagree", "any_wrong", "all_wrong"):
        for q, offset in ((None, 0), (None, args.samples // 2), ("99", 0)):
            got = store.reads.aligned_samples(pid, exp_id, "t", filter, q, 50, offset)
            ours = best(
                lambda f=filter, q=q, o=offset: store.reads.aligned_samples(pid, exp_id, "t", f, q, 50, o)
            )
            peer = (
                best(lambda f=filter, q=q: _reference(db, run_ids, f, q), 1) if offset == 0 else float("nan")
            )
            print(f"{filter:10} {q or '-':5} {offset:>7} {ours:>11.1f} {peer:>12.1f} {got['total']:>8}")
    db.dispose()


if __name__ == "__main__":
    main()
