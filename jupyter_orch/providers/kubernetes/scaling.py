"""Making worker pods: one per task nothing can place, within ``max_pods`` and
``max_gpus_per_user``, and deleting the ones idle past ``idle_timeout``. A part of
:class:`~.lifecycle.Pods` (which follows the pods once they exist): it shares their records
and is given the few operations of theirs it uses.

A pod gets the group profile of its task's owner (``profiles.profile_for``: the first
profiled group they are in). In team mode (``PodSettings.worker_owner == "user"``) its
worker token is issued for the task's owner (or the profile's group, with ``pods: group``),
so the engine places only their tasks on it; otherwise it is shared, as on a personal server."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from ...core.queue import PendingTask
from ..base import ProviderContext
from .client import ApiException, KubeApi, api_message
from .podspec import (
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
from .profiles import GroupProfile, profile_for
from .records import Limits, PodBook, PodRecord


class Scaler:
    """Creates pods for pending tasks and releases idle ones. ``remove`` deletes a pod,
    ``cleanup`` its Secret and token, ``spawn`` runs a coroutine in the background and
    ``later`` arms a timer on a pod record: all of :class:`~.lifecycle.Pods`."""

    def __init__(
        self,
        book: PodBook,
        api: KubeApi,
        settings: PodSettings,
        context: ProviderContext,
        limits: Limits,
        gpu_types: Callable[[], Sequence[str]],
        changed: Callable[[], None],
        remove: Callable[[PodRecord, str], Awaitable[None]],
        cleanup: Callable[[str, str], Awaitable[None]],
        spawn: Callable[[Awaitable[Any]], None],
        later: Callable[[PodRecord, str, float, Callable[[], Any]], None],
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self.book = book
        self.api = api
        self.settings = settings
        self.ctx = context
        self.limits = limits
        self._gpu_types = gpu_types  # GPU type label values of the cluster's nodes
        self._changed = changed
        self._remove = remove
        self._cleanup = cleanup
        self._spawn = spawn
        self._later = later
        self.log = log
        self._blocked: set[str] = set()  # tasks waiting for room under the limits
        self._lock = asyncio.Lock()
        self.created = 0

    def take_blocked(self) -> list[str]:
        """The tasks that waited for room (room was made: they are tried again)."""
        blocked, self._blocked = list(self._blocked), set()
        return blocked

    # ------------------------------------------------------------------ creating
    def _limit_reason(self, owner: str, shape: PodShape) -> str | None:
        lim = self.limits
        if lim.max_pods and len(self.book.records) >= lim.max_pods:
            return (
                f"waiting for room for a worker pod: {len(self.book.records)} of at most {lim.max_pods} "
                "exist (KubernetesProvider.max_pods)"
            )
        if lim.max_gpus_per_user and shape.gpus:
            held = sum(r.shape.gpus for r in self.book.records.values() if r.owner == owner)
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
                pod = self.book.records.get(self.book.task_pod.get(task.id, ""))
                if pod is not None and not pod.deleting:
                    continue  # its pod is on its way
                profile = profile_for(task.groups, self.settings.profiles)
                image = (profile.image if profile is not None else "") or self.limits.default_image
                shape = shape_of(task, image, self.limits.default_memory)
                cap = self.limits.max_gpus_per_user
                if cap and shape.gpus > cap:
                    self.book.fail(
                        [task.id],
                        "limit",
                        f"the task asks for {shape.gpus} GPUs; a user may hold at most {cap} on the "
                        "cluster (KubernetesProvider.max_gpus_per_user)",
                    )
                    continue
                why = self._limit_reason(task.owner, shape)
                if why is not None:
                    self._blocked.add(task.id)
                    self.book.reason([task.id], why)
                    continue
                self._blocked.discard(task.id)
                await self._create(task.owner, shape, (task.id,), profile)

    def _whose(self, owner: str, profile: GroupProfile | None) -> tuple[str, dict[str, str]]:
        """Whose tasks the pod's worker runs ("": anyone's), and whom its token is for."""
        if self.settings.worker_owner != "user":
            return "", {}
        if profile is not None and profile.pods == "group":
            return "group", {"group": profile.group}
        return "user", {"owner": owner}

    async def _create(
        self, owner: str, shape: PodShape, task_ids: tuple[str, ...], profile: GroupProfile | None = None
    ) -> None:
        name = pod_name(owner)
        group = profile.group if profile is not None else ""
        rec = self.book.records[name] = PodRecord(name, owner, shape, task_ids, group=group)
        for task_id in task_ids:
            self.book.task_pod[task_id] = name
        self.book.reason(task_ids, f"starting worker pod {name} ({shape.describe()})")
        secret = secret_name(name)
        try:
            runs, token_for = self._whose(owner, profile)
            rec.token_id, token = await self.ctx.issue_worker_token(name, "kubernetes", **token_for)
            body = build_secret(secret, token, self.settings, owner, self.settings.owner_reference, group)
            await asyncio.to_thread(self.api.create_secret, body)
            known = tuple(self._gpu_types()) if shape.gpu_type else ()
            values = matching_gpu_types(shape.gpu_type, known) if shape.gpu_type else ()
            req = PodRequest(name, owner, shape, task_ids, secret, rec.token_id, values, profile, runs)
            pod = await asyncio.to_thread(self.api.create_pod, build_pod(req, self.settings))
        except Exception as exc:
            await self._creation_failed(rec, exc)
            return
        self.created += 1
        self.log.info(
            "jupyter-orch: created worker pod %s (%s) for %s of %s%s",
            name,
            shape.describe(),
            ", ".join(task_ids),
            owner,
            f" (group {group})" if group else "",
        )
        self._changed()
        try:  # the Secret goes with its pod (the garbage collector deletes it)
            await asyncio.to_thread(self.api.set_secret_owner, secret, pod_owner_reference(pod))
        except Exception as exc:
            self.log.warning("could not make pod %s the owner of its Secret: %s", name, api_message(exc))

    async def _creation_failed(self, rec: PodRecord, exc: BaseException) -> None:
        self.book.forget(rec)
        await self._cleanup(rec.name, rec.token_id)
        status = exc.status if isinstance(exc, ApiException) else None
        message = api_message(exc)
        if status is not None and 400 <= status < 500 and status != 429:
            hint = (
                "; the server's service account needs the Role in helm/ (jupyter-orch-workers)"
                if status == 403
                else ""
            )
            self.book.fail(
                rec.task_ids, "provider", f"the cluster refused worker pod {rec.name}: {message}{hint}"
            )
            return
        delay = self.limits.retry_delay
        self.log.warning(
            "could not create worker pod %s (%s); trying again in %g s", rec.name, message, delay
        )
        self.book.reason(
            rec.task_ids, f"could not create a worker pod ({message}); trying again in {delay:g} s"
        )
        asyncio.get_running_loop().call_later(delay, lambda: self._spawn(self.reprovision(rec.task_ids)))

    async def reprovision(self, task_ids: Iterable[str]) -> None:
        """Provision again for tasks still pending whose pod went (or that were blocked)."""
        pending = [t for t in self.book.still_pending(task_ids) if t.id not in self.book.task_pod]
        if pending:
            await self.provision(pending)

    async def release(self, worker_ids: Sequence[str]) -> None:
        """Workers idle past the engine's idle timeout: delete their pods once idle for
        ``idle_timeout`` (now, or later if that is longer)."""
        for worker_id in worker_ids:
            rec = self.book.records.get(worker_id)
            if rec is None or rec.deleting:
                continue
            status = self.book.status(rec)
            if status is None or status["running"] or status["idle_since"] is None:
                continue
            left = self.limits.idle_timeout - (time.time() - status["idle_since"])
            if left > 0.05:
                self._later(rec, "idle", left, self._release_later(worker_id))
                continue
            if self.ctx.retire_worker is not None and not self.ctx.retire_worker(worker_id):
                continue  # it took a task meanwhile
            await self._remove(rec, f"idle for {self.limits.idle_timeout:g} s")

    def _release_later(self, worker_id: str) -> Callable[[], None]:
        return lambda: self._spawn(self.release([worker_id]))
