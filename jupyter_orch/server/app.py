"""``OrchApp``: the jupyter-server extension that hosts the API service and the engine.

Configured with traitlets (``c.OrchApp.*``); the store URL, the blob store class, the
provider and the scheduling policy are swappable by configuration. At start it starts the
engine (:mod:`.startup`: database, recovery, provider, the kernels' environment) or, with
``service_url`` set, runs as a client of the hub's orchestrator service (:mod:`.clientmode`).
"""

from __future__ import annotations

import asyncio
import getpass
import os
import signal
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Enum, Float, Int, Type, Unicode, default

from .._version import __version__
from ..core.errors import Unavailable
from ..core.fairshare import Shares
from ..core.resources import parse_memory
from ..core.scheduler import Placement
from ..discovery import remove_connection_file
from ..engine import Engine, EngineConfig
from ..engine.schedules import Schedules
from ..providers import Provider
from ..store import BlobStore, FileBlobStore, FileLogStore, FileMetricStore, SqlStore
from ..store.runfiles import RunFiles
from . import (
    admin,
    checkpoints,
    metrics,
    notebooks,
    openapi,
    schedules,
    searches,
    tasks,
    timeline,
    websockets,
    workers,
    workflows,
)
from .clientmode import ServiceLink, client_handlers, start_client_mode
from .sharing import HubGroups, shares_from_settings
from .signals import restore_sigint, stop_on_sigint
from .startup import start_engine

API = openapi.API_BASE
ID = r"(?P<task_id>[0-9a-z]{26})"


class OrchApp(ExtensionApp):
    name = "jupyter_orch"
    description = "Jupyter-native orchestration of ML work on GPUs"
    load_other_extensions = True
    # inside a whole Jupyter server, the notebooks stay up when jupyter-orch cannot start;
    # `jupyter orch serve` (only us) stops instead
    stop_server_on_failure = False
    start_error: BaseException | None = None

    db_url = Unicode(
        "",
        config=True,
        help="SQLAlchemy URL of the database (default: SQLite in the data directory). "
        "PostgreSQL: postgresql://user@host/db",
    )
    data_dir = Unicode(config=True, help="Where the database, payloads, results, logs and metrics live.")
    run_dir_root = Unicode(
        config=True,
        help="Where workflow runs get their shared directory (ORCH_RUN_DIR): a local path "
        "(default <data_dir>/runs), the mount path of a PersistentVolumeClaim that worker pods "
        "mount at the same path, or an fsspec URL such as s3://bucket/runs.",
    )
    checkpoint_root = Unicode(
        config=True,
        help="Where tasks keep the checkpoints they save with jupyter_orch.checkpoint.save "
        "($JUPYTER_ORCH_CHECKPOINTS = <root>/<task id>; a workflow step's go into its run "
        "directory): a local path (default <data_dir>/checkpoints), a PersistentVolumeClaim's "
        "mount path, or an fsspec URL. Workers and the server must both reach it.",
    )
    preemption = Bool(
        False,
        config=True,
        help="Let a waiting task of higher priority evict running tasks submitted with "
        "preemptible=True when nothing else fits: they are asked to stop (SIGTERM, "
        "jupyter_orch.should_preempt()), end 'preempted' and are queued again to resume from "
        "their latest checkpoint. Off by default; a task is never evicted unless it opted in.",
    )
    preemption_grace = Float(
        30.0,
        config=True,
        help="Seconds an evicted task has to checkpoint and stop before it is killed "
        "(it is recorded as preempted either way).",
    )
    provider = Unicode(
        "local", config=True, help="Where workers come from: local, static, kubernetes (or a provider_class)."
    )
    provider_class = Type(
        None,
        klass=Provider,
        allow_none=True,
        config=True,
        help="A Provider subclass to use instead of the named provider.",
    )
    blob_store_class = Type(
        FileBlobStore,
        klass=BlobStore,
        config=True,
        help="Where payloads and results are kept (a BlobStore subclass taking a root path).",
    )
    scheduler_policy = Enum(
        ["binpack", "spread"],
        "binpack",
        config=True,
        help="binpack: fill workers' GPUs before using new ones; spread: the opposite "
        "(or a scheduler_policy_class).",
    )
    scheduler_policy_class = Type(
        None,
        klass=Placement,
        allow_none=True,
        config=True,
        help="A jupyter_orch.core.scheduler.Placement subclass (its score(task, worker) chooses "
        "where a task goes) to use instead of the named scheduler_policy.",
    )
    store_class = Type(
        SqlStore,
        klass=SqlStore,
        config=True,
        help="The database store (a jupyter_orch.store.SqlStore subclass taking the db_url).",
    )
    log_store_class = Type(
        FileLogStore,
        klass=FileLogStore,
        config=True,
        help="Where task output lines are kept (a jupyter_orch.store.FileLogStore subclass "
        "taking a root path).",
    )
    metric_store_class = Type(
        FileMetricStore,
        klass=FileMetricStore,
        config=True,
        help="Where the metrics tasks report are kept (a jupyter_orch.store.FileMetricStore "
        "subclass taking a root path; default <data_dir>/metrics).",
    )
    max_payload_size = Unicode(
        "512Mi", config=True, help="Largest payload accepted for one task (e.g. 512Mi)."
    )
    max_body_size = Unicode(
        "64Mi",
        config=True,
        help="Largest JSON request body the REST API reads (e.g. 64Mi); larger ones get 413. "
        "The SDK sends payloads over its WebSocket session, which max_payload_size bounds.",
    )
    worker_grace = Float(
        60.0,
        config=True,
        help="Seconds a disconnected worker has to come back before its tasks are retried or failed.",
    )
    heartbeat_interval = Float(5.0, config=True, help="Seconds between worker heartbeats.")
    worker_idle_timeout = Float(
        600.0, config=True, help="Seconds a worker may sit idle before the provider may release it."
    )
    cancel_grace = Float(5.0, config=True, help="Seconds between SIGTERM and SIGKILL when cancelling.")
    prefetch = Int(
        2,
        config=True,
        help="GPU-less tasks sent ahead per worker slot while the worker's tasks average under "
        "100 ms (they wait on the worker for a free slot; 0: never send ahead).",
    )
    prefetch_quick = Int(
        16, config=True, help="Tasks sent ahead per slot while the worker's tasks average under 10 ms."
    )
    worker_url = Unicode(
        "",
        config=True,
        help="The URL workers use to reach this server (default: http://127.0.0.1:<port><base_url>).",
    )
    owner = Unicode(config=True, help="The user tasks belong to in a single-user server.")
    owner_from = Enum(
        ["server", "identity"],
        "server",
        config=True,
        help="server: every authenticated request acts as `owner`; "
        "identity: as the Jupyter user who made it (shared deployments).",
    )
    quotas = Dict(
        config=True,
        help="Quotas per user and group, for a server shared by several users: "
        '{"default": {"gpus": 2, "gpu_types": {"A100": 1}, "running": 8, "queued": 1000}, '
        '"users": {"alice": {...}}, "groups": {"ml-team": {"gpus": 8}}}. A task that would take its user '
        "(or one of their groups) over a limit waits, and its reason says which; a submit over "
        '"queued" is refused (429). Groups are the JupyterHub groups of the user.',
    )
    weights = Dict(
        config=True,
        help='Fair-share weights: {"users": {"alice": 2}, "groups": {"ml-team": 3}} (1 by default). '
        "Users with free capacity to share take turns in proportion to their weights, the one with "
        "the least recent use (per weight) first.",
    )
    hub_groups_interval = Float(
        0.0,
        config=True,
        help="Team mode (a JupyterHub service whose token has list:groups and read:groups): seconds between "
        "reads of the hub's groups, their members and their `orch` properties "
        '({"quota": {...}, "weight": 3}, which override `quotas` and `weights` for that group); 0: off.',
    )
    usage_half_life = Float(
        86400.0,
        config=True,
        help="Fair share: seconds after which a user's past GPU (or CPU) use counts for half.",
    )
    service_url = Unicode(
        config=True,
        help="Client mode, for the users' servers of a hub whose orchestrator is a JupyterHub service "
        "(team mode): the service's URL, e.g. http://jupyter-orch:8000/services/orch/ (default: "
        "$JUPYTER_ORCH_SERVICE_URL). This server then runs no engine: /orch/api/v1 is forwarded to "
        "the service, and kernels get its URL and service_token.",
    )
    service_token = Unicode(
        config=True,
        help="Client mode: the token that acts as this server's user at the service "
        "(default: $JUPYTERHUB_API_TOKEN, this single-user server's own).",
    )
    metrics_require_auth = Bool(True, config=True, help="Require authentication for /orch/metrics.")
    set_kernel_env = Bool(
        True, config=True, help="Export JUPYTER_ORCH_URL/TOKEN to kernels this server starts."
    )

    @default("data_dir")
    def _data_dir(self) -> str:
        return os.path.join(jupyter_data_dir(), "orch")

    @default("service_url")
    def _service_url(self) -> str:
        return os.environ.get("JUPYTER_ORCH_SERVICE_URL", "")

    @default("service_token")
    def _service_token(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    @default("checkpoint_root")
    def _checkpoint_root(self) -> str:
        return os.path.join(self.data_dir, "checkpoints")

    @default("run_dir_root")
    def _run_dir_root(self) -> str:
        return os.path.join(self.data_dir, "runs")

    @property
    def run_files(self) -> RunFiles:
        files = getattr(self, "_run_files", None)
        if files is None or files.root != self.run_dir_root.rstrip("/"):
            files = self._run_files = RunFiles(self.run_dir_root)
        return files

    @default("owner")
    def _owner(self) -> str:
        return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()

    @property
    def version_string(self) -> str:
        return __version__

    @property
    def max_body_bytes(self) -> int:
        return parse_memory(self.max_body_size, "OrchApp.max_body_size")

    @property
    def engine_config(self) -> EngineConfig:
        return EngineConfig(
            policy=self.scheduler_policy_class() if self.scheduler_policy_class else self.scheduler_policy,
            max_payload_bytes=parse_memory(self.max_payload_size, "OrchApp.max_payload_size"),
            worker_grace=self.worker_grace,
            heartbeat_interval=self.heartbeat_interval,
            worker_idle_timeout=self.worker_idle_timeout,
            cancel_grace=self.cancel_grace,
            prefetch=max(0, self.prefetch),
            prefetch_quick=max(0, self.prefetch_quick) if self.prefetch > 0 else 0,
            server_version=__version__,
            checkpoint_root=self.checkpoint_root,
            preemption=self.preemption,
            preemption_grace=max(0.0, self.preemption_grace),
        )

    def fair_shares(self) -> Shares | None:
        return shares_from_settings(self.owner_from, self.quotas, self.weights, self.usage_half_life)

    # ------------------------------------------------------------------ setup
    def initialize_settings(self) -> None:
        self._ready: asyncio.Future[Engine] | None = None
        self.engine: Engine | None = None
        self.schedules: Schedules | None = None
        self._hub_groups: HubGroups | None = None
        self._sigint: Any = None  # our SIGINT handler, when we installed one (signals.py)
        self._stopped: asyncio.Future[None] | None = None
        self.service: ServiceLink | None = None  # client mode, once started

    def initialize_handlers(self) -> None:
        if self.service_url:  # client mode: the service's API, forwarded
            self.handlers.extend(client_handlers())
            return
        self.handlers.extend(
            [
                (API + r"/tasks", tasks.TasksHandler),
                (API + rf"/tasks/{ID}", tasks.TaskHandler),
                (API + rf"/tasks/{ID}/cancel", tasks.CancelHandler),
                (API + rf"/tasks/{ID}/retry", tasks.RetryHandler),
                (API + rf"/tasks/{ID}/wait", tasks.WaitHandler),
                (API + rf"/tasks/{ID}/result", tasks.ResultHandler),
                (API + rf"/tasks/{ID}/logs", tasks.LogsHandler),
                (API + rf"/tasks/{ID}/metrics", tasks.MetricsHandler),
                (API + rf"/tasks/{ID}/notebook", tasks.NotebookHandler),
                (API + rf"/tasks/{ID}/checkpoints", checkpoints.CheckpointsHandler),
                (API + r"/workflows/schema", workers.WorkflowSchemaHandler),
                (API + r"/workflows/schedules", schedules.SchedulesHandler),
                (API + r"/workflows/schedules/(?P<schedule_id>[0-9a-z]{26})", schedules.ScheduleHandler),
                (API + r"/searches", searches.SearchesHandler),
                (API + r"/searches/(?P<search_id>[0-9a-z]{26})", searches.SearchHandler),
                (API + r"/searches/(?P<search_id>[0-9a-z]{26})/wait", searches.SearchWaitHandler),
                (API + r"/searches/(?P<search_id>[0-9a-z]{26})/cancel", searches.SearchCancelHandler),
                (API + r"/workflows", workflows.WorkflowsHandler),
                (API + r"/workflows/(?P<run_id>[0-9a-z]{26})", workflows.WorkflowHandler),
                (API + r"/workflows/(?P<run_id>[0-9a-z]{26})/wait", workflows.WorkflowWaitHandler),
                (API + r"/workflows/(?P<run_id>[0-9a-z]{26})/cancel", workflows.WorkflowCancelHandler),
                (API + r"/workflows/(?P<run_id>[0-9a-z]{26})/retry", workflows.WorkflowRetryHandler),
                (API + r"/workflows/(?P<run_id>[0-9a-z]{26})/files", workflows.WorkflowFilesHandler),
                (
                    API + r"/workflows/(?P<run_id>[0-9a-z]{26})/files/(?P<path>.+)",
                    workflows.WorkflowFileHandler,
                ),
                (API + rf"/tasks/{ID}/outputs", tasks.OutputsHandler),
                (API + rf"/tasks/{ID}/logs/follow", websockets.LogFollowHandler),
                (API + r"/notebooks/parameters", notebooks.NotebookParametersHandler),
                (API + r"/notebooks/run", notebooks.NotebookRunHandler),
                (API + r"/workers", workers.WorkersHandler),
                (API + r"/timeline", timeline.TimelineHandler),
                (API + r"/admin/usage", admin.UsageHandler),
                (API + r"/admin/holdings", admin.HoldingsHandler),
                (API + r"/workers/connect", websockets.WorkerConnectHandler),
                (API + r"/workers/tokens", workers.TokensHandler),
                (API + r"/workers/tokens/(?P<token_id>[0-9a-z]{26})", workers.TokenHandler),
                (API + r"/workers/(?P<worker_id>[^/]+)", workers.WorkerHandler),
                (API + r"/events", websockets.EventsHandler),
                (API + r"/session", websockets.SessionHandler),
                (API + r"/info", workers.InfoHandler),
                (API + r"/openapi.json", openapi.OpenAPIHandler),
                (r"/orch/metrics", metrics.MetricsHandler),
                (API + r"/.*", openapi.UnknownPathHandler),  # last: a JSON 404 for any other path
            ]
        )

    def ready(self) -> asyncio.Future[Engine]:
        """The engine, once started (requests arriving earlier wait for it)."""
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
        return self._ready

    # ------------------------------------------------------------------ start/stop
    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        ready = self.ready()
        self._sigint = stop_on_sigint(serverapp)  # without a terminal: stop_extension must run
        try:
            if self.service_url:
                self._start_client_mode()
                return
            started = await start_engine(self, serverapp, self.log)
        except Exception as exc:
            self.log.error("jupyter-orch could not start: %s", exc, exc_info=True)
            ready.set_exception(exc)
            ready.exception()  # mark retrieved; requests re-raise it
            if self.stop_server_on_failure:  # the server is only us: it stops, and says so
                type(self).start_error = exc
                # as `kill -TERM` would: the server's own handler stops it cleanly
                asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)
            return
        self.engine, self.schedules, self._hub_groups = started.engine, started.schedules, started.hub_groups
        self._store, self._logs, self._metrics = started.store, started.logs, started.metrics
        ready.set_result(started.engine)

    def _start_client_mode(self) -> None:
        link = ServiceLink.from_settings(self.service_url, self.service_token)
        start_client_mode(link, self.data_dir, self.set_kernel_env)
        self.service = link
        ready = self.ready()
        ready.set_exception(
            Unavailable(f"this server runs no engine: it forwards to {link.url} (client mode)")
        )
        ready.exception()
        self.log.info(
            "jupyter-orch %s in client mode: the orchestrator is the service at %s", __version__, link.url
        )

    async def stop_extension(self) -> None:
        """Stop the provider (its local workers), the engine and the store; once, however many
        times the server asks (a second SIGINT or SIGTERM while stopping)."""
        if self._stopped is None:
            self._stopped = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopped)

    async def _stop(self) -> None:
        try:
            if self.service is not None:
                remove_connection_file(self.data_dir)
            await self._stop_engine()
        finally:
            restore_sigint(self._sigint)

    async def _stop_engine(self) -> None:
        starting = self._ready
        if starting is not None and not starting.done():
            # stopped while starting (Ctrl-C at once): stop what the start is about to start
            await asyncio.wait([starting], timeout=120)
        engine = self.engine
        if engine is None:
            return
        remove_connection_file(self.data_dir)
        if self._hub_groups is not None:
            await self._hub_groups.stop()
            self._hub_groups = None
        if self.schedules is not None:
            await self.schedules.stop()
            self.schedules = None
        if engine.provider is not None:
            await engine.provider.stop()
        await engine.stop()
        self._logs.close()
        self._metrics.close()
        self._store.close()
        self.engine = None
