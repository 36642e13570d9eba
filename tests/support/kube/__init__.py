"""Kubernetes without a cluster: an API server emulator and a test kubelet (see README.md).

``kube_api_server()`` and ``run_kubelet()`` are the context managers behind the ``kube_api``
and ``kubelet`` fixtures of tests/kube/conftest.py, for test folders that want their own.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubernetes import watch
from kubernetes.client.rest import ApiException

from support.kube.apiserver import KubeApiServer, KubeError
from support.kube.kubelet import Kubelet, pod_gpus
from support.orchserver import tagged_pids

__all__ = ["KubeApiServer", "KubeError", "Kubelet", "PodWatch", "container_state", "kube_api_server", "phase"]
__all__ += ["pod_gpus", "run_kubelet"]


@contextmanager
def kube_api_server(**kwargs: Any) -> Iterator[KubeApiServer]:
    """A started emulator (``KubeApiServer`` keyword arguments), stopped afterwards."""
    server = KubeApiServer(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def run_kubelet(
    api: KubeApiServer, workdir: Path, *, node: str | None = "node-0", **kwargs: Any
) -> Iterator[Kubelet]:
    """A started test kubelet (``Kubelet`` keyword arguments), with a CPU-only ``node`` added
    first unless None; stopped afterwards, and no process it started may survive that."""
    if node is not None:
        api.add_node(node)
    kubelet = Kubelet(api, workdir, **kwargs).start()
    try:
        yield kubelet
    finally:
        escaped = kubelet.stop()
        left = tagged_pids(kubelet.tag)
        assert not escaped and not left, f"processes outlived their pods: {escaped or left}"


class PodWatch:
    """Pod events from the official client's ``Watch`` (in a thread), from now on; tests wait on
    them by predicate instead of sleeping. The pods that exist already come first, as ADDED."""

    def __init__(self, v1: Any, namespace: str = "default", **list_kwargs: Any) -> None:
        listed = json.loads(v1.list_namespaced_pod(namespace, _preload_content=False, **list_kwargs).data)
        self.events: list[tuple[str, dict[str, Any]]] = [("ADDED", pod) for pod in listed["items"]]
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._watch = watch.Watch()
        args = (v1.list_namespaced_pod, namespace, listed["metadata"]["resourceVersion"])
        self._thread = threading.Thread(target=self._run, args=args, kwargs=list_kwargs, daemon=True)
        self._thread.start()

    def _run(self, list_fn: Any, namespace: str, version: str, **kwargs: Any) -> None:
        """Watch from ``version``; a dropped stream is watched again from the last event seen."""
        while not self._closed:
            self._watch = watch.Watch()
            try:
                for event in self._watch.stream(list_fn, namespace, resource_version=version, **kwargs):
                    with self._cond:
                        self.events.append((event["type"], event["raw_object"]))
                        self._cond.notify_all()
            except Exception as exc:
                if isinstance(exc, ApiException) and not self._closed:  # 410 Expired: the test's business
                    with self._cond:
                        self.error = exc
                        self._cond.notify_all()
                    return
                time.sleep(0.05)
            version = self._watch.resource_version or version

    def __enter__(self) -> PodWatch:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        self._watch.stop()
        self._thread.join(5)

    def wait(
        self,
        name: str,
        predicate: Callable[[dict[str, Any]], bool] = lambda pod: True,
        *,
        etype: str | None = None,
        timeout: float = 30,
    ) -> dict[str, Any]:
        """The pod (a dict, as sent) of the first event of pod ``name`` since the watch began
        that ``predicate`` holds for (and of type ``etype``, if given)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = 0
            while True:
                for kind, pod in self.events[seen:]:
                    if pod["metadata"]["name"] == name and etype in (None, kind) and predicate(pod):
                        return pod
                seen = len(self.events)
                if self.error is not None:
                    raise AssertionError(f"the watch failed: {self.error!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    states = [
                        (k, p["status"].get("phase")) for k, p in self.events if p["metadata"]["name"] == name
                    ]
                    raise TimeoutError(f"pod {name}: the awaited event did not come; saw {states}")
                self._cond.wait(left)

    def seen(self, name: str) -> list[dict[str, Any]]:
        """Pod ``name`` as each event so far showed it, in order."""
        with self._cond:
            return [p for _, p in self.events if p["metadata"]["name"] == name]

    def phases(self, name: str) -> list[str]:
        """The phases pod ``name`` went through, in order, repeats dropped."""
        with self._cond:
            found = [p["status"].get("phase") for _, p in self.events if p["metadata"]["name"] == name]
        return [p for i, p in enumerate(found) if i == 0 or found[i - 1] != p]


def phase(*phases: str) -> Callable[[dict[str, Any]], bool]:
    """A PodWatch predicate: the pod is in one of ``phases``."""
    return lambda pod: pod["status"].get("phase") in phases


def container_state(
    state: str, reason: str | None = None, container: int = 0
) -> Callable[[dict[str, Any]], bool]:
    """A PodWatch predicate: container ``container`` is ``waiting``/``running``/``terminated``
    (with ``reason``, if given)."""

    def check(pod: dict[str, Any]) -> bool:
        statuses = pod["status"].get("containerStatuses") or []
        found = statuses[container]["state"].get(state) if len(statuses) > container else None
        return found is not None and reason in (None, found.get("reason"))

    return check
