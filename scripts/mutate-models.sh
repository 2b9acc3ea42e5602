#!/usr/bin/env bash
# Mutated model files (issue #18): N corrupted copies of the default model (one at a time, in a
# temp file), each loaded in a child process with a time limit; every case must end in a clear
# error or a successful load. Runs in slices so that each step can hold the compute lock for a
# bounded time (SPOTLIGHT_LOCK="flock /tmp/spotlight-compute.lock" on shared machines), then
# prints the table by mutation class.
#
#   bash scripts/mutate-models.sh [N=2000] [SLICE=400] [MODEL=~/.cache/spotlight/SmolLM2-135M-Instruct.Q4_1.gguf]
set -euo pipefail
cd "$(dirname "$0")/.."

n="${1:-2000}"
slice="${2:-400}"
model="${3:-${SPOTLIGHT_CACHE:-$HOME/.cache/spotlight}/SmolLM2-135M-Instruct.Q4_1.gguf}"
lock=(${SPOTLIGHT_LOCK:-})
log="${MUTATE_LOG:-target/mutate-models.jsonl}"

"${lock[@]}" cargo build --release --example mutate_models
exe=target/release/examples/mutate_models
: > "$log"
status=0
for ((first = 0; first < n; first += slice)); do
    "${lock[@]}" "$exe" --model "$model" --cases "$n" --first "$first" --count "$slice" --log "$log" || status=1
done
"$exe" --summary "$log" || status=1
echo "log: $log"
exit $status
