#!/usr/bin/env bash
# Builds the site from the committed model bundle and serves it on
# http://127.0.0.1:${PORT:-8080}. Installs the pinned toolchain first.
set -euo pipefail
cd "$(dirname "$0")/.."
MILIH_SKIP_BROWSER=1 bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PWD/tools/node_modules/.bin:$PATH"
trunk build --release
port="${PORT:-8080}"
echo "Milih is served on http://127.0.0.1:$port (Ctrl-C stops it)"
exec python3 -m http.server "$port" --bind 127.0.0.1 --directory dist
