"""FID of generated images against references: evalhub's metric step against torchmetrics called directly.

    python bench/t2i_fid.py [--n 1000] [--checkpoint DIR] [--batch 50]

Generates ``--n`` images with the tiny T2I model (its last checkpoint; built in a temporary folder when
``--checkpoint`` is not given) for ``--n`` prompts of the shapes prompt set, and takes the prompts'
``--n`` reference images. Then, on the same uint8 tensors:

- evalhub: ``evalhub.t2i.metrics``: Inception features of both sets, then torchmetrics' FID of them;
- torchmetrics: ``FrechetInceptionDistance(feature=<the same Inception>)``, updated batch by batch.

Goal: evalhub within 1.1x of torchmetrics. Prints figures side by side; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def main() -> None:
    import numpy as np
    import torch
    from PIL import Image
    from torchmetrics.image.fid import FrechetInceptionDistance

    from evalhub import t2i
    from evalhub.adapters import CheckpointRef, load_adapter
    from evalhub.adapters.diffusers import DiffusersAdapter, ImageParams
    from evalhub.t2i import metrics

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--checkpoint", type=Path, default=None, help="a tiny T2I pipeline folder")
    parser.add_argument("--batch", type=int, default=50, help="images per Inception batch")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="evalhub-t2i-fid-"))
    start = time.perf_counter()
    checkpoint = args.checkpoint
    if checkpoint is None:
        build = t2i.build(work / "model", prompts=8)
        checkpoint = build.checkpoints[max(build.checkpoints)]
        print(f"built the tiny T2I model in {time.perf_counter() - start:.0f}s")
    prompts_file = t2i.write_prompt_set(work / "prompts", n=args.n, seed=1)
    rows = [json.loads(line) for line in prompts_file.read_text().splitlines()]
    reference = torch.from_numpy(
        np.stack([np.asarray(Image.open(prompts_file.parent / r["reference"]).convert("RGB")) for r in rows])
    ).permute(0, 3, 1, 2)
    adapter = load_adapter(CheckpointRef("tiny-t2i", checkpoint.name, str(checkpoint), "diffusers"))
    assert isinstance(adapter, DiffusersAdapter)
    t0 = time.perf_counter()
    images = adapter.generate_images([r["prompt"] for r in rows], ImageParams(steps=15, batch_size=64))
    print(f"generated {len(images)} images in {time.perf_counter() - t0:.0f}s")
    generated = torch.from_numpy(np.stack([g.pixels for g in images])).permute(0, 3, 1, 2).contiguous()
    network = metrics.inception_network()

    t0 = time.perf_counter()
    ours = metrics.fid_from_features(
        metrics.extract_features(generated, network, args.batch),
        metrics.extract_features(reference, network, args.batch),
    )
    t_ours = time.perf_counter() - t0

    t0 = time.perf_counter()
    fid = FrechetInceptionDistance(feature=network)
    for i in range(0, reference.shape[0], args.batch):
        fid.update(reference[i : i + args.batch], real=True)
    for i in range(0, generated.shape[0], args.batch):
        fid.update(generated[i : i + args.batch], real=False)
    theirs = float(fid.compute())
    t_theirs = time.perf_counter() - t0

    print(f"FID, {args.n} generated vs {args.n} references, feature network: {metrics.FEATURE_NETWORK}")
    print(f"{'':28}{'seconds':>10}{'FID':>12}")
    print(f"{'evalhub.t2i.metrics':28}{t_ours:>10.1f}{ours:>12.4f}")
    print(f"{'torchmetrics directly':28}{t_theirs:>10.1f}{theirs:>12.4f}")
    print(f"evalhub / torchmetrics: {t_ours / t_theirs:.3f}x (goal <= 1.1x)")


if __name__ == "__main__":
    main()
