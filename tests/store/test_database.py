"""make_engine: SQLite connection settings and URL handling."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from jupyter_orch.store import make_engine
from jupyter_orch.store.database import normalize_url


def test_sqlite_file_pragmas_and_parent_dir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "a" / "b" / "orch.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10000
        assert path.parent.is_dir()
        assert path.exists()
    finally:
        engine.dispose()


def test_sqlite_connection_usable_from_other_threads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    results: list[object] = []

    def work() -> None:
        with engine.connect() as conn:
            results.append(conn.execute(text("select 1")).scalar())

    try:
        work()  # leaves a connection made on this thread in the pool
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        assert results == [1, 1]
    finally:
        engine.dispose()


def test_sqlite_transactions_are_real(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    try:
        with engine.begin() as conn:
            conn.execute(text("create table t (x integer)"))
        with pytest.raises(RuntimeError), engine.begin() as conn:
            conn.execute(text("insert into t values (1)"))
            raise RuntimeError("roll back")
        with engine.connect() as conn:
            assert conn.execute(text("select count(*) from t")).scalar() == 0
    finally:
        engine.dispose()


def test_sqlite_in_memory_shares_one_database() -> None:
    engine = make_engine("sqlite://")
    try:
        with engine.begin() as conn:
            conn.execute(text("create table t (x integer)"))
            conn.execute(text("insert into t values (1)"))
        with engine.connect() as conn:
            assert conn.execute(text("select x from t")).scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg"),
        ("postgres://u:p@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_normalize_url(url: str, driver: str) -> None:
    assert normalize_url(url).drivername == driver


def test_postgres_engine_uses_psycopg3() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:5432/test")
    try:
        assert engine.dialect.driver == "psycopg"
        assert engine.pool._pre_ping  # type: ignore[attr-defined]
    finally:
        engine.dispose()
