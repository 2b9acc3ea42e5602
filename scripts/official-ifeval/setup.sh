#!/usr/bin/env bash
# Set up the OFFICIAL IFEval verifiers (lm-eval 0.4.13, lm_eval/tasks/ifeval/)
# for offline scoring with score.py. Idempotent.
#   usage: setup.sh [VENV_DIR]   (default /tmp/official-ifeval/venv)
# Creates VENV_DIR with exact pinned packages and VENV_DIR/nltk_data holding
# NLTK's punkt_tab model (what nltk.download('punkt_tab') fetches), taken from
# the llama-index-core wheel, which ships NLTK's punkt_tab.zip byte for byte.
set -euo pipefail

VENV=${1:-/tmp/official-ifeval/venv}
PY=${PYTHON:-python3}
HERE=$(cd "$(dirname "$0")" && pwd)

# Only what lm_eval/tasks/ifeval imports (nltk, langdetect, immutabledict,
# packaging) plus their own dependencies; lm-eval itself without its heavy deps.
PINS=(
  nltk==3.10.4 click==8.5.1 joblib==1.6.0 regex==2026.11.19 tqdm==4.70.1
  cloudpickle==3.1.3 defusedxml==0.7.1
  langdetect==1.0.9 six==1.17.0
  immutabledict==4.3.1 packaging==26.4
  lm-eval==0.4.13
)
# NLTK punkt_tab.zip as served by NLTK's data index (size / sha256).
PUNKT_SRC=llama-index-core==0.14.25
PUNKT_MEMBER=llama_index/core/_static/nltk_cache/tokenizers/punkt_tab.zip
PUNKT_SHA256=e57f64187974277726a3417ca6f181ec5403676c717672eef6a748a7b20e0106
PUNKT_SIZE=4319076

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# --no-deps with a complete pin list: exactly these versions, nothing else.
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "${PINS[@]}"

NLTK_DATA="$VENV/nltk_data"
"$VENV/bin/python" - "$NLTK_DATA" "$PUNKT_SRC" "$PUNKT_MEMBER" "$PUNKT_SHA256" "$PUNKT_SIZE" <<'PYEOF'
import glob, hashlib, os, subprocess, sys, tempfile, zipfile
nltk_data, src, member, sha, size = sys.argv[1:]
tok = os.path.join(nltk_data, "tokenizers")
dest = os.path.join(tok, "punkt_tab.zip")

def ok(path):
    if not os.path.isfile(path) or os.path.getsize(path) != int(size):
        return False
    return hashlib.sha256(open(path, "rb").read()).hexdigest() == sha

if not ok(dest):
    os.makedirs(tok, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        subprocess.check_call([sys.executable, "-m", "pip", "download", "-q",
                               "--disable-pip-version-check", "--no-deps", "-d", d, src])
        (whl,) = glob.glob(os.path.join(d, "*.whl"))
        with zipfile.ZipFile(whl) as w, open(dest + ".part", "wb") as out:
            out.write(w.read(member))
    if not ok(dest + ".part"):
        sys.exit(f"punkt_tab.zip from {src} does not match sha256 {sha}")
    os.replace(dest + ".part", dest)
# Unpack next to the zip, as nltk.download does (refresh every run: cheap).
with zipfile.ZipFile(dest) as z:
    z.extractall(tok)
print(f"punkt_tab: {dest} sha256 {sha} (from {src}:{member})")
PYEOF

# Smoke test: official modules import offline and punkt_tab loads.
NLTK_DATA="$NLTK_DATA" "$VENV/bin/python" -c '
import nltk
print(nltk.data.load("nltk:tokenizers/punkt/english.pickle").tokenize("Mr. Smith went to Washington. He left at 5 p.m. today."))'

echo
echo "Use:"
echo "NLTK_DATA=$NLTK_DATA $VENV/bin/python $HERE/score.py --data INPUT.jsonl --responses responses-X.jsonl --out DIR"
