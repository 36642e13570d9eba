"""FileBlobStore and FileLogStore on a real disk (tmp_path)."""

from __future__ import annotations

import os
import threading

import pytest

from jupyter_orch.store import BlobStore, FileBlobStore, FileLogStore

# --- blobs -------------------------------------------------------------------------------


def test_blob_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    blobs = FileBlobStore(str(tmp_path / "blobs"))
    assert isinstance(blobs, BlobStore)
    data = bytes(range(256)) * 1000
    assert blobs.put("tasks/abc/payload", data) == len(data)
    assert blobs.exists("tasks/abc/payload")
    assert blobs.get("tasks/abc/payload") == data
    assert blobs.put("tasks/abc/empty", b"") == 0
    assert blobs.get("tasks/abc/empty") == b""
    assert blobs.url("tasks/abc/payload") == (tmp_path / "blobs" / "tasks" / "abc" / "payload").as_uri()
    assert (tmp_path / "blobs" / "tasks" / "abc" / "payload").read_bytes() == data
    blobs.delete("tasks/abc/payload")
    assert not blobs.exists("tasks/abc/payload")
    blobs.delete("tasks/abc/payload")  # again: nothing to do


def test_missing_blob_is_key_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    blobs = FileBlobStore(tmp_path)
    with pytest.raises(KeyError):
        blobs.get("tasks/none/payload")
    blobs.put("tasks/x/payload", b"1")
    with pytest.raises(KeyError):
        blobs.get("tasks/x")  # a folder is not a blob
    with pytest.raises(KeyError):
        blobs.get("tasks/x/payload/deeper")
    assert not blobs.exists("tasks/x")


def test_overwrite_is_atomic_and_leaves_no_temp_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    blobs = FileBlobStore(tmp_path, fsync=True)
    key = "tasks/t/result"
    old, new = b"a" * 1_000_000, b"b" * 1_500_000
    blobs.put(key, old)
    seen: set[tuple[bytes, int, bool]] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            data = blobs.get(key)
            seen.add((data[:1], len(data), data.count(data[:1]) == len(data)))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(20):
            blobs.put(key, old if i % 2 else new)
    finally:
        stop.set()
        thread.join()
    # every read saw one whole version, never a mix or a part
    assert seen <= {(b"a", len(old), True), (b"b", len(new), True)}
    assert blobs.get(key) == old
    assert os.listdir(tmp_path / "tasks" / "t") == ["result"]


def test_failed_write_keeps_old_value(tmp_path) -> None:  # type: ignore[no-untyped-def]
    blobs = FileBlobStore(tmp_path)
    blobs.put("k", b"old")
    with pytest.raises(TypeError):
        blobs.put("k", "not bytes")  # type: ignore[arg-type]
    assert blobs.get("k") == b"old"
    assert os.listdir(tmp_path) == ["k"]


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../x",
        "a/../../x",
        "..",
        "tasks/..",
        "/etc/passwd",
        "a\\b",
        "..\\x",
        "a//b",
        "a/./b",
        "a/",
        "C:/x",
        "a\0b",
    ],
)
def test_bad_keys_are_refused(tmp_path, key: str) -> None:  # type: ignore[no-untyped-def]
    blobs = FileBlobStore(tmp_path / "root")
    for call in (
        lambda: blobs.put(key, b"x"),
        lambda: blobs.get(key),
        lambda: blobs.exists(key),
        lambda: blobs.delete(key),
        lambda: blobs.url(key),
    ):
        with pytest.raises(ValueError):
            call()
    assert os.listdir(tmp_path) == ["root"]
    assert os.listdir(tmp_path / "root") == []


def test_dots_inside_names_are_fine(tmp_path) -> None:  # type: ignore[no-untyped-def]
    blobs = FileBlobStore(tmp_path)
    blobs.put("tasks/x/model..v2.pt", b"1")
    assert blobs.get("tasks/x/model..v2.pt") == b"1"


# --- logs --------------------------------------------------------------------------------


def lines(n: int, start: int = 0, stream: str = "stdout") -> list[tuple[float, str, str]]:
    return [(1000.0 + i, stream, f"line {i}") for i in range(start, start + n)]


def texts(records: list[dict[str, object]]) -> list[object]:
    return [r["text"] for r in records]


def test_log_append_and_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    logs = FileLogStore(tmp_path)
    assert logs.append("t1", 1, lines(3)) == 3
    assert logs.append("t1", 1, lines(2, 3, "stderr")) == 5
    assert logs.append("t1", 1, []) == 5
    records, nxt = logs.read("t1", 1)
    assert nxt == 5
    assert records[0] == {"ts": 1000.0, "stream": "stdout", "text": "line 0"}
    assert records[4] == {"ts": 1004.0, "stream": "stderr", "text": "line 4"}
    assert logs.count("t1", 1) == 5
    assert logs.count("t1", 2) == 0  # another attempt is another log
    logs.close()


def test_log_offset_and_limit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    logs = FileLogStore(tmp_path)
    logs.append("t", 0, lines(10))
    assert logs.read("t", 0, offset=3, limit=4) == (
        [{"ts": 1000.0 + i, "stream": "stdout", "text": f"line {i}"} for i in range(3, 7)],
        7,
    )
    assert texts(logs.read("t", 0, offset=8)[0]) == ["line 8", "line 9"]
    assert logs.read("t", 0, offset=10) == ([], 10)  # nothing new yet
    assert logs.read("t", 0, offset=25) == ([], 25)
    assert logs.read("t", 0, offset=2, limit=0) == ([], 2)
    assert texts(logs.read("t", 0, offset=-2)[0]) == ["line 8", "line 9"]  # the tail
    assert logs.read("t", 0, offset=-2)[1] == 10
    # following a live log: read, append, read from where we were
    records, nxt = logs.read("t", 0, offset=0, limit=100)
    logs.append("t", 0, lines(1, 10))
    assert texts(logs.read("t", 0, offset=nxt)[0]) == ["line 10"]
    logs.close()


def test_log_offsets_across_index_checkpoints(tmp_path) -> None:  # type: ignore[no-untyped-def]
    logs = FileLogStore(tmp_path)
    for start in range(0, 5000, 700):
        logs.append("big", 1, lines(min(700, 5000 - start), start))
    for offset in (0, 1023, 1024, 1025, 2048, 4999):
        records, nxt = logs.read("big", 1, offset=offset, limit=3)
        assert texts(records) == [f"line {i}" for i in range(offset, min(offset + 3, 5000))]
        assert nxt == offset + len(records)
    logs.close()
    fresh = FileLogStore(tmp_path)  # an index rebuilt from the file gives the same answers
    assert texts(fresh.read("big", 1, offset=3071, limit=2)[0]) == ["line 3071", "line 3072"]
    assert fresh.count("big", 1) == 5000


def test_missing_log_reads_empty(tmp_path) -> None:  # type: ignore[no-untyped-def]
    logs = FileLogStore(tmp_path)
    assert logs.read("nope", 1) == ([], 0)
    assert logs.count("nope", 1) == 0
    assert not (tmp_path / "nope").exists()  # reading creates nothing


def test_log_arbitrary_text(tmp_path) -> None:  # type: ignore[no-untyped-def]
    logs = FileLogStore(tmp_path)
    samples = [
        "ünïcödé ✓ 日本語 🚀",
        "tabs\tand\ttabs",
        "embedded\nnewline and \r carriage return",
        "x" * 1_000_000,
        "",
        '"quotes" and \\backslashes\\ and [brackets]',
        "\u2028line separator\u2029",
        "lone surrogate \udcff from a bad decode",
        "\x00\x1b[31mred\x1b[0m",
    ]
    logs.append("u", 1, [(1.5, "stderr", s) for s in samples])
    records, nxt = logs.read("u", 1)
    assert nxt == len(samples)
    assert texts(records) == samples
    logs.close()
    assert texts(FileLogStore(tmp_path).read("u", 1)[0]) == samples


def test_log_reopen_after_close_keeps_content(tmp_path) -> None:  # type: ignore[no-untyped-def]
    logs = FileLogStore(tmp_path)
    logs.append("t", 1, lines(3))
    logs.close()
    assert logs.append("t", 1, lines(2, 3)) == 5  # usable after close
    logs.close()
    other = FileLogStore(tmp_path)
    assert other.count("t", 1) == 5
    assert other.append("t", 1, lines(1, 5)) == 6
    assert texts(other.read("t", 1)[0]) == [f"line {i}" for i in range(6)]
    other.close()


def test_torn_last_line_is_dropped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    logs = FileLogStore(tmp_path)
    logs.append("t", 1, lines(2))
    logs.close()
    with open(logs.path("t", 1), "ab") as f:
        f.write(b'[1.0, "stdout", "half')  # a crash in the middle of a write
    again = FileLogStore(tmp_path)
    assert again.count("t", 1) == 2
    assert again.append("t", 1, lines(1, 2)) == 3
    assert texts(again.read("t", 1)[0]) == ["line 0", "line 1", "line 2"]
    again.close()


def test_log_handle_lru(tmp_path) -> None:  # type: ignore[no-untyped-def]
    logs = FileLogStore(tmp_path, max_open=2, max_known=3)
    for i in range(6):
        logs.append(f"t{i}", 1, lines(1))
        logs.append(f"t{i}", 2, lines(2))
    assert len(logs._open) <= 2
    assert len(logs._files) <= 3
    for i in range(6):
        assert logs.append(f"t{i}", 1, lines(1, 1)) == 2
        assert logs.count(f"t{i}", 2) == 2
    logs.close()


def test_log_threads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    logs = FileLogStore(tmp_path, max_open=3)

    def work(n: int) -> None:
        for i in range(50):
            logs.append(f"t{n % 4}", 1, [(float(i), "stdout", f"{n}:{i}")])
            logs.read(f"t{(n + 1) % 4}", 1, offset=-5)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        records, nxt = logs.read(f"t{k}", 1)
        assert nxt == 100 == len(records)
        assert sorted(texts(records)) == sorted(f"{n}:{i}" for n in range(8) if n % 4 == k for i in range(50))
    logs.close()


@pytest.mark.parametrize("task_id", ["", "..", ".", "a/b", "a\\b", "x\0"])
def test_log_bad_task_ids(tmp_path, task_id: str) -> None:  # type: ignore[no-untyped-def]
    logs = FileLogStore(tmp_path)
    with pytest.raises(ValueError):
        logs.append(task_id, 1, lines(1))
    with pytest.raises(ValueError):
        logs.read(task_id, 1)
    with pytest.raises(ValueError):
        logs.count("ok", -1)
