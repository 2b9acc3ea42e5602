#!/usr/bin/env bash
# Leak check of the optimised build (issue #18): LeakSanitizer's standalone runtime (GCC's
# liblsan, LD_PRELOADed; it replaces malloc/free and scans for unreachable blocks at exit) on the
# release binaries, which are not rebuilt. The ASan build (scripts/sanitize.sh leaks) runs the same
# leak checker on top of ASan's shadow memory and runs ~10x slower; that is why its 4,096-token and
# 200-turn runs never finished in a 10-minute slot. What LSan cannot see is the same in both: memory
# still reachable at exit (freed late rather than lost), so the runs also print max RSS, and the
# chat prints RSS every 25 turns, so growth with tokens or turns shows up either way.
#
#   bash scripts/leak-check.sh            # positive control, 1,000 and 4,096 tokens, 50 and 200 turns
#
# Any leak report makes the run fail (LSan exits 23). Set SPOTLIGHT_LOCK="flock FILE" on a shared
# machine: each step then holds it.
set -euo pipefail
cd "$(dirname "$0")/.."
lock=(${SPOTLIGHT_LOCK:-})
lsan=$(gcc -print-file-name=liblsan.so)
[ -e "$lsan" ] || { echo "leak-check: GCC's liblsan.so not found (apt-get install liblsan0)" >&2; exit 1; }
export LSAN_OPTIONS="exitcode=23:report_objects=1"

"${lock[@]}" cargo build --release --bin spotlight --example chat_memory
# the default model (the chat example and the runs below use it)
"${lock[@]}" target/release/spotlight pull
bin=target/release/spotlight
ex=target/release/examples/chat_memory

# Positive control: a program that loses one allocation must be reported (exit 23), so a clean run
# below means "no leak", not "the checker was not there".
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include <stdlib.h>\nvoid *volatile keep;\nint main(void){ keep = malloc(4242); keep = 0; return 0; }\n' > "$tmp/leak.c"
cc -O0 -o "$tmp/leak" "$tmp/leak.c"
set +e
LD_PRELOAD="$lsan" "$tmp/leak" 2> "$tmp/leak.err"
rc=$?
set -e
if [ "$rc" -ne 23 ] || ! grep -q '4242 byte' "$tmp/leak.err"; then
    echo "leak-check: the positive control was not reported (exit $rc); LSan is not working here" >&2
    cat "$tmp/leak.err" >&2
    exit 1
fi
echo "== positive control: a lost 4,242-byte block is reported (exit 23)"

# Greedy decoding of this prompt loops without an end-of-generation token, so -n is reached.
prompt='Write a very long story about a dragon. **Make it at least ten thousand words long.**'
for n in 1000 4096; do
    echo "== steered generation, $n tokens (LeakSanitizer)"
    t0=$SECONDS
    "${lock[@]}" /usr/bin/time -f 'max RSS %M KiB' env LD_PRELOAD="$lsan" \
        "$bin" run -c 8192 -n "$n" --temp 0 --threads 2 --json "$prompt" > "$tmp/run.json"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("generated", len(d["tokens"]), "tokens, stopped at end of generation:", d["stopped_at_eog"])' "$tmp/run.json"
    echo "== $n tokens: no leak reported, $((SECONDS - t0)) s"
done
for turns in 50 200; do
    echo "== chat, $turns turns (LeakSanitizer)"
    t0=$SECONDS
    "${lock[@]}" /usr/bin/time -f 'max RSS %M KiB' env LD_PRELOAD="$lsan" "$ex" --turns "$turns" --n-predict 4 --every 25
    echo "== $turns turns: no leak reported, $((SECONDS - t0)) s"
done
echo "leak check clean"
