#!/usr/bin/env bash
# Lint, type-check and run every test (unit, adapters, real llama-server integration, CLI, demo).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
