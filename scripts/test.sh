#!/usr/bin/env bash
# Lint, type-check and run every test (unit, adapters, real llama-server integration, CLI, demo).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# The HTML report is opened in headless Chromium by a test: Debian's package.
if ! command -v chromium >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
