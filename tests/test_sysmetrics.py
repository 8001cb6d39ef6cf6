"""System metrics. The GPU part stands on a fake NVML here (no GPU on this machine); the real NVML path
runs on a lent GPU (bench/gpu_check.py)."""

from __future__ import annotations

from typing import Any

import pytest

from evalhub import sysmetrics


class FakeNvml:
    """Two GPUs as NVML sees them: every GPU of the machine, whatever CUDA_VISIBLE_DEVICES says."""

    uuids = ("GPU-aaaa", "GPU-bbbb")

    def nvmlDeviceGetCount(self) -> int:
        return len(self.uuids)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> str:
        return self.uuids[i]

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> str:
        if uuid not in self.uuids:
            raise RuntimeError("not found")
        return uuid

    def nvmlDeviceGetUUID(self, handle: str) -> bytes:
        return handle.encode()

    def nvmlDeviceGetUtilizationRates(self, handle: str) -> Any:
        return type("Util", (), {"gpu": 50 if handle.endswith("a") else 7})()

    def nvmlDeviceGetMemoryInfo(self, handle: str) -> Any:
        return type("Mem", (), {"used": 2 * 2**20})()


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    nvml = FakeNvml()
    monkeypatch.setattr(sysmetrics, "_nvml", lambda: nvml)
    return nvml


def test_snapshot_has_cpu_and_memory_of_this_process() -> None:
    values = sysmetrics.snapshot()
    assert values["sys/rss_mb"] > 1
    assert "sys/cpu_percent" in values


@pytest.mark.parametrize(
    ("visible", "expected"),
    [
        (None, {"GPU-aaaa", "GPU-bbbb"}),
        ("1", {"GPU-bbbb"}),
        ("GPU-aaaa", {"GPU-aaaa"}),
        ("", set()),
        ("1,bogus,0", {"GPU-bbbb"}),  # CUDA stops at the first entry it cannot parse
    ],
)
def test_gpu_metrics_follow_cuda_visible_devices_and_are_keyed_by_uuid(
    fake_nvml: FakeNvml, monkeypatch: pytest.MonkeyPatch, visible: str | None, expected: set[str]
) -> None:
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    values = sysmetrics.gpu_snapshot()
    assert {key.split("/")[2] for key in values} == expected
    for uuid in expected:
        assert values[f"sys/gpu/{uuid}/mem_mb"] == 2.0


def test_no_gpu_gives_no_gpu_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sysmetrics, "_nvml", lambda: None)
    assert sysmetrics.gpu_snapshot() == {}
