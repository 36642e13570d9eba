"""A pod's status as one sentence and what to do about it (pure), and the cluster's free
GPUs per node (pure). The pod statuses are the shapes the kubelet and scheduler write."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from jupyter_orch.providers.kubernetes import capacity, failures, pulls


def pod(
    phase: str = "Pending",
    *,
    conditions: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
    init_statuses: list[dict[str, Any]] | None = None,
    node: str | None = None,
    memory: str = "4Gi",
    **status: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "initContainers": [{"name": "orch-runtime", "image": "orch-runtime:1"}],
        "containers": [{"name": "worker", "image": "pytorch:2", "resources": {"limits": {"memory": memory}}}],
    }
    if node:
        spec["nodeName"] = node
    st: dict[str, Any] = {"phase": phase, **status}
    if conditions:
        st["conditions"] = conditions
    if statuses:
        st["containerStatuses"] = statuses
    if init_statuses:
        st["initContainerStatuses"] = init_statuses
    return {"metadata": {"name": "orch-ann-1"}, "spec": spec, "status": st}


def waiting(reason: str, message: str = "", name: str = "worker", image: str = "pytorch:2") -> dict[str, Any]:
    return {"name": name, "image": image, "state": {"waiting": {"reason": reason, "message": message}}}


def terminated(reason: str, code: int, name: str = "worker") -> dict[str, Any]:
    return {"name": name, "state": {"terminated": {"reason": reason, "exitCode": code}}}


def test_unschedulable_keeps_the_schedulers_words() -> None:
    msg = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available."
    v = failures.classify(
        pod(
            conditions=[
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": msg}
            ]
        )
    )
    assert (v.action, v.kind) == (failures.WAIT, "unschedulable")
    assert v.sentence == f"no node can run the worker pod orch-ann-1 yet: {msg}"


def test_a_pod_gated_by_kueue_waits_to_be_admitted() -> None:
    cond = {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}
    v = failures.classify(pod(conditions=[cond]), kueue_queue="gpu-queue")
    assert (v.action, v.kind) == (failures.WAIT, "gated")
    assert v.sentence == "the worker pod orch-ann-1 waits to be admitted (Kueue queue gpu-queue)"


@pytest.mark.parametrize("reason", ["InvalidImageName", "ErrImageNeverPull"])
def test_an_image_that_can_never_be_pulled_fails_at_once_naming_it(reason: str) -> None:
    detail = 'Container image "pytorch:2" is not present with pull policy of Never'
    v = failures.classify(pod(node="n1", statuses=[waiting(reason, detail)]))
    assert (v.action, v.kind) == (failures.FAIL, "image_pull")
    assert v.sentence == f"image pytorch:2 could not be pulled: {detail}"


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff"])
def test_a_pull_the_kubelet_retries_waits(reason: str) -> None:
    detail = "429 Too Many Requests"
    v = failures.classify(pod(node="n1", statuses=[waiting(reason, detail)]))
    assert (v.action, v.kind) == (failures.WAIT, "image_pull")
    assert v.sentence == f"pulling image pytorch:2 failed ({detail}); the kubelet retries"


def test_the_runtime_image_that_cannot_be_pulled_names_its_setting() -> None:
    status = waiting("InvalidImageName", "bad name", name="orch-runtime", image="orch-runtime:1")
    v = failures.classify(pod(node="n1", init_statuses=[status]))
    assert v.sentence.startswith("image orch-runtime:1 could not be pulled: bad name")
    assert "KubernetesProvider.runtime_image" in v.sentence
    retried = waiting("ImagePullBackOff", "unauthorized", name="orch-runtime", image="orch-runtime:1")
    tries = pulls.PullTries()
    trouble = tries.observe(pod(node="n1", init_statuses=[retried]), 0.0)
    assert trouble is not None and "KubernetesProvider.runtime_image" in pulls.retrying(trouble)
    assert "KubernetesProvider.runtime_image" in pulls.given_up(trouble, 1.0, "image_pull_attempts")


RATE = "429 Too Many Requests"
BACK = 'Back-off pulling image "pytorch:2"'


def test_failed_pulls_are_counted_across_status_changes() -> None:
    tries = pulls.PullTries()

    def see(status: dict[str, Any], now: float) -> pulls.Trouble | None:
        return tries.observe(pod(node="n1", statuses=[status]), now)

    assert see({"name": "worker", "state": {"waiting": {"reason": "ContainerCreating"}}}, 0.0) is None
    first = see(waiting("ErrImagePull", RATE), 1.0)
    assert first is not None and (first.tries, first.first, first.message) == (1, 1.0, RATE)
    assert pulls.retrying(first) == f"pulling image pytorch:2: try 1 failed ({RATE}); the kubelet retries"
    again = see(waiting("ErrImagePull", RATE), 2.0)  # the same status seen again (a re-list)
    assert again is not None and again.tries == 1 and not tries.changed
    backing_off = see(waiting("ImagePullBackOff", BACK), 3.0)
    assert backing_off is not None and backing_off.tries == 1 and backing_off.message == RATE
    second = see(waiting("ErrImagePull", RATE), 13.0)
    assert second is not None and second.tries == 2
    third = see(waiting("ErrImagePull", "i/o timeout"), 33.0)  # a new error, no back-off shown between
    assert third is not None and third.tries == 3
    assert pulls.given_up(third, 43.0, "image_pull_attempts") == (
        "image pytorch:2 could not be pulled after 3 tries over 42 s "
        "(KubernetesProvider.image_pull_attempts): i/o timeout"
    )
    running = {"name": "worker", "state": {"running": {"startedAt": "now"}}}
    assert see(running, 50.0) is None and not tries.tries  # pulled: a later failure starts afresh
    assert pulls.given_up(first, 1.0, "image_pull_attempts").startswith(
        "image pytorch:2 could not be pulled after 1 try (KubernetesProvider.image_pull_attempts): "
    )


def test_a_pod_first_seen_in_back_off_has_failed_once() -> None:
    trouble = pulls.PullTries().observe(pod(node="n1", statuses=[waiting("ImagePullBackOff", BACK)]), 5.0)
    assert trouble is not None and (trouble.tries, trouble.message) == (1, BACK)


def test_the_kubelets_events_count_the_tries_its_status_did_not_show() -> None:
    tries = pulls.PullTries()
    tries.observe(pod(node="n1", statuses=[waiting("ImagePullBackOff", BACK)]), 0.0)

    def event(
        message: str, count: int, path: str = "spec.containers{worker}", at: str = ""
    ) -> dict[str, Any]:
        involved = {"kind": "Pod", "name": "orch-ann-1", "fieldPath": path}
        stamp = at or "2026-01-01T00:00:00Z"
        return {
            "reason": "Failed",
            "message": message,
            "count": count,
            "involvedObject": involved,
            "lastTimestamp": stamp,
        }

    events = [
        event(f'Failed to pull image "pytorch:2": {RATE}', 2, at="2026-01-01T00:00:10Z"),
        event(
            '(combined from similar events): Failed to pull image "pytorch:2": timeout',
            1,
            at="2026-01-01T00:00:30Z",
        ),
        event("Error: ErrImagePull", 3),
        event(f'Failed to pull image "pytorch:2": {RATE}', 5, path="spec.initContainers{orch-runtime}"),
        {"reason": "BackOff", "message": BACK, "count": 4},
    ]
    trouble = tries.count_events(events)
    assert trouble is not None and (trouble.tries, trouble.message) == (3, "timeout")
    assert tries.tries["worker"] == 3  # kept for the next status change
    assert tries.count_events([]) is trouble and trouble.tries == 3  # never counted down


def test_oom_names_the_memory_limit() -> None:
    v = failures.classify(pod("Failed", node="n1", memory="4Gi", statuses=[terminated("OOMKilled", 137)]))
    assert (v.action, v.kind) == (failures.FAIL, "oom")
    assert v.sentence.startswith("the worker pod was killed for using more than its memory limit (4Gi)")


def test_evicted_preempted_and_lost_pods_are_retried() -> None:
    evicted = pod("Failed", reason="Evicted", message="The node was low on resource: memory.")
    v = failures.classify(evicted)
    assert (v.action, v.kind) == (failures.LOST, "evicted")
    assert v.sentence == "the worker pod orch-ann-1 was evicted: The node was low on resource: memory."
    preempted = pod(
        "Failed",
        conditions=[
            {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "PreemptionByScheduler",
                "message": "by p",
            }
        ],
        statuses=[terminated("Error", 137)],
    )
    v = failures.classify(preempted)
    assert (v.action, v.kind) == (failures.LOST, "preempted")
    assert "preempted for a pod of higher priority" in v.sentence
    lost = pod(
        "Failed",
        node="n7",
        reason="NodeLost",
        message="Node n7 which was running pod orch-ann-1 is unresponsive",
    )
    v = failures.classify(lost)
    assert (v.action, v.kind) == (failures.LOST, "node_lost")
    assert v.sentence.startswith("the worker pod orch-ann-1 on node n7 was lost: Node n7")
    tainted = pod(
        "Failed",
        conditions=[{"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager"}],
    )
    assert failures.classify(tainted).kind == "node_lost"


def test_a_worker_that_exits_or_cannot_start() -> None:
    v = failures.classify(pod("Failed", node="n1", statuses=[terminated("Error", 2)]))
    assert (v.action, v.kind) == (failures.FAIL, "pod_exited")
    assert v.sentence == "the worker in pod orch-ann-1 exited with code 2 (Error)"
    v = failures.classify(
        pod("Pending", node="n1", init_statuses=[terminated("Error", 1, name="orch-runtime")])
    )
    assert v.sentence.startswith("its runtime copy (init container) in pod orch-ann-1 exited with code 1")
    start = waiting("RunContainerError", 'exec: "python3": executable file not found in $PATH')
    v = failures.classify(pod("Pending", node="n1", statuses=[start]))
    assert (v.action, v.kind) == (failures.FAIL, "pod_start")
    assert "python3" in v.sentence and v.sentence.endswith("the image must have python3 on its PATH")
    secret = waiting("CreateContainerConfigError", 'secret "orch-ann-1-token" not found')
    assert failures.classify(pod("Pending", node="n1", statuses=[secret])).kind == "pod_start"


def test_the_ordinary_states() -> None:
    assert failures.classify(pod()).sentence == "the worker pod orch-ann-1 is waiting for a node"
    creating = failures.classify(pod(node="n1", statuses=[waiting("ContainerCreating")]))
    assert (creating.action, creating.sentence) == (
        failures.WAIT,
        "the worker pod orch-ann-1 is starting on n1",
    )
    running = failures.classify(
        pod("Running", node="n1", statuses=[{"name": "worker", "state": {"running": {}}}])
    )
    assert running.action == failures.RUNNING and "runs on n1" in running.sentence
    done = failures.classify(pod("Succeeded", node="n1", statuses=[terminated("Completed", 0)]))
    assert done.action == failures.ENDED


def test_log_lines_are_attached_below_the_sentence() -> None:
    logs = "\n".join(f"line {i}" for i in range(30)) + "\n\n"
    text = failures.with_logs("it failed", logs, lines=3)
    assert text == "it failed\nthe worker pod's last log lines:\n  line 27\n  line 28\n  line 29"
    assert failures.with_logs("it failed", "  \n") == "it failed"


def node(name: str, gpus: str | None, product: str = "NVIDIA-A100-SXM4-80GB", **extra: Any) -> dict[str, Any]:
    alloc = {"cpu": "32"} | ({"nvidia.com/gpu": gpus} if gpus is not None else {})
    labels = {"nvidia.com/gpu.product": product} if gpus else {}
    ready = extra.pop("ready", "True")
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": extra,
        "status": {"allocatable": alloc, "conditions": [{"type": "Ready", "status": ready}]},
    }


def using(node_name: str, gpus: int, phase: str = "Running", init: int = 0) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodeName": node_name,
        "containers": [
            {"name": "a", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}},
            {"name": "b", "resources": {"requests": {"cpu": "1"}}},
        ],
    }
    if init:
        spec["initContainers"] = [{"name": "i", "resources": {"requests": {"nvidia.com/gpu": str(init)}}}]
    return {"spec": spec, "status": {"phase": phase}}


def test_free_gpus_per_node() -> None:
    nodes = [
        node("a100-1", "8"),
        node("a100-2", "8", unschedulable=True),
        node("h100-1", "4", product="NVIDIA-H100-80GB-HBM3"),
        node("h100-2", "4", product="NVIDIA-H100-80GB-HBM3", ready="False"),
        node("cpu-1", None),
    ]
    pods = [
        using("a100-1", 2),
        using("a100-1", 1, init=3),  # an init container's request counts while it is larger
        using("a100-1", 4, phase="Succeeded"),  # a finished pod holds nothing
        using("h100-1", 4),
        {"spec": {"containers": []}, "status": {"phase": "Pending"}},  # not on a node yet
    ]
    table = capacity.gpu_capacity(nodes, pods)
    assert [(n.name, n.allocatable, n.requested, n.free) for n in table] == [
        ("a100-1", 8, 5, 3),
        ("a100-2", 8, 0, 0),
        ("h100-1", 4, 4, 0),
        ("h100-2", 4, 0, 0),
    ]
    assert table[0].to_dict()["gpu_type"] == "NVIDIA-A100-SXM4-80GB"
    assert capacity.summary(table) == {
        "NVIDIA-A100-SXM4-80GB": {"allocatable": 16, "free": 3, "nodes": 2},
        "NVIDIA-H100-80GB-HBM3": {"allocatable": 8, "free": 0, "nodes": 2},
    }


def test_quantities() -> None:
    assert capacity.parse_quantity("500m") == Decimal("0.5")
    assert capacity.parse_quantity("4Gi") == 4 * 2**30
    assert capacity.parse_quantity("1M") == 10**6 and capacity.parse_quantity(2) == 2
    assert capacity.parse_quantity("1e3") == 1000
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        capacity.parse_quantity("lots")
