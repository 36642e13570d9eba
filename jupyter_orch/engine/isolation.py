"""Writing a batch so that one unit's bad data fails only that unit (on the database thread).

A *unit* is what is stored together or not at all: a task with its attempts, blobs and
cache entry (keyed by the task id), a workflow run with its steps until their first
commit (bound by the journal), a worker. The batch is written in one transaction; if
the database refuses it for its data, it is split in halves by unit and each half
written on its own, down to the units that cannot be stored (about ``2 k log n``
transactions for ``k`` bad units among ``n``, and only when something failed). Blobs are
written first, each on its own: a blob that cannot be written (a full or read-only disk)
rejects its unit, so no row ever names a blob that is not there.

An unavailable database (:class:`Unavailable`) stops the split: what was not stored yet
is handed back as ``leftover`` for the journal to retry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from ..core.errors import Unavailable
from ..core.records import (
    Change,
    InsertAttempt,
    InsertBlob,
    InsertTask,
    SaveCacheEntry,
    SaveRun,
    UpdateAttempt,
    UpdateTask,
    UpsertWorker,
)


class Sink(Protocol):
    def apply(self, changes: Sequence[Change], *, wait: bool = True) -> None: ...


class BlobSink(Protocol):
    def put(self, key: str, data: bytes | memoryview) -> int: ...


class BlobWrite(NamedTuple):
    key: str
    data: bytes | memoryview
    unit: str  # what fails with it: the task the blob belongs to


@dataclass
class Outcome:
    """What became of a batch: the units that cannot be stored (with why), and, when the
    database became unavailable, the error and the changes not stored yet."""

    rejected: dict[str, BaseException] = field(default_factory=dict)
    unavailable: Unavailable | None = None
    leftover: list[Change] = field(default_factory=list)


def change_key(change: Change) -> str:
    """The key a change is stored under: its task's id, ``run:<id>`` or ``worker:<id>``."""
    if isinstance(change, (InsertTask, UpdateTask)):
        return change.row.spec.id
    if isinstance(change, (InsertAttempt, UpdateAttempt)):
        return change.row.task_id
    if isinstance(change, InsertBlob):
        return change.task_id or change.key
    if isinstance(change, SaveCacheEntry):
        return change.task_id
    if isinstance(change, SaveRun):
        return "run:" + change.row.id
    if isinstance(change, UpsertWorker):
        return "worker:" + change.row.id
    return repr(change)


def unit_key(change: Change, units: Mapping[str, str]) -> str:
    key = change_key(change)
    return units.get(key, key)


def write_isolated(
    store: Sink,
    blobs: BlobSink,
    changes: list[Change],
    blob_writes: Sequence[BlobWrite],
    units: Mapping[str, str],
) -> Outcome:
    outcome = Outcome()
    for write in blob_writes:
        try:
            blobs.put(write.key, write.data)
        except OSError as exc:
            outcome.rejected[units.get(write.unit, write.unit)] = _blob_error(write, exc)
    if outcome.rejected:
        changes = [c for c in changes if unit_key(c, units) not in outcome.rejected]
    if not changes:
        return outcome
    try:
        store.apply(changes)
        return outcome
    except Unavailable as exc:
        outcome.unavailable, outcome.leftover = exc, changes
        return outcome
    except Exception as exc:
        first = exc
    groups: dict[str, list[Change]] = {}
    for change in changes:
        groups.setdefault(unit_key(change, units), []).append(change)
    order = list(groups.items())
    if len(order) == 1:
        outcome.rejected[order[0][0]] = first
        return outcome
    stored: set[str] = set()
    try:
        mid = len(order) // 2
        _split(store, order[:mid], outcome, stored)
        _split(store, order[mid:], outcome, stored)
    except Unavailable as exc:
        outcome.unavailable = exc
        outcome.leftover = [c for u, cs in order if u not in stored and u not in outcome.rejected for c in cs]
    return outcome


def _split(store: Sink, part: list[tuple[str, list[Change]]], outcome: Outcome, stored: set[str]) -> None:
    try:
        store.apply([c for _, cs in part for c in cs])
    except Unavailable:
        raise
    except Exception as exc:
        if len(part) == 1:
            outcome.rejected[part[0][0]] = exc
            return
        mid = len(part) // 2
        _split(store, part[:mid], outcome, stored)
        _split(store, part[mid:], outcome, stored)
        return
    stored.update(u for u, _ in part)


def _blob_error(write: BlobWrite, exc: OSError) -> Unavailable:
    """A blob that cannot be written, in words that name the disk's problem."""
    why = exc.strerror or str(exc)
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    return Unavailable(f"could not write {write.key} ({len(write.data)} bytes): {why}{where}")


def describe(exc: BaseException) -> str:
    """One line for a rejected change's error."""
    message: Any = getattr(exc, "message", None)
    if isinstance(message, str):
        return message
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
