"""FileMetricStore on a real disk (tmp_path): points per attempt, read back from offsets,
a torn last line dropped, the attempts that have points, ids that cannot leave the root."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from jupyter_orch.store import FileMetricStore


def points(n: int, start: int = 0, group: str = "training") -> list[list[Any]]:
    return [[1000.0 + i, i, group, {"loss": 1.0 / (i + 1), "lr": None}] for i in range(start, start + n)]


def test_append_count_and_read_back(tmp_path: Path) -> None:
    store = FileMetricStore(tmp_path)
    assert store.append("t1", 1, points(3)) == 3
    assert store.append("t1", 1, points(2, 3, "validation")) == 5
    assert store.append("t1", 1, []) == 5
    assert store.count("t1", 1) == 5 and store.count("t1", 2) == 0
    read, after = store.read("t1", 1)
    assert read == points(3) + points(2, 3, "validation") and after == 5
    assert store.read("t1", 1, offset=3, limit=1) == (points(1, 3, "validation"), 4)
    assert store.read("t1", 1, offset=-1)[0] == points(1, 4, "validation")
    assert store.read("t1", 1, offset=9) == ([], 9)
    assert store.read("none", 1) == ([], 0)
    store.close()
    again = FileMetricStore(tmp_path)  # rebuilt from the files
    assert again.read("t1", 1)[0] == read
    assert (tmp_path / "t1" / "1.jsonl").read_text().splitlines()[
        0
    ] == '[1000.0,0,"training",{"loss":1.0,"lr":null}]'


def test_offsets_across_index_checkpoints(tmp_path: Path) -> None:
    store = FileMetricStore(tmp_path)
    store.append("big", 1, points(3000))
    for offset in (0, 1023, 1024, 2049, 2999):
        got, after = store.read("big", 1, offset=offset, limit=2)
        assert [p[1] for p in got] == list(range(offset, min(offset + 2, 3000))) and after == offset + len(
            got
        )


def test_attempts_with_points(tmp_path: Path) -> None:
    store = FileMetricStore(tmp_path)
    assert store.attempts("t") == []
    for attempt in (3, 1, 12):
        store.append("t", attempt, points(1))
    (tmp_path / "t" / "notes.txt").write_text("not an attempt")
    assert store.attempts("t") == [1, 3, 12]


def test_a_torn_last_line_is_dropped_and_a_damaged_one_keeps_the_offsets(tmp_path: Path) -> None:
    store = FileMetricStore(tmp_path)
    store.append("t", 1, points(2))
    store.close()
    with open(store.path("t", 1), "ab") as f:
        f.write(b'[1.0, 2, "train')  # a crash in the middle of a write
    again = FileMetricStore(tmp_path)
    assert again.count("t", 1) == 2
    assert again.append("t", 1, points(1, 2)) == 3
    assert [p[1] for p in again.read("t", 1)[0]] == [0, 1, 2]
    again.close()
    lines = Path(again.path("t", 1)).read_bytes().splitlines(keepends=True)
    Path(again.path("t", 1)).write_bytes(lines[0] + b"garbage\n" + lines[2])
    fresh = FileMetricStore(tmp_path)
    read, _ = fresh.read("t", 1)
    assert read[1] == [0.0, None, "training", {}] and read[2][1] == 2


def test_threads(tmp_path: Path) -> None:
    store = FileMetricStore(tmp_path, max_open=2)

    def work(n: int) -> None:
        for i in range(50):
            store.append(f"t{n % 3}", 1, [[float(i), i, "training", {f"w{n}": i}]])
            store.read(f"t{(n + 1) % 3}", 1, offset=-3)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(3):
        read, after = store.read(f"t{k}", 1)
        assert after == 100 == len(read)


@pytest.mark.parametrize("task_id", ["", "..", ".", "a/b", "a\\b", "x\0"])
def test_bad_task_ids(tmp_path: Path, task_id: str) -> None:
    store = FileMetricStore(tmp_path)
    with pytest.raises(ValueError, match="metrics"):
        store.append(task_id, 1, points(1))
    with pytest.raises(ValueError):
        store.read(task_id, 1)
    with pytest.raises(ValueError):
        store.attempts(task_id)
    with pytest.raises(ValueError):
        store.count("ok", -1)
