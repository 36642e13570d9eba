"""A remote task's output, shown in the running cell as if the cell printed it: stdout and
stderr lines to the kernel's streams, display lines as rich outputs, in the order they
were written."""

from __future__ import annotations

import json
import sys
from typing import Any


def show_line(line: dict[str, Any]) -> None:
    stream, text = line.get("stream"), str(line.get("text", ""))
    if stream == "display":
        try:
            bundle = json.loads(text)
        except ValueError:
            return
        from IPython.display import publish_display_data

        publish_display_data(bundle.get("data") or {}, bundle.get("metadata") or {})
        return
    out = sys.stderr if stream == "stderr" else sys.stdout
    out.write(text if text.endswith("\r") else text + "\n")  # a lone \\r keeps a progress bar live
    out.flush()
