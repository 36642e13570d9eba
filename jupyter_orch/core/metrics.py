"""Metrics a task reports while it runs: what a report may hold, the point a report becomes
on the wire and in the store, and the series (and their downsampling) that readers get.

A *point* is ``[ts, step, group, {name: value}]``: ``ts`` a unix time, ``step`` an int >= 0
or None (a reader then uses the point's offset in the attempt as its x), ``group`` a short
name such as ``training`` or ``validation``, values ints or floats (a NaN or an infinity is
kept as None: a gap in the curve). Points are numbered per attempt from 0, like log lines.

Pure: no I/O. The worker validates a report with :func:`make_point` before it leaves the
task; the server checks what arrives with :func:`parse_point` (a worker is not trusted to
have done so) and serves series with :func:`series` and :func:`downsample`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError

DEFAULT_GROUP = "training"
MAX_NAME = 100
MAX_METRICS = 100
MAX_GROUP = 64
MAX_POINTS_DEFAULT = 1000  # a series longer than this is downsampled unless asked otherwise
MAX_POINTS_LIMIT = 100_000
_GROUP = re.compile(r"[A-Za-z0-9_.\-]+")
_RESERVED = frozenset({"ts", "step", "group", "attempt", "offset", "x"})  # record columns

Point = list[Any]
"""``[ts, step | None, group, {name: value | None}]``"""


def check_group(group: object, field_name: str = "group") -> str:
    if not isinstance(group, str) or not _GROUP.fullmatch(group) or len(group) > MAX_GROUP:
        raise SpecError(
            f"{field_name} must be a name of letters, digits, '_', '.' or '-' "
            f"(at most {MAX_GROUP} characters), not {group!r}",
            field=field_name,
        )
    return group


def check_name(name: object, field_name: str = "name") -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or not name.isprintable():
        raise SpecError(
            f"a metric name must be printable text of 1 to {MAX_NAME} characters, not {name!r}",
            field=field_name,
        )
    if name in _RESERVED:
        raise SpecError(
            f"{name!r} cannot name a metric: it is a column of every record ({', '.join(sorted(_RESERVED))})",
            field=field_name,
        )
    return name


def _value(name: str, value: object) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        # numpy scalars and 0-d arrays have __float__; anything else is refused
        as_float = getattr(value, "__float__", None)
        if isinstance(value, bool) or as_float is None or isinstance(value, (str, bytes)):
            raise SpecError(
                f"metric {name!r} must be a number, not {type(value).__name__} ({value!r:.60})",
                field=name,
            )
        try:
            value = float(as_float())
        except (TypeError, ValueError) as exc:
            raise SpecError(f"metric {name!r} must be a number: {exc}", field=name) from None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int) and abs(value) >= 2**53:
        return float(value)
    return value


def make_point(ts: float, step: object, group: object, metrics: Mapping[str, object]) -> Point:
    """Check one report and make its point; a :class:`SpecError` names what is wrong."""
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, int):
            as_index = getattr(step, "__index__", None)
            if as_index is None or isinstance(step, bool):
                raise SpecError(f"step must be a whole number >= 0 or None, not {step!r}", field="step")
            step = int(as_index())
        if step < 0 or step >= 2**53:
            raise SpecError(f"step must be a whole number >= 0, not {step}", field="step")
    group = check_group(DEFAULT_GROUP if group is None else group)
    if not metrics:
        raise SpecError("report at least one metric, e.g. report(step=1, loss=0.5)", field="metrics")
    if len(metrics) > MAX_METRICS:
        raise SpecError(f"at most {MAX_METRICS} metrics per report, not {len(metrics)}", field="metrics")
    values = {check_name(name): _value(name, value) for name, value in metrics.items()}
    return [float(ts), step, group, values]


def parse_point(raw: object) -> Point | None:
    """A point as a worker sent it, or None when it is malformed (the server drops it)."""
    if not isinstance(raw, (list, tuple)) or len(raw) != 4:
        return None
    ts, step, group, values = raw
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not isinstance(values, dict):
        return None
    # a gap (None) travels as such: the task turned a NaN or an infinity into it
    values = {name: math.nan if value is None else value for name, value in values.items()}
    try:
        return make_point(ts, step, group, values)
    except SpecError:
        return None


@dataclass
class Series:
    """One metric of one group (and attempt, when readers ask per attempt)."""

    name: str
    group: str
    attempt: int | None
    x: list[float] = field(default_factory=list)  # the step, or the point's offset
    y: list[float | None] = field(default_factory=list)
    count: int = 0  # points before downsampling

    def summary(self) -> dict[str, Any]:
        values = [v for v in self.y if v is not None]
        return {
            "last": self.y[-1] if self.y else None,
            "min": min(values) if values else None,
            "max": max(values) if values else None,
        }


def series(
    points: Iterable[tuple[int, int, Point]],
    *,
    names: Sequence[str] | None = None,
    group: str | None = None,
    per_attempt: bool = False,
) -> list[Series]:
    """Cut ``(attempt, offset, point)`` triples into one series per metric and group (and
    attempt, when ``per_attempt``). A point without a step has its offset as x. Series come
    in the order their metric first appeared."""
    out: dict[tuple[str, str, int | None], Series] = {}
    wanted = set(names) if names else None
    for attempt, offset, (_ts, step, grp, values) in points:
        if group is not None and grp != group:
            continue
        x = float(offset if step is None else step)
        for name, value in values.items():
            if wanted is not None and name not in wanted:
                continue
            key = (name, grp, attempt if per_attempt else None)
            s = out.get(key)
            if s is None:
                s = out[key] = Series(name, grp, key[2])
            s.x.append(x)
            s.y.append(value)
    for s in out.values():
        s.count = len(s.x)
    return list(out.values())


def downsample(
    xs: Sequence[float], ys: Sequence[float | None], n: int
) -> tuple[list[float], list[float | None]]:
    """At most ``n`` points that keep the shape of the curve: Largest-Triangle-Three-Buckets
    (Steinarsson 2013) over the finite values; gaps (None) are dropped once the series is cut
    down. The first and the last points are always kept."""
    if n < 3 or len(xs) <= n:
        if len(xs) <= n:
            return list(xs), list(ys)
        return [xs[0], xs[-1]][:n], [ys[0], ys[-1]][:n]
    px = [x for x, y in zip(xs, ys, strict=True) if y is not None]
    py = [y for y in ys if y is not None]
    if len(px) <= n:
        return px, list[float | None](py)
    out_x, out_y = [px[0]], [py[0]]
    bucket = (len(px) - 2) / (n - 2)
    a = 0
    for i in range(n - 2):
        start = int(i * bucket) + 1
        end = int((i + 1) * bucket) + 1
        nstart, nend = end, min(int((i + 2) * bucket) + 1, len(px))
        if nstart >= nend:  # the last bucket: the next "average" is the last point
            avg_x, avg_y = px[-1], py[-1]
        else:
            avg_x = sum(px[nstart:nend]) / (nend - nstart)
            avg_y = sum(py[nstart:nend]) / (nend - nstart)
        ax, ay = px[a], py[a]
        best, best_area = start, -1.0
        for j in range(start, max(end, start + 1)):
            area = abs((ax - avg_x) * (py[j] - ay) - (ax - px[j]) * (avg_y - ay))
            if area > best_area:
                best, best_area = j, area
        out_x.append(px[best])
        out_y.append(py[best])
        a = best
    out_x.append(px[-1])
    out_y.append(py[-1])
    return out_x, list[float | None](out_y)


def record(attempt: int, offset: int, point: Point) -> dict[str, Any]:
    """A point as a flat record: ``attempt, offset, ts, step, group`` and one key per metric
    (the shape of a DataFrame row)."""
    ts, step, group, values = point
    return {"attempt": attempt, "offset": offset, "ts": ts, "step": step, "group": group, **values}
