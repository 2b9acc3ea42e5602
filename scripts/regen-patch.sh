#!/usr/bin/env bash
# Regenerate patches/0001-*.patch from an edited copy of llama.cpp.
#
# vendor/llama.cpp stays pristine and build.rs applies patches/ to a copy of it, so a change to
# the hook is made in a patched copy and turned back into the patch:
#
#   scripts/regen-patch.sh edit DIR    copy vendor/llama.cpp to DIR and apply the patch there
#   (edit DIR/include/llama.h, DIR/src/llama-graph.cpp, ...)
#   scripts/regen-patch.sh write DIR   rewrite the patch as the diff of vendor/llama.cpp and DIR,
#                                      keeping the patch's "Why:" header (edit it if the why changed)
#
# Then build (cargo build), and if include/llama.h changed, run scripts/regen-bindings.sh: the
# build refuses bindings generated from other headers.
#
# Only the parts build.rs compiles are compared (SOURCE_PARTS in build/patch.rs). The patch
# applier in build/patch.rs only changes existing files, so new or deleted files are refused.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
vendor="$repo/vendor/llama.cpp"

die() {
    echo "regen-patch: $*" >&2
    exit 1
}

usage() {
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# One source of truth for what is compared: the list build.rs copies and compiles.
read -r -a parts <<<"$(sed -n 's/^pub const SOURCE_PARTS: &\[&str\] = &\[\(.*\)\];$/\1/p' "$repo/build/patch.rs" | tr -d '",')"
[[ ${#parts[@]} -gt 0 ]] || die "cannot read SOURCE_PARTS from build/patch.rs"

shopt -s nullglob
patches=("$repo"/patches/[0-9]*.patch)
shopt -u nullglob
# Diffing vendor against a tree with every patch applied would fold them all into one.
[[ ${#patches[@]} -eq 1 ]] || die "expected exactly one patches/NNNN-*.patch, found ${#patches[@]}; with several, regenerate each from its own tree by hand"
patch_file=${patches[0]}

[[ $# -eq 2 ]] || usage
command=$1
dir=$2

case "$command" in
edit)
    [[ ! -e "$dir" ]] || die "$dir already exists; pick a new directory"
    command -v patch >/dev/null || die "needs patch(1)"
    mkdir -p "$dir"
    for part in "${parts[@]}"; do
        cp -a "$vendor/$part" "$dir/$part"
    done
    # --fuzz=0: the context must match exactly, as build/patch.rs demands
    patch -d "$dir" -p1 --fuzz=0 --no-backup-if-mismatch --quiet <"$patch_file" ||
        die "$(basename "$patch_file") does not apply to vendor/llama.cpp"
    echo "patched copy in $dir; edit it, then: scripts/regen-patch.sh write $dir"
    ;;
write)
    [[ -d "$dir" ]] || die "$dir is not a directory (create it with: scripts/regen-patch.sh edit $dir)"
    dir=$(cd "$dir" && pwd)
    [[ "$dir" != "$vendor" ]] || die "DIR must be an edited copy, not vendor/llama.cpp itself"
    changed=()
    while IFS= read -r -d '' f; do
        [[ -e "$dir/$f" ]] || die "$f is deleted in $dir; the patch can only change existing files"
        cmp -s "$vendor/$f" "$dir/$f" || changed+=("$f")
    done < <(cd "$vendor" && find "${parts[@]}" -type f -print0 | LC_ALL=C sort -z)
    while IFS= read -r -d '' f; do
        [[ -e "$vendor/$f" ]] || die "$f exists only in $dir; the patch can only change existing files (remove it, or add it to vendor/ deliberately)"
    done < <(cd "$dir" && find "${parts[@]}" -type f -print0)
    [[ ${#changed[@]} -gt 0 ]] || die "$dir does not differ from vendor/llama.cpp"

    # The why-header: everything before the first file of the diff.
    header=$(awk '/^(diff --git |--- )/ { exit } { print }' "$patch_file")
    [[ -n "$header" ]] || die "$(basename "$patch_file") has no header before its first diff; write one (start with 'Why:')"
    tmp=$(mktemp "${patch_file}.XXXXXX")
    trap 'rm -f "$tmp"' EXIT
    {
        printf '%s\n\n' "$header"
        for f in "${changed[@]}"; do
            echo "diff --git a/$f b/$f"
            # diff exits 1 when the files differ, which they do
            diff -u -p --label "a/$f" --label "b/$f" "$vendor/$f" "$dir/$f" || [[ $? -eq 1 ]]
        done
    } >"$tmp"
    mv "$tmp" "$patch_file"
    trap - EXIT
    echo "rewrote patches/$(basename "$patch_file") (${#changed[@]} files: ${changed[*]})"
    if printf '%s\n' "${changed[@]}" | grep -qx 'include/llama.h'; then
        echo "include/llama.h is patched: if its declarations changed, run scripts/regen-bindings.sh"
    fi
    ;;
*)
    usage
    ;;
esac
