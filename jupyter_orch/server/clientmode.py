"""Client mode: a user's Jupyter server when one orchestrator serves a whole JupyterHub (team
mode, ``c.OrchApp.service_url`` or ``JUPYTER_ORCH_SERVICE_URL``).

The server runs no engine. Its ``/orch/api/v1`` is forwarded to the service, HTTP and
WebSockets alike, so the sidebar stays same-origin; each forwarded request acts as the
server's user, with the server's own JupyterHub API token (``JUPYTERHUB_API_TOKEN``, which
the hub's ``server`` role must let reach the service). Kernels, terminals and the CLI get the
service's URL and that token (``JUPYTER_ORCH_URL``/``JUPYTER_ORCH_TOKEN`` and the connection
file) and talk to the service directly. "Run as job" reads the notebook here, where the
user's files are, and sends the service the built task with the notebook in its payload.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import httpclient, httputil, web, websocket
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ..core.errors import SpecError, Unauthorized, Unavailable
from ..discovery import write_connection_file
from .base import STATUS, OrchAPIHandler
from .notebooks import NotebookParametersHandler, build_run
from .openapi import API_BASE
from .wsroute import WebSocketRoute

API_PREFIX = API_BASE.lstrip("/") + "/"  # orch/api/v1/
# what a browser sends that the service is to see; its cookies and XSRF token are this server's
FORWARDED_REQUEST_HEADERS = ("Content-Type", "Accept", "If-None-Match", "Range")
FORWARDED_RESPONSE_HEADERS = (
    "Content-Type",
    "Content-Disposition",
    "Content-Security-Policy",  # a run's files (HTML reports) stay sandboxed on this origin too
    "ETag",
    "Allow",
    "Retry-After",
    "X-Orch-Result",
    "X-Orch-State",
)
FORWARDED_LOWER = {name.lower() for name in FORWARDED_RESPONSE_HEADERS}
WS_PATHS = ("events", "session", "tasks/[0-9a-z]{26}/logs/follow")
CONNECT_TIMEOUT = 10.0
REQUEST_TIMEOUT = 3900.0  # the API's longest wait (?timeout=3600) and the time to answer it


@dataclass(frozen=True)
class ServiceLink:
    """The orchestrator service this server forwards to: its base URL (ending in ``/``, the
    hub service's prefix included) and the token that acts as this server's user."""

    url: str
    token: str

    @classmethod
    def from_settings(cls, url: str, token: str) -> ServiceLink:
        """Checked settings; a bad one raises :class:`SpecError` naming it."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SpecError(
                f"c.OrchApp.service_url must be the service's http(s) URL, such as "
                f"http://jupyter-orch:8000/services/orch/; got {url!r}",
                field="OrchApp.service_url",
            )
        if parts.query or parts.fragment:
            raise SpecError("c.OrchApp.service_url takes no query or fragment", field="OrchApp.service_url")
        if not token:
            raise SpecError(
                "client mode needs a token that acts as this server's user: set "
                "c.OrchApp.service_token, or run under JupyterHub (JUPYTERHUB_API_TOKEN)",
                field="OrchApp.service_token",
            )
        return cls(url if url.endswith("/") else url + "/", token)

    def api_url(self, rest: str, query: str = "", websocket: bool = False) -> str:
        url = self.url + API_PREFIX + rest + (f"?{query}" if query else "")
        if websocket:
            url = "ws" + url[len("http") :]  # http -> ws, https -> wss
        return url

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}


def forwarded_path(raw_path: str) -> str:
    """The part of a request's raw path after ``/orch/api/v1/`` (the server's base URL before
    it), refused when it could reach anything outside the service's API: a ``.`` or ``..``
    segment (as written or percent-encoded) or an encoded slash or backslash."""
    marker = "/" + API_PREFIX
    index = raw_path.find(marker)
    rest = raw_path[index + len(marker) :] if index >= 0 else ""
    lowered = rest.lower()
    decoded = urllib.parse.unquote(rest)
    if (
        "%2f" in lowered
        or "%5c" in lowered
        or "\\" in decoded
        or any(part in (".", "..") for part in decoded.split("/"))
    ):
        raise SpecError(f"not an API path: {rest!r}", field="path")
    return rest


async def service_link(handler: Any) -> ServiceLink:
    """The app's link to the service; when client mode could not start, why not (raised)."""
    app = handler.extensionapp
    if app.service is None:
        await app.ready()  # raises the reason it could not start
    if not isinstance(app.service, ServiceLink):
        raise Unavailable("this server's client mode is not set up (see the server's log)")
    return app.service


def unreachable(link: ServiceLink, exc: BaseException) -> Unavailable:
    return Unavailable(f"the orchestrator service at {link.url} did not answer: {exc}")


class ClientModeHandler(OrchAPIHandler):
    """A route of a client-mode server: Jupyter's own login (this server's user) only; there
    are no orch tokens here (the service issues them)."""

    async def prepare(self) -> None:  # type: ignore[override]
        await APIHandler.prepare(self)
        if self.current_user is None and not self._finished:
            self.send_orch_error(Unauthorized("log in to Jupyter"))


class ForwardHandler(ClientModeHandler):
    """Any REST call under ``/orch/api/v1``, sent on to the service and its answer streamed
    back (status, body and the few headers that describe the body)."""

    async def _forward(self) -> None:
        link = await service_link(self)
        rest = forwarded_path(self.request.path)
        headers = link.headers
        for name in FORWARDED_REQUEST_HEADERS:
            if name in self.request.headers:
                headers[name] = self.request.headers[name]
        method = self.request.method or "GET"
        has_body = method in ("POST", "PUT", "PATCH") or bool(self.request.body)
        started = False

        def on_header(line: str) -> None:
            nonlocal started
            if line.startswith("HTTP/"):
                self.set_status(httputil.parse_response_start_line(line.strip()).code)
                return
            if ":" in line:
                name, value = line.split(":", 1)
                if name.strip().lower() in FORWARDED_LOWER:
                    self.set_header(name.strip(), value.strip())

        def on_chunk(chunk: bytes) -> None:
            nonlocal started
            started = True
            self.write(chunk)
            self.flush()

        request = httpclient.HTTPRequest(
            link.api_url(rest, self.request.query),
            method=method,
            headers=headers,
            body=self.request.body if has_body else None,
            allow_nonstandard_methods=True,
            follow_redirects=False,
            connect_timeout=CONNECT_TIMEOUT,
            request_timeout=REQUEST_TIMEOUT,
            header_callback=on_header,
            streaming_callback=on_chunk,
        )
        try:
            await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, httpclient.HTTPClientError, asyncio.TimeoutError) as exc:
            if started:  # the answer broke off halfway: nothing better to say than stopping
                raise
            self.clear()
            self.send_orch_error(unreachable(link, exc))
            return
        if not self._finished:
            self.finish()

    async def get(self, *args: Any) -> None:
        await self._forward()

    async def post(self, *args: Any) -> None:
        await self._forward()

    async def put(self, *args: Any) -> None:
        await self._forward()

    async def patch(self, *args: Any) -> None:
        await self._forward()

    async def delete(self, *args: Any) -> None:
        await self._forward()


class NotebookRunForwarder(ClientModeHandler):
    """Run as job: the notebook at ``path`` (this server's files) built into a notebook task
    here, and submitted to the service with the notebook in its payload."""

    async def post(self) -> None:
        link = await service_link(self)
        body = self.json_body()
        root = self.serverapp.root_dir
        spec, payload = await asyncio.get_running_loop().run_in_executor(None, build_run, root, body)
        spec["payload"] = base64.b64encode(payload).decode()
        request = httpclient.HTTPRequest(
            link.api_url("tasks"),
            method="POST",
            headers={**link.headers, "Content-Type": "application/json"},
            body=json.dumps(spec),
            connect_timeout=CONNECT_TIMEOUT,
            request_timeout=REQUEST_TIMEOUT,
        )
        try:
            response = await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, httpclient.HTTPClientError, asyncio.TimeoutError) as exc:
            raise unreachable(link, exc) from None
        self.set_status(response.code)
        self.set_header("Content-Type", "application/json")
        self.finish(response.body)


class ForwardSocket(WebSocketRoute, WebSocketMixin, WebSocketHandler, JupyterHandler):
    """A WebSocket under ``/orch/api/v1`` (events, a log's follow, the SDK session) joined to
    the same socket of the service; the service's refusal (401, 403, 404) is answered before
    the upgrade, as the service gave it."""

    upstream: websocket.WebSocketClientConnection | None = None

    async def prepare(self) -> None:  # type: ignore[override]
        await JupyterHandler.prepare(self, _redirect_to_login=False)  # type: ignore[call-arg]

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.current_user is None:
            raise web.HTTPError(403, "log in to Jupyter")
        link = await service_link(self)
        rest = forwarded_path(self.request.path)
        request = httpclient.HTTPRequest(
            link.api_url(rest, self.request.query, websocket=True),
            headers=link.headers,
            connect_timeout=CONNECT_TIMEOUT,
            request_timeout=CONNECT_TIMEOUT,
        )
        try:
            self.upstream = await websocket.websocket_connect(request, max_message_size=2**31 - 1)
        except httpclient.HTTPClientError as exc:
            self._refused(link, exc)
            return
        except (OSError, asyncio.TimeoutError, websocket.WebSocketError) as exc:
            self.send_orch_error(unreachable(link, exc))
            return
        await super().get(*args, **kwargs)

    def _refused(self, link: ServiceLink, exc: httpclient.HTTPClientError) -> None:
        body = exc.response.body if exc.response is not None else b""
        try:
            error = json.loads(body)
            message, code = str(error["message"]), str(error["error"])
        except (ValueError, KeyError, TypeError):
            self.send_orch_error(unreachable(link, exc))
            return
        self.set_status(exc.code if exc.code in STATUS.values() else 502)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": code, "message": message}))

    def open(self, *args: Any, **kwargs: Any) -> None:
        asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        """The service's messages, passed on until either side closes."""
        upstream = self.upstream
        assert upstream is not None
        while True:
            message = await upstream.read_message()
            if message is None:
                self.close(upstream.close_code or 1000, upstream.close_reason)
                return
            try:
                await self.write_message(message, binary=isinstance(message, bytes))
            except WebSocketClosedError:
                upstream.close()
                return

    async def on_message(self, message: str | bytes) -> None:
        if self.upstream is not None:
            try:
                await self.upstream.write_message(message, binary=isinstance(message, bytes))
            except WebSocketClosedError:
                self.close(1011, "the orchestrator service closed the connection")

    def on_close(self) -> None:
        if self.upstream is not None:
            self.upstream.close(self.close_code or 1000, self.close_reason)

    def get_compression_options(self) -> None:
        return None


class NotebookParametersHere(ClientModeHandler, NotebookParametersHandler):
    """A notebook's parameters, read from this server's files (no engine needed)."""


def client_handlers() -> list[tuple[str, type[Any]]]:
    """The routes of a client-mode server, most specific first."""
    handlers: list[tuple[str, type[Any]]] = [(API_BASE + rf"/({path})", ForwardSocket) for path in WS_PATHS]
    handlers.append((API_BASE + r"/notebooks/parameters", NotebookParametersHere))
    handlers.append((API_BASE + r"/notebooks/run", NotebookRunForwarder))
    handlers.append((API_BASE + r"/(.*)", ForwardHandler))
    return handlers


def start_client_mode(link: ServiceLink, data_dir: str, set_kernel_env: bool) -> None:
    """Point kernels (and terminals, and the CLI through the connection file) at the service."""
    if set_kernel_env:
        os.environ["JUPYTER_ORCH_URL"] = link.url.rstrip("/")
        os.environ["JUPYTER_ORCH_TOKEN"] = link.token
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    write_connection_file(data_dir, link.url.rstrip("/"), link.token)
