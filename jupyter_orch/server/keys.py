"""The credentials the server keeps in its data dir, readable by its user only: the key
that signs task tokens, and the API token its kernels use. Both survive a restart, so the
tokens of tasks running through it, and kernels' environments, stay valid."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ..engine import Engine


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def task_token_key(data_dir: str) -> bytes:
    """The key that signs task tokens (created on first start)."""
    path = Path(data_dir) / "task-token.key"
    try:
        key = path.read_bytes().strip()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32).encode()
    _write_private(path, key)
    return key


async def kernels_api_token(data_dir: str, engine: Engine, owner: str) -> str:
    """The API token the server's kernels act with, as ``owner`` (issued on first start,
    or again when the one kept was revoked or is another owner's)."""
    path = Path(data_dir) / "api-token"
    try:
        secret = path.read_text().strip()
        token = await engine.find_token(secret)
        if token is not None and not token.revoked and token.scope == "api" and token.owner == owner:
            return secret
    except OSError:
        pass
    _, secret = await engine.create_token("kernels", scope="api", owner=owner, provider="server")
    _write_private(path, secret.encode())
    return secret
