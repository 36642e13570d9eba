"""``jupyter_orch.checkpoint``: saving from a task and finding the latest again, on a local
directory and on an fsspec store."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from jupyter_orch import checkpoint
from jupyter_orch.core.checkpoints import ENV, MANIFEST, task_dir
from jupyter_orch.core.errors import SpecError


@pytest.fixture
def model(tmp_path: Path) -> Path:
    out = tmp_path / "model"
    (out / "layers").mkdir(parents=True)
    (out / "weights.bin").write_bytes(b"\x00" * 100)
    (out / "layers" / "one.json").write_text('{"w": 1}')
    return out


def test_a_first_attempt_finds_nothing_and_a_later_one_the_newest(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "ckpt" / "TASK"
    monkeypatch.setenv(ENV, str(root))
    monkeypatch.setenv("JUPYTER_ORCH_ATTEMPT", "1")
    assert checkpoint.restore_latest() is None
    first = checkpoint.save(model / "weights.bin", {"epoch": 1}, step=10)
    second = checkpoint.save(model, {"epoch": 2, "loss": 0.5}, step=20)
    assert (first.id, second.id) == ("000001-a1", "000002-a1")
    assert second.size == 108 and sorted(second.files) == ["model/layers/one.json", "model/weights.bin"]

    monkeypatch.setenv("JUPYTER_ORCH_ATTEMPT", "2")  # the retry
    found = checkpoint.restore_latest()
    assert found is not None
    assert (found.id, found.attempt, found.step, found.metadata) == (
        "000002-a1",
        1,
        20,
        {"epoch": 2, "loss": 0.5},
    )
    assert Path(found.file, "layers", "one.json").read_text() == '{"w": 1}'
    third = checkpoint.save(model / "weights.bin", step=30)
    assert third.id == "000003-a2"
    assert [c.step for c in checkpoint.list_checkpoints()] == [10, 20, 30]


def test_restore_into_a_directory_copies_the_files(tmp_path: Path, model: Path) -> None:
    root = str(tmp_path / "root")
    checkpoint.save(model, step=1, root=root)
    found = checkpoint.restore_latest(tmp_path / "here", root=root)
    assert found is not None and found.path == str(tmp_path / "here")
    assert (tmp_path / "here" / "model" / "weights.bin").read_bytes() == b"\x00" * 100


def test_a_checkpoint_cut_short_is_never_restored(tmp_path: Path, model: Path) -> None:
    root = tmp_path / "root"
    checkpoint.save(model / "weights.bin", step=1, root=str(root))
    broken = checkpoint.save(model / "weights.bin", step=2, root=str(root))
    os.remove(root / broken.id / MANIFEST)  # killed before the manifest was written
    (root / "stray-file").write_text("not a checkpoint")
    found = checkpoint.restore_latest(root=str(root))
    assert found is not None and found.step == 1
    # the next save does not reuse the broken one's number
    assert checkpoint.save(model / "weights.bin", step=3, root=str(root)).id.startswith("000003-")


def test_keep_deletes_the_oldest(tmp_path: Path, model: Path) -> None:
    root = tmp_path / "root"
    for step in range(5):
        checkpoint.save(model / "weights.bin", step=step, keep=2, root=str(root))
    assert [c.step for c in checkpoint.list_checkpoints(str(root))] == [3, 4]
    assert sorted(os.listdir(root)) == ["000004-a0", "000005-a0"]


def test_an_fsspec_store_is_downloaded_on_restore(tmp_path: Path, model: Path) -> None:
    root = f"memory://ckpt-{uuid.uuid4().hex}/TASK"
    saved = checkpoint.save(model, {"note": "remote"}, step=7, root=root)
    assert saved.url == f"{root}/{saved.id}" and saved.path == ""
    found = checkpoint.restore_latest(root=root)
    assert found is not None and found.metadata == {"note": "remote"}
    assert Path(found.file, "weights.bin").read_bytes() == b"\x00" * 100


def test_bad_calls_name_what_is_wrong(tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = str(tmp_path / "root")
    cases = [
        (lambda: checkpoint.save(tmp_path / "missing", root=root), "path"),
        (lambda: checkpoint.save(model, step=-1, root=root), "step"),
        (lambda: checkpoint.save(model, step=True, root=root), "step"),
        (lambda: checkpoint.save(model, {"f": object()}, root=root), "metadata"),
        (lambda: checkpoint.save(model, {"f": float("nan")}, root=root), "metadata"),
        (lambda: checkpoint.save(model, keep=0, root=root), "keep"),
    ]
    for call, field in cases:
        with pytest.raises(SpecError) as info:
            call()
        assert info.value.field == field
    assert not os.path.exists(root)  # nothing half-written
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(RuntimeError, match="JUPYTER_ORCH_CHECKPOINTS"):
        checkpoint.save(model)


def test_every_task_gets_its_own_directory() -> None:
    assert task_dir("/data/ckpt/", "T1") == "/data/ckpt/T1"
    assert task_dir("s3://b/ckpt", "T1") == "s3://b/ckpt/T1"
    step_env = {"ORCH_RUN_DIR": "/data/runs/R1"}
    assert task_dir("/data/ckpt", "T2", step_env, step=True) == "/data/runs/R1/checkpoints/T2"
    assert task_dir("/data/ckpt", "T2", step_env) == "/data/ckpt/T2"  # only a real step's run dir counts


def test_the_manifest_is_plain_json(tmp_path: Path, model: Path) -> None:
    saved = checkpoint.save(model / "weights.bin", {"a": [1, 2]}, step=5, root=str(tmp_path))
    manifest = json.loads((tmp_path / saved.id / MANIFEST).read_text())
    assert (
        manifest["step"] == 5
        and manifest["metadata"] == {"a": [1, 2]}
        and manifest["files"] == ["weights.bin"]
    )
