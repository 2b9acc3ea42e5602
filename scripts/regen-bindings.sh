#!/usr/bin/env bash
# Regenerate the FFI bindings src/llama/sys_generated.rs from the patched llama.cpp headers, and
# src/llama/bindings.sha256, the record of what they were generated from that build.rs checks.
#
# Run it when the build says the bindings do not match the headers: after a patch changed
# include/llama.h (scripts/regen-patch.sh) or vendor/llama.cpp was updated. Needs libclang, for
# bindgen. Extra arguments go to cargo (e.g. --features cuda). Review the bindings' diff before
# committing: a changed declaration usually needs a change in src/llama/ too.
set -euo pipefail

cd "$(dirname "$0")/.."

# build.rs with --features bindgen writes OUT_DIR/bindings.rs (bindgen over the same patched
# tree it compiles) and OUT_DIR/bindings.sha256 (the record for exactly that file). `check`
# runs the build script like `build` does; the crate itself may fail to compile against new
# bindings, which is what the wrapper then has to be changed for, so its result is ignored
# here and the build script's is read from cargo's messages.
messages=$(cargo check --lib --features bindgen --message-format=json-render-diagnostics "$@" || true)
out_dir=$(printf '%s\n' "$messages" |
    grep '"reason":"build-script-executed"' |
    grep 'llama-spotlight' |
    sed -n 's/.*"out_dir":"\([^"]*\)".*/\1/p' |
    tail -n 1)
if [[ -z "$out_dir" || ! -f "$out_dir/bindings.rs" || ! -f "$out_dir/bindings.sha256" ]]; then
    echo "regen-bindings: the build script did not produce bindings (see cargo's output above; bindgen needs libclang)" >&2
    exit 1
fi

cp "$out_dir/bindings.rs" src/llama/sys_generated.rs
cp "$out_dir/bindings.sha256" src/llama/bindings.sha256
echo "updated src/llama/sys_generated.rs and src/llama/bindings.sha256 from $out_dir"

# Without the feature, the build uses the committed copy and checks the record: this proves the
# two files belong together and shows what in the wrapper needs to follow the new declarations.
cargo check --all-targets "$@"
git --no-pager diff --stat -- src/llama/sys_generated.rs src/llama/bindings.sha256 || true
