"""Run directories: the files a workflow run's steps share (``ORCH_RUN_DIR``), through
fsspec, so the root may be a local directory (the default, ``<data_dir>/runs``), a path
where a PersistentVolumeClaim is mounted in the server and the worker pods alike, or an
object store URL (``s3://bucket/runs``, ``gs://...``; the protocol's fsspec package must be
installed, and steps then read and write ``$ORCH_RUN_DIR`` with fsspec themselves).
"""

from __future__ import annotations

import posixpath
from typing import Any

import fsspec  # type: ignore[import-untyped]

from ..core.errors import NotFound, SpecError

MAX_LISTED = 10_000


class RunFiles:
    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/") or "/"
        self.fs, self._root_path = fsspec.core.url_to_fs(self.root)

    def dir_for(self, run_id: str) -> str:
        """What a run's steps see as ``ORCH_RUN_DIR``: a path for a local root, else a URL."""
        return posixpath.join(self.root, run_id)

    def prepare(self, run_id: str) -> str:
        path = posixpath.join(self._root_path, run_id)
        self.fs.makedirs(path, exist_ok=True)
        return self.dir_for(run_id)

    def list(self, run_id: str) -> list[dict[str, Any]]:
        """Every file under the run's directory: relative path, size, modification time."""
        base = posixpath.join(self._root_path, run_id)
        if not self.fs.exists(base):
            return []
        found = self.fs.find(base, detail=True)
        files = []
        for path, info in sorted(found.items())[:MAX_LISTED]:
            if info.get("type") == "directory":
                continue
            rel = posixpath.relpath(self._strip(path), self._strip(base))
            files.append({"path": rel, "size": info.get("size") or 0, "modified": _mtime(info)})
        return files

    def read(self, run_id: str, rel: str) -> bytes:
        path = self._inside(run_id, rel)
        try:
            with self.fs.open(path, "rb") as f:
                return bytes(f.read())
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"run {run_id} has no file {rel}") from None

    def _inside(self, run_id: str, rel: str) -> str:
        clean = posixpath.normpath("/" + rel).lstrip("/")
        if not clean or clean.startswith("..") or "\0" in rel:
            raise SpecError(f"{rel!r} is not a path inside the run's directory", field="path")
        return posixpath.join(self._root_path, run_id, clean)

    def _strip(self, path: str) -> str:
        return str(self.fs._strip_protocol(path))


def _mtime(info: dict[str, Any]) -> float | None:
    value = info.get("mtime") or info.get("LastModified") or info.get("created")
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
