"""The task spec: what to run (kind + payload or command), what it needs, how to retry.

``TaskSpec.from_dict`` is the single gate for user input (REST body, CLI, client): every
malformed field is a :class:`SpecError` that names it. Kinds ``cell`` and ``notebook`` are
reserved for the kernel SDK and workflows; they share this spec.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import limits
from .errors import SpecError
from .ids import is_valid_id, new_id
from .limits import MAX_NAME
from .resources import Resources

KINDS = ("function", "shell", "cell", "notebook")
PAYLOAD_KINDS = frozenset({"function", "cell", "notebook"})
__all__ = ["KINDS", "MAX_NAME", "PAYLOAD_KINDS", "RetryPolicy", "TaskSpec"]


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry a failed attempt and how long to wait before each retry.

    The wait before retry ``n`` (1-based) is ``backoff * factor ** (n - 1)``, capped at
    ``max_backoff`` seconds.
    """

    retries: int = 0
    backoff: float = 1.0
    factor: float = 2.0
    max_backoff: float = 300.0

    def delay(self, retry_number: int) -> float:
        try:
            wait = self.backoff * self.factor ** max(0, retry_number - 1)
        except OverflowError:  # a float power past 1e308 raises instead of giving inf
            return self.max_backoff
        return min(self.max_backoff, wait)

    def to_dict(self) -> dict[str, Any]:
        return {
            "retries": self.retries,
            "backoff": self.backoff,
            "factor": self.factor,
            "max_backoff": self.max_backoff,
        }


def _opt_float(data: Mapping[str, Any], key: str, *, positive: bool = True) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{key} must be a number of seconds, not {value!r}", field=key)
    if not math.isfinite(value) or (positive and value <= 0):
        raise SpecError(f"{key} must be a positive number of seconds, not {value!r}", field=key)
    return float(value)


def _int(
    data: Mapping[str, Any], key: str, default: int, minimum: int | None = None, maximum: int | None = None
) -> int:
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():  # 3.0: JSON Schema's integer admits it
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{key} must be a whole number, not {value!r}", field=key)
    if minimum is not None and value < minimum:
        raise SpecError(f"{key} must be >= {minimum}, not {value}", field=key)
    if maximum is not None and value > maximum:
        raise SpecError(f"{key} must be <= {maximum}, not {value}", field=key)
    return value


def _str_map(value: Any, key: str) -> dict[str, str]:
    """Environment variables: names without ``=`` or NUL, values as strings, within the
    count and size limits."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"{key} must be an object of names to strings", field=key)
    if len(value) > limits.MAX_ENV:
        raise SpecError(f"{key} may have at most {limits.MAX_ENV} entries, not {len(value)}", field=key)
    out = {}
    size = 0
    for k, v in value.items():
        if not isinstance(k, str) or not k or "=" in k or "\0" in k:
            raise SpecError(f"{key} has an invalid name {k!r}", field=f"{key}.{k}")
        limits.check_text(k, f"{key}.{k}")
        if not isinstance(v, (str, int, float, bool)):
            raise SpecError(f"{key}.{k} must be a string", field=f"{key}.{k}")
        text = limits.check_text(str(v), f"{key}.{k}")
        size += len(k.encode()) + len(text.encode())
        out[k] = text
    if size > limits.MAX_ENV_BYTES:
        raise SpecError(f"{key} is {size} bytes in all, over the limit of {limits.MAX_ENV_BYTES}", field=key)
    return out


@dataclass(frozen=True)
class TaskSpec:
    """Everything needed to run a task, independent of where and how often it runs."""

    kind: str
    id: str = field(default_factory=new_id)
    name: str | None = None
    owner: str = ""
    resources: Resources = field(default_factory=Resources)
    image: str | None = None
    priority: int = 0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    command: str | None = None
    depends: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # may be evicted for a task of higher priority (when the server allows preemption): it
    # is asked to stop, ends its attempt "preempted" and is queued again to resume
    preemptible: bool = False

    _KEYS = frozenset(
        {
            "id",
            "kind",
            "name",
            "resources",
            "image",
            "priority",
            "retries",
            "retry_backoff",
            "retry_backoff_factor",
            "retry_max_backoff",
            "timeout",
            "env",
            "command",
            "depends",
            "metadata",
            "payload",
            "preemptible",
        }
    )

    @classmethod
    def from_dict(cls, data: Any, *, owner: str = "", stored: bool = False) -> TaskSpec:
        """Validate user input. ``payload`` (if present) is the server's business, not ours.

        Every string must be storable text (no lone surrogate, no NUL) and every field is
        within :mod:`.limits`. ``stored``: a spec read back from the store, accepted before
        (its size limits are not checked again, so a lowered limit never hides a task)."""
        if not isinstance(data, Mapping):
            raise SpecError("a task must be a JSON object")
        unknown = set(data) - cls._KEYS
        if unknown:
            key = str(sorted(unknown, key=str)[0])  # key=str: a Python caller may pass non-str keys
            raise SpecError(f"{key} is not a known task field", field=key)
        kind = data.get("kind")
        if kind not in KINDS:
            raise SpecError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}", field="kind")
        task_id = data.get("id")
        if task_id is None:
            task_id = new_id()
        elif not is_valid_id(task_id):
            raise SpecError(f"id must be a 26-character task id, not {task_id!r}", field="id")
        name = data.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME):
            raise SpecError(f"name must be a string of at most {MAX_NAME} characters", field="name")
        if name is not None:
            limits.check_text(name, "name")
        image = data.get("image")
        if image is not None and (not isinstance(image, str) or not image.strip()):
            raise SpecError("image must be a non-empty string", field="image")
        if image is not None:
            limits.check_text(image, "image", max_len=limits.MAX_IMAGE)
        command = data.get("command")
        if kind == "shell":
            if not isinstance(command, str) or not command.strip():
                raise SpecError("a shell task needs a non-empty command", field="command")
            limits.check_text(command, "command", max_len=None if stored else limits.MAX_COMMAND)
        elif command is not None:
            raise SpecError(f"command is only for shell tasks, not {kind}", field="command")
        depends = data.get("depends")
        depends = [] if depends is None else depends
        if not isinstance(depends, (list, tuple)) or not all(is_valid_id(d) for d in depends):
            raise SpecError("depends must be a list of task ids", field="depends")
        if len(depends) > limits.MAX_DEPENDS and not stored:
            raise SpecError(
                f"depends may name at most {limits.MAX_DEPENDS} tasks, not {len(depends)}", field="depends"
            )
        metadata = data.get("metadata")
        metadata = {} if metadata is None else metadata
        if not isinstance(metadata, Mapping):
            raise SpecError("metadata must be an object", field="metadata")
        if not stored:
            limits.check_json_value(metadata, "metadata", nul=False)
            limits.check_json_size(metadata, "metadata", limits.MAX_METADATA_BYTES)
        preemptible = data.get("preemptible")
        preemptible = False if preemptible is None else preemptible
        if not isinstance(preemptible, bool):
            raise SpecError(f"preemptible must be true or false, not {preemptible!r}", field="preemptible")
        backoff = _opt_float(data, "retry_backoff")
        factor = _opt_float(data, "retry_backoff_factor")
        max_backoff = _opt_float(data, "retry_max_backoff")
        return cls(
            kind=kind,
            id=task_id,
            name=name or None,
            owner=owner,
            resources=Resources.from_dict(data.get("resources")),
            image=image.strip() if image else None,
            priority=_int(data, "priority", 0, -limits.MAX_PRIORITY, limits.MAX_PRIORITY),
            retry=RetryPolicy(
                retries=_int(data, "retries", 0, minimum=0, maximum=limits.MAX_RETRIES),
                backoff=1.0 if backoff is None else backoff,
                factor=2.0 if factor is None else factor,
                max_backoff=300.0 if max_backoff is None else max_backoff,
            ),
            timeout=_opt_float(data, "timeout"),
            env=_str_map(data.get("env"), "env"),
            command=command,
            depends=tuple(dict.fromkeys(depends)),
            metadata=dict(metadata),
            preemptible=preemptible,
        )

    def with_owner(self, owner: str) -> TaskSpec:
        return replace(self, owner=owner)

    @property
    def needs_payload(self) -> bool:
        return self.kind in PAYLOAD_KINDS

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.kind == "shell" and self.command:
            return self.command if len(self.command) <= 60 else self.command[:57] + "..."
        return str(self.metadata.get("function") or self.kind)

    def to_dict(self) -> dict[str, Any]:
        """The stored and served form; ``from_dict(to_dict())`` gives the same spec back."""
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "resources": self.resources.to_dict(),
            "image": self.image,
            "priority": self.priority,
            "retries": self.retry.retries,
            "retry_backoff": self.retry.backoff,
            "retry_backoff_factor": self.retry.factor,
            "retry_max_backoff": self.retry.max_backoff,
            "timeout": self.timeout,
            "env": dict(self.env),
            "command": self.command,
            "depends": list(self.depends),
            "metadata": dict(self.metadata),
            "preemptible": self.preemptible,
        }
