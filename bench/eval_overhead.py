"""evalhub's overhead over lm-evaluation-harness run directly, on the same model and tasks.

    python bench/eval_overhead.py [--limit 100] [--workdir DIR]

1. One checkpoint on one task: an evalhub experiment (tracking server, Ray worker, events, samples)
   against ``lm_eval`` run as its CLI would be (a fresh process: imports, model load, evaluation).
2. One checkpoint on four tasks: one evalhub experiment (the worker loads the checkpoint once) against
   four separate lm-eval runs.

Ray's start-up is measured apart (a notebook pays it once per kernel). Both sides start a fresh
process per evaluation (evalhub's worker actor, lm-eval's CLI process), so imports and model loading
count on both. lm-eval is timed twice: as ``lm_eval --include_path`` runs (its task index included)
and with ``include_defaults=False`` (the fastest lm-eval can be). Goals: <= 1.10x for one task,
<= 0.6x for four. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

PEER = r"""
import json, sys, time
t0 = time.perf_counter()
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager
ckpt, include, task, limit, defaults = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1"
manager = TaskManager(include_path=include, include_defaults=defaults)
out = simple_evaluate(model="hf", model_args=f"pretrained={ckpt},device=cpu", tasks=[task], limit=limit,
                      batch_size=16, log_samples=True, task_manager=manager, fewshot_as_multiturn=False,
                      bootstrap_iters=1000)
res = {k: v for k, v in out["results"][task].items() if "," in k}
print("RESULT", json.dumps({"seconds": time.perf_counter() - t0, "metrics": res}))
"""


def peer(ckpt: Path, include: Path, task: str, limit: int, defaults: bool) -> float:
    """Wall time of one lm-eval evaluation in a fresh process (as ``lm_eval ...`` would run)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PEER, str(ckpt), str(include), task, str(limit), "1" if defaults else "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"lm-eval failed:\n{proc.stderr[-3000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="evalhub-bench-"))
    os.environ["EVALHUB_HOME"] = str(work / "home")

    import evalhub
    from evalhub import tiny
    from evalhub.engines.lm_eval import write_task_yaml
    from evalhub.execution import RayExecutor
    from evalhub.orchestrator import run_experiment

    hub = evalhub.connect(home=work / "home", project=f"bench{uuid.uuid4().hex[:6]}")
    out = work / "tiny"
    if not (out / "step-300").is_dir():
        print("training the tiny model…", flush=True)
        tiny.build(out, steps=300, save_every=300)
    ckpt = out / "step-300"
    hub.register_family("tiny-gpt", modality="llm")
    hub.register_model("tiny-gpt", family="tiny-gpt", runtime="hf")
    hub.register_checkpoint("tiny-gpt", "step-300", uri=str(ckpt), step=300)
    # four tasks: the two arithmetic tasks on two data sets each
    names = []
    for seed in (0, 1):
        paths = tiny.write_tasks(work / f"data-{seed}", n=max(args.limit, 50), seed=seed)
        for base in ("arith-add", "arith-mc"):  # the two arithmetic tasks (write_tasks writes more)
            path = paths[base]
            name = f"{base}-{seed}"
            kw: dict[str, object] = {"prompt": "{{question}}", "metrics": None}
            if base == "arith-add":
                kw.update(target="{{answer}}", generation={"until": ["\n"], "max_gen_toks": 8})
            else:
                kw.update(target="{{gold}}", choices="{{choices}}", output_type="multiple_choice")
            hub.register_task(name, data=str(path), **kw)  # type: ignore[arg-type]
            names.append(name)
    include = work / "lm-eval-tasks"
    for name in names:
        task = hub.task(name)
        path = write_task_yaml(task["engine_config"], include)
        (include / f"{name}.yaml").write_text(path.read_text())
        path.unlink()
        path.parent.rmdir()

    executor = RayExecutor(include_dashboard=False)
    t0 = time.perf_counter()
    executor.start()
    ray_start = time.perf_counter() - t0

    def evalhub_run(tasks: list[str]) -> float:
        spec = (
            f"name: bench-{uuid.uuid4().hex[:6]}\nmodels: [{{model: tiny-gpt, checkpoints: [step-300]}}]\n"
            f"tasks: [{', '.join(tasks)}]\nconfig: {{limit: {args.limit}, batch_size: 16}}\n"
        )
        start = time.perf_counter()
        exp = run_experiment(hub, spec, executor=executor, progress=False)
        wall = time.perf_counter() - start
        if exp.status() != "completed":
            raise SystemExit(f"evalhub experiment {exp.id} ended {exp.status()}: {exp.failed_runs()}")
        return wall

    one = names[0]
    print(
        f"limit {args.limit}, checkpoint {ckpt.name}, tasks {names}; Ray start-up {ray_start:.1f}s",
        flush=True,
    )
    ours_1 = evalhub_run([one])
    peer_1 = peer(ckpt, include, one, args.limit, defaults=True)
    peer_1_fast = peer(ckpt, include, one, args.limit, defaults=False)
    ours_4 = evalhub_run(names)
    peer_4 = sum(peer(ckpt, include, n, args.limit, defaults=True) for n in names)
    peer_4_fast = sum(peer(ckpt, include, n, args.limit, defaults=False) for n in names)
    executor.shutdown()

    rows = [
        ("1 task", ours_1, peer_1, peer_1_fast, 1.10),
        ("4 tasks", ours_4, peer_4, peer_4_fast, 0.60),
    ]
    print(
        f"\n{'case':8} {'evalhub s':>10} {'lm-eval s':>10} {'ratio':>6} {'lm-eval*':>9} {'ratio*':>7} {'goal':>5}"
    )
    for case, ours, theirs, fast, goal in rows:
        print(
            f"{case:8} {ours:10.1f} {theirs:10.1f} {ours / theirs:6.2f} {fast:9.1f} {ours / fast:7.2f} "
            f"{goal:5.2f}"
        )
    print("lm-eval* = include_defaults=False (no index of lm-eval's own tasks); Ray start-up not included")
    print(json.dumps({"ray_start_s": ray_start, "rows": rows}))


if __name__ == "__main__":
    main()
