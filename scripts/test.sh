#!/usr/bin/env bash
# Set up .venv with the test dependencies and run every check and test: lint, the lab
# extension's TypeScript unit tests, then pytest (browser tests included).
# Needs PostgreSQL on 127.0.0.1:5432 (database `test`, trust auth) for the PostgreSQL tests,
# node/npm for the lab extension and JupyterHub's proxy, and apt for Debian's Chromium (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh "[test]"
bash scripts/lab-test-deps.sh
bash scripts/hub-test-deps.sh  # configurable-http-proxy for tests/hub (npm, project-local)
bash scripts/lint.sh
bash scripts/build-labextension.sh  # a no-op when the install above built it
.venv/bin/jlpm test
.venv/bin/python -m pytest "$@"
