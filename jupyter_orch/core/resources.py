"""What a task asks for and what a worker offers: CPUs, memory, GPUs, GPU type, labels.

Parsing is strict: ``memory: "lots"`` or ``gpus: -1`` raise :class:`SpecError` naming the
field, so bad input is refused at the door instead of leaving a task pending forever.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from . import limits
from .errors import SpecError

_UNITS = {
    "": 1,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
    "t": 10**12,
    "ki": 2**10,
    "mi": 2**20,
    "gi": 2**30,
    "ti": 2**40,
}
_MEM_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?\s*$", re.IGNORECASE)
_LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$")


def parse_memory(value: Any, field_name: str = "resources.memory") -> int:
    """Bytes from ``"8Gi"``, ``"512Mi"``, ``"1G"``, ``"1.5Gi"`` or a plain number of bytes."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise SpecError(f"{field_name} must be a size like '8Gi' or '512Mi'", field=field_name)
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise SpecError(f"{field_name} must be a non-negative size", field=field_name)
        return int(value)
    if isinstance(value, str):
        m = _MEM_RE.match(value)
        if m:
            number, unit = m.groups()
            # Decimal, not float: "9007199254740993" must not lose its last byte
            return int(Decimal(number) * _UNITS[(unit or "").lower()])
    raise SpecError(
        f"{field_name} must be a size like '8Gi', '512Mi' or a number of bytes, not {value!r}",
        field=field_name,
    )


def format_memory(nbytes: int) -> str:
    """The shortest exact binary form: 8589934592 -> '8Gi'; 0 -> '0'."""
    if nbytes <= 0:
        return "0"
    for unit in ("Ti", "Gi", "Mi", "Ki"):
        size = _UNITS[unit.lower()]
        if nbytes >= size and nbytes % size == 0:
            return f"{nbytes // size}{unit}"
    for unit in ("Ti", "Gi", "Mi", "Ki"):
        size = _UNITS[unit.lower()]
        if nbytes >= size:
            return f"{nbytes / size:.1f}{unit}"
    return str(nbytes)


def _exact_memory(nbytes: int) -> str | int:
    """``format_memory`` when it is exact (round trips), else the byte count."""
    text = format_memory(nbytes)
    return text if parse_memory(text) == nbytes else nbytes


def _number(value: Any, field_name: str, *, integer: bool, minimum: float = 0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SpecError(f"{field_name} must be a number, not {value!r}", field=field_name)
    try:
        number = float(value)
    except ValueError:
        raise SpecError(f"{field_name} must be a number, not {value!r}", field=field_name) from None
    if not math.isfinite(number) or number < minimum:
        raise SpecError(f"{field_name} must be >= {minimum:g}, not {value!r}", field=field_name)
    if integer and number != int(number):
        raise SpecError(f"{field_name} must be a whole number, not {value!r}", field=field_name)
    return number


def parse_labels(value: Any, field_name: str) -> dict[str, str]:
    """``{"k": "v"}`` or ``["k=v", ...]`` into a dict of strings."""
    if value is None:
        return {}
    items: list[tuple[Any, Any]]
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = []
        for entry in value:
            if not isinstance(entry, str) or "=" not in entry:
                raise SpecError(
                    f"{field_name} entries must look like 'key=value', not {entry!r}", field=field_name
                )
            k, v = entry.split("=", 1)
            items.append((k, v))
    else:
        raise SpecError(f"{field_name} must be a mapping of label to value", field=field_name)
    if len(items) > limits.MAX_LABELS:
        raise SpecError(
            f"{field_name} may have at most {limits.MAX_LABELS} labels, not {len(items)}", field=field_name
        )
    out: dict[str, str] = {}
    for k, v in items:
        if not isinstance(k, str) or not _LABEL_KEY_RE.match(k):
            raise SpecError(f"{field_name} has an invalid label key {k!r}", field=f"{field_name}.{k}")
        if not isinstance(v, (str, int, float, bool)):
            raise SpecError(f"{field_name}.{k} must be a string", field=f"{field_name}.{k}")
        out[k] = limits.check_text(str(v), f"{field_name}.{k}", max_len=limits.MAX_LABEL_VALUE)
    return out


@dataclass(frozen=True)
class Resources:
    """What one task needs. ``memory`` is in bytes; 0 means "no reservation"."""

    cpus: float = 1.0
    memory: int = 0
    gpus: int = 0
    gpu_type: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    _KEYS = frozenset({"cpus", "memory", "gpus", "gpu_type", "labels"})

    @classmethod
    def from_dict(cls, data: Any, prefix: str = "resources") -> Resources:
        if data is None:
            return cls()
        if isinstance(data, Resources):
            return data
        if not isinstance(data, Mapping):
            raise SpecError(f"{prefix} must be an object", field=prefix)
        unknown = set(data) - cls._KEYS
        if unknown:
            name = sorted(unknown, key=str)[0]  # key=str: a Python caller may pass non-str keys
            raise SpecError(
                f"{prefix}.{name} is not a known resource (known: cpus, memory, gpus, gpu_type, labels)",
                field=f"{prefix}.{name}",
            )
        cpus = _number(data.get("cpus", 1), f"{prefix}.cpus", integer=False)
        gpus = _number(data.get("gpus", 0), f"{prefix}.gpus", integer=True)
        if gpus > limits.MAX_GPUS:
            raise SpecError(
                f"{prefix}.gpus must be at most {limits.MAX_GPUS}, not {gpus:g}", field=f"{prefix}.gpus"
            )
        gpu_type = data.get("gpu_type")
        if gpu_type is not None and (not isinstance(gpu_type, str) or not gpu_type.strip()):
            raise SpecError(f"{prefix}.gpu_type must be a non-empty string", field=f"{prefix}.gpu_type")
        if gpu_type is not None:
            limits.check_text(gpu_type, f"{prefix}.gpu_type", max_len=limits.MAX_NAME)
        if gpu_type and not gpus:
            raise SpecError(f"{prefix}.gpu_type needs {prefix}.gpus >= 1", field=f"{prefix}.gpu_type")
        return cls(
            cpus=cpus,
            memory=parse_memory(data.get("memory"), f"{prefix}.memory"),
            gpus=int(gpus),
            gpu_type=gpu_type.strip() if gpu_type else None,
            labels=parse_labels(data.get("labels"), f"{prefix}.labels"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpus": self.cpus,
            "memory": _exact_memory(self.memory) if self.memory else None,
            "gpus": self.gpus,
            "gpu_type": self.gpu_type,
            "labels": dict(self.labels),
        }

    def describe(self) -> str:
        parts = [f"{self.cpus:g} cpu"]
        if self.memory:
            parts.append(f"{format_memory(self.memory)} memory")
        if self.gpus:
            parts.append(f"{self.gpus} {self.gpu_type + ' ' if self.gpu_type else ''}gpu")
        if self.labels:
            parts.append(",".join(f"{k}={v}" for k, v in sorted(self.labels.items())))
        return ", ".join(parts)


@dataclass(frozen=True)
class Gpu:
    """One GPU a worker offers, as pynvml reports it."""

    index: int
    uuid: str = ""
    model: str = ""
    memory: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Gpu:
        return cls(
            index=int(data["index"]),
            uuid=str(data.get("uuid") or ""),
            model=str(data.get("model") or ""),
            memory=int(data.get("memory") or 0),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "uuid": self.uuid, "model": self.model, "memory": self.memory}

    def matches(self, gpu_type: str | None) -> bool:
        """``gpu_type`` names this GPU's model as a whole word: "A100" matches
        "NVIDIA A100-SXM4-80GB", "A10" does not."""
        if gpu_type is None:
            return True
        pattern = r"(?<![a-z0-9])" + re.escape(gpu_type.lower()) + r"(?![a-z0-9])"
        return re.search(pattern, self.model.lower()) is not None
