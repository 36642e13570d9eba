"""Checkpoints of a task, saved from inside it and found again by its next attempt.

``jupyter_orch.checkpoint.save("model.pt", {"epoch": 3}, step=3)`` copies a file or a
directory into the task's checkpoint directory, which the server gives each task as
``JUPYTER_ORCH_CHECKPOINTS`` (``<checkpoint_root>/<task id>``: a local path, a path on a
volume the workers share, or an fsspec URL such as ``s3://bucket/checkpoints``). Every
attempt of the task sees the same directory, so a retried or preempted task calls
``restore_latest()`` first and goes on from where the last attempt got (it returns None
on the first attempt).

Layout: one directory per checkpoint, ``<seq>-a<attempt>`` (``000003-a1``), holding the
saved files and ``_checkpoint.json`` (step, metadata, size, files, time), written last: a
checkpoint whose manifest is missing was cut short (the task was killed mid-copy) and is
never restored. The server lists the same manifests (``GET /tasks/{id}/checkpoints``).
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from .core.checkpoints import ENV, MANIFEST
from .core.errors import SpecError

__all__ = ["Checkpoint", "save", "restore_latest", "latest", "list_checkpoints"]


@dataclass
class Checkpoint:
    """One saved checkpoint. ``path`` is where its files are to read (a local directory;
    for a remote root, the copy ``restore_latest`` downloaded), ``url`` where it is kept."""

    id: str
    attempt: int
    step: int | None
    metadata: dict[str, Any] = field(default_factory=dict)
    size: int = 0
    files: list[str] = field(default_factory=list)
    created: float = 0.0
    url: str = ""
    path: str = ""

    @property
    def name(self) -> str:
        """The saved file's or directory's own name (``model.pt``)."""
        return self.files[0].split("/", 1)[0] if self.files else ""

    @property
    def file(self) -> str:
        """The saved file (or directory) inside ``path``: what to load."""
        return os.path.join(self.path, self.name) if self.path else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "attempt": self.attempt,
            "step": self.step,
            "metadata": self.metadata,
            "size": self.size,
            "files": self.files,
            "created": self.created,
            "url": self.url,
        }


def _root(root: str | None) -> str:
    where = root or os.environ.get(ENV)
    if not where:
        raise RuntimeError(
            "checkpoints are kept for jupyter-orch tasks (the server sets $JUPYTER_ORCH_CHECKPOINTS); "
            "outside a task pass root='some/dir' to save or restore there"
        )
    return where.rstrip("/") or "/"


def _fs(root: str) -> tuple[Any, str]:
    import fsspec  # type: ignore[import-untyped]

    fs, path = fsspec.core.url_to_fs(root)
    return fs, str(path)


def _join(root: str, name: str) -> str:
    return posixpath.join(root, name)


def _manifests(fs: Any, base: str) -> list[dict[str, Any]]:
    if not fs.exists(base):
        return []
    out = []
    for entry in fs.ls(base, detail=False):
        name = posixpath.basename(str(entry).rstrip("/"))
        try:
            with fs.open(_join(_join(base, name), MANIFEST), "rb") as f:
                manifest = json.loads(f.read())
        except (FileNotFoundError, NotADirectoryError, ValueError, OSError):
            continue  # cut short, or not ours
        if isinstance(manifest, dict) and manifest.get("id") == name:
            out.append(manifest)
    return sorted(out, key=lambda m: str(m["id"]))


def _checkpoint(manifest: dict[str, Any], root: str, local: bool) -> Checkpoint:
    url = _join(root, str(manifest["id"]))
    return Checkpoint(
        id=str(manifest["id"]),
        attempt=int(manifest.get("attempt") or 0),
        step=manifest.get("step"),
        metadata=dict(manifest.get("metadata") or {}),
        size=int(manifest.get("size") or 0),
        files=[str(f) for f in manifest.get("files") or []],
        created=float(manifest.get("created") or 0),
        url=url,
        path=url if local else "",
    )


def list_checkpoints(root: str | None = None) -> list[Checkpoint]:
    """The task's complete checkpoints, oldest first."""
    where = _root(root)
    fs, base = _fs(where)
    local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
    return [_checkpoint(m, where, local) for m in _manifests(fs, base)]


def latest(root: str | None = None) -> Checkpoint | None:
    """The newest complete checkpoint (its files not copied), or None."""
    found = list_checkpoints(root)
    return found[-1] if found else None


def save(
    path: str | os.PathLike[str],
    metadata: dict[str, Any] | None = None,
    *,
    step: int | None = None,
    keep: int | None = None,
    root: str | None = None,
) -> Checkpoint:
    """Copy the file or directory ``path`` into a new checkpoint of this task, with
    ``metadata`` (JSON) and the training ``step`` it was taken at; returns it. With
    ``keep``, only the newest ``keep`` checkpoints stay (older ones are deleted)."""
    source = os.fspath(path)
    if not os.path.exists(source):
        raise SpecError(f"nothing to checkpoint at {source!r}: no such file or directory", field="path")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise SpecError(f"step must be a whole number >= 0 or None, not {step!r}", field="step")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise SpecError(f"keep must be a whole number >= 1 or None, not {keep!r}", field="keep")
    meta = dict(metadata or {})
    try:
        json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"checkpoint metadata must be JSON: {exc}", field="metadata") from None
    where = _root(root)
    fs, base = _fs(where)
    fs.makedirs(base, exist_ok=True)
    attempt = int(os.environ.get("JUPYTER_ORCH_ATTEMPT") or 0)
    taken = {posixpath.basename(str(e).rstrip("/")) for e in fs.ls(base, detail=False)}
    seq = 1 + max((int(n.split("-", 1)[0]) for n in taken if n.split("-", 1)[0].isdigit()), default=0)
    ident = f"{seq:06d}-a{attempt}"
    target = _join(base, ident)
    name = os.path.basename(os.path.normpath(source)) or "checkpoint"
    files: list[str] = []
    size = 0
    if os.path.isdir(source):
        for dirpath, _dirs, names in os.walk(source):
            for each in sorted(names):
                full = os.path.join(dirpath, each)
                rel = posixpath.join(name, os.path.relpath(full, source).replace(os.sep, "/"))
                fs.makedirs(posixpath.dirname(_join(target, rel)), exist_ok=True)
                fs.put_file(full, _join(target, rel))
                files.append(rel)
                size += os.path.getsize(full)
    else:
        fs.makedirs(target, exist_ok=True)
        fs.put_file(source, _join(target, name))
        files.append(name)
        size = os.path.getsize(source)
    manifest = {
        "id": ident,
        "attempt": attempt,
        "step": step,
        "metadata": meta,
        "size": size,
        "files": files,
        "created": time.time(),
        "task_id": os.environ.get("JUPYTER_ORCH_TASK_ID"),
    }
    fs.pipe_file(_join(target, MANIFEST), json.dumps(manifest).encode())  # last: the checkpoint is whole
    if keep is not None:
        for old in _manifests(fs, base)[:-keep]:
            fs.rm(_join(base, str(old["id"])), recursive=True)
    local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
    return _checkpoint(manifest, where, local)


def restore_latest(
    dest: str | os.PathLike[str] | None = None, *, root: str | None = None
) -> Checkpoint | None:
    """The newest complete checkpoint of this task (from any earlier attempt), or None when
    there is none (a first attempt). Its files are read from ``.path`` (``.file`` is the
    saved file itself); with ``dest`` they are copied there first (a remote root is always
    copied: into ``dest`` or a temporary directory)."""
    found = latest(root)
    if found is None:
        return None
    if dest is None and found.path:
        return found
    target = os.fspath(dest) if dest is not None else tempfile.mkdtemp(prefix=f"orch-ckpt-{found.id}-")
    fs, base = _fs(_root(root))
    for rel in found.files:
        local = os.path.join(target, *rel.split("/"))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        source = _join(_join(base, found.id), rel)
        if found.path:  # a local root: a plain copy
            shutil.copyfile(source, local)
        else:
            fs.get_file(source, local)
    found.path = target
    return found
