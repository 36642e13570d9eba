"""Fixtures for the store tests: a migrated SqlStore on SQLite (a file in tmp_path) and on
PostgreSQL (127.0.0.1:5432, database ``test``, one fresh schema per test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jupyter_orch.store import SqlStore


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
