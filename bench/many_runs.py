"""Many training runs: ingest and read through each client against its own server, evalhub beside MLflow.

Ingest: RUNS runs one after another, each created, logged with 5 keys per step for STEPS steps
through the training-log API (evalhub ``run.log({...}, step=i)``; MLflow ``mlflow.log_metrics({...},
step=i)``, synchronous and with MLflow's asynchronous logging) and finished (evalhub's ``finish``
returns once the server acknowledged every point; MLflow's ``end_run`` after
``flush_async_logging``). MLflow is measured on fewer runs (``--mlflow-runs``): points/s are compared.

Read: a 2,000-point series of another run (``hub.series(run_id, key, max_points=2000)``; MLflow
``MlflowClient.get_metric_history``), the first call in a fresh process (what a notebook pays: lazy
imports included; the import of the client package is printed apart) and warm (median over other
runs and keys).

    python bench/many_runs.py                    # 20 runs x 5 keys x 2,000 steps, SQLite for both
    python bench/many_runs.py --runs 4 --mlflow-runs 1

Needs ``pip install mlflow`` (bench only). Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

from _peers import evalhub_server, machine, mlflow_server

KEYS = ("loss", "grad_norm", "lr", "acc", "tokens_per_s")
READ_POINTS = 2000


def _value(run: int, key: int, step: int) -> float:
    return (run + 1) * 10.0 + key + 1.0 / (step + 1)


# ---- ingest -------------------------------------------------------------------------------------


def ingest_evalhub(url: str, runs: int, steps: int, project: str) -> tuple[float, list[int]]:
    import evalhub

    hub = evalhub.connect(url, project=project)
    ids = []
    t0 = time.perf_counter()
    for r in range(runs):
        run = hub.init_run(f"many-{r}", config={"run": r}, system_metrics=False)
        log = run.log
        for step in range(steps):
            log({k: _value(r, i, step) for i, k in enumerate(KEYS)}, step=step)
        run.finish(timeout=None)
        ids.append(run.id)
    elapsed = time.perf_counter() - t0
    stored = sum(int(k["count"]) for rid in ids for k in hub.client.get(f"/runs/{rid}/series/keys")["keys"])
    hub.close()
    assert stored == runs * steps * len(KEYS), f"evalhub stored {stored} points"
    return elapsed, ids


def ingest_mlflow(url: str, runs: int, steps: int, synchronous: bool) -> tuple[float, list[str]]:
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(url)
    mlflow.set_experiment(f"many-{uuid.uuid4().hex[:8]}")
    ids = []
    t0 = time.perf_counter()
    for r in range(runs):
        with mlflow.start_run(run_name=f"many-{r}") as active:
            mlflow.log_params({"run": r}, synchronous=synchronous)
            for step in range(steps):
                mlflow.log_metrics(
                    {k: _value(r, i, step) for i, k in enumerate(KEYS)}, step=step, synchronous=synchronous
                )
            if not synchronous:
                mlflow.flush_async_logging()
            ids.append(active.info.run_id)
    elapsed = time.perf_counter() - t0
    client = MlflowClient(tracking_uri=url)
    stored = sum(len(client.get_metric_history(rid, k)) for rid in ids for k in KEYS)
    assert stored == runs * steps * len(KEYS), f"MLflow stored {stored} points"
    return elapsed, ids


# ---- reads --------------------------------------------------------------------------------------

FIRST_EVALHUB = """
import json, sys, time
t0 = time.perf_counter()
import evalhub
t1 = time.perf_counter()
hub = evalhub.connect(sys.argv[1], project=sys.argv[2])
t2 = time.perf_counter()
frame = hub.series(int(sys.argv[3]), sys.argv[4], max_points=2000)
t3 = time.perf_counter()
assert frame.height == 2000, frame.height
print(json.dumps({"import": t1 - t0, "connect": t2 - t1, "first": t3 - t2}))
"""

# The same, with polars imported (and timed) before the first call: what of the first call is polars'.
FIRST_EVALHUB_POLARS = """
import json, sys, time
import evalhub
hub = evalhub.connect(sys.argv[1], project=sys.argv[2])
t0 = time.perf_counter()
import polars
t1 = time.perf_counter()
frame = hub.series(int(sys.argv[3]), sys.argv[4], max_points=2000)
t2 = time.perf_counter()
print(json.dumps({"polars": t1 - t0, "first": t2 - t1}))
"""

FIRST_MLFLOW = """
import json, sys, time
t0 = time.perf_counter()
from mlflow.tracking import MlflowClient
t1 = time.perf_counter()
client = MlflowClient(tracking_uri=sys.argv[1])
t2 = time.perf_counter()
history = client.get_metric_history(sys.argv[3], sys.argv[4])
t3 = time.perf_counter()
assert len(history) == 2000, len(history)
print(json.dumps({"import": t1 - t0, "connect": t2 - t1, "first": t3 - t2}))
"""


def first_read(script: str, *args: str) -> dict[str, float]:
    """The first read in a fresh process (median of 3 processes)."""
    runs = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script), *args], capture_output=True, text=True, check=True
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def warm_evalhub(url: str, project: str, ids: list[int], repeat: int) -> float:
    import evalhub

    hub = evalhub.connect(url, project=project)
    hub.series(ids[0], KEYS[0], max_points=READ_POINTS)
    times = []
    for n in range(repeat):
        rid, key = ids[1 + n % (len(ids) - 1)] if len(ids) > 1 else ids[0], KEYS[n % len(KEYS)]
        t0 = time.perf_counter()
        frame = hub.series(rid, key, max_points=READ_POINTS)
        times.append(time.perf_counter() - t0)
        assert frame.height == READ_POINTS
    hub.close()
    return statistics.median(times)


def warm_mlflow(url: str, ids: list[str], repeat: int) -> float:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url)
    client.get_metric_history(ids[0], KEYS[0])
    times = []
    for n in range(repeat):
        rid, key = ids[1 + n % (len(ids) - 1)] if len(ids) > 1 else ids[0], KEYS[n % len(KEYS)]
        t0 = time.perf_counter()
        history = client.get_metric_history(rid, key)
        times.append(time.perf_counter() - t0)
        assert len(history) == READ_POINTS
    return statistics.median(times)


# ---- main ---------------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--mlflow-runs", type=int, default=2, help="runs MLflow logs (each way); default 2")
    p.add_argument("--repeat", type=int, default=20, help="warm reads (median)")
    p.add_argument("--no-mlflow", action="store_true")
    a = p.parse_args()
    assert a.steps >= READ_POINTS, "a read is of 2,000 points"
    points = a.runs * a.steps * len(KEYS)
    rows: list[tuple[str, int, float]] = []
    reads: dict[str, tuple[dict[str, float], float]] = {}
    with tempfile.TemporaryDirectory(prefix="evalhub-bench-") as tmp:
        folder = Path(tmp)
        with evalhub_server(f"sqlite:///{folder / 'evalhub.db'}", folder / "evalhub") as url:
            project = "many"
            elapsed, ids = ingest_evalhub(url, a.runs, a.steps, project)
            rows.append(("evalhub run.log -> evalhub server", points, elapsed))
            first = first_read(FIRST_EVALHUB, url, project, str(ids[-1]), KEYS[1])
            split = first_read(
                FIRST_EVALHUB_POLARS, url, project, str(ids[-2 if len(ids) > 1 else -1]), KEYS[2]
            )
            reads["evalhub hub.series(max_points=2000)"] = (first, warm_evalhub(url, project, ids, a.repeat))
        if not a.no_mlflow:
            ml_points = a.mlflow_runs * a.steps * len(KEYS)
            with mlflow_server(f"sqlite:///{folder / 'mlflow.db'}", folder / "mlflow") as url:
                elapsed, ml_ids = ingest_mlflow(url, a.mlflow_runs, a.steps, synchronous=True)
                rows.append(("MLflow log_metrics (synchronous) -> mlflow server", ml_points, elapsed))
                elapsed, more = ingest_mlflow(url, a.mlflow_runs, a.steps, synchronous=False)
                rows.append(("MLflow log_metrics (synchronous=False) -> mlflow server", ml_points, elapsed))
                ml_ids += more
                first = first_read(FIRST_MLFLOW, url, "", ml_ids[-1], KEYS[1])
                reads["MLflow get_metric_history"] = (first, warm_mlflow(url, ml_ids, a.repeat))

    print(f"\n== many runs: {a.runs} runs x {len(KEYS)} keys x {a.steps:,} steps, SQLite, {machine()} ==")
    print(f"{'ingest (runs created, logged per step, finished)':<58} {'points':>9} {'s':>8} {'points/s':>10}")
    for name, n, elapsed in rows:
        print(f"{name:<58} {n:>9,} {elapsed:>8.2f} {n / elapsed:>10,.0f}")
    ours = rows[0][1] / rows[0][2]
    for name, n, elapsed in rows[1:]:
        print(f"evalhub: {ours / (n / elapsed):.1f}x the points/s of {name}")
    print(f"\n{'2,000-point read of another run':<40} {'import':>9} {'first call':>11} {'warm':>9}")
    for name, (first, warm) in reads.items():
        print(
            f"{name:<40} {first['import'] * 1000:>7.0f}ms {first['first'] * 1000:>9.1f}ms {warm * 1000:>7.1f}ms"
        )
    if len(reads) == 2:
        (e_first, e_warm), (_, m_warm) = reads.values()
        print(
            f"evalhub warm read: {m_warm / e_warm:.1f}x faster than MLflow's; first call {e_first['first'] * 1000:.0f} ms"
        )
    print(
        f"evalhub's first call, taken apart in another fresh process: polars' import {split['polars'] * 1000:.0f} ms, "
        f"then the first read {split['first'] * 1000:.1f} ms"
    )
    print(
        "goals: ingest >= 20x MLflow's points/s; warm read >= 10x faster than MLflow's; first read < 100 ms"
    )


if __name__ == "__main__":
    main()
