"""Blocking HTTP calls to the orch REST API (one keep-alive connection per thread).

Errors come back as the same exception classes the server raised (``SpecError`` for a
400 naming its field, ``NotFound``, ``Conflict``...), built from the JSON error body.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from typing import Any
from urllib.parse import urlencode, urlsplit

from ..core.errors import ERRORS_BY_CODE, OrchError, Unauthorized

API = "/orch/api/v1"


class ServerUnreachable(OrchError):
    code = "unreachable"


class HttpApi:
    def __init__(self, url: str, token: str | None, timeout: float = 60.0, origin: Any = None) -> None:
        """``origin``: the connection file the URL was read from (named when unreachable)."""
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the server URL must look like http://host:port[/base], not {url!r}")
        self.url = url.rstrip("/")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base = parts.path.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.origin = origin
        self._local = threading.local()

    def headers(self) -> dict[str, str]:
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        return h

    def ws_url(self, path: str) -> str:
        scheme = "wss" if self.scheme == "https" else "ws"
        return f"{scheme}://{self.host}:{self.port}{self.base}{API}{path}"

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            conn = cls(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        raw: bool = False,
        timeout: float | None = None,
    ) -> Any:
        url = self.base + API + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None}, doseq=True)
        data = None if body is None else json.dumps(body).encode()
        headers = self.headers()
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):  # a kept-alive connection the server closed: reconnect once
            conn = self._conn()
            conn.timeout = timeout or self.timeout
            if conn.sock is not None:
                conn.sock.settimeout(conn.timeout)
            try:
                conn.request(method, url, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                break
            except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
                conn.close()
                self._local.conn = None
                if attempt == 2 or isinstance(exc, socket.timeout):
                    raise self.unreachable(exc) from None
        if resp.status >= 400:
            raise _error_from(resp.status, payload)
        if raw:
            return payload, dict(resp.getheaders())
        if resp.status == 204 or not payload:
            return None
        return json.loads(payload)

    def unreachable(self, exc: BaseException) -> ServerUnreachable:
        """The one sentence for a server that does not answer, naming where its URL came from."""
        found = f", named in {self.origin}" if self.origin else ""
        gone = "; if that server is no longer running, " if self.origin else "; "
        return ServerUnreachable(
            f"cannot reach the jupyter-orch server at {self.url}{found} ({str(exc) or type(exc).__name__}){gone}"
            "start one with `jupyter orch serve` or open JupyterLab with the extension"
        )

    def websocket(self, path: str, **options: Any) -> Any:
        """A websocket-client connection to ``path`` under the API, with this API's token;
        an unreachable server or a refused upgrade is an :class:`OrchError` in one sentence."""
        import websocket

        try:
            return websocket.create_connection(
                self.ws_url(path), header=[f"{k}: {v}" for k, v in self.headers().items()], **options
            )
        except websocket.WebSocketBadStatusException as exc:
            body = exc.resp_body if isinstance(exc.resp_body, bytes) else b""
            raise _error_from(exc.status_code, body) from None
        except (OSError, websocket.WebSocketException) as exc:
            raise self.unreachable(exc) from None

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query or None)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body=body if body is not None else {})

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


def _error_from(status: int, payload: bytes) -> OrchError:
    problems = None
    try:
        body = json.loads(payload)
        code, message, field = body.get("error", "error"), body.get("message", ""), body.get("field")
        problems = body.get("problems")
    except (ValueError, AttributeError):
        code, message, field = "error", payload.decode(errors="replace")[:500], None
    if status == 401 or (status == 403 and code in ("error", "forbidden") and "log in" in message):
        return Unauthorized(message or "the server refused the token (JUPYTER_ORCH_TOKEN)")
    cls = ERRORS_BY_CODE.get(code, OrchError)
    error = cls(message or f"HTTP {status}", field=field)
    if isinstance(problems, list):
        error.details = [str(p) for p in problems]
    return error
