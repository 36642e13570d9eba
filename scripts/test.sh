#!/usr/bin/env bash
# Set up .venv with the test dependencies and run every check and test.
# Needs PostgreSQL on 127.0.0.1:5432 (database `test`, trust auth) for the PostgreSQL tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh "[test]"
bash scripts/lint.sh
.venv/bin/python -m pytest "$@"
