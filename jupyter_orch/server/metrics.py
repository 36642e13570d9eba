"""Prometheus metrics at ``/orch/metrics``, read from the engine at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..core.states import TaskState
from .base import OrchAPIHandler

if TYPE_CHECKING:
    from ..engine import Engine


class EngineCollector:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        e = self.engine
        active = GaugeMetricFamily("orch_tasks_active", "Unfinished tasks by state", labels=["state"])
        counts = {s: 0 for s in (TaskState.PENDING, TaskState.SCHEDULED, TaskState.RUNNING)}
        for row in e.tasks.values():
            if row.state in counts:
                counts[row.state] += 1
        for state, n in counts.items():
            active.add_metric([state.value], n)
        yield active
        yield CounterMetricFamily("orch_tasks_submitted", "Tasks accepted", value=e.counters["submitted"])
        yield CounterMetricFamily(
            "orch_tasks_finished", "Tasks that reached a terminal state", value=e.counters["finished"]
        )
        yield CounterMetricFamily(
            "orch_tasks_scheduled", "Attempts placed on workers", value=e.counters["scheduled"]
        )
        workers = GaugeMetricFamily("orch_workers", "Workers by state", labels=["state"])
        by_state: dict[str, int] = {}
        for w in e.workers.values():
            by_state[w.state] = by_state.get(w.state, 0) + 1
        for state, n in sorted(by_state.items()):
            workers.add_metric([state], n)
        yield workers
        connected = [w for w in e.workers.values() if w.state == "connected"]
        yield GaugeMetricFamily(
            "orch_slots_total", "Task slots of connected workers", value=sum(w.slots for w in connected)
        )
        yield GaugeMetricFamily(
            "orch_slots_used", "Task slots in use", value=sum(len(w.running) for w in connected)
        )
        yield GaugeMetricFamily(
            "orch_gpus_total", "GPUs of connected workers", value=sum(len(w.gpus) for w in connected)
        )
        yield GaugeMetricFamily(
            "orch_gpus_used",
            "GPUs held by tasks",
            value=sum(len(r.gpus) for w in connected for r in w.running.values()),
        )
        yield CounterMetricFamily("orch_db_commits", "Database group commits", value=e.journal.commits)
        yield CounterMetricFamily(
            "orch_payload_file_handoffs",
            "Large payloads local workers read from the blob store's files",
            value=e.counters["file_handoffs"],
        )
        yield CounterMetricFamily(
            "orch_payload_client_handoffs",
            "Large payloads clients on the server's machine wrote into the blob store themselves",
            value=e.counters["client_handoffs"],
        )
        yield GaugeMetricFamily("orch_event_subscribers", "Open event streams", value=e.bus.subscriber_count)


class MetricsHandler(OrchAPIHandler):
    async def prepare(self) -> None:  # type: ignore[override]
        if self.orch.metrics_require_auth:
            await super().prepare()

    async def get(self) -> None:
        engine = await self.engine()
        # one registry per app, kept on it: built on the first scrape
        registry: Any = getattr(self.orch, "_metrics_registry", None)
        if registry is None:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(EngineCollector(engine))
            setattr(self.orch, "_metrics_registry", registry)  # noqa: B010 (not part of OrchSettings)
        self.finish(generate_latest(registry), set_content_type="text/plain; version=0.0.4; charset=utf-8")
