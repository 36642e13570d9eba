"""Workflow parameters: typed by their defaults (or declared), overridden at submit from
``-p name=value`` text or JSON values, refused with the param's name when the type is wrong."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import SpecError

PARAM_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "float": (int, float),
    "bool": bool,
    "list": list,
    "dict": dict,
}


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: Any
    description: str = ""


def type_name(value: Any) -> str:
    for name in ("bool", "int", "float", "str", "list", "dict"):
        if is_type(value, name):
            return name
    return "str"


def is_type(value: Any, kind: str) -> bool:
    if kind in ("int", "float") and isinstance(value, bool):
        return False
    return isinstance(value, PARAM_TYPES[kind])


def coerce(param: Param, value: Any) -> Any:
    """``value`` (from ``-p name=value`` text or from JSON) as the param's type; SpecError
    naming the param when it is not one."""
    if isinstance(value, str) and param.type != "str":
        text = value.strip()
        try:
            if param.type == "bool":
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                value = text.lower() in ("true", "1", "yes")
            elif param.type == "int":
                value = int(text)
            elif param.type == "float":
                value = float(text)
            else:
                value = json.loads(text)
        except ValueError:
            raise SpecError(
                f"param {param.name} must be {_a(param.type)}, not {value!r}", field=f"params.{param.name}"
            ) from None
    if not is_type(value, param.type):
        raise SpecError(
            f"param {param.name} must be {_a(param.type)}, not {value!r}", field=f"params.{param.name}"
        )
    return float(value) if param.type == "float" else value


def apply_params(params: Mapping[str, Param], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run's parameter values: defaults, then ``overrides`` (checked and typed)."""
    values = {name: p.default for name, p in params.items()}
    for name, value in (overrides or {}).items():
        if name not in params:
            known = ", ".join(sorted(params)) or "none"
            raise SpecError(
                f"unknown param {name!r} (this workflow's params: {known})", field=f"params.{name}"
            )
        values[name] = coerce(params[name], value)
    missing = [n for n, v in values.items() if v is None]
    if missing:
        raise SpecError(f"param {missing[0]} has no default and was not given", field=f"params.{missing[0]}")
    return values


def _a(kind: str) -> str:
    return f"an {kind}" if kind == "int" else f"a {kind}"
