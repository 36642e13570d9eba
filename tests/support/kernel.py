"""Run code in a kernel that a real Jupyter server started (so it inherits the server's
environment), over the server's own kernel WebSocket protocol."""

from __future__ import annotations

import json
import struct
import uuid
from datetime import datetime, timezone
from typing import Any

import websocket

from .orchserver import OrchServer


def _message(frame: str | bytes) -> dict[str, Any]:
    """A kernel message from a WebSocket frame: text is the JSON message; a binary frame
    (a message with buffers, e.g. a widget's PNG) is Jupyter's framing: the number of parts,
    their offsets (big-endian uint32), then the parts, the first the JSON message."""
    if isinstance(frame, str):
        return json.loads(frame)
    (parts,) = struct.unpack_from(">I", frame, 0)
    offsets = struct.unpack_from(f">{parts}I", frame, 4)
    end = offsets[1] if parts > 1 else len(frame)
    return json.loads(frame[offsets[0] : end])


class ServerKernel:
    def __init__(self, server: OrchServer, timeout: float = 120) -> None:
        self.server = server
        self.base = server.url
        self.headers = {"Authorization": f"token {server.jupyter_token}"}
        self.kernel_id = self._post("/api/kernels", {"name": "python3"})["id"]
        url = self.base.replace("http://", "ws://") + f"/api/kernels/{self.kernel_id}/channels"
        self.ws = websocket.create_connection(
            url, header=[f"{k}: {v}" for k, v in self.headers.items()], timeout=timeout, suppress_origin=True
        )
        self.session = uuid.uuid4().hex

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        import urllib.request

        req = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={**self.headers, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req) as resp:
            return json.loads(resp.read())

    def execute(self, code: str) -> dict[str, Any]:
        """Run ``code``; returns stdout text, display data and the error (if any)."""
        msg_id = uuid.uuid4().hex
        self.ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "session": self.session,
                        "username": "test",
                        "version": "5.3",
                        "date": datetime.now(timezone.utc).isoformat(),
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "buffers": [],
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": True,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                }
            )
        )
        out: dict[str, Any] = {"stdout": "", "stderr": "", "results": [], "error": None}
        idle = replied = False
        while not (idle and replied):
            msg = _message(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out[content["name"]] += content["text"]
            elif kind in ("execute_result", "display_data"):
                out["results"].append(content["data"])
            elif kind == "error":
                out["error"] = f"{content['ename']}: {content['evalue']}\n" + "\n".join(content["traceback"])
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
            elif kind == "execute_reply":
                replied = True
        return out

    def close(self) -> None:
        self.ws.close()
        import urllib.request

        req = urllib.request.Request(
            self.base + f"/api/kernels/{self.kernel_id}", method="DELETE", headers=self.headers
        )
        urllib.request.urlopen(req).close()
