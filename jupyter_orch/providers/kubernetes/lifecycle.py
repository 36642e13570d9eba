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
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ...core.queue import PendingTask
from ..base import ProviderContext
from . import failures, pulls
from .client import KubeApi, api_message
from .podspec import (
    RUNTIME_CONTAINER,
    WORKER_CONTAINER,
    PodSettings,
    secret_name,
)
from .records import Limits, PodBook, PodRecord, record_from
from .scaling import Scaler

log = logging.getLogger("jupyter_orch.providers.kubernetes")


class Pods:
    """The provider's worker pods: follows them (watch, verdicts, removal) and makes new
    ones through its :class:`~.scaling.Scaler`."""

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
        self.log = logger or log  # the server's log shows INFO
        self.api = api
        self.settings = settings
        self.ctx = context
        self.limits = limits
        self._changed = changed  # our pods changed: the cluster capacity is worth a refresh
        self.book = PodBook(context)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.deleted = 0
        self.scaling = Scaler(
            self.book,
            api,
            settings,
            context,
            limits,
            gpu_types,
            changed,
            remove=self.remove,
            cleanup=self._cleanup,
            spawn=self._spawn,
            later=self._later,
            log=self.log,
        )

    @property
    def records(self) -> dict[str, PodRecord]:
        return self.book.records

    @property
    def created(self) -> int:
        return self.scaling.created

    async def provision(self, tasks: Sequence[PendingTask]) -> None:
        """Worker pods for tasks nothing can place (each task once, within the limits)."""
        await self.scaling.provision(tasks)

    async def release(self, worker_ids: Sequence[str]) -> None:
        """Delete the pods of workers idle past ``idle_timeout``."""
        await self.scaling.release(worker_ids)

    # ------------------------------------------------------------------ helpers
    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _later(self, rec: PodRecord, which: str, delay: float, callback: Callable[[], Any]) -> None:
        rec.cancel(which)
        rec.timers[which] = asyncio.get_running_loop().call_later(max(0.0, delay), callback)

    def stop(self) -> None:
        for rec in self.records.values():
            rec.cancel()
        for task in list(self._tasks):
            task.cancel()

    # ------------------------------------------------------------------ removing
    async def _cleanup(self, name: str, token_id: str) -> None:
        for call, what in ((self.api.delete_secret, secret_name(name)),):
            try:
                await asyncio.to_thread(call, what)
            except Exception as exc:
                self.log.warning("could not delete %s: %s", what, api_message(exc))
        if token_id:
            await self.ctx.revoke_token(token_id)

    async def remove(self, rec: PodRecord, why: str) -> None:
        """Delete the pod (and its Secret, and revoke its token); the record goes when the
        watch sees it gone."""
        if rec.deleting:
            return
        rec.deleting = True
        rec.cancel()
        self.log.info("jupyter-orch: deleting worker pod %s: %s", rec.name, why)
        try:
            gone = not await asyncio.to_thread(self.api.delete_pod, rec.name)
        except Exception as exc:
            self.log.warning("could not delete worker pod %s: %s", rec.name, api_message(exc))
            rec.deleting = False
            if self.ctx.retire_worker is not None:
                self.ctx.retire_worker(rec.name, undo=True)
            return
        await self._cleanup(rec.name, rec.token_id)
        self.deleted += 1
        if gone:
            self.gone(rec.name)

    def gone(self, name: str) -> None:
        """The pod no longer exists: forget it; its worker is gone; room for blocked tasks."""
        rec = self.records.get(name)
        if rec is None:
            return
        self.book.forget(rec)
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
        self._spawn(self.scaling.reprovision([*rec.task_ids, *self.scaling.take_blocked()]))

    def sweep(self) -> None:
        """Pods whose worker connected once and is gone (the engine gave up on it after
        its grace) serve nobody: delete them."""
        for rec in list(self.records.values()):
            if rec.connected and not rec.deleting and self.book.status(rec) is None:
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
                self.book.task_pod.setdefault(task_id, name)
            self._later(rec, "adopt", self.limits.adopt_grace, lambda: self._check_adopted(name))
            self.log.info("jupyter-orch: found worker pod %s from an earlier run; adopting it", name)
        verdict = failures.classify(pod, kueue_queue=self.settings.kueue_queue)
        trouble = rec.pulls.observe(pod, time.monotonic())
        if verdict.kind == "image_pull" and verdict.action == failures.WAIT and trouble is not None:
            verdict = self._pulling(rec, trouble)
            if rec.pulls.changed and verdict.action == failures.WAIT and not rec.deleting:
                self._spawn(self._count_pull_events(name))
        elif verdict.kind != "image_pull":
            rec.cancel("pull")
        rec.verdict = verdict
        self.book.status(rec)
        if rec.deleting:
            return
        if verdict.action == failures.WAIT:
            if not rec.connected:
                self.book.reason(rec.task_ids, verdict.sentence)
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
                self.book.reason(rec.task_ids, verdict.sentence)
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

    def _pulling(self, rec: PodRecord, trouble: pulls.Trouble) -> failures.Verdict:
        """An image pull the kubelet retries: the tasks wait (their reason says which try
        failed) until image_pull_attempts tries failed, or image_pull_timeout passed since
        the first."""
        now = time.monotonic()
        if trouble.tries >= self.limits.image_pull_attempts:
            return failures.Verdict(
                failures.FAIL, "image_pull", pulls.given_up(trouble, now, "image_pull_attempts")
            )
        if "pull" not in rec.timers:
            name = rec.name
            delay = trouble.first + self.limits.image_pull_timeout - now
            self._later(rec, "pull", delay, lambda: self._pull_timeout(name))
        return failures.Verdict(failures.WAIT, "image_pull", pulls.retrying(trouble))

    def _still_pulling(self, name: str) -> PodRecord | None:
        rec = self.records.get(name)
        if rec is None or rec.deleting or rec.verdict is None or rec.pulls.current is None:
            return None
        return rec if (rec.verdict.kind, rec.verdict.action) == ("image_pull", failures.WAIT) else None

    def _pull_verdict(self, rec: PodRecord, verdict: failures.Verdict) -> None:
        rec.verdict = verdict
        if verdict.action == failures.FAIL:
            self._spawn(self._ended(rec, verdict))
        elif not rec.connected:
            self.book.reason(rec.task_ids, verdict.sentence)

    async def _count_pull_events(self, name: str) -> None:
        """The kubelet's events count every failed try, also those its status did not show."""
        try:
            events = await asyncio.to_thread(self.api.pod_events, name)
        except Exception as exc:
            self.log.info("no events of pod %s: %s", name, api_message(exc))
            return
        rec = self._still_pulling(name)
        if rec is None or rec.pulls.current is None:
            return
        before = rec.pulls.current.tries
        trouble = rec.pulls.count_events(events)
        if trouble is not None and trouble.tries != before:
            self._pull_verdict(rec, self._pulling(rec, trouble))

    def _pull_timeout(self, name: str) -> None:
        rec = self._still_pulling(name)
        if rec is None or rec.pulls.current is None:
            return
        sentence = pulls.given_up(rec.pulls.current, time.monotonic(), "image_pull_timeout")
        self._pull_verdict(rec, failures.Verdict(failures.FAIL, "image_pull", sentence))

    def _check_adopted(self, name: str) -> None:
        rec = self.records.get(name)
        if rec is not None and not rec.deleting and self.book.status(rec) is None and not rec.connected:
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
        self.book.fail(
            rec.task_ids,
            "unschedulable",
            f"{rec.verdict.sentence} (gave up after {timeout:g} s: KubernetesProvider.unschedulable_timeout)",
        )
        self._spawn(self.remove(rec, f"unschedulable for {timeout:g} s"))

    async def _no_connect(self, name: str) -> None:
        rec = self.records.get(name)
        if rec is None or rec.deleting or self.book.status(rec) is not None or rec.connected:
            return
        sentence = (
            f"the worker in pod {name} did not connect to {self.settings.server_url} within "
            f"{self.limits.connect_timeout:g} s: check KubernetesProvider.server_url and that the "
            "NetworkPolicy lets worker pods reach the server"
        )
        self.book.fail(
            rec.task_ids,
            "pod_connect",
            failures.with_logs(sentence, await self._logs(name, WORKER_CONTAINER)),
        )
        await self.remove(rec, "its worker never connected")

    async def _logs(self, name: str, container: str) -> str:
        """The pod's last log lines; when it has none (its container never ran), its last
        warning events."""
        try:
            text = await asyncio.to_thread(self.api.pod_log, name, container, self.limits.log_lines)
        except Exception as exc:
            self.log.info("no logs of pod %s (%s): %s", name, container, api_message(exc))
            text = ""
        if text.strip():
            return text
        try:
            events = await asyncio.to_thread(self.api.pod_events, name)
        except Exception as exc:
            self.log.info("no events of pod %s: %s", name, api_message(exc))
            return ""
        warnings = [e for e in events if e.get("type") == "Warning"]
        warnings.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
        return "\n".join(f"event {e.get('reason')}: {e.get('message')}" for e in warnings[-5:])

    async def _ended(self, rec: PodRecord, verdict: failures.Verdict) -> None:
        """The pod ended or cannot work: its worker's attempts end (retried per policy), or
        the tasks it was made for fail with what it said, or wait for a new pod."""
        if rec.deleting:
            return
        rec.deleting = True  # no second verdict while this one is acted on
        if self.book.status(rec) is not None:
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
            self.book.fail(rec.task_ids, verdict.kind, text)
        rec.deleting = False
        await self.remove(rec, verdict.sentence)
