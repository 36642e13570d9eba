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
