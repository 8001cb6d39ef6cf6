"""OutputDiff in a real browser over a large experiment: time to the first page, and per page turn.

Inserts N samples x R runs (default 100,000 x 4) through the client's events API into a real
tracking server (SQLite file by default, or --db mysql+pymysql://...), opens JupyterLab 4.6 in headless
Chromium, runs ``%evalhub diff`` and times, inside the page, from the action to the rendered page:

- first page: executing the ``%evalhub diff`` cell until the first samples are on screen;
- page turn: clicking "next" until the next page is rendered (also: filter, search, last page).

The peer is what a widget without server-side paging must do first: pull every aligned sample of the
task through the API (pages of 1000, the largest the server allows) before it can show one.
Goals: first page within 1 s, each page turn within 200 ms. Prints figures, asserts nothing.

    python bench/widgets.py                  # 100,000 x 4 on SQLite
    python bench/widgets.py --samples 20000 --turns 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _lab import Lab, browser, kernel_idle, screenshot, write_notebook

# Run one action in the page and wait (requestAnimationFrame polling) until `done()` holds; ms.
_TIMED = """async ([action, done, timeoutMs]) => {
  const act = new Function(action), ok = new Function(done);
  const t0 = performance.now();
  act();
  await new Promise((resolve, reject) => {
    const check = () => {
      if (ok()) return resolve();
      if (performance.now() - t0 > timeoutMs) return reject(new Error('timed out: ' + done));
      requestAnimationFrame(check);
    };
    check();
  });
  return performance.now() - t0;
}"""


def start_server(folder: Path, db: str | None) -> tuple[subprocess.Popen[bytes], str]:
    ready = folder / "ready.json"
    db_url = db or f"sqlite:///{folder / 'evalhub.db'}"
    args = [sys.executable, "-m", "evalhub_server", "--db", db_url, "--port", "0", "--ready-file", str(ready),
            "--artifacts", str(folder / "artifacts")]  # fmt: skip
    log = open(folder / "server.log", "ab")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"server did not start: {(folder / 'server.log').read_text()[-2000:]}")
        time.sleep(0.1)
    time.sleep(0.2)
    return proc, json.loads(ready.read_text())["url"]


def populate(hub: Any, samples: int, runs: int, batch: int = 5000) -> int:
    """One experiment, ``runs`` checkpoints on one task, ``samples`` samples each; returns its id."""
    hub.register_family("bench", modality="llm")
    hub.register_model("bench-model", family="bench", runtime="hf")
    for r in range(runs):
        hub.register_checkpoint(
            "bench-model", f"step-{(r + 1) * 100}", uri=f"/data/step-{(r + 1) * 100}", step=(r + 1) * 100
        )
    body = {
        "name": "bench-diff",
        "spec": {},
        "spec_yaml": "",
        "config": {},
        "client_key": str(uuid.uuid4()),
        "runs": [
            {
                "name": f"step-{(r + 1) * 100}",
                "type": "inference",
                "model": "bench-model",
                "checkpoint": f"step-{(r + 1) * 100}",
                "runtime": "hf",
                "task": "arith",
            }
            for r in range(runs)
        ],
    }
    exp = hub.client.post("/api/experiments", body)
    for r, run in enumerate(exp["runs"]):
        seq = 1
        hub.client.post(
            f"/api/runs/{run['id']}/events",
            {"stream": "bench", "events": [{"seq": seq, "type": "status", "status": "running"}]},
        )
        for start in range(0, samples, batch):
            seq += 1
            rows = []
            for j in range(start, min(samples, start + batch)):
                right = j % (r + 2) != 0
                rows.append(
                    {
                        "sample_key": f"doc-{j}",
                        "index": j,
                        "prompt": f"Question: what is {j} plus {j}? Think step by step.\nAnswer:",
                        "reference": str(2 * j),
                        "output": f"The answer is {2 * j if right else 2 * j + r + 1}.",
                        "filtered_output": str(2 * j if right else 2 * j + r + 1),
                        "scores": {"exact_match": 1.0 if right else 0.0},
                        "primary_score": 1.0 if right else 0.0,
                    }
                )
            hub.client.post(
                f"/api/runs/{run['id']}/events",
                {"stream": "bench", "events": [{"seq": seq, "type": "samples", "samples": rows}]},
            )
        hub.client.post(
            f"/api/runs/{run['id']}/events",
            {"stream": "bench", "events": [{"seq": seq + 1, "type": "status", "status": "completed"}]},
        )
    return int(exp["id"])


def load_all(hub: Any, exp_id: int, budget_s: float) -> tuple[float, int, bool]:
    """The peer: fetch every aligned sample (pages of 1000) before showing any. (seconds, rows, finished)."""
    t0 = time.perf_counter()
    offset, total = 0, None
    while total is None or offset < total:
        page = hub.client.get(f"/api/experiments/{exp_id}/samples", limit=1000, offset=offset)
        total = int(page["total"])
        offset += len(page["items"])
        if not page["items"] or time.perf_counter() - t0 > budget_s:
            break
    return time.perf_counter() - t0, offset, offset >= (total or 0)


def timed(page: Any, action: str, done: str, timeout_ms: int = 120_000) -> float:
    return float(page.evaluate(_TIMED, [action, done, timeout_ms]))


RUN_SECOND_CELL = (
    "const nb = window.jupyterapp.shell.currentWidget.content; nb.activeCellIndex = 1;"
    " window.jupyterapp.commands.execute('notebook:run-cell');"
)
"""The action that runs a notebook's second cell (the one timed)."""


def open_warm(page: Any, lab: Any, name: str) -> None:
    """Open notebook ``name`` in JupyterLab and run its first cell (imports, connection), so that the
    second cell is timed alone."""
    page.goto(lab.notebook_url(name), timeout=180_000)
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=180_000
    )
    kernel_idle(page)
    page.evaluate(
        "() => { const nb = window.jupyterapp.shell.currentWidget.content; nb.activeCellIndex = 0; "
        "return window.jupyterapp.commands.execute('notebook:run-cell'); }"
    )
    kernel_idle(page)


def ms(values: list[float]) -> str:
    """Median, p95 and max of timings in milliseconds."""
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):.0f} / p95 {p95:.0f} / max {ordered[-1]:.0f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--limit", type=int, default=20, help="samples per page")
    ap.add_argument("--db", help="a database URL (default: a SQLite file)")
    ap.add_argument("--think", type=float, default=1.0, help="seconds spent on a page before 'next'")
    ap.add_argument(
        "--peer-budget", type=float, default=300.0, help="stop the load-all peer after this many seconds"
    )
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from evalhub.hub import connect

    with tempfile.TemporaryDirectory(prefix="evalhub-bench-") as tmp:
        folder = Path(tmp)
        server, url = start_server(folder, args.db)
        lab = None
        try:
            hub = connect(url, project="bench")
            t0 = time.perf_counter()
            exp_id = populate(hub, args.samples, args.runs)
            insert_s = time.perf_counter() - t0
            print(
                f"inserted {args.samples:,} samples x {args.runs} runs through the events API in {insert_s:.1f} s",
                flush=True,
            )

            root = folder / "lab"
            root.mkdir()
            write_notebook(
                root / "bench.ipynb",
                [
                    f"%load_ext evalhub\n%config EvalhubMagics.url = {url!r}\n%config EvalhubMagics.project = 'bench'\nimport evalhub.widgets._diff",
                    f"%evalhub diff {exp_id} --limit {args.limit}",
                ],
            )
            lab = Lab(root, env={"EVALHUB_HOME": str(folder / "home")}).start()
            with browser() as page:
                open_warm(page, lab, "bench.ipynb")
                first = timed(
                    page,
                    RUN_SECOND_CELL,
                    "return document.querySelectorAll('.evh-diff .evh-sample').length > 0",
                )

                def turn(i: int) -> float:
                    offset = i * args.limit
                    return timed(
                        page,
                        "document.querySelector('.evh-diff .evh-toolbar .evh-next').click()",
                        f"const d = document.querySelector('.evh-diff'); return d.dataset.offset === '{offset}'"
                        " && d.dataset.loading === 'false'"
                        f" && d.querySelector('.evh-sample').dataset.key === 'doc-{offset}'",
                    )

                turns = []  # a reader: a pause on each page before "next"
                for i in range(1, args.turns + 1):
                    time.sleep(args.think)
                    turns.append(turn(i))
                rapid = [turn(i) for i in range(args.turns + 1, args.turns + 6)]  # clicks back to back
                last_offset = ((args.samples - 1) // args.limit) * args.limit
                last = timed(
                    page,
                    "document.querySelector('.evh-diff .evh-toolbar .evh-last').click()",
                    f"const d = document.querySelector('.evh-diff'); return d.dataset.offset === '{last_offset}' && d.dataset.loading === 'false'",
                )
                disagree = timed(
                    page,
                    "document.querySelector('.evh-diff button[data-filter=\"disagree\"]').click()",
                    "const d = document.querySelector('.evh-diff'); return d.dataset.filter === 'disagree' && d.dataset.loading === 'false'",
                )
                total_disagree = page.eval_on_selector(".evh-diff", "d => d.dataset.total")
                disagree_turns = [
                    timed(
                        page,
                        "document.querySelector('.evh-diff .evh-toolbar .evh-next').click()",
                        f"const d = document.querySelector('.evh-diff'); return d.dataset.offset === '{i * args.limit}' && d.dataset.loading === 'false'",
                    )
                    for i in range(1, min(args.turns, 10) + 1)
                ]
                screenshot(page, "bench-diff", page.locator(".evh-diff"))
            lab.stop()
            lab = None
            peer_s, peer_rows, peer_done = load_all(hub, exp_id, args.peer_budget)
        finally:
            if lab is not None:
                lab.stop()
            server.terminate()
            server.wait(timeout=30)

    peer = f"{peer_s:.1f} s ({peer_rows:,} aligned samples in pages of 1000)" + (
        "" if peer_done else " - stopped at the budget"
    )
    db = "MySQL/MariaDB" if args.db else "SQLite"
    print()
    print(
        f"OutputDiff over {args.samples:,} samples x {args.runs} runs ({db}, JupyterLab 4.6, headless Chromium, {args.limit}/page)"
    )
    print(f"{'':34}{'evalhub (paged on the server)':36}peer: load every sample first")
    print(f"{'first page (goal <= 1 s)':34}{first / 1000:.2f} s{'':29}{peer}")
    print(f"{'page turn (goal <= 200 ms)':34}{ms(turns):36}(client-side once loaded)")
    print(f"{'':34}(after {args.think:g} s on each page: the next one is prefetched while reading)")
    print(f"{'page turn, clicks back to back':34}{ms(rapid)}")
    print(f"{'jump to last page':34}{last:.0f} ms")
    print(f"{'filter: runs disagree':34}{disagree:.0f} ms ({int(total_disagree):,} samples)")
    print(f"{'page turn, filtered':34}{ms(disagree_turns)}")


if __name__ == "__main__":
    main()
