"""On a lent GPU: the NVML path of evalhub.sysmetrics, checked against what PyTorch sees.

    PYTHONPATH=. python3 bench/gpu_check.py

Prints each check with ok/FAIL and exits non-zero on a failure. Not a benchmark: a check that needs a GPU.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    import torch

    from evalhub import sysmetrics

    failures = 0

    def check(what: str, ok: bool, detail: object = "") -> None:
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what} {detail}")

    props = torch.cuda.get_device_properties(0)
    uuid = "GPU-" + str(props.uuid)
    print(f"device: {props.name}, torch uuid {uuid}")
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    torch.zeros(1, device="cuda")  # the CUDA context takes its own few hundred MB: count it before
    torch.cuda.synchronize()
    before = sysmetrics.gpu_snapshot()
    check(
        "NVML reports the GPU PyTorch sees, keyed by its UUID",
        f"sys/gpu/{uuid}/mem_mb" in before,
        sorted(before),
    )
    block = torch.empty(2 * 2**30, dtype=torch.uint8, device="cuda")
    block.fill_(1)
    torch.cuda.synchronize()
    after = sysmetrics.gpu_snapshot()
    grew = after[f"sys/gpu/{uuid}/mem_mb"] - before[f"sys/gpu/{uuid}/mem_mb"]
    check("a 2 GiB allocation shows in mem_mb", 1800 < grew < 2600, f"+{grew:.0f} MB")
    for visible, expect in (("0", {uuid}), (uuid, {uuid}), ("", set())):
        os.environ["CUDA_VISIBLE_DEVICES"] = visible
        keys = {k.split("/")[2] for k in sysmetrics.gpu_snapshot()}
        check(f"CUDA_VISIBLE_DEVICES={visible!r}", keys == expect, sorted(keys))
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    snap = sysmetrics.snapshot()
    check(
        "snapshot() has cpu, rss and GPU keys", {"sys/cpu_percent", "sys/rss_mb"} <= set(snap), sorted(snap)
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
