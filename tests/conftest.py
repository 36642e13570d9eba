"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.orchserver import OrchServer

PG_URL = os.environ.get("JUPYTER_ORCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


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
