"""Workflow steps on the worker: their ``{{ ... }}`` templates filled in from the run's
context and the upstream results that came with the assignment, and function steps called
by reference (``module:function`` with keyword parameters).

A step's outputs, as later steps name them (``tasks.STEP.outputs.NAME``): what a notebook
recorded with ``jupyter_orch.output``; the keys of the mapping a function returned (any
other value is ``outputs.result``); a shell step records none. A step fanned out by
``matrix`` gives each output as a list, one value per expansion, in matrix order.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from .. import serialization
from ..core.errors import SpecError
from ..core.templates import render


class StepError(Exception):
    """A step that cannot start: ``kind`` is the task's error kind."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def outputs_of(data: bytes | None) -> dict[str, Any]:
    """What an upstream step passes on, from its result bytes."""
    if not data:
        return {}
    raw = bytes(data)
    if raw[:1] == b"{":  # a notebook step's JSON result
        try:
            result = json.loads(raw)
        except ValueError:
            result = None
        if isinstance(result, dict) and "notebook" in result:
            return dict(result.get("outputs") or {})
    value = serialization.loads_value(raw)
    if value is None:  # a shell step (or a function returning nothing)
        return {}
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return dict(value)
    return {"result": value}


def context(step: Mapping[str, Any], blobs: Mapping[str, bytes]) -> dict[str, Any]:
    """The templates' context: the run's ``params`` and ``run``, and each upstream step's
    ``outputs`` (from the ``dep:<task id>`` blobs)."""
    ctx = dict(step.get("context") or {})
    tasks: dict[str, Any] = {}
    for name, ref in (step.get("refs") or {}).items():
        try:
            if isinstance(ref, list):
                each = [outputs_of(blobs.get(f"dep:{task_id}")) for task_id in ref]
                keys = list(dict.fromkeys(k for outputs in each for k in outputs))
                tasks[name] = {"outputs": {k: [outputs.get(k) for outputs in each] for k in keys}}
            else:
                tasks[name] = {"outputs": outputs_of(blobs.get(f"dep:{ref}"))}
        except Exception as exc:
            raise StepError(
                "environment", f"the result of upstream step {name!r} could not be read here: {exc}"
            ) from exc
    ctx["tasks"] = tasks
    return ctx


def fill(value: Any, step: Mapping[str, Any], blobs: Mapping[str, bytes], where: str) -> Any:
    """``value`` with its templates filled in; :class:`StepError` naming what is missing."""
    try:
        return render(value, context(step, blobs), where)
    except SpecError as exc:
        raise StepError("template", exc.message) from None


def resolve(target: str, sys_path: list[str]) -> Any:
    """The function a ``module:function`` reference names (the workflow's directory first
    on the import path, when it is there)."""
    for entry in reversed(sys_path):
        if isinstance(entry, str) and os.path.isdir(entry) and entry not in sys.path:
            sys.path.insert(0, entry)
    module_name, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise StepError(
            "environment", f"function {target}: module {module_name!r} cannot be imported here ({exc})"
        ) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise StepError("bad_payload", f"function {target}: {module_name} has no {attr!r}") from None
    if not callable(obj):
        raise StepError("bad_payload", f"function {target} is a {type(obj).__name__}, not a function")
    return obj
