"""The cluster's GPUs per node: allocatable GPU resource minus what the pods on the node
request. Pure: node and pod dicts (as the API lists them) in, a table out.

It is what ``jupyter orch workers`` and ``GET /workers`` show before any worker exists,
so a user sees where a ``--gpus 4`` task could go.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

_SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


def parse_quantity(value: Any) -> Decimal:
    """A Kubernetes quantity ("500m", "4Gi", "8", 2) as a number; ValueError if it is not one."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Decimal(str(value))
    text = str(value).strip()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            number, factor = text[: -len(suffix)], _SUFFIXES[suffix]
            break
    else:
        number, factor = text, Decimal(1)
    try:
        return Decimal(number) * factor
    except InvalidOperation:
        raise ValueError(f"not a Kubernetes quantity: {value!r}") from None


@dataclass(frozen=True)
class NodeGpus:
    name: str
    gpu_type: str | None
    allocatable: int
    requested: int
    schedulable: bool = True  # Ready and not cordoned

    @property
    def free(self) -> int:
        return max(0, self.allocatable - self.requested) if self.schedulable else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "gpu_type": self.gpu_type,
            "allocatable": self.allocatable,
            "requested": self.requested,
            "free": self.free,
            "schedulable": self.schedulable,
        }


def _amount(resources: Mapping[str, Any] | None, resource: str) -> Decimal:
    """A container's request of ``resource`` (an extended resource's request defaults to its
    limit)."""
    resources = resources or {}
    for key in ("requests", "limits"):
        value = (resources.get(key) or {}).get(resource)
        if value is not None:
            try:
                return parse_quantity(value)
            except ValueError:
                return Decimal(0)
    return Decimal(0)


def pod_request(pod: Mapping[str, Any], resource: str) -> Decimal:
    """What a pod holds of ``resource`` on its node: the larger of its containers' sum and
    its largest init container (as the scheduler counts it)."""
    spec = pod.get("spec") or {}
    main = sum((_amount(c.get("resources"), resource) for c in spec.get("containers") or []), Decimal(0))
    init = max(
        (_amount(c.get("resources"), resource) for c in spec.get("initContainers") or []), default=Decimal(0)
    )
    return max(main, init)


def _schedulable(node: Mapping[str, Any]) -> bool:
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return True  # no conditions reported: assume it is usable


def gpu_capacity(
    nodes: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    gpu_resource: str = "nvidia.com/gpu",
    gpu_type_label: str = "nvidia.com/gpu.product",
) -> list[NodeGpus]:
    """Nodes that offer ``gpu_resource``, each with what the pods bound to it request."""
    requested: dict[str, Decimal] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if node and phase not in ("Succeeded", "Failed"):
            requested[node] = requested.get(node, Decimal(0)) + pod_request(pod, gpu_resource)
    out = []
    for node in nodes:
        meta = node.get("metadata") or {}
        alloc = ((node.get("status") or {}).get("allocatable") or {}).get(gpu_resource)
        try:
            total = int(parse_quantity(alloc)) if alloc is not None else 0
        except ValueError:
            total = 0
        if total <= 0:
            continue
        name = meta.get("name", "?")
        out.append(
            NodeGpus(
                name=name,
                gpu_type=(meta.get("labels") or {}).get(gpu_type_label),
                allocatable=total,
                requested=int(requested.get(name, Decimal(0))),
                schedulable=_schedulable(node),
            )
        )
    return sorted(out, key=lambda n: n.name)


def summary(nodes: Iterable[NodeGpus]) -> dict[str, Any]:
    """Totals per GPU type: {"A100": {"allocatable": 8, "free": 3}, ...}."""
    by_type: dict[str, dict[str, int]] = {}
    for node in nodes:
        entry = by_type.setdefault(node.gpu_type or "unknown", {"allocatable": 0, "free": 0, "nodes": 0})
        entry["allocatable"] += node.allocatable
        entry["free"] += node.free
        entry["nodes"] += 1
    return by_type
