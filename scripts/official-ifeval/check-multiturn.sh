#!/usr/bin/env bash
# Check every reply verdict of a `spotlight multiturn` directory with the official IFEval
# verifiers (lm-eval 0.4.13): each reply of each conversation is scored against the
# conversation's turn-1 instruction, as spotlight's scores-<condition>.jsonl did.
#   usage: scripts/official-ifeval/check-multiturn.sh MULTITURN_DIR [DATA.jsonl] [VENV_DIR]
# Run the same `spotlight multiturn ...` command first (with --score-only) so scores-*.jsonl are
# current. OFFICIAL_OUT=DIR keeps the official verdicts (default: a temporary directory).
# Exits 1 when any verdict differs (the differences are listed).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${1:?usage: check-multiturn.sh MULTITURN_DIR [DATA.jsonl] [VENV_DIR]}
DATA=${2:-$HERE/../../../shared/data/ifeval/input_data.jsonl}
VENV=${3:-/tmp/official-ifeval/venv}
OUT=${OFFICIAL_OUT:-$(mktemp -d)}

bash "$HERE/setup.sh" "$VENV" > /dev/null
mkdir -p "$OUT/turns"
# One IFEval record per (conversation, turn): the turn-1 record under the key `<key>/t<turn>`,
# and one responses file per condition with that turn's reply. score.py then calls the official
# functions exactly as for an eval run, and compare.py reads spotlight's scores-*.jsonl.
python3 - "$DATA" "$DIR" "$OUT/turns" <<'PYEOF'
import json, pathlib, sys
data, dir_, out = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
records = {}
for line in open(data, encoding="utf-8"):
    if line.strip():
        r = json.loads(line)
        records[r["key"]] = r
rows = {}
for path in sorted(dir_.glob("multiturn-*.jsonl")):
    name = path.stem[len("multiturn-"):]
    with open(out / f"responses-{name}.jsonl", "w", encoding="utf-8") as dst:
        for line in path.read_text(encoding="utf-8").splitlines():
            conversation = json.loads(line)
            record = records[conversation["key"]]
            assert record["instruction_id_list"] == [conversation["instruction_id"]], conversation["key"]
            for t, turn in enumerate(conversation["turns"], start=1):
                key = f"{conversation['key']}/t{t}"
                rows[key] = dict(record, key=key)
                dst.write(json.dumps({"key": key, "response": turn["reply"]}) + "\n")
with open(out / "data-turns.jsonl", "w", encoding="utf-8") as dst:
    for row in rows.values():
        dst.write(json.dumps(row) + "\n")
print(f"check-multiturn.sh: {len(rows)} replies per condition", file=sys.stderr)
PYEOF
files=()
for f in "$OUT"/turns/responses-*.jsonl; do files+=(--responses "$f"); done
NLTK_DATA="$VENV/nltk_data" "$VENV/bin/python" "$HERE/score.py" --data "$OUT/turns/data-turns.jsonl" "${files[@]}" --out "$OUT"
python3 "$HERE/compare.py" "$DIR" "$OUT"
