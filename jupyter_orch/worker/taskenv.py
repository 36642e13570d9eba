"""The executor's process environment around a task: a cheap snapshot of ``os.environ``,
the task's own variables as strings, and putting the environment back after it."""

from __future__ import annotations

import os
from typing import Any

RAW = isinstance(getattr(os.environ, "_data", None), dict)  # CPython keeps the raw pairs there


def environ_snapshot() -> dict[Any, Any]:
    """The environment as it is now; a plain dict copy of CPython's own table when there is
    one (a thousand times cheaper than decoding every variable, as ``dict(os.environ)`` does)."""
    return dict(os.environ._data) if RAW else dict(os.environ)  # type: ignore[attr-defined]


def string_env(env: Any) -> dict[str, str]:
    if not isinstance(env, dict):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def restore_environ(environ: dict[Any, Any], task_env: Any = None) -> None:
    """Put back the environment of ``environ`` (an :func:`environ_snapshot`): the keys set for
    the task first, cheaply, then every key if the task changed others itself."""
    for key in task_env if isinstance(task_env, dict) else ():  # what we set for it: cheaply
        raw = environ.get(os.fsencode(str(key)) if RAW else str(key))
        if raw is None:
            os.environ.pop(str(key), None)
        else:
            os.environ[str(key)] = os.fsdecode(raw) if RAW else raw
    if environ_snapshot() != environ:  # the task changed it itself: put every key back
        current = os.environ
        before = {os.fsdecode(k): os.fsdecode(v) for k, v in environ.items()} if RAW else environ
        for key in [k for k in current if k not in before]:
            del current[key]
        for key, value in before.items():
            if current.get(key) != value:
                current[key] = value
