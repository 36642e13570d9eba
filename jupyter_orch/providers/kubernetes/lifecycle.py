"""Worker pods from creation to deletion: what each pod is for, what its status means for
those tasks, and when it goes.

A pod is created for pending tasks nothing can place (one per task, within the limits);
its worker registers with the pod's name as worker id. The pod watch (``watching.py``)
feeds every change to :meth:`Pods.observe`, which turns it into the engine's terms through
the ``ProviderContext`` hooks: a pending reason, failed tasks, or a worker that is gone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...core.queue import PendingTask
from ..base import ProviderContext
from . import failures
from .client import ApiException, KubeApi, api_message
from .podspec import (
    OWNER_ANNOTATION,
    RUNTIME_CONTAINER,
    TASKS_ANNOTATION,
    TOKEN_ANNOTATION,
    WORKER_CONTAINER,
    PodRequest,
    PodSettings,
    PodShape,
    build_pod,
    build_secret,
    matching_gpu_types,
    pod_name,
    pod_owner_reference,
    secret_name,
    shape_of,
)

log = logging.getLogger("jupyter_orch.providers.kubernetes")


@dataclass
class Limits:
    max_pods: int = 0  # 0: no limit
    max_gpus_per_user: int = 0
    default_image: str = ""
    default_memory: int = 4 << 30
    unschedulable_timeout: float = 600.0
    connect_timeout: float = 300.0
    adopt_grace: float = 60.0
    idle_timeout: float = 600.0
    log_lines: int = 20
    retry_delay: float = 10.0


@dataclass
class PodRecord:
    name: str
    owner: str
    shape: PodShape
    task_ids: tuple[str, ...]
    token_id: str = ""
    verdict: failures.Verdict | None = None
    created_at: float = field(default_factory=time.time)
    connected: bool = False  # its worker was seen registered
    deleting: bool = False
    adopted: bool = False
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)

    def cancel(self, which: str | None = None) -> None:
        for key in [which] if which else list(self.timers):
            timer = self.timers.pop(key, None) if key else None
            if timer is not None:
                timer.cancel()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "owner": self.owner,
            "image": self.shape.image,
            "gpus": self.shape.gpus,
            "gpu_type": self.shape.gpu_type,
            "state": "deleting" if self.deleting else (self.verdict.kind if self.verdict else "creating"),
            "status": self.verdict.sentence if self.verdict else "being created",
            "tasks": list(self.task_ids),
            "connected": self.connected,
        }


def record_from(pod: dict[str, Any], gpu_resource: str) -> PodRecord:
    """A record for a pod found in the cluster (left by an earlier run of this server)."""
    meta = pod.get("metadata") or {}
    ann = meta.get("annotations") or {}
    worker = failures.container_spec(pod, WORKER_CONTAINER)
    requests = (worker.get("resources") or {}).get("requests") or {}
    shape = PodShape(
        image=str(worker.get("image") or ""),
        cpus=0.0,
        memory=0,
        gpus=int(requests.get(gpu_resource) or 0),
    )
    tasks = tuple(t for t in str(ann.get(TASKS_ANNOTATION) or "").split(",") if t)
    return PodRecord(
        meta.get("name", ""),
        str(ann.get(OWNER_ANNOTATION) or ""),
        shape,
        tasks,
        token_id=str(ann.get(TOKEN_ANNOTATION) or ""),
        adopted=True,
    )


class Pods:
    def __init__(
        self,
        api: KubeApi,
        settings: PodSettings,
        context: ProviderContext,
        limits: Limits,
        gpu_types: Callable[[], Sequence[str]],
        changed: Callable[[], None],
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        global log
        if logger is not None:
            log = logger  # type: ignore[assignment]  # the server's log (it shows INFO)
        self.api = api
        self.settings = settings
        self.ctx = context
        self.limits = limits
        self._gpu_types = gpu_types  # GPU type label values of the cluster's nodes
        self._changed = changed  # our pods changed: the cluster capacity is worth a refresh
        self.records: dict[str, PodRecord] = {}
        self._task_pod: dict[str, str] = {}
        self._blocked: set[str] = set()  # tasks waiting for room under the limits
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.created = 0
        self.deleted = 0

    # ------------------------------------------------------------------ helpers
    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _later(self, rec: PodRecord, which: str, delay: float, callback: Callable[[], Any]) -> None:
        rec.cancel(which)
        rec.timers[which] = asyncio.get_running_loop().call_later(max(0.0, delay), callback)

    def _reason(self, task_ids: Iterable[str], reason: str | None) -> None:
        if self.ctx.set_pending_reason is not None:
            self.ctx.set_pending_reason(list(task_ids), reason)

    def _fail(self, task_ids: Iterable[str], kind: str, error: str) -> list[str]:
        if self.ctx.fail_pending is None:
            return []
        return self.ctx.fail_pending(list(task_ids), kind, error)

    def _status(self, rec: PodRecord) -> dict[str, Any] | None:
        status = self.ctx.worker_status(rec.name) if self.ctx.worker_status is not None else None
        if status is not None:
            rec.connected = True
        return status

    def _still_pending(self, task_ids: Iterable[str]) -> list[PendingTask]:
        if self.ctx.pending_tasks is None:
            return []
        return self.ctx.pending_tasks(list(task_ids))

    def stop(self) -> None:
        for rec in self.records.values():
            rec.cancel()
        for task in list(self._tasks):
            task.cancel()

    # ------------------------------------------------------------------ creating
    def _limit_reason(self, owner: str, shape: PodShape) -> str | None:
        lim = self.limits
        if lim.max_pods and len(self.records) >= lim.max_pods:
            return (
                f"waiting for room for a worker pod: {len(self.records)} of at most {lim.max_pods} "
                "exist (KubernetesProvider.max_pods)"
            )
        if lim.max_gpus_per_user and shape.gpus:
            held = sum(r.shape.gpus for r in self.records.values() if r.owner == owner)
            if held + shape.gpus > lim.max_gpus_per_user:
                return (
                    f"waiting for room for a worker pod: {owner}'s pods hold {held} of at most "
                    f"{lim.max_gpus_per_user} GPUs (KubernetesProvider.max_gpus_per_user)"
                )
        return None

    async def provision(self, tasks: Sequence[PendingTask]) -> None:
        """Worker pods for tasks nothing can place (each task once, within the limits)."""
        async with self._lock:
            for task in tasks:
                pod = self.records.get(self._task_pod.get(task.id, ""))
                if pod is not None and not pod.deleting:
                    continue  # its pod is on its way
                shape = shape_of(task, self.limits.default_image, self.limits.default_memory)
                cap = self.limits.max_gpus_per_user
                if cap and shape.gpus > cap:
                    self._fail(
                        [task.id],
                        "limit",
                        f"the task asks for {shape.gpus} GPUs; a user may hold at most {cap} on the "
                        "cluster (KubernetesProvider.max_gpus_per_user)",
                    )
                    continue
                why = self._limit_reason(task.owner, shape)
                if why is not None:
                    self._blocked.add(task.id)
                    self._reason([task.id], why)
                    continue
                self._blocked.discard(task.id)
                await self._create(task.owner, shape, (task.id,))

    async def _create(self, owner: str, shape: PodShape, task_ids: tuple[str, ...]) -> None:
        name = pod_name(owner)
        rec = self.records[name] = PodRecord(name, owner, shape, task_ids)
        for task_id in task_ids:
            self._task_pod[task_id] = name
        self._reason(task_ids, f"starting worker pod {name} ({shape.describe()})")
        secret = secret_name(name)
        try:
            rec.token_id, token = await self.ctx.issue_worker_token(name, "kubernetes")
            body = build_secret(secret, token, self.settings, owner, self.settings.owner_reference)
            await asyncio.to_thread(self.api.create_secret, body)
            known = tuple(self._gpu_types()) if shape.gpu_type else ()
            values = matching_gpu_types(shape.gpu_type, known) if shape.gpu_type else ()
            req = PodRequest(name, owner, shape, task_ids, secret, rec.token_id, values)
            pod = await asyncio.to_thread(self.api.create_pod, build_pod(req, self.settings))
        except Exception as exc:
            await self._creation_failed(rec, exc)
            return
        self.created += 1
        log.info(
            "jupyter-orch: created worker pod %s (%s) for %s", name, shape.describe(), ", ".join(task_ids)
        )
        self._changed()
        try:  # the Secret goes with its pod (the garbage collector deletes it)
            await asyncio.to_thread(self.api.set_secret_owner, secret, pod_owner_reference(pod))
        except Exception as exc:
            log.warning("could not make pod %s the owner of its Secret: %s", name, api_message(exc))

    async def _creation_failed(self, rec: PodRecord, exc: BaseException) -> None:
        self._forget(rec)
        await self._cleanup(rec.name, rec.token_id)
        status = exc.status if isinstance(exc, ApiException) else None
        message = api_message(exc)
        if status is not None and 400 <= status < 500 and status != 429:
            hint = (
                "; the server's service account needs the Role in helm/ (jupyter-orch-workers)"
                if status == 403
                else ""
            )
            self._fail(
                rec.task_ids, "provider", f"the cluster refused worker pod {rec.name}: {message}{hint}"
            )
            return
        delay = self.limits.retry_delay
        log.warning("could not create worker pod %s (%s); trying again in %g s", rec.name, message, delay)
        self._reason(rec.task_ids, f"could not create a worker pod ({message}); trying again in {delay:g} s")
        asyncio.get_running_loop().call_later(delay, lambda: self._spawn(self.reprovision(rec.task_ids)))

    async def reprovision(self, task_ids: Iterable[str]) -> None:
        """Provision again for tasks still pending whose pod went (or that were blocked)."""
        pending = [t for t in self._still_pending(task_ids) if t.id not in self._task_pod]
        if pending:
            await self.provision(pending)

    # ------------------------------------------------------------------ removing
    async def _cleanup(self, name: str, token_id: str) -> None:
        for call, what in ((self.api.delete_secret, secret_name(name)),):
            try:
                await asyncio.to_thread(call, what)
            except Exception as exc:
                log.warning("could not delete %s: %s", what, api_message(exc))
        if token_id:
            await self.ctx.revoke_token(token_id)

    async def remove(self, rec: PodRecord, why: str) -> None:
        """Delete the pod (and its Secret, and revoke its token); the record goes when the
        watch sees it gone."""
        if rec.deleting:
            return
        rec.deleting = True
        rec.cancel()
        log.info("jupyter-orch: deleting worker pod %s: %s", rec.name, why)
        try:
            gone = not await asyncio.to_thread(self.api.delete_pod, rec.name)
        except Exception as exc:
            log.warning("could not delete worker pod %s: %s", rec.name, api_message(exc))
            rec.deleting = False
            if self.ctx.retire_worker is not None:
                self.ctx.retire_worker(rec.name, undo=True)
            return
        await self._cleanup(rec.name, rec.token_id)
        self.deleted += 1
        if gone:
            self.gone(rec.name)

    def _forget(self, rec: PodRecord) -> None:
        rec.cancel()
        self.records.pop(rec.name, None)
        for task_id in rec.task_ids:
            if self._task_pod.get(task_id) == rec.name:
                del self._task_pod[task_id]

    def gone(self, name: str) -> None:
        """The pod no longer exists: forget it; its worker is gone; room for blocked tasks."""
        rec = self.records.get(name)
        if rec is None:
            return
        self._forget(rec)
        if self.ctx.worker_lost is not None and self.ctx.worker_status is not None:
            if self.ctx.worker_status(name) is not None:
                why = (
                    rec.verdict.sentence
                    if rec.verdict and rec.verdict.action in (failures.LOST, failures.FAIL)
                    else ""
                )
                kind = rec.verdict.kind if why and rec.verdict else "worker_removed"
                self.ctx.worker_lost(name, kind, why or f"its worker pod {name} was deleted")
        self._changed()
        blocked, self._blocked = list(self._blocked), set()
        self._spawn(self.reprovision([*rec.task_ids, *blocked]))

    async def release(self, worker_ids: Sequence[str]) -> None:
        """Workers idle past the engine's idle timeout: delete their pods once idle for
        ``idle_timeout`` (now, or later if that is longer)."""
        for worker_id in worker_ids:
            rec = self.records.get(worker_id)
            if rec is None or rec.deleting:
                continue
            status = self._status(rec)
            if status is None or status["running"] or status["idle_since"] is None:
                continue
            left = self.limits.idle_timeout - (time.time() - status["idle_since"])
            if left > 0.05:
                self._later(rec, "idle", left, self._release_later(worker_id))
                continue
            if self.ctx.retire_worker is not None and not self.ctx.retire_worker(worker_id):
                continue  # it took a task meanwhile
            await self.remove(rec, f"idle for {self.limits.idle_timeout:g} s")

    def _release_later(self, worker_id: str) -> Callable[[], None]:
        return lambda: self._spawn(self.release([worker_id]))

    def sweep(self) -> None:
        """Pods whose worker connected once and is gone (the engine gave up on it after
        its grace) serve nobody: delete them."""
        for rec in list(self.records.values()):
            if rec.connected and not rec.deleting and self._status(rec) is None:
                self._spawn(self.remove(rec, "its worker is gone"))

    # ------------------------------------------------------------------ watching
    def on_watch(self, kind: str, obj: Any) -> None:
        if kind == "SYNC":
            names = set()
            for pod in obj:
                names.add((pod.get("metadata") or {}).get("name"))
                self.observe(pod)
            for name in [n for n in self.records if n not in names and self.records[n].verdict is not None]:
                self.gone(name)
            return
        if not isinstance(obj, dict):
            return
        self.observe(obj)
        if kind == "DELETED":
            self.gone((obj.get("metadata") or {}).get("name", ""))

    def observe(self, pod: dict[str, Any]) -> None:
        """A pod's new state: what it means for its tasks and its worker."""
        name = (pod.get("metadata") or {}).get("name", "")
        rec = self.records.get(name)
        if rec is None:
            if (pod.get("metadata") or {}).get("deletionTimestamp"):
                return
            rec = self.records[name] = record_from(pod, self.settings.gpu_resource)
            for task_id in rec.task_ids:
                self._task_pod.setdefault(task_id, name)
            self._later(rec, "adopt", self.limits.adopt_grace, lambda: self._check_adopted(name))
            log.info("jupyter-orch: found worker pod %s from an earlier run; adopting it", name)
        verdict = failures.classify(pod, kueue_queue=self.settings.kueue_queue)
        rec.verdict = verdict
        self._status(rec)
        if rec.deleting:
            return
        if verdict.action == failures.WAIT:
            if not rec.connected:
                self._reason(rec.task_ids, verdict.sentence)
            if verdict.kind == "unschedulable":
                if "unschedulable" not in rec.timers:
                    self._later(
                        rec,
                        "unschedulable",
                        self.limits.unschedulable_timeout,
                        lambda: self._unschedulable(name),
                    )
            else:
                rec.cancel("unschedulable")
        elif verdict.action == failures.RUNNING:
            rec.cancel("unschedulable")
            if not rec.connected:
                self._reason(rec.task_ids, verdict.sentence)
                if "connect" not in rec.timers and not rec.adopted:
                    self._later(
                        rec,
                        "connect",
                        self.limits.connect_timeout,
                        lambda: self._spawn(self._no_connect(name)),
                    )
            else:
                rec.cancel("connect")
        else:
            self._spawn(self._ended(rec, verdict))

    def _check_adopted(self, name: str) -> None:
        rec = self.records.get(name)
        if rec is not None and not rec.deleting and self._status(rec) is None and not rec.connected:
            self._spawn(
                self.remove(
                    rec,
                    f"left by an earlier run; its worker did not reconnect within {self.limits.adopt_grace:g} s",
                )
            )

    def _unschedulable(self, name: str) -> None:
        rec = self.records.get(name)
        if rec is None or rec.deleting or rec.verdict is None or rec.verdict.kind != "unschedulable":
            return
        timeout = self.limits.unschedulable_timeout
        self._fail(
            rec.task_ids,
            "unschedulable",
            f"{rec.verdict.sentence} (gave up after {timeout:g} s: KubernetesProvider.unschedulable_timeout)",
        )
        self._spawn(self.remove(rec, f"unschedulable for {timeout:g} s"))

    async def _no_connect(self, name: str) -> None:
        rec = self.records.get(name)
        if rec is None or rec.deleting or self._status(rec) is not None or rec.connected:
            return
        sentence = (
            f"the worker in pod {name} did not connect to {self.settings.server_url} within "
            f"{self.limits.connect_timeout:g} s: check KubernetesProvider.server_url and that the "
            "NetworkPolicy lets worker pods reach the server"
        )
        self._fail(
            rec.task_ids,
            "pod_connect",
            failures.with_logs(sentence, await self._logs(name, WORKER_CONTAINER)),
        )
        await self.remove(rec, "its worker never connected")

    async def _logs(self, name: str, container: str) -> str:
        try:
            return await asyncio.to_thread(self.api.pod_log, name, container, self.limits.log_lines)
        except Exception as exc:
            log.info("no logs of pod %s (%s): %s", name, container, api_message(exc))
            return ""

    async def _ended(self, rec: PodRecord, verdict: failures.Verdict) -> None:
        """The pod ended or cannot work: its worker's attempts end (retried per policy), or
        the tasks it was made for fail with what it said, or wait for a new pod."""
        if rec.deleting:
            return
        rec.deleting = True  # no second verdict while this one is acted on
        if self._status(rec) is not None:
            if self.ctx.worker_lost is not None:
                kind = verdict.kind if verdict.action != failures.ENDED else "worker_stopped"
                self.ctx.worker_lost(rec.name, kind, verdict.sentence)
        elif not rec.connected and verdict.action == failures.FAIL:
            text = verdict.sentence
            if verdict.kind != "image_pull":
                container = (
                    RUNTIME_CONTAINER if verdict.sentence.startswith("its runtime copy") else WORKER_CONTAINER
                )
                text = failures.with_logs(text, await self._logs(rec.name, container), self.limits.log_lines)
            self._fail(rec.task_ids, verdict.kind, text)
        rec.deleting = False
        await self.remove(rec, verdict.sentence)
