"""The client's session link: who writes which frame, in which order, against a real
server with real local workers."""

from __future__ import annotations

import select
import sys
import threading

import cloudpickle

from jupyter_orch.client import session as session_module
from jupyter_orch.client.link import SessionLink

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module


def add(a, b):
    return a + b


def count_submit_frames(monkeypatch) -> list[int]:
    """Count the submit frames written (the link still writes them)."""
    sent: list[int] = []
    real = SessionLink.send

    def send(self, frame):
        if b'"type":"submit"' in (frame.encode() if isinstance(frame, str) else bytes(frame[:200])):
            sent.append(1)
        return real(self, frame)

    monkeypatch.setattr(SessionLink, "send", send)
    return sent


def test_a_lone_submit_is_written_at_once_and_a_burst_leaves_in_few_frames(orch, monkeypatch):
    client = orch.client()
    assert client.submit(add, 1, 1).result(30) == 2  # connected
    sent = count_submit_frames(monkeypatch)
    assert client.submit(add, 2, 2).result(30) == 4
    assert len(sent) == 1
    futures = [client.submit(add, i, 1) for i in range(1000)]
    assert [f.result(60) for f in futures] == [i + 1 for i in range(1000)]
    # without batching it is 1,000 frames; how few depends on how busy the machine is
    assert len(sent) - 1 < 250, f"1,000 submits took {len(sent) - 1} frames"


def test_a_chain_of_dependent_submits_reaches_the_server_in_order(orch):
    client = orch.client()
    fut = client.submit(add, 0, 1)
    for i in range(150):
        if i == 70:  # a large argument: its frame is written by the session thread
            fut = client.submit(add, fut, len(bytes(300 << 10)) - (300 << 10))
        fut = client.submit(add, fut, 1)
    assert fut.result(60) == 151


def test_submits_and_waits_from_several_threads(orch):
    client = orch.client()
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            futures = [client.submit(add, n * 1000, i) for i in range(100)]
            results[n] = [f.result(60) for f in futures]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not errors
    assert results == {n: [n * 1000 + i for i in range(100)] for n in range(4)}


def test_a_silent_server_is_left_and_the_session_reconnects(orch, monkeypatch):
    """A connection on which nothing more is heard (not even the pong to the session's
    ping) is dropped and made again, and work goes on over the new one."""
    monkeypatch.setattr(session_module, "PING_INTERVAL", 0.3)
    client = orch.client()
    assert client.submit(add, 1, 2).result(30) == 3
    session = client.session
    link = session._link
    assert link is not None
    dropped = threading.Event()
    real_wait, real_close = SessionLink.wait_readable, SessionLink.close

    def deaf_wait(self, timeout, wake):
        if self is link:  # the first connection hears nothing more
            select.select([wake], [], [], timeout)
            return False
        return real_wait(self, timeout, wake)

    def close(self):
        if self is link:
            dropped.set()
        return real_close(self)

    monkeypatch.setattr(SessionLink, "wait_readable", deaf_wait)
    monkeypatch.setattr(SessionLink, "close", close)
    assert dropped.wait(10), "the silent connection was never left"
    assert client.submit(add, 2, 3).result(30) == 5
    assert session._link is not link


def test_a_task_the_server_does_not_know_is_an_error_but_not_before_its_submit_is_accepted(orch):
    import pytest

    from jupyter_orch.client.futures import Future
    from jupyter_orch.core.errors import NotFound
    from jupyter_orch.core.ids import new_id

    client = orch.client()
    with pytest.raises(NotFound, match="no task"):
        client.future(new_id()).result(30)  # an id that exists nowhere: the server says so
    # a watch sent on (re)connect can overtake the submit of a future another thread is
    # making; the server's "unknown" for it must not fail it (its submit is on the way)
    submitting = Future(client, new_id())
    with client._table.lock:
        client._table.awaited[submitting.id] = submitting
    client._table.on_unknown(submitting.id, NotFound("no task"))
    assert not submitting.done()
    submitting._accepted.set()  # once accepted, the server forgetting it is an error
    client._table.on_unknown(submitting.id, NotFound("no task"))
    with pytest.raises(NotFound):
        submitting.result(1)
