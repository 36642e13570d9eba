"""A kernel of a Jupyter server, driven as JupyterLab drives it: started over the REST API,
code sent as ``execute_request`` on its WebSocket (the JSON protocol), the outputs of that
request collected until the kernel is idle again."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import websocket


@dataclass
class Outputs:
    text: str = ""  # streams, and the text/plain of results and displays
    errors: list[str] = field(default_factory=list)  # "Name: value" of each error


class Kernel:
    def __init__(self, server_url: str, token: str, timeout: float = 120) -> None:
        """``server_url``: the server's base URL (``http://hub/user/alice``)."""
        self.url = server_url.rstrip("/")
        self.headers = {"Authorization": f"token {token}"}
        request = urllib.request.Request(
            f"{self.url}/api/kernels",
            data=b"{}",
            method="POST",
            headers={**self.headers, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            self.id = json.loads(resp.read())["id"]
        ws_url = "ws" + self.url[len("http") :] + f"/api/kernels/{self.id}/channels"
        self.ws = websocket.create_connection(
            ws_url,
            header=[f"{k}: {v}" for k, v in self.headers.items()],
            timeout=timeout,
            suppress_origin=True,
        )
        self.session = uuid.uuid4().hex

    def execute(
        self, code: str, timeout: float = 180, on_text: Callable[[str], None] | None = None
    ) -> Outputs:
        """Run ``code``; its outputs once the kernel is idle (``on_text``: called with the
        text so far at each stream output, to act while the cell runs)."""
        msg_id = uuid.uuid4().hex
        self.ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "username": "test",
                        "session": self.session,
                        "msg_type": "execute_request",
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": True,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },  # fmt: skip
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        out = Outputs()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            raw = self.ws.recv()
            if isinstance(raw, bytes):
                continue  # a message with binary buffers (widgets): not what the tests read
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.text += content["text"]
                if on_text is not None:
                    on_text(out.text)
            elif kind in ("execute_result", "display_data", "update_display_data"):
                out.text += str(content.get("data", {}).get("text/plain", "")) + "\n"
            elif kind == "error":
                out.errors.append(f"{content['ename']}: {content['evalue']}")
            elif kind == "status" and content["execution_state"] == "idle":
                return out
        raise TimeoutError(f"the kernel did not finish running:\n{code}\nso far: {out}")

    def close(self) -> None:
        self.ws.close()
        request = urllib.request.Request(
            f"{self.url}/api/kernels/{self.id}", method="DELETE", headers=self.headers
        )
        try:
            urllib.request.urlopen(request, timeout=30).close()
        except OSError:
            pass
