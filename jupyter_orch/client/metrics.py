"""Reading what a task reported with ``jupyter_orch.report``: its metric records, every
page of ``GET /tasks/{id}/metrics?format=records``, as dicts (``attempt, offset, ts, step,
group`` and one key per metric) or as a pandas DataFrame (one row per report).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .http import HttpApi

PAGE = 10_000  # records per request (the server's largest page)
COLUMNS = ["attempt", "offset", "ts", "step", "group"]


def fetch_records(
    api: HttpApi,
    task_id: str,
    *,
    attempt: int | None = None,
    group: str | None = None,
    names: str | Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Every record of the task (of ``attempt``, ``group`` and ``names`` when given), in
    order of attempt and offset."""
    wanted = [names] if isinstance(names, str) else list(names or [])
    out: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = api.get(
            f"/tasks/{task_id}/metrics",
            format="records",
            limit=PAGE,
            attempt=attempt,
            group=group,
            name=wanted or None,
            after=after,
        )
        out.extend(page["records"])
        after = page.get("next")
        if not after:
            return out


def to_frame(records: list[dict[str, Any]]) -> Any:
    """Records as a pandas DataFrame: the columns ``attempt, offset, ts, step, group``, then
    one per metric in the order they were first reported (``ts`` as UTC datetimes)."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            "metrics(frame=True) needs pandas: pip install pandas (or call metrics() for a list of dicts)"
        ) from None
    names: dict[str, None] = {}
    for rec in records:
        for key in rec:
            if key not in COLUMNS:
                names.setdefault(key)
    frame = pd.DataFrame.from_records(records, columns=[*COLUMNS, *names])
    frame["ts"] = pd.to_datetime(frame["ts"], unit="s", utc=True)
    frame["step"] = frame["step"].astype("Int64")  # a report without a step: <NA>
    return frame


def read_metrics(
    api: HttpApi,
    task_id: str,
    *,
    frame: bool = False,
    attempt: int | None = None,
    group: str | None = None,
    names: str | Sequence[str] | None = None,
) -> Any:
    records = fetch_records(api, task_id, attempt=attempt, group=group, names=names)
    return to_frame(records) if frame else records
