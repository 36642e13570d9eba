#!/usr/bin/env bash
# Set up jupyter-orch in .venv and start JupyterLab with the extension: local workers,
# SQLite in the Jupyter data dir, and the examples folder open.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh "[lab,examples]"
echo "jupyter-orch is installed; starting JupyterLab (open examples/quickstart.ipynb)."
extra=()
if [ "$(id -u)" = "0" ]; then extra+=(--allow-root); fi
exec .venv/bin/jupyter lab --ip="${JUPYTER_IP:-127.0.0.1}" --port="${JUPYTER_PORT:-8888}" \
  --ServerApp.root_dir="$PWD/examples" "${extra[@]}" "$@"
