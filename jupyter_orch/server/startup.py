"""Starting the engine of a server that runs one (not a client-mode server): the settings
checked first (a bad one stops the start before anything runs), the database opened and
migrated, the blob, log and metric stores, the provider, the kernels' token and the connection
file, then the schedules and, in team mode, the hub's groups. What it started comes back
as :class:`Started`, which the extension app keeps and stops."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_server.utils import url_path_join

from .._version import __version__
from ..core.errors import SpecError
from ..core.fairshare import Shares
from ..discovery import write_connection_file
from ..engine import Engine
from ..engine.schedules import Schedules
from ..providers import PROVIDERS, ProviderContext
from ..store import FileLogStore, FileMetricStore, SqlStore
from .keys import kernels_api_token, task_token_key
from .openapi import API_BASE
from .sharing import HubGroups

if TYPE_CHECKING:
    from .app import OrchApp


@dataclass
class Started:
    engine: Engine
    store: SqlStore
    logs: FileLogStore
    metrics: FileMetricStore
    schedules: Schedules
    hub_groups: HubGroups | None


def database_url(app: OrchApp) -> str:
    if app.db_url:
        return app.db_url
    return "sqlite:///" + os.path.join(app.data_dir, "orch.sqlite")


def worker_url(app: OrchApp, serverapp: Any) -> str:
    """The URL workers (and kernels) use to reach this server."""
    if app.worker_url:
        return app.worker_url.rstrip("/")
    base = serverapp.base_url or "/"
    return str(url_path_join(f"http://127.0.0.1:{serverapp.port}", base)).rstrip("/")


def hub_api(app: OrchApp, shares: Shares | None) -> tuple[str, str] | None:
    """The hub's API URL and our token, when the hub's groups are to be followed."""
    if app.hub_groups_interval <= 0 or shares is None:
        return None
    url, token = os.environ.get("JUPYTERHUB_API_URL"), os.environ.get("JUPYTERHUB_API_TOKEN")
    if not url or not token:
        raise SpecError(
            "c.OrchApp.hub_groups_interval needs JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN "
            "(the orchestrator running as a JupyterHub service)"
        )
    return url, token


async def start_engine(app: OrchApp, serverapp: Any, log: logging.Logger | Any) -> Started:
    """Start it all; what started before a failure is stopped again before it is raised."""
    shares = app.fair_shares()  # settings first: a bad one stops us before anything starts
    hub = hub_api(app, shares)
    Path(app.data_dir).mkdir(parents=True, exist_ok=True)
    url = database_url(app)
    store = app.store_class(url)
    await asyncio.get_running_loop().run_in_executor(None, store.migrate)
    blobs = app.blob_store_class(os.path.join(app.data_dir, "blobs"))
    logs = app.log_store_class(os.path.join(app.data_dir, "logs"))
    metrics = app.metric_store_class(os.path.join(app.data_dir, "metrics"))
    config = dataclasses.replace(
        app.engine_config, task_token_secret=task_token_key(app.data_dir), shares=shares
    )
    provider_cls = app.provider_class or PROVIDERS.get(app.provider)
    if provider_cls is None:
        raise ValueError(
            f"OrchApp.provider: unknown provider {app.provider!r}; known: {', '.join(PROVIDERS)}"
        )
    provider = provider_cls(parent=app)
    engine = Engine(store, blobs, logs, config, provider=provider, metrics=metrics)
    await engine.start()
    try:
        return await _start_around(app, serverapp, log, engine, store, logs, metrics, shares, hub, url)
    except BaseException:
        await engine.stop()
        logs.close()
        metrics.close()
        store.close()
        raise


async def _start_around(
    app: OrchApp,
    serverapp: Any,
    log: logging.Logger | Any,
    engine: Engine,
    store: SqlStore,
    logs: FileLogStore,
    metrics: FileMetricStore,
    shares: Shares | None,
    hub: tuple[str, str] | None,
    url: str,
) -> Started:
    """What runs around a started engine: the kernels' token, the provider, schedules, hub groups."""
    provider = engine.provider
    assert provider is not None

    async def issue_worker_token(
        name: str, provider_name: str, *, owner: str | None = None, group: str | None = None
    ) -> tuple[str, str]:
        """A provider's worker token: shared (no owner: the service's workers) unless issued
        for a user's or a group's tasks."""
        token, secret = await engine.create_token(
            name, scope="worker", owner=owner or "", provider=provider_name, group=group or ""
        )
        return token.id, secret

    schedules = Schedules(engine, store, app.run_files.prepare)
    server_url = worker_url(app, serverapp)
    secret = await kernels_api_token(app.data_dir, engine, app.owner)
    if app.set_kernel_env:
        os.environ["JUPYTER_ORCH_URL"] = server_url
        os.environ["JUPYTER_ORCH_TOKEN"] = secret
    write_connection_file(app.data_dir, server_url, secret)
    context = ProviderContext(
        server_url=server_url,
        data_dir=app.data_dir,
        issue_worker_token=issue_worker_token,
        revoke_token=engine.revoke_token,
        set_pending_reason=engine.set_pending_reason,
        fail_pending=engine.fail_pending,
        pending_tasks=engine.pending_tasks,
        worker_status=engine.worker_status,
        retire_worker=engine.retire_worker,
        worker_lost=engine.worker_lost,
    )
    await provider.start(context)
    log.info(
        "jupyter-orch %s: API at %s%s, database %s, provider %s",
        __version__,
        server_url,
        API_BASE,
        redact(url),
        provider.name,
    )
    schedules.start()
    hub_groups = None
    if hub is not None and shares is not None:  # team mode: the hub's groups and their settings
        hub_groups = HubGroups(shares, *hub, app.hub_groups_interval, apply=engine.set_shares, logger=log)
        hub_groups.start()
    return Started(engine, store, logs, metrics, schedules, hub_groups)


def redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
    return url
