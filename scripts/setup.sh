#!/usr/bin/env bash
# Installs the pinned toolchain that builds and tests Milih. Idempotent: every
# step is skipped when the pinned version is already present.
set -euo pipefail
cd "$(dirname "$0")/.."

TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=0.2.130
BINARYEN_VERSION=132

# Tools installed by cargo land here; make sure this script and its callers see them.
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '[setup] %s\n' "$*" >&2; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(trunk --version 2>/dev/null || true)" != "trunk $TRUNK_VERSION" ]; then
  log "installing trunk $TRUNK_VERSION (slow on a cold machine)"
  cargo install trunk --version "$TRUNK_VERSION" --locked
fi

if [ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  # Not --locked: the CLI's lock file names a crate version the registry lacks.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

# wasm-opt from npm, into tools/, so trunk never downloads it.
if [ ! -x tools/node_modules/.bin/wasm-opt ] \
  || ! tools/node_modules/.bin/wasm-opt --version | grep -q "version $BINARYEN_VERSION"; then
  log "installing binaryen@$BINARYEN_VERSION (wasm-opt) from npm"
  npm install --prefix tools --no-audit --no-fund --silent
fi

# Headless Chromium for the browser tests, and its driver for the wasm
# kernel tests (Debian's, never a test tool's download).
if [ "${MILIH_SKIP_BROWSER:-0}" != 1 ] && { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; }; then
  log "installing Chromium and chromium-driver from apt"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y --no-install-recommends chromium chromium-driver \
    || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends chromium chromium-driver; }
fi

if [ "${MILIH_SKIP_BROWSER:-0}" != 1 ] && { [ ! -d tests/browser/node_modules/playwright-core ] \
    || [ ! -d tests/browser/node_modules/axe-core ]; }; then
  log "installing playwright-core (no browser download) and axe-core from npm"
  npm install --prefix tests/browser --no-audit --no-fund --silent
fi
