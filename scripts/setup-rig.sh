#!/usr/bin/env bash
# The rig's builder ships in the package (`swapbench setup-rig` runs it); this path stays for the checkout.
exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/src/swapbench/demo/setup_rig.sh" "$@"
