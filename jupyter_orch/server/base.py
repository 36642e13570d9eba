"""What every orch handler shares: authentication (Jupyter's own, or an orch API token),
the owner of the request, JSON errors in the public shape, and access to the engine.

Authentication: ``Authorization: Bearer orch_...`` with an API token the server issued
(what kernels get as ``JUPYTER_ORCH_TOKEN``) or anything Jupyter itself accepts (its
token, its login cookie with XSRF). Handlers stay thin: parse, call the engine, render.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.identity import User
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from ..core import tasktokens
from ..core.errors import OrchError, SpecError, Unauthorized

if TYPE_CHECKING:
    from ..engine import Engine
    from .app import OrchApp

STATUS = {
    "invalid": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "wrong_state": 409,
    "too_large": 413,
    "error": 500,
}
TOKEN_PREFIX = "orch_"


def bearer_secret(handler: web.RequestHandler) -> str | None:
    """An orch token from ``Authorization: Bearer|token orch_...``, if the request has one."""
    header = handler.request.headers.get("Authorization", "")
    parts = header.split(None, 1)
    if len(parts) == 2 and parts[0].lower() in ("bearer", "token") and parts[1].startswith(TOKEN_PREFIX):
        return parts[1].strip()
    return None


class OrchMixin(ExtensionHandlerMixin):
    """Orch-specific state for API and WebSocket handlers."""

    _orch_owner: str | None = None
    task_token_of: str | None = None  # the task whose token authenticated this request

    @property
    def orch(self) -> OrchApp:
        return self.extensionapp  # type: ignore[return-value]

    async def engine(self) -> Engine:
        return await self.orch.ready()

    async def authenticate_orch_token(self) -> bool:
        """Accept an orch API token: True if the request carried a valid one."""
        secret = bearer_secret(self)  # type: ignore[arg-type]
        if secret is None:
            return False
        engine = await self.engine()
        task_id = tasktokens.task_of(secret)
        if task_id is not None:
            return self._accept_task_token(engine, secret, task_id)
        token = await engine.find_token(secret)
        if token is None or token.revoked or token.scope != "api":
            self.log.warning(
                "refused an API request with a bad or revoked orch token from %s", self.request.remote_ip
            )  # type: ignore[attr-defined]
            raise Unauthorized("the orch token is not valid (revoked or unknown)")
        self._orch_owner = token.owner or self.orch.owner
        user = User(username=self._orch_owner, name=self._orch_owner)
        self.current_user = self._jupyter_current_user = user  # type: ignore[attr-defined]
        self._token_authenticated = True  # Jupyter's rule: token requests skip XSRF/origin checks
        return True

    def _accept_task_token(self, engine: Engine, secret: str, task_id: str) -> bool:
        """A running task's own token: it acts as the task's owner until the task ends."""
        row = engine.tasks.get(task_id)  # active tasks only
        key = engine.config.task_token_secret
        if row is None or not key or not tasktokens.verify(key, secret, task_id, row.owner or ""):
            self.log.warning(  # type: ignore[attr-defined]
                "refused a task token from %s (unknown, forged or its task has ended)", self.request.remote_ip
            )
            raise Unauthorized("the task token is not valid: its task has ended, or it was never issued")
        self._orch_owner = row.owner or self.orch.owner
        self.task_token_of = task_id
        user = User(username=self._orch_owner, name=self._orch_owner)
        self.current_user = self._jupyter_current_user = user  # type: ignore[attr-defined]
        self._token_authenticated = True
        return True

    @property
    def owner(self) -> str:
        if self._orch_owner is not None:
            return self._orch_owner
        user = self.current_user  # type: ignore[attr-defined]
        if self.orch.owner_from == "identity" and user is not None:
            return str(getattr(user, "username", "") or self.orch.owner)
        return self.orch.owner


class OrchAPIHandler(OrchMixin, APIHandler):
    async def prepare(self) -> None:  # type: ignore[override]
        try:
            if await self.authenticate_orch_token():
                return
        except OrchError as exc:
            self.send_orch_error(exc)
            return
        await super().prepare()
        if self.current_user is None:
            self.send_orch_error(Unauthorized("log in to Jupyter or send an orch token"))

    def send_orch_error(self, exc: OrchError) -> None:
        self.set_status(STATUS.get(exc.code, 500))
        self.finish(json.dumps(exc.to_dict()))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, OrchError):
            self.set_status(STATUS.get(exc.code, 500))
            body = exc.to_dict()
        elif isinstance(exc, web.HTTPError):
            code = {
                400: "invalid",
                401: "unauthorized",
                403: "forbidden",
                404: "not_found",
                405: "method_not_allowed",
                409: "wrong_state",
                413: "too_large",
            }.get(status_code, "error")
            body = {"error": code, "message": exc.log_message or exc.reason or str(status_code)}
        else:
            body = {"error": "error", "message": "internal error: see the server log"}
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, OrchError):
            self.log.info("%s %s: %s", self.request.method, self.request.path, value.message)
        else:
            super().log_exception(typ, value, tb)

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, OrchError):
            if not self._finished:
                self.send_error(STATUS.get(e.code, 500), exc_info=(type(e), e, None))
            return
        super()._handle_request_exception(e)

    def json_body(self) -> Any:
        if not self.request.body:
            raise SpecError("the request needs a JSON body")
        try:
            return json.loads(self.request.body)
        except ValueError as exc:
            raise SpecError(f"the request body is not valid JSON: {exc}") from None

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data))

    def int_arg(
        self, name: str, default: int | None, minimum: int = 0, maximum: int | None = None
    ) -> int | None:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SpecError(f"query parameter {name} must be a whole number", field=name) from None
        if value < minimum or (maximum is not None and value > maximum):
            raise SpecError(f"query parameter {name} must be between {minimum} and {maximum}", field=name)
        return value

    def float_arg(self, name: str, default: float | None, maximum: float = 3600.0) -> float | None:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SpecError(f"query parameter {name} must be a number of seconds", field=name) from None
        if not 0 <= value <= maximum:
            raise SpecError(f"query parameter {name} must be between 0 and {maximum:g}", field=name)
        return value
