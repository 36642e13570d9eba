"""How clients and the CLI find a server: ``--url/--token``, else ``JUPYTER_ORCH_URL/TOKEN``, else
the connection file a running server writes in its data directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir

CONNECTION_FILE = "server.json"


def default_data_dir() -> Path:
    return Path(os.environ.get("JUPYTER_ORCH_DATA_DIR") or os.path.join(jupyter_data_dir(), "orch"))


def write_connection_file(data_dir: str, url: str, token: str) -> Path:
    path = Path(data_dir) / CONNECTION_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": url, "token": token, "pid": os.getpid()}, f)
    return path


def remove_connection_file(data_dir: str) -> None:
    path = Path(data_dir) / CONNECTION_FILE
    try:
        info = json.loads(path.read_text())
        if info.get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def find_server(url: str | None, token: str | None) -> tuple[str, str | None]:
    url = url or os.environ.get("JUPYTER_ORCH_URL")
    token = token or os.environ.get("JUPYTER_ORCH_TOKEN")
    if url:
        return url, token
    path = default_data_dir() / CONNECTION_FILE
    try:
        info = json.loads(path.read_text())
        return info["url"], token or info.get("token")
    except (OSError, ValueError, KeyError):
        raise SystemExit(
            "jupyter orch: no server found. Start one with `jupyter orch serve` (or JupyterLab with the "
            "extension), or pass --url/--token (or set JUPYTER_ORCH_URL and JUPYTER_ORCH_TOKEN)."
        ) from None
