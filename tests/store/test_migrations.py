"""The Alembic migrations: they run in code, are idempotent and match the models."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from jupyter_orch.store import SqlStore
from jupyter_orch.store.migrations import MIGRATIONS_DIR, alembic_config
from jupyter_orch.store.models import Base

TABLES = {
    "orch_tasks",
    "orch_attempts",
    "orch_workers",
    "orch_tokens",
    "orch_blobs",
    "orch_runs",
    "orch_step_cache",
    "orch_schedules",
    "orch_searches",
}
HEAD = "0006"


def _diff(store: SqlStore) -> list[object]:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, Base.metadata))


def test_migrate_empty_then_again(db_url: str) -> None:
    store = SqlStore(db_url)
    try:
        assert store.revision() is None
        store.migrate()
        assert store.revision() == HEAD
        tables = set(inspect(store.engine).get_table_names())
        assert TABLES <= tables
        assert "alembic_version" in tables
        store.next_seq()  # usable
        store.migrate()  # at head: nothing to do, no error
        assert store.revision() == HEAD
    finally:
        store.close()
    # a second store on the same database (a restarted server) migrates as a no-op
    again = SqlStore(db_url)
    try:
        again.migrate()
        assert again.revision() == HEAD
    finally:
        again.close()


def test_models_match_migrations(store: SqlStore) -> None:
    assert _diff(store) == []


def test_indexes_exist(store: SqlStore) -> None:
    inspector = inspect(store.engine)
    task_indexes = {ix["name"]: ix for ix in inspector.get_indexes("orch_tasks")}
    assert task_indexes["ix_orch_tasks_owner_seq"]["column_names"] == ["owner", "seq"]
    assert task_indexes["ix_orch_tasks_state"]["column_names"] == ["state"]
    assert task_indexes["ix_orch_tasks_seq"]["unique"]
    assert [ix["column_names"] for ix in inspector.get_indexes("orch_blobs")] == [["task_id"]]
    fks = inspector.get_foreign_keys("orch_attempts")
    assert fks[0]["referred_table"] == "orch_tasks"


def test_downgrade_to_base_and_up_again(store: SqlStore) -> None:
    config = alembic_config()
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert not TABLES & set(inspect(store.engine).get_table_names())
    store.migrate()
    assert _diff(store) == []


def test_migrations_ship_inside_the_package() -> None:
    import os

    import jupyter_orch.store

    package = os.path.dirname(jupyter_orch.store.__file__)
    assert MIGRATIONS_DIR == os.path.join(package, "migrations")
    for name in ("env.py", "script.py.mako", os.path.join("versions", "0001_initial.py")):
        assert os.path.isfile(os.path.join(MIGRATIONS_DIR, name))


def test_upgrade_from_the_first_revision_keeps_data(db_url: str) -> None:
    """A database made by an older release (at 0001) is brought to head with its rows."""
    from sqlalchemy import text

    store = SqlStore(db_url)
    try:
        config = alembic_config()
        with store.engine.connect() as conn, conn.begin():
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
            conn.execute(
                text(
                    "INSERT INTO orch_blobs (key, size, task_id, kind, created_at) "
                    "VALUES ('old/blob', 3, NULL, 'result', 1.0)"
                )
            )
        assert store.revision() == "0001"
        store.migrate()
        assert store.revision() == HEAD
        assert store.blob_keys("") == [] and _diff(store) == []
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT size, data FROM orch_blobs WHERE key = 'old/blob'")).one() == (
                3,
                None,
            )
    finally:
        store.close()
