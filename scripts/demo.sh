#!/usr/bin/env bash
# The README demo: build, fetch the default model, run a highlighted prompt with steering and a trace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prereqs.sh
cargo run --quiet -- pull
prompt='Write a short poem about the sea. **Use only lowercase letters.**'
echo "--- without steering (markup stripped) ---"
cargo run --quiet -- run --temp 0 --n-predict 64 --no-steer "$prompt"
echo "--- with SpotLight (defaults: τ = 0.2, per layer) ---"
cargo run --quiet -- run --temp 0 --n-predict 64 --show-spans --trace target/demo-trace.jsonl "$prompt"
echo "(per-layer span shares of every decode step: target/demo-trace.jsonl)"
