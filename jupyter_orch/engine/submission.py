"""Submission: accepting tasks. Committed before the caller hears "accepted", idempotent by
task id (a client resends after a reconnect), with no store lookup for a fresh id.

:meth:`Submitter.submit_nowait` does all of it but the wait for the commit, on the
caller's loop turn, when no store lookup is needed (the common case); the session handler
uses it so the assignment's commit starts one loop turn earlier.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence

from ..core.errors import Conflict, NotFound, OrchError, QuotaExceeded, SpecError, TooLarge
from ..core.ids import blob_key
from ..core.records import InsertTask, TaskRow
from ..core.spec import TaskSpec
from ..core.states import TaskState
from .accepted import Accepted, Payloads
from .blobfiles import BlobFiles
from .caches import StoredPayload
from .config import EngineConfig
from .events import EventBus
from .isolation import describe
from .journal import Journal
from .ports import TaskStore
from .state import EngineState
from .transitions import Transitions
from .views import task_view


class Submitter:
    def __init__(
        self,
        state: EngineState,
        journal: Journal,
        store: TaskStore,
        bus: EventBus,
        config: EngineConfig,
        blobfiles: BlobFiles,
        transitions: Transitions,
        *,
        schedule_now: Callable[[], None],
    ) -> None:
        self.state = state
        self.journal = journal
        self.store = store
        self.bus = bus
        self.config = config
        self.blobfiles = blobfiles
        self.transitions = transitions
        self._schedule_now = schedule_now  # run the scheduler at once (not on the next loop turn)

    async def submit(self, specs: Sequence[TaskSpec], payloads: Payloads) -> list[TaskRow]:
        """Accept tasks; returns once they are committed. Idempotent by task id."""
        missing = self._lookups_needed(specs)
        known = await self.journal.run(self.store.get_tasks, missing) if missing else {}
        accepted = self.accept(specs, payloads, known)
        await self.committed(accepted)
        return accepted.rows

    def submit_nowait(self, specs: Sequence[TaskSpec], payloads: Payloads) -> Accepted | None:
        """:meth:`submit` up to its commit, now (then ``await committed(...)``), or None
        when a store lookup is needed (use :meth:`submit`)."""
        if self._lookups_needed(specs):
            return None
        return self.accept(specs, payloads, {})

    async def committed(self, accepted: Accepted) -> None:
        """Wait for the commit of accepted tasks. If they cannot be stored they were rolled
        back (:mod:`.rollback`) and the error is raised: the caller must not say "accepted".
        An unavailable database is :class:`Unavailable` (503); data the database refused is
        :class:`SpecError` naming the task."""
        fresh = accepted.fresh
        try:
            await accepted.stored
        except OrchError:
            raise
        except Exception as exc:
            names = ", ".join(r.id for r in fresh[:3]) + (" ..." if len(fresh) > 3 else "")
            raise SpecError(f"the database refused task {names}: {describe(exc)}") from exc
        self.state.count("submitted", len(fresh))

    def _check_queued(self, fresh: list[TaskRow]) -> None:
        """Refuse tasks that would take their owner, or one of the owner's groups, over a
        quota of tasks waiting (counted only when such a quota is set)."""
        shares = self.config.shares
        if shares is None or not fresh or not shares.limits_queued:
            return
        adding: dict[str, int] = {}
        for row in fresh:
            adding[row.owner] = adding.get(row.owner, 0) + 1
        waiting: dict[str, int] = {}
        for row in self.state.tasks.values():
            if row.state == TaskState.PENDING:
                waiting[row.owner] = waiting.get(row.owner, 0) + 1
        for owner, n in adding.items():
            groups = self.state.groups_of(owner)
            for group, quota in shares.quotas(owner, groups):
                if quota.queued is None:
                    continue
                members = (
                    [owner] if group is None else [u for u, g in self.state.user_groups.items() if group in g]
                )
                now = sum(waiting.get(u, 0) for u in set(members) | {owner})
                if now + n > quota.queued:
                    who = "you have" if group is None else f"your group {group} has"
                    raise QuotaExceeded(
                        f"{who} {now} task(s) waiting, and {n} more would go over the quota of "
                        f"{quota.queued} waiting; wait for some to start, or cancel some"
                    )

    def _lookups_needed(self, specs: Sequence[TaskSpec]) -> list[str]:
        batch_ids = {s.id for s in specs}
        missing = [s.id for s in specs if self.state.lookup(s.id) is None and self._maybe_stored(s.id)]
        dep_ids = {d for s in specs for d in s.depends if d not in batch_ids}
        return missing + [d for d in dep_ids if self.state.lookup(d) is None]

    def _maybe_stored(self, task_id: str) -> bool:
        """Could a task with this (client-chosen) id already be in the store? Ids sort by
        creation time, so a new one is larger than every stored id and its lookup, a round
        trip to the database per submit, is skipped."""
        return task_id <= self.state.max_id

    def accept(self, specs: Sequence[TaskSpec], payloads: Payloads, known: dict[str, TaskRow]) -> Accepted:
        """Take in tasks now, or refuse them before anything is stored (``known``: rows of
        repeated ids and outside dependencies read from the store). Their commit is under
        way; :meth:`committed` waits for it."""
        batch_ids = {s.id for s in specs}
        rows: list[TaskRow] = []
        fresh: list[TaskRow] = []
        now = time.time()
        for spec in specs:
            existing = self.state.lookup(spec.id) or known.get(spec.id)
            if existing is not None:
                if existing.owner != spec.owner or existing.spec.kind != spec.kind:
                    raise Conflict(f"task id {spec.id} is already used by another task", field="id")
                rows.append(existing)  # a repeated submit: same answer, nothing new
                continue
            payload = payloads.get(spec.id)
            if spec.needs_payload and payload is None:
                raise SpecError(f"a {spec.kind} task needs a payload", field="payload")
            size = payload.size if isinstance(payload, StoredPayload) else len(payload or b"")
            if size > self.config.max_payload_bytes:
                raise TooLarge(
                    f"payload of {size} bytes is over the limit of {self.config.max_payload_bytes}",
                    field="payload",
                )
            for dep in spec.depends:
                if dep == spec.id:
                    raise SpecError("a task cannot depend on itself", field="depends")
                if dep not in batch_ids and self.state.lookup(dep) is None and dep not in known:
                    raise NotFound(f"depends names unknown task {dep}", field="depends")
            row = TaskRow(spec=spec, seq=self.state.next_seq(), created_at=now, updated_at=now)
            if isinstance(payload, StoredPayload):
                row.payload_key = blob_key("payloads", spec.id)  # there already
                row.payload_size = payload.size
                self.state.count("client_handoffs")
            elif payload is not None:
                row.payload_key = self.blobfiles.key("payloads", spec.id, len(payload))
                row.payload_size = len(payload)
            rows.append(row)
            fresh.append(row)
        self._check_queued(fresh)
        for row in fresh:
            payload = payloads.get(row.id)
            if row.payload_key and payload is not None and not isinstance(payload, StoredPayload):
                self.blobfiles.put(row.payload_key, payload, row.id, "payload")
                self.state.payloads.put(row.id, payload)
            # shown to nobody until stored (rolled back if the commit fails); watchers then
            # see it as it was when accepted, then as it is
            self.state.unstored[row.id] = task_view(row) if self.bus.subscriber_count else None
            self.state.activate(row)
            self.state.stored_id(row.id)
            self.journal.add(InsertTask(dataclasses.replace(row)))
        for row in fresh:  # published once stored (done() below)
            self.transitions.enqueue_or_wait(row, known)
        # scheduling now puts the new tasks' assignments in the same commit as their insert
        self._schedule_now()
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def done(failed: BaseException | None) -> None:
            if failed is None:
                for row in fresh:  # stored: now they are news
                    first = self.state.unstored.pop(row.id, None)
                    if first is not None and self.bus.subscriber_count and first["state"] != row.state.value:
                        self.bus.publish({"type": "task", "task": first})
                    self.transitions.publish(row)
            if stored.done():
                return
            if failed is not None:
                stored.set_exception(failed)
            else:
                stored.set_result(None)

        # the commit that holds these inserts; with the database out, they are given up (503)
        self.journal.after_commit(done, urgent=True, keys=[r.id for r in fresh], abandon=True)
        return Accepted(rows, fresh, stored)
