"""Installed as a package, the extension is enabled in every Jupyter server."""

from __future__ import annotations

import re
import subprocess
import sys


def test_jupyter_server_lists_the_extension_enabled_and_valid():
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "server", "extension", "list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)  # drop colours
    assert re.search(r"jupyter_orch\s+enabled", text), text
    assert re.search(r"jupyter_orch\s+\S*\s*OK", text), text


def test_sending_ahead_is_configurable_and_can_be_switched_off() -> None:
    from jupyter_orch.server.app import OrchApp

    default = OrchApp().engine_config
    assert (default.prefetch, default.prefetch_quick) == (2, 16)
    off = OrchApp(prefetch=0).engine_config
    assert (off.prefetch, off.prefetch_quick) == (0, 0)
    assert OrchApp(prefetch_quick=4).engine_config.prefetch_quick == 4
