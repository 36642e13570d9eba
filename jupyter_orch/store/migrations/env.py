"""Alembic environment for jupyter-orch's store.

Run by :meth:`jupyter_orch.store.SqlStore.migrate`, which passes an open connection in
``config.attributes["connection"]``. When run from the ``alembic`` command line instead,
the URL comes from ``sqlalchemy.url`` in the config (or the ``JUPYTER_ORCH_DB_URL``
environment variable).
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection

# absolute: Alembic runs this file as a script, not as a module of the package
from jupyter_orch.store.database import make_engine
from jupyter_orch.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("JUPYTER_ORCH_DB_URL")
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=bool(url and url.startswith("sqlite")),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("JUPYTER_ORCH_DB_URL")
    if not url:
        raise RuntimeError("no database: set sqlalchemy.url or JUPYTER_ORCH_DB_URL")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            _configure(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
