"""Real notebooks, executed by nbclient in a real ipykernel whose environment points at a
real server with local workers (as a kernel of JupyterLab with the extension would be)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.notebook import Notebook


@pytest.fixture
def notebook(orch: Any, tmp_path: Path) -> Iterator[Notebook]:
    with Notebook(orch, tmp_path, allow_errors=True) as nb:
        nb.run("%load_ext jupyter_orch")
        yield nb
