"""What a worker pod's status means for the tasks it was made for, as one sentence.

Pure: a pod as the API shows it (a dict) in, a :class:`Verdict` out. The provider decides
what to do with it: a pod still on its way leaves its tasks pending with the sentence as
their reason; a pod that can never work (an image that cannot be pulled, a container that
cannot start) fails them; a pod lost to the cluster (evicted, preempted, its node gone)
has its attempt retried per the task's policy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .podspec import RUNTIME_CONTAINER, WORKER_CONTAINER

WAIT = "wait"  # still on its way: the tasks stay pending with the sentence as reason
RUNNING = "running"  # its containers run: the worker connects soon
FAIL = "fail"  # it cannot work: the tasks it was made for fail (with its logs, if any)
LOST = "lost"  # the cluster took it away: attempts are retried per policy, pods remade
ENDED = "ended"  # the worker exited cleanly (stopped, or released)

PULL_RETRIED = frozenset({"ErrImagePull", "ImagePullBackOff"})  # the kubelet tries again (pulls.py)
PULL_FATAL = frozenset({"InvalidImageName", "ErrImageNeverPull"})  # never heal: fail at once
IMAGE_PULL = PULL_RETRIED | PULL_FATAL
CANNOT_START = frozenset(
    {"CreateContainerConfigError", "CreateContainerError", "RunContainerError", "CrashLoopBackOff"}
)
_DISRUPTIONS = {
    "PreemptionByScheduler": ("preempted", "it was preempted for a pod of higher priority"),
    "PreemptionByKubeScheduler": ("preempted", "it was preempted for a pod of higher priority"),
    "EvictionByEvictionAPI": ("evicted", "it was evicted (a node drain or a disruption budget)"),
    "DeletionByTaintManager": ("node_lost", "its node was tainted NoExecute (unreachable or not ready)"),
    "DeletionByPodGC": ("node_lost", "its node is gone"),
    "TerminationByKubelet": ("evicted", "its node's kubelet stopped it (node pressure or shutdown)"),
}


@dataclass(frozen=True)
class Verdict:
    action: str  # WAIT, RUNNING, FAIL, LOST or ENDED
    kind: str  # the error kind tasks get: unschedulable, image_pull, oom, evicted, ...
    sentence: str


def _conditions(pod: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {c.get("type", ""): c for c in (pod.get("status") or {}).get("conditions") or []}


def statuses(pod: Mapping[str, Any]) -> Iterator[tuple[bool, Mapping[str, Any]]]:
    """(is an init container, its status) for each container, init containers first."""
    status = pod.get("status") or {}
    for entry in status.get("initContainerStatuses") or []:
        yield True, entry
    for entry in status.get("containerStatuses") or []:
        yield False, entry


def container_spec(pod: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    spec = pod.get("spec") or {}
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if container.get("name") == name:
            return container  # type: ignore[no-any-return]
    return {}


def memory_limit(pod: Mapping[str, Any], container: str = WORKER_CONTAINER) -> str | None:
    limits = (container_spec(pod, container).get("resources") or {}).get("limits") or {}
    value = limits.get("memory")
    return str(value) if value is not None else None


def image_note(pod: Mapping[str, Any], name: str, init: bool) -> str:
    if init and name == RUNTIME_CONTAINER:
        return " (the jupyter-orch runtime image: see KubernetesProvider.runtime_image)"
    return ""


def classify(pod: Mapping[str, Any], *, kueue_queue: str = "") -> Verdict:
    """The pod's state as one verdict (the most telling problem wins)."""
    meta = pod.get("metadata") or {}
    name = meta.get("name", "?")
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    node = (pod.get("spec") or {}).get("nodeName")

    # terminated containers first: why the pod ended
    for _init, entry in statuses(pod):
        state = entry.get("state") or {}
        term = state.get("terminated") or (entry.get("lastState") or {}).get("terminated")
        if term and term.get("reason") == "OOMKilled":
            limit = memory_limit(pod, entry.get("name", WORKER_CONTAINER)) or "unknown"
            return Verdict(
                FAIL,
                "oom",
                f"the worker pod was killed for using more than its memory limit ({limit}); "
                "ask for more memory in the task's resources",
            )
    reason, message = status.get("reason") or "", status.get("message") or ""
    if reason == "Evicted":
        return Verdict(LOST, "evicted", f"the worker pod {name} was evicted: {message or 'by its node'}")
    if reason in ("NodeLost", "UnexpectedAdmissionError", "NodeShutdown", "Terminated"):
        where = f" on node {node}" if node else ""
        return Verdict(LOST, "node_lost", f"the worker pod {name}{where} was lost: {message or reason}")
    disruption = _conditions(pod).get("DisruptionTarget")
    if disruption and disruption.get("status") == "True" and phase not in ("Pending", "Running"):
        kind, why = _DISRUPTIONS.get(disruption.get("reason", ""), ("evicted", "the cluster disrupted it"))
        detail = disruption.get("message")
        return Verdict(
            LOST, kind, f"the worker pod {name} was stopped: {why}" + (f" ({detail})" if detail else "")
        )

    # containers that cannot start, or images that cannot be pulled
    for init, entry in statuses(pod):
        waiting = (entry.get("state") or {}).get("waiting") or {}
        why = waiting.get("reason") or ""
        cname = entry.get("name", "")
        if why in IMAGE_PULL:
            image = entry.get("image") or container_spec(pod, cname).get("image") or "?"
            detail = waiting.get("message") or why
            if why in PULL_RETRIED:  # the provider counts the tries (pulls.py) and gives up in time
                return Verdict(
                    WAIT,
                    "image_pull",
                    f"pulling image {image} failed ({detail}); the kubelet retries{image_note(pod, cname, init)}",
                )
            return Verdict(
                FAIL,
                "image_pull",
                f"image {image} could not be pulled: {detail}{image_note(pod, cname, init)}",
            )
        if why in CANNOT_START:
            detail = waiting.get("message") or why
            return Verdict(
                FAIL,
                "pod_start",
                f"the worker pod {name} could not start its container {cname}: {detail}"
                + ("; the image must have python3 on its PATH" if cname == WORKER_CONTAINER else ""),
            )

    for init, entry in statuses(pod):
        term = (entry.get("state") or {}).get("terminated") or {}
        code = term.get("exitCode")
        if code not in (None, 0) and (init or entry.get("name") == WORKER_CONTAINER):
            why = term.get("reason") or "Error"
            detail = f": {term['message']}" if term.get("message") else ""
            which = "its runtime copy (init container)" if init else "the worker"
            return Verdict(
                FAIL, "pod_exited", f"{which} in pod {name} exited with code {code} ({why}){detail}"
            )

    if phase == "Succeeded":
        return Verdict(ENDED, "ended", f"the worker in pod {name} stopped")
    if phase == "Failed":
        return Verdict(
            FAIL, "pod_failed", f"the worker pod {name} failed: {message or reason or 'no reason given'}"
        )

    scheduled = _conditions(pod).get("PodScheduled")
    if scheduled and scheduled.get("status") == "False":
        why = scheduled.get("reason") or ""
        if why == "SchedulingGated":
            queue = f" (Kueue queue {kueue_queue})" if kueue_queue else ""
            return Verdict(WAIT, "gated", f"the worker pod {name} waits to be admitted{queue}")
        if why == "Unschedulable":
            detail = scheduled.get("message") or "no node fits it"
            return Verdict(WAIT, "unschedulable", f"no node can run the worker pod {name} yet: {detail}")
    if phase == "Running":
        return Verdict(
            RUNNING, "running", f"the worker pod {name} runs on {node or 'a node'}; its worker is connecting"
        )
    for _, entry in statuses(pod):
        waiting = (entry.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") == "ContainerCreating" or waiting.get("reason") == "PodInitializing":
            return Verdict(WAIT, "starting", f"the worker pod {name} is starting on {node or 'a node'}")
    if node:
        return Verdict(WAIT, "starting", f"the worker pod {name} is starting on {node}")
    return Verdict(WAIT, "pending", f"the worker pod {name} is waiting for a node")


def with_logs(sentence: str, log_text: str, lines: int = 20) -> str:
    """``sentence`` with the pod's last log lines below it (when it had any)."""
    tail = [line for line in log_text.splitlines() if line.strip()][-lines:]
    if not tail:
        return sentence
    return sentence + "\nthe worker pod's last log lines:\n" + "\n".join("  " + line for line in tail)
