#!/usr/bin/env bash
# Debian's packages the rehearsal host needs on this machine: a container engine (podman, runc) and debootstrap.
set -euo pipefail
missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v docker >/dev/null || { echo "rehearsal: the docker CLI is missing (the host drives podman with it)" >&2; exit 1; }
