"""How the API's views of workers and tasks show themselves to a person: ``client.workers()``
and ``Future.info()`` return these (a ``list`` and ``dict`` subclasses whose items are the
API's values, unchanged: bytes, epoch seconds, ids), so code that indexes them works as
before, while ``repr()`` and a notebook's display read as sizes (``15.5 GiB``), local times
(``2025-03-01 14:02:11, 3 min ago``) and durations (``1 min 5 s``).

Pure formatting: no I/O, no IPython import (``_repr_html_`` is what a notebook asks for)."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

__all__ = ["TaskInfo", "WorkerInfo", "Workers", "human_ago", "human_duration", "human_size", "human_time"]


# ------------------------------------------------------------------ values as words


def human_size(nbytes: Any) -> str:
    """``1536`` -> ``1.5 KiB``; ``None`` or 0 -> ``-``."""
    if not isinstance(nbytes, (int, float)) or isinstance(nbytes, bool) or nbytes <= 0:
        return "-"
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    value, i = float(nbytes), 0
    while value >= 1024 and i < len(units) - 1:
        value /= 1024
        i += 1
    unit = units[i]
    if unit == "B":
        return f"{int(value)} B"
    return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"


def human_duration(seconds: Any) -> str:
    """``0.25`` -> ``250 ms``; ``65`` -> ``1 min 5 s``; ``7260`` -> ``2 h 1 min``."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
        return "-"
    if seconds < 0.001:
        return "under 1 ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    whole = int(round(seconds))
    if whole < 3600:
        minutes, secs = divmod(whole, 60)
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, rest = divmod(whole, 3600)
    minutes = rest // 60
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def human_ago(ts: Any, now: float | None = None) -> str:
    """How long ago epoch time ``ts`` was: ``just now``, ``42 s ago``, ``3 min ago``, ``2 h ago``,
    ``5 days ago`` (``in 3 min`` for a time ahead)."""
    if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not ts:
        return "-"
    delta = (time.time() if now is None else now) - ts
    ahead = delta < 0
    d = abs(delta)
    if d < 1:
        return "just now"
    if d < 60:
        words = f"{d:.0f} s"
    elif d < 3600:
        words = f"{d // 60:.0f} min"
    elif d < 86400:
        words = f"{d // 3600:.0f} h"
    else:
        days = int(d // 86400)
        words = f"{days} day" + ("s" if days != 1 else "")
    return f"in {words}" if ahead else f"{words} ago"


def human_time(ts: Any, now: float | None = None) -> str:
    """Epoch time ``ts`` as local ISO time to the second, and how long ago:
    ``2025-03-01 14:02:11 (3 min ago)``; ``None`` -> ``-``."""
    if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not ts:
        return "-"
    stamp = datetime.fromtimestamp(ts).isoformat(sep=" ", timespec="seconds")
    return f"{stamp} ({human_ago(ts, now)})"


def _resources(r: Any) -> str:
    if not isinstance(r, dict):
        return "-"
    parts = []
    if r.get("gpus"):
        parts.append(
            f"{r['gpus']} GPU"
            + ("s" if r["gpus"] != 1 else "")
            + (f" ({r['gpu_type']})" if r.get("gpu_type") else "")
        )
    if r.get("cpus") is not None:
        parts.append(f"{r['cpus']:g} CPU" + ("s" if r["cpus"] > 1 else ""))
    if r.get("memory"):
        memory = r["memory"]
        parts.append(f"{human_size(memory) if isinstance(memory, (int, float)) else memory} memory")
    if r.get("labels"):
        parts.append(", ".join(f"{k}={v}" for k, v in sorted(r["labels"].items())))
    return ", ".join(parts) or "-"


# ------------------------------------------------------------------ shared shape


class _Shown(dict):  # type: ignore[type-arg]
    """A dict of the API's view, shown as labelled lines (text) or a small table (HTML).
    Subclasses give ``_title()`` and ``_lines()``: ``[(label, text), ...]``."""

    _what = "view"

    def _title(self) -> str:  # pragma: no cover - every subclass has its own
        return self._what

    def _lines(self) -> list[tuple[str, str]]:  # pragma: no cover
        return []

    def __repr__(self) -> str:
        lines = self._lines()
        width = max((len(label) for label, _ in lines), default=0)
        body = [f"  {label.ljust(width)}  {text}" for label, text in lines]
        return "\n".join([self._title(), *body, f"  ({self._hint()})"])

    __str__ = __repr__

    def _hint(self) -> str:
        """Where the raw values are: it is a dict."""
        return f"a dict of the API's values: [{', '.join(repr(k) for k in list(self)[:6])}, ...]"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(f"{type(self).__name__}(...)" if cycle else repr(self))

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left;padding-right:1em;vertical-align:top'>{html.escape(label)}</th>"
            f"<td style='text-align:left'>{html.escape(text)}</td></tr>"
            for label, text in self._lines()
        )
        return (
            f"<div class='jp-OrchView'><strong>{html.escape(self._title())}</strong>"
            f"<table>{rows}</table>"
            f"<div style='opacity:0.7;font-size:smaller'>{html.escape(self._hint())}</div></div>"
        )


# ------------------------------------------------------------------ workers


def _gpu_line(g: dict[str, Any]) -> str:
    total = g.get("memory_total") or g.get("memory")
    parts = [str(g.get("model") or "GPU"), human_size(total)]
    if isinstance(g.get("utilization"), (int, float)):
        parts.append(f"util {g['utilization']:.0f}%")
    if isinstance(g.get("memory_used"), (int, float)):
        parts.append(f"mem {human_size(g['memory_used'])} of {human_size(total)}")
    if g.get("task_id"):
        parts.append(f"task {g['task_id']}")
    elif g.get("busy"):
        parts.append("in use")
    else:
        parts.append("free")
    return " · ".join(parts)


class WorkerInfo(_Shown):
    """One worker as ``GET /workers`` describes it (``memory`` in bytes, times in epoch
    seconds), shown with sizes and local times."""

    _what = "worker"

    def _title(self) -> str:
        where = " · ".join(
            str(x) for x in (self.get("state"), self.get("provider"), self.get("hostname")) if x
        )
        return f"Worker {self.get('name') or self.get('id')} ({self.get('id')}) · {where}"

    def _lines(self) -> list[tuple[str, str]]:
        used, slots = self.get("slots_used"), self.get("slots")
        running = list(self.get("running") or [])
        lines = [
            ("slots", f"{used} of {slots} in use" + (f": {', '.join(running)}" if running else "")),
            ("CPUs", f"{self.get('cpus', 0):g}" if isinstance(self.get("cpus"), (int, float)) else "-"),
            ("memory", human_size(self.get("memory"))),
        ]
        for g in self.get("gpus") or []:
            lines.append((f"GPU {g.get('index')}", _gpu_line(g)))
        m = self.get("metrics") or {}
        load = []
        if isinstance(m.get("cpu_percent"), (int, float)):
            load.append(f"CPU {m['cpu_percent']:.0f}%")
        if isinstance(m.get("memory_used"), (int, float)):
            load.append(f"RAM {human_size(m['memory_used'])} of {human_size(m.get('memory_total'))}")
        if load:
            lines.append(("load", " · ".join(load)))
        if self.get("labels"):
            lines.append(("labels", ", ".join(f"{k}={v}" for k, v in sorted(self["labels"].items()))))
        if self.get("owner") or self.get("group"):
            lines.append(
                (
                    "for",
                    " · ".join(
                        x for x in (self.get("owner"), self.get("group") and f"group {self['group']}") if x
                    ),
                )
            )
        lines.append(("connected", human_time(self.get("connected_at"))))
        lines.append(("last seen", human_ago(self.get("last_seen"))))
        if self.get("disconnected_at"):
            lines.append(("disconnected", human_time(self.get("disconnected_at"))))
        return lines

    def _hint(self) -> str:
        return (
            "a dict of the API's values (bytes, epoch seconds): w['memory'], w['gpus'], w['last_seen'], ..."
        )


class Workers(list):  # type: ignore[type-arg]
    """``client.workers()``: a list of :class:`WorkerInfo`, shown as one table."""

    def __init__(self, views: Iterable[dict[str, Any]] = ()) -> None:
        super().__init__(v if isinstance(v, WorkerInfo) else WorkerInfo(v) for v in views)

    _COLUMNS = ("name", "state", "slots", "CPUs", "memory", "GPUs", "load", "last seen")

    def _rows(self) -> list[tuple[str, ...]]:
        rows = []
        for w in self:
            m = w.get("metrics") or {}
            load = []
            if isinstance(m.get("cpu_percent"), (int, float)):
                load.append(f"CPU {m['cpu_percent']:.0f}%")
            if isinstance(m.get("memory_used"), (int, float)) and m.get("memory_total"):
                load.append(f"RAM {100 * m['memory_used'] / m['memory_total']:.0f}%")
            gpus = w.get("gpus") or []
            rows.append(
                (
                    str(w.get("name") or w.get("id")),
                    str(w.get("state", "")),
                    f"{w.get('slots_used')}/{w.get('slots')}",
                    f"{w['cpus']:g}" if isinstance(w.get("cpus"), (int, float)) else "-",
                    human_size(w.get("memory")),
                    ", ".join(f"{g.get('index')}: {g.get('model') or 'GPU'}" for g in gpus) or "-",
                    " ".join(load) or "-",
                    human_ago(w.get("last_seen")),
                )
            )
        return rows

    def __repr__(self) -> str:
        if not self:
            return "no workers (Workers: an empty list)"
        rows = [self._COLUMNS, *self._rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self._COLUMNS))]
        text = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        count = f"{len(self)} worker" + ("s" if len(self) != 1 else "")
        return "\n".join(
            [count, *text, "(a list of dicts of the API's values: workers[0]['memory'] is in bytes)"]
        )

    __str__ = __repr__

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text("Workers(...)" if cycle else repr(self))

    def _repr_html_(self) -> str:
        if not self:
            return "<em>no workers</em>"
        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in self._COLUMNS)
        body = "".join(
            "<tr>"
            + "".join(f"<td style='text-align:left'>{html.escape(cell)}</td>" for cell in row)
            + "</tr>"
            for row in self._rows()
        )
        return (
            f"<table class='jp-OrchWorkersTable'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )


# ------------------------------------------------------------------ tasks


class TaskInfo(_Shown):
    """One task as ``GET /tasks/{id}`` describes it (attempts included; times in epoch
    seconds, sizes in bytes), shown with local times, durations and sizes."""

    _what = "task"

    def _title(self) -> str:
        facts = " · ".join(
            str(x)
            for x in (self.get("state"), self.get("kind"), self.get("owner") and f"owner {self['owner']}")
            if x
        )
        return f"Task {self.get('name') or self.get('id')} ({self.get('id')}) · {facts}"

    def _lines(self) -> list[tuple[str, str]]:
        lines = [("resources", _resources(self.get("resources")))]
        if self.get("reason"):
            lines.append(("reason", str(self["reason"])))
        if self.get("error"):
            lines.append(
                ("error", f"{self['error']}" + (f" ({self['error_kind']})" if self.get("error_kind") else ""))
            )
        lines.append(("created", human_time(self.get("created_at"))))
        if self.get("started_at"):
            lines.append(("started", human_time(self["started_at"])))
        if self.get("ended_at"):
            lines.append(("ended", human_time(self["ended_at"])))
        took = self.get("duration")
        if took is None and self.get("state") == "running" and self.get("started_at"):
            lines.append(("running for", human_duration(time.time() - self["started_at"])))
        elif took is not None:
            lines.append(("took", human_duration(took)))
        if self.get("worker_id"):
            gpus = self.get("gpus") or []
            lines.append(
                ("worker", str(self["worker_id"]) + (f" · GPUs {', '.join(map(str, gpus))}" if gpus else ""))
            )
        for a in self.get("attempts") or []:
            end, start = a.get("ended_at"), a.get("started_at")
            took_a = human_duration(end - start) if end and start else ""
            text = " · ".join(
                x
                for x in (
                    str(a.get("state", "")),
                    a.get("worker_id") and f"on {a['worker_id']}",
                    took_a,
                    a.get("exit_code") is not None and f"exit {a['exit_code']}",
                    a.get("error") and str(a["error"]),
                )
                if x
            )
            lines.append((f"attempt {a.get('number')}", text))
        if self.get("retry_at"):
            lines.append(("retry at", human_time(self["retry_at"])))
        sizes = []
        if self.get("payload_size"):
            sizes.append(f"payload {human_size(self['payload_size'])}")
        if self.get("result_size"):
            sizes.append(f"result {human_size(self['result_size'])}")
        if sizes:
            lines.append(("sizes", " · ".join(sizes)))
        if self.get("depends"):
            lines.append(("depends on", ", ".join(self["depends"])))
        return lines

    def _hint(self) -> str:
        return "a dict of the API's values (epoch seconds, bytes): info['state'], info['attempts'], info['created_at'], ..."
