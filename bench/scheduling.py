"""Scheduling overhead per run: how long a run waits between the previous run's end and its own start
on a worker that already holds the model (the driver noticing the slot, the server's state change, the
dispatch to the actor), beside what a bare Ray actor call costs on the same cluster (the floor any
scheduler on Ray pays).

    python bench/scheduling.py [--runs 40]

One checkpoint of a ``python`` plugin that answers at once, ``--runs`` tasks of one sample each, one
worker (``max_workers: 1``), so every run after the first reuses the loaded worker. Gaps come from the
server's own ``started_at``/``ended_at`` of consecutive runs. Goal (issue 11): median <= 50 ms.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

from _peers import evalhub_server, machine

PLUGIN = '''
class Instant:
    """Answers every prompt at once (the evaluation itself costs nothing here)."""

    def __init__(self, uri, params):
        pass

    def generate(self, prompts, params):
        return ["1" for _ in prompts]
'''


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _ray_floor(repeat: int = 200) -> float:
    """Median round trip of a no-op actor method call (ms), on the Ray the experiment used."""
    import ray

    @ray.remote(num_cpus=0)
    class Echo:
        def ping(self) -> int:
            return 1

    actor = Echo.remote()
    ray.get(actor.ping.remote())
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        ray.get(actor.ping.remote())
        times.append((time.perf_counter() - t0) * 1000)
    ray.kill(actor)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    import evalhub
    from evalhub.execution import RayExecutor

    folder = Path(tempfile.mkdtemp(prefix="evalhub-sched-"))
    (folder / "instant_plugin.py").write_text(PLUGIN)
    (folder / "weights").mkdir()
    data = folder / "one.jsonl"
    data.write_text(json.dumps({"q": "0+1=", "a": "1"}) + "\n")
    with evalhub_server(f"sqlite:///{folder / 'evalhub.db'}", folder) as url:
        hub = evalhub.connect(url, project=f"sched-{uuid.uuid4().hex[:6]}")
        hub.register_family("instant", modality="llm")
        hub.register_model("instant", family="instant", runtime="python", code_uri=str(folder),
                           adapter="instant_plugin:Instant")  # fmt: skip
        hub.register_checkpoint("instant", "v1", uri=str(folder / "weights"), step=1)
        names = [f"one-{j:03d}" for j in range(args.runs)]
        for name in names:
            hub.register_task(name, data=str(data), prompt="{{q}}", target="{{a}}")
        spec = (
            f"name: sched-{uuid.uuid4().hex[:6]}\nmodels: [{{model: instant}}]\ntasks: [{', '.join(names)}]\n"
            "config: {limit: 1, resources: {max_workers: 1, gpus_per_worker: 0}}\n"
        )
        executor = RayExecutor(include_dashboard=False, num_cpus=2, poll_interval=0.5)
        executor.start()
        t0 = time.perf_counter()
        exp = hub.run_experiment(spec, executor=executor, progress=False)
        wall = time.perf_counter() - t0
        runs = [hub.run(i) for i in exp.runs()["id"]]
        if any(r["status"] != "completed" for r in runs):
            raise SystemExit(f"a run did not complete: {next(r for r in runs if r['status'] != 'completed')}")
        runs.sort(key=lambda r: _seconds(r["started_at"]))
        floor = _ray_floor()
        executor.shutdown()
        hub.close()
    statuses = {r["status"] for r in runs}
    gaps = [(_seconds(b["started_at"]) - _seconds(a["ended_at"])) * 1000 for a, b in itertools.pairwise(runs)]
    own = [(_seconds(r["ended_at"]) - _seconds(r["started_at"])) * 1000 for r in runs]
    gaps.sort()
    p95 = gaps[min(len(gaps) - 1, int(0.95 * len(gaps)))]
    print(f"== scheduling overhead, {args.runs} runs on one loaded worker ({machine()}) ==")
    print(f"runs: {len(runs)} ({', '.join(sorted(statuses))}); experiment wall {wall:.1f} s")
    print(f"{'':44} {'median ms':>10} {'p95 ms':>8}")
    print(f"{'evalhub: previous run ended -> next started':44} {statistics.median(gaps):>10.1f} {p95:>8.1f}")
    print(f"{'evalhub: a run itself (started -> ended)':44} {statistics.median(own):>10.1f} {'':>8}")
    print(f"{'Ray: a no-op actor call (the floor)':44} {floor:>10.2f} {'':>8}")
    print("goal: median gap <= 50 ms")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
