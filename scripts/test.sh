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
# First a quick run of the binary on the model: a build that uses an instruction this CPU or OS
# does not allow (SIGILL) fails here with the signal named, before any longer test.
cargo test --test smoke
PYTHONPATH="$(bash scripts/python-test-deps.sh)${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
cargo test
