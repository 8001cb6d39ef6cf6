"""System metrics: CPU and memory of this process (psutil), and per GPU by UUID (nvidia-ml-py).

Keys follow docs/rest-api.md: ``sys/cpu_percent``, ``sys/rss_mb``, ``sys/gpu/<uuid>/util``,
``sys/gpu/<uuid>/mem_mb``. Without a GPU (or without nvidia-ml-py) the GPU keys are simply absent.

>>> snapshot()
{'sys/cpu_percent': 12.5, 'sys/rss_mb': 211.3}
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import psutil

log = logging.getLogger("evalhub.sysmetrics")

_PROCESS: psutil.Process | None = None
_NVML: Any = None  # the pynvml module once initialised; False when unavailable


def _process() -> psutil.Process:
    global _PROCESS
    if _PROCESS is None:
        _PROCESS = psutil.Process()
        _PROCESS.cpu_percent(None)  # the first reading is meaningless: prime it
    return _PROCESS


def _nvml() -> Any:
    """The initialised ``pynvml`` module, or None when there is no NVIDIA driver/GPU."""
    global _NVML
    if _NVML is None:
        try:
            import pynvml

            pynvml.nvmlInit()
            _NVML = pynvml
        except Exception as exc:  # no library, no driver, no GPU: skip GPU keys cleanly
            log.debug("no GPU metrics: %s", exc)
            _NVML = False
    return _NVML or None


def _visible_handles(nvml: Any) -> list[Any]:
    """NVML handles of the GPUs this process may use.

    NVML numbers every GPU of the machine and ignores ``CUDA_VISIBLE_DEVICES``, which Ray sets per worker
    (indices or UUIDs); so the visible set is resolved here, and metrics are keyed by UUID, never index.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
    handles = []
    for entry in (e.strip() for e in visible.split(",")):
        if not entry:
            continue
        if entry.isdigit():
            handles.append(nvml.nvmlDeviceGetHandleByIndex(int(entry)))
        elif entry.startswith(("GPU-", "MIG-")):
            handles.append(nvml.nvmlDeviceGetHandleByUUID(entry))
        else:  # CUDA stops at the first entry it cannot parse
            break
    return handles


def gpu_snapshot() -> dict[str, float]:
    """``sys/gpu/<uuid>/util`` (percent) and ``sys/gpu/<uuid>/mem_mb`` for every GPU this process sees."""
    nvml = _nvml()
    if nvml is None:
        return {}
    out: dict[str, float] = {}
    try:
        for handle in _visible_handles(nvml):
            uuid = nvml.nvmlDeviceGetUUID(handle)
            if isinstance(uuid, bytes):
                uuid = uuid.decode()
            util = nvml.nvmlDeviceGetUtilizationRates(handle)
            mem = nvml.nvmlDeviceGetMemoryInfo(handle)
            out[f"sys/gpu/{uuid}/util"] = float(util.gpu)
            out[f"sys/gpu/{uuid}/mem_mb"] = float(mem.used) / 2**20
    except Exception as exc:  # a GPU that vanished or a driver error: report what we have
        log.debug("GPU metrics failed: %s", exc)
    return out


def snapshot() -> dict[str, float]:
    """One reading of every system metric available here."""
    proc = _process()
    values = {
        "sys/cpu_percent": float(proc.cpu_percent(None)),
        "sys/rss_mb": float(proc.memory_info().rss) / 2**20,
    }
    values.update(gpu_snapshot())
    return values


class Sampler:
    """A daemon thread calling ``emit(index, snapshot())`` every ``interval`` seconds until stopped."""

    def __init__(self, emit: Callable[[int, dict[str, float]], None], interval: float = 10.0) -> None:
        self.emit = emit
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="evalhub-sysmetrics", daemon=True)
        self.count = 0

    def start(self) -> Sampler:
        _process()
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.emit(self.count, snapshot())
                self.count += 1
            except Exception as exc:  # never break the training loop over a metrics reading
                log.debug("system metrics sample failed: %s", exc)

    def stop(self) -> None:
        """Stop sampling (waits for the thread)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.interval + 5)


__all__ = ["Sampler", "gpu_snapshot", "snapshot"]
