#!/usr/bin/env bash
# Lint and format checks, the import-layer contracts and mypy on the pure core.
# `bash scripts/lint.sh --fix` rewrites what ruff can fix instead of only checking.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fix" ]; then
  .venv/bin/ruff check --fix jupyter_orch tests benchmarks
  .venv/bin/ruff format jupyter_orch tests benchmarks
fi
.venv/bin/ruff check jupyter_orch tests benchmarks
.venv/bin/ruff format --check jupyter_orch tests benchmarks
.venv/bin/lint-imports
.venv/bin/mypy
