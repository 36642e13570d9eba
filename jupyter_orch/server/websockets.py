"""WebSocket handlers: workers connecting, the events stream, following a task's log, and
the client session (the SDK's fast path for submitting and collecting results)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from .. import wire
from ..core import protocol
from ..core.batching import FrameBatcher
from ..core.errors import OrchError, SpecError, Unauthorized
from ..engine.views import outcome_view, task_view
from .base import bearer_secret
from .tasks import parse_submission
from .wsroute import MAX_INT64, WebSocketRoute

INLINE_RESULT_LIMIT = 1 << 20  # results up to this size ride along with "done"


class WorkerConnectHandler(WebSocketRoute, WebSocketHandler):
    """``/workers/connect``: a worker's one connection (see ``core.protocol``)."""

    token: Any = None
    handle: Any = None
    _batcher: FrameBatcher | None = None

    @property
    def max_message_size(self) -> int:  # type: ignore[override]
        return int(self.orch.engine_config.max_payload_bytes) + (16 << 20)

    @property
    def ping_interval(self) -> float:  # type: ignore[override]
        return 10.0

    @property
    def ping_timeout(self) -> float:  # type: ignore[override]
        return 10.0

    def check_origin(self, origin: str) -> bool:
        return False  # workers never come from a browser

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.request.headers.get("Origin"):
            raise web.HTTPError(403, "workers do not connect from browsers")
        secret = bearer_secret(self)
        engine = await self.engine()
        token = await engine.find_token(secret) if secret else None
        if token is None or token.revoked or token.scope != "worker":
            why = (
                "no token"
                if not secret
                else ("a revoked token" if token and token.revoked else "a bad token")
            )
            self.log.warning("refused a worker connection from %s: %s", self.request.remote_ip, why)
            self.send_orch_error(Unauthorized(f"worker refused: {why}"))
            return
        self.check_handshake()
        self.token = token
        self._engine = engine
        await super().get(*args, **kwargs)  # returns when the connection has ended
        self.log_closed()

    def get_compression_options(self) -> None:
        return None

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)  # small frames (assign, ack, cancel) must not wait for Nagle
        self._batcher: FrameBatcher | None = None  # once the worker's hello offers batches

    def send(self, frame: str | bytes, *, lazy: bool = False) -> None:
        if self._batcher is not None:
            self._batcher.send(frame, lazy=lazy)
        else:
            self._write(frame)

    def _write(self, frame: str | bytes) -> None:
        try:
            wire.send(self.ws_connection, frame)
        except WebSocketClosedError:
            pass

    def flush_frames(self) -> None:
        if self._batcher is not None:
            self._batcher.flush()

    def close(self, code: int | None = None, reason: str | None = None) -> None:  # type: ignore[override]
        if isinstance(code, str):  # the engine's WorkerLink.close(reason)
            code, reason = 1000, code
        super().close(code, reason)

    def on_message(self, message: str | bytes) -> None:
        # synchronous: tornado reads the next frame at once instead of awaiting a task
        try:
            if self.handle is None:
                msg = protocol.decode(message)
                if msg.type != "hello":
                    raise protocol.ProtocolError("the first message must be hello")
                if msg.get("batch") == protocol.BATCH:
                    self._batcher = _batcher(self._write)
                self.handle = self._engine.worker_hello(self.token, self, msg)
                return
            for msg in protocol.decode_all(message):
                self._engine.worker_message(self.handle, msg)
        except protocol.ProtocolError as exc:
            self.log.warning(
                "worker %s: %s; closing its connection", self.handle.name if self.handle else "?", exc
            )
            self.send(protocol.encode({"type": "error", "message": str(exc)}))
            self.close(1008, str(exc)[:120])

    def on_close(self) -> None:
        if self._batcher is not None:
            self._batcher.discard()
        if self.handle is not None:
            self._engine.worker_disconnected(self.handle, self)


def _batcher(write: Any) -> FrameBatcher:
    loop = asyncio.get_running_loop()
    return FrameBatcher(write, loop.call_soon, loop.call_later)


class AuthedWebSocket(WebSocketRoute, WebSocketMixin, WebSocketHandler, JupyterHandler):
    """A WebSocket behind the same authentication as the REST API."""

    async def prepare(self) -> None:  # type: ignore[override]
        try:
            if await self.authenticate_orch_token():
                return
        except Unauthorized as exc:
            raise web.HTTPError(401, exc.message) from None
        await JupyterHandler.prepare(self, _redirect_to_login=False)  # type: ignore[call-arg]

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.current_user is None:
            raise web.HTTPError(403, "log in to Jupyter or send an orch token")
        self.check_handshake()
        self.read_arguments()
        self._engine = await self.engine()
        await super().get(*args, **kwargs)  # returns when the connection has ended
        self.log_closed()

    def read_arguments(self) -> None:
        """Check the query arguments before the upgrade (a bad one is a 400, not a closed
        socket)."""

    def get_compression_options(self) -> None:
        return None

    def send_json(self, data: Any) -> None:
        try:
            wire.send(self.ws_connection, json.dumps(data))
        except WebSocketClosedError:
            pass


class EventsHandler(AuthedWebSocket):
    """``/events``: task, worker and (with ``?types=...,log,run``) log and workflow run
    events, as JSON lines."""

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)
        types = set((self.get_query_argument("types", "task,worker") or "").split(","))
        owner = self.owner
        see_all = self.orch.owner_from != "identity"

        def wanted(event: dict[str, Any]) -> bool:
            kind = event["type"]
            if kind not in types:
                return False
            if kind == "task":
                return see_all or event["task"]["owner"] == owner
            if kind == "log":
                return see_all or event.get("owner") == owner
            if kind == "run":
                return see_all or event["run"]["owner"] == owner
            return True

        self._sub = self._engine.bus.subscribe(wanted)
        self.send_json({"type": "hello", "seq": self._engine.bus.seq, "workers": self._engine.worker_list()})
        self._pump = asyncio.ensure_future(self._forward())

    async def _forward(self) -> None:
        while True:
            event = await self._sub.get()
            if event is None:
                self.send_json({"type": "overflow", "message": "too many events; re-read the state"})
                self.close()
                return
            self.send_json(event)

    def on_message(self, message: str | bytes) -> None:
        pass

    def on_close(self) -> None:
        if hasattr(self, "_sub"):
            self._sub.close()
            self._pump.cancel()


class LogFollowHandler(AuthedWebSocket):
    """``/tasks/{id}/logs/follow``: the log so far, then live lines, then ``end``."""

    def read_arguments(self) -> None:
        self._attempt, self._offset = (self._whole_number(n) for n in ("attempt", "offset"))

    def _whole_number(self, name: str) -> int:
        raw = self.get_query_argument(name, "0")
        if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_INT64:
            raise SpecError(
                f"query parameter {name} must be a whole number from 0 to {MAX_INT64}", field=name
            )
        return int(raw)

    def open(self, task_id: str) -> None:  # type: ignore[override]
        self._pump = asyncio.ensure_future(self._follow(task_id))

    async def _follow(self, task_id: str) -> None:
        engine = self._engine
        try:
            row = await engine.get_row(task_id, self.owner)
        except OrchError as exc:
            self.send_json({"type": "error", **exc.to_dict()})
            self.close()
            return
        attempt = self._attempt or row.attempt
        offset = self._offset
        sub = engine.bus.subscribe(
            lambda e: (
                (e["type"] == "log" and e["task_id"] == task_id)
                or (e["type"] == "task" and e["task"]["id"] == task_id)
            )
        )
        try:
            # the state before the read: what happens during it arrives as events (lines
            # already read are skipped by their offsets)
            state = row.state
            self.send_json({"type": "state", "task": task_view(row)})  # where it stands (and why)
            if attempt:
                lines, offset, _ = await engine.read_logs(row, attempt, offset, None)
                if lines:
                    self.send_json({"type": "lines", "attempt": attempt, "lines": lines})
            while not state.terminal or (row.attempt != attempt and row.attempt > 0):
                event = await sub.get()
                if event is None:
                    break
                if event["type"] == "task":
                    from ..core.states import TaskState

                    state = TaskState(event["task"]["state"])
                    self.send_json({"type": "state", "task": event["task"]})
                    if event["task"]["attempt"] != attempt and state.active:
                        attempt, offset = event["task"]["attempt"], 0  # a retry started: follow it
                    if state.terminal:
                        break
                    continue
                if event["attempt"] != attempt:
                    continue
                skip = max(0, offset - event["offset"])
                fresh = event["lines"][skip:]
                if fresh:
                    offset = event["offset"] + len(event["lines"])
                    self.send_json({"type": "lines", "attempt": attempt, "lines": fresh})
            final = await engine.get_row(task_id, self.owner)
            self.send_json({"type": "end", "task": task_view(final)})
        finally:
            sub.close()
        self.close()

    def on_message(self, message: str | bytes) -> None:
        pass

    def on_close(self) -> None:
        if hasattr(self, "_pump"):
            self._pump.cancel()


def _inline(row: Any) -> bool:
    """Whether a finished task's result rides along with its ``done`` notice."""
    return row.result_key is not None and row.result_size <= INLINE_RESULT_LIMIT


class SessionHandler(AuthedWebSocket):
    """``/session``: the SDK's fast path. ``submit`` frames carry task specs and payload
    blobs; the server answers ``accepted``/``rejected`` once committed, then ``done`` (with
    the result inline when small) for every task submitted or ``watch``ed here."""

    @property
    def max_message_size(self) -> int:  # type: ignore[override]
        return int(self.orch.engine_config.max_payload_bytes) * 4 + (16 << 20)

    _batcher: FrameBatcher | None = None

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)
        self._watching: set[str] = set()
        # task id -> row, to send; once each per frame. Not ``_finished``: that is tornado's flag
        # for an ended response, and an empty dict there made tornado call finish() on the
        # upgraded connection when the client left (an "Uncaught exception" per session)
        self._done_rows: dict[str, Any] = {}
        self._submits: set[asyncio.Task[None]] = set()  # in flight, in order of arrival
        if self.get_query_argument("batch", None) == str(protocol.BATCH):
            self._batcher = _batcher(self._write)
        hello = {"type": "hello", "owner": self.owner, "server_version": self.orch.version_string}
        handoff = self._engine.handoff_info()
        if handoff is not None:
            hello["handoff"] = handoff
        self.send_json(hello)

    def send_json(self, data: Any, *, lazy: bool = False) -> None:
        self.send_frame(data, lazy=lazy)

    def send_frame(
        self, header: dict[str, Any], blobs: list[tuple[str, bytes]] | None = None, *, lazy: bool = False
    ) -> None:
        frame = protocol.encode(header, blobs)
        if self._batcher is not None:
            self._batcher.send(frame, lazy=lazy)
        else:
            self._write(frame)

    def _write(self, frame: str | bytes) -> None:
        try:
            wire.send(self.ws_connection, frame)
        except WebSocketClosedError:
            pass

    def on_close(self) -> None:
        if self._batcher is not None:
            self._batcher.discard()

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
            specs, payloads = self._parse_submit(msg)
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

    def _parse_submit(self, msg: protocol.Message) -> tuple[list[Any], dict[str, Any]]:
        tasks = msg.get("tasks") or []
        placed = set()  # tasks whose payload the client wrote into the blob store itself
        for item in tasks:
            if isinstance(item, dict) and f"payload:{item.get('id')}" in msg.blobs:
                item.pop("payload", None)
            if isinstance(item, dict) and item.pop("payload_file", None):
                placed.add(item.get("id"))
        specs, payloads = parse_submission({"tasks": tasks}, self.owner)
        for spec in specs:
            blob = msg.blobs.get(f"payload:{spec.id}")
            if blob is not None:
                payloads[spec.id] = blob
            elif spec.id in placed:
                payloads[spec.id] = self._engine.stored_payload(spec.id)
        return specs, payloads

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
        if self._batcher is not None:
            self._batcher.flush()  # the client waits on these: no loop turn more

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
