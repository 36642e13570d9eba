"""``jupyter orch db upgrade|current``: the database's schema, outside the server (the Helm
chart's migration Job runs ``upgrade`` before a new version of the service starts; the
server also upgrades at start, so a personal install never needs it).

The database is ``--db-url``, else ``$JUPYTER_ORCH_DB_URL``, else ``c.OrchApp.db_url`` of
the ``--config`` file (the traitlets config the service runs with, JSON or Python).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from traitlets.config.loader import JSONFileConfigLoader, PyFileConfigLoader

from ..core.errors import SpecError, Unavailable


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action", choices=["upgrade", "current"], help="upgrade: to the newest schema; current: print it"
    )
    p.add_argument(
        "--db-url", help="SQLAlchemy URL (default: $JUPYTER_ORCH_DB_URL or the config's OrchApp.db_url)"
    )
    p.add_argument(
        "--config", metavar="FILE", help="a traitlets config file (.json or .py) with c.OrchApp.db_url"
    )
    p.set_defaults(func=cmd_db)


def database_url(args: argparse.Namespace) -> str:
    url = args.db_url or os.environ.get("JUPYTER_ORCH_DB_URL")
    if not url and args.config:
        path = Path(args.config)
        if not path.is_file():
            raise SpecError(f"no config file at {path}", field="--config")
        loader_cls = JSONFileConfigLoader if path.suffix == ".json" else PyFileConfigLoader
        try:
            config = loader_cls(path.name, str(path.parent)).load_config()
        except Exception as exc:  # the loader's own message names the line
            raise SpecError(f"cannot read {path}: {exc}", field="--config") from None
        url = config.get("OrchApp", {}).get("db_url") or ""
        if not url:
            raise SpecError(f"{path} sets no OrchApp.db_url", field="--config")
    if not url:
        raise SpecError(
            "which database? pass --db-url, set JUPYTER_ORCH_DB_URL, or --config FILE", field="--db-url"
        )
    return str(url)


def cmd_db(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from ..store import SqlStore

    url = database_url(args)
    try:
        store = SqlStore(url)
    except (SQLAlchemyError, ValueError) as exc:
        raise SpecError(f"not a database URL SQLAlchemy knows: {exc}", field="--db-url") from None
    try:
        before = store.revision()
        if args.action == "current":
            print(before or "empty (no schema yet: run `jupyter orch db upgrade`)")
            return 0
        store.migrate()
        after = store.revision()
    except SQLAlchemyError as exc:
        raise Unavailable(f"database {store!r}: {str(exc).splitlines()[0]}") from None
    finally:
        store.close()
    print(
        f"database {store!r}: schema at {after}" + ("" if before == after else f" (was {before or 'empty'})")
    )
    return 0
