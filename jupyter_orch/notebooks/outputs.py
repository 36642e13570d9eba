"""``jupyter_orch.output(name, value)``: a value a notebook records for later workflow steps
and the API. It is a display output of its own MIME type, so it is kept inside the executed
notebook itself (like scrapbook's glue) and shows as ``name = value`` to a reader. This
module builds and reads that output; :mod:`jupyter_orch.kernel.record` publishes it from
the running kernel.

``jupyter_orch.report(...)`` in a notebook task's kernel publishes its point as a display
output of :data:`METRIC_MIME` too (:mod:`jupyter_orch.metrics_report`); the runner takes
those out of the notebook (:func:`metric_point`) and sends them to the worker instead."""

from __future__ import annotations

import json
from typing import Any

OUTPUT_MIME = "application/vnd.jupyter-orch.output+json"
METRIC_MIME = "application/vnd.jupyter-orch.metric+json"
METRICS_MODE_ENV = "JUPYTER_ORCH_METRICS"
"""Set to ``display`` in a notebook task's kernel: ``jupyter_orch.report()`` publishes there."""


def output_bundle(name: str, value: Any) -> dict[str, Any]:
    """The display data recording ``value`` as output ``name``; a clear error for a name
    that is not an identifier or a value that is not JSON."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"an output name must be an identifier, not {name!r}")
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"output {name!r} must be JSON (numbers, strings, lists, dicts), not {type(value).__name__}; "
            "write large or binary data to a file in $ORCH_RUN_DIR and record its path"
        ) from None
    return {OUTPUT_MIME: {"name": name, "value": value}, "text/plain": f"{name} = {value!r}"}


def metric_point(msg: dict[str, Any]) -> Any | None:
    """The point a kernel message carries when it is a metric report (a ``display_data``
    of :data:`METRIC_MIME`), else None."""
    if msg.get("msg_type") != "display_data":
        return None
    data = (msg.get("content") or {}).get("data")
    if not isinstance(data, dict):
        return None
    return data.get(METRIC_MIME)
