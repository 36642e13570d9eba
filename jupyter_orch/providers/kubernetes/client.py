"""The few Kubernetes API calls the provider makes, over the official client, as dicts.

Every call the provider makes goes through :class:`KubeApi`, and ``API_CALLS`` says which
(resource, verb) each client method needs: ``tests/providers/test_kubernetes_rbac.py``
checks that table against the code and against the Role in ``helm/``, so a new call
without a grant fails the tests rather than a deployment. The client is synchronous; the
provider runs these calls in threads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

__all__ = ["API_CALLS", "ApiException", "KubeApi", "api_message", "connect", "unknown_fields"]

# CoreV1Api method -> the (resource, verb) pairs it needs; "cluster" ones need the
# optional ClusterRole (nodes and every namespace's pods: the cluster's free GPUs)
API_CALLS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "create_namespaced_pod": (("pods", "create", "namespace"),),
    "read_namespaced_pod": (("pods", "get", "namespace"),),
    "list_namespaced_pod": (("pods", "list", "namespace"), ("pods", "watch", "namespace")),
    "delete_namespaced_pod": (("pods", "delete", "namespace"),),
    "read_namespaced_pod_log": (("pods/log", "get", "namespace"),),
    "create_namespaced_secret": (("secrets", "create", "namespace"),),
    "patch_namespaced_secret": (("secrets", "patch", "namespace"),),
    "delete_namespaced_secret": (("secrets", "delete", "namespace"),),
    "list_namespaced_secret": (("secrets", "list", "namespace"),),
    "list_namespaced_event": (("events", "list", "namespace"),),
    "list_node": (("nodes", "list", "cluster"),),
    "list_pod_for_all_namespaces": (("pods", "list", "cluster"),),
}

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
TIMEOUT = 30  # seconds for one ordinary call


def connect(
    *,
    api_url: str = "",
    api_token: str = "",
    kubeconfig: str = "",
    context: str = "",
    in_cluster: bool | None = None,
) -> tuple[client.ApiClient, str]:
    """An API client and the namespace the configuration points at.

    ``api_url`` (with an optional bearer ``api_token``) wins; else in-cluster config when
    running in a pod (or when asked), else the kubeconfig file and context."""
    if api_url:
        cfg = client.Configuration(host=api_url.rstrip("/"))
        if api_token:
            cfg.api_key = {"authorization": api_token}
            cfg.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(cfg), ""
    if in_cluster or (in_cluster is None and os.environ.get("KUBERNETES_SERVICE_HOST")):
        cfg = client.Configuration()
        config.load_incluster_config(client_configuration=cfg)
        try:
            with open(os.path.join(SA_DIR, "namespace")) as f:
                namespace = f.read().strip()
        except OSError:
            namespace = ""
        return client.ApiClient(cfg), namespace
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig or None, context=context or None, client_configuration=cfg)
    _, active = config.list_kube_config_contexts(config_file=kubeconfig or None)
    namespace = ""
    if context:
        contexts, _ = config.list_kube_config_contexts(config_file=kubeconfig or None)
        active = next((c for c in contexts if c.get("name") == context), active)
    if active:
        namespace = (active.get("context") or {}).get("namespace") or ""
    return client.ApiClient(cfg), namespace


def api_message(exc: BaseException) -> str:
    """What the API said, from its Status body when there is one."""
    if isinstance(exc, ApiException):
        try:
            body = json.loads(exc.body or "")
            if isinstance(body, dict) and body.get("message"):
                return f"{body['message']} (HTTP {exc.status})"
        except (TypeError, ValueError):
            pass
        return f"HTTP {exc.status} {exc.reason or ''}".strip()
    return str(exc) or type(exc).__name__


def unknown_fields(pod: dict[str, Any]) -> list[str]:
    """Fields of ``pod`` the Pod model does not know (a typo in a pod template)."""
    api = client.ApiClient()
    known = api.sanitize_for_serialization(client.V1Pod.from_dict(pod))
    return sorted(_missing(pod, known, ""))


def _missing(given: Any, kept: Any, path: str) -> list[str]:
    out: list[str] = []
    if isinstance(given, dict) and isinstance(kept, dict):
        for key, value in given.items():
            if key not in kept:
                if value not in (None, {}, []):
                    out.append(f"{path}{key}")
            elif not (isinstance(value, dict) and _free_form(path + key)):
                out += _missing(value, kept[key], f"{path}{key}.")
    elif isinstance(given, list) and isinstance(kept, list):
        for i, (a, b) in enumerate(zip(given, kept, strict=False)):
            out += _missing(a, b, f"{path[:-1]}[{i}].")
    return out


def _free_form(path: str) -> bool:
    """Maps whose keys are data, not fields (labels, selectors, quantities)."""
    return path.rsplit(".", 1)[-1] in {"labels", "annotations", "nodeSelector", "limits", "requests", "data"}


class KubeApi:
    """The provider's calls in one namespace; every result is the API's JSON as a dict."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.core = client.CoreV1Api(api_client)

    @staticmethod
    def _json(resp: Any) -> dict[str, Any]:
        data = json.loads(resp.data or b"{}")
        return data if isinstance(data, dict) else {}

    # ------------------------------------------------------------------ pods
    def create_pod(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._json(
            self.core.create_namespaced_pod(
                self.namespace, body, _preload_content=False, _request_timeout=TIMEOUT
            )
        )

    def get_pod(self, name: str) -> dict[str, Any] | None:
        try:
            return self._json(
                self.core.read_namespaced_pod(
                    name, self.namespace, _preload_content=False, _request_timeout=TIMEOUT
                )
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list_pods(self, label_selector: str) -> tuple[list[dict[str, Any]], str]:
        """The pods and the list's resourceVersion (where a watch resumes)."""
        data = self._json(
            self.core.list_namespaced_pod(
                self.namespace,
                label_selector=label_selector,
                _preload_content=False,
                _request_timeout=TIMEOUT,
            )
        )
        return list(data.get("items") or []), str((data.get("metadata") or {}).get("resourceVersion") or "")

    def watch_pods(
        self, label_selector: str, resource_version: str, timeout: int, stop: watch.Watch
    ) -> Iterator[dict[str, Any]]:
        """Watch events (``type`` and the object as a dict) from ``resource_version``; ends
        after ``timeout`` seconds; a 410 Gone raises ApiException(status=410)."""
        for event in stop.stream(
            self.core.list_namespaced_pod,
            self.namespace,
            label_selector=label_selector,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout,
            _request_timeout=(TIMEOUT, timeout + TIMEOUT),
        ):
            yield {"type": event["type"], "object": event["raw_object"]}

    def delete_pod(self, name: str, grace: int | None = None) -> bool:
        """False when it was already gone."""
        try:
            self.core.delete_namespaced_pod(
                name,
                self.namespace,
                grace_period_seconds=grace,
                _preload_content=False,
                _request_timeout=TIMEOUT,
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def pod_log(self, name: str, container: str, tail_lines: int) -> str:
        resp = self.core.read_namespaced_pod_log(
            name,
            self.namespace,
            container=container,
            tail_lines=tail_lines,
            _preload_content=False,
            _request_timeout=TIMEOUT,
        )
        return bytes(resp.data or b"").decode(errors="replace")

    # ------------------------------------------------------------------ secrets
    def create_secret(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._json(
            self.core.create_namespaced_secret(
                self.namespace, body, _preload_content=False, _request_timeout=TIMEOUT
            )
        )

    def set_secret_owner(self, name: str, owner_reference: dict[str, Any]) -> None:
        body = {"metadata": {"ownerReferences": [owner_reference]}}
        self.core.patch_namespaced_secret(
            name, self.namespace, body, _preload_content=False, _request_timeout=TIMEOUT
        )

    def delete_secret(self, name: str) -> bool:
        try:
            self.core.delete_namespaced_secret(
                name, self.namespace, _preload_content=False, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def list_secrets(self, label_selector: str) -> list[dict[str, Any]]:
        data = self._json(
            self.core.list_namespaced_secret(
                self.namespace,
                label_selector=label_selector,
                _preload_content=False,
                _request_timeout=TIMEOUT,
            )
        )
        return list(data.get("items") or [])

    # ------------------------------------------------------------------ events, cluster
    def pod_events(self, name: str) -> list[dict[str, Any]]:
        data = self._json(
            self.core.list_namespaced_event(
                self.namespace,
                field_selector=f"involvedObject.name={name}",
                _preload_content=False,
                _request_timeout=TIMEOUT,
            )
        )
        return list(data.get("items") or [])

    def list_nodes(self) -> list[dict[str, Any]]:
        data = self._json(self.core.list_node(_preload_content=False, _request_timeout=TIMEOUT))
        return list(data.get("items") or [])

    def list_all_pods(self, field_selector: str) -> list[dict[str, Any]]:
        data = self._json(
            self.core.list_pod_for_all_namespaces(
                field_selector=field_selector, _preload_content=False, _request_timeout=TIMEOUT
            )
        )
        return list(data.get("items") or [])

    def close(self) -> None:
        try:
            self.api_client.close()
        except Exception:  # closing is best effort at shutdown
            pass
