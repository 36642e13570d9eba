"""Fixtures for the store tests: a migrated SqlStore on SQLite (a file in tmp_path) and on
PostgreSQL (127.0.0.1:5432, database ``test``, one fresh schema per test)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from jupyter_orch.store import SqlStore

PG_SERVER = os.environ.get("JUPYTER_ORCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

_pg_available: bool | None = None


def _pg_admin():  # type: ignore[no-untyped-def]
    return create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")


def pg_available() -> bool:
    global _pg_available
    if _pg_available is None:
        engine = _pg_admin()
        try:
            with engine.connect() as conn:
                conn.execute(text("select 1"))
            _pg_available = True
        except Exception:
            _pg_available = False
        finally:
            engine.dispose()
    return _pg_available


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new, empty schema (dropped afterwards)."""
    if not pg_available():
        pytest.skip(f"no PostgreSQL server at {PG_SERVER}")
    schema = f"orch_t_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        # A plain postgresql:// URL on purpose: the store must point it at psycopg 3.
        yield (
            PG_SERVER.replace("postgresql+psycopg://", "postgresql://") + f"?options=-csearch_path%3D{schema}"
        )
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'db' / 'orch.sqlite'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return request.getfixturevalue(name)


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    s = SqlStore(db_url)
    s.migrate()
    try:
        yield s
    finally:
        s.close()
