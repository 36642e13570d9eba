#!/usr/bin/env bash
# Set up .venv with the test dependencies and run every check and test.
# Needs PostgreSQL on 127.0.0.1:5432 (database `test`, trust auth) for the PostgreSQL tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
bash scripts/lint.sh
.venv/bin/python -m pytest "$@"
