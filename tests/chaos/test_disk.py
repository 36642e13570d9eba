"""The blob directory full or read-only under a real server: a clear error for the task or
submit that needed it, no row that names a blob which is not there, and everything else
goes on. The server runs in a mount namespace of its own (``unshare``) where its blob
folder is a small tmpfs, filled up or made read-only before it starts."""

from __future__ import annotations

import base64
import shutil
import sys

import cloudpickle
import pytest

from jupyter_orch.serialization import dumps_call

from support.rawhttp import raw

cloudpickle.register_pickle_by_value(sys.modules[__name__])

FULL = 'mount -t tmpfs -o size=256k tmpfs "$0" && dd if=/dev/zero of="$0/filler" bs=4k count=64 2>/dev/null; exec "$@"'
READ_ONLY = 'mount -t tmpfs -o size=4m tmpfs "$0" && mount -o remount,ro "$0" && exec "$@"'


def big_result(n: int) -> bytes:
    return b"r" * n


def wrapped(blobs: str, script: str) -> list[str]:
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) runs the server in a mount namespace of its own"
    # -r: root in a user namespace, so this needs no privileges of its own
    return [unshare, "-r", "-m", "sh", "-c", script, blobs]


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("how", "why"), [(FULL, "No space left on device"), (READ_ONLY, "Read-only file system")]
)
def test_a_blob_folder_that_cannot_be_written(orch_factory, tmp_path, how, why):
    probe = orch_factory("probe")  # where the server's data will be
    blobs = probe.data_dir / "blobs"
    blobs.mkdir(parents=True)
    server = orch_factory(
        "server", workers=1, wrap=wrapped(str(tmp_path / "server" / "data" / "orch" / "blobs"), how)
    )
    (tmp_path / "server" / "data" / "orch" / "blobs").mkdir(parents=True)
    server.start()
    server.wait_workers(1)
    api = server.api()

    # a payload over the database's 64 KiB goes to the blob store: the submit is refused
    payload, _ = dumps_call(big_result, (10,))
    payload += b"\0" * (100 << 10)  # padding after the pickle: still a valid payload
    name = "payload-refused"
    status, body = raw(
        server,
        "POST",
        "/tasks",
        {"kind": "function", "name": name, "payload": base64.b64encode(payload).decode()},
    )
    assert status == 503, body
    assert body["error"] == "unavailable" and "could not write payloads/" in body["message"]
    assert why in body["message"]
    assert api.get(f"/tasks?q={name}")["tasks"] == []  # not stored

    # a result over 64 KiB cannot be kept: its task fails and says why; a small one is fine
    small, _ = dumps_call(big_result, (10,))
    large, _ = dumps_call(big_result, (200 << 10,))
    tasks = [
        api.post("/tasks", {"kind": "function", "name": n, "payload": base64.b64encode(p).decode()})
        for n, p in (("small-result", small), ("large-result", large))
    ]
    small_done = api.get(f"/tasks/{tasks[0]['id']}/wait?timeout=60")
    large_done = api.get(f"/tasks/{tasks[1]['id']}/wait?timeout=60")
    assert small_done["state"] == "succeeded"
    assert large_done["state"] == "failed" and large_done["error_kind"] == "store"
    assert "could not write results/" in large_done["error"] and why in large_done["error"]
    status, body = raw(server, "GET", f"/tasks/{tasks[1]['id']}/result")
    assert status == 409 and "without a result" in body["message"]

    # what is stored agrees: after a crash the rows say the same, and none names a lost blob
    server.stop(kill=True)
    server.start()
    api = server.api()
    assert api.get(f"/tasks/{tasks[0]['id']}")["state"] == "succeeded"
    again = api.get(f"/tasks/{tasks[1]['id']}")
    assert again["state"] == "failed" and again["error_kind"] == "store"
    status, _ = raw(server, "GET", f"/tasks/{tasks[0]['id']}/result")
    assert status == 200
