"""Slicing through the API: 100,000 samples x 4 runs cut by a document column into 50 slices, each
with every run's mean and 95% interval and paired deltas against the baseline (paired bootstrap, 1,000
resamples, Holm), read over HTTP from a real server. Beside it, the same figures computed in memory
from the same data by the obvious peer: a polars group-by, then a numpy bootstrap per slice and run
(the draws of evalhub.stats, one call each). Prints, asserts nothing.

    python bench/slices.py                        # 100,000 x 4, 50 slices, a continuous metric
    python bench/slices.py --binary               # an exact-match metric (Wilson and McNemar)
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
    ap.add_argument("--slices", type=int, default=50)
    ap.add_argument("--binary", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import numpy as np
    from _servers import ServerProcess
    from evalhub_server.db import Database
    from evalhub_server.migrate import upgrade
    from evalhub_server.store import AccessStore, Store

    import evalhub
    from evalhub.protocol import EventBatch
    from evalhub.services.slices import slices

    folder = Path(tempfile.mkdtemp())
    url = f"sqlite:///{folder / 'b.db'}"
    db = Database(url)
    upgrade(db.engine)
    store = Store(db, folder / "artifacts")
    pid = AccessStore(db).project_id("bench", create=True)
    exp, _ = store.runs.create_experiment(
        pid,
        {
            "name": "sliced",
            "runs": [{"name": f"r{i}", "checkpoint": None, "task": "t"} for i in range(args.runs)],
        },
    )
    rng = np.random.default_rng(0)
    truth = rng.random(args.samples)
    t0 = time.perf_counter()
    for n, run in enumerate(exp["runs"]):
        values = np.clip(truth + rng.normal(0.01 * n, 0.1, args.samples), 0, 1)
        if args.binary:
            values = (values > 0.5).astype(float)
        for b in range(0, args.samples, 5000):
            samples: list[dict[str, Any]] = [
                {"sample_key": f"doc-{i:06d}", "index": i, "prompt": f"q{i}", "output": "a",
                 "scores": {"metric": float(values[i])}, "extra": {"doc": {"subject": f"s{i % args.slices:02d}"}}}
                for i in range(b, min(b + 5000, args.samples))
            ]  # fmt: skip
            events = [{"seq": 1, "type": "samples", "samples": samples}]
            if b + 5000 >= args.samples:
                events += [{"seq": 2, "type": "status", "status": "running"},
                           {"seq": 3, "type": "metrics", "values": {"metric": float(values.mean())}},
                           {"seq": 4, "type": "status", "status": "completed"}]  # fmt: skip
            batch = EventBatch.model_validate({"stream": f"s{b}", "events": events})
            store.ingest(pid, int(run["id"]), f"s{b}", batch.events)
    fill = time.perf_counter() - t0
    db.dispose()
    print(f"{args.samples:,} samples x {args.runs} runs into {args.slices} slices "
          f"({'0/1 metric' if args.binary else 'continuous metric'}); ingested in {fill:.1f} s")  # fmt: skip

    server = ServerProcess(url, folder / "server")
    server.start()
    try:
        hub = evalhub.connect(server.url, project="bench")
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            frame = slices(
                hub.client, int(exp["id"]), "subject", baseline=str(exp["runs"][0]["id"]), metrics=["metric"]
            )
            best = min(best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        from evalhub.services.slices import read_columns

        for run in exp["runs"]:
            read_columns(hub.client, int(run["id"]), ["score:metric"])
        read_columns(hub.client, int(exp["runs"][0]["id"]), ["doc:subject"])
        reading = time.perf_counter() - t0
        hub.close()
    finally:
        server.stop()

    # the peer: the same data in memory, a polars group-by and numpy's bootstrap per slice and run
    import polars as pl

    from evalhub import stats

    data = {"subject": [f"s{i % args.slices:02d}" for i in range(args.samples)]}
    rng = np.random.default_rng(0)
    truth = rng.random(args.samples)
    for n in range(args.runs):
        values = np.clip(truth + rng.normal(0.01 * n, 0.1, args.samples), 0, 1)
        data[f"r{n}"] = (values > 0.5).astype(float) if args.binary else values
    table = pl.DataFrame(data)
    t0 = time.perf_counter()
    for _, part in table.group_by("subject"):
        base = part["r0"].to_numpy()
        for n in range(args.runs):
            stats.mean_interval(part[f"r{n}"].to_numpy())
        results = stats.paired_compare_many(
            base,
            {f"r{n}": part[f"r{n}"].to_numpy() for n in range(1, args.runs)},
            resamples=stats.SLICE_RESAMPLES,
        )
        stats.holm([r.p_value for r in results.values()])
    peer = time.perf_counter() - t0

    print(f"{'':48}{'seconds':>10}")
    print(f"{'evalhub exp.slices through the API (best of ' + str(args.repeat) + ')':48}{best:>10.2f}")
    print(f"{'  of which reading the columns over HTTP':48}{reading:>10.2f}")
    print(f"{'peer: polars group_by + evalhub.stats per slice':48}{peer:>10.2f}")
    print(f"rows: {frame.height} (slices x runs); the worst slice of run {exp['runs'][-1]['id']}: "
          f"{frame.filter(pl.col('run_id') == int(exp['runs'][-1]['id'])).sort('delta').row(0, named=True)['slice']}")  # fmt: skip


if __name__ == "__main__":
    main()
