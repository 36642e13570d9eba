"""A test kubelet (and scheduler) for the API emulator: pods' containers as local processes.

It sees pods only through the API, with the official client (list + watch, as a real kubelet),
binds pending pods to nodes that have the GPUs they request (``pods/binding``), runs init
containers and then containers as local processes (own process group, tagged with
``ORCH_TEST_TAG``), serves their output as the pod log, and reports the pod's status the way a
real kubelet does. Failures are injected with :meth:`Kubelet.unschedulable`,
:meth:`~Kubelet.image_pull_fails` (a few times, or always), :meth:`~Kubelet.oom_kill`,
:meth:`~Kubelet.evict` and :meth:`~Kubelet.node_lost`. See README.md for what is emulated
and what is not.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from support.kube.apiserver import KubeApiServer, now_rfc3339
from support.orchserver import tagged_pids

Obj = dict[str, Any]
GPU = "nvidia.com/gpu"
EVICTED_MSG = "The node was low on resource: memory."
# what containerd says when a pull fails, as a real kubelet reports it (ErrImagePull's message)
PULL_NOT_FOUND = (
    'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": '
    'failed to resolve reference "{image}": not found'
)
PULL_RATE_LIMITED = (
    'rpc error: code = Unknown desc = failed to pull and unpack image "{image}": failed to copy: '
    "httpReadSeeker: failed open: unexpected status code: 429 Too Many Requests - Server message: "
    "toomanyrequests: You have reached your pull rate limit."
)


def pod_gpus(pod: Obj) -> int:
    """What a pod requests of ``nvidia.com/gpu`` (requests default to limits)."""

    def want(c: Obj) -> int:
        res = c.get("resources") or {}
        return int((res.get("requests") or {}).get(GPU) or (res.get("limits") or {}).get(GPU) or 0)

    spec = pod["spec"]
    return max([sum(want(c) for c in spec["containers"])] + [want(c) for c in spec.get("initContainers", [])])


def container_pids(mark: str) -> list[int]:
    """The processes whose environment has ``ORCH_TEST_CONTAINER=mark``."""
    needle, found = f"ORCH_TEST_CONTAINER={mark}".encode(), []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def untolerated(node: Obj, tolerations: list[Obj]) -> Obj | None:
    """The node's first NoSchedule/NoExecute taint that no toleration tolerates."""
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") == "PreferNoSchedule":
            continue
        if not any(
            t.get("effect") in (None, "", taint.get("effect"))
            and (t.get("key") in (None, "") and t.get("operator") == "Exists" or t.get("key") == taint["key"])
            and (t.get("operator") == "Exists" or t.get("value", "") == taint.get("value", ""))
            for t in tolerations
        ):
            return dict(taint)
    return None


def node_matches(spec: Obj, labels: dict[str, str]) -> bool:
    """``nodeSelector`` and required node affinity (In, NotIn, Exists, DoesNotExist, Gt, Lt)."""
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not affinity:
        return True

    def test(e: Obj) -> bool:
        op, value, values = e["operator"], labels.get(e["key"]), e.get("values") or []
        if op in ("Gt", "Lt"):
            return value is not None and (int(value) > int(values[0])) == (op == "Gt")
        return {"In": value in values, "NotIn": value not in values, "Exists": value is not None}.get(
            op, value is None
        )

    return any(
        all(test(e) for e in term.get("matchExpressions") or []) for term in affinity["nodeSelectorTerms"]
    )


class _Rule:
    """An injected failure: pods whose name starts with ``prefix`` and that carry ``labels``;
    with neither, the next pod only (claimed by its uid)."""

    def __init__(self, kind: str, prefix: str | None, labels: dict[str, str] | None, **options: Any) -> None:
        self.kind, self.prefix, self.labels, self.options = kind, prefix, labels, options
        self.next_only = prefix is None and labels is None
        self.claimed: str | None = None

    def matches(self, pod: Obj, claim: bool = True) -> bool:
        meta = pod["metadata"]
        if self.next_only:
            if self.claimed is None and claim:
                self.claimed = meta["uid"]
            return self.claimed == meta["uid"]
        labels = meta.get("labels") or {}
        return meta["name"].startswith(self.prefix or "") and all(
            labels.get(k) == v for k, v in (self.labels or {}).items()
        )


class _ConfigError(Exception):
    pass


class Kubelet:
    """Start with :meth:`start`, end with :meth:`stop` (kills every process it started)."""

    def __init__(
        self,
        api: KubeApiServer,
        workdir: Path,
        *,
        env: dict[str, str] | None = None,
        max_grace: float = 10.0,
        tag: str | None = None,
        image_backoff: float = 0.2,
        image_backoff_max: float = 2.0,
    ) -> None:
        """``env``: added to every container's environment (after PATH, HOME, HOSTNAME);
        ``max_grace``: a deleted pod's SIGKILL comes after its grace period or this, if shorter;
        ``image_backoff``/``image_backoff_max``: the wait after a failed image pull, doubling
        per failure up to the max (a real kubelet's are 10 s and 300 s)."""
        self.api, self.workdir, self.extra_env, self.max_grace = (
            api,
            Path(workdir),
            dict(env or {}),
            max_grace,
        )
        self.image_backoff, self.image_backoff_max = image_backoff, image_backoff_max
        self.pulls: Counter[str] = Counter()  # image -> pulls tried (an image present is not pulled)
        self.tag = tag or uuid.uuid4().hex
        self.core = api.core_v1()
        self._lock = threading.RLock()
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stopping = threading.Event()
        self._pods: dict[str, Obj] = {}  # uid -> the pod as last seen; insertion order = FIFO
        self._nodes: dict[str, Obj] = {}
        self._bound: dict[str, tuple[str, int]] = {}  # uid -> (node, gpus) while it holds them
        self._reported: dict[str, str] = {}  # uid -> the Unschedulable message reported
        self._runners: dict[str, _PodRunner] = {}
        self._rules: list[_Rule] = []
        self._watches: list[watch.Watch] = []
        self._threads: list[threading.Thread] = []
        self._synced = {"sync-pods": threading.Event(), "sync-nodes": threading.Event()}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Kubelet:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for target, args in (
            (self._watch_loop, ("pods", self.core.list_pod_for_all_namespaces)),
            (self._watch_loop, ("nodes", self.core.list_node)),
            (self._control_loop, ()),
        ):
            thread = threading.Thread(target=target, args=args, daemon=True, name="kubelet")
            thread.start()
            self._threads.append(thread)
        for synced in self._synced.values():  # it knows the nodes and pods there are
            if not synced.wait(30):
                raise RuntimeError(f"the test kubelet could not list pods and nodes at {self.api.url}")
        return self

    def stop(self) -> list[int]:
        """Stop watching, SIGKILL every container process; returns the pids of tagged processes
        that had to be killed afterwards (escaped their process group)."""
        self._stopping.set()
        self._inbox.put(("stop", None))
        for w in list(self._watches):
            w.stop()
        with self._lock:
            runners = list(self._runners.values())
        for runner in runners:
            runner.abort("gone")
        for runner in runners:
            runner.thread.join(10)
        for thread in self._threads:
            thread.join(10)
        survivors = [pid for pid in tagged_pids(self.tag) if pid != os.getpid()]
        for pid in survivors:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while survivors and set(survivors) & set(tagged_pids(self.tag)) and time.monotonic() < deadline:
            time.sleep(0.02)  # SIGKILL is delivered, the process not yet gone
        return survivors

    # ------------------------------------------------------------------ failure injection
    def unschedulable(self, prefix: str | None = None, labels: dict[str, str] | None = None) -> None:
        """Matching pods never fit any node (reported as the scheduler does)."""
        self._add_rule(_Rule("unschedulable", prefix, labels))

    def image_pull_fails(self, image: str, times: int | None = None, *, message: str | None = None) -> None:
        """Pulls of ``image`` fail: the next ``times`` tries (then the registry answers and the
        pull works), or every try (None). Each failed try is what a real kubelet shows: events
        ``Pulling``, ``Failed`` ('Failed to pull image "X": ...') and ``Failed`` ('Error:
        ErrImagePull'), the container waiting ``ErrImagePull`` with ``message`` (default: a
        registry's 429 rate limit, or NotFound when it never heals; ``{image}`` is filled in);
        at its next sync ``ImagePullBackOff`` ('Back-off pulling image "X"', events ``BackOff``
        and 'Error: ImagePullBackOff') until its back-off ends and it tries again."""
        text = message or (PULL_RATE_LIMITED if times is not None else PULL_NOT_FOUND)
        self._add_rule(_Rule("image", None, None, image=image, left=times, message=text.format(image=image)))

    def image_pull_backoff(self, image: str) -> None:
        """Containers with this image never start: every pull fails (NotFound)."""
        self.image_pull_fails(image)

    def oom_kill(
        self, prefix: str | None = None, labels: dict[str, str] | None = None, *, after: float = 0.0
    ) -> None:
        """``after`` seconds after it starts (now, for one already running), a matching pod's
        first container is SIGKILLed and reported ``OOMKilled`` with exit code 137."""
        self._add_rule(_Rule("oom", prefix, labels, after=after))

    def evict(self, prefix: str | None = None, labels: dict[str, str] | None = None) -> None:
        """Matching pods (running now, or once they run) are evicted for memory pressure."""
        self._add_rule(_Rule("evict", prefix, labels))

    def node_lost(self, node: str, *, delete_pods: bool = False) -> None:
        """The node goes away: its pods' processes are killed and the pods marked Failed with
        reason NodeLost (or deleted, as the pod garbage collector does, with ``delete_pods``);
        then the Node object is deleted. Returns when all that is done."""
        done = threading.Event()
        self._inbox.put(("node_lost", (node, delete_pods, done)))  # no pod goes there meanwhile
        if not done.wait(30):
            raise TimeoutError(f"node {node} could not be lost")

    def _lose_node(self, node: str, delete_pods: bool, done: threading.Event) -> None:
        self._nodes.pop(node, None)
        with self._lock:
            runners = [r for r in self._runners.values() if r.node == node]
        for runner in runners:
            runner.abort("deleted-node" if delete_pods else "node_lost")
        for runner in runners:
            runner.thread.join(10)
        self.api.remove_node(node)
        done.set()

    def clear_failures(self) -> None:
        """Forget every injected failure (pods in image pull back-off then start)."""
        with self._lock:
            self._rules.clear()
        self._inbox.put(("schedule", None))

    def _add_rule(self, rule: _Rule) -> None:
        with self._lock:
            self._rules.append(rule)
            runners = list(self._runners.values()) if not rule.next_only else []
        for runner in runners:  # oom and evict also hit matching pods that already run
            if rule.kind in ("oom", "evict") and runner.running and rule.matches(runner.pod):
                runner.inject(rule)
        self._inbox.put(("schedule", None))

    def _rule(self, kind: str, pod: Obj, claim: bool = True) -> _Rule | None:
        with self._lock:
            return next((r for r in self._rules if r.kind == kind and r.matches(pod, claim)), None)

    def _pull(self, image: str, absent: bool) -> tuple[str, str]:
        """One look at ``image`` by the image manager: ("present", ""), ("pulled", ""), or
        ("failed", the runtime's error); ``absent``: an earlier pull of it failed."""
        with self._lock:
            rule = next((r for r in self._rules if r.kind == "image" and r.options["image"] == image), None)
            if rule is None:
                if absent:
                    self.pulls[image] += 1
                return ("pulled" if absent else "present"), ""
            self.pulls[image] += 1
            if rule.options["left"] is not None:
                rule.options["left"] -= 1
                if rule.options["left"] <= 0:
                    self._rules.remove(rule)
            return "failed", str(rule.options["message"])

    # ------------------------------------------------------------------ introspection
    def pid(self, pod: str, container: str | None = None) -> int | None:
        """The pid of a pod's (first) container process while it runs."""
        with self._lock:
            for runner in self._runners.values():
                if runner.name == pod:
                    proc = runner.procs.get(container or runner.spec["containers"][0]["name"])
                    return proc.pid if proc is not None and proc.poll() is None else None
        return None

    # ------------------------------------------------------------------ API calls
    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """An API call, retried on 5xx/429 and connection errors; None when the object is gone."""
        for attempt in range(30):
            try:
                return fn(*args, **kwargs)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                if exc.status not in (0, 429) and exc.status < 500:
                    raise
            except Exception as exc:  # urllib3's connection errors
                if "urllib3" not in type(exc).__module__:
                    raise
            if self._stopping.is_set():
                return None
            time.sleep(min(0.02 * 2**attempt, 0.5))
        raise RuntimeError(f"the API kept failing: {fn.__name__}")

    def event(
        self,
        pod: Obj,
        reason: str,
        message: str,
        type_: str = "Normal",
        component: str = "kubelet",
        field_path: str | None = None,
    ) -> None:
        meta, stamp = pod["metadata"], now_rfc3339()
        involved = {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]}
        involved |= {"apiVersion": "v1", "resourceVersion": meta.get("resourceVersion")}
        involved |= {"fieldPath": field_path} if field_path else {}  # a container's event
        body = {
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": meta["namespace"]},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": component, "host": pod["spec"].get("nodeName")},
            "reportingComponent": component,
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
        }
        try:
            self.call(self.core.create_namespaced_event, meta["namespace"], body)
        except ApiException:  # events are best effort (a retried create may find its first try)
            pass

    def patch_status(self, pod: Obj, status: Obj) -> None:
        self.call(
            self.core.patch_namespaced_pod_status,
            pod["metadata"]["name"],
            pod["metadata"]["namespace"],
            {"status": status},
        )

    # ------------------------------------------------------------------ watching
    def _watch_loop(self, resource: str, list_fn: Callable[..., Any]) -> None:
        """List, then watch from the list's resourceVersion; on 410 or a broken stream, again."""
        while not self._stopping.is_set():
            w = watch.Watch()
            try:
                resp = list_fn(_preload_content=False)
                listed = json.loads(resp.data)
                resp.release_conn()
                self._inbox.put(("sync-" + resource, listed["items"]))
                self._watches.append(w)
                rv = listed["metadata"]["resourceVersion"]
                for event in w.stream(list_fn, resource_version=rv, allow_watch_bookmarks=True):
                    if self._stopping.is_set():
                        break
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self._inbox.put((resource, (event["type"], event["raw_object"])))
            except Exception:
                if not self._stopping.is_set():
                    time.sleep(0.1)
            finally:
                if w in self._watches:
                    self._watches.remove(w)

    def _control_loop(self) -> None:
        while True:
            try:
                kind, item = self._inbox.get(timeout=1.0)
            except queue.Empty:
                kind, item = "schedule", None  # a periodic pass: retries what failed
            if kind == "stop" or self._stopping.is_set():
                return
            try:
                self._handle(kind, item)
            except Exception:
                traceback.print_exc()

    def _handle(self, kind: str, item: Any) -> None:
        if kind == "sync-nodes":
            self._nodes = {n["metadata"]["name"]: n for n in item}
        elif kind == "nodes":
            etype, node = item
            if etype == "DELETED":
                self._nodes.pop(node["metadata"]["name"], None)
            else:
                self._nodes[node["metadata"]["name"]] = node
        elif kind == "sync-pods":
            seen = {p["metadata"]["uid"] for p in item}
            for uid, pod in list(self._pods.items()):
                if uid not in seen:
                    self._on_pod("DELETED", pod)
            for pod in item:
                self._on_pod("MODIFIED", pod)
        elif kind == "pods":
            self._on_pod(*item)
        elif kind == "node_lost":
            self._lose_node(*item)
        if kind in self._synced:
            self._synced[kind].set()
        if kind in ("nodes", "sync-nodes"):  # pods bound to a node only now known
            for pod in list(self._pods.values()):
                if pod["spec"].get("nodeName") in self._nodes and pod["metadata"]["uid"] not in self._runners:
                    self._on_pod("MODIFIED", pod)
        self._schedule()

    def _on_pod(self, etype: str, pod: Obj) -> None:
        uid, spec, phase = pod["metadata"]["uid"], pod["spec"], pod["status"].get("phase")
        with self._lock:
            runner = self._runners.get(uid)
            if etype == "DELETED":
                self._pods.pop(uid, None)
                self._bound.pop(uid, None)
                self._runners.pop(uid, None)
                if runner is not None:
                    runner.abort("gone")
                return
            self._pods[uid] = pod
            if phase in ("Succeeded", "Failed"):
                self._bound.pop(uid, None)
            node = spec.get("nodeName")
            if not node or node not in self._nodes:
                return
            if runner is None and phase not in ("Succeeded", "Failed"):
                self._bound.setdefault(uid, (node, pod_gpus(pod)))
                runner = self._runners[uid] = _PodRunner(self, pod)
                runner.thread.start()
            if runner is None:
                return
            runner.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            grace = pod["metadata"].get("deletionGracePeriodSeconds") or 0
            runner.abort("deleted", min(float(grace), self.max_grace))

    # ------------------------------------------------------------------ scheduling
    def _schedule(self) -> None:
        """Bind pending pods, oldest first, to the first node with room for their GPUs."""
        for uid, pod in list(self._pods.items()):
            status = pod["status"]
            if (
                pod["spec"].get("nodeName")
                or status.get("phase") != "Pending"
                or pod["metadata"].get("deletionTimestamp")
            ):
                continue
            if pod["spec"].get("schedulingGates") or pod["spec"].get("schedulerName") != "default-scheduler":
                continue  # waits for its gates to go, or for a scheduler that is not there
            node, message = self._fit(pod)
            meta = pod["metadata"]
            if node is None:
                if self._reported.get(uid) != message:
                    self._reported[uid] = message
                    cond = {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": message,
                    }
                    self.event(pod, "FailedScheduling", message, "Warning", "default-scheduler")
                    self.patch_status(pod, {"conditions": [cond | {"lastTransitionTime": now_rfc3339()}]})
                continue
            binding = client.V1Binding(
                metadata=client.V1ObjectMeta(name=meta["name"]),
                target=client.V1ObjectReference(api_version="v1", kind="Node", name=node),
            )
            try:
                resp = self.call(
                    self.core.create_namespaced_pod_binding,
                    meta["name"],
                    meta["namespace"],
                    binding,
                    _preload_content=False,
                )
            except ApiException as exc:
                if exc.status == 409:  # bound meanwhile
                    continue
                raise
            if resp is None:
                continue
            resp.read()  # a Status, not the Binding the client's model expects: read it raw
            resp.release_conn()
            with self._lock:
                self._bound[uid] = (node, pod_gpus(pod))
                pod["spec"]["nodeName"] = node  # until the watch tells
            self.event(
                pod,
                "Scheduled",
                f"Successfully assigned {meta['namespace']}/{meta['name']} to {node}",
                component="default-scheduler",
            )

    def _fit(self, pod: Obj) -> tuple[str | None, str]:
        want, spec = pod_gpus(pod), pod["spec"]
        nodes = sorted(self._nodes)
        if not nodes:
            return None, "no nodes available to schedule pods"
        reasons: Counter[str] = Counter()
        if self._rule("unschedulable", pod):
            reasons[f"Insufficient {GPU if want else 'cpu'}"] = len(nodes)
            nodes = []
        with self._lock:
            used = Counter()
            for node_name, gpus in self._bound.values():
                used[node_name] += gpus
        for name in nodes:
            node = self._nodes[name]
            labels = node["metadata"].get("labels") or {}
            taint = untolerated(node, spec.get("tolerations") or [])
            if node.get("spec", {}).get("unschedulable"):
                reasons["node(s) were unschedulable"] += 1
            elif taint is not None:
                reasons[f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"] += 1
            elif not node_matches(spec, labels):
                reasons["node(s) didn't match Pod's node affinity/selector"] += 1
            elif want > int(node["status"].get("allocatable", {}).get(GPU, 0)) - used[name]:
                reasons[f"Insufficient {GPU}"] += 1
            else:
                return name, ""
        counts = ", ".join(sorted(f"{n} {reason}" for reason, n in reasons.items()))
        return None, f"0/{len(self._nodes)} nodes are available: {counts}."


class _PodRunner:
    """One pod on its node: its containers as local processes, its status reported via the API."""

    def __init__(self, kubelet: Kubelet, pod: Obj) -> None:
        self.k, self.pod, self.spec = kubelet, pod, pod["spec"]
        meta = pod["metadata"]
        self.uid, self.name, self.ns, self.node = (
            meta["uid"],
            meta["name"],
            meta["namespace"],
            self.spec["nodeName"],
        )
        self.dir = kubelet.workdir / f"{self.ns}_{self.name}_{self.uid[:8]}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.oom: set[str] = set()
        self.outcome: str | None = None  # why it was stopped: deleted, gone, evicted, node_lost
        self.stopped = threading.Event()
        self.running = False
        self.lock = threading.RLock()
        self.init_names = [c["name"] for c in self.spec.get("initContainers", [])]
        self.states: dict[str, Obj] = {}
        for c in self.spec.get("initContainers", []) + self.spec["containers"]:
            reason = (
                "PodInitializing"
                if self.init_names and c["name"] not in self.init_names
                else "ContainerCreating"
            )
            self.states[c["name"]] = {"name": c["name"], "image": c["image"], "imageID": "", "ready": False}
            self.states[c["name"]] |= {
                "restartCount": 0,
                "started": False,
                "state": {"waiting": {"reason": reason}},
            }
        self.start_time = now_rfc3339()
        self.transitions: dict[str, tuple[str, str]] = {}
        self.last_sent: Obj | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"pod-{self.name}")

    # ------------------------------------------------------------------ control
    def abort(self, outcome: str, grace: float = 0.0) -> None:
        """Stop the pod's processes: SIGTERM, then SIGKILL after ``grace`` seconds."""
        with self.lock:
            first = self.outcome is None
            if first or (outcome == "gone" and self.outcome == "deleted"):
                self.outcome = outcome
            elif outcome != "gone":  # "gone" (the pod deleted, or the kubelet stopping) always kills
                return
            self.stopped.set()
            procs = dict(self.procs)
        if outcome == "deleted" and first:
            for cname in procs:
                self.k.event(self.pod, "Killing", f"Stopping container {cname}")
        threading.Thread(target=self._kill, args=(procs, grace), daemon=True).start()

    def send_signal(self, name: str, proc: subprocess.Popen[bytes], sig: int) -> None:
        """Signal a container: its process group and every process started in it (as a
        container's cgroup would), found by the ``ORCH_TEST_CONTAINER`` they inherit."""
        for pid in [-proc.pid, *container_pids(f"{self.uid}/{name}")]:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def _kill(self, procs: dict[str, subprocess.Popen[bytes]], grace: float) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL) if grace > 0 else (signal.SIGKILL,):
            for name, proc in procs.items():
                self.send_signal(name, proc, sig)
            deadline = time.monotonic() + grace
            for proc in procs.values():
                try:
                    proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass

    def inject(self, rule: _Rule) -> None:
        """An oom or evict rule now hits this (running) pod."""
        if rule.kind == "evict":
            self.k.event(self.pod, "Evicted", EVICTED_MSG, "Warning")
            return self.abort("evicted")
        cname = self.spec["containers"][0]["name"]

        def kill() -> None:
            if not self.stopped.wait(rule.options["after"]):
                with self.lock:
                    proc = self.procs.get(cname)
                    self.oom.add(cname)
                if proc is not None:
                    self.send_signal(cname, proc, signal.SIGKILL)

        threading.Thread(target=kill, daemon=True).start()

    # ------------------------------------------------------------------ the pod's life
    def _run(self) -> None:
        try:
            self._prepare()
            self.report()
            ok = True
            for c in self.spec.get("initContainers", []):
                code = self._container(c, init=True)
                if code != 0:
                    ok = False
                    break
            if ok:
                threads = [
                    threading.Thread(target=self._container, args=(c, False), daemon=True)
                    for c in self.spec["containers"]
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
            if self.outcome != "gone":
                self.report()
            if self.outcome in ("deleted", "deleted-node") and not self.k._stopping.is_set():
                self.k.call(self.k.core.delete_namespaced_pod, self.name, self.ns, grace_period_seconds=0)
        except Exception:
            if not self.k._stopping.is_set():
                traceback.print_exc()

    def _prepare(self) -> None:
        """A directory per pod; one per volume (emptyDir; secrets and configmaps as files)."""
        self.volumes: dict[str, Path] = {}
        for vol in self.spec.get("volumes", []):
            path = self.volumes[vol["name"]] = self.dir / "volumes" / vol["name"]
            path.mkdir(parents=True, exist_ok=True)
            ref = vol.get("secret") or vol.get("configMap")
            if ref:
                kind = "secret" if "secret" in vol else "configmap"
                name = ref.get("secretName") or ref.get("name")
                while (obj := self._read(kind, name)) is None and not self.stopped.wait(1.0):
                    msg = f'MountVolume.SetUp failed for volume "{vol["name"]}" : {kind} "{name}" not found'
                    self.k.event(self.pod, "FailedMount", msg, "Warning")
                for key, value in ((obj or {}).get("data") or {}).items():
                    data = base64.b64decode(value) if kind == "secret" else value.encode()
                    (path / key).write_bytes(data)
        (self.dir / "work").mkdir(parents=True, exist_ok=True)

    def _read(self, kind: str, name: str) -> Obj | None:
        fn = (
            self.k.core.read_namespaced_secret if kind == "secret" else self.k.core.read_namespaced_config_map
        )
        resp = self.k.call(fn, name, self.ns, _preload_content=False)
        if resp is None:
            return None
        data = json.loads(resp.data)
        resp.release_conn()
        return dict(data)

    def _container(self, c: Obj, init: bool) -> int | None:
        """Run one container (restarting it as its restartPolicy says); its exit code, or None
        if the pod was stopped before it ran."""
        name, policy, code = c["name"], self.spec.get("restartPolicy", "Always"), None
        while not self.stopped.is_set():
            if not self._ensure_image(c, init):
                break  # the pod was stopped while its image could not be pulled
            try:
                argv, env, cwd = self._command(c)
            except _ConfigError as exc:
                self._set(
                    name, state={"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}}
                )
                self.report()
                self.stopped.wait(1.0)
                continue
            started, message, cid = now_rfc3339(), None, f"containerd://{uuid.uuid4().hex}"
            try:
                proc = subprocess.Popen(
                    argv,
                    env=env,
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                code, reason = 128, "StartError"
                message = f"failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: {argv[0]!r}: {exc.strerror}: unknown"
            else:
                code = self._watch_process(c, proc, started, cid, init)
                reason = "OOMKilled" if name in self.oom else "Completed" if code == 0 else "Error"
            terminated = {
                "exitCode": code,
                "reason": reason,
                "startedAt": started,
                "finishedAt": now_rfc3339(),
                "containerID": cid,
            }
            terminated |= {"message": message} if message else {}
            again = not self.stopped.is_set() and (
                policy == "OnFailure" and code != 0 or policy == "Always" and (code != 0 or not init)
            )
            if not again:
                self._set(
                    name,
                    state={"terminated": terminated},
                    ready=False,
                    lastState=self.states[name].get("lastState", {}),
                )
                self.report()
                return code
            restarts = self.states[name]["restartCount"] + 1
            delay = min(0.5 * 2 ** (restarts - 1), 5.0)
            waiting = {
                "reason": "CrashLoopBackOff",
                "message": f"back-off {delay}s restarting failed container={name} pod={self.name}_{self.ns}({self.uid})",
            }
            self._set(
                name,
                state={"waiting": waiting},
                lastState={"terminated": terminated},
                restartCount=restarts,
                ready=False,
            )
            self.report()
            self.k.event(
                self.pod,
                "BackOff",
                f"Back-off restarting failed container {name} in pod {self.name}_{self.ns}({self.uid})",
                "Warning",
            )
            self.stopped.wait(delay)
        return code

    def _watch_process(
        self, c: Obj, proc: subprocess.Popen[bytes], started: str, cid: str, init: bool
    ) -> int:
        name = c["name"]
        with self.lock:
            self.procs[name] = proc
            if self.stopped.is_set():  # stopped while it started
                self.send_signal(name, proc, signal.SIGKILL)
        self.k.api.log_start(self.uid, name)
        pump = threading.Thread(target=self._pump, args=(proc, name), daemon=True)
        pump.start()
        self.k.event(self.pod, "Created", f"Created container {name}")
        self.k.event(self.pod, "Started", f"Started container {name}")
        self._set(
            name, state={"running": {"startedAt": started}}, started=True, ready=not init, containerID=cid
        )
        self._set(
            name,
            imageID=f"docker.io/library/{c['image']}@sha256:{uuid.uuid5(uuid.NAMESPACE_URL, c['image']).hex * 2}",
        )
        self.report()
        if not init:
            self.running = True
            for kind in ("oom", "evict"):
                if (rule := self.k._rule(kind, self.pod)) is not None and (
                    kind == "evict" or name == self.spec["containers"][0]["name"]
                ):
                    self.inject(rule)
        returncode = proc.wait()
        self.send_signal(name, proc, signal.SIGKILL)  # its first process ended: so does the container
        pump.join(2.0)
        self.k.api.log_end(self.uid, name)
        with self.lock:
            self.procs.pop(name, None)
        return 128 - returncode if returncode < 0 else returncode

    def _pump(self, proc: subprocess.Popen[bytes], name: str) -> None:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        while chunk := os.read(fd, 65536):
            self.k.api.log_write(self.uid, name, chunk)
        proc.stdout.close()

    def _ensure_image(self, c: Obj, init: bool) -> bool:
        """The container's image, as the kubelet's image manager gets it: present, or pulled;
        a failed pull is ``ErrImagePull`` until the pod's next sync, then ``ImagePullBackOff``
        until the back-off (per pod and image, doubling per failure) lets it try again. True
        once the image is there; False if the pod was stopped first."""
        image, name = c["image"], c["name"]
        where = f"spec.{'initContainers' if init else 'containers'}{{{name}}}"
        failed, backoff, began = 0, self.k.image_backoff, time.monotonic()
        while not self.stopped.is_set():
            outcome, message = self.k._pull(image, absent=failed > 0)
            if outcome == "present":
                self.k.event(
                    self.pod,
                    "Pulled",
                    f'Container image "{image}" already present on machine',
                    field_path=where,
                )
                return True
            self.k.event(self.pod, "Pulling", f'Pulling image "{image}"', field_path=where)
            if outcome == "pulled":
                took = f"{time.monotonic() - began:.3f}s"
                msg = f'Successfully pulled image "{image}" in {took} ({took} including waiting)'
                self.k.event(self.pod, "Pulled", msg, field_path=where)
                return True
            failed += 1
            # (events first, here and elsewhere: whoever sees the status finds its events)
            fail = f'Failed to pull image "{image}": {message}'
            self.k.event(self.pod, "Failed", fail, "Warning", field_path=where)
            self.k.event(self.pod, "Failed", "Error: ErrImagePull", "Warning", field_path=where)
            self._set(name, state={"waiting": {"reason": "ErrImagePull", "message": message}})
            self.report()
            # the pod's next sync (a real kubelet's: about 10 s after an error) finds the back-off
            if self.stopped.wait(backoff / 4):
                break
            back = f'Back-off pulling image "{image}"'
            self.k.event(self.pod, "BackOff", back, field_path=where)
            self.k.event(self.pod, "Failed", "Error: ImagePullBackOff", "Warning", field_path=where)
            self._set(name, state={"waiting": {"reason": "ImagePullBackOff", "message": back}})
            self.report()
            self.stopped.wait(backoff * 3 / 4)
            backoff = min(backoff * 2, self.k.image_backoff_max)
        return False

    def _command(self, c: Obj) -> tuple[list[str], dict[str, str], str]:
        """argv, environment and working directory, with volume mount paths made local."""
        mounts = {
            m["mountPath"].rstrip("/") or "/": self.volumes[m["name"]]
            for m in c.get("volumeMounts", [])
            if m["name"] in self.volumes
        }
        pattern = re.compile(
            "|".join(rf"(?<![\w.-]){re.escape(p)}(?=/|\b|$)" for p in sorted(mounts, key=len, reverse=True))
            or r"(?!x)x"
        )

        def local(text: str) -> str:
            return pattern.sub(lambda m: str(mounts[m[0]]), text)

        env = {"PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        env |= {
            "HOME": str(self.dir / "work"),
            "HOSTNAME": self.name,
            **self.k.extra_env,
            "ORCH_TEST_TAG": self.k.tag,
            "ORCH_TEST_CONTAINER": f"{self.uid}/{c['name']}",
        }

        def expand(text: str) -> str:  # $(VAR) from the variables defined so far; $$ escapes
            return re.sub(
                r"\$\$|\$\(([A-Za-z_][\w.-]*)\)", lambda m: "$" if m[0] == "$$" else env.get(m[1], m[0]), text
            )

        for source in c.get("envFrom", []):
            ref = source.get("secretRef") or source.get("configMapRef") or {}
            kind = "secret" if "secretRef" in source else "configmap"
            obj = self._read(kind, ref["name"])
            if obj is None and not ref.get("optional"):
                raise _ConfigError(f'{kind} "{ref["name"]}" not found')
            for key, value in ((obj or {}).get("data") or {}).items():
                env[source.get("prefix", "") + key] = (
                    base64.b64decode(value).decode() if kind == "secret" else value
                )
        for var in c.get("env", []):
            env[var["name"]] = (
                local(expand(var.get("value", "")))
                if "valueFrom" not in var
                else self._env_from(var["valueFrom"], c)
            )
        argv = [local(expand(a)) for a in (c.get("command") or []) + (c.get("args") or [])]
        if not argv:
            raise _ConfigError("no command specified (the test kubelet has no image entrypoints)")
        work = local(c.get("workingDir", ""))
        return argv, env, work if work and Path(work).is_dir() else str(self.dir / "work")

    def _env_from(self, source: Obj, c: Obj) -> str:
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            values = {"metadata.name": self.name, "metadata.namespace": self.ns, "metadata.uid": self.uid}
            values |= {"spec.nodeName": self.node, "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1"}
            values |= {"spec.serviceAccountName": self.spec.get("serviceAccountName", "default")}
            if m := re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path):
                return str((self.pod["metadata"].get(m[1]) or {}).get(m[2], ""))
            return values[path]
        if "resourceFieldRef" in source:  # requests.X / limits.X of this or the named container
            ref = source["resourceFieldRef"]
            kind, _, rname = ref["resource"].partition(".")
            named = [
                x
                for x in self.spec["containers"] + self.spec.get("initContainers", [])
                if x["name"] == ref.get("containerName")
            ]
            return str((((named or [c])[0].get("resources") or {}).get(kind) or {}).get(rname, "0"))
        ref = source.get("secretKeyRef") or source.get("configMapKeyRef") or {}
        kind = "secret" if "secretKeyRef" in source else "configmap"
        obj = self._read(kind, ref["name"])
        data = (obj or {}).get("data") or {}
        if ref["key"] not in data:
            if ref.get("optional"):
                return ""
            label = "Secret" if kind == "secret" else "ConfigMap"
            raise _ConfigError(
                f'{kind} "{ref["name"]}" not found'
                if obj is None
                else f"couldn't find key {ref['key']} in {label} {self.ns}/{ref['name']}"
            )
        return base64.b64decode(data[ref["key"]]).decode() if kind == "secret" else data[ref["key"]]

    # ------------------------------------------------------------------ status
    def _set(self, name: str, **fields: Any) -> None:
        with self.lock:
            self.states[name] |= fields

    def report(self) -> None:
        """Patch the pod's status from its containers' states, as a real kubelet computes it."""
        with self.lock:
            status = self._status()
            if status == self.last_sent or self.k._stopping.is_set():
                return
            self.last_sent = status
            self.k.patch_status(self.pod, status)

    def _status(self) -> Obj:
        inits = [self.states[n] for n in self.init_names]
        apps = [self.states[c["name"]] for c in self.spec["containers"]]
        code = lambda s: s["state"].get("terminated", {}).get("exitCode")  # noqa: E731
        init_failed = any(code(s) not in (None, 0) for s in inits)
        initialized = all(code(s) == 0 for s in inits)
        if init_failed or (apps and all(code(s) is not None for s in apps) and any(code(s) for s in apps)):
            phase = "Failed"
        elif apps and all(code(s) == 0 for s in apps):
            phase = "Succeeded"
        elif any(s["started"] for s in apps):
            phase = "Running"
        else:
            phase = "Pending"
        status: Obj = {"phase": phase, "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}]}
        status |= {"podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}], "startTime": self.start_time}
        if self.outcome == "evicted":
            status |= {"phase": "Failed", "reason": "Evicted", "message": EVICTED_MSG}
        elif self.outcome in ("node_lost", "deleted-node"):
            message = f"Node {self.node} which was running pod {self.name} is unresponsive"
            status |= {"phase": "Failed", "reason": "NodeLost", "message": message}
        ready = status["phase"] == "Running" and all("running" in s["state"] for s in apps)
        unready = [s["name"] for s in apps if "running" not in s["state"]]
        done = status["phase"] in ("Succeeded", "Failed")
        conditions = [
            ("PodReadyToStartContainers", True, "", ""),
            (
                "Initialized",
                initialized,
                "ContainersNotInitialized",
                f"containers with incomplete status: {[s['name'] for s in inits if code(s) != 0]}",
            ),
            (
                "Ready",
                ready,
                "PodCompleted" if done else "ContainersNotReady",
                f"containers with unready status: [{' '.join(unready)}]",
            ),
            (
                "ContainersReady",
                ready,
                "PodCompleted" if done else "ContainersNotReady",
                f"containers with unready status: [{' '.join(unready)}]",
            ),
            ("PodScheduled", True, "", ""),
        ]
        if self.outcome == "evicted":
            conditions.append(("DisruptionTarget", True, "TerminationByKubelet", EVICTED_MSG))
        elif self.outcome in ("node_lost", "deleted-node"):
            conditions.append(("DisruptionTarget", True, "DeletionByPodGC", "PodGC: node no longer exists"))
        status["conditions"] = [self._condition(*c) for c in conditions]
        if inits:
            status["initContainerStatuses"] = [dict(s) for s in inits]
        status["containerStatuses"] = [dict(s) for s in apps]
        return status

    def _condition(self, type_: str, ok: bool, reason: str, message: str) -> Obj:
        value = "True" if ok or type_ == "DisruptionTarget" else "False"
        if self.transitions.get(type_, ("",))[0] != value:
            self.transitions[type_] = (value, now_rfc3339())
        cond = {"type": type_, "status": value, "lastTransitionTime": self.transitions[type_][1]}
        return cond | (
            {"reason": reason, "message": message}
            if (value == "False" or type_ == "DisruptionTarget") and reason
            else {}
        )
