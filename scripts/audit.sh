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
# The advisory database lives on GitHub; where it cannot be fetched, an
# offline copy (MILIH_ADVISORY_DB, by default the one beside the checkout)
# stands in, and the check says which it used. With neither, say so rather
# than pass silently.
db_dir=target/advisory-dbs/advisory-db-3157b0e258782691 # cargo-deny's name for its URL
offline_copy="${MILIH_ADVISORY_DB:-../shared/advisory-db/rustsec-advisory-db.tar.gz}"
if cargo deny fetch db >/dev/null 2>&1; then
  echo "audit: advisories from the live RustSec database"
  cargo deny check advisories
elif [ -f "$offline_copy" ]; then
  rm -rf "$db_dir"
  mkdir -p "$db_dir"
  tar xzf "$offline_copy" -C "$db_dir"
  echo "audit: the live RustSec database could not be fetched; advisories from the offline copy $offline_copy ($(git -C "$db_dir" log -1 --format=%cs 2>/dev/null || echo 'date unknown'))"
  cargo deny --offline check advisories
else
  echo "audit: the RustSec advisory database could not be fetched and no offline copy was found; advisories not checked" >&2
fi
