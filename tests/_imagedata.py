"""A finished text-to-image experiment written through the API as workers write it (no model): per run,
one PNG and its thumbnail per prompt as artifacts, samples naming them, 0/1 ``correct`` and a
``clip_score``. For the ImageGrid's tests."""

from __future__ import annotations

import io
import uuid
from typing import Any

from _widgetdata import post_events, register_tiny


def png(colour: tuple[int, int, int], size: int = 32) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, format="PNG")
    return out.getvalue()


def image_experiment(hub: Any, n: int = 30, steps: tuple[int, ...] = (100, 300)) -> dict[str, Any]:
    register_tiny(hub, steps)
    runs = [{"name": f"t2i@{s}", "type": "offline_eval", "model": "tiny-gpt", "checkpoint": f"step-{s}",
             "runtime": "diffusers", "task": "shapes"} for s in steps]  # fmt: skip
    exp = hub.client.post("/experiments", {"name": "images", "client_key": uuid.uuid4().hex, "runs": runs})
    for i, run in enumerate(exp["runs"]):
        samples = []
        for j in range(n):
            image = f"img-{run['id']}-{j}.png"
            hub.client.put_bytes(f"/runs/{run['id']}/artifacts/{image}", png((40 * j % 255, 80 * i, 200)))
            hub.client.put_bytes(
                f"/runs/{run['id']}/artifacts/{image[:-4]}.thumb.png", png((40 * j % 255, 80 * i, 200), 16)
            )
            correct = 1.0 if (j + i) % 3 else 0.0
            samples.append({
                "sample_key": f"p{j:03d}", "index": j, "prompt": f"a shape number {j}", "output": image,
                "scores": {"correct": correct, "clip_score": float((j * 7 + i * 3) % 50)}, "primary_score": correct,
                "extra": {"seed": 1000 + j, "settings": {"steps": 15}, "image": image},
            })  # fmt: skip
        post_events(hub, run["id"], [{"type": "status", "status": "running"}, {"type": "samples", "samples": samples},
                                     {"type": "status", "status": "completed"}])  # fmt: skip
    return dict(exp)
