"""Persistence for jupyter-orch: the SQL store of tasks, attempts, workers, tokens, blob
index, workflow runs, step cache and schedules (:class:`SqlStore`), and the on-disk blob and
log stores and the metric store.

Imports nothing from jupyter_orch but :mod:`jupyter_orch.core`.
"""

from __future__ import annotations

from .blobs import BlobStore, FileBlobStore, FileLogStore
from .database import make_engine
from .metricfiles import FileMetricStore
from .repository import SqlStore

__all__ = ["BlobStore", "FileBlobStore", "FileLogStore", "FileMetricStore", "SqlStore", "make_engine"]
