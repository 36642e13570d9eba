"""The worker: ``jupyter orch worker`` connects to the server and runs tasks in executor processes.

Worker side: :mod:`.agent` (the protocol's worker side, putting the parts together),
:mod:`.config` (``WorkerConfig``), :mod:`.tasks` (assignments queued and running on slots),
:mod:`.assignments` (reading task messages), :mod:`.heartbeats`, :mod:`.connection`
(WebSocket, reconnects), :mod:`.outbox` (logs and reports until acked), :mod:`.slots` (a slot
and its task), :mod:`.process` (one executor process), :mod:`.output` (log lines),
:mod:`.outcomes`, :mod:`.gpus` (NVML), :mod:`.hostmetrics` (psutil), :mod:`.watchdog`,
:mod:`.aio`, :mod:`.cli`.

Executor side (the child process, ``python -m jupyter_orch.worker.executor``):
:mod:`.executor` (its entry point), :mod:`.taskrunner` (each kind of task), :mod:`.steps`
(workflow steps), :mod:`.taskoutput`, :mod:`.taskenv`, :mod:`.lifetime`,
:mod:`.compatibility`; :mod:`.frames` is the control channel between the two sides, and
:mod:`.metricspipe` the task side of the metrics pipe (``jupyter_orch.report`` uses it in
any process of a task).

Kept import-free so the executor process starts fast. Imports nothing of the server, engine,
store, client, kernel or CLI, nor the package root: only :mod:`jupyter_orch.core`,
:mod:`jupyter_orch.wire`, :mod:`jupyter_orch.serialization`, :mod:`jupyter_orch.cells.display`,
:mod:`jupyter_orch.notebooks.runner` and :mod:`jupyter_orch._version`.
"""
