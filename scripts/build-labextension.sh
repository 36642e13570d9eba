#!/usr/bin/env bash
# Build the JupyterLab extension (labextension/ -> jupyter_orch/labextension) with the jlpm that
# ships with JupyterLab. Idempotent: JS dependencies are installed only when package.json or
# yarn.lock changed, and the build is skipped when no source is newer than the built output.
# `--dev` builds with source maps; `--force` rebuilds regardless.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/jlpm ]; then
  source scripts/venv.sh "[lab]"
fi
export PATH="$PWD/.venv/bin:$PATH"
mode=build:prod
force=0
for arg in "$@"; do
  case "$arg" in
    --dev) mode=build ;;
    --force) force=1 ;;
    *) echo "usage: $0 [--dev] [--force]" >&2; exit 2 ;;
  esac
done
stamp=node_modules/.orch-install-stamp
if [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ] || [ yarn.lock -nt "$stamp" ]; then
  jlpm install
  touch "$stamp"
fi
out=jupyter_orch/labextension/static/style.js
if [ "$force" = 1 ] || [ ! -f "$out" ] || \
   [ -n "$(find labextension/src labextension/style labextension/schema package.json tsconfig.json -newer "$out" -print -quit)" ]; then
  jlpm "$mode"
else
  echo "jupyter-orch lab extension: up to date ($out)"
fi
