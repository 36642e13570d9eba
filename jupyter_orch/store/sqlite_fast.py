"""The SQLite hot path: the engine's per-task writes as DBAPI ``executemany`` calls with SQL
built once per column set, on a DBAPI cursor (of the store's writer connection, or of the
transaction SQLAlchemy opened).

SQLAlchemy Core costs a tenth of a millisecond or more per statement in parameter
processing; for the few statements every task needs (its insert, its updates, its attempts,
its small blobs) that was most of the database thread's time. Other databases keep the Core
path.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, cast

from sqlalchemy import JSON, Connection, Table
from sqlalchemy.exc import DBAPIError

_SQL: dict[tuple[str, str, tuple[str, ...]], str] = {}
_JSON_COLUMNS: dict[str, frozenset[str]] = {}


def _json_columns(table: Table) -> frozenset[str]:
    cols = _JSON_COLUMNS.get(table.name)
    if cols is None:
        cols = _JSON_COLUMNS[table.name] = frozenset(
            c.name for c in table.columns if isinstance(c.type, JSON)
        )
    return cols


def _params(table: Table, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    as_json = [c in _json_columns(table) for c in columns]
    return [
        tuple(
            json.dumps(row[c]) if j and row[c] is not None else row[c]
            for c, j in zip(columns, as_json, strict=True)
        )
        for row in rows
    ]


def cursor_of(conn: Connection) -> sqlite3.Cursor:
    """A DBAPI cursor on the connection (and transaction) SQLAlchemy holds."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None  # a connection SQLAlchemy holds open
    return cast(sqlite3.Cursor, dbapi.cursor())


def execute(cursor: sqlite3.Cursor, sql: str) -> None:
    """One statement (BEGIN, COMMIT, ...); errors become SQLAlchemy's."""
    try:
        cursor.execute(sql)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, (), exc, sqlite3.Error) from exc


def _executemany(cursor: sqlite3.Cursor, sql: str, params: list[tuple[Any, ...]]) -> int:
    """Run on a DBAPI cursor; errors become SQLAlchemy's, as on the Core path."""
    try:
        cursor.executemany(sql, params)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, params, exc, sqlite3.Error) from exc
    return int(cursor.rowcount)


def insert_rows(cursor: sqlite3.Cursor, table: Table, rows: list[dict[str, Any]]) -> None:
    columns = tuple(rows[0])
    key = ("insert", table.name, columns)
    sql = _SQL.get(key)
    if sql is None:
        sql = _SQL[key] = (
            f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        )
    _executemany(cursor, sql, _params(table, columns, rows))


def update_rows(cursor: sqlite3.Cursor, table: Table, rows: list[dict[str, Any]]) -> int:
    """UPDATE ... WHERE <primary key> for each row; returns how many rows matched."""
    pk = tuple(c.name for c in table.primary_key.columns)
    columns = tuple(c for c in rows[0] if c not in pk)
    key = ("update", table.name, columns)
    sql = _SQL.get(key)
    if sql is None:
        sets = ", ".join(f"{c} = ?" for c in columns)
        where = " AND ".join(f"{c} = ?" for c in pk)
        sql = _SQL[key] = f"UPDATE {table.name} SET {sets} WHERE {where}"
    return _executemany(cursor, sql, _params(table, columns + pk, rows))


def upsert_rows(cursor: sqlite3.Cursor, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT (<primary key>) DO UPDATE every other column."""
    pk = tuple(c.name for c in table.primary_key.columns)
    columns = tuple(rows[0])
    key = ("upsert", table.name, columns)
    sql = _SQL.get(key)
    if sql is None:
        sets = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in pk)
        sql = _SQL[key] = (
            f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
            f"ON CONFLICT ({', '.join(pk)}) DO UPDATE SET {sets}"
        )
    _executemany(cursor, sql, _params(table, columns, rows))
