"""The worker: ``jupyter orch worker`` connects to the server and runs tasks in executor processes.

Modules: :mod:`.agent` (the protocol's worker side), :mod:`.connection` (WebSocket,
reconnects), :mod:`.slots` (one executor process per slot), :mod:`.executor` (the child
process), :mod:`.output` (log lines), :mod:`.outcomes`, :mod:`.frames` (control channel),
:mod:`.gpus` (NVML), :mod:`.hostmetrics` (psutil), :mod:`.cli`. Kept import-free so the
executor process starts fast.
"""
