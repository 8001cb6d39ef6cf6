"""Planning and submitting big experiments: the wall time of ``plan`` + ``submit`` for 100 and for
10,000 runs, side by side, against a real ``evalhub_server`` on a SQLite file (and MariaDB with
``--mysql``).

The experiment is one model with ``checkpoints`` checkpoints on ``tasks`` tasks (registry rows only:
planning and submitting need no weights). Submitting pages the runs (1,000 per request); the time
includes reading every page's answer back into jobs.

    python bench/submit_scale.py                   # 100 and 10,000 runs on SQLite
    python bench/submit_scale.py --runs 100 20000 --mysql

Prints figures; asserts nothing. Target (issue 11): 10,000 runs under 10 s on the 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any


def _start(db_url: str, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    ready = folder / f"ready-{uuid.uuid4().hex}.json"
    cmd = [
        sys.executable, "-m", "evalhub_server", "--db", db_url, "--host", "127.0.0.1", "--port", "0",
        "--artifacts", str(folder / "artifacts"), "--ready-file", str(ready),
    ]  # fmt: skip
    log = open(folder / "server.log", "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit((folder / "server.log").read_text()[-2000:])
        try:
            return proc, str(json.loads(ready.read_text())["url"])
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the evalhub server did not start")


def _register(hub: Any, folder: Path, checkpoints: int, tasks: int) -> None:
    data = folder / "cheap.jsonl"
    data.write_text("".join(json.dumps({"q": f"{i}+1=", "a": str(i + 1)}) + "\n" for i in range(5)))
    hub.register_family("scale", modality="llm")
    hub.register_model("scale", family="scale", runtime="hf")
    for i in range(checkpoints):
        hub.register_checkpoint("scale", f"c{i:05d}", uri=str(folder / f"c{i}"), step=i)
    for j in range(tasks):
        hub.register_task(f"cheap-{j:03d}", data=str(data), prompt="{{q}}", target="{{a}}")


def _one(url: str, runs: int, tasks: int, folder: Path) -> tuple[float, float, int]:
    import evalhub
    from evalhub.orchestrator import plan, submit

    checkpoints = max(1, runs // tasks)
    hub = evalhub.connect(url, project=f"scale{runs}-{uuid.uuid4().hex[:6]}")
    _register(hub, folder, checkpoints, tasks)
    names = ", ".join(f"cheap-{j:03d}" for j in range(tasks))
    spec = f"name: scale-{runs}\nmodels: [{{model: scale}}]\ntasks: [{names}]\nconfig: {{limit: 5}}\n"
    start = time.perf_counter()
    the_plan = plan(hub, spec)
    planned = time.perf_counter()
    _, jobs = submit(hub, the_plan)
    done = time.perf_counter()
    hub.close()
    return planned - start, done - planned, len(jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--tasks", type=int, default=10, help="tasks per checkpoint")
    parser.add_argument("--mysql", action="store_true", help="also on MariaDB at 127.0.0.1:3306")
    args = parser.parse_args()
    backends = ["sqlite"] + (["mysql"] if args.mysql else [])
    print(f"{'backend':8} {'runs':>7} {'plan s':>8} {'submit s':>9} {'total s':>8} {'jobs':>7}")
    for backend in backends:
        folder = Path(tempfile.mkdtemp(prefix="eh-scale-"))
        db = f"sqlite:///{folder / 'evalhub.db'}"
        drop = None
        if backend == "mysql":
            import pymysql

            name = f"eh_scale_{uuid.uuid4().hex[:8]}"
            conn = pymysql.connect(host="127.0.0.1", user="root", password="")
            conn.cursor().execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
            db, drop = f"mysql+pymysql://root@127.0.0.1:3306/{name}", (conn, name)
        proc, url = _start(db, folder)
        try:
            for runs in args.runs:
                p, s, n = _one(url, runs, min(args.tasks, runs), folder)
                print(f"{backend:8} {runs:>7} {p:>8.2f} {s:>9.2f} {p + s:>8.2f} {n:>7}", flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            if drop is not None:
                drop[0].cursor().execute(f"DROP DATABASE {drop[1]}")
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
