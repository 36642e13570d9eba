"""``jupyter_orch.output(name, value)``: a value a notebook records for later workflow steps
and the API. It is a display output of its own MIME type, so it is kept inside the executed
notebook itself (like scrapbook's glue) and shows as ``name = value`` to a reader. This
module builds and reads that output; :mod:`jupyter_orch.kernel.record` publishes it from
the running kernel."""

from __future__ import annotations

import json
from typing import Any

OUTPUT_MIME = "application/vnd.jupyter-orch.output+json"


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
