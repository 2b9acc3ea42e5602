#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run (issue #18): llama.cpp with our patches is
# compiled with -fsanitize=address,undefined (SPOTLIGHT_SANITIZE=1, its own build dir under
# target/sanitize so the normal build stays warm) and the test binaries are linked against the
# sanitizer runtimes. Runs the steering, golden, chat-REPL and parallel-sequence tests, then the
# leak checks (a steered 1,000- and 4,096-token generation, a 50- and 200-turn chat) with
# LeakSanitizer.
#
#   bash scripts/sanitize.sh              # everything (first build ≈ 20 min on 2 cores, run ≈ see
#                                         # docs/results/robustness-2026-12-02.md)
#   bash scripts/sanitize.sh tests        # only the tests
#   bash scripts/sanitize.sh leaks        # only the leak checks
#   bash scripts/sanitize.sh steering     # one test binary (steering, golden, chat_repl, eval_cli)
#
# Any ASan report, UBSan report or leak fails the run (halt_on_error / exitcode). Set
# SPOTLIGHT_LOCK="flock /tmp/spotlight-compute.lock" on shared machines: each step then holds it.
set -euo pipefail
cd "$(dirname "$0")/.."

export SPOTLIGHT_SANITIZE=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/sanitize}"
# Rust's own code is not instrumented (stable Rust has no -Zsanitizer), but its allocations go
# through the intercepted malloc, so LeakSanitizer sees them too.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-report_objects=1}"
lock=(${SPOTLIGHT_LOCK:-})

what="${1:-all}"
tests=(steering golden chat_repl eval_cli)
case "$what" in
    all | tests | leaks) ;;
    steering | golden | chat_repl | eval_cli) tests=("$what") ;;
    *) echo "usage: $0 [all|tests|leaks|steering|golden|chat_repl|eval_cli]" >&2; exit 2 ;;
esac

build() {
    local args=()
    for t in "${tests[@]}"; do args+=(--test "$t"); done
    "${lock[@]}" cargo test --no-run "${args[@]}" --bin spotlight
    "${lock[@]}" cargo build --bin spotlight --example chat_memory
}

run_tests() {
    for t in "${tests[@]}"; do
        # eval_cli: only the parallel (batched vs solo) eval; the annotation record has no C++.
        local filter=()
        [ "$t" = eval_cli ] && filter=(eval_writes_responses_and_report_resumes_and_batches_like_solo)
        echo "== $t (ASan+UBSan)"
        local t0=$SECONDS
        "${lock[@]}" cargo test --test "$t" -- "${filter[@]}"
        echo "== $t: $((SECONDS - t0)) s"
    done
}

leaks() {
    local bin="$CARGO_TARGET_DIR/debug/spotlight"
    local ex="$CARGO_TARGET_DIR/debug/examples/chat_memory"
    # Greedy decoding of this prompt loops without an end-of-generation token, so -n is reached
    # (the README's poem prompt stops after ~26 tokens).
    local prompt='Write a very long story about a dragon. **Make it at least ten thousand words long.**'
    for n in 1000 4096; do
        echo "== steered generation, $n tokens (LeakSanitizer)"
        local t0=$SECONDS
        "${lock[@]}" /usr/bin/time -f 'max RSS %M KiB' "$bin" run -c 8192 -n "$n" --temp 0 --json "$prompt" \
            | python3 -c 'import json,sys; d=json.load(sys.stdin); print("generated", len(d["tokens"]), "tokens, stopped at end of generation:", d["stopped_at_eog"])'
        echo "== $n tokens: no leak reported, $((SECONDS - t0)) s"
    done
    for turns in 50 200; do
        echo "== chat, $turns turns (LeakSanitizer)"
        local t0=$SECONDS
        "${lock[@]}" "$ex" --turns "$turns" --n-predict 4 --every 50
        echo "== $turns turns: no leak reported, $((SECONDS - t0)) s"
    done
}

build
case "$what" in
    leaks) leaks ;;
    all) run_tests; leaks ;;
    *) run_tests ;;
esac
echo "sanitizer run clean"
