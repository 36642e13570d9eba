"""Reading the server's task messages: the (task, attempt) key they name and the
:class:`~.slots.TaskRequest` an ``assign`` describes."""

from __future__ import annotations

from ..core import protocol
from .outbox import Key
from .slots import TaskRequest

__all__ = ["message_key", "task_request"]


def message_key(message: protocol.Message) -> Key | None:
    task_id = message.get("task_id")
    attempt = message.get("attempt", 1)
    if not isinstance(task_id, str) or not task_id or isinstance(attempt, bool):
        return None
    try:
        return task_id, int(attempt)
    except (TypeError, ValueError):
        return None


def task_request(key: Key, kind: str, message: protocol.Message, server_url: str) -> TaskRequest:
    env = message.get("env") or {}
    if not isinstance(env, dict):
        raise ValueError("env must be an object")
    env = {str(k): "" if v is None else str(v) for k, v in env.items()}
    token = message.get("token")
    if isinstance(token, str) and token:  # jupyter_orch.connect() in the task acts as its owner
        env.update(JUPYTER_ORCH_URL=server_url, JUPYTER_ORCH_TOKEN=token)
    timeout = message.get("timeout")
    gpus = [int(i) for i in message.get("gpus") or []]
    client_env = message.get("client_env")
    step = message.get("step")
    params = message.get("params")
    return TaskRequest(
        task_id=key[0],
        attempt=key[1],
        kind=kind,
        command=message.get("command"),
        env=env,
        timeout=float(timeout) if timeout is not None else None,
        gpus=gpus,
        client_env=client_env if isinstance(client_env, dict) else None,
        blobs={k: v for k, v in message.blobs.items() if k != "none"},
        payload_file=message.get("payload_file"),
        step=step if isinstance(step, dict) else None,
        params=params if isinstance(params, dict) else None,
    )
