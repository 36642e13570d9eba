"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from support.orchserver import OrchServer

PG_SERVER = os.environ.get("JUPYTER_ORCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new, empty schema (dropped afterwards).

    PostgreSQL is part of the test environment: when it is unreachable the test fails
    (set JUPYTER_ORCH_TEST_PG to point elsewhere)."""
    admin = create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    schema = f"orch_t_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL at {PG_SERVER} is needed by this test and is not reachable: {exc}")
    try:
        # a plain postgresql:// URL on purpose: the store must point it at psycopg 3
        yield (
            PG_SERVER.replace("postgresql+psycopg://", "postgresql://") + f"?options=-csearch_path%3D{schema}"
        )
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def orch_factory(tmp_path: Path) -> Iterator:
    """Start real orch servers (``jupyter orch serve`` + local workers); all are cleaned up."""
    servers: list[OrchServer] = []

    def make(name: str = "server", **kwargs) -> OrchServer:
        server = OrchServer(tmp_path / name, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.cleanup()


@pytest.fixture(scope="module")
def orch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrchServer]:
    """One running server with 2 local workers for a whole test module (start-up costs
    seconds); tests that stop, kill or reconfigure servers use ``orch_factory``."""
    server = OrchServer(tmp_path_factory.mktemp("orch"), args=["--OrchApp.worker_grace=3"])
    try:
        server.start()
        server.wait_workers()
        yield server
    finally:
        server.cleanup()
