"""``@remote``, ``gather`` and ``as_completed`` against a real server and workers."""

from __future__ import annotations

import io
import sys

import cloudpickle
import pytest

import jupyter_orch
from jupyter_orch.client import RemoteError, TaskFailed
from jupyter_orch.client.progress import ProgressBar

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module


class Oops(Exception):
    pass


def square(x):
    import os

    return x * x, os.getpid()


def fail_on(x, bad):
    if x == bad:
        raise Oops(f"bad {x}")
    return x


def test_a_remote_function_runs_here_when_called_and_there_when_submitted(orch):
    import os

    client = orch.client()
    f = jupyter_orch.remote(square, client=client, cpus=1, name="sq")
    assert f(3) == (9, os.getpid())  # a plain call stays local
    value, pid = f.submit(4).result(30)
    assert value == 16 and pid != os.getpid()
    futures = f.map(range(5))
    assert [v for v, _ in futures.results(60)] == [0, 1, 4, 9, 16]
    assert {fut.info()["name"] for fut in futures} == {"sq"}
    assert f.options(name="other").submit(2).info()["name"] == "other"


def test_remote_as_a_decorator_and_bad_options(orch):
    client = orch.client()

    @jupyter_orch.remote(client=client, retries=1)
    def add(a, b):
        return a + b

    assert add.submit(2, b=3).result(30) == 5 and add(1, 1) == 2
    with pytest.raises(TypeError, match="unknown task option"):
        jupyter_orch.remote(square, gpu=1)


def test_gather_keeps_order_and_raises_the_first_failure_after_all_ended(orch):
    client = orch.client()
    futures = [client.submit(fail_on, i, 2) for i in range(5)]
    with pytest.raises(Oops, match="bad 2"):
        jupyter_orch.gather(futures, progress=False)
    assert all(f.done() for f in futures)
    got = jupyter_orch.gather(futures, return_exceptions=True, progress=False)
    assert got[:2] == [0, 1] and isinstance(got[2], Oops) and got[3:] == [3, 4]


def test_as_completed_yields_each_future_once_as_it_ends(orch):
    client = orch.client()
    slow = client.submit_shell("sleep 1", name="slow")
    quick = [client.submit(square, i) for i in range(3)]
    order = []
    for fut in jupyter_orch.as_completed([slow, *quick, quick[0]], timeout=60):
        assert fut.done()  # yielded when it ends, not before
        order.append(fut)
    assert sorted(f.id for f in order) == sorted(f.id for f in [slow, *quick])
    never = client.submit_shell("sleep 30")
    with pytest.raises(TimeoutError, match="1 of 1 tasks did not finish"):
        list(jupyter_orch.as_completed([never], timeout=0.2))
    never.cancel()


def test_the_text_progress_bar_redraws_in_place_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    bar = ProgressBar(4, widget=False, stream=out)
    for failed in (False, True, False, False):
        bar.advance(failed=failed)
    text = out.getvalue()
    assert text.startswith("\r[") and text.endswith("\n")
    assert "4/4 tasks, 1 failed" in text.splitlines()[-1]
    quiet = io.StringIO()  # a file, not a terminal: nothing drawn
    ProgressBar(2, widget=False, stream=quiet).advance()
    assert quiet.getvalue() == ""


def test_remote_errors_keep_their_type(orch):
    client = orch.client()
    fut = jupyter_orch.remote(fail_on, client=client).submit(1, 1)
    with pytest.raises(Oops):
        fut.result(30)
    assert isinstance(fut.exception(), Oops)
    assert issubclass(TaskFailed, RemoteError)


def test_quick_tasks_sent_ahead_behind_a_long_one_are_taken_back_for_a_free_worker(orch):
    client = orch.client()
    jupyter_orch.gather(
        [client.submit(square, i) for i in range(20)], progress=False
    )  # both workers: "quick"
    slow = client.submit_shell("sleep 4", name="slow")
    quick = [client.submit(square, i) for i in range(8)]
    assert [v for v, _ in jupyter_orch.gather(quick, timeout=60, progress=False)] == [i * i for i in range(8)]
    assert not slow.done()  # none of them waited for the long one
    pids = {pid for _, pid in (f.result() for f in quick)}
    assert len(pids) == 1  # all ran on the free worker's executor
    slow.cancel()
