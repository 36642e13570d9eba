"""Requests to a real server with nothing of our client in between."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def raw(orch: Any, method: str, path: str, body: Any = None, token: str | None = None, headers: Any = None):
    """A request to ``/orch/api/v1<path>``: status, JSON body (bytes are sent as they are)."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(orch.url + "/orch/api/v1" + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token or orch.token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, _body(resp.read(), resp.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as err:
        return err.code, _body(err.read(), err.headers.get("Content-Type", ""))


def _body(data: bytes, content_type: str) -> Any:
    """JSON as its value; anything else (a pickled result) as the bytes."""
    if "json" in content_type or not content_type:
        try:
            return json.loads(data or b"null")
        except ValueError:
            return data
    return data
