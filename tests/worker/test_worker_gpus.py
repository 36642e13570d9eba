"""GPU discovery and metrics over NVML's API (a stand-in ``pynvml``: this machine has no GPU)."""

from __future__ import annotations

import sys
import types
from typing import Any

from jupyter_orch.worker.gpus import Gpus, visible_devices_restriction


def fake_nvml(count: int = 3, broken: set[int] | None = None, fail_init: bool = False) -> types.ModuleType:
    nvml = types.ModuleType("pynvml")

    def init() -> None:
        if fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    def handle(i: int) -> int:
        if i in (broken or set()):
            raise RuntimeError("GPU is lost")
        return i

    nvml.nvmlInit = init  # type: ignore[attr-defined]
    nvml.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetCount = lambda: count  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetHandleByIndex = handle  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetUUID = lambda h: f"GPU-{h}"  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetName = lambda h: b"NVIDIA H100 80GB HBM3"  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=80 << 30, used=(h + 1) << 30)  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=10 * h, memory=0)  # type: ignore[attr-defined]
    return nvml


def test_discovery_and_metrics(monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(broken={1}))
    gpus = Gpus()
    found = gpus.discover()
    assert found == [
        {"index": 0, "uuid": "GPU-0", "model": "NVIDIA H100 80GB HBM3", "memory": 80 << 30},
        {"index": 2, "uuid": "GPU-2", "model": "NVIDIA H100 80GB HBM3", "memory": 80 << 30},
    ]
    assert gpus.metrics() == [
        {"index": 0, "utilization": 0, "memory_used": 1 << 30, "memory_total": 80 << 30},
        {"index": 2, "utilization": 20, "memory_used": 3 << 30, "memory_total": 80 << 30},
    ]


def test_restrictions(monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(count=4))
    assert [g["index"] for g in Gpus().discover(only=[1, 3])] == [1, 3]
    visible = visible_devices_restriction({"CUDA_VISIBLE_DEVICES": "2, GPU-0"})
    assert visible == ["2", "GPU-0"]
    assert [g["index"] for g in Gpus().discover(visible=visible)] == [0, 2]
    assert visible_devices_restriction({}) is None


def test_no_nvml_means_no_gpus(monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(fail_init=True))
    gpus = Gpus()
    assert gpus.discover() == [] and gpus.metrics() == []
