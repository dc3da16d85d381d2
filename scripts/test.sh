#!/usr/bin/env bash
# The whole test suite: formatting, lints for both targets, unit and
# integration tests, the release site build, and the browser tests in
# headless Chromium against that build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PWD/tools/node_modules/.bin:$PATH"

step() { printf '\n=== %s\n' "$*"; }

step "format"
cargo fmt --all --check

step "lints (native)"
cargo clippy --workspace --all-targets -- -D warnings

step "lints (wasm32)"
cargo clippy -p milih-web -p milih-model -p milih-rank -p milih-bundle -p milih-catalog -p milih-kernels \
  --target wasm32-unknown-unknown --all-targets -- -D warnings
cargo clippy -p milih-web -p milih-kernels --features milih-web/relaxed-simd \
  --target wasm32-unknown-unknown --all-targets -- -D warnings

step "dependency review (cargo-deny: licenses, sources, advisories)"
bash scripts/audit.sh

step "unit and integration tests"
cargo test --workspace

step "int8 kernels in Chromium: plain and relaxed SIMD builds against the portable sums"
for features in "" "--features relaxed-simd"; do
  # shellcheck disable=SC2086 # the features are two words or none
  CHROMEDRIVER=/usr/bin/chromedriver CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test -p milih-kernels $features --target wasm32-unknown-unknown
done

step "site build (trunk, release)"
trunk build --release

step "hostile fixture bundle (catalog text with markup and script)"
cargo run -q -p milih-trainer -- index --bundle public/model \
  --catalog tests/fixtures/hostile-catalog.csv --out target/hostile-model

step "a second deployment of the site (another bundle) for the update test"
rm -rf target/site-v2
cp -r dist target/site-v2
rm -rf target/site-v2/model
cp -r target/hostile-model target/site-v2/model
cargo run -q -p milih-site -- finish target/site-v2

step "native embeddings for the parity test"
mkdir -p target/parity
cargo run -q -p milih-trainer -- embed --bundle public/model \
  --lines tests/browser/parity-texts.txt --out target/parity/native

step "browser tests (headless Chromium)"
# A test that hangs fails after 15 minutes instead of holding the run.
node --test --test-concurrency=1 --test-timeout=900000 tests/browser/
