"""A shared server under a team's load: many training processes logging at once into one MariaDB.

CLIENTS processes (default 64), each one training run that logs KEYS keys (default 10) per step at
RATE steps/s (default 20) through ``run.log`` for SECONDS seconds, then ``finish``; into
``evalhub server --workers 2`` on MariaDB (``--separate``: two single-process servers, clients split
between them). Every process starts when all are connected. Printed: points logged and stored
(lost and doubled must be 0), points/s stored while they ran, and the time from ``run.log`` to the
server's acknowledgement of that step (mean, p50, p99, max; seen by a thread of each client that
watches its stream's acknowledged count, so within a millisecond or so).

    python bench/shared_server.py                          # 64 x 10 keys x 20 steps/s for 30 s
    python bench/shared_server.py --clients 16 --seconds 10

Client, servers and MariaDB share this machine's cores (the figure says how many). Asserts nothing.
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
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from _peers import evalhub_server, machine, mariadb_database

CLIENT = textwrap.dedent("""
    import json, sys, threading, time
    from collections import deque
    import evalhub

    url, index, keys, rate, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    hub = evalhub.connect(url, project="team")
    run = hub.init_run(f"trainer-{index}", config={"index": index}, system_metrics=False)
    stream = run._stream  # the run's EventStream: its acknowledged count is what the server confirmed
    names = [f"k{j}" for j in range(keys)]
    logged, latencies, stop = deque(), [], threading.Event()

    def watch():
        with stream._cond:
            while not stop.is_set() or logged:
                stream._cond.wait(0.2)
                now, done = time.perf_counter(), stream._done
                while logged and logged[0][0] <= done:
                    latencies.append(now - logged.popleft()[1])

    print("ready", flush=True)
    sys.stdin.readline()  # "go": every client is connected
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    steps = int(rate * seconds)
    for step in range(steps):
        due = t0 + step / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        t = time.perf_counter()
        run.log({name: index + step * 1e-3 + j for j, name in enumerate(names)}, step=step)
        logged.append((stream._enqueued, t))
    logging_s = time.perf_counter() - t0
    delivery = run.finish(timeout=600)
    acked = time.time()
    stop.set()
    watcher.join(30)
    print(json.dumps({"run_id": run.id, "steps": steps, "points": steps * keys, "stored": delivery.stored,
                      "dropped": delivery.dropped, "logging_s": logging_s, "acked_at": acked,
                      "latencies": latencies}))
""")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--keys", type=int, default=10)
    p.add_argument("--rate", type=float, default=20.0, help="steps per second of each client")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument(
        "--separate", action="store_true", help="two single-process servers instead of --workers 2"
    )
    a = p.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="evalhub-bench-") as tmp,
        mariadb_database() as db,
        ExitStack() as stack,
    ):
        if db is None:
            raise SystemExit("this benchmark needs MariaDB on 127.0.0.1:3306")
        folder = Path(tmp)
        if a.separate:
            urls = [stack.enter_context(evalhub_server(db, folder / f"s{i}")) for i in range(2)]
        else:
            urls = [stack.enter_context(evalhub_server(db, folder / "s", "--workers", "2"))]
        script = folder / "client.py"
        script.write_text(CLIENT)
        procs = [
            subprocess.Popen(
                [sys.executable, script, urls[i % len(urls)], str(i), str(a.keys), str(a.rate), str(a.seconds)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )
            for i in range(a.clients)
        ]  # fmt: skip
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        go = time.time()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results: list[dict[str, Any]] = []
        for proc in procs:
            out, _ = proc.communicate(timeout=a.seconds + 900)
            assert proc.returncode == 0, f"a client exited {proc.returncode}"
            results.append(json.loads(out.strip().splitlines()[-1]))
        end = max(r["acked_at"] for r in results)
        with httpx.Client(base_url=f"{urls[0]}/api", headers={"X-Evalhub-Project": "team"}, timeout=60) as c:
            stored = {}
            for r in results:
                keys = c.get(f"/runs/{r['run_id']}/series/keys").json()["keys"]
                stored[r["run_id"]] = {k["key"]: int(k["count"]) for k in keys}
                assert c.get(f"/runs/{r['run_id']}").json()["status"] == "completed"

    logged = sum(r["points"] for r in results)
    held = sum(sum(v.values()) for v in stored.values())
    lost = sum(
        max(0, r["steps"] - stored[r["run_id"]].get(f"k{j}", 0)) for r in results for j in range(a.keys)
    )
    doubled = sum(max(0, n - r["steps"]) for r in results for n in stored[r["run_id"]].values())
    lat = [x for r in results for x in r["latencies"]]
    rates = [r["steps"] / r["logging_s"] for r in results]
    layout = "2 single-process servers" if a.separate else "1 server, --workers 2"
    print(f"\n== shared server: {a.clients} clients x {a.keys} keys x {a.rate:g} steps/s for {a.seconds:g} s, "
          f"{layout}, MariaDB; {machine()}: clients, servers and MariaDB on the same cores ==")  # fmt: skip
    print(f"points logged {logged:,}, stored {held:,}: lost {lost}, doubled {doubled}")
    print(f"points/s stored: {held / (end - go):,.0f} (offered {a.clients * a.keys * a.rate:,.0f}/s)")
    print(
        f"steps/s per client: mean {statistics.mean(rates):.1f}, lowest {min(rates):.1f} (asked {a.rate:g})"
    )
    print(
        f"run.log -> server acknowledgement: mean {statistics.mean(lat) * 1000:.0f} ms, "
        f"p50 {pct(lat, 0.5) * 1000:.0f} ms, p99 {pct(lat, 0.99) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms "
        f"({len(lat):,} steps; run.log batches in the background, flushing every 0.5 s)"
    )


if __name__ == "__main__":
    main()
