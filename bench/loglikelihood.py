"""Log-likelihood throughput: evalhub's ``hf`` adapter against lm-eval's own ``hf`` backend, same run.

    python bench/loglikelihood.py [--items 1000] [--batch-size 16] [--threads 1] [--repeats 2] [--workdir DIR]

An MMLU-shaped task (a question, four options, "Answer:", choices " A"/" B"/" C"/" D": four
log-likelihood requests per item) of ``--items`` items on the BPE tiny model (trained here unless the
workdir has it). Both sides get a model that is already loaded and the same task YAML, batch size and
seeds; each is timed over ``simple_evaluate`` alone (task building, requests, scoring), alternating,
``--repeats`` times, best of each kept. Goal: evalhub >= 1.0x lm-eval's items/s, identical scores.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TASK = "mmlu-shaped"
SUBJECTS = ("algebra", "anatomy", "astronomy", "biology", "chemistry", "economics", "geography", "law")


def write_items(path: Path, n: int, seed: int = 0) -> Path:
    """``n`` four-choice items shaped like ``cais/mmlu`` rows (question, subject, choices, answer)."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            subject = SUBJECTS[i % len(SUBJECTS)]
            a, b = rng.randint(1, 99), rng.randint(1, 99)
            right = a + b
            choices = [str(right), str(right + 1), str(right - 1), str(right + 10)]
            rng.shuffle(choices)
            words = " ".join(
                rng.choice(("the", "number", "of", "apples", "sum", "which", "is")) for _ in range(8)
            )
            row = {
                "question": f"In {subject}, {words}: what is {a}+{b}?",
                "subject": subject,
                "choices": choices,
                "answer": choices.index(str(right)),
            }
            fh.write(json.dumps(row) + "\n")
    return path


def task_config(data: Path) -> dict[str, Any]:
    """lm-eval's mmlu template over the local file."""
    return {
        "task": TASK,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "description": "The following are multiple choice questions (with answers) about mathematics.\n\n",
        "doc_to_text": "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\n"
        "D. {{choices[3]}}\nAnswer:",
        "doc_to_choice": ["A", "B", "C", "D"],
        "doc_to_target": "answer",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "num_fewshot": 0,
        "metadata": {"version": 1},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="evalhub-bench-ll-"))
    work.mkdir(parents=True, exist_ok=True)

    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from evalhub import tiny
    from evalhub.adapters import CheckpointRef, load_adapter
    from evalhub.engines.lm_eval import evaluate, summary_metrics, write_task_yaml

    torch.set_num_threads(args.threads)
    ckpt = work / "tiny" / "step-300"
    if not ckpt.is_dir():
        tiny.build(work / "tiny", steps=300, save_every=300, seed=0)
    config = task_config(write_items(work / "items.jsonl", args.items))
    task = {"name": TASK, "engine": "lm_eval", "engine_config": config}
    folder = write_task_yaml(config, work / "tasks").parent
    adapter = load_adapter(CheckpointRef("tiny-gpt", "step-300", str(ckpt), "hf"))
    peer = HFLM(pretrained=str(ckpt), batch_size=args.batch_size, device="cpu")
    model_s: dict[str, list[float]] = {"evalhub": [], "lm-eval": []}
    answer_requests = peer.loglikelihood

    def timed_requests(requests: Any, disable_tqdm: bool = False) -> Any:  # the peer's time in its model
        start = time.perf_counter()
        out = answer_requests(requests, disable_tqdm=disable_tqdm)
        model_s["lm-eval"].append(time.perf_counter() - start)
        return out

    peer.loglikelihood = timed_requests  # type: ignore[method-assign]

    def ours() -> tuple[float, Any]:
        start = time.perf_counter()
        result = evaluate(adapter, task, batch_size=args.batch_size, seed=1234, workdir=work / "ours")
        return time.perf_counter() - start, result

    def theirs() -> tuple[float, Any]:
        start = time.perf_counter()  # its task manager counts, as evalhub's evaluate builds one too
        manager = TaskManager(include_path=str(folder), include_defaults=False)
        answer = simple_evaluate(
            model=peer,
            tasks=[TASK],
            batch_size=args.batch_size,
            log_samples=True,
            task_manager=manager,
            fewshot_as_multiturn=False,
            random_seed=1234,
            numpy_random_seed=1234,
            torch_random_seed=1234,
            fewshot_random_seed=1234,
            bootstrap_iters=1000,  # as evalhub's bridge asks
        )
        return time.perf_counter() - start, answer

    times: dict[str, list[float]] = {"evalhub": [], "lm-eval": []}
    result = answer = None
    for _ in range(max(1, args.repeats)):
        seconds, answer = theirs()
        times["lm-eval"].append(seconds)
        seconds, result = ours()
        times["evalhub"].append(seconds)
        model_s["evalhub"].append(adapter.stats.busy_s)
    assert result is not None and answer is not None

    direct = {s["doc_id"]: [r[0] for r in s["filtered_resps"]] for s in answer["samples"][TASK]}
    worst = max(
        abs(a - b)
        for s in result.samples
        for a, b in zip(s["extra"]["loglikelihoods"], direct[s["index"]], strict=True)
    )
    same_choice = sum(
        s["scores"]["acc"] == next(r for r in answer["samples"][TASK] if r["doc_id"] == s["index"])["acc"]
        for s in result.samples
    )
    ours_acc, theirs_acc = result.metrics["acc"], summary_metrics(answer["results"][TASK])["acc"]
    best = {k: min(v) for k, v in times.items()}
    n_req = 4 * args.items
    print(f"MMLU-shaped log-likelihood task: {args.items} items x 4 choices = {n_req} requests, "
          f"batch size {args.batch_size}, {args.threads} torch thread(s), best of {len(times['evalhub'])}")  # fmt: skip
    print(f"{'':12}{'seconds':>10}{'items/s':>10}{'requests/s':>12}{'acc':>8}")
    for name, acc in (("lm-eval hf", theirs_acc), ("evalhub hf", ours_acc)):
        key = "lm-eval" if name.startswith("lm-eval") else "evalhub"
        sec = best[key]
        print(f"{name:12}{sec:>10.2f}{args.items / sec:>10.1f}{n_req / sec:>12.1f}{acc:>8.4f}")
    print(f"evalhub / lm-eval throughput: {best['lm-eval'] / best['evalhub']:.2f}x (goal >= 1.0x)")
    in_model = {k: min(v) for k, v in model_s.items()}
    print(f"of which answering the requests (tokenizing, forward passes, scoring): lm-eval "
          f"{in_model['lm-eval']:.2f}s, evalhub {in_model['evalhub']:.2f}s, "
          f"{in_model['lm-eval'] / in_model['evalhub']:.2f}x; the rest is lm-eval building the prompts, the same on both")  # fmt: skip
    print(f"scores identical: acc {ours_acc == theirs_acc}, same verdict on {same_choice}/{len(result.samples)} "
          f"items, largest log-likelihood difference {worst:.2e}")  # fmt: skip
    print(f"evalhub per-request latency p50/p95/p99: {result.perf['latency_p50_ms']:.1f}/"
          f"{result.perf['latency_p95_ms']:.1f}/{result.perf['latency_p99_ms']:.1f} ms "
          f"(the forward pass that scored each request); all runs: {json.dumps(times)}")  # fmt: skip


if __name__ == "__main__":
    main()
