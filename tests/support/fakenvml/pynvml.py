"""A stand-in ``pynvml`` for workers on machines without GPUs: ``FAKE_GPUS`` (default 0)
H100s, idle. Put this directory first on a worker's ``PYTHONPATH``."""

import os
import types

_N = int(os.environ.get("FAKE_GPUS") or 0)


class NVMLError(Exception):
    pass


def nvmlInit():
    if not _N:
        raise NVMLError("NVML Shared Library Not Found")


def nvmlShutdown():
    pass


def nvmlDeviceGetCount():
    return _N


def nvmlDeviceGetHandleByIndex(i):
    return i


def nvmlDeviceGetUUID(h):
    return f"GPU-fake-{os.getpid()}-{h}"


def nvmlDeviceGetName(h):
    return "NVIDIA H100 80GB HBM3"


def nvmlDeviceGetMemoryInfo(h):
    return types.SimpleNamespace(total=80 << 30, used=1 << 30, free=79 << 30)


def nvmlDeviceGetUtilizationRates(h):
    return types.SimpleNamespace(gpu=0, memory=0)
