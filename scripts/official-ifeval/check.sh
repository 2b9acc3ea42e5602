#!/usr/bin/env bash
# Score every complete responses-*.jsonl of an eval directory with the official IFEval
# verifiers (lm-eval 0.4.13) and compare each verdict with spotlight's scores-*.jsonl.
#   usage: scripts/official-ifeval/check.sh EVAL_DIR [DATA.jsonl] [VENV_DIR]
# Run `spotlight eval ... --score-only --out EVAL_DIR` first so scores-*.jsonl are current.
# OFFICIAL_OUT=DIR keeps the official verdicts (default: a temporary directory).
# Exits 1 when any verdict differs (the differences are listed).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${1:?usage: check.sh EVAL_DIR [DATA.jsonl] [VENV_DIR]}
DATA=${2:-$HERE/../../../shared/data/ifeval/input_data.jsonl}
VENV=${3:-/tmp/official-ifeval/venv}
OUT=${OFFICIAL_OUT:-$(mktemp -d)}  # official-*.jsonl verdicts

bash "$HERE/setup.sh" "$VENV" > /dev/null
mkdir -p "$OUT"
# A run on a subset (`eval --subset N`) has responses for N prompts only: score the official side
# on the prompts of the baseline's responses (the keys every condition of the run shares), and
# count a condition complete when it has all of them.
ref="$DIR/responses-baseline.jsonl"
[ -f "$ref" ] || ref=$(ls "$DIR"/responses-*.jsonl | head -1)
SUBSET="$OUT/data-subset.jsonl"
python3 - "$DATA" "$ref" "$SUBSET" <<'PYEOF'
import json, sys
data, ref, out = sys.argv[1:]
keys = {json.loads(l)["key"] for l in open(ref) if l.strip()}
with open(data) as src, open(out, "w") as dst:
    kept = [l for l in src if l.strip() and json.loads(l)["key"] in keys]
    dst.writelines(kept)
print(f"check.sh: {len(kept)} prompts (the keys of {ref})", file=sys.stderr)
PYEOF
DATA="$SUBSET"
n=$(wc -l < "$DATA")
files=()
for f in "$DIR"/responses-*.jsonl; do
  [ "$(wc -l < "$f")" -eq "$n" ] && files+=(--responses "$f") || echo "skipping incomplete $f" >&2
done
NLTK_DATA="$VENV/nltk_data" "$VENV/bin/python" "$HERE/score.py" --data "$DATA" "${files[@]}" --out "$OUT"
python3 "$HERE/compare.py" "$DIR" "$OUT"
