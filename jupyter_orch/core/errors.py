"""The error vocabulary shared by every layer.

Each error has a stable machine ``code`` and may name the ``field`` that caused it; the
server maps codes to HTTP statuses, the client maps them back to exceptions.
"""

from __future__ import annotations


class OrchError(Exception):
    """Base of every error jupyter-orch reports to a user."""

    code = "error"
    details: list[str] | None = None  # every problem, when there are several (a workflow file's)

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"error": self.code, "message": self.message}
        if self.field:
            out["field"] = self.field
        if self.details:
            out["problems"] = list(self.details)
        return out


class SpecError(OrchError):
    """A task, resource or request body is malformed (HTTP 400)."""

    code = "invalid"


class NotFound(OrchError):
    """No such task, worker or token (HTTP 404)."""

    code = "not_found"


class Conflict(OrchError):
    """The object is in a state where the request makes no sense (HTTP 409)."""

    code = "wrong_state"


class TooLarge(OrchError):
    """A payload is over the configured limit (HTTP 413)."""

    code = "too_large"


class Forbidden(OrchError):
    """Authenticated, but not allowed to touch this object (HTTP 403)."""

    code = "forbidden"


class Unauthorized(OrchError):
    """Missing, bad or revoked credentials (HTTP 401)."""

    code = "unauthorized"


class Unavailable(OrchError):
    """The server cannot do it now: its database or disk is unavailable (HTTP 503). Nothing
    was accepted; the same request may be sent again (a task with the same id is stored
    once)."""

    code = "unavailable"


class QuotaExceeded(OrchError):
    """Accepting it would take a user or group over a quota set for them (HTTP 429);
    nothing was accepted."""

    code = "quota_exceeded"


class IllegalTransition(RuntimeError):
    """A state change the state machine forbids: always a bug in the caller."""


ERRORS_BY_CODE: dict[str, type[OrchError]] = {
    cls.code: cls
    for cls in (
        OrchError,
        SpecError,
        NotFound,
        Conflict,
        TooLarge,
        Forbidden,
        Unauthorized,
        Unavailable,
        QuotaExceeded,
    )
}
