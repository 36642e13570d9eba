"""What every orch WebSocket route shares on its HTTP side: the opening handshake checked
before the upgrade (a plain GET is a 400 that says what the route is, logged at info), and
errors as JSON with ``Allow`` on a 405 (:class:`~jupyter_orch.server.base.OrchMixin`).

The handshake's patterns are the ones the OpenAPI document gives (``x-websockets``); each is
both an ECMA-262 and a Python regular expression, so the server checks exactly them.
"""

from __future__ import annotations

import re
from typing import Any

from ..core.errors import SpecError
from .base import OrchMixin

MAX_INT64 = 2**63 - 1  # a query number at most (what the database keeps)

# the opening handshake, RFC 6455 4.1
UPGRADE_PATTERN = r"^[ \t]*[Ww][Ee][Bb][Ss][Oo][Cc][Kk][Ee][Tt][ \t]*$"
CONNECTION_PATTERN = r"^(.*,)?[ \t]*[Uu][Pp][Gg][Rr][Aa][Dd][Ee][ \t]*(,.*)?$"
KEY_PATTERN = r"^[A-Za-z0-9+/]{22}==$"  # 16 random bytes, base64
WS_VERSION = "13"
NOT_A_WEBSOCKET = (
    "this is a WebSocket endpoint: connect with a WebSocket client "
    "(Upgrade: websocket, Connection: Upgrade, Sec-WebSocket-Version: 13, Sec-WebSocket-Key)"
)


class WebSocketRoute(OrchMixin):
    """Plumbing every orch WebSocket route shares: errors as JSON with ``Allow`` on a 405
    (:class:`OrchMixin`), and a plain HTTP request (no upgrade) answered with a 400 that
    says what the route is, logged at info: a client's mistake, not the operator's."""

    _plain_http = False
    _offer_version = False

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if self._offer_version:  # RFC 6455 4.4: the versions the server speaks
            self.set_header("Sec-WebSocket-Version", WS_VERSION)  # type: ignore[attr-defined]
        super().write_error(status_code, **kwargs)

    def check_handshake(self) -> None:
        headers = self.request.headers  # type: ignore[attr-defined]
        checks = (
            ("Upgrade", UPGRADE_PATTERN),
            ("Connection", CONNECTION_PATTERN),
            ("Sec-WebSocket-Version", f"^{WS_VERSION}$"),
            ("Sec-WebSocket-Key", KEY_PATTERN),
        )
        for name, pattern in checks:
            value = headers.get(name)
            if value is None or not re.match(pattern, value):
                self._plain_http = True
                self._offer_version = name == "Sec-WebSocket-Version"
                problem = "is missing" if value is None else f"is not valid: {value[:60]!r}"
                raise SpecError(f"{NOT_A_WEBSOCKET}; the {name} header {problem}", field=name)

    def log_closed(self) -> None:
        self.log.debug("%s %s: WebSocket closed", self.request.method, self.request.path)  # type: ignore[attr-defined]

    def _log(self) -> None:
        if self._plain_http:
            self.log.info(  # type: ignore[attr-defined]
                "%d %s %s (%s): not a WebSocket request",
                self.get_status(),  # type: ignore[attr-defined]
                self.request.method,  # type: ignore[attr-defined]
                # the path, not the URI: its query may hold a token
                self.request.path,  # type: ignore[attr-defined]
                self.request.remote_ip,  # type: ignore[attr-defined]
            )
            return
        super()._log()  # type: ignore[misc]
