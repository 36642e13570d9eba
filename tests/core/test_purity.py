"""The core stays pure and strictly typed: import-linter contracts and ``mypy --strict``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE_MODULES = [
    "errors", "ids", "protocol", "queue", "records", "resources", "scheduler", "spec", "states",
    "metrics", "checkpoints", "preemption", "space", "search",
]  # fmt: skip
FORBIDDEN = [
    "tornado",
    "sqlalchemy",
    "alembic",
    "kubernetes",
    "IPython",
    "jupyter_server",
    "psutil",
    "pynvml",
]


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_import_contracts_are_kept() -> None:
    # the same as the `lint-imports` console script (contracts in pyproject.toml)
    proc = _run(
        "-c",
        "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "0 broken" in out
    assert "The core is pure" in out and "KEPT" in out


def test_importing_the_core_loads_no_framework() -> None:
    imports = "; ".join(f"import jupyter_orch.core.{m}" for m in CORE_MODULES)
    proc = _run("-c", f"import json, sys; {imports}; print(json.dumps(sorted(sys.modules)))")
    assert proc.returncode == 0, proc.stderr
    loaded = {name.split(".")[0] for name in json.loads(proc.stdout)}
    assert "jupyter_orch" in loaded
    assert not loaded & set(FORBIDDEN), loaded & set(FORBIDDEN)


def test_mypy_strict_passes_on_the_core(tmp_path: Path) -> None:
    # strict = true comes from [tool.mypy] in pyproject.toml; --strict makes sure of it
    proc = _run(
        "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "mypy"), "jupyter_orch/core", timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found" in proc.stdout
