"""The GPUs of this machine, found with NVML (pynvml): discovery and live metrics.

Any NVML problem (no driver, no library, a GPU that stops answering) means "no GPUs" or
"no metrics", never a crashed worker: a CPU-only machine is a normal worker.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("jupyter_orch.worker")


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def visible_devices_restriction(env: dict[str, str] | None = None) -> list[str] | None:
    """The entries of an inherited ``CUDA_VISIBLE_DEVICES`` (indices or UUIDs), if set."""
    value = (os.environ if env is None else env).get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


class Gpus:
    """NVML, initialised once; :meth:`discover` then :meth:`metrics` for those GPUs."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self._handles: dict[int, Any] = {}
        self._metrics_failed = False

    def _init(self) -> Any:
        if self._nvml is None:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
        return self._nvml

    def discover(
        self, only: Sequence[int] | None = None, visible: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """``[{index, uuid, model, memory}]`` of the GPUs to offer; [] when NVML is unusable.

        ``only`` keeps these NVML indices (``--gpus 0,1``); ``visible`` keeps the GPUs named
        by index or UUID in an inherited ``CUDA_VISIBLE_DEVICES``.
        """
        try:
            nvml = self._init()
            count = nvml.nvmlDeviceGetCount()
        except Exception as exc:
            log.info("no GPUs: NVML is not available (%s)", _text(exc) or type(exc).__name__)
            return []
        found = []
        for index in range(count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                gpu = {
                    "index": index,
                    "uuid": _text(nvml.nvmlDeviceGetUUID(handle)),
                    "model": _text(nvml.nvmlDeviceGetName(handle)),
                    "memory": int(nvml.nvmlDeviceGetMemoryInfo(handle).total),
                }
            except Exception as exc:
                log.warning("GPU %d does not answer NVML (%s): not offering it", index, exc)
                continue
            if only is not None and index not in only:
                continue
            if visible is not None and str(index) not in visible and gpu["uuid"] not in visible:
                continue
            self._handles[index] = handle
            found.append(gpu)
        return found

    def metrics(self) -> list[dict[str, Any]]:
        """``[{index, utilization, memory_used, memory_total}]`` of the discovered GPUs."""
        out = []
        for index, handle in self._handles.items():
            try:
                util = self._nvml.nvmlDeviceGetUtilizationRates(handle)
                mem = self._nvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception as exc:
                if not self._metrics_failed:
                    log.warning("could not read GPU %d metrics: %s", index, exc)
                    self._metrics_failed = True
                continue
            out.append(
                {
                    "index": index,
                    "utilization": int(util.gpu),
                    "memory_used": int(mem.used),
                    "memory_total": int(mem.total),
                }
            )
        return out

    def shutdown(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
            self._nvml = None
            self._handles = {}
