#!/usr/bin/env bash
# Lint and format checks, the import-layer contracts and mypy --strict (core, store, the engine's services).
# `bash scripts/lint.sh --fix` rewrites what ruff can fix instead of only checking.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fix" ]; then
  .venv/bin/ruff check --fix jupyter_orch tests benchmarks
  .venv/bin/ruff format jupyter_orch tests benchmarks
fi
.venv/bin/ruff check jupyter_orch tests benchmarks
.venv/bin/ruff format --check jupyter_orch tests benchmarks
.venv/bin/lint-imports --no-cache  # the cache has missed new imports between edits
.venv/bin/mypy
