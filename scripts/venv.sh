# Sourced by the other scripts: create .venv (with $PYTHON, default python3) if missing,
# then install this project into it with the extras given as "$1" (e.g. "[test]").
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".$1"
