"""The worker: ``jupyter orch worker`` connects to the server and runs tasks in executor processes.

Modules: :mod:`.agent` (the protocol's worker side), :mod:`.connection` (WebSocket,
reconnects), :mod:`.outbox` (logs and reports until acked), :mod:`.slots` (a slot and its
task), :mod:`.process` (one executor process), :mod:`.executor` (the child process itself),
:mod:`.frames` (their control channel), :mod:`.output` (log lines), :mod:`.outcomes`,
:mod:`.gpus` (NVML), :mod:`.hostmetrics` (psutil), :mod:`.aio`, :mod:`.cli`.
Kept import-free so the executor process starts fast.
"""
