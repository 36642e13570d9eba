"""Worker pod and Secret manifests (pure), the provider's settings checks, and every
generated manifest against the official Kubernetes schemas (lowest and highest version
supported, strict: unknown fields fail)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from jupyter_orch.core.queue import PendingTask
from jupyter_orch.core.resources import Resources
from jupyter_orch.providers.base import ProviderContext
from jupyter_orch.providers.kubernetes import KubernetesProvider, podspec
from jupyter_orch.providers.kubernetes import client as kube_client
from jupyter_orch.providers.kubernetes.client import unknown_fields

VERSIONS = ("1.27.0", "1.37.0")  # the Kubernetes versions supported (lowest, highest)
TOKEN = "s3cr3t-worker-token-value"


def settings(**changes: Any) -> podspec.PodSettings:
    base = podspec.PodSettings(namespace="jhub", server_id="srv1", server_url="http://10.0.0.5:8888/user/ann")
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def task(
    gpus: int = 1, gpu_type: str | None = "A100", image: str | None = "pytorch:2", **res: Any
) -> PendingTask:
    resources = Resources.from_dict({"gpus": gpus, "gpu_type": gpu_type, "cpus": 4, "memory": "16Gi", **res})
    return PendingTask("t" * 26, "ann@example.org", 0, 1, resources, image)


def request(t: PendingTask, name: str = "orch-ann-1", **kw: Any) -> podspec.PodRequest:
    shape = podspec.shape_of(t, "python:3.11-slim", 4 << 30)
    return podspec.PodRequest(name, t.owner, shape, (t.id,), podspec.secret_name(name), "tok1", **kw)


def container(pod: dict[str, Any], name: str = "worker") -> dict[str, Any]:
    return next(c for c in pod["spec"]["containers"] if c["name"] == name)


def validate(doc: dict[str, Any]) -> None:
    for version in VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


def test_a_gpu_pod_asks_for_what_its_task_needs_and_carries_no_token() -> None:
    pod = podspec.build_pod(request(task()), settings())
    worker = container(pod)
    assert worker["image"] == "pytorch:2"
    assert worker["resources"] == {
        "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
        "limits": {"memory": "16Gi", "nvidia.com/gpu": "1"},
    }
    assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "A100"}
    assert pod["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert pod["spec"]["restartPolicy"] == "Never" and pod["spec"]["automountServiceAccountToken"] is False
    meta = pod["metadata"]
    assert meta["name"] == "orch-ann-1" and meta["namespace"] == "jhub"
    assert meta["labels"] == {
        "app.kubernetes.io/managed-by": "jupyter-orch",
        "app.kubernetes.io/component": "worker",
        "jupyter-orch/server": "srv1",
        "jupyter-orch/owner": "ann-example.org",
    }
    assert meta["annotations"]["jupyter-orch/tasks"] == "t" * 26
    assert meta["annotations"]["jupyter-orch/owner"] == "ann@example.org"
    env = {e["name"]: e for e in worker["env"]}
    assert env["JUPYTER_ORCH_TOKEN"] == {
        "name": "JUPYTER_ORCH_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "orch-ann-1-token", "key": "token"}},
    }
    assert TOKEN not in json.dumps(pod)
    args = worker["args"]
    assert worker["command"] == ["python3"] and args[:2] == ["-m", "jupyter_orch.worker"]
    flags = dict(zip(args[2::2], args[3::2], strict=False))
    assert flags["--server"] == "http://10.0.0.5:8888/user/ann"
    assert flags["--name"] == flags["--worker-id"] == "orch-ann-1"
    assert flags["--label"] == "jupyter-orch/pod=orch-ann-1" and flags["--image"] == "pytorch:2"
    assert flags["--cpus"] == "4" and flags["--memory"] == "16Gi" and "--gpus" not in flags
    # SIGTERM from the kubelet (an eviction, a spot node's notice) preempts the tasks, within
    # the pod's grace less time to report it
    assert flags["--on-sigterm"] == "preempt" and flags["--preempt-grace"] == "25"
    assert pod["spec"]["terminationGracePeriodSeconds"] == 30
    validate(pod)


def test_the_runtime_comes_from_an_init_container_through_a_shared_volume() -> None:
    pod = podspec.build_pod(request(task()), settings(runtime_image="orch-runtime:1"))
    [init] = pod["spec"]["initContainers"]
    assert init["image"] == "orch-runtime:1" and init["name"] == "orch-runtime"
    assert init["volumeMounts"] == [{"name": "orch-runtime", "mountPath": "/opt/jupyter-orch/mnt"}]
    assert pod["spec"]["volumes"] == [{"name": "orch-runtime", "emptyDir": {}}]
    worker = container(pod)
    assert {"name": "PYTHONPATH", "value": "/opt/jupyter-orch/mnt"} in worker["env"]
    assert worker["volumeMounts"][0]["readOnly"] is True
    plain = podspec.build_pod(request(task()), settings(runtime="image", python="/opt/conda/bin/python"))
    assert "initContainers" not in plain["spec"] and "volumes" not in plain["spec"]
    assert container(plain)["command"] == ["/opt/conda/bin/python"]
    assert all(e["name"] != "PYTHONPATH" for e in container(plain)["env"])
    validate(plain)


def test_a_cpu_pod_offers_no_gpus_and_tolerates_no_gpu_taint() -> None:
    t = task(gpus=0, gpu_type=None, image=None, cpus=0.5, memory=None, labels={"pool": "batch"})
    pod = podspec.build_pod(request(t), settings())
    worker = container(pod)
    assert worker["image"] == "python:3.11-slim"  # the default image
    assert worker["resources"]["requests"] == {"cpu": "500m", "memory": "4Gi"}
    assert "tolerations" not in pod["spec"]
    assert pod["spec"]["nodeSelector"] == {"pool": "batch"}  # a task's labels are node labels
    args = worker["args"]
    assert args[args.index("--gpus") + 1] == "none"
    assert "pool=batch" in args
    validate(pod)


def test_a_gpu_type_matches_the_node_label_values_that_name_it() -> None:
    known = ["NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-PCIE-40GB", "NVIDIA-A10", "NVIDIA-H100-80GB-HBM3"]
    values = podspec.matching_gpu_types("A100", known)
    assert values == ("NVIDIA-A100-PCIE-40GB", "NVIDIA-A100-SXM4-80GB")
    pod = podspec.build_pod(request(task(), gpu_type_values=values), settings())
    assert "nodeSelector" not in pod["spec"]
    term = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "nvidia.com/gpu.product", "operator": "In", "values": list(values)}
    ]
    validate(pod)
    amd = podspec.build_pod(
        request(task(gpu_type="MI300X")),
        settings(gpu_resource="amd.com/gpu", gpu_type_label="amd.com/gpu.product-name"),
    )
    assert container(amd)["resources"]["limits"]["amd.com/gpu"] == "1"
    assert amd["spec"]["nodeSelector"] == {"amd.com/gpu.product-name": "MI300X"}


def test_the_pod_template_merges_by_name_and_cannot_change_what_the_provider_relies_on() -> None:
    template = podspec.validate_template(
        """
metadata:
  name: not-this
  labels: {team: vision, jupyter-orch/server: other}
spec:
  priorityClassName: research
  tolerations: null
  containers:
    - name: worker
      command: ["sh"]
      env: [{name: HF_HOME, value: /cache}]
      volumeMounts: [{name: cache, mountPath: /cache}]
    - name: sidecar
      image: busybox
  volumes: [{name: cache, emptyDir: {}}]
"""
    )
    pod = podspec.build_pod(request(task()), settings(pod_template=template))
    assert pod["metadata"]["name"] == "orch-ann-1"
    assert pod["metadata"]["labels"]["team"] == "vision"
    assert pod["metadata"]["labels"]["jupyter-orch/server"] == "srv1"
    assert pod["spec"]["priorityClassName"] == "research" and "tolerations" not in pod["spec"]
    worker = container(pod)
    assert worker["command"] == ["python3"]  # the worker's command stays
    names = [e["name"] for e in worker["env"]]
    assert names[0] == "JUPYTER_ORCH_TOKEN" and "HF_HOME" in names
    assert {m["name"] for m in worker["volumeMounts"]} == {"orch-runtime", "cache"}
    assert [c["name"] for c in pod["spec"]["containers"]] == ["worker", "sidecar"]
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["orch-runtime", "cache"]
    validate(pod)
    assert unknown_fields(pod) == []


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("spec: [", "is not valid YAML"),
        ("- a\n- b", "must be a mapping"),
        ({"containers": []}, "has containers: a pod template has only metadata and spec"),
        (
            {"spec": {"containers": [{"image": "x"}]}},
            "spec.containers must be a list of containers, each with a name",
        ),
    ],
)
def test_a_bad_pod_template_is_refused_naming_the_setting(template: Any, message: str) -> None:
    with pytest.raises(ValueError, match="KubernetesProvider.pod_template") as err:
        podspec.validate_template(template)
    assert message in str(err.value)


def test_a_template_field_a_pod_does_not_have_is_named() -> None:
    provider = KubernetesProvider(
        pod_template={
            "spec": {"containers": [{"name": "worker", "resourcez": {}}], "nodeSelektor": {"a": "b"}}
        }
    )
    s = settings(pod_template=podspec.validate_template(provider.pod_template))
    with pytest.raises(ValueError, match=r"pod_template has fields a Pod does not have: .*nodeSelektor"):
        provider.check_template(s, unknown_fields)


def test_kueue_scheduler_and_owner_reference() -> None:
    owner = {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "jupyter-ann",
        "uid": "u-1",
        "blockOwnerDeletion": False,
        "controller": False,
    }
    s = settings(
        kueue_queue="gpu-queue", scheduler_name="volcano", owner_reference=owner, labels={"team": "nlp"}
    )
    pod = podspec.build_pod(request(task()), s)
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    assert pod["metadata"]["labels"]["team"] == "nlp"
    assert pod["spec"]["schedulerName"] == "volcano"
    assert pod["metadata"]["ownerReferences"] == [owner]
    validate(pod)
    secret = podspec.build_secret("orch-ann-1-token", TOKEN, s, "ann", owner)
    assert "kueue.x-k8s.io/queue-name" not in secret["metadata"]["labels"]
    assert secret["metadata"]["labels"]["jupyter-orch/server"] == "srv1"
    assert secret["metadata"]["ownerReferences"] == [owner]
    validate(secret)
    created = {**pod, "metadata": {**pod["metadata"], "uid": "pod-uid"}}
    assert podspec.pod_owner_reference(created)["uid"] == "pod-uid"


def test_a_secret_holds_the_token_base64_encoded() -> None:
    import base64

    secret = podspec.build_secret("orch-ann-1-token", TOKEN, settings(), "ann", None)
    assert base64.b64decode(secret["data"]["token"]).decode() == TOKEN
    assert "ownerReferences" not in secret["metadata"]
    validate(secret)


def test_names_and_quantities() -> None:
    for owner in ("Ann Smith@Example.ORG", "-_-", "x" * 200, "jupyter-ann"):
        name = podspec.pod_name(owner)
        assert len(name) <= 63 and podspec._DNS_BAD.search(name) is None and name[-1].isalnum()
    assert podspec.label_value("ann@example.org") == "ann-example.org"
    assert podspec.label_value("-" * 70) == ""
    assert podspec.cpu_quantity(2) == "2" and podspec.cpu_quantity(0.25) == "250m"
    assert podspec.cpu_quantity(1.0005) == "1001m"
    assert podspec.memory_quantity(4 << 30) == "4Gi" and podspec.memory_quantity(1500) == "1500"


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("gpu_resource", "nvidia gpu", "must be a resource name"),
        ("gpu_type_label", "bad key!", "invalid label key"),
        ("labels", {"jupyter-orch/server": "x"}, "may not set jupyter-orch/server"),
        ("labels", {"team": "a b"}, "invalid value"),
        ("default_memory", "lots", "KubernetesProvider.default_memory must be a size"),
        ("max_pods", -1, "must be >= 0"),
        ("unschedulable_timeout", 0, "must be a positive number of seconds"),
        ("image_pull_attempts", 0, "must be >= 1 (1: fail at the first failed pull)"),
        ("image_pull_timeout", -5, "must be a positive number of seconds"),
        ("server_url", "10.0.0.1:8888", "must be an http(s) URL"),
        ("kueue_queue", "no spaces allowed", "must be a valid label value"),
        ("scheduler_name", "Volcano!", "must be a DNS name"),
        ("gpu_tolerations", [{"key": "a", "efect": "NoSchedule"}], "unknown fields ['efect']"),
    ],
)
def test_every_bad_setting_is_named(setting: str, value: Any, message: str) -> None:
    provider = KubernetesProvider(**{setting: value})
    with pytest.raises(ValueError, match=setting) as err:
        provider.check_settings()
    assert message in str(err.value)


def test_the_default_settings_are_sound() -> None:
    provider = KubernetesProvider()
    provider.check_settings()
    assert provider.gpu_resource == "nvidia.com/gpu" and provider.max_pods == 10
    assert provider.runtime_command[-1] == provider.runtime_path + "/"


def test_kube_context_picks_the_kubeconfig_context(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``kube_context`` (not the server's ProviderContext) is the context the kubeconfig is read with."""
    seen: dict[str, Any] = {}

    def connect(**kwargs: Any) -> Any:
        seen.update(kwargs)
        raise OSError("no cluster here")

    async def issue(name: str, provider: str) -> tuple[str, str]:
        return "id", "secret"

    async def revoke(token_id: str) -> bool:
        return True

    monkeypatch.setattr(kube_client, "connect", connect)
    provider = KubernetesProvider(kubeconfig=str(tmp_path / "kubeconfig"), kube_context="emu")
    context = ProviderContext("http://127.0.0.1:8888", str(tmp_path), issue, revoke)
    with pytest.raises(RuntimeError, match="no cluster configuration"):
        asyncio.run(provider.start(context))
    assert seen["context"] == "emu" and seen["kubeconfig"] == str(tmp_path / "kubeconfig")
