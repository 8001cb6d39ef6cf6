"""A pairwise judge's throughput beside the same prompts run through the ``hf`` adapter directly.

    python bench/judge_throughput.py [--pairs 1000] [--workdir DIR]

Two checkpoints of the tiny model answer ``--pairs`` arithmetic questions (an evalhub experiment);
then a pairwise judge (the tiny model, ``hf`` runtime, on a local Ray worker) judges every pair in both
orders: ``2 x pairs`` judge calls, each stored with its prompt, raw answer and parsed verdict. The peer
is the judge's own rendered prompts, read back from the stored calls, given to ``HFAdapter.generate``
in this process with the same batch size and token budget: batched, no per-call overhead. Both sides
count their model load and use the machine's cores (the judge's worker asks for all of them: Ray gives
an actor one torch thread per CPU it asks for); the peer's process has torch imported already, the
judge's worker imports it. (The tiny model is no judge: its answers are not verdicts, so scores are
null; what is measured is the pipeline's cost per call.) Goal (issue 12): evalhub's calls/s >= 0.9x
the adapter's. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

from _peers import evalhub_server, machine

BATCH = 16
TOKENS = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    import evalhub
    from evalhub import tiny
    from evalhub.adapters.base import CheckpointRef, GenerationParams
    from evalhub.adapters.hf import HFAdapter
    from evalhub.execution import RayExecutor
    from evalhub.scorers import Judge

    work = args.workdir or Path(tempfile.mkdtemp(prefix="evalhub-judge-"))
    models = work / "tiny"
    if not (models / "step-300").is_dir():
        print("training the tiny model…", flush=True)
        tiny.build(models, steps=300, save_every=100)
    with evalhub_server(f"sqlite:///{work / f'evalhub-{uuid.uuid4().hex[:6]}.db'}", work) as url:
        hub = evalhub.connect(url, project="judge-bench")
        tiny.write_tasks(work / "tasks", n=args.pairs)
        tiny.register_tasks(hub, work / "tasks")
        hub.register_family("tiny-gpt", modality="llm")
        hub.register_model("tiny-gpt", family="tiny-gpt", runtime="hf")
        for step in (100, 300):
            hub.register_checkpoint("tiny-gpt", f"step-{step}", uri=str(models / f"step-{step}"), step=step)
        hub.register_model("tiny-judge", family="tiny-gpt", runtime="hf")
        hub.register_checkpoint("tiny-judge", "step-300", uri=str(models / "step-300"), step=300)
        spec = (
            f"name: judged-{uuid.uuid4().hex[:6]}\nmodels: [{{model: tiny-gpt, checkpoints: [step-100, step-300]}}]\n"
            f"tasks: [arith-add]\nconfig: {{limit: {args.pairs}, batch_size: 32}}\n"
        )
        executor = RayExecutor(include_dashboard=False, num_cpus=2)
        executor.start()
        exp = hub.run_experiment(spec, executor=executor, progress=False)
        # the judge's worker gets the machine's cores, as the in-process peer has them (Ray gives an
        # actor as many torch threads as CPUs it asks for: one by default)
        cpus = os.cpu_count() or 1
        judge = Judge("tiny-judge/step-300", mode="pairwise", baseline="step-100", max_new_tokens=TOKENS,
                      batch_size=BATCH, resources={"cpus_per_worker": cpus, "gpus_per_worker": 0})  # fmt: skip
        t0 = time.perf_counter()
        scored = exp.score(judge, executor=executor)
        judged = time.perf_counter() - t0
        candidate = int(scored["run_id"][0])
        calls = exp.judge_calls(candidate)
        executor.shutdown()
        prompts = calls["prompt"].to_list()
        hub.close()
    t0 = time.perf_counter()
    adapter = HFAdapter()
    adapter.load(
        CheckpointRef(model="tiny-judge", name="step-300", uri=str(models / "step-300"), runtime="hf")
    )
    adapter.set_batch_size(BATCH)
    answers = adapter.generate(prompts, GenerationParams(max_new_tokens=TOKENS))
    direct = time.perf_counter() - t0
    n = len(prompts)
    print(
        f"\n== pairwise judge, {args.pairs} pairs ({n} calls), batch {BATCH}, {TOKENS} new tokens ({machine()}) =="
    )
    print(f"{'':52} {'s':>7} {'calls/s':>9}")
    print(f"{'evalhub exp.score(Judge(..., mode=pairwise))':52} {judged:>7.1f} {n / judged:>9.1f}")
    print(
        f"{'HFAdapter.generate on the same prompts (in process)':52} {direct:>7.1f} {len(answers) / direct:>9.1f}"
    )
    print(f"evalhub: {direct / judged:.2f}x the adapter's calls/s (goal >= 0.9x); stored calls {calls.height}, "
          f"unparsed {calls['verdict'].null_count()}")  # fmt: skip


if __name__ == "__main__":
    main()
