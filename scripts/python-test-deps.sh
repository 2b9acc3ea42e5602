#!/usr/bin/env bash
# Python packages the tests drive the server with (the official `openai` client), installed into
# target/py so that no system or user site is touched (Debian's Python refuses global installs).
# Prints the directory to put on PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$PWD/target/py"
if ! PYTHONPATH="$dir" python3 -c 'import openai' >/dev/null 2>&1; then
    mkdir -p "$dir"
    pip=(python3 -m pip install --quiet --disable-pip-version-check --target "$dir" "openai==3.51.0")
    "${pip[@]}" >&2 || "${pip[@]}" --break-system-packages >&2
fi
echo "$dir"
