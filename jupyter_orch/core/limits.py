"""Input limits: how large or deep anything a user sends may be, and the checks that apply
them before anything reaches the engine.

Every limit is documented (docs/reliability.md, the OpenAPI document) and every refusal
names its field: 400 ``invalid`` for a malformed or too-deep value, 413 ``too_large`` for
one over a size limit. Strings must be text a database can store: no lone UTF-16
surrogates anywhere, and no NUL character in fields stored as text columns.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .errors import SpecError, TooLarge

MAX_NAME = 200  # characters: a task's or step's name
MAX_COMMAND = 64 * 1024  # characters: a shell task's command
MAX_IMAGE = 512  # characters: a container image reference
MAX_LABELS = 64  # labels on one task or worker
MAX_LABEL_KEY = 253  # characters (a Kubernetes label key: prefix/name)
MAX_LABEL_VALUE = 253  # characters
MAX_ENV = 256  # environment variables of one task
MAX_ENV_BYTES = 256 * 1024  # all of a task's environment together (names and values, UTF-8)
MAX_METADATA_BYTES = 256 * 1024  # a task's metadata, as compact JSON (UTF-8)
MAX_DEPENDS = 10_000  # dependencies of one task
MAX_PRIORITY = 1_000_000_000  # |priority| (the database keeps it as a 32-bit integer)
MAX_RETRIES = 1_000  # automatic retries of one task
MAX_GPUS = 1_024  # GPUs one task asks for
MAX_BATCH = 10_000  # tasks in one submit request
MAX_DEPTH = 32  # nesting of objects and arrays in any JSON body or value
MAX_BODY_BYTES = 64 * 1024 * 1024  # a JSON request body (configurable: c.OrchApp.max_body_bytes)
MAX_WORKFLOW_BYTES = 16 * 1024 * 1024  # a workflow file's text
MAX_YAML_ALIAS_NODES = 10_000  # nodes reached through YAML aliases in one workflow file

LIMITS: dict[str, int] = {
    "name": MAX_NAME,
    "command": MAX_COMMAND,
    "image": MAX_IMAGE,
    "labels": MAX_LABELS,
    "label_key": MAX_LABEL_KEY,
    "label_value": MAX_LABEL_VALUE,
    "env": MAX_ENV,
    "env_bytes": MAX_ENV_BYTES,
    "metadata_bytes": MAX_METADATA_BYTES,
    "depends": MAX_DEPENDS,
    "priority": MAX_PRIORITY,
    "retries": MAX_RETRIES,
    "gpus": MAX_GPUS,
    "batch": MAX_BATCH,
    "depth": MAX_DEPTH,
    "body_bytes": MAX_BODY_BYTES,
    "workflow_bytes": MAX_WORKFLOW_BYTES,
    "yaml_alias_nodes": MAX_YAML_ALIAS_NODES,
}


def _path(prefix: str, key: object) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def check_text(value: str, field: str, *, max_len: int | None = None, nul: bool = False) -> str:
    """A string a database can store: no lone surrogate, no NUL unless ``nul``; at most
    ``max_len`` characters. Returns it unchanged."""
    if max_len is not None and len(value) > max_len:
        raise SpecError(f"{field} must be at most {max_len} characters, not {len(value)}", field=field)
    if not nul and "\0" in value:
        raise SpecError(f"{field} must not contain a NUL character", field=field)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise SpecError(
                f"{field} is not valid text: a lone UTF-16 surrogate {value[exc.start]!r} "
                f"at character {exc.start}",
                field=field,
            ) from None
    return value


def check_json_value(value: Any, field: str = "", *, max_depth: int = MAX_DEPTH, nul: bool = True) -> None:
    """Walk a decoded JSON value: nesting at most ``max_depth``, every key and string valid
    text. Iterative, so a value nested 100,000 deep is refused, not a RecursionError."""
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            check_text(item, path or "body", nul=nul)
        elif isinstance(item, float) and not math.isfinite(item):
            raise SpecError(f"{path or 'the body'} must be a finite number, not {item!r}", field=path or None)
        elif isinstance(item, Mapping) or isinstance(item, (list, tuple)):
            if depth >= max_depth:
                raise SpecError(
                    f"{path or 'the body'} is nested more than {max_depth} levels deep", field=path or None
                )
            if isinstance(item, Mapping):
                for key, sub in item.items():
                    sub_path = _path(path, key)
                    if isinstance(key, str):
                        check_text(key, sub_path, nul=nul)
                    stack.append((sub, sub_path, depth + 1))
            else:
                for index, sub in enumerate(item):
                    stack.append((sub, f"{path}[{index}]", depth + 1))


def json_size(value: Any) -> int:
    """The size of ``value`` as compact JSON in UTF-8 (what the store keeps)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8"))


def check_json_size(value: Any, field: str, limit: int) -> None:
    size = json_size(value)
    if size > limit:
        raise TooLarge(f"{field} is {size} bytes as JSON, over the limit of {limit}", field=field)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads_limited(data: bytes | str, *, field: str = "body", max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` with the depth and text checks: a 400 naming the problem instead of a
    RecursionError or a value no database can store."""
    try:
        value = json.loads(data, parse_constant=_no_constant)
    except RecursionError:
        raise SpecError(f"the {field} is nested more than {max_depth} levels deep") from None
    except ValueError as exc:
        raise SpecError(f"the {field} is not valid JSON: {exc}") from None
    check_json_value(value, "", max_depth=max_depth)
    return value
