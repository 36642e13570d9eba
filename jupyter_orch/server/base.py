"""What every orch handler shares: authentication (Jupyter's own, or an orch API token),
the owner of the request, JSON errors in the public shape, and access to the engine.

Authentication: ``Authorization: Bearer orch_...`` with an API token the server issued
(what kernels get as ``JUPYTER_ORCH_TOKEN``) or anything Jupyter itself accepts (its
token, its login cookie with XSRF). Handlers stay thin: parse, call the engine, render.

Handlers see the extension app through :class:`OrchSettings`, the few things they read of it
(``server.app.OrchApp`` provides them), so no handler module imports ``server.app``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from jupyter_server.auth.identity import User
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from ..core import limits, tasktokens
from ..core.access import Identity
from ..core.errors import OrchError, SpecError, TooLarge, Unauthorized

if TYPE_CHECKING:
    from ..engine import Engine, EngineConfig
    from ..engine.schedules import Schedules
    from ..store.runfiles import RunFiles


class OrchSettings(Protocol):
    """What handlers read of the extension app (``server.app.OrchApp``)."""

    owner: str
    owner_from: str  # "server" or "identity"
    metrics_require_auth: bool
    schedules: Schedules | None

    @property
    def run_files(self) -> RunFiles: ...

    @property
    def version_string(self) -> str: ...

    @property
    def max_body_bytes(self) -> int: ...

    @property
    def engine_config(self) -> EngineConfig: ...

    engine: Engine | None  # once started

    def ready(self) -> Awaitable[Engine]:
        """The engine, once started."""
        ...


STATUS = {
    "invalid": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "wrong_state": 409,
    "too_large": 413,
    "quota_exceeded": 429,
    "unavailable": 503,
    "error": 500,
}
HTTP_CODES = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "wrong_state",
    413: "too_large",
    429: "quota_exceeded",
    503: "unavailable",
}
TOKEN_PREFIX = "orch_"
MAX_INT64 = 2**63 - 1
_INT_RE = re.compile(r"[+-]?[0-9]+")
_NUMBER_RE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(handler_class: type[web.RequestHandler]) -> list[str]:
    """The methods a handler class implements (tornado's defaults answer 405): what the
    ``Allow`` header of its 405 lists, and what the OpenAPI document must describe."""
    return [
        m
        for m in HTTP_METHODS
        if getattr(handler_class, m.lower()) is not getattr(web.RequestHandler, m.lower())
    ]


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
    def orch(self) -> OrchSettings:
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
    def identity(self) -> Identity:
        """Who the caller is, and what they may see and change (:mod:`jupyter_orch.core.access`).

        On a personal server (``owner_from = "server"``) its one user owns everything. With
        ``owner_from = "identity"``, a JupyterHub user brings the groups and scopes of their
        hub user model; an orch API token or a task's token acts as its owner, no more."""
        if self.orch.owner_from != "identity":
            return Identity(self.owner, admin=True)
        if self._orch_owner is None:
            hub_user = getattr(self.current_user, "hub_user", None)  # type: ignore[attr-defined]
            if isinstance(hub_user, Mapping) and hub_user.get("name") == self.owner:
                identity = Identity.from_hub_model(hub_user)
                engine = self.orch.engine
                if engine is not None and engine.state.groups_of(identity.name) != identity.groups:
                    engine.know_groups(identity.name, identity.groups)  # for group quotas and weights
                return identity
        return Identity(self.owner)

    @property
    def owner(self) -> str:
        if self._orch_owner is not None:
            return self._orch_owner
        user = self.current_user  # type: ignore[attr-defined]
        if self.orch.owner_from == "identity" and user is not None:
            return str(getattr(user, "username", "") or self.orch.owner)
        return self.orch.owner

    # ------------------------------------------------------------------ errors (REST and WebSocket)
    def send_orch_error(self, exc: OrchError) -> None:
        self.set_status(STATUS.get(exc.code, 500))  # type: ignore[attr-defined]
        self.set_header("Content-Type", "application/json")  # type: ignore[attr-defined]
        self.finish(json.dumps(exc.to_dict()))  # type: ignore[attr-defined]

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Every error in the public shape, as JSON (never Jupyter's HTML error page, which
        needs a logged-in page context a WebSocket route or an API client does not have);
        a 405 names the methods the route has in ``Allow``."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, OrchError):
            self.set_status(STATUS.get(exc.code, 500))  # type: ignore[attr-defined]
            body = exc.to_dict()
        elif isinstance(exc, web.HTTPError):
            code = HTTP_CODES.get(status_code, "error")
            message = exc.log_message or exc.reason or str(status_code)
            if status_code == 405:
                message = f"{self.request.method} is not allowed here; allowed: {self.allow_header()}"  # type: ignore[attr-defined]
            body = {"error": code, "message": message}
        else:
            body = {"error": "error", "message": "internal error: see the server log"}
        if status_code == 405:
            self.set_header("Allow", self.allow_header())  # type: ignore[attr-defined]
        self.set_header("Content-Type", "application/json")  # type: ignore[attr-defined]
        self.finish(json.dumps(body))  # type: ignore[attr-defined]

    def allow_header(self) -> str:
        return ", ".join(allowed_methods(type(self)))  # type: ignore[arg-type]

    def check_xsrf_cookie(self) -> None:
        # a method the route does not have is a 405 whoever asks, not an XSRF question
        if self.request.method not in allowed_methods(type(self)):  # type: ignore[attr-defined,arg-type]
            raise web.HTTPError(405)
        super().check_xsrf_cookie()  # type: ignore[misc]

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, OrchError):
            self.log.info("%s %s: %s", self.request.method, self.request.path, value.message)  # type: ignore[attr-defined]
        else:
            super().log_exception(typ, value, tb)  # type: ignore[misc]

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, OrchError):
            if not self._finished:  # type: ignore[attr-defined]
                self.send_error(STATUS.get(e.code, 500), exc_info=(type(e), e, None))  # type: ignore[attr-defined]
            return
        super()._handle_request_exception(e)  # type: ignore[misc]


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
        elif self.orch.owner_from == "identity":
            self.identity  # noqa: B018  (learns the user's hub groups: their quotas and weights apply to this request)

    def json_body(self) -> Any:
        """The request's JSON, within the body size limit (413) and nesting depth (400), with
        every string storable text (see :mod:`jupyter_orch.core.limits`)."""
        body = self.request.body
        if not body:
            raise SpecError("the request needs a JSON body")
        limit = self.orch.max_body_bytes
        if len(body) > limit:
            raise TooLarge(
                f"the request body is {len(body)} bytes, over the limit of {limit} (c.OrchApp.max_body_size)",
                field="body",
            )
        return limits.loads_limited(body, field="request body")

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data))

    def int_arg(
        self, name: str, default: int | None, minimum: int = 0, maximum: int = MAX_INT64
    ) -> int | None:
        """A whole-number query argument (digits only; an empty one is refused, not taken
        for the default), within [minimum, maximum]: a 64-bit integer at most, as the
        database keeps it."""
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        if not _INT_RE.fullmatch(raw):
            raise SpecError(f"query parameter {name} must be a whole number", field=name)
        value = int(raw)
        if not minimum <= value <= maximum:
            raise SpecError(f"query parameter {name} must be between {minimum} and {maximum}", field=name)
        return value

    def float_arg(self, name: str, default: float | None, maximum: float = 3600.0) -> float | None:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        value = float(raw) if _NUMBER_RE.fullmatch(raw) else math.nan
        if not 0 <= value <= maximum:
            raise SpecError(f"query parameter {name} must be a number from 0 to {maximum:g}", field=name)
        return value
