"""Alembic migrations of the store, run in code by :meth:`SqlStore.migrate` (no alembic.ini)."""

from __future__ import annotations

import os

from alembic.config import Config

MIGRATIONS_DIR = os.path.dirname(os.path.abspath(__file__))


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at this folder; pass a connection in ``attributes``."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIR)
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config
