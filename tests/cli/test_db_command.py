"""``jupyter orch db upgrade|current`` (the Helm chart's migration Job): the schema brought to
the newest revision in a real PostgreSQL (and SQLite), the database found from --db-url, the
environment or the service's own config file, and every mistake named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from jupyter_orch.store.migrations import alembic_config

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def orch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "JUPYTER_ORCH_DB_URL"}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "jupyter_orch", *args], capture_output=True, text=True, env=full, timeout=120
    )


def test_upgrade_brings_an_empty_postgresql_to_the_newest_schema_once(pg_url: str) -> None:
    assert orch("db", "current", "--db-url", pg_url).stdout.startswith("empty")
    first = orch("db", "upgrade", "--db-url", pg_url)
    assert first.returncode == 0, first.stderr
    assert f"schema at {HEAD} (was empty)" in first.stdout
    again = orch("db", "upgrade", env={"JUPYTER_ORCH_DB_URL": pg_url})
    assert again.returncode == 0 and again.stdout.rstrip().endswith(f"schema at {HEAD}")
    assert orch("db", "current", "--db-url", pg_url).stdout.strip() == HEAD


def test_the_database_comes_from_the_services_config_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'orch.sqlite'}"
    config = tmp_path / "jupyter_server_config.json"
    config.write_text(json.dumps({"OrchApp": {"db_url": url, "owner_from": "identity"}}))
    done = orch("db", "upgrade", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert orch("db", "current", "--db-url", url).stdout.strip() == HEAD


def test_mistakes_are_named_and_change_nothing(tmp_path: Path) -> None:
    none = orch("db", "upgrade")
    assert none.returncode == 1 and "which database? pass --db-url" in none.stderr
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    assert f"{empty} sets no OrchApp.db_url" in orch("db", "upgrade", "--config", str(empty)).stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"OrchApp": ')
    assert f"cannot read {broken}" in orch("db", "upgrade", "--config", str(broken)).stderr
    down = orch("db", "upgrade", "--db-url", "postgresql://nobody@127.0.0.1:1/test")
    assert down.returncode == 1 and "connection" in down.stderr.lower() and "Traceback" not in down.stderr
