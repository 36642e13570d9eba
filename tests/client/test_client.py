"""The Python client against a real server with real local workers."""

from __future__ import annotations

import os
import sys

import cloudpickle
import pytest

from jupyter_orch.client import TaskCancelled, TaskFailed
from jupyter_orch.core.errors import SpecError

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module


def add(a, b):
    return a + b


def shout(text):
    print("out:", text)
    print("err:", text, file=sys.stderr)
    return text.upper()


class Boom(Exception):
    pass


def explode(x):
    raise Boom(f"bad value {x}")


def test_submit_returns_the_value(orch):
    client = orch.client()
    fut = client.submit(add, 2, 3)
    assert fut.result(timeout=30) == 5
    assert fut.done() and fut.status == "succeeded"
    # the id works with the REST API
    assert orch.api().get(f"/tasks/{fut.id}")["state"] == "succeeded"


def test_kwargs_go_to_the_function_and_options_to_the_task(orch):
    client = orch.client()
    fut = client.submit(add, a=1, b=41, cpus=0.5, name="answer")
    assert fut.result(30) == 42
    info = fut.info()
    assert info["name"] == "answer"
    assert info["resources"]["cpus"] == 0.5


def test_numpy_argument_round_trip(orch):
    np = pytest.importorskip("numpy")
    client = orch.client()
    arr = np.arange(1_000_000, dtype=np.float64)
    assert client.submit(np.sum, arr).result(30) == arr.sum()


def test_future_as_argument_is_a_server_side_dependency(orch):
    client = orch.client()
    first = client.submit(add, 1, 2)
    second = client.submit(add, first, 10)
    third = client.submit(add, first, second)
    assert third.result(30) == 16
    assert orch.api().get(f"/tasks/{third.id}")["depends"] == [first.id, second.id]


def test_failed_dependency_fails_dependants_with_the_reason(orch):
    client = orch.client()
    bad = client.submit(explode, 7)
    child = client.submit(add, bad, 1)
    grandchild = client.submit(add, child, 1)
    with pytest.raises(TaskFailed) as info:
        grandchild.result(30)
    assert grandchild.status == "upstream_failed"
    assert child.id in str(info.value)
    assert "bad value 7" in orch.api().get(f"/tasks/{child.id}")["error"]


def test_remote_exception_is_reraised_with_the_remote_traceback(orch):
    client = orch.client()
    fut = client.submit(explode, 3)
    with pytest.raises(Boom, match="bad value 3") as info:
        fut.result(30)
    cause = info.value.__cause__
    assert cause is not None and "in explode" in str(cause) and "Boom: bad value 3" in str(cause)
    assert isinstance(fut.exception(), Boom)
    assert fut.info()["error"] == "Boom: bad value 3"


def test_output_is_captured_in_order(orch):
    client = orch.client()
    fut = client.submit(shout, "hi")
    assert fut.result(30) == "HI"
    assert fut.logs() == "out: hi\nerr: hi\n"


def test_shell_task_output_and_failure(orch):
    client = orch.client()
    ok = client.submit_shell("echo one; echo two >&2")
    assert ok.result(30) is None
    assert ok.logs() == "one\ntwo\n"
    bad = client.submit_shell("echo before; exit 3")
    with pytest.raises(TaskFailed, match="exited with code 3"):
        bad.result(30)


def read_env(name):
    return os.environ.get(name)


def test_env_reaches_the_task(orch):
    client = orch.client()
    fut = client.submit(read_env, "ORCH_TEST_VALUE", env={"ORCH_TEST_VALUE": "xyz"})
    assert fut.result(30) == "xyz"


def test_bad_resources_fail_before_sending(orch):
    client = orch.client()
    with pytest.raises(SpecError) as info:
        client.submit(add, 1, 2, memory="lots")
    assert info.value.field == "resources.memory"
    with pytest.raises(SpecError) as info:
        client.submit(add, 1, 2, gpus=-1)
    assert info.value.field == "resources.gpus"


def test_cancel_a_running_task(orch, tmp_path):
    client = orch.client()
    marker = tmp_path / "started"
    fut = client.submit_shell(f"touch {marker}; sleep 60")
    assert fut.accepted()
    orch.wait_task(fut.id, "running")
    assert fut.cancel() is True
    with pytest.raises(TaskCancelled):
        fut.result(30)
    # the slot is free again: two more tasks run on the two workers
    assert [f.result(30) for f in (client.submit(add, 1, 1), client.submit(add, 2, 2))] == [2, 4]
    assert fut.cancel() is False


def test_many_tasks_at_once(orch):
    client = orch.client()
    futures = [client.submit(add, i, 1) for i in range(300)]
    assert [f.result(60) for f in futures] == [i + 1 for i in range(300)]


def test_a_task_may_depend_on_one_without_a_value(orch):
    client = orch.client()
    first = client.submit_shell("echo one")
    second = client.submit_shell("echo two", depends=[first])
    assert second.result(30) is None and second.status == "succeeded"
    assert client.submit(lambda v: v is None, first).result(30) is True  # a shell task's value is None


def test_future_from_an_id(orch):
    client = orch.client()
    fut = client.submit(add, 20, 22)
    other = orch.client()
    assert other.future(fut.id).result(30) == 42


def test_cancel_right_after_submit(orch):
    client = orch.client()
    fut = client.submit_shell("sleep 60")
    assert fut.cancel() is True  # waits for the server to have it, then cancels
    with pytest.raises(TaskCancelled):
        fut.result(30)
    assert fut.status == "cancelled"


def metric(orch, name):
    import urllib.request

    req = urllib.request.Request(
        orch.url + "/orch/metrics", headers={"Authorization": f"Bearer {orch.token}"}
    )
    text = urllib.request.urlopen(req).read().decode()
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")))


def test_large_payloads_reach_local_workers_through_the_blob_file(orch):
    client = orch.client()
    big = bytes(range(256)) * (12 * 4096)  # 12 MiB: over the file hand-off threshold
    before = metric(orch, "orch_payload_file_handoffs_total")
    assert client.submit(len, big).result(60) == len(big)
    assert client.submit(len, b"small").result(60) == 5  # small ones travel inline
    assert metric(orch, "orch_payload_file_handoffs_total") == before + 1


def test_a_result_of_many_megabytes_comes_back(orch):
    client = orch.client()
    big = client.submit(bytes, 9 << 20)  # fetched over HTTP, in pieces, not in the done frame
    assert big.result(60) == bytes(9 << 20)


def payload_files(orch):
    return sorted(p.name for p in (orch.data_dir / "blobs" / "payloads").glob("*/*"))


def test_a_client_on_the_servers_machine_writes_large_payloads_into_the_blob_store(orch):
    client = orch.client()
    client.submit(add, 1, 1).result(30)  # the session's hello has offered the hand-off
    big = bytes(range(256)) * (8 * 4096)  # 8 MiB
    before = metric(orch, "orch_payload_client_handoffs_total")
    ok = client.submit(len, big)
    failing = client.submit(explode, big)
    assert ok.result(60) == len(big)
    with pytest.raises(Boom):  # its exception (megabytes, with the value in it) comes back whole
        failing.result(60)
    assert metric(orch, "orch_payload_client_handoffs_total") == before + 2
    orch.api().get(f"/tasks/{ok.id}")  # answers after the commit and the file work it set off
    # a succeeded task's payload is gone; a failed one keeps it, and a retry runs with it
    files = payload_files(orch)
    assert failing.id in files and ok.id not in files
    retried = orch.api().post(f"/tasks/{failing.id}/retry", {})
    assert retried["state"] in ("pending", "scheduled", "running", "failed")
    final = orch.api().get(f"/tasks/{failing.id}/wait", timeout=30)
    assert final["attempt"] == 2 and "bad value" in final["error"]


def test_a_handed_off_payload_that_is_not_there_is_refused_naming_the_field(orch, monkeypatch):
    from jupyter_orch.client import handoff

    client = orch.client()
    client.submit(add, 1, 1).result(30)
    monkeypatch.setattr(handoff, "place", lambda offer, task_id, payload: True)  # claims, writes nothing
    fut = client.submit(len, b"x" * (2 << 20))
    with pytest.raises(SpecError) as info:
        fut.result(30)
    assert info.value.field == "payload_file" and "missing" in str(info.value)


def test_the_hand_off_is_not_taken_up_without_the_servers_marker(tmp_path):
    from jupyter_orch.client import handoff

    (tmp_path / ".orch-handoff").write_text("right")
    offer = {"root": str(tmp_path), "marker": ".orch-handoff", "token": "right", "min_size": 1}
    assert handoff.usable(offer) == offer
    assert handoff.usable({**offer, "token": "wrong"}) is None  # same path, another disk
    assert handoff.usable({**offer, "root": str(tmp_path / "nowhere")}) is None
    assert handoff.usable(None) is None and handoff.usable({"root": 1}) is None
    assert handoff.place(offer, "01abcdefghjkmnpqrstvwxyz00", b"data")
    assert (tmp_path / "payloads" / "00" / "01abcdefghjkmnpqrstvwxyz00").read_bytes() == b"data"
