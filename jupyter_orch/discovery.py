"""How clients and the CLI find a server: ``--url/--token`` (or ``connect(url, token)``), else
``JUPYTER_ORCH_URL/TOKEN``, else the connection file a running server writes in its data
directory (``server.json``: its URL, API token, pid and host).

A connection file whose server is not running (a crashed server leaves it behind) is
refused in one sentence that names the file and what to do, never followed to a dead
address; a server that exits normally removes its own file.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir

CONNECTION_FILE = "server.json"
START_ONE = "start one with `jupyter orch serve` (or JupyterLab with the jupyter-orch extension)"


class NoServer(RuntimeError):
    """No server to talk to; the message says why and what to do, in one sentence."""


@dataclass(frozen=True)
class ServerAddress:
    url: str
    token: str | None
    source: Path | None = None  # the connection file it came from, if it did


def default_data_dir() -> Path:
    return Path(os.environ.get("JUPYTER_ORCH_DATA_DIR") or os.path.join(jupyter_data_dir(), "orch"))


def connection_file() -> Path:
    return default_data_dir() / CONNECTION_FILE


def write_connection_file(data_dir: str, url: str, token: str) -> Path:
    path = Path(data_dir) / CONNECTION_FILE
    tmp = path.with_name(f".{CONNECTION_FILE}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": url, "token": token, "pid": os.getpid(), "hostname": socket.gethostname()}, f)
    os.replace(tmp, path)  # workers re-read it while they reconnect: never half written
    return path


def remove_connection_file(data_dir: str) -> None:
    """Remove this process's connection file (not one a newer server wrote since)."""
    path = Path(data_dir) / CONNECTION_FILE
    try:
        info = json.loads(path.read_text())
        if info.get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def not_running(info: dict[str, Any], path: Path) -> str | None:
    """Why the server a connection file names is surely not running (None: it may be)."""
    pid = info.get("pid")
    host = info.get("hostname")
    if not isinstance(pid, int) or (host and host != socket.gethostname()):
        return None  # written on another machine (a shared home): its pid says nothing here
    try:
        import psutil

        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return f"its process {pid} has exited"
        if proc.create_time() > path.stat().st_mtime + 1:
            return f"its process {pid} has exited; that pid is another process now"
    except psutil.NoSuchProcess:
        return f"its process {pid} is gone"
    except (psutil.Error, OSError):
        return None
    return None


def locate(url: str | None = None, token: str | None = None) -> ServerAddress:
    """The server to talk to; :class:`NoServer` when there is none to be found."""
    url = url or os.environ.get("JUPYTER_ORCH_URL")
    token = token or os.environ.get("JUPYTER_ORCH_TOKEN")
    if url:
        return ServerAddress(url, token)
    path = connection_file()
    try:
        info = json.loads(path.read_text())
        found = str(info["url"])
    except FileNotFoundError:
        raise NoServer(
            f"no jupyter-orch server found (no {path}): {START_ONE}, or pass --url/--token "
            "(or set JUPYTER_ORCH_URL and JUPYTER_ORCH_TOKEN)."
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NoServer(f"cannot read {path} ({exc}): {START_ONE}, or pass --url/--token.") from None
    why = not_running(info, path)
    if why is not None:
        raise NoServer(
            f"the jupyter-orch server named in {path} ({found}) is not running ({why}); {START_ONE}, "
            "or delete that file if it was left by a server that crashed."
        )
    return ServerAddress(found, token or info.get("token"), path)


def find_server(url: str | None, token: str | None) -> tuple[str, str | None]:
    """For the CLI: the server's URL and token, or exit with the one sentence that says why not."""
    try:
        found = locate(url, token)
    except NoServer as exc:
        raise SystemExit(f"jupyter orch: {exc}") from None
    return found.url, found.token
