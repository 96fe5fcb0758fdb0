#!/usr/bin/env bash
# The rehearsal host: a twin of the Panda box (systemd unit, docker candidate, sudo rules) in a podman
# container with systemd as PID 1. `scripts/rehearsal.sh up`, then `run -- swapbench ...` as the operator,
# `shell`, `status`, `down`. Needs scripts/bootstrap.sh first (the venv and the rig); installs podman here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/rehearsal-deps.sh
exec .venv/bin/python -m rehearsal "$@"
