#!/usr/bin/env bash
# What the JupyterHub tests (tests/hub) need outside the virtualenv: configurable-http-proxy,
# installed from npm into a project-local, git-ignored folder (.hub-test-deps/); the tests
# find it at .hub-test-deps/node_modules/.bin/configurable-http-proxy. JupyterHub itself is
# in the `test` extra.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=.hub-test-deps
if [ -x "$PREFIX/node_modules/.bin/configurable-http-proxy" ]; then
  exit 0
fi
mkdir -p "$PREFIX"
npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error configurable-http-proxy@^4
"$PREFIX/node_modules/.bin/configurable-http-proxy" --version
