"""Run directories through fsspec: a local root and an object-store-like one (fsspec's
memory filesystem) list and serve the same way; a path cannot leave the run's directory."""

from __future__ import annotations

import pytest

from jupyter_orch.core.errors import NotFound
from jupyter_orch.notebooks.runner import working_dir
from jupyter_orch.store.runfiles import RunFiles


def test_a_local_root_gives_steps_a_path_and_serves_what_they_wrote(tmp_path):
    files = RunFiles(str(tmp_path / "runs"))
    run_dir = files.prepare("r1")
    assert run_dir == str(tmp_path / "runs" / "r1")
    (tmp_path / "runs" / "r1" / "out").mkdir()
    (tmp_path / "runs" / "r1" / "out" / "report.html").write_text("<p>ok</p>")
    (tmp_path / "runs" / "r1" / "model.pkl").write_bytes(b"\x80\x05")
    listed = files.list("r1")
    assert [(f["path"], f["size"]) for f in listed] == [("model.pkl", 2), ("out/report.html", 9)]
    assert all(f["modified"] for f in listed)
    assert files.read("r1", "out/report.html") == b"<p>ok</p>"
    assert files.list("never-made") == []


def test_an_object_store_url_works_the_same(tmp_path):
    files = RunFiles("memory://bucket/runs")
    assert files.prepare("r2") == "memory://bucket/runs/r2"
    files.fs.pipe("/bucket/runs/r2/metrics.json", b'{"acc": 0.9}')
    assert [f["path"] for f in files.list("r2")] == ["metrics.json"]
    assert files.read("r2", "metrics.json") == b'{"acc": 0.9}'
    # a notebook step does not try to chdir into a URL: it runs in a directory of its own
    assert working_dir("t1", str(tmp_path), {"ORCH_RUN_DIR": "memory://bucket/runs/r2"}) == str(
        tmp_path / "notebook-runs" / "t1"
    )


def test_a_path_cannot_leave_the_run_directory(tmp_path):
    files = RunFiles(str(tmp_path / "runs"))
    files.prepare("r3")
    (tmp_path / "secret.txt").write_text("no")
    with pytest.raises(NotFound):
        files.read("r3", "../../secret.txt")  # taken as r3/secret.txt, which is not there
    with pytest.raises(NotFound):
        files.read("r3", "/etc/passwd")
