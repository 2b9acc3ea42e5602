#!/usr/bin/env bash
# All checks: formatting, lints, and every test against the real model and the golden data.
# llama.cpp is built once (dev profile, shared by clippy and the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prereqs.sh
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo run --quiet -- pull
cargo test
