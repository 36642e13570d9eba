"""The session handler's ``done`` frames: a task reported twice before its frame leaves
(tracked by its submit and by a watch) is in the frame once, so the frame stays readable."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from jupyter_orch.core import protocol
from jupyter_orch.core.ids import new_id
from jupyter_orch.core.records import TaskRow
from jupyter_orch.core.spec import TaskSpec
from jupyter_orch.core.states import TaskState
from jupyter_orch.server.socketwriter import SocketWriter
from jupyter_orch.server.websockets import SessionHandler


@pytest.mark.asyncio
async def test_a_task_reported_twice_before_its_frame_leaves_is_in_it_once() -> None:
    sent: list[Any] = []
    handler = object.__new__(SessionHandler)  # only the done path, without a connection
    handler._done_rows = {}
    handler._watching = set()
    handler._writer = SocketWriter(lambda: None)  # frames unbatched (send_frame is replaced)
    handler.ws_connection = object()  # type: ignore[assignment]
    handler._engine = SimpleNamespace(cached_result=lambda row: b"pickled")
    handler.send_frame = lambda header, blobs=None, lazy=False: sent.append(protocol.encode(header, blobs))  # type: ignore[method-assign]
    spec = TaskSpec.from_dict({"kind": "shell", "command": "false", "id": new_id()}, owner="ann")
    row = TaskRow(spec=spec, state=TaskState.FAILED, attempt=1, result_key="db:r", result_size=7)
    handler._done(row)
    handler._done(row)  # e.g. a watch of an already finished task, in the same loop turn
    await asyncio.sleep(0)  # the frame leaves at the end of the turn
    [frame] = sent
    [message] = protocol.decode_all(frame)
    assert [t["id"] for t in message["tasks"]] == [row.id]
    assert message.blobs == {f"result:{row.id}": b"pickled"}
