"""Worker pod and token Secret manifests, built from what a task needs and the provider's
settings. Pure: dicts in, dicts out (the API's own JSON shape), no client, no I/O.

A pod is made for one *shape* (image, cpus, memory, GPUs, GPU type, labels): tasks of the
same shape can share its worker. The worker's token reaches the pod only through a
``secretKeyRef``; the user's ``pod_template`` is merged over the default pod (containers,
volumes, env and the like merge by ``name``), then the identity this provider relies on
(name, namespace, labels, owner, the worker container's command) is set again on top, and
last the settings of the group profile the pod is made with (``profiles.py``).

Whose a pod is: the user its tasks are (label ``jupyter-orch/owner``, annotation with the
real name: a label value is sanitized) and, with a group profile, the group (label and
annotation ``jupyter-orch/group``). In team mode (``PodSettings.worker_owner == "user"``)
its worker's token is that user's (or the group's, for a profile with ``pods: group``),
so it runs only their tasks; annotation ``jupyter-orch/runs-tasks-of`` says which.
"""

from __future__ import annotations

import base64
import copy
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...core.queue import PendingTask
from ...core.resources import Gpu, format_memory, parse_memory
from .profiles import GroupProfile
from .templates import merge
from .templates import validate_template as validate_template  # re-exported

MANAGED_BY = "app.kubernetes.io/managed-by"
COMPONENT = "app.kubernetes.io/component"
SERVER_LABEL = "jupyter-orch/server"
OWNER_LABEL = "jupyter-orch/owner"
GROUP_LABEL = "jupyter-orch/group"
POD_LABEL = "jupyter-orch/pod"  # the worker label that names its pod
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
TASKS_ANNOTATION = "jupyter-orch/tasks"
TOKEN_ANNOTATION = "jupyter-orch/token-id"
OWNER_ANNOTATION = "jupyter-orch/owner"
GROUP_ANNOTATION = "jupyter-orch/group"
RUNS_ANNOTATION = "jupyter-orch/runs-tasks-of"  # "user" or "group" (team mode); none: anyone's
WORKER_CONTAINER = "worker"
RUNTIME_CONTAINER = "orch-runtime"
RUNTIME_VOLUME = "orch-runtime"
TOKEN_KEY = "token"

_LABEL_VALUE_BAD = re.compile(r"[^A-Za-z0-9_.-]+")
_DNS_BAD = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class PodShape:
    """What one worker pod offers: the needs of the tasks it is made for."""

    image: str
    cpus: float
    memory: int  # bytes
    gpus: int = 0
    gpu_type: str | None = None
    labels: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        parts = [self.image, f"{self.cpus:g} cpu", f"{format_memory(self.memory)} memory"]
        if self.gpus:
            parts.append(f"{self.gpus} {self.gpu_type + ' ' if self.gpu_type else ''}gpu")
        return ", ".join(parts)


def shape_of(task: PendingTask, default_image: str, default_memory: int) -> PodShape:
    r = task.resources
    return PodShape(
        image=task.image or default_image,
        cpus=r.cpus,
        memory=r.memory or default_memory,
        gpus=r.gpus,
        gpu_type=r.gpu_type,
        labels=tuple(sorted(r.labels.items())),
    )


@dataclass
class PodSettings:
    """The provider's configuration as the manifests need it."""

    namespace: str
    server_id: str
    server_url: str
    gpu_resource: str = "nvidia.com/gpu"
    gpu_type_label: str = "nvidia.com/gpu.product"
    gpu_tolerations: list[dict[str, Any]] = field(
        default_factory=lambda: [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    )
    pod_template: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    owner_reference: dict[str, Any] | None = None  # the server's own pod, when it runs in one
    runtime: str = "init-container"  # or "image": jupyter-orch is installed in every image
    runtime_image: str = "jupyter-orch:latest"
    runtime_command: list[str] = field(
        default_factory=lambda: ["cp", "-R", "/opt/jupyter-orch/runtime/.", "/opt/jupyter-orch/mnt/"]
    )
    runtime_path: str = "/opt/jupyter-orch/mnt"  # where the runtime volume is mounted
    python: str = "python3"
    kueue_queue: str = ""
    scheduler_name: str = ""
    service_account: str = ""
    image_pull_policy: str = "IfNotPresent"
    termination_grace: int = 30
    extra_args: list[str] = field(default_factory=list)
    # "shared": pods run anyone's tasks (a personal server); "user": each pod is its user's
    # (or its group's, for a profile with pods: group) and runs only their tasks (team mode)
    worker_owner: str = "shared"
    profiles: dict[str, GroupProfile] = field(default_factory=dict)  # by group, in config order


@dataclass(frozen=True)
class PodRequest:
    """One pod to create."""

    name: str
    owner: str
    shape: PodShape
    task_ids: tuple[str, ...]
    secret_name: str
    token_id: str = ""
    gpu_type_values: tuple[str, ...] = ()  # the GPU type label values on nodes that match
    profile: GroupProfile | None = None  # the group profile it is made with
    runs_tasks_of: str = ""  # "user" or "group": whose tasks its worker runs ("": anyone's)

    @property
    def group(self) -> str:
        return self.profile.group if self.profile is not None else ""


# ---------------------------------------------------------------------- names and values
def label_value(text: str) -> str:
    """``text`` as a valid label value (63 characters, alphanumeric ends)."""
    value = _LABEL_VALUE_BAD.sub("-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)


def pod_name(owner: str, suffix: str | None = None) -> str:
    """``orch-<owner>-<random>``: a DNS label (lower case, at most 63 characters)."""
    slug = _DNS_BAD.sub("-", owner.lower()).strip("-")[:40].strip("-") or "user"
    return f"orch-{slug}-{suffix or secrets.token_hex(4)}"


def secret_name(pod: str) -> str:
    return f"{pod}-token"


def cpu_quantity(cpus: float) -> str:
    """1 -> "1", 0.5 -> "500m" (millicores, rounded up)."""
    if cpus == int(cpus):
        return str(int(cpus))
    milli = -(-round(cpus * 1_000_000) // 1000)  # ceil without float noise
    return f"{milli}m"


def memory_quantity(nbytes: int) -> str:
    """The exact binary form ("4Gi") when there is one, else the number of bytes."""
    text = format_memory(nbytes)
    return text if parse_memory(text) == nbytes else str(nbytes)


def matching_gpu_types(gpu_type: str, known: Sequence[str]) -> tuple[str, ...]:
    """The node label values that name ``gpu_type`` as a whole word ("A100" matches the
    value "NVIDIA-A100-SXM4-80GB"), as the scheduler matches a worker's GPU model."""
    return tuple(sorted(v for v in set(known) if v == gpu_type or Gpu(0, model=v).matches(gpu_type)))


# ---------------------------------------------------------------------- manifests
def identity_labels(settings: PodSettings, owner: str, group: str = "") -> dict[str, str]:
    labels = {
        **settings.labels,
        MANAGED_BY: "jupyter-orch",
        COMPONENT: "worker",
        SERVER_LABEL: settings.server_id,
        OWNER_LABEL: label_value(owner) or "unknown",
    }
    if group:
        labels[GROUP_LABEL] = label_value(group) or "unknown"
    if settings.kueue_queue:
        labels[KUEUE_QUEUE_LABEL] = settings.kueue_queue
    return labels


def worker_args(req: PodRequest, settings: PodSettings) -> list[str]:
    shape = req.shape
    args = [
        "-m",
        "jupyter_orch.worker",
        "--server",
        settings.server_url,
        "--name",
        req.name,
        "--worker-id",
        req.name,
        "--provider",
        "kubernetes",
        "--image",
        shape.image,
        "--slots",
        "1",
        "--cpus",
        f"{shape.cpus:g}",
        "--memory",
        memory_quantity(shape.memory),
        "--label",
        f"{POD_LABEL}={req.name}",
        # the kubelet's SIGTERM is an eviction, a drain or a spot node's notice: the tasks
        # checkpoint and stop (preempted, resumed elsewhere), with time left to report it
        "--on-sigterm",
        "preempt",
        "--preempt-grace",
        f"{max(1, settings.termination_grace - 5)}",
    ]
    for key, value in shape.labels:
        args += ["--label", f"{key}={value}"]
    if not shape.gpus:
        args += ["--gpus", "none"]
    return args + list(settings.extra_args)


def _resources(shape: PodShape, settings: PodSettings) -> dict[str, Any]:
    requests = {"cpu": cpu_quantity(shape.cpus), "memory": memory_quantity(shape.memory)}
    limits = {"memory": memory_quantity(shape.memory)}
    if shape.gpus:
        requests[settings.gpu_resource] = str(shape.gpus)
        limits[settings.gpu_resource] = str(shape.gpus)
    return {"requests": requests, "limits": limits}


def _placement(req: PodRequest, settings: PodSettings) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    shape = req.shape
    selector = {k: v for k, v in shape.labels}  # a task's labels are node labels too
    if shape.gpu_type:
        values = req.gpu_type_values or (shape.gpu_type,)
        if values == (shape.gpu_type,):
            selector[settings.gpu_type_label] = shape.gpu_type
        else:
            term = {"key": settings.gpu_type_label, "operator": "In", "values": list(values)}
            spec["affinity"] = {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [term]}]
                    }
                }
            }
    if selector:
        spec["nodeSelector"] = selector
    if shape.gpus and settings.gpu_tolerations:
        spec["tolerations"] = copy.deepcopy(settings.gpu_tolerations)
    return spec


def build_pod(req: PodRequest, settings: PodSettings) -> dict[str, Any]:
    """The worker pod for ``req``: the default pod, the template merged over it, then the
    fields this provider relies on set again."""
    shape = req.shape
    env = [
        {
            "name": "JUPYTER_ORCH_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": req.secret_name, "key": TOKEN_KEY}},
        },
        {"name": "JUPYTER_ORCH_PROVIDER", "value": "kubernetes"},
        {"name": "JUPYTER_ORCH_IMAGE", "value": shape.image},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]
    worker: dict[str, Any] = {
        "name": WORKER_CONTAINER,
        "image": shape.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": [settings.python],
        "args": worker_args(req, settings),
        "env": env,
        "resources": _resources(shape, settings),
    }
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": settings.termination_grace,
        "containers": [worker],
        **_placement(req, settings),
    }
    if settings.runtime == "init-container":
        mount = {"name": RUNTIME_VOLUME, "mountPath": settings.runtime_path}
        env.append({"name": "PYTHONPATH", "value": settings.runtime_path})
        worker["volumeMounts"] = [{**mount, "readOnly": True}]
        spec["volumes"] = [{"name": RUNTIME_VOLUME, "emptyDir": {}}]
        spec["initContainers"] = [
            {
                "name": RUNTIME_CONTAINER,
                "image": settings.runtime_image,
                "imagePullPolicy": settings.image_pull_policy,
                "command": list(settings.runtime_command),
                "volumeMounts": [mount],
                "resources": {
                    "requests": {"cpu": "100m", "memory": "64Mi"},
                    "limits": {"memory": "256Mi"},
                },
            }
        ]
    if settings.scheduler_name:
        spec["schedulerName"] = settings.scheduler_name
    if settings.service_account:
        spec["serviceAccountName"] = settings.service_account
    pod = merge(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": spec}, settings.pod_template or {}
    )
    meta = pod.setdefault("metadata", {})
    meta.pop("generateName", None)
    meta["name"] = req.name
    meta["namespace"] = settings.namespace
    profile = req.profile
    meta["labels"] = {  # a group's labels win over the provider's (its own are refused in them)
        **(meta.get("labels") or {}),
        **identity_labels(settings, req.owner, req.group),
        **(profile.labels if profile is not None else {}),
    }
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        TASKS_ANNOTATION: ",".join(req.task_ids),
        OWNER_ANNOTATION: req.owner,
        **({GROUP_ANNOTATION: req.group} if req.group else {}),
        **({RUNS_ANNOTATION: req.runs_tasks_of} if req.runs_tasks_of else {}),
        **({TOKEN_ANNOTATION: req.token_id} if req.token_id else {}),
    }
    if settings.owner_reference:
        meta["ownerReferences"] = [dict(settings.owner_reference)]
    for container in pod["spec"]["containers"]:
        if container.get("name") == WORKER_CONTAINER:
            container["command"] = [settings.python]
            container["args"] = worker_args(req, settings)
            container["image"] = container.get("image") or shape.image
    pod["spec"]["restartPolicy"] = "Never"
    if profile is not None:
        profile.apply(pod["spec"])
    return pod


def build_secret(
    name: str,
    token: str,
    settings: PodSettings,
    owner: str,
    owner_reference: dict[str, Any] | None,
    group: str = "",
) -> dict[str, Any]:
    """The Secret holding one worker's token, labelled like its pod."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": settings.namespace,
        "labels": identity_labels(settings, owner, group),
    }
    meta["labels"].pop(KUEUE_QUEUE_LABEL, None)  # a Secret is not a workload
    if owner_reference:
        meta["ownerReferences"] = [dict(owner_reference)]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "data": {TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }


def pod_owner_reference(pod: Mapping[str, Any]) -> dict[str, Any]:
    """A reference to ``pod`` (its Secret goes when it goes)."""
    meta = pod["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": meta["name"],
        "uid": meta["uid"],
        "blockOwnerDeletion": False,
        "controller": False,
    }
