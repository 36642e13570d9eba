"""The layers of the package, as import-linter contracts in pyproject.toml: the test suite
fails when a module crosses one (``bash scripts/lint.sh`` runs the same check)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_import_contract_is_kept():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout + out.stderr
    contracts = (ROOT / "pyproject.toml").read_text().count("[[tool.importlinter.contracts]]")
    kept = re.search(r"Contracts: (\d+) kept, 0 broken", out.stdout)
    assert kept and int(kept.group(1)) == contracts, out.stdout


def test_the_contracts_cover_every_package():
    """Each subpackage and top-level module of jupyter_orch is named by some contract."""
    config = (ROOT / "pyproject.toml").read_text()
    package = ROOT / "jupyter_orch"
    parts = sorted(
        p.stem if p.suffix == ".py" else p.name
        for p in package.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and not p.name.startswith("_"))
    )
    assert parts, package
    missing = [p for p in parts if f'"jupyter_orch.{p}' not in config]
    assert missing == [], f"no import contract names jupyter_orch.{missing}"
