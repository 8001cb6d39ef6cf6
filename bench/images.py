"""ImageGrid in a real browser over a large text-to-image experiment: time to the first page, per page turn.

Writes 1,000 prompts x 4 runs (an image and its 64 px thumbnail per prompt and run, as workers store
them: PNG artifacts of the run, samples naming them) into a real tracking server, opens JupyterLab 4.6
in headless Chromium, runs ``evalhub.images(...)`` and times, inside the page, from the action until
every thumbnail of the page is decoded on screen:

- first page: executing the grid's cell until the first page's thumbnails are shown;
- page turn: clicking "next" until the next page's thumbnails are shown (after a pause on each page,
  as a reader makes, and back to back), and a filter (runs disagree on correctness).

The peer is what a grid without server-side paging must do first: read every aligned sample and
download every run's thumbnails through the API before it can show one page. Goals: first page within
1 s, each page turn within 300 ms. Prints figures, asserts nothing.

    python bench/images.py                     # 1,000 prompts x 4 runs on SQLite
    python bench/images.py --prompts 200 --turns 5
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _imagedata import png
from _lab import Lab, browser, screenshot, write_notebook
from _widgetdata import post_events, register_tiny

from widgets import RUN_SECOND_CELL, ms, open_warm, start_server, timed


def populate(hub: Any, prompts: int, runs: int) -> int:
    """A finished T2I experiment of ``runs`` checkpoints on one task of ``prompts`` prompts; its id."""
    steps = tuple((r + 1) * 100 for r in range(runs))
    register_tiny(hub, steps)
    body = {"name": "bench-images", "client_key": uuid.uuid4().hex,
            "runs": [{"name": f"t2i@{s}", "type": "offline_eval", "model": "tiny-gpt", "checkpoint": f"step-{s}",
                      "runtime": "diffusers", "task": "shapes"} for s in steps]}  # fmt: skip
    exp = hub.client.post("/experiments", body)
    with ThreadPoolExecutor(8) as pool:
        for r, run in enumerate(exp["runs"]):
            samples, uploads = [], []
            for j in range(prompts):
                image = f"img-{j:05d}.png"
                colour = ((37 * j) % 255, (80 * r) % 255, (11 * j + 90) % 255)
                uploads.append((f"/runs/{run['id']}/artifacts/{image}", png(colour, 32)))
                uploads.append((f"/runs/{run['id']}/artifacts/{image[:-4]}.thumb.png", png(colour, 64)))
                correct = 1.0 if (j + r) % 3 else 0.0
                samples.append({
                    "sample_key": f"p{j:05d}", "index": j, "prompt": f"a shape number {j}", "output": image,
                    "scores": {"correct": correct, "clip_score": float((j * 7 + r * 3) % 50)},
                    "primary_score": correct, "extra": {"seed": 1000 + j, "settings": {"steps": 15}, "image": image},
                })  # fmt: skip
            list(pool.map(lambda u: hub.client.put_bytes(*u), uploads))
            post_events(hub, run["id"], [{"type": "status", "status": "running"},
                                         {"type": "samples", "samples": samples},
                                         {"type": "status", "status": "completed"}])  # fmt: skip
    return int(exp["id"])


def load_all(hub: Any, exp_id: int) -> tuple[float, int]:
    """The peer: every aligned sample, then every thumbnail, before a page is shown. (seconds, thumbnails)."""
    t0 = time.perf_counter()
    offset, total, names = 0, None, []
    while total is None or offset < total:
        page = hub.client.get(f"/experiments/{exp_id}/samples", limit=1000, offset=offset)
        total = int(page["total"])
        offset += len(page["items"])
        for item in page["items"]:
            for run_id, cell in (item.get("outputs") or {}).items():
                image = str(cell.get("output") or "")
                if image.endswith(".png"):
                    names.append(f"/runs/{run_id}/artifacts/{image[:-4]}.thumb.png")
        if not page["items"]:
            break
    with ThreadPoolExecutor(4) as pool:
        got = sum(1 for _ in pool.map(lambda p: hub.client.request("GET", p, raw=True), names))
    return time.perf_counter() - t0, got


def shown(offset: int, limit: int) -> str:
    """The page at ``offset`` is rendered, not loading, and every thumbnail of it is decoded."""
    return (
        f"const g = document.querySelector('.evh-images'); if (!g || g.dataset.offset !== '{offset}' || "
        "g.dataset.loading !== 'false') return false; const t = [...g.querySelectorAll('img.evh-thumb')];"
        " return t.length > 0 && t.every(i => i.complete && i.naturalWidth > 0);"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--limit", type=int, default=12, help="prompts per page (the grid's default)")
    ap.add_argument("--turns", type=int, default=15)
    ap.add_argument("--think", type=float, default=1.0, help="seconds spent on a page before 'next'")
    ap.add_argument("--db", help="a database URL (default: a SQLite file)")
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
            exp_id = populate(hub, args.prompts, args.runs)
            print(f"wrote {args.prompts:,} prompts x {args.runs} runs ({2 * args.prompts * args.runs:,} PNG "
                  f"artifacts) in {time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
            root = folder / "lab"
            root.mkdir()
            write_notebook(
                root / "bench.ipynb",
                [f"import evalhub, evalhub.widgets._images\nhub = evalhub.connect({url!r}, project='bench')",
                 f"evalhub.images({exp_id}, hub=hub, baseline='step-100', limit={args.limit})"],
            )  # fmt: skip
            lab = Lab(root, env={"EVALHUB_HOME": str(folder / "home")}).start()
            with browser() as page:
                open_warm(page, lab, "bench.ipynb")
                first = timed(
                    page,
                    RUN_SECOND_CELL,
                    shown(0, args.limit),
                )
                nxt = "document.querySelector('.evh-images .evh-next').click()"
                turns = []
                for i in range(1, args.turns + 1):
                    time.sleep(args.think)
                    turns.append(timed(page, nxt, shown(i * args.limit, args.limit)))
                rapid = [timed(page, nxt, shown(i * args.limit, args.limit))
                         for i in range(args.turns + 1, args.turns + 6)]  # fmt: skip
                mixed = timed(
                    page,
                    "const s = document.querySelector('.evh-images select.evh-filter'); s.value = 'mixed';"
                    " s.dispatchEvent(new Event('change', {bubbles: true}));",
                    shown(0, args.limit),
                )
                screenshot(page, "bench-images", page.locator(".evh-images"))
            lab.stop()
            lab = None
            peer_s, peer_thumbs = load_all(hub, exp_id)
        finally:
            if lab is not None:
                lab.stop()
            server.terminate()
            server.wait(timeout=30)

    db = "MySQL/MariaDB" if args.db else "SQLite"
    print()
    print(f"ImageGrid over {args.prompts:,} prompts x {args.runs} runs ({db}, JupyterLab 4.6, headless Chromium, "
          f"{args.limit} prompts/page)")  # fmt: skip
    print(f"{'':34}{'evalhub (paged on the server)':36}peer: load every sample and thumbnail first")
    print(
        f"{'first page (goal <= 1 s)':34}{first / 1000:.2f} s{'':29}{peer_s:.1f} s ({peer_thumbs:,} thumbnails)"
    )
    print(f"{'page turn (goal <= 300 ms)':34}{ms(turns):36}(client-side once loaded)")
    print(f"{'':34}(after {args.think:g} s on each page: the next one is prefetched while reading)")
    print(f"{'page turn, clicks back to back':34}{ms(rapid)}")
    print(f"{'filter: runs disagree':34}{mixed:.0f} ms")


if __name__ == "__main__":
    main()
