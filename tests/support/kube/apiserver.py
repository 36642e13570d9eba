"""A Kubernetes API server emulator for tests: core/v1 over real HTTP, in memory.

Faithful to what the official ``kubernetes`` client sends and expects: pods (with ``/status``,
``/log``, ``/binding``), secrets, configmaps, events, nodes and namespaces; label and field
selectors; merge, strategic merge and JSON patches; watches with resume, bookmarks and 410
Expired; errors as ``Status`` objects. Test-only side doors are plain Python methods: nodes,
pod logs (written by the test kubelet), injected failures, dropped watches, compaction.

It serves from its own asyncio loop in a background thread (:meth:`KubeApiServer.start`); the
state is guarded by one lock, so the side doors may be called from any thread.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import random
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web
from tornado.iostream import StreamClosedError
from tornado.log import app_log

Obj = dict[str, Any]
_POD_FIELDS = {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName"}
_EVENT_FIELDS = {
    f"involvedObject.{f}" for f in ("kind", "namespace", "name", "uid", "apiVersion", "fieldPath")
}
# resource -> (kind, namespaced, its field selectors besides metadata.name and metadata.namespace)
RESOURCES: dict[str, tuple[str, bool, set[str]]] = {
    "pods": ("Pod", True, _POD_FIELDS | {"status.phase", "status.podIP", "status.nominatedNodeName"}),
    "secrets": ("Secret", True, {"type"}),
    "configmaps": ("ConfigMap", True, set()),
    "events": ("Event", True, _EVENT_FIELDS | {"reason", "reportingComponent", "source", "type"}),
    "nodes": ("Node", False, {"spec.unschedulable"}),
    "namespaces": ("Namespace", False, {"status.phase"}),
}
# strategic merge patch: these lists are merged by their key (all else is as a JSON merge patch)
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name"}
MERGE_KEYS |= {"volumeMounts": "mountPath", "conditions": "type", "ports": "containerPort"}
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json")
PATCH_TYPES += ("application/strategic-merge-patch+json",)
TRUE = ("true", "True", "1")
VERSION = {"gitCommit": "0" * 40, "gitTreeState": "clean", "buildDate": "2023-12-13T08:41:42Z"}
VERSION |= {"goVersion": "go1.21.5", "compiler": "gc", "platform": "linux/amd64"}
REASONS = {400: "BadRequest", 401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed"}
REASONS |= {409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid"}
REASONS |= {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
CAUSES = {
    "Required": "FieldValueRequired",
    "Invalid": "FieldValueInvalid",
    "Forbidden": "FieldValueForbidden",
}
CAUSES |= {"Duplicate": "FieldValueDuplicate", "Unsupported": "FieldValueNotSupported"}
SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.',"
    " and must start and end with an alphanumeric character (e.g. 'example.com', regex used for"
    f" validation is '{SUBDOMAIN}')"
)
DNS_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must"
    " start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for"
    f" validation is '{DNS_LABEL}')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.',"
    " and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or"
    f" '12345', regex used for validation is '{LABEL_VALUE}')"
)
ENV_NAME_MSG = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or"
    " '.', and must not start with a digit"
)
IMMUTABLE_SPEC_MSG = (
    "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions"
    " to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it"
    " was previously negative)"
)
NOT_FOUND_PATH = "the server could not find the requested resource"


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _success(**fields: Any) -> Obj:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", **fields}


class KubeError(Exception):
    """An API error, answered as a ``Status`` object."""

    def __init__(self, code: int, message: str, reason: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason or REASONS.get(code, "InternalError")
        self.details = details
        self.headers: dict[str, str] = {}

    def status(self) -> Obj:
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
        body |= {"message": self.message, "reason": self.reason, "code": self.code}
        return body | ({"details": self.details} if self.details else {})


def not_found(resource: str, name: str) -> KubeError:
    return KubeError(404, f'{resource} "{name}" not found', name=name, kind=resource)


def invalid(kind: str, name: str, causes: list[tuple[str, str]]) -> KubeError:
    """``causes``: (field, message) as the API server's field errors ("Required value", ...)."""
    texts = [f"{field}: {message}" for field, message in causes]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    found = [{"reason": CAUSES[re.split(r"\W", m)[0]], "message": m, "field": f} for f, m in causes]
    return KubeError(422, f'{kind} "{name}" is invalid: {joined}', name=name, kind=kind, causes=found)


# ---------------------------------------------------------------------- selectors
def label_selector(text: str | None) -> Callable[[Obj], bool]:
    """``a=b,c!=d,e in (f,g),h notin (i),j,!k`` -> a predicate on an object."""
    tests = []
    for term in re.split(r",(?![^()]*\))", text or ""):
        if not term.strip():
            continue
        m = re.fullmatch(
            r"\s*(!?)\s*([\w./-]+)\s*(?:(==|=|!=)\s*([\w.-]*)|\s(in|notin)\s*\(([^)]*)\))?\s*", term
        )
        if not m or (m[1] and (m[3] or m[5])):
            raise KubeError(400, f"unable to parse requirement: {term!r}")
        neg, key, op, value, setop, values = m.groups()
        if op:
            tests.append((key, "notin" if op == "!=" else "in", {value}))
        elif setop:
            tests.append((key, setop, {v.strip() for v in values.split(",") if v.strip()}))
        else:
            tests.append((key, "!" if neg else "", set()))

    def match(obj: Obj) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        for key, op, values in tests:
            if op in ("", "!") and (key in labels) == (op == "!"):
                return False
            if op in ("in", "notin") and (labels.get(key) in values) == (op == "notin"):
                return False
        return True

    return match


def field_value(obj: Obj, path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return str(cur).lower() if isinstance(cur, bool) else "" if cur is None else str(cur)


def field_selector(resource: str, text: str | None) -> Callable[[Obj], bool]:
    tests = []
    for term in (text or "").split(","):
        if not term.strip():
            continue
        m = re.fullmatch(r"\s*([\w.]+)\s*(==|=|!=)\s*(.*?)\s*", term)
        if not m:
            raise KubeError(400, f"invalid selector: '{text}'; can't understand '{term}'")
        if m[1] not in RESOURCES[resource][2] | {"metadata.name", "metadata.namespace"}:
            raise KubeError(400, f"field label not supported: {m[1]}")
        tests.append((m[1], m[2] == "!=", m[3]))
    return lambda obj: all((field_value(obj, f) == v) != neg for f, neg, v in tests)


# ---------------------------------------------------------------------- patches
def merge_patch(target: Any, patch: Any, strategic: bool = False, key: str | None = None) -> Any:
    """RFC 7386 JSON merge patch; ``strategic`` also merges the lists of MERGE_KEYS by their key."""
    if strategic and key in MERGE_KEYS and isinstance(patch, list) and isinstance(target, list):
        mkey, out = MERGE_KEYS[key], copy.deepcopy(target)
        for item in patch:
            if not isinstance(item, dict) or mkey not in item:
                return copy.deepcopy(patch)
            idx = next((i for i, t in enumerate(out) if t.get(mkey) == item[mkey]), None)
            if item.get("$patch") == "delete":
                out = [t for t in out if t.get(mkey) != item[mkey]]
            elif idx is None:
                out.append(merge_patch({}, item, True))
            else:
                out[idx] = merge_patch(out[idx], item, True)
        return out
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif not (strategic and k.startswith("$")):
            out[k] = merge_patch(out.get(k), v, strategic, k)
    return out


def json_patch(doc: Any, ops: list[Obj]) -> Any:
    """RFC 6902: add, remove, replace, test, move, copy (ValueError when an op does not apply)."""
    doc = copy.deepcopy(doc)

    def locate(path: str) -> tuple[Any, Any]:
        keys = [k.replace("~1", "/").replace("~0", "~") for k in path.split("/")]
        if keys[0]:
            raise KeyError(path)
        cur = doc
        for k in keys[1:-1]:
            cur = cur[int(k)] if isinstance(cur, list) else cur[k]
        last = keys[-1]
        return cur, (len(cur) if last == "-" else int(last)) if isinstance(cur, list) else last

    for op in ops:
        kind, value = op.get("op"), op.get("value")
        try:
            if kind in ("move", "copy"):
                parent, key = locate(op["from"])
                value = copy.deepcopy(parent[key])
                if kind == "move":
                    del parent[key]
            parent, key = locate(op["path"])
            if kind == "test" and parent[key] != value:
                raise ValueError(f"testing value {op['path']} failed")
            if kind in ("remove", "replace"):
                del parent[key]
            if kind in ("add", "replace", "move", "copy"):
                parent.insert(key, value) if isinstance(parent, list) else parent.__setitem__(key, value)
            elif kind not in ("test", "remove"):
                raise ValueError(f"Unexpected kind: {kind}")
        except (KeyError, IndexError, TypeError) as exc:
            raise ValueError(
                f"{kind} operation does not apply: doc is missing path: {op.get('path')}"
            ) from exc
    return doc


# ---------------------------------------------------------------------- validation
def _meta_causes(meta: Obj) -> list[tuple[str, str]]:
    causes, name = [], meta.get("name") or ""
    if not name:
        causes.append(("metadata.name", "Required value: name or generateName is required"))
    elif len(name) > 253 or not re.fullmatch(SUBDOMAIN, name):
        causes.append(("metadata.name", f'Invalid value: "{name}": {SUBDOMAIN_MSG}'))
    for key, value in (meta.get("labels") or {}).items():
        prefix, _, short = key.rpartition("/")
        if not short or len(short) > 63 or len(prefix) > 253 or not re.fullmatch(LABEL_VALUE, short):
            causes.append(("metadata.labels", f'Invalid value: "{key}": name part {LABEL_VALUE_MSG}'))
        if not isinstance(value, str) or len(value) > 63:
            causes.append(
                ("metadata.labels", f'Invalid value: "{value}": must be no more than 63 characters')
            )
        elif not re.fullmatch(LABEL_VALUE, value):
            causes.append(("metadata.labels", f'Invalid value: "{value}": {LABEL_VALUE_MSG}'))
    return causes


def _pod_defaults(pod: Obj) -> None:
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        latest = str(c.get("image", "")).endswith(":latest")
        c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        res = c.get("resources") or {}
        if res.get("limits"):  # requests default to limits
            res["requests"] = {**res["limits"], **(res.get("requests") or {})}


def _pod_causes(spec: Obj) -> list[tuple[str, str]]:
    causes, seen = [], set()
    if not spec.get("containers"):
        causes.append(("spec.containers", "Required value"))
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            at, name = f"spec.{group}[{i}]", c.get("name") or ""
            if not name:
                causes.append((f"{at}.name", "Required value"))
            elif not re.fullmatch(DNS_LABEL, name) or len(name) > 63:
                causes.append((f"{at}.name", f'Invalid value: "{name}": {DNS_LABEL_MSG}'))
            elif name in seen:
                causes.append((f"{at}.name", f'Duplicate value: "{name}"'))
            seen.add(name)
            if not c.get("image"):
                causes.append((f"{at}.image", "Required value"))
            for j, env in enumerate(c.get("env") or []):
                if not re.fullmatch(r"[-._a-zA-Z][-._a-zA-Z0-9]*", env.get("name") or ""):
                    causes.append(
                        (f"{at}.env[{j}].name", f'Invalid value: "{env.get("name")}": {ENV_NAME_MSG}')
                    )
            limits = (c.get("resources") or {}).get("limits") or {}
            for rname, qty in ((c.get("resources") or {}).get("requests") or {}).items():
                if "/" not in rname or rname.startswith("kubernetes.io/"):
                    continue  # extended resources (nvidia.com/gpu) need limit == request
                if rname not in limits:
                    msg = "Required value: Limit must be set for non overcommitable resources"
                    causes.append((f"{at}.resources.limits", msg))
                elif str(limits[rname]) != str(qty):
                    msg = f'Invalid value: "{qty}": must be equal to {rname} limit of {limits[rname]}'
                    causes.append((f"{at}.resources.requests", msg))
    if spec.get("restartPolicy") not in ("Always", "OnFailure", "Never"):
        msg = f'Unsupported value: "{spec.get("restartPolicy")}": supported values: "Always", "OnFailure", "Never"'
        causes.append(("spec.restartPolicy", msg))
    return causes


def _mutable_spec_removed(spec: Obj) -> Obj:
    spec = copy.deepcopy(spec)
    for k in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds", "schedulingGates"):
        spec.pop(k, None)
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        c.pop("image", None)
    return spec


# ---------------------------------------------------------------------- the server
class _Log:
    def __init__(self, previous: bytes | None) -> None:
        self.data, self.previous, self.ended = bytearray(), previous, False
        self.waiters: set[asyncio.Event] = set()


_DROP, _ABORT, _CLOSED, _BOOKMARK = "drop", "abort", "closed", "bookmark"


class KubeApiServer:
    """The emulator. ``start()`` it, point a client at ``url`` (or use :meth:`api_client`),
    ``stop()`` it. The public methods without an HTTP twin are the tests' side doors."""

    def __init__(
        self,
        *,
        token: str | None = None,
        namespaces: tuple[str, ...] = ("default", "kube-system"),
        history: int = 1000,
        bookmark_interval: float = 5.0,
        git_version: str = "v1.29.0",
    ) -> None:
        self.token, self.history_size, self.git_version = token, history, git_version
        self.bookmark_interval = bookmark_interval
        self.requests: list[Obj] = []  # every request seen: method, path, query, content_type
        self.port = 0
        self._lock = threading.RLock()
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {r: {} for r in RESOURCES}
        self._rv = 0
        self._history: deque[tuple[int, str, str, Obj, Obj | None]] = deque()
        self._compacted = 0  # a watch from a resourceVersion below this is 410 Expired
        self._watchers: set[asyncio.Queue[Any]] = set()
        self._logs: dict[tuple[str, str], _Log] = {}  # (pod uid, container) -> log
        self._failures: list[Obj] = []
        self._clients: list[Any] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        for ns in namespaces:
            self.add_namespace(ns)

    # ------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> KubeApiServer:
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        ready = threading.Event()

        def run() -> None:
            self._loop = loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            app = tornado.web.Application([(r"/.*", _Handler, {"api": self})], log_function=lambda h: None)
            self._http = tornado.httpserver.HTTPServer(app)
            self._http.add_sockets(sockets)
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="kube-apiserver", daemon=True)
        self._thread.start()
        ready.wait()
        return self

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        if self._loop is None:
            return
        self.drop_watches(abrupt=True)

        async def shutdown() -> None:
            self._http.stop()
            await self._http.close_all_connections()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    def api_client(self, token: str | None = None) -> Any:
        """A ``kubernetes.client.ApiClient`` for this server (bearer ``token``: the server's by
        default); closed by :meth:`stop`."""
        from kubernetes import client

        cfg = client.Configuration(host=self.url)
        token = self.token if token is None else token
        if token:
            cfg.api_key, cfg.api_key_prefix = {"BearerToken": token}, {"BearerToken": "Bearer"}
        api = client.ApiClient(cfg)
        self._clients.append(api)
        return api

    def core_v1(self, token: str | None = None) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client(token))

    # ------------------------------------------------------------ side doors for tests
    def add_namespace(self, name: str) -> Obj:
        if ("", name) in self._objects["namespaces"]:
            return self.get("namespaces", "", name)
        return self.create("namespaces", "", {"metadata": {"name": name}})

    def add_node(
        self,
        name: str,
        *,
        gpus: int = 0,
        gpu_product: str = "NVIDIA-H100-80GB-HBM3",
        cpu: str = "32",
        memory: str = "128Gi",
        labels: dict[str, str] | None = None,
        taints: list[Obj] | None = None,
        unschedulable: bool = False,
    ) -> Obj:
        """A Ready node; with ``gpus``, the labels NVIDIA's GPU feature discovery gives it;
        ``taints``: as in its spec (``{"key": ..., "value": ..., "effect": "NoSchedule"}``)."""
        all_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
        resources = {"cpu": cpu, "memory": memory, "pods": "110"}
        if gpus:
            all_labels |= {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": gpu_product}
            all_labels["nvidia.com/gpu.count"] = resources["nvidia.com/gpu"] = str(gpus)
        ready = {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "lastTransitionTime": now_rfc3339(),
        }
        status = {"capacity": resources, "allocatable": dict(resources), "conditions": [ready]}
        status["addresses"] = [
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": name},
        ]
        meta = {"name": name, "labels": all_labels | (labels or {})}
        spec = ({"unschedulable": True} if unschedulable else {}) | ({"taints": taints} if taints else {})
        return self.create("nodes", "", {"metadata": meta, "spec": spec, "status": status})

    def remove_node(self, name: str) -> None:
        self.delete("nodes", "", name)

    def fail_next(
        self,
        n: int = 1,
        code: int = 503,
        *,
        method: str | None = None,
        path: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next ``n`` requests (only those with ``method`` and a path containing
        ``path``, when given) with a ``Status`` of ``code`` (and a Retry-After header)."""
        with self._lock:
            self._failures.append(
                dict(n=n, code=code, method=method, path=path or "", retry_after=retry_after)
            )

    def drop_watches(self, abrupt: bool = False) -> None:
        """End every open watch: cleanly (as at a server-side timeout) or ``abrupt``ly (the
        connection closed mid-stream). Log follows go on."""
        self._broadcast(_ABORT if abrupt else _DROP)

    def compact(self) -> None:
        """Forget the watch history: a watch from any resourceVersion seen so far is 410 Expired
        (the counter moves on by one, so a list made after this gives one to watch from)."""
        with self._lock:
            self._history.clear()
            self._rv += 1
            self._compacted = self._rv

    def bookmark(self) -> None:
        """A BOOKMARK now on every watch that allows them."""
        self._broadcast(_BOOKMARK)

    @property
    def watch_count(self) -> int:
        with self._lock:
            return len(self._watchers)

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    def objects(self, resource: str, namespace: str | None = None) -> list[Obj]:
        """The stored objects of a resource (copies), for assertions."""
        return self.list(resource, namespace)[0]

    def set_log(self, namespace: str, pod: str, text: str, container: str | None = None) -> None:
        """Give a pod's container a finished log (tests without a kubelet)."""
        obj = self.get("pods", namespace, pod)
        uid, container = obj["metadata"]["uid"], container or obj["spec"]["containers"][0]["name"]
        self.log_start(uid, container)
        self.log_write(uid, container, text.encode())
        self.log_end(uid, container)

    # the kubelet's side door: a container's log, by pod uid
    def log_start(self, uid: str, container: str) -> None:
        """A container (re)starts: a new log; the last one becomes its ``previous``."""
        with self._lock:
            old = self._logs.get((uid, container))
            self._logs[(uid, container)] = _Log(bytes(old.data) if old else None)
            self._wake(old)

    def log_write(self, uid: str, container: str, data: bytes) -> None:
        with self._lock:
            log = self._logs.get((uid, container))
            if log is not None and not log.ended:
                log.data += data
                self._wake(log)

    def log_end(self, uid: str, container: str) -> None:
        with self._lock:
            if (log := self._logs.get((uid, container))) is not None:
                log.ended = True
                self._wake(log)

    def _soon(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # stopped
            pass

    def _wake(self, log: _Log | None) -> None:
        for event in log.waiters if log is not None else ():
            self._soon(event.set)

    def _broadcast(self, item: Any) -> None:
        with self._lock:
            for queue in self._watchers:
                self._soon(queue.put_nowait, item)

    # ------------------------------------------------------------ the store (raises KubeError)
    def _find(self, resource: str, ns: str, name: str) -> Obj:
        if (obj := self._objects[resource].get((ns, name))) is None:
            raise not_found(resource, name)
        return obj

    def _commit(self, resource: str, etype: str, obj: Obj, old: Obj | None) -> Obj:
        """Give ``obj`` the next resourceVersion, store it (drop it if DELETED), tell the watches."""
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if etype == "DELETED":
            del self._objects[resource][key]
        else:
            self._objects[resource][key] = obj
        event = (self._rv, resource, etype, copy.deepcopy(obj), copy.deepcopy(old))
        self._history.append(event)
        while len(self._history) > self.history_size:
            self._compacted = self._history.popleft()[0]
        self._broadcast(event)
        return copy.deepcopy(obj)

    def get(self, resource: str, ns: str, name: str) -> Obj:
        with self._lock:
            return copy.deepcopy(self._find(resource, ns, name))

    def list(
        self, resource: str, ns: str | None, labels: str | None = None, fields: str | None = None
    ) -> tuple[list[Obj], int]:
        lmatch, fmatch = label_selector(labels), field_selector(resource, fields)
        with self._lock:
            found = sorted(self._objects[resource].items())
            items = [copy.deepcopy(o) for (n, _), o in found if ns in (None, n) and lmatch(o) and fmatch(o)]
            return items, self._rv

    def create(self, resource: str, ns: str, body: Any, dry_run: bool = False) -> Obj:
        kind, namespaced, _ = RESOURCES[resource]
        if not isinstance(body, dict):
            raise KubeError(400, "the body of the request must be a JSON object")
        obj = copy.deepcopy(body) | {"kind": kind, "apiVersion": "v1"}
        meta = obj.setdefault("metadata", {})
        if namespaced and meta.setdefault("namespace", ns) != ns:
            raise KubeError(
                400, "the namespace of the provided object does not match the namespace sent on the request"
            )
        if not namespaced:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices("bcdfghjklmnpqrstvwxz2456789", k=5))
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(k, None)
        meta |= {"uid": str(uuid.uuid4()), "creationTimestamp": now_rfc3339()}
        causes = _meta_causes(meta)
        if resource == "pods":
            _pod_defaults(obj)
            causes += _pod_causes(obj["spec"])
            obj["status"] = {"phase": "Pending"}
            if obj["spec"].get("schedulingGates"):
                msg = "Scheduling is blocked due to non-empty scheduling gates"
                gated = {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "SchedulingGated",
                    "message": msg,
                }
                obj["status"]["conditions"] = [gated | {"lastTransitionTime": now_rfc3339()}]
        elif resource == "secrets":
            self._secret_data(obj)
        elif resource == "namespaces":
            obj["status"] = {"phase": "Active"}
        if causes:
            raise invalid(kind, meta.get("name", ""), causes)
        with self._lock:
            if namespaced and ("", ns) not in self._objects["namespaces"]:
                raise not_found("namespaces", ns)
            if (meta.get("namespace", ""), meta["name"]) in self._objects[resource]:
                msg = f'{resource} "{meta["name"]}" already exists'
                raise KubeError(409, msg, "AlreadyExists", name=meta["name"], kind=resource)
            return obj if dry_run else self._commit(resource, "ADDED", obj, None)

    @staticmethod
    def _secret_data(obj: Obj) -> None:
        obj.setdefault("type", "Opaque")
        for k, v in (obj.pop("stringData", None) or {}).items():
            obj.setdefault("data", {})[k] = base64.b64encode(str(v).encode()).decode()

    def update(
        self,
        resource: str,
        ns: str,
        name: str,
        body: Any,
        sub: str | None = None,
        patch: tuple[str, Any] | None = None,
    ) -> Obj:
        """PUT ``body``, or PATCH with ``patch`` = (content type, document), an object or its
        ``/status``; a stale ``metadata.resourceVersion`` in either is a 409 Conflict."""
        kind = RESOURCES[resource][0]
        with self._lock:
            old = self._find(resource, ns, name)
            rv = old["metadata"]["resourceVersion"]
            if patch is not None:
                ctype, doc = patch
                try:
                    if ctype == PATCH_TYPES[0] and not isinstance(doc, list):
                        raise ValueError("a JSON patch must be a list of operations")
                    body = (
                        json_patch(old, doc)
                        if ctype == PATCH_TYPES[0]
                        else merge_patch(old, doc, ctype == PATCH_TYPES[2])
                    )
                except ValueError as exc:
                    raise KubeError(422, str(exc)) from None
            if not isinstance(body, dict):
                raise KubeError(400, "the body of the request must be a JSON object")
            new = copy.deepcopy(body) | {"kind": kind, "apiVersion": "v1"}
            meta = new.setdefault("metadata", {})
            if meta.get("name", name) != name:
                raise KubeError(
                    400,
                    f"the name of the object ({meta['name']}) does not match the name on the URL ({name})",
                )
            if meta.get("resourceVersion") not in (None, "", rv):
                msg = f'Operation cannot be fulfilled on {resource} "{name}": the object has been modified; please apply your changes to the latest version and try again'
                raise KubeError(409, msg, name=name, kind=resource)
            for k in ("uid", "creationTimestamp", "namespace", "name", "generateName", "deletionTimestamp"):
                if k in old["metadata"]:
                    meta[k] = old["metadata"][k]
            if sub == "status":  # the status subresource changes the status only
                new = copy.deepcopy(old) | {"status": new.get("status") or {}}
            elif resource in ("pods", "nodes", "namespaces") and "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            causes = _meta_causes(new["metadata"])
            if resource == "pods" and sub != "status":
                _pod_defaults(new)
                causes += _pod_causes(new["spec"])
                if _mutable_spec_removed(new["spec"]) != _mutable_spec_removed(old["spec"]):
                    causes.append(("spec", IMMUTABLE_SPEC_MSG))
            if resource == "secrets":
                self._secret_data(new)
            if causes:
                raise invalid(kind, name, causes)
            new["metadata"]["resourceVersion"] = rv
            if new == old:  # a no-op write keeps the resourceVersion and sends no event
                return copy.deepcopy(old)
            return self._commit(resource, "MODIFIED", new, old)

    def bind(self, ns: str, name: str, node: str) -> None:
        """``pods/binding``: what the scheduler does; sets nodeName and PodScheduled=True."""
        with self._lock:
            old = self._find("pods", ns, name)
            if old["spec"].get("nodeName"):
                msg = f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} is already assigned to node "{old["spec"]["nodeName"]}"'
                raise KubeError(409, msg, name=name, kind="pods/binding")
            new = copy.deepcopy(old)
            new["spec"]["nodeName"] = node
            scheduled = {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}
            others = [c for c in new["status"].get("conditions", []) if c["type"] != "PodScheduled"]
            new["status"]["conditions"] = [scheduled, *others]
            self._commit("pods", "MODIFIED", new, old)

    def delete(
        self, resource: str, ns: str, name: str, grace: int | None = None, preconditions: Obj | None = None
    ) -> Obj:
        """Delete. A pod that runs on an existing node only gets a deletionTimestamp: its kubelet
        ends it and deletes it with grace 0, as with a real kubelet."""
        with self._lock:
            old = self._find(resource, ns, name)
            for k, v in (preconditions or {}).items():
                if v is not None and v != old["metadata"].get(k):
                    msg = f"Precondition failed: {k} in precondition: {v}, {k} in object meta: {old['metadata'].get(k)}"
                    raise KubeError(409, msg, name=name, kind=resource)
            obj = copy.deepcopy(old)
            if resource == "pods":
                node, phase = old["spec"].get("nodeName"), old["status"].get("phase")
                grace = old["spec"].get("terminationGracePeriodSeconds", 30) if grace is None else grace
                if (
                    grace > 0
                    and phase not in ("Succeeded", "Failed")
                    and ("", node) in self._objects["nodes"]
                ):
                    if "deletionTimestamp" in old["metadata"]:
                        return obj
                    obj["metadata"] |= {
                        "deletionTimestamp": now_rfc3339(),
                        "deletionGracePeriodSeconds": grace,
                    }
                    return self._commit(resource, "MODIFIED", obj, old)
                for key in [k for k in self._logs if k[0] == old["metadata"]["uid"]]:
                    self.log_end(*key)
                    del self._logs[key]
            if resource == "namespaces":
                for r in RESOURCES:
                    for key in [k for k in self._objects[r] if k[0] == name]:
                        self.delete(r, *key, grace=0)
            return self._commit(resource, "DELETED", obj, old)

    def _admit(self, method: str, path: str, authorization: str | None) -> None:
        with self._lock:
            if self.token and path != "/version" and authorization != f"Bearer {self.token}":
                raise KubeError(401, "Unauthorized")
            for rule in self._failures:
                if rule["n"] > 0 and rule["method"] in (None, method) and rule["path"] in path:
                    rule["n"] -= 1
                    err = KubeError(rule["code"], "injected failure")
                    if rule["retry_after"] is not None:
                        err.headers["Retry-After"] = str(rule["retry_after"])
                    raise err


def _discovery() -> Obj:
    verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    found = [
        {"name": name, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind, "verbs": verbs}
        for name, (kind, namespaced, _) in RESOURCES.items()
    ]
    for sub, kind, sverbs in (
        ("status", "Pod", verbs[4:7]),
        ("log", "Pod", ["get"]),
        ("binding", "Binding", ["create"]),
    ):
        found.append(
            {"name": f"pods/{sub}", "singularName": "", "namespaced": True, "kind": kind, "verbs": sverbs}
        )
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": found}


class _Handler(tornado.web.RequestHandler):
    def initialize(self, api: KubeApiServer) -> None:
        self.api = api
        self._queue: asyncio.Queue[Any] | None = None  # a watch's
        self._woken: asyncio.Event | None = None  # a log follow's
        self._closed = False

    def compute_etag(self) -> None:
        return None

    async def get(self) -> None:
        await self._serve("GET")

    async def post(self) -> None:
        await self._serve("POST")

    async def put(self) -> None:
        await self._serve("PUT")

    async def patch(self) -> None:
        await self._serve("PATCH")

    async def delete(self) -> None:
        await self._serve("DELETE")

    def on_connection_close(self) -> None:
        self._closed = True
        if self._queue is not None:
            self._queue.put_nowait(_CLOSED)
        if self._woken is not None:
            self._woken.set()

    def _send(self, code: int, body: Any) -> None:
        self.set_status(code)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def _q(self, name: str) -> str | None:
        return self.get_query_argument(name, None)

    def _body(self) -> Any:
        try:
            return json.loads(self.request.body) if self.request.body else None
        except ValueError as exc:
            raise KubeError(400, f"the body of the request could not be decoded: {exc}") from None

    async def _serve(self, method: str) -> None:
        path, ctype = self.request.path, self.request.headers.get("Content-Type", "").split(";")[0].strip()
        query = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        with self.api._lock:
            self.api.requests.append({"method": method, "path": path, "query": query, "content_type": ctype})
        try:
            self.api._admit(method, path.rstrip("/"), self.request.headers.get("Authorization"))
            await self._route(method, path, ctype)
        except KubeError as err:
            for k, v in err.headers.items():
                self.set_header(k, v)
            self._send(err.code, err.status())
        except Exception as exc:  # an emulator bug: a 500 Status, and the traceback in the log
            app_log.exception("kube emulator: %s %s", method, path)
            self._send(500, KubeError(500, f"emulator error: {exc!r}").status())

    async def _route(self, method: str, path: str, ctype: str) -> None:
        api, parts = self.api, [p for p in path.split("/") if p]
        if parts == ["version"]:
            major, minor = api.git_version.lstrip("v").split(".")[:2]
            return self._send(200, {"major": major, "minor": minor, "gitVersion": api.git_version, **VERSION})
        if parts == ["api"]:
            cidrs = [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{api.port}"}]
            return self._send(
                200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": cidrs}
            )
        if parts == ["apis"]:
            return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
        if parts == ["api", "v1"]:
            return self._send(200, _discovery())
        rest, ns = (parts[2:] if parts[:2] == ["api", "v1"] else []), None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not 1 <= len(rest) <= 3 or rest[0] not in RESOURCES:
            raise KubeError(404, NOT_FOUND_PATH)
        resource, name, sub = rest[0], (rest[1:2] or [None])[0], (rest[2:3] or [None])[0]
        namespaced = RESOURCES[resource][1]
        if (ns is not None and not namespaced) or (namespaced and name is not None and ns is None):
            raise KubeError(404, NOT_FOUND_PATH)
        if sub not in (None, "status", "log", "binding") or (
            sub in ("log", "binding") and resource != "pods"
        ):
            raise KubeError(404, NOT_FOUND_PATH)
        if method in ("POST", "PUT") and ctype not in ("", "application/json"):
            raise KubeError(
                415,
                f'the body of the request was in an unknown format - accepted media types include: application/json (got "{ctype}")',
            )
        if method == "PATCH" and ctype not in PATCH_TYPES:
            raise KubeError(
                415,
                f"the body of the request was in an unknown format - accepted media types include: {', '.join(PATCH_TYPES)}",
            )
        ns_key = (ns or "") if namespaced else ""
        collection = ns is not None or not namespaced
        if name is None and method == "GET":
            return await self._watch(resource, ns) if self._q("watch") in TRUE else self._list(resource, ns)
        if name is None and method == "POST" and collection:
            return self._send(
                201, api.create(resource, ns_key, self._body(), dry_run=bool(self._q("dryRun")))
            )
        if name is None and method == "DELETE" and collection:  # deletecollection
            grace = self._grace(self._body() or {})
            for item in api.list(resource, ns, self._q("labelSelector"), self._q("fieldSelector"))[0]:
                api.delete(resource, ns_key, item["metadata"]["name"], grace)
            return self._send(200, _success())
        if name is not None and sub == "log" and method == "GET":
            return await self._pod_log(ns_key, name)
        if name is not None and sub == "binding" and method == "POST":
            api.bind(ns_key, name, ((self._body() or {}).get("target") or {}).get("name", ""))
            return self._send(201, _success(code=201))
        if name is not None and sub != "binding" and method == "GET":
            return self._send(200, api.get(resource, ns_key, name))
        if name is not None and sub in (None, "status") and method in ("PUT", "PATCH"):
            patch = (ctype, self._body()) if method == "PATCH" else None
            return self._send(200, api.update(resource, ns_key, name, self._body(), sub, patch))
        if name is not None and sub is None and method == "DELETE":
            body = self._body() or {}
            obj = api.delete(resource, ns_key, name, self._grace(body), body.get("preconditions"))
            if resource == "pods":
                return self._send(200, obj)
            return self._send(
                200, _success(details={"name": name, "kind": resource, "uid": obj["metadata"]["uid"]})
            )
        raise KubeError(405, f"the server does not allow this method on the requested resource ({method})")

    def _grace(self, body: Obj) -> int | None:
        grace = self._q("gracePeriodSeconds")
        grace = body.get("gracePeriodSeconds") if grace is None else grace
        return None if grace is None else int(grace)

    def _list(self, resource: str, ns: str | None) -> None:
        items, rv = self.api.list(resource, ns, self._q("labelSelector"), self._q("fieldSelector"))
        meta: Obj = {"resourceVersion": str(rv)}
        start, limit = int(base64.b64decode(self._q("continue") or "MA==")), int(self._q("limit") or 0)
        if limit and start + limit < len(items):
            meta["continue"] = base64.b64encode(str(start + limit).encode()).decode()
            meta["remainingItemCount"] = len(items) - start - limit
        items = items[start : start + limit] if limit else items[start:]
        self._send(
            200,
            {"kind": RESOURCES[resource][0] + "List", "apiVersion": "v1", "metadata": meta, "items": items},
        )

    async def _watch(self, resource: str, ns: str | None) -> None:
        api, kind = self.api, RESOURCES[resource][0]
        lmatch, fmatch = (
            label_selector(self._q("labelSelector")),
            field_selector(resource, self._q("fieldSelector")),
        )
        bookmarks, rv = self._q("allowWatchBookmarks") in TRUE, self._q("resourceVersion") or "0"
        if not rv.isdigit():
            raise KubeError(400, f'resourceVersion: Invalid value: "{rv}": strconv.ParseUint: invalid syntax')

        def matches(obj: Obj | None) -> bool:
            return (
                obj is not None
                and ns in (None, obj["metadata"].get("namespace"))
                and lmatch(obj)
                and fmatch(obj)
            )

        self._queue = queue = asyncio.Queue()
        self.set_header("Content-Type", "application/json")
        with api._lock:
            since, compacted = int(rv), api._compacted
            if since and since < compacted:  # one ERROR event, as a real server
                status = KubeError(
                    410, f"too old resource version: {since} ({compacted})", "Expired"
                ).status()
                return self.finish(json.dumps({"type": "ERROR", "object": status}) + "\n")
            for event in api._history if since else ():  # resume after ``since``
                if event[0] > since:
                    queue.put_nowait(event)
            for obj in api._objects[resource].values() if not since else ():  # the state, then changes
                queue.put_nowait((api._rv, resource, "ADDED", copy.deepcopy(obj), None))
            seen = since or api._rv  # a BOOKMARK's resourceVersion: every event up to it was sent
            api._watchers.add(queue)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(self._q("timeoutSeconds") or 1800)
        try:
            await self.flush()
            while not self._closed and (left := deadline - loop.time()) > 0:
                try:
                    wait = min(left, api.bookmark_interval) if bookmarks else left
                    item = await asyncio.wait_for(queue.get(), wait)
                except asyncio.TimeoutError:
                    item = _BOOKMARK
                if item in (_CLOSED, _DROP):
                    break
                if item == _ABORT:
                    return self.detach().close()
                if item == _BOOKMARK:
                    if bookmarks and loop.time() < deadline:
                        obj = {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": str(seen)}}
                        self.write(json.dumps({"type": "BOOKMARK", "object": obj}) + "\n")
                        await self.flush()
                    continue
                event_rv, eresource, etype, obj, old = item
                seen = max(seen, event_rv)
                now_in, was_in = matches(obj), matches(old)
                if eresource != resource or not (now_in or was_in) or (etype != "MODIFIED" and not now_in):
                    continue
                if etype == "MODIFIED" and now_in != was_in:  # moved into or out of the selection
                    etype = "ADDED" if now_in else "DELETED"
                self.write(json.dumps({"type": etype, "object": obj}) + "\n")
                await self.flush()
        except StreamClosedError:
            pass
        finally:
            with api._lock:
                api._watchers.discard(queue)
        if not self._closed:
            self.finish()

    async def _pod_log(self, ns: str, name: str) -> None:
        api, pod = self.api, self.api.get("pods", ns, name)
        spec, status, uid = pod["spec"], pod["status"], pod["metadata"]["uid"]
        container = self._q("container")
        if container is None and len(spec["containers"]) > 1:
            choices = " ".join(c["name"] for c in spec["containers"])
            raise KubeError(
                400, f"a container name must be specified for pod {name}, choose one of: [{choices}]"
            )
        container = container or spec["containers"][0]["name"]
        if container not in [c["name"] for c in spec.get("initContainers", []) + spec["containers"]]:
            raise KubeError(400, f"container {container} is not valid for pod {name}")
        previous, woken = self._q("previous") in TRUE, asyncio.Event()
        with api._lock:
            log = api._logs.get((uid, container))
            if previous and (log is None or log.previous is None):
                raise KubeError(400, f'previous terminated container "{container}" in pod "{name}" not found')
            if log is None:
                reason = "ContainerCreating"
                for cs in status.get("initContainerStatuses", []) + status.get("containerStatuses", []):
                    if cs.get("name") == container and (cs.get("state") or {}).get("waiting"):
                        reason = cs["state"]["waiting"].get("reason", reason)
                raise KubeError(400, f'container "{container}" in pod "{name}" is waiting to start: {reason}')
            data, offset = (log.previous or b"") if previous else bytes(log.data), len(log.data)
            follow = self._q("follow") in TRUE and not previous
            if follow:
                self._woken = woken
                log.waiters.add(woken)
        if (tail := self._q("tailLines")) is not None:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[len(lines) - int(tail) :] if int(tail) else [])
        self.set_header("Content-Type", "text/plain")
        self.write(data[: int(self._q("limitBytes") or 0) or None])
        try:
            while follow and not self._closed:
                woken.clear()
                with api._lock:
                    chunk, ended = bytes(log.data[offset:]), log.ended
                offset += len(chunk)
                self.write(chunk)
                await self.flush()
                if ended:
                    break
                await woken.wait()
        except StreamClosedError:
            return
        finally:
            log.waiters.discard(woken)
        if not self._closed:
            self.finish()
