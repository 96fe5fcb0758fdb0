#!/usr/bin/env bash
# Lint, type-check and run every test (unit, adapters, real llama-server integration, CLI, demo).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# The HTML report is opened in headless Chromium by a test, and the judging page driven in it through
# chromedriver; the fault suite makes real ext4 disks (mkfs.ext4, findmnt) and mounts them; the rehearsal host
# needs a container engine (podman, runc) and debootstrap to build its Debian image: Debian's packages.
# `swapbench remote` is driven with the real OpenSSH client against the rehearsal host's ssh.service, and its
# link cut by an nftables rule on that port; the fleet tests' second host lives in a network namespace (iproute2). (`-m "not rehearsal"` skips the rehearsal host's tests.)
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
command -v findmnt >/dev/null || missing+=(util-linux)
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
command -v ssh >/dev/null || missing+=(openssh-client)
command -v nft >/dev/null || missing+=(nftables)
command -v ip >/dev/null || missing+=(iproute2)  # the fleet tests' second host: a network namespace and a veth pair
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
