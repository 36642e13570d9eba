"""Filling in a workflow step's ``{{ ... }}`` templates: ``params.NAME``,
``tasks.STEP.outputs.NAME`` (what an upstream notebook recorded) and ``run.id`` / ``run.dir``.

A value that is exactly one template takes the referenced value with its type (``"{{
params.rows }}"`` is the int 2000); a template inside a longer string is written into it
(``"--out {{ run.dir }}/x"``). Lists and mappings are filled in throughout. A reference
that cannot be resolved is a :class:`SpecError` naming it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .errors import SpecError

TEMPLATE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_WHOLE = re.compile(r"^\s*\{\{\s*([^{}]*?)\s*\}\}\s*$")


def render(value: Any, context: Mapping[str, Any], where: str = "parameters") -> Any:
    """``value`` with every template filled in from ``context`` (``params``, ``tasks``, ``run``)."""
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole:
            return lookup(whole.group(1), context, where)
        return TEMPLATE.sub(lambda m: _text(lookup(m.group(1), context, where)), value)
    if isinstance(value, Mapping):
        return {k: render(v, context, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def lookup(ref: str, context: Mapping[str, Any], where: str = "parameters") -> Any:
    """The value a dotted reference names (a step name may contain dots: the longest
    matching key wins)."""
    parts = ref.split(".")
    node: Any = context
    i = 0
    while i < len(parts):
        if not isinstance(node, Mapping):
            break
        for j in range(len(parts), i, -1):  # longest key first: "sweep[lr=0.1]" has no dots, "a.b" may
            key = ".".join(parts[i:j])
            if key in node:
                node, i = node[key], j
                break
        else:
            break
    else:
        return node
    raise SpecError(f"{where}: {{{{ {ref} }}}} has no value here ({_missing(parts[: i + 1])})", field=where)


def _missing(parts: list[str]) -> str:
    if parts and parts[0] == "tasks" and len(parts) >= 4:
        return f"step {parts[1]!r} recorded no output {parts[3]!r}"
    return f"nothing is called {'.'.join(parts)!r}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
