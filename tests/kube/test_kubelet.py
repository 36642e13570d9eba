"""The test kubelet: pods created through the API run as local processes and report back."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from support.kube import KubeApiServer, Kubelet, PodWatch, container_state, phase
from support.orchserver import tagged_pids

NS = "default"
PY = "python3"


def make_pod(
    name: str,
    code: str = "print('hi')",
    *,
    gpus: int = 0,
    env: list[dict[str, Any]] | None = None,
    restart: str = "Never",
    labels: dict[str, str] | None = None,
    image: str = "python:3.11-slim",
    **spec: Any,
) -> dict[str, Any]:
    main: dict[str, Any] = {"name": "main", "image": image, "command": [PY, "-c", code], "env": env or []}
    if gpus:
        main["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    body = {"restartPolicy": restart, "containers": [main], **spec}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": body,
    }


def condition(pod: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in pod["status"].get("conditions", []) if c["type"] == type_)


def unschedulable(message: str) -> Any:
    """A PodWatch predicate: PodScheduled is False for reason Unschedulable, with ``message``."""

    def check(pod: dict[str, Any]) -> bool:
        conds = [c for c in pod["status"].get("conditions", []) if c["type"] == "PodScheduled"]
        found = [(c["status"], c.get("reason"), c.get("message")) for c in conds]
        return found == [("False", "Unschedulable", message)]

    return check


def wait_log(v1: Any, name: str, text: str) -> None:
    """Follow the pod's log until ``text`` appears (its process got that far)."""
    resp = v1.read_namespaced_pod_log(name, NS, follow=True, _preload_content=False)
    seen = b""
    for chunk in resp.stream(amt=None):
        seen += chunk
        if text.encode() in seen:
            resp.close()  # not back to the pool: the stream goes on
            return
    raise AssertionError(f"pod {name} ended without printing {text!r}: {seen!r}")


def main_status(pod: dict[str, Any]) -> dict[str, Any]:
    return dict((pod["status"].get("containerStatuses") or [{}])[0])


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_pod_runs_to_success_with_its_log(kubelet: Kubelet, v1: Any) -> None:
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(NS, make_pod("hello", "print('hi')"))
        done = pods.wait("hello", phase("Succeeded", "Failed"))
        assert pods.phases("hello") == ["Pending", "Running", "Succeeded"]
    term = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (0, "Completed")
    assert done["spec"]["nodeName"] == "node-0" and done["status"]["podIP"] == "127.0.0.1"
    assert condition(done, "PodScheduled")["status"] == "True"
    ready = condition(done, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "PodCompleted")
    assert v1.read_namespaced_pod_log("hello", NS) == "hi\n"
    pod = v1.read_namespaced_pod("hello", NS)  # the typed client reads what the kubelet wrote
    assert pod.status.container_statuses[0].state.terminated.exit_code == 0
    reasons = {
        e.reason for e in v1.list_namespaced_event(NS, field_selector="involvedObject.name=hello").items
    }
    assert {"Scheduled", "Pulled", "Created", "Started"} <= reasons


def test_a_failing_command_fails_the_pod_with_its_exit_code(kubelet: Kubelet, v1: Any) -> None:
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(
            NS, make_pod("bad", "import sys; print('oops', file=sys.stderr); sys.exit(3)")
        )
        done = pods.wait("bad", phase("Succeeded", "Failed"))
    assert done["status"]["phase"] == "Failed"
    term = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (3, "Error")
    assert v1.read_namespaced_pod_log("bad", NS) == "oops\n"  # stderr too


def test_a_missing_executable_is_a_start_error(kubelet: Kubelet, v1: Any) -> None:
    body = make_pod("noexec")
    body["spec"]["containers"][0]["command"] = ["no-such-binary-here"]
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(NS, body)
        done = pods.wait("noexec", phase("Failed"))
    term = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (128, "StartError")
    assert "executable file not found" in term["message"] or "No such file" in term["message"]


def test_env_from_secrets_and_the_downward_api(kubelet: Kubelet, v1: Any) -> None:
    v1.create_namespaced_secret(
        NS,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="creds"), string_data={"token": "s3cret", "USER": "ada"}
        ),
    )
    env = [
        {"name": "PLAIN", "value": "literal"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "GREETING", "value": "hello $(PLAIN)"},
    ]
    body = make_pod("envs", "import json, os; print(json.dumps(dict(os.environ)))", env=env)
    body["spec"]["containers"][0]["envFrom"] = [{"secretRef": {"name": "creds"}, "prefix": "S_"}]
    body["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "250m"}}
    cpu = {"resourceFieldRef": {"containerName": "main", "resource": "requests.cpu"}}
    body["spec"]["containers"][0]["env"].append({"name": "CPU", "valueFrom": cpu})
    with PodWatch(v1) as pods:
        uid = v1.create_namespaced_pod(NS, body).metadata.uid
        pods.wait("envs", phase("Succeeded"))
    seen = json.loads(v1.read_namespaced_pod_log("envs", NS))
    expected = {
        "PLAIN": "literal",
        "TOKEN": "s3cret",
        "POD_IP": "127.0.0.1",
        "POD_NAME": "envs",
        "POD_NS": NS,
    }
    assert {k: seen[k] for k in expected} == expected
    assert seen["POD_UID"] == uid and seen["GREETING"] == "hello literal" and seen["CPU"] == "250m"
    assert (seen["S_token"], seen["S_USER"]) == ("s3cret", "ada")
    assert seen["ORCH_TEST_TAG"] == kubelet.tag and seen["HOSTNAME"] == "envs"
    assert "JUPYTER_ORCH_URL" not in seen  # the test process's environment does not leak in


def test_a_missing_secret_holds_the_container_until_it_exists(kubelet: Kubelet, v1: Any) -> None:
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "token"}}}]
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(NS, make_pod("waits", "import os; print(os.environ['TOKEN'])", env=env))
        held = pods.wait("waits", container_state("waiting", "CreateContainerConfigError"))
        assert (
            held["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
            == 'secret "later" not found'
        )
        v1.create_namespaced_secret(
            NS, client.V1Secret(metadata=client.V1ObjectMeta(name="later"), string_data={"token": "now"})
        )
        pods.wait("waits", phase("Succeeded"))
    assert v1.read_namespaced_pod_log("waits", NS) == "now\n"


def test_an_init_container_fills_an_empty_dir_first(kubelet: Kubelet, v1: Any, tmp_path: Path) -> None:
    src = tmp_path / "runtime"
    src.mkdir()
    (src / "orch_runtime_probe.py").write_text("WHO = 'runtime'\n")
    init = {
        "name": "copy-runtime",
        "image": "orch-runtime:1",
        "command": ["cp", "-R", f"{src}/.", "/opt/orch-runtime/"],
        "volumeMounts": [{"name": "runtime", "mountPath": "/opt/orch-runtime"}],
    }
    code = "import orch_runtime_probe, os; print(orch_runtime_probe.WHO, os.environ['PYTHONPATH'].endswith('/runtime'))"
    body = make_pod("inited", code, env=[{"name": "PYTHONPATH", "value": "/rt"}])
    body["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "runtime", "mountPath": "/rt", "readOnly": True}
    ]
    body["spec"] |= {"initContainers": [init], "volumes": [{"name": "runtime", "emptyDir": {}}]}
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(NS, body)
        done = pods.wait("inited", phase("Succeeded", "Failed"))
        initializing = pods.wait("inited", lambda p: p["status"].get("initContainerStatuses") is not None)
    assert initializing["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    assert v1.read_namespaced_pod_log("inited", NS) == "runtime True\n"
    init_state = done["status"]["initContainerStatuses"][0]["state"]["terminated"]
    main_state = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert init_state["reason"] == "Completed" and init_state["finishedAt"] <= main_state["startedAt"]
    assert condition(done, "Initialized")["status"] == "True"


def test_a_failing_init_container_fails_the_pod_before_its_containers(kubelet: Kubelet, v1: Any) -> None:
    body = make_pod("badinit", "print('never')")
    body["spec"]["initContainers"] = [
        {"name": "setup", "image": "x:1", "command": [PY, "-c", "raise SystemExit(2)"]}
    ]
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(NS, body)
        done = pods.wait("badinit", phase("Failed"))
    assert done["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 2
    assert done["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    assert condition(done, "Initialized")["reason"] == "ContainersNotInitialized"


def test_gpu_requests_wait_for_a_node_with_gpus(kube_api: KubeApiServer, kubelet: Kubelet, v1: Any) -> None:
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(NS, make_pod("trainer", "import time; time.sleep(30)", gpus=2))
        waiting = pods.wait(
            "trainer", unschedulable("0/1 nodes are available: 1 Insufficient nvidia.com/gpu.")
        )
        cond = condition(waiting, "PodScheduled")
        assert waiting["status"]["phase"] == "Pending" and not waiting["spec"].get("nodeName")
        events = v1.list_namespaced_event(
            NS, field_selector="involvedObject.name=trainer,reason=FailedScheduling"
        )
        assert [e.message for e in events.items] == [cond["message"]] and events.items[0].type == "Warning"

        kube_api.add_node("gpu-0", gpus=2)
        running = pods.wait("trainer", phase("Running"))
        assert running["spec"]["nodeName"] == "gpu-0"

        # both GPUs are taken: the next GPU pod waits until the first one ends
        v1.create_namespaced_pod(NS, make_pod("second", gpus=1))
        pods.wait("second", unschedulable("0/2 nodes are available: 2 Insufficient nvidia.com/gpu."))
        v1.delete_namespaced_pod("trainer", NS)
        done = pods.wait("second", phase("Succeeded"))
    assert done["spec"]["nodeName"] == "gpu-0"


def test_node_selectors_affinity_and_taints(kube_api: KubeApiServer, kubelet: Kubelet, v1: Any) -> None:
    kube_api.add_node(
        "a100",
        gpus=1,
        gpu_product="NVIDIA-A100-SXM4-80GB",
        taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
    )
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(
            NS, make_pod("h100", gpus=1, nodeSelector={"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"})
        )
        msg = (
            "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector,"
            " 1 node(s) had untolerated taint {nvidia.com/gpu: present}."
        )
        pods.wait("h100", unschedulable(msg))
        term = {
            "matchExpressions": [
                {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-A100-SXM4-80GB"]}
            ]
        }
        affinity = {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}
        }
        tolerations = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        v1.create_namespaced_pod(NS, make_pod("a100-pod", gpus=1, affinity=affinity, tolerations=tolerations))
        assert pods.wait("a100-pod", phase("Succeeded"))["spec"]["nodeName"] == "a100"


def test_injected_unschedulable(kubelet: Kubelet, v1: Any) -> None:
    kubelet.unschedulable(prefix="stuck-")
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(NS, make_pod("stuck-1"))
        v1.create_namespaced_pod(NS, make_pod("free-1"))
        assert pods.wait("free-1", phase("Succeeded"))
        pods.wait("stuck-1", unschedulable("0/1 nodes are available: 1 Insufficient cpu."))
        kubelet.clear_failures()
        pods.wait("stuck-1", phase("Succeeded"))


def test_injected_image_pull_backoff(kubelet: Kubelet, v1: Any) -> None:
    kubelet.image_pull_backoff("registry.example/missing:1")
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(NS, make_pod("pull", image="registry.example/missing:1"))
        err = pods.wait("pull", container_state("waiting", "ErrImagePull"))
        back = pods.wait("pull", container_state("waiting", "ImagePullBackOff"))
        assert (
            back["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
            == 'Back-off pulling image "registry.example/missing:1"'
        )
        assert (
            "registry.example/missing:1"
            in err["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        )
        assert back["status"]["phase"] == "Pending"
        reasons = [
            e.reason for e in v1.list_namespaced_event(NS, field_selector="involvedObject.name=pull").items
        ]
        assert "BackOff" in reasons and "Failed" in reasons and "Started" not in reasons
        kubelet.clear_failures()  # the image appears: the next pull works
        pods.wait("pull", phase("Succeeded"))


def test_a_pull_that_fails_twice_then_works_shows_the_kubelets_sequence(kubelet: Kubelet, v1: Any) -> None:
    kubelet.image_pull_fails("registry.example/flaky:1", times=2)
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(NS, make_pod("flaky", image="registry.example/flaky:1"))
        pods.wait("flaky", phase("Succeeded"))
        waiting = [main_status(p).get("state", {}).get("waiting") for p in pods.seen("flaky")]
        seen = [(w.get("reason"), w.get("message")) for w in waiting if w]
    reasons = [r for i, (r, _) in enumerate(seen) if i == 0 or seen[i - 1][0] != r]
    back = 'Back-off pulling image "registry.example/flaky:1"'
    assert reasons == [
        "ContainerCreating",
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImagePull",
        "ImagePullBackOff",
    ]
    assert ("ImagePullBackOff", back) in seen
    assert any(r == "ErrImagePull" and "429 Too Many Requests" in (m or "") for r, m in seen)
    assert kubelet.pulls["registry.example/flaky:1"] == 3
    events = v1.list_namespaced_event(NS, field_selector="involvedObject.name=flaky").items
    said = [(e.reason, e.message) for e in events]
    assert [m for r, m in said if r == "Pulling"] == ['Pulling image "registry.example/flaky:1"'] * 3
    failed = [m for r, m in said if r == "Failed" and m.startswith("Failed to pull image")]
    assert len(failed) == 2 and all(
        m.startswith('Failed to pull image "registry.example/flaky:1": rpc error') for m in failed
    )
    assert [r for r, m in said if m == "Error: ErrImagePull"] == ["Failed", "Failed"]
    assert any(
        r == "Pulled" and m.startswith('Successfully pulled image "registry.example/flaky:1" in ')
        for r, m in said
    )
    assert {e.involved_object.field_path for e in events if e.reason in ("Pulling", "BackOff")} == {
        "spec.containers{main}"
    }


def test_injected_oom_kill(kubelet: Kubelet, v1: Any) -> None:
    kubelet.oom_kill(labels={"app": "hungry"})
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(
            NS,
            make_pod(
                "hungry", "import time; print('eating', flush=True); time.sleep(60)", labels={"app": "hungry"}
            ),
        )
        done = pods.wait("hungry", phase("Succeeded", "Failed"))
        assert pods.phases("hungry") == ["Pending", "Running", "Failed"]
    term = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (137, "OOMKilled")


def test_oom_kill_of_a_running_pod_with_restarts(kubelet: Kubelet, v1: Any) -> None:
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(
            NS, make_pod("again", "import time; print('up', flush=True); time.sleep(60)", restart="OnFailure")
        )
        pods.wait("again", container_state("running"))
        kubelet.oom_kill(prefix="again")  # a pod already running
        restarted = pods.wait("again", lambda p: main_status(p).get("restartCount", 0) >= 1)
        status = main_status(restarted)
        assert status["lastState"]["terminated"]["reason"] == "OOMKilled"
        assert (
            status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
            and restarted["status"]["phase"] == "Running"
        )
        kubelet.clear_failures()
        pods.wait(
            "again",
            lambda p: main_status(p).get("restartCount", 0) >= 1 and "running" in main_status(p)["state"],
        )


def test_injected_eviction(kubelet: Kubelet, v1: Any) -> None:
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(NS, make_pod("victim", "import time; time.sleep(60)"))
        pods.wait("victim", container_state("running"))
        pid = kubelet.pid("victim")
        assert pid is not None and pid_alive(pid)
        kubelet.evict(prefix="victim")
        done = pods.wait("victim", phase("Failed"))
    assert (done["status"]["reason"], done["status"]["message"]) == (
        "Evicted",
        "The node was low on resource: memory.",
    )
    assert condition(done, "DisruptionTarget")["reason"] == "TerminationByKubelet"
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137
    assert not pid_alive(pid)


def test_injected_node_loss(kube_api: KubeApiServer, kubelet: Kubelet, v1: Any) -> None:
    kube_api.add_node("gpu-1", gpus=1)
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(NS, make_pod("on-gpu", "import time; time.sleep(60)", gpus=1))
        v1.create_namespaced_pod(NS, make_pod("on-gpu-2", "import time; time.sleep(60)", gpus=1))
        pods.wait("on-gpu", container_state("running"))
        pid = kubelet.pid("on-gpu")
        kubelet.node_lost("gpu-1")
        done = pods.wait("on-gpu", phase("Failed"))
        assert done["status"]["reason"] == "NodeLost"
        assert condition(done, "DisruptionTarget")["reason"] == "DeletionByPodGC"
        assert [n.metadata.name for n in v1.list_node().items] == ["node-0"]
        pods.wait("on-gpu-2", unschedulable("0/1 nodes are available: 1 Insufficient nvidia.com/gpu."))
    assert pid is not None and not pid_alive(pid)


def test_node_loss_can_delete_the_pods(kube_api: KubeApiServer, kubelet: Kubelet, v1: Any) -> None:
    kube_api.add_node("gpu-2", gpus=1)
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(NS, make_pod("gc", "import time; time.sleep(60)", gpus=1))
        pods.wait("gc", container_state("running"))
        kubelet.node_lost("gpu-2", delete_pods=True)
        pods.wait("gc", etype="DELETED")


def test_deleting_a_running_pod_ends_its_process(kubelet: Kubelet, v1: Any, tmp_path: Path) -> None:
    marker = tmp_path / "got-sigterm"
    code = (
        "import signal, sys, time\n"
        f"signal.signal(signal.SIGTERM, lambda *a: (open({str(marker)!r}, 'w').close(), sys.exit(0)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(NS, make_pod("victim", code, terminationGracePeriodSeconds=5))
        pods.wait("victim", container_state("running"))
        wait_log(v1, "victim", "ready")  # its SIGTERM handler is in place
        pid = kubelet.pid("victim")
        deleted = v1.delete_namespaced_pod("victim", NS)
        assert deleted.metadata.deletion_timestamp is not None  # graceful: the kubelet ends it
        pods.wait("victim", etype="DELETED")
    assert marker.exists()  # SIGTERM came first
    assert pid is not None and not pid_alive(pid)
    reasons = {
        e.reason for e in v1.list_namespaced_event(NS, field_selector="involvedObject.name=victim").items
    }
    assert "Killing" in reasons


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period(kubelet: Kubelet, v1: Any) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(NS, make_pod("stubborn", code, terminationGracePeriodSeconds=1))
        pods.wait("stubborn", container_state("running"))
        wait_log(v1, "stubborn", "up")
        pid = kubelet.pid("stubborn")
        started = time.monotonic()
        v1.delete_namespaced_pod("stubborn", NS)
        last = pods.wait("stubborn", container_state("terminated"))
        pods.wait("stubborn", etype="DELETED")
    assert 0.9 < time.monotonic() - started < 10
    assert last["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137
    assert pid is not None and not pid_alive(pid)


def test_restart_on_failure_keeps_the_previous_log(kubelet: Kubelet, v1: Any, tmp_path: Path) -> None:
    flag = tmp_path / "second-time"
    code = f"import os, sys; p = {str(flag)!r}; first = not os.path.exists(p); open(p, 'w').close(); print('first' if first else 'second'); sys.exit(1 if first else 0)"
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(NS, make_pod("flaky", code, restart="OnFailure"))
        done = pods.wait("flaky", phase("Succeeded", "Failed"))
    status = done["status"]["containerStatuses"][0]
    assert done["status"]["phase"] == "Succeeded" and status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert v1.read_namespaced_pod_log("flaky", NS) == "second\n"
    assert v1.read_namespaced_pod_log("flaky", NS, previous=True) == "first\n"


def test_follow_streams_a_running_pods_log(kubelet: Kubelet, v1: Any) -> None:
    code = "import sys, time\nfor i in range(3):\n    print(f'line {i}', flush=True)\n    time.sleep(0.2)\n"
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(NS, make_pod("chatty", code))
        pods.wait("chatty", container_state("running"))
        resp = v1.read_namespaced_pod_log("chatty", NS, follow=True, _preload_content=False)
        chunks = resp.stream(amt=None)
        first = next(chunks)
        phase_then = v1.read_namespaced_pod("chatty", NS).status.phase
        rest = b"".join(chunks)
    assert first.startswith(b"line 0") and phase_then == "Running"
    assert (first + rest).decode() == "line 0\nline 1\nline 2\n"


def test_the_kubelet_survives_api_failures(kube_api: KubeApiServer, kubelet: Kubelet, v1: Any) -> None:
    with PodWatch(v1) as pods:
        kube_api.fail_next(3, 503, path="/status")
        kube_api.fail_next(2, 500, path="/events")
        kube_api.drop_watches()
        v1.create_namespaced_pod(NS, make_pod("sturdy"))
        pods.wait("sturdy", phase("Succeeded"))
        kube_api.drop_watches(abrupt=True)  # the kubelet lists again and goes on
        v1.create_namespaced_pod(NS, make_pod("sturdier"))
        pods.wait("sturdier", phase("Succeeded"))


def test_escaped_processes_are_killed_at_stop(kube_api: KubeApiServer, v1: Any, tmp_path: Path) -> None:
    kube_api.add_node("node-x")
    kubelet = Kubelet(kube_api, tmp_path / "k").start()
    code = "import subprocess, sys, time; subprocess.Popen(['env', '-u', 'ORCH_TEST_CONTAINER', 'setsid', 'sleep', '120']); print('spawned', flush=True); time.sleep(60)"
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(NS, make_pod("escaper", code))
        pods.wait("escaper", container_state("running"))
    deadline = time.monotonic() + 10
    while len(tagged_pids(kubelet.tag)) < 2 and time.monotonic() < deadline:  # the grandchild starts
        time.sleep(0.05)
    escaped = kubelet.stop()
    assert len(escaped) == 1  # the setsid grandchild left the pod's process group
    assert tagged_pids(kubelet.tag) == [] and os.getpid() not in escaped


def test_a_containers_other_processes_end_with_it(kubelet: Kubelet, v1: Any) -> None:
    """As in a container's cgroup: children in a session of their own die with the container."""
    code = "import subprocess; p = subprocess.Popen(['setsid', 'sleep', '120']); print(p.pid, flush=True)"
    with PodWatch(v1) as pods:
        v1.create_namespaced_pod(NS, make_pod("parent", code))
        pods.wait("parent", phase("Succeeded"))
    child = int(v1.read_namespaced_pod_log("parent", NS))
    assert not pid_alive(child)
