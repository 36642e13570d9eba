"""A remote task's output, shown in the running cell as if the cell printed it: stdout and
stderr lines to the kernel's streams, display lines as rich outputs, in the order they
were written."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

# a number in a reason ("3rd in line", "0.4 GPU-hours"), but "1st": the turn worth saying again
_COUNT = re.compile(r"\b(?!1st\b)\d+(?:\.\d+)?(?:st|nd|rd|th)?\b")


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


def waiting_text(reason: str) -> str:
    """A pending task's reason as a phrase that starts with "waiting" (the scheduler's own
    sentences already do: "waiting: 2nd in line for GPUs ...")."""
    return reason if reason.startswith("waiting") else f"waiting: {reason}"


def reason_key(reason: str) -> str:
    """What a reason says, less its counts: a cell says a place in line once, and again
    when the task is next, not at every step the line moves."""
    return _COUNT.sub("#", reason)
