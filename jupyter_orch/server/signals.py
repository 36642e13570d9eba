"""SIGINT as a graceful stop for a Jupyter server that has no terminal.

A Jupyter server installs its own SIGINT handler only when its stdin is a terminal; without
one, SIGINT is Python's ``KeyboardInterrupt``, which ends the server's loop at once: no
extension's ``stop_extension`` runs, so local workers, ``server.json`` and
``local-workers.json`` stay behind. JupyterHub stops single-user servers with SIGINT first
(its spawners' ``interrupt_timeout``), and scripts and services send it too. Where SIGINT
still has Python's default handler, it is made the graceful stop SIGTERM already is
(``ServerApp._signal_stop``, the handler JupyterHub's own single-user app uses for SIGINT).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

Handler = Callable[[int, Any], None]


def stop_on_sigint(serverapp: Any) -> Handler | None:
    """Install ``serverapp._signal_stop`` for SIGINT if nobody chose a handler; the handler
    installed (give it to :func:`restore_sigint` at stop), or None."""
    stop = getattr(serverapp, "_signal_stop", None)
    if stop is None or threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return None  # a terminal's confirm-on-Ctrl-C, or someone else's choice
    signal.signal(signal.SIGINT, stop)
    return stop  # type: ignore[no-any-return]


def restore_sigint(installed: Handler | None) -> None:
    """Put Python's default SIGINT handler back if ours is still the one installed."""
    if installed is None or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) == installed:
        signal.signal(signal.SIGINT, signal.default_int_handler)
