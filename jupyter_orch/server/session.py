"""``/session``: the client session, the SDK's fast path for submitting tasks and collecting
their results over one WebSocket. ``submit`` frames carry task specs and payload blobs (read
by :mod:`.submissions`, as ``POST /tasks`` reads its body); the server answers
``accepted``/``rejected`` once the tasks are committed, then ``done`` (with the result
inline when small) for every task submitted or ``watch``ed here."""

from __future__ import annotations

import asyncio
from typing import Any

from ..core import protocol
from ..core.errors import OrchError
from ..engine.views import outcome_view
from .authsocket import AuthedWebSocket
from .socketwriter import SocketWriter
from .submissions import parse_session_submit

INLINE_RESULT_LIMIT = 1 << 20  # results up to this size ride along with "done"


def _inline(row: Any) -> bool:
    """Whether a finished task's result rides along with its ``done`` notice."""
    return row.result_key is not None and row.result_size <= INLINE_RESULT_LIMIT


class SessionHandler(AuthedWebSocket):
    """``/session``: the SDK's fast path. ``submit`` frames carry task specs and payload
    blobs; the server answers ``accepted``/``rejected`` once committed, then ``done`` (with
    the result inline when small) for every task submitted or ``watch``ed here."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writer = SocketWriter(lambda: self.ws_connection)

    @property
    def max_message_size(self) -> int:  # type: ignore[override]
        return int(self.orch.engine_config.max_payload_bytes) * 4 + (16 << 20)

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)
        self._watching: set[str] = set()
        # task id -> row, to send; once each per frame. Not ``_finished``: that is tornado's flag
        # for an ended response, and an empty dict there made tornado call finish() on the
        # upgraded connection when the client left (an "Uncaught exception" per session)
        self._done_rows: dict[str, Any] = {}
        self._submits: set[asyncio.Task[None]] = set()  # in flight, in order of arrival
        if self.get_query_argument("batch", None) == str(protocol.BATCH):
            self._writer.start_batching()
        hello: dict[str, Any] = {
            "type": "hello",
            "owner": self.owner,
            "server_version": self.orch.version_string,
        }
        handoff = self._engine.handoff_info()
        if handoff is not None:
            hello["handoff"] = handoff
        self.send_json(hello)

    def send_json(self, data: Any, *, lazy: bool = False) -> None:
        self.send_frame(data, lazy=lazy)

    def send_frame(
        self, header: dict[str, Any], blobs: list[tuple[str, bytes]] | None = None, *, lazy: bool = False
    ) -> None:
        self._writer.send(protocol.encode(header, blobs), lazy=lazy)

    def on_close(self) -> None:
        self._writer.discard()

    def on_message(self, message: str | bytes) -> None:
        # synchronous: the next frame is read while this one's submit awaits its commit
        try:
            msg = protocol.decode(message)
        except protocol.ProtocolError as exc:
            self.send_json({"type": "error", "message": str(exc)})
            return
        if msg.type == "submit":
            task = self._submit_now(msg)
            if task is not None:
                self._submits.add(task)
                task.add_done_callback(self._submits.discard)
        elif msg.type == "watch":
            asyncio.ensure_future(self._watch_all([str(i) for i in msg.get("ids") or []]))
        else:
            self.send_json({"type": "error", "message": f"unknown message type {msg.type!r}"})

    def _submit_now(self, msg: protocol.Message) -> asyncio.Task[None] | None:
        """Accept what needs no store lookup in this loop turn (its commit starts at once);
        a task waits for the commit and answers. Anything else goes the slow way."""
        req = msg.get("req")
        try:
            specs, payloads = parse_session_submit(msg, self.owner, self._engine.stored_payload)
            accepted = self._engine.submit_nowait(specs, payloads)
        except OrchError as exc:
            self.send_json({"type": "rejected", "req": req, **exc.to_dict()})
            return None
        if accepted is None:
            return asyncio.ensure_future(self._submit(req, specs, payloads))
        return asyncio.ensure_future(self._accepted_after_commit(req, accepted))

    async def _accepted_after_commit(self, req: Any, accepted: Any) -> None:
        try:
            await self._engine.committed(accepted)
        except Exception as exc:
            error = exc if isinstance(exc, OrchError) else OrchError(f"could not store the tasks: {exc}")
            self.send_json({"type": "rejected", "req": req, **error.to_dict()})
            return
        self._answer(req, accepted.rows)

    def _answer(self, req: Any, rows: list[Any]) -> None:
        # lazy: a client waits on results, not on this; it leaves with the next frame
        self.send_json({"type": "accepted", "req": req, "ids": [r.id for r in rows]}, lazy=True)
        for row in rows:
            self._track(row)

    async def _submit(self, req: Any, specs: list[Any], payloads: dict[str, Any]) -> None:
        """The slow way: ids that may be stored already are looked up first."""
        try:
            rows = await self._engine.submit(specs, payloads)
        except OrchError as exc:
            self.send_json({"type": "rejected", "req": req, **exc.to_dict()})
            return
        self._answer(req, rows)

    async def _watch_all(self, task_ids: list[str]) -> None:
        if self._submits:  # what this session submitted before the watch is known first
            await asyncio.wait(list(self._submits))
        for task_id in task_ids:
            await self._watch(task_id)

    async def _watch(self, task_id: str) -> None:
        try:
            row = await self._engine.get_row(task_id, self.owner)
        except OrchError as exc:
            self.send_json({"type": "unknown", "id": task_id, **exc.to_dict()})
            return
        self._track(row)

    def _track(self, row: Any) -> None:
        if row.id in self._watching:
            return
        self._watching.add(row.id)
        self._engine.on_done(row, self._done)

    def _done(self, row: Any) -> None:
        """Collect finished tasks; they go out together, one frame per loop iteration."""
        if self.ws_connection is None:
            return
        self._watching.discard(row.id)
        first = not self._done_rows
        self._done_rows[row.id] = row  # a task tracked twice (submit, then watch) goes once
        if first:
            asyncio.get_running_loop().call_soon(self._send_done_soon)

    def _send_done_soon(self) -> None:
        # results still in memory go at once; otherwise they are read first (a task)
        blobs = []
        for row in self._done_rows.values():
            data = self._engine.cached_result(row) if _inline(row) else b""
            if data is None:
                asyncio.ensure_future(self._send_done())
                return
            if _inline(row):
                blobs.append((f"result:{row.id}", data))
        rows, self._done_rows = list(self._done_rows.values()), {}
        self.send_frame({"type": "done", "tasks": [outcome_view(r) for r in rows]}, blobs)
        self._writer.flush()  # the client waits on these: no loop turn more

    async def _send_done(self) -> None:
        rows, self._done_rows = list(self._done_rows.values()), {}
        blobs = []
        for row in rows:
            if _inline(row):
                try:
                    blobs.append((f"result:{row.id}", await self._engine.result_bytes(row)))
                except (KeyError, OrchError):
                    pass
        self.send_frame({"type": "done", "tasks": [outcome_view(r) for r in rows]}, blobs)
