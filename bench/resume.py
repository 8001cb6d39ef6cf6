"""Resume after a kill at 50%: the re-run's wall time against a run from nothing, on the same model
and task (issue goal: <= 0.6x).

    python bench/resume.py [--limit 400] [--tokens 48] [--workdir DIR]

Two tracking servers of their own (so the run from nothing finds no stored work): on the first, one
experiment (the tiny model on a generative arithmetic task, ``--tokens`` generated per request, no
stop string, so that generation rather than start-up is most of a run) runs from nothing. On the second, the same
experiment is driven until its run is half done, then the driver is stopped as a dying one would be
(its worker killed mid-run; the server puts the run back in the queue as its next attempt), and
``exp.resume()`` goes on: the request cache answers what the killed attempt had asked. Both are timed
from submission (or resume) to ``completed``, on one local Ray started before either (its start-up is
not counted), the model loaded in a fresh worker each time. Also printed: how many model requests
the resumed attempt answered from the cache. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def phases(run: dict[str, Any], began: float) -> tuple[float, float]:
    """Seconds from ``began`` (unix time) to the run's ``started_at`` (its worker up, the model loaded),
    and from there to its ``ended_at``, as the server recorded them."""
    from evalhub.widgets._source import parse_time

    started, ended = parse_time(run.get("started_at")), parse_time(run.get("ended_at"))
    if started is None or ended is None:
        return float("nan"), float("nan")
    return started - began, ended - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=400)
    ap.add_argument("--tokens", type=int, default=48, help="tokens generated per request (no stop string)")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="evalhub-bench-resume-"))
    os.environ["EVALHUB_HOME"] = str(work / "home")

    from _servers import ServerProcess

    import evalhub
    from evalhub import tiny
    from evalhub.execution import RayExecutor
    from evalhub.experiment import Experiment
    from evalhub.orchestrator import plan, submit

    out = work / "tiny"
    if not (out / "step-300").is_dir():
        print("training the tiny model…", flush=True)
        tiny.build(out, steps=300, save_every=300)
    data = work / "data"
    tiny.write_tasks(data, n=args.limit, seed=0)
    spec = (
        f"name: resume-bench\nmodels: [{{model: tiny-gpt, checkpoints: [step-300]}}]\n"
        f"tasks: [arith-add]\nconfig: {{limit: {args.limit}, batch_size: 16, "
        f"generation: {{max_new_tokens: {args.tokens}, until: ['@@@']}}}}\n"
    )
    executor = RayExecutor(include_dashboard=False, poll_interval=0.3)
    executor.start()

    def server(name: str) -> tuple[Any, Any]:
        proc = ServerProcess(f"sqlite:///{work / name / 'evalhub.db'}", work / name)
        proc.start()
        hub = evalhub.connect(proc.url, project=f"bench{uuid.uuid4().hex[:6]}")
        hub.register_family("tiny-gpt", modality="llm")
        hub.register_model("tiny-gpt", family="tiny-gpt", runtime="hf")
        hub.register_checkpoint("tiny-gpt", "step-300", uri=str(out / "step-300"), step=300)
        tiny.register_tasks(hub, data)
        return proc, hub

    def completed(hub: Any, exp_id: int) -> Experiment:
        exp = Experiment(hub, exp_id)
        if exp.status() != "completed":
            raise SystemExit(f"experiment {exp_id} ended {exp.status()}: {exp.failed_runs()}")
        return exp

    procs = []
    try:
        proc, hub = server("fresh")
        procs.append(proc)
        start = time.perf_counter()
        experiment, jobs = submit(hub, plan(hub, spec))
        executor.execute(hub, int(experiment["id"]), jobs, {})
        fresh = time.perf_counter() - start
        fresh_run = hub.run(int(completed(hub, int(experiment["id"])).runs()["id"][0]))
        fresh_phases = phases(fresh_run, time.time() - fresh)

        proc, hub = server("killed")
        procs.append(proc)
        experiment, jobs = submit(hub, plan(hub, spec))
        exp = Experiment(hub, int(experiment["id"]))
        stop = threading.Event()
        first = time.perf_counter()
        driver = threading.Thread(target=executor.execute, args=(hub, exp.id, jobs, {}, stop), daemon=True)
        driver.start()
        while True:
            progress = exp.info().get("progress") or {}
            if progress.get("total") and progress["done"] >= progress["total"] / 2:
                break
            if not driver.is_alive():
                raise SystemExit("the run ended before it was half done: raise --limit")
            time.sleep(0.05)
        stop.set()  # the driver dies: its worker is killed mid-run, the run goes back to the queue
        driver.join()
        killed_at = time.perf_counter() - first
        done_before = int(progress["done"])
        start, wall = time.perf_counter(), time.time()
        exp.resume(executor, wait=True)
        resumed = time.perf_counter() - start
        completed(hub, exp.id)
        run = hub.run(int(exp.runs()["id"][0]))
        resumed_phases = phases(run, wall)
        said = [line.get("message", "") for line in hub.logs(run["id"])]
    finally:
        for proc in procs:
            proc.stop()
        executor.shutdown()

    cached = next((m for m in said if m.startswith("request cache:")), None)
    print(f"limit {args.limit}: killed after {killed_at:.1f}s at {done_before}/{args.limit} samples; "
          f"the resumed run is attempt {run['attempt']}")  # fmt: skip
    print(f"{'':34}{'seconds':>9}{'to running':>12}{'running':>9}")
    print(f"{'run from nothing':34}{fresh:>9.2f}{fresh_phases[0]:>12.2f}{fresh_phases[1]:>9.2f}")
    print(
        f"{'resumed after the kill at 50%':34}{resumed:>9.2f}{resumed_phases[0]:>12.2f}{resumed_phases[1]:>9.2f}"
    )
    print(f"{'ratio (goal <= 0.60)':34}{resumed / fresh:>9.2f}")
    print(f"the resumed attempt's log: {cached or 'no request answered from the cache'}")


if __name__ == "__main__":
    main()
