"""``KubernetesProvider``: worker pods on demand (``c.OrchApp.provider = "kubernetes"``).

Its settings are in ``settings.py``. The ``kubernetes`` client is imported only when the
provider starts, so the package works without it (``pip install jupyter-orch[kubernetes]``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...core.queue import PendingTask
from ...core.resources import parse_memory
from ..base import ProviderContext
from . import capacity, podspec
from .settings import KubernetesSettings

if TYPE_CHECKING:
    from .client import KubeApi
    from .lifecycle import Pods
    from .watching import ResumableWatch


class KubernetesProvider(KubernetesSettings):
    name = "kubernetes"
    on_demand = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api: KubeApi | None = None
        self.pods: Pods | None = None
        self.nodes: list[capacity.NodeGpus] = []
        self.capacity_error: str | None = None
        self.capacity_at: float | None = None
        self._watch: ResumableWatch | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._refresh_now = asyncio.Event()

    # ------------------------------------------------------------------ start/stop
    async def start(self, context: ProviderContext) -> None:
        await super().start(context)
        self.check_settings()
        try:
            from . import client as kube
            from .lifecycle import Pods
            from .records import Limits
            from .watching import ResumableWatch
        except ImportError as exc:
            raise RuntimeError(
                f"the kubernetes provider needs the kubernetes client: pip install 'jupyter-orch[kubernetes]' ({exc})"
            ) from None
        in_cluster = {"auto": None, "yes": True, "no": False}[self.in_cluster]
        try:
            api_client, config_ns = await asyncio.to_thread(
                kube.connect,
                api_url=self.api_url,
                api_token=self.api_token,
                kubeconfig=self.kubeconfig,
                context=self.kube_context,
                in_cluster=in_cluster,
            )
        except Exception as exc:
            raise RuntimeError(
                f"the kubernetes provider found no cluster configuration ({exc}); set KubernetesProvider.api_url, kubeconfig or kube_context"
            ) from None
        namespace = self.namespace or config_ns or "default"
        self.api = api = kube.KubeApi(api_client, namespace)
        settings = self.settings_for(context, namespace, await self._owner_reference(api))
        self.check_template(settings, kube.unknown_fields)
        limits = Limits(
            max_pods=self.max_pods,
            max_gpus_per_user=self.max_gpus_per_user,
            default_image=self.image,
            default_memory=parse_memory(self.default_memory),
            unschedulable_timeout=self.unschedulable_timeout,
            connect_timeout=self.connect_timeout,
            adopt_grace=self.adopt_grace,
            idle_timeout=self._idle_timeout(),
            log_lines=self.log_lines,
            image_pull_attempts=self.image_pull_attempts,
            image_pull_timeout=self.image_pull_timeout,
        )
        self.pods = Pods(api, settings, context, limits, self._gpu_types, self._refresh_now.set, self.log)
        selector = f"{podspec.SERVER_LABEL}={settings.server_id}"
        pods_now, version = await asyncio.to_thread(api.list_pods, selector)
        self.pods.on_watch("SYNC", pods_now)
        await self._delete_orphan_secrets(selector)
        loop = asyncio.get_running_loop()
        self._watch = ResumableWatch(
            "pods",
            lambda: api.list_pods(selector),
            lambda rv, timeout, w: api.watch_pods(selector, rv, timeout, w),
            self.pods.on_watch,
            loop,
            timeout=self.watch_timeout,
        )
        self._watch.resource_version = version
        self._watch.start()
        self._refresher = asyncio.ensure_future(self._refresh_loop())
        self.log.info(
            "jupyter-orch: kubernetes provider in namespace %s (server id %s, workers connect to %s); %d pod(s) found",
            namespace,
            settings.server_id,
            settings.server_url,
            len(pods_now),
        )

    async def _owner_reference(self, api: KubeApi) -> dict[str, Any] | None:
        if not self.owner_pod:
            return None
        uid = os.environ.get("POD_UID") or os.environ.get("MY_POD_UID")
        if not uid:
            try:
                pod = await asyncio.to_thread(api.get_pod, self.owner_pod)
            except Exception as exc:
                self.log.warning("jupyter-orch: could not read the server's pod %s: %s", self.owner_pod, exc)
                pod = None
            if pod is None:
                self.log.warning(
                    "jupyter-orch: no pod %s in %s: worker pods get no owner", self.owner_pod, api.namespace
                )
                return None
            uid = pod["metadata"]["uid"]
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": self.owner_pod,
            "uid": uid,
            "blockOwnerDeletion": False,
            "controller": False,
        }

    async def _delete_orphan_secrets(self, selector: str) -> None:
        assert self.api is not None and self.pods is not None
        from .client import api_message

        try:
            secrets = await asyncio.to_thread(self.api.list_secrets, selector)
        except Exception as exc:
            self.log.warning("jupyter-orch: could not list worker Secrets: %s", api_message(exc))
            return
        for secret in secrets:
            name = (secret.get("metadata") or {}).get("name", "")
            if name.removesuffix("-token") not in self.pods.records:
                await asyncio.to_thread(self.api.delete_secret, name)

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.stop()
        if self._refresher is not None:
            self._refresher.cancel()
        pods = self.pods
        if pods is not None:
            if self.delete_on_stop:
                idle = []
                for rec in list(pods.records.values()):
                    status = self.context.worker_status(rec.name) if self.context.worker_status else None
                    if status is None or not status["running"]:
                        idle.append(pods.remove(rec, "the server is stopping"))
                await asyncio.gather(*idle, return_exceptions=True)
            pods.stop()
        if self.api is not None:
            self.api.close()

    # ------------------------------------------------------------------ the engine's calls
    async def request_capacity(self, tasks: Sequence[PendingTask], reasons: dict[str, str]) -> None:
        if self.pods is not None:
            await self.pods.provision(tasks)

    async def release_idle(self, worker_ids: Sequence[str]) -> None:
        if self.pods is not None:
            await self.pods.release(worker_ids)

    # ------------------------------------------------------------------ cluster capacity
    def _gpu_types(self) -> list[str]:
        return [n.gpu_type for n in self.nodes if n.gpu_type]

    async def refresh_capacity(self) -> None:
        assert self.api is not None
        from .client import ApiException, api_message

        try:
            nodes = await asyncio.to_thread(self.api.list_nodes)
            pods = await asyncio.to_thread(
                self.api.list_all_pods, "status.phase!=Succeeded,status.phase!=Failed"
            )
        except ApiException as exc:
            self.capacity_error = (
                "the server may not list nodes: grant the optional ClusterRole in helm/ "
                "(jupyter-orch-cluster-reader) to see the cluster's GPUs"
                if exc.status == 403
                else api_message(exc)
            )
            return
        except Exception as exc:
            self.capacity_error = api_message(exc)
            return
        self.nodes = capacity.gpu_capacity(nodes, pods, self.gpu_resource, self.gpu_type_label)
        self.capacity_error, self.capacity_at = None, time.time()

    async def _refresh_loop(self) -> None:
        while True:
            self._refresh_now.clear()
            await self.refresh_capacity()
            if self.pods is not None:
                self.pods.sweep()
            try:
                await asyncio.wait_for(self._refresh_now.wait(), self.capacity_interval)
            except asyncio.TimeoutError:
                pass

    def describe(self) -> dict[str, Any]:
        pods = self.pods
        settings = pods.settings if pods is not None else None
        return {
            "name": self.name,
            "namespace": settings.namespace if settings else self.namespace,
            "server_id": settings.server_id if settings else None,
            "server_url": settings.server_url if settings else None,
            "pods": [r.to_dict() for r in pods.records.values()] if pods is not None else [],
            "limits": {"max_pods": self.max_pods, "max_gpus_per_user": self.max_gpus_per_user},
            # team mode: each pod is its user's (or group's); the groups with pod settings
            "worker_owner": settings.worker_owner if settings else None,
            "group_profiles": list(settings.profiles) if settings else [],
            "cluster": {
                "gpu_resource": self.gpu_resource,
                "nodes": [n.to_dict() for n in self.nodes],
                "gpus": capacity.summary(self.nodes),
                "gpus_free": sum(n.free for n in self.nodes),
                "updated_at": self.capacity_at,
                "error": self.capacity_error,
            },
            "watch": (
                {"lists": w.lists, "resumes": w.resumes, "failures": w.failures, "last_error": w.last_error}
                if (w := self._watch) is not None
                else None
            ),
            "hint": "worker pods start when tasks need them",
        }
