"""The store's API and worker tokens (only a hash of each secret is kept), written directly
rather than in the engine's batches."""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import insert, select, update

from ..core.ids import new_id
from ..core.records import TokenRow
from .convert import token_from_row
from .database import Database
from .models import TOKENS

TOKEN_PREFIX = "orch_"


def hash_secret(secret: str) -> str:
    """What the database keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class TokenTable:
    """Tokens in ``db``: created with a secret shown once, found by secret, revoked."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create_token(
        self, name: str, *, scope: str = "worker", owner: str = "", provider: str = "static", group: str = ""
    ) -> tuple[TokenRow, str]:
        """A new token and its secret. The secret is shown once: only its hash is stored."""
        if scope not in ("worker", "api"):
            raise ValueError(f"token scope must be 'worker' or 'api', not {scope!r}")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = TokenRow(
            id=new_id(),
            name=name,
            scope=scope,
            owner=owner,
            provider=provider,
            created_at=time.time(),
            group=group,
        )
        values = {
            "id": row.id,
            "name": row.name,
            "scope": row.scope,
            "owner": row.owner,
            "provider": row.provider,
            "group_name": row.group,
            "secret_hash": hash_secret(secret),
            "created_at": row.created_at,
            "revoked_at": None,
        }
        with self.db.connect(write=True) as conn, conn.begin():
            conn.execute(insert(TOKENS), values)
        return row, secret

    def find_token(self, secret: str) -> TokenRow | None:
        """The token whose secret this is, revoked or not (check ``.revoked``); None if unknown."""
        if not secret:
            return None
        t = TOKENS
        with self.db.connect() as conn:
            row = conn.execute(select(t).where(t.c.secret_hash == hash_secret(secret))).first()
        return token_from_row(row._mapping) if row is not None else None

    def revoke_token(self, token_id: str) -> bool:
        """Revoke a token (idempotent: an already revoked one keeps its time); False if unknown."""
        t = TOKENS
        with self.db.connect(write=True) as conn, conn.begin():
            exists = conn.execute(select(t.c.id).where(t.c.id == token_id)).first() is not None
            if exists:
                conn.execute(
                    update(t)
                    .where(t.c.id == token_id, t.c.revoked_at.is_(None))
                    .values(revoked_at=time.time())
                )
        return exists

    def list_tokens(self, scope: str | None = None) -> list[TokenRow]:
        t = TOKENS
        query = select(t).order_by(t.c.created_at, t.c.id)
        if scope is not None:
            query = query.where(t.c.scope == scope)
        with self.db.connect() as conn:
            return [token_from_row(r._mapping) for r in conn.execute(query)]
