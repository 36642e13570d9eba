"""Reading what clients submit, before any handler acts on it: task submissions into task
specs and their payloads (the JSON body of ``POST /tasks`` and the ``submit`` frames of the
client session: both handlers use this one parser, so a submission is checked the same way,
same messages and fields, whichever way it came), run requests (``POST /workflows`` and
``POST /schedules``) and worker-token requests (``POST /workers/tokens``). Imports no
handler module, so handlers share it without importing each other."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

from ..core import protocol
from ..core.errors import SpecError
from ..core.limits import MAX_BATCH, check_text
from ..core.spec import TaskSpec

MAX_TOKEN_NAME = 100  # characters


def is_batch(body: Any) -> bool:
    """Whether a body is a batch (``{"tasks": [...]}``) rather than one task object."""
    return isinstance(body, dict) and "tasks" in body and "kind" not in body


def parse_submission(body: Any, owner: str) -> tuple[list[TaskSpec], dict[str, bytes]]:
    """One task object, or ``{"tasks": [...]}``; a payload travels base64 in ``payload``."""
    many = is_batch(body)
    if many and len(body) > 1:
        extra = sorted(k for k in body if k != "tasks")[0]
        raise SpecError(f"{extra} is not a known field of a batch (only tasks)", field=extra)
    items = body["tasks"] if many else [body]
    if not isinstance(items, list) or not items:
        raise SpecError("tasks must be a non-empty list", field="tasks")
    if len(items) > MAX_BATCH:
        raise SpecError(f"at most {MAX_BATCH} tasks per request", field="tasks")
    specs, payloads = [], {}
    for i, item in enumerate(items):
        prefix = f"tasks[{i}]." if many else ""
        try:
            spec = TaskSpec.from_dict(item, owner=owner)
        except SpecError as exc:
            raise SpecError(
                exc.message if not many else f"tasks[{i}]: {exc.message}", field=prefix + (exc.field or "")
            ) from None
        raw = item.get("payload")
        if raw is not None:
            if not isinstance(raw, str):
                raise SpecError("payload must be a base64 string", field=prefix + "payload")
            try:
                payloads[spec.id] = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise SpecError("payload is not valid base64", field=prefix + "payload") from None
        specs.append(spec)
    return specs, payloads


def parse_session_submit(
    msg: protocol.Message, owner: str, stored_payload: Callable[[str], Any]
) -> tuple[list[TaskSpec], dict[str, Any]]:
    """A session's ``submit`` frame, read as a batch body. A task's payload is the frame's
    blob ``payload:<id>`` (which wins over an inline base64 ``payload``), or, for a task
    marked ``payload_file``, what the client wrote into the blob store itself
    (``stored_payload(task_id)``, which raises when it is not there)."""
    tasks = msg.get("tasks") or []
    placed = set()  # tasks whose payload the client wrote into the blob store itself
    for item in tasks:
        if isinstance(item, dict) and f"payload:{item.get('id')}" in msg.blobs:
            item.pop("payload", None)
        if isinstance(item, dict) and item.pop("payload_file", None):
            placed.add(item.get("id"))
    specs, inline = parse_submission({"tasks": tasks}, owner)
    payloads: dict[str, Any] = dict(inline)
    for spec in specs:
        blob = msg.blobs.get(f"payload:{spec.id}")
        if blob is not None:
            payloads[spec.id] = blob
        elif spec.id in placed:
            payloads[spec.id] = stored_payload(spec.id)
    return specs, payloads


def check_run_request(body: Any, shared: bool = False) -> Any:
    """A run request's (or schedule's) names and paths are text a file system and a database
    take: a NUL in one is a 400 naming it, before anything reads a file. On a server shared
    by several users (``shared``), ``base_dir`` is dropped: the notebooks come with the
    request, and no user reads the server's disk (or another user's files) through it."""
    if isinstance(body, Mapping):
        if shared and "base_dir" in body:
            body = {k: v for k, v in body.items() if k != "base_dir"}
        for key in ("filename", "base_dir", "name"):
            if isinstance(body.get(key), str):
                check_text(body[key], key)
        files = body.get("files")
        if isinstance(files, Mapping):
            for path in files:
                check_text(str(path), f"files.{path}")
    return body


def parse_token_request(body: Any) -> tuple[str, bool, str]:
    """A ``POST /workers/tokens`` body (``{"name": ..., "shared": false, "group": ""}``):
    the name, stripped; whether the token is for shared workers; the group it is for."""
    if not isinstance(body, dict):
        raise SpecError("the request must be a JSON object with the token's name")
    unknown = sorted(set(body) - {"name", "shared", "group"})
    if unknown:
        raise SpecError(f"{unknown[0]} is not a known field; known: name, shared, group", field=unknown[0])
    shared = body.get("shared", False)
    if not isinstance(shared, bool):
        raise SpecError("shared must be true or false", field="shared")
    group = body.get("group", "")
    if not isinstance(group, str) or len(group) > MAX_TOKEN_NAME:
        raise SpecError(f"group must be a group's name of at most {MAX_TOKEN_NAME} characters", field="group")
    check_text(group, "group")
    if shared and group:
        raise SpecError("a token is for shared workers or for a group's, not both", field="group")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_TOKEN_NAME:
        raise SpecError(
            f"name must be a non-empty string of at most {MAX_TOKEN_NAME} characters", field="name"
        )
    check_text(name, "name")
    return name.strip(), shared, group.strip()
