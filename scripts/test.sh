#!/usr/bin/env bash
# Runs every test of tradewarden, installing what the tests need first (idempotent):
#   ./scripts/test.sh
# 1. scripts/test-env.sh: ./.venv (alpaca-py 0.44, pytest, aiosmtpd) and Debian's chromium;
# 2. cargo test: unit tests, property tests and the integration binary (real binary, real
#    simulator over HTTP, real SMTP server, headless Chromium);
# 3. the alpaca-py SDK suite against `tradewarden sim`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

./scripts/test-env.sh
cargo build --locked --bins
cargo test --locked --all-targets
if [ -d tests/sdk ]; then
    TRADEWARDEN_BIN="$PWD/target/debug/tradewarden" .venv/bin/python -m pytest tests/sdk -q -p no:cacheprovider
fi
