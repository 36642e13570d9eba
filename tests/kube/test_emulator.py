"""The Kubernetes API emulator, through the official client over real HTTP."""

from __future__ import annotations

import json
import queue
import threading
import time
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from support.kube import KubeApiServer

NS = "default"


def pod(name: str | None = None, labels: dict[str, str] | None = None, **spec: Any) -> client.V1Pod:
    meta = client.V1ObjectMeta(name=name, labels=labels, generate_name=None if name else "worker-")
    containers = spec.pop("containers", None) or [client.V1Container(name="main", image="python:3.11")]
    return client.V1Pod(metadata=meta, spec=client.V1PodSpec(containers=containers, **spec))


def names(items: list[Any]) -> list[str]:
    return sorted(i.metadata.name for i in items)


def status_body(exc: ApiException) -> dict[str, Any]:
    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == exc.status
    return dict(body)


def test_discovery_version_and_namespaces(kube_api: KubeApiServer, v1: Any) -> None:
    assert client.VersionApi(kube_api.api_client()).get_code().git_version == "v1.29.0"
    assert client.CoreApi(kube_api.api_client()).get_api_versions().versions == ["v1"]
    resources = {r.name: r for r in v1.get_api_resources().resources}
    assert resources["pods"].namespaced and not resources["nodes"].namespaced
    assert {"pods/log", "pods/status", "secrets", "events"} <= set(resources)
    assert v1.read_namespace("default").status.phase == "Active"
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_pod("elsewhere", pod("a"))
    assert err.value.status == 404 and status_body(err.value)["message"] == 'namespaces "elsewhere" not found'
    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="elsewhere")))
    assert v1.create_namespaced_pod("elsewhere", pod("a")).metadata.namespace == "elsewhere"


def test_create_fills_metadata_and_resource_versions_increase(v1: Any) -> None:
    first = v1.create_namespaced_pod(NS, pod("first"))
    second = v1.create_namespaced_pod(NS, pod())  # generateName
    assert second.metadata.name.startswith("worker-") and len(second.metadata.name) == len("worker-") + 5
    for p in (first, second):
        assert p.metadata.uid and p.metadata.namespace == NS and p.metadata.creation_timestamp.tzinfo
        assert p.status.phase == "Pending"
        assert p.spec.restart_policy == "Always" and p.spec.termination_grace_period_seconds == 30
    assert first.metadata.uid != second.metadata.uid
    patched = v1.patch_namespaced_pod("first", NS, {"metadata": {"labels": {"a": "b"}}})
    rvs = [int(x.metadata.resource_version) for x in (first, second, patched)]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3
    listed = v1.list_namespaced_pod(NS)
    assert int(listed.metadata.resource_version) == rvs[-1]
    assert v1.read_namespaced_pod("first", NS).metadata.resource_version == str(rvs[-1])
    # a no-op patch changes nothing, not even the resourceVersion
    assert v1.patch_namespaced_pod(
        "first", NS, {"metadata": {"labels": {"a": "b"}}}
    ).metadata.resource_version == str(rvs[-1])


def test_label_and_field_selectors(kube_api: KubeApiServer, v1: Any) -> None:
    v1.create_namespaced_pod(NS, pod("a", {"app": "orch", "tier": "gpu"}))
    v1.create_namespaced_pod(NS, pod("b", {"app": "orch", "tier": "cpu"}))
    v1.create_namespaced_pod(NS, pod("c", {"app": "other"}))
    v1.create_namespaced_pod(NS, pod("d"))
    cases = {
        "app=orch": ["a", "b"],
        "app==orch": ["a", "b"],
        "app!=orch": ["c", "d"],
        "tier in (gpu, tpu)": ["a"],
        "tier notin (gpu)": ["b", "c", "d"],
        "tier": ["a", "b"],
        "!tier": ["c", "d"],
        "app=orch,tier in (cpu,gpu),!missing": ["a", "b"],
    }
    for selector, expected in cases.items():
        assert names(v1.list_namespaced_pod(NS, label_selector=selector).items) == expected, selector
    kube_api.add_node("node-1")
    v1.patch_namespaced_pod_status("a", NS, {"status": {"phase": "Running"}})
    kube_api.bind(NS, "a", "node-1")
    fields = {
        "metadata.name=b": ["b"],
        "metadata.name!=b": ["a", "c", "d"],
        "status.phase=Running": ["a"],
        "status.phase!=Running,metadata.name!=d": ["b", "c"],
        "spec.nodeName=node-1": ["a"],
        "spec.nodeName=": ["b", "c", "d"],
        "metadata.namespace=default": ["a", "b", "c", "d"],
    }
    for selector, expected in fields.items():
        assert names(v1.list_namespaced_pod(NS, field_selector=selector).items) == expected, selector
    assert names(v1.list_pod_for_all_namespaces(label_selector="app=orch").items) == ["a", "b"]
    with pytest.raises(ApiException) as err:
        v1.list_namespaced_pod(NS, field_selector="spec.bogus=1")
    assert err.value.status == 400 and "field label not supported" in status_body(err.value)["message"]
    # pagination
    page = v1.list_namespaced_pod(NS, limit=3)
    rest = v1.list_namespaced_pod(NS, limit=3, _continue=page.metadata._continue)
    assert names(page.items) == ["a", "b", "c"] and names(rest.items) == ["d"] and not rest.metadata._continue


def test_errors_are_status_objects(kube_api: KubeApiServer, v1: Any) -> None:
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_pod("nope", NS)
    body = status_body(err.value)
    assert (err.value.status, err.value.reason, body["reason"]) == (404, "Not Found", "NotFound")
    assert body["message"] == 'pods "nope" not found' and body["details"] == {"name": "nope", "kind": "pods"}

    v1.create_namespaced_pod(NS, pod("taken"))
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_pod(NS, pod("taken"))
    body = status_body(err.value)
    assert (err.value.status, body["reason"], body["message"]) == (
        409,
        "AlreadyExists",
        'pods "taken" already exists',
    )

    with pytest.raises(ApiException) as err:
        v1.create_namespaced_pod(NS, pod("Not_A_Name", containers=[client.V1Container(name="c")]))
    body = status_body(err.value)
    assert (err.value.status, body["reason"]) == (422, "Invalid")
    assert {c["field"] for c in body["details"]["causes"]} == {"metadata.name", "spec.containers[0].image"}
    assert body["message"].startswith(
        'Pod "Not_A_Name" is invalid: [metadata.name: Invalid value: "Not_A_Name"'
    )

    with pytest.raises(ApiException) as err:
        v1.create_namespaced_pod(
            NS, client.V1Pod(metadata=client.V1ObjectMeta(name="empty"), spec=client.V1PodSpec(containers=[]))
        )
    assert status_body(err.value)["message"] == 'Pod "empty" is invalid: spec.containers: Required value'

    # the client refuses a container without a name; a raw request gets the server's answer
    raw = {"metadata": {"name": "raw"}, "spec": {"containers": [{"image": "x"}]}}
    resp = kube_api.api_client().call_api("POST", f"{kube_api.url}/api/v1/namespaces/{NS}/pods", body=raw)
    resp.read()
    body = json.loads(resp.data)
    assert resp.status == 422 and body["details"]["causes"][0]["field"] == "spec.containers[0].name"

    # extended resources need limits (and requests equal to them); label values are checked
    gpu = client.V1Container(
        name="c", image="x", resources=client.V1ResourceRequirements(requests={"nvidia.com/gpu": "1"})
    )
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_pod(NS, pod("gpu", containers=[gpu]))
    assert "Limit must be set for non overcommitable resources" in status_body(err.value)["message"]
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_pod(NS, pod("long", {"task": "x" * 64}))
    assert "must be no more than 63 characters" in status_body(err.value)["message"]

    # a PUT with a stale resourceVersion
    stale = v1.read_namespaced_pod("taken", NS)
    v1.patch_namespaced_pod("taken", NS, {"metadata": {"labels": {"v": "2"}}})
    stale.metadata.labels = {"v": "3"}
    with pytest.raises(ApiException) as err:
        v1.replace_namespaced_pod("taken", NS, stale)
    body = status_body(err.value)
    assert (err.value.status, body["reason"]) == (409, "Conflict")
    assert "the object has been modified" in body["message"]
    # a pod's spec is immutable but for images
    with pytest.raises(ApiException) as err:
        v1.patch_namespaced_pod("taken", NS, {"spec": {"restartPolicy": "Never"}})
    assert (
        err.value.status == 422 and "pod updates may not change fields" in status_body(err.value)["message"]
    )
    image = v1.patch_namespaced_pod(
        "taken", NS, {"spec": {"containers": [{"name": "main", "image": "python:3.12"}]}}
    )
    assert image.spec.containers[0].image == "python:3.12"


def test_patch_content_types(kube_api: KubeApiServer, v1: Any) -> None:
    v1.create_namespaced_pod(NS, pod("p", {"a": "1", "b": "2"}))
    v1.patch_namespaced_pod_status(
        "p", NS, {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    )
    # a dict goes as a strategic merge patch: conditions merge by type, null removes
    v1.patch_namespaced_pod_status(
        "p", NS, {"status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}}
    )
    got = v1.patch_namespaced_pod("p", NS, {"metadata": {"labels": {"a": None, "c": "3"}}})
    assert got.metadata.labels == {"b": "2", "c": "3"}
    assert {c.type for c in v1.read_namespaced_pod("p", NS).status.conditions} == {"Ready", "PodScheduled"}
    # a list goes as a JSON patch
    got = v1.patch_namespaced_pod(
        "p",
        NS,
        [
            {"op": "replace", "path": "/metadata/labels/b", "value": "9"},
            {"op": "remove", "path": "/metadata/labels/c"},
        ],
    )
    assert got.metadata.labels == {"b": "9"}
    with pytest.raises(ApiException) as err:
        v1.patch_namespaced_pod("p", NS, [{"op": "remove", "path": "/metadata/labels/zzz"}])
    assert err.value.status == 422
    with pytest.raises(ApiException) as err:
        v1.patch_namespaced_pod("p", NS, [{"op": "test", "path": "/metadata/labels/b", "value": "8"}])
    assert err.value.status == 422
    # an explicit merge patch replaces lists
    v1.patch_namespaced_pod_status(
        "p",
        NS,
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        _content_type="application/merge-patch+json",
    )
    assert [c.type for c in v1.read_namespaced_pod("p", NS).status.conditions] == ["Ready"]
    sent = [r["content_type"] for r in kube_api.requests if r["method"] == "PATCH"]
    assert set(sent) == {
        "application/strategic-merge-patch+json",
        "application/json-patch+json",
        "application/merge-patch+json",
    }
    # a patch carrying a stale resourceVersion is a conflict
    with pytest.raises(ApiException) as err:
        v1.patch_namespaced_pod("p", NS, {"metadata": {"resourceVersion": "1", "labels": {"x": "y"}}})
    assert err.value.status == 409


def test_status_subresource(v1: Any) -> None:
    created = v1.create_namespaced_pod(NS, pod("s"))
    current = v1.read_namespaced_pod("s", NS)
    current.status.phase = "Running"
    current.spec.restart_policy = "Never"  # ignored by /status
    replaced = v1.replace_namespaced_pod_status("s", NS, current)
    assert replaced.status.phase == "Running" and replaced.spec.restart_policy == "Always"
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    with pytest.raises(ApiException) as err:  # stale
        v1.replace_namespaced_pod_status("s", NS, current)
    assert err.value.status == 409
    # the main resource ignores the status
    v1.patch_namespaced_pod("s", NS, {"metadata": {"labels": {"k": "v"}}, "status": {"phase": "Failed"}})
    patched = v1.patch_namespaced_pod_status("s", NS, {"status": {"podIP": "10.0.0.7"}})
    assert (patched.status.phase, patched.status.pod_ip, patched.metadata.labels) == (
        "Running",
        "10.0.0.7",
        {"k": "v"},
    )


def test_pod_logs(kube_api: KubeApiServer, v1: Any) -> None:
    v1.create_namespaced_pod(NS, pod("logs"))
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_pod_log("logs", NS)
    assert err.value.status == 400
    assert (
        status_body(err.value)["message"]
        == 'container "main" in pod "logs" is waiting to start: ContainerCreating'
    )
    kube_api.set_log(NS, "logs", "one\ntwo\nthree\n")
    assert v1.read_namespaced_pod_log("logs", NS) == "one\ntwo\nthree\n"  # text/plain: the client takes it
    assert v1.read_namespaced_pod_log("logs", NS, tail_lines=2, container="main") == "two\nthree\n"
    resp = v1.read_namespaced_pod_log("logs", NS, _preload_content=False)
    assert resp.headers["Content-Type"].startswith("text/plain")
    resp.release_conn()
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_pod_log("logs", NS, previous=True)
    assert err.value.status == 400

    two = [client.V1Container(name="a", image="x"), client.V1Container(name="b", image="x")]
    v1.create_namespaced_pod(NS, pod("two", containers=two))
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_pod_log("two", NS)
    assert (
        "a container name must be specified for pod two, choose one of: [a b]"
        in status_body(err.value)["message"]
    )


def test_pod_log_follow_streams_until_the_container_ends(kube_api: KubeApiServer, v1: Any) -> None:
    uid = v1.create_namespaced_pod(NS, pod("f")).metadata.uid
    kube_api.log_start(uid, "main")
    kube_api.log_write(uid, "main", b"early\n")
    lines: queue.Queue[str | None] = queue.Queue()

    def follow() -> None:
        for line in watch.Watch().stream(v1.read_namespaced_pod_log, "f", NS):
            lines.put(line)
        lines.put(None)

    threading.Thread(target=follow, daemon=True).start()
    assert lines.get(timeout=10) == "early"
    kube_api.log_write(uid, "main", b"live 1\nlive")
    assert lines.get(timeout=10) == "live 1"  # streamed while the container runs
    kube_api.log_write(uid, "main", b" 2\n")
    assert lines.get(timeout=10) == "live 2"
    kube_api.log_end(uid, "main")
    assert lines.get(timeout=10) is None  # the stream ended with the container
    # a restart keeps the last run as "previous"
    kube_api.log_start(uid, "main")
    kube_api.log_write(uid, "main", b"second run\n")
    assert v1.read_namespaced_pod_log("f", NS) == "second run\n"
    assert v1.read_namespaced_pod_log("f", NS, previous=True) == "early\nlive 1\nlive 2\n"


def _collect(v1: Any, timeout: int = 1, **kwargs: Any) -> list[tuple[str, str, str]]:
    stream = watch.Watch().stream(v1.list_namespaced_pod, NS, timeout_seconds=timeout, **kwargs)
    return [(e["type"], e["object"].metadata.name, e["object"].metadata.resource_version) for e in stream]


def test_watch_resumes_from_a_resource_version(kube_api: KubeApiServer, v1: Any) -> None:
    v1.create_namespaced_pod(NS, pod("w1"))
    mark = v1.list_namespaced_pod(NS).metadata.resource_version
    v1.create_namespaced_pod(NS, pod("w2"))
    v1.patch_namespaced_pod("w1", NS, {"metadata": {"labels": {"x": "1"}}})
    v1.delete_namespaced_pod("w2", NS)
    events = _collect(v1, resource_version=mark)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "w2"), ("MODIFIED", "w1"), ("DELETED", "w2")]
    assert [int(rv) for _, _, rv in events] == sorted(int(rv) for _, _, rv in events)
    assert all(int(rv) > int(mark) for _, _, rv in events)
    # without a resourceVersion: the current state as ADDED
    assert [(t, n) for t, n, _ in _collect(v1)] == [("ADDED", "w1")]


def test_watch_reconnects_after_a_drop_without_missing_or_repeating(kube_api: KubeApiServer, v1: Any) -> None:
    start = v1.list_namespaced_pod(NS).metadata.resource_version
    seen: queue.Queue[tuple[str, str]] = queue.Queue()
    w = watch.Watch()

    def run() -> None:
        try:
            for e in w.stream(v1.list_namespaced_pod, NS, resource_version=start):
                seen.put((e["type"], e["object"].metadata.name))
        except Exception:  # stop() shuts the socket down under the stream
            assert w._stop

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    v1.create_namespaced_pod(NS, pod("r1"))
    assert seen.get(timeout=10) == ("ADDED", "r1")
    kube_api.drop_watches()  # the client re-watches from the last resourceVersion it saw
    v1.create_namespaced_pod(NS, pod("r2"))
    v1.create_namespaced_pod(NS, pod("r3"))
    assert [seen.get(timeout=10) for _ in range(2)] == [("ADDED", "r2"), ("ADDED", "r3")]
    watches = [r for r in kube_api.requests if r["query"].get("watch") == "true"]
    assert len(watches) == 2 and watches[1]["query"]["resourceVersion"] != start
    w.stop()
    thread.join(10)
    assert seen.empty() and not thread.is_alive()


def test_expired_resource_version_is_410_for_the_client(kube_api: KubeApiServer, v1: Any) -> None:
    v1.create_namespaced_pod(NS, pod("e1"))
    old = v1.list_namespaced_pod(NS).metadata.resource_version
    v1.create_namespaced_pod(NS, pod("e2"))
    latest = v1.list_namespaced_pod(NS).metadata.resource_version
    kube_api.compact()
    for version in (old, latest):  # even a client that saw everything must list again
        with pytest.raises(ApiException) as err:
            for _ in watch.Watch().stream(v1.list_namespaced_pod, NS, resource_version=version):
                pass
        assert err.value.status == 410 and "too old resource version" in err.value.reason
    # the raw stream: one ERROR event carrying an Expired Status
    resp = v1.list_namespaced_pod(NS, watch=True, resource_version=old, _preload_content=False)
    event = json.loads(resp.data)
    assert (
        event["type"] == "ERROR" and event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
    )
    # from a current resourceVersion all is well; a short history expires old ones by itself
    assert _collect(v1, resource_version=v1.list_namespaced_pod(NS).metadata.resource_version) == []
    kube_api.history_size = 2
    mark = v1.list_namespaced_pod(NS).metadata.resource_version
    for i in range(3):
        v1.patch_namespaced_pod("e1", NS, {"metadata": {"labels": {"i": str(i)}}})
    with pytest.raises(ApiException) as err:
        _collect(v1, resource_version=mark)
    assert err.value.status == 410


def test_bookmarks(kube_api: KubeApiServer, v1: Any) -> None:
    kube_api.bookmark_interval = 0.2
    v1.create_namespaced_pod(NS, pod("b1"))
    mark = v1.list_namespaced_pod(NS).metadata.resource_version
    w = watch.Watch()
    stream = w.stream(
        v1.list_namespaced_pod, NS, resource_version=mark, allow_watch_bookmarks=True, timeout_seconds=5
    )
    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="other")))
    v1.create_namespaced_pod("other", pod("elsewhere"))  # not in this watch's namespace
    for event in stream:
        if event["type"] == "BOOKMARK":
            break
    assert int(event["raw_object"]["metadata"]["resourceVersion"]) == kube_api.resource_version
    assert w.resource_version == event["raw_object"]["metadata"]["resourceVersion"]
    w.stop()


def test_watch_selectors_and_pods_leaving_them(kube_api: KubeApiServer, v1: Any) -> None:
    mark = v1.list_namespaced_pod(NS).metadata.resource_version
    v1.create_namespaced_pod(NS, pod("in", {"app": "orch"}))
    v1.create_namespaced_pod(NS, pod("out", {"app": "other"}))
    v1.patch_namespaced_pod("in", NS, {"metadata": {"labels": {"app": "gone"}}})
    v1.patch_namespaced_pod("out", NS, {"metadata": {"labels": {"app": "orch"}}})
    events = _collect(v1, resource_version=mark, label_selector="app=orch")
    assert [(t, n) for t, n, _ in events] == [("ADDED", "in"), ("DELETED", "in"), ("ADDED", "out")]
    events = _collect(v1, resource_version=mark, field_selector="metadata.name=out")
    assert [(t, n) for t, n, _ in events] == [("ADDED", "out"), ("MODIFIED", "out")]


def test_delete_and_deletecollection(kube_api: KubeApiServer, v1: Any) -> None:
    gone = v1.create_namespaced_pod(NS, pod("gone"))
    deleted = v1.delete_namespaced_pod("gone", NS, grace_period_seconds=5, propagation_policy="Foreground")
    assert deleted.metadata.uid == gone.metadata.uid  # the object comes back
    assert v1.list_namespaced_pod(NS).items == []
    # a pod running on a node waits for its kubelet: a deletionTimestamp, then grace 0 removes it
    kube_api.add_node("n1")
    v1.create_namespaced_pod(NS, pod("bound", node_name="n1"))
    marked = v1.delete_namespaced_pod("bound", NS, body=client.V1DeleteOptions(grace_period_seconds=7))
    assert (
        marked.metadata.deletion_timestamp is not None and marked.metadata.deletion_grace_period_seconds == 7
    )
    assert v1.read_namespaced_pod("bound", NS).metadata.deletion_timestamp is not None
    v1.delete_namespaced_pod("bound", NS, grace_period_seconds=0)
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_pod("bound", NS)
    assert err.value.status == 404
    # preconditions
    p = v1.create_namespaced_pod(NS, pod("pre"))
    with pytest.raises(ApiException) as err:
        v1.delete_namespaced_pod(
            "pre", NS, body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="other"))
        )
    assert err.value.status == 409
    v1.delete_namespaced_pod(
        "pre", NS, body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=p.metadata.uid))
    )
    for i in range(3):
        v1.create_namespaced_pod(NS, pod(f"c{i}", {"batch": "x" if i < 2 else "y"}))
    v1.delete_collection_namespaced_pod(NS, label_selector="batch=x")
    assert names(v1.list_namespaced_pod(NS).items) == ["c2"]


def test_secrets_events_and_nodes(kube_api: KubeApiServer, v1: Any) -> None:
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name="tok", labels={"app": "orch"}), string_data={"token": "s3cret"}
    )
    created = v1.create_namespaced_secret(NS, secret)
    assert created.data == {"token": "czNjcmV0"} and created.type == "Opaque" and created.string_data is None
    v1.patch_namespaced_secret("tok", NS, {"stringData": {"more": "x"}})
    assert set(v1.read_namespaced_secret("tok", NS).data) == {"token", "more"}
    assert names(v1.list_namespaced_secret(NS, label_selector="app=orch").items) == ["tok"]
    assert v1.delete_namespaced_secret("tok", NS)["status"] == "Success"  # the client says "object"
    assert v1.list_namespaced_secret(NS).items == []

    p = v1.create_namespaced_pod(NS, pod("ev"))
    ref = client.V1ObjectReference(kind="Pod", name="ev", namespace=NS, uid=p.metadata.uid)
    for reason, obj in (("Scheduled", ref), ("Other", client.V1ObjectReference(kind="Node", name="n"))):
        v1.create_namespaced_event(
            NS,
            client.CoreV1Event(
                metadata=client.V1ObjectMeta(generate_name="ev."),
                involved_object=obj,
                reason=reason,
                message="m",
                type="Normal",
            ),
        )
    by_name = v1.list_namespaced_event(NS, field_selector="involvedObject.name=ev")
    assert [e.reason for e in by_name.items] == ["Scheduled"]
    by_uid = v1.list_namespaced_event(
        NS, field_selector=f"involvedObject.uid={p.metadata.uid},involvedObject.kind=Pod"
    )
    assert [e.reason for e in by_uid.items] == ["Scheduled"]
    assert len(v1.list_event_for_all_namespaces().items) == 2

    kube_api.add_node("cpu-1")
    kube_api.add_node("gpu-1", gpus=4, gpu_product="NVIDIA-A100-SXM4-80GB")
    nodes = {n.metadata.name: n for n in v1.list_node().items}
    assert nodes["gpu-1"].status.allocatable["nvidia.com/gpu"] == "4"
    assert nodes["gpu-1"].status.capacity["nvidia.com/gpu"] == "4"
    assert nodes["gpu-1"].metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
    assert "nvidia.com/gpu" not in nodes["cpu-1"].status.allocatable
    assert [c.type for c in v1.read_node("gpu-1").status.conditions] == ["Ready"]
    assert names(v1.list_node(label_selector="nvidia.com/gpu.present=true").items) == ["gpu-1"]
    events = _node_events(v1, lambda: kube_api.remove_node("cpu-1"))
    assert events == [("DELETED", "cpu-1")]


def _node_events(v1: Any, act: Any) -> list[tuple[str, str]]:
    mark = v1.list_node().metadata.resource_version
    act()
    stream = watch.Watch().stream(v1.list_node, resource_version=mark, timeout_seconds=1)
    return [(e["type"], e["object"].metadata.name) for e in stream]


def test_bearer_token(kube_api_factory: Any) -> None:
    server = kube_api_factory(token="t0k3n")
    assert server.core_v1().list_namespaced_pod(NS).items == []
    for token in ("", "wrong"):
        with pytest.raises(ApiException) as err:
            server.core_v1(token=token).list_namespaced_pod(NS)
        body = status_body(err.value)
        assert (err.value.status, body["reason"], body["message"]) == (401, "Unauthorized", "Unauthorized")
    assert server.requests[-1]["path"] == "/api/v1/namespaces/default/pods"
    assert client.VersionApi(server.api_client(token="")).get_code().major == "1"  # /version is public


def test_injected_failures(kube_api: KubeApiServer, v1: Any) -> None:
    kube_api.fail_next(2, 503, method="POST")
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            v1.create_namespaced_pod(NS, pod("retry"))
        assert err.value.status == 503 and status_body(err.value)["reason"] == "ServiceUnavailable"
    assert v1.list_namespaced_pod(NS).items == []  # GETs were not hit
    assert v1.create_namespaced_pod(NS, pod("retry")).metadata.name == "retry"
    kube_api.fail_next(1, 500, path="/pods/retry", retry_after=1)
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_pod("retry", NS)
    assert err.value.status == 500 and err.value.headers["Retry-After"] == "1"
    assert v1.read_namespaced_pod("retry", NS).metadata.name == "retry"


def test_an_abrupt_drop_breaks_the_clients_stream(kube_api: KubeApiServer, v1: Any) -> None:
    import urllib3

    start = v1.list_namespaced_pod(NS).metadata.resource_version
    errors: queue.Queue[BaseException | None] = queue.Queue()

    def run() -> None:
        try:
            for _ in watch.Watch().stream(v1.list_namespaced_pod, NS, resource_version=start):
                pass
            errors.put(None)
        except BaseException as exc:  # handed to the test
            errors.put(exc)

    threading.Thread(target=run, daemon=True).start()
    v1.create_namespaced_pod(NS, pod("a1"))
    deadline = time.monotonic() + 10
    while kube_api.watch_count == 0 and time.monotonic() < deadline:  # the watch is there
        time.sleep(0.01)
    kube_api.drop_watches(abrupt=True)  # a network cut, not a clean end: the client sees an error
    assert isinstance(errors.get(timeout=10), urllib3.exceptions.ProtocolError)
