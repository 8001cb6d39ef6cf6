"""Series reads through each side's public client against its own server, evalhub beside MLflow.

    python bench/history.py                 # SQLite and MariaDB (root@127.0.0.1:3306, throw-away databases)
    python bench/history.py --no-mysql      # SQLite only

Figures (median of --repeat reads, milliseconds), on each backend:
  * full read of a 100,000-point series: ``hub.series(run_id, key, max_points=None)`` (every raw point,
    paged from the server, as a polars DataFrame) beside ``MlflowClient.get_metric_history`` (a list of
    Metric objects) against ``mlflow server`` on the same kind of backend;
  * 1,000-point downsampled read of a 1,000,000-point series (``hub.series(..., max_points=1000)``);
    with ``--mlflow-1m``, beside MLflow's way to get that curve: ``get_metric_history`` of all 1M points.
Data goes in through each side's client: evalhub ``run.log`` (and ``finish``), MLflow ``log_batch`` of
1,000 metrics per call (its limit). Goals: full read >= 20x MLflow's; downsampled read < 50 ms.
Needs ``pip install mlflow`` (bench only). Nothing here asserts a time; it prints.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _peers import evalhub_server, machine, mariadb_database, mlflow_server

FULL_N = 100_000
BIG_N = 1_000_000


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``repeat`` calls, in ms, and the last result."""
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), out


def value(step: int) -> float:
    return math.sin(step / 1000.0) + step * 1e-6


# ---- evalhub ------------------------------------------------------------------------------------


def evalhub_side(url: str, repeat: int, big: bool) -> dict[str, float]:
    import evalhub

    hub = evalhub.connect(url, project="bench")
    run = hub.init_run("history", system_metrics=False)
    t0 = time.perf_counter()
    for s in range(FULL_N):
        run.log({"full": value(s)}, step=s)
    if big:
        for s in range(BIG_N):
            run.log({"big": value(s)}, step=s)
    run.finish(timeout=None)
    out = {"insert_s": time.perf_counter() - t0}

    out["full_ms"], frame = timed(lambda: hub.series(run.id, "full", max_points=None), repeat)
    assert frame.height == FULL_N and frame["step"].to_list() == list(range(FULL_N))
    assert frame["value"].to_list() == [value(s) for s in range(FULL_N)]
    if big:
        out["downsampled_ms"], frame = timed(lambda: hub.series(run.id, "big", max_points=1000), repeat)
        assert 500 <= frame.height <= 1000, frame.height
    hub.close()
    return out


# ---- MLflow -------------------------------------------------------------------------------------


def mlflow_side(url: str, repeat: int, big: bool) -> dict[str, float]:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url)
    exp = client.create_experiment(f"history-{uuid.uuid4().hex[:8]}")
    rid = client.create_run(exp).info.run_id
    t0 = time.perf_counter()
    for key, n in [("full", FULL_N)] + ([("big", BIG_N)] if big else []):
        for i in range(0, n, 1000):
            client.log_batch(
                rid, metrics=[Metric(key, value(s), 1_000_000 + s, s) for s in range(i, min(n, i + 1000))]
            )
    client.set_terminated(rid)
    out = {"insert_s": time.perf_counter() - t0}
    out["full_ms"], history = timed(lambda: client.get_metric_history(rid, "full"), repeat)
    assert len(history) == FULL_N
    if big:
        out["big_ms"], history = timed(lambda: client.get_metric_history(rid, "big"), max(1, repeat // 3))
        assert len(history) == BIG_N
    return out


# ---- main ---------------------------------------------------------------------------------------


@contextmanager
def backends(use_mysql: bool, folder: Path) -> Iterator[list[tuple[str, str, str]]]:
    """(name, evalhub's database URL, MLflow's) per backend."""
    out = [("SQLite", f"sqlite:///{folder / 'evalhub.db'}", f"sqlite:///{folder / 'mlflow.db'}")]
    if not use_mysql:
        yield out
        return
    from evalhub_server.db import mysql_driver
    from sqlalchemy.engine import make_url

    with mariadb_database() as ours, mariadb_database("mlflow_bench", mysql_driver()) as theirs:
        if ours and theirs:
            # both servers read through the same driver (evalhub's choice for a bare mysql:// URL)
            driver = make_url(ours).get_driver_name()
            out.append((f"MariaDB via {driver}", ours, theirs.replace("?charset=utf8mb4", "")))
        yield out


def report(backend: str, ev: dict[str, float], ml: dict[str, float] | None, big: bool) -> None:
    print(f"\n== {backend} ({machine()}) ==")
    print(f"insert (through the clients): evalhub run.log {ev['insert_s']:.1f} s", end="")
    print(f"; MLflow log_batch(1000) {ml['insert_s']:.1f} s" if ml else "")
    row = "{:<62} {:>11} {:>11} {:>8}"
    print(row.format("read", "evalhub ms", "MLflow ms", "ratio"))
    print(
        row.format(
            "full 100k series: hub.series(max_points=None) | get_metric_history",
            f"{ev['full_ms']:.1f}",
            f"{ml['full_ms']:.1f}" if ml else "-",
            f"{ml['full_ms'] / ev['full_ms']:.1f}x" if ml else "",
        )
    )
    if big:
        theirs = ml.get("big_ms") if ml else None
        print(
            row.format(
                "1,000-pt downsample of 1M | MLflow: get_metric_history of all 1M",
                f"{ev['downsampled_ms']:.1f}",
                f"{theirs:.1f}" if theirs else "-",
                f"{theirs / ev['downsampled_ms']:.0f}x" if theirs else "",
            )
        )
    print("goals: full read >= 20x MLflow's; downsampled read < 50 ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--no-mysql", action="store_true", help="SQLite only")
    p.add_argument("--no-1m", action="store_true", help="skip the 1M-point series (and its downsampled read)")
    p.add_argument(
        "--mlflow-1m", action="store_true", help="also log and read 1M points through MLflow (slow)"
    )
    a = p.parse_args()
    try:
        import mlflow  # noqa: F401
    except ImportError:
        print("mlflow is not installed (pip install mlflow): printing evalhub's figures only")
        have_mlflow = False
    else:
        have_mlflow = True
    big = not a.no_1m
    with (
        tempfile.TemporaryDirectory(prefix="evalhub-bench-") as tmp,
        backends(not a.no_mysql, Path(tmp)) as dbs,
    ):
        for name, ours, theirs in dbs:
            folder = Path(tmp) / name
            with evalhub_server(ours, folder / "evalhub") as url:
                ev = evalhub_side(url, a.repeat, big)
            ml = None
            if have_mlflow:
                with mlflow_server(theirs, folder / "mlflow") as url:
                    ml = mlflow_side(url, a.repeat, big and a.mlflow_1m)
            report(name, ev, ml, big)


if __name__ == "__main__":
    main()
