"""The query of ``GET /tasks/{id}/metrics``, read and checked: every bad parameter is a
:class:`SpecError` naming it (a 400). Names and groups follow the rules reports follow
(:func:`jupyter_orch.core.metrics.check_name`, :func:`~jupyter_orch.core.metrics.check_group`)."""

from __future__ import annotations

import re
from typing import Any

from ..core.errors import SpecError
from ..core.metrics import MAX_POINTS_DEFAULT, MAX_POINTS_LIMIT, check_group, check_name
from ..engine.metricreads import RECORDS_DEFAULT, RECORDS_LIMIT, MetricQuery

FORMATS = ("series", "records")
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
CURSOR = re.compile(r"([0-9]{1,18}):([0-9]{1,18})")  # "ATTEMPT:OFFSET", as a records answer's `next`


def metric_query(handler: Any) -> MetricQuery:
    """The query of a request to ``handler`` (an ``OrchAPIHandler``: its ``int_arg``)."""
    group = handler.get_query_argument("group", None, strip=False)
    names = handler.get_query_arguments("name", strip=False)
    fmt = handler.get_query_argument("format", "series", strip=False)
    if fmt not in FORMATS:
        raise SpecError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}", field="format")
    per_attempt = handler.get_query_argument("per_attempt", "false", strip=False)
    if per_attempt not in BOOLEANS:
        raise SpecError(f"per_attempt must be true or false, not {per_attempt!r}", field="per_attempt")
    after = None
    raw_after = handler.get_query_argument("after", None, strip=False)
    if raw_after is not None:
        match = CURSOR.fullmatch(raw_after)
        if match is None:
            raise SpecError(
                f"after must be a cursor ATTEMPT:OFFSET (a records answer's `next`), not {raw_after!r}",
                field="after",
            )
        after = (int(match[1]), int(match[2]))
    return MetricQuery(
        attempt=handler.int_arg("attempt", None, 1),
        group=None if group is None else check_group(group, "group"),
        names=tuple(dict.fromkeys(check_name(n, "name") for n in names)),
        max_points=handler.int_arg("max_points", MAX_POINTS_DEFAULT, 1, MAX_POINTS_LIMIT),
        per_attempt=BOOLEANS[per_attempt],
        records=fmt == "records",
        limit=handler.int_arg("limit", RECORDS_DEFAULT, 1, RECORDS_LIMIT),
        after=after,
    )
