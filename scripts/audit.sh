#!/usr/bin/env bash
# Dependency review with cargo-deny (deny.toml): licenses, sources, wildcard
# versions, and RustSec advisories and yanked crates where the advisory
# database can be fetched. Installs a pinned cargo-deny once.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
CARGO_DENY_VERSION=0.20.2
if ! cargo deny --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; then
  cargo install --locked --quiet "cargo-deny@$CARGO_DENY_VERSION"
fi
# cargo-deny reads every crate of the lock file, for every target; on a
# fresh machine the builds so far have downloaded only the host's and wasm's.
cargo fetch --locked --quiet
cargo deny --offline check licenses bans sources
# The advisory database lives on GitHub; without it, say so rather than pass
# silently.
if cargo deny fetch db >/dev/null 2>&1; then
  cargo deny check advisories
else
  echo "audit: the RustSec advisory database could not be fetched here; advisories not checked" >&2
fi
