#!/usr/bin/env bash
# Regenerate one patches/NNNN-*.patch from an edited copy of llama.cpp.
#
# vendor/llama.cpp stays pristine and build.rs applies patches/ in order to a copy of it, so a
# change to a patch is made in a patched copy and turned back into that patch:
#
#   scripts/regen-patch.sh edit DIR NNNN   copy vendor/llama.cpp to DIR, apply the patches before
#                                          NNNN (DIR.base keeps that state) and then NNNN itself
#   (edit DIR/include/llama.h, DIR/src/llama-graph.cpp, ...)
#   scripts/regen-patch.sh write DIR NNNN  rewrite patch NNNN as the diff of DIR.base and DIR,
#                                          keeping its "Why:" header (edit it if the why changed)
#
# NNNN may be left out when there is only one patch. Later patches must still apply on top of the
# new one (the build says so if not).
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
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# One source of truth for what is compared: the list build.rs copies and compiles.
read -r -a parts <<<"$(sed -n 's/^pub const SOURCE_PARTS: &\[&str\] = &\[\(.*\)\];$/\1/p' "$repo/build/patch.rs" | tr -d '",')"
[[ ${#parts[@]} -gt 0 ]] || die "cannot read SOURCE_PARTS from build/patch.rs"

[[ $# -eq 2 || $# -eq 3 ]] || usage
command=$1
dir=${2%/}
number=${3:-}

shopt -s nullglob
patches=("$repo"/patches/[0-9]*.patch)
shopt -u nullglob
[[ ${#patches[@]} -gt 0 ]] || die "no patches/NNNN-*.patch"
if [[ -z "$number" ]]; then
    [[ ${#patches[@]} -eq 1 ]] || die "there are ${#patches[@]} patches: name the one to regenerate (e.g. 0001)"
    number=$(basename "${patches[0]}" | cut -d- -f1)
fi
patch_file=
earlier=()
for p in "${patches[@]}"; do
    n=$(basename "$p" | cut -d- -f1)
    if [[ "$n" == "$number" ]]; then
        patch_file=$p
        break
    fi
    earlier+=("$p")
done
[[ -n "$patch_file" ]] || die "no patches/$number-*.patch"
base="$dir.base"

case "$command" in
edit)
    [[ ! -e "$dir" && ! -e "$base" ]] || die "$dir or $base already exists; pick a new directory"
    command -v patch >/dev/null || die "needs patch(1)"
    mkdir -p "$base"
    for part in "${parts[@]}"; do
        mkdir -p "$(dirname "$base/$part")"
        cp -a "$vendor/$part" "$base/$part"
    done
    # --fuzz=0: the context must match exactly, as build/patch.rs demands
    for p in "${earlier[@]}"; do
        patch -d "$base" -p1 --fuzz=0 --no-backup-if-mismatch --quiet <"$p" ||
            die "$(basename "$p") does not apply to vendor/llama.cpp"
    done
    cp -a "$base" "$dir"
    patch -d "$dir" -p1 --fuzz=0 --no-backup-if-mismatch --quiet <"$patch_file" ||
        die "$(basename "$patch_file") does not apply after the patches before it"
    echo "patched copy in $dir; edit it, then: scripts/regen-patch.sh write $dir $number"
    ;;
write)
    [[ -d "$dir" ]] || die "$dir is not a directory (create it with: scripts/regen-patch.sh edit $dir)"
    [[ -d "$base" ]] || die "$base is missing (create both with: scripts/regen-patch.sh edit $dir $number)"
    dir=$(cd "$dir" && pwd)
    base=$(cd "$base" && pwd)
    [[ "$dir" != "$vendor" ]] || die "DIR must be an edited copy, not vendor/llama.cpp itself"
    changed=()
    while IFS= read -r -d '' f; do
        [[ -e "$dir/$f" ]] || die "$f is deleted in $dir; the patch can only change existing files"
        cmp -s "$base/$f" "$dir/$f" || changed+=("$f")
    done < <(cd "$base" && find "${parts[@]}" -type f -print0 | LC_ALL=C sort -z)
    while IFS= read -r -d '' f; do
        [[ -e "$base/$f" ]] || die "$f exists only in $dir; the patch can only change existing files (remove it, or add it to vendor/ deliberately)"
    done < <(cd "$dir" && find "${parts[@]}" -type f -print0)
    [[ ${#changed[@]} -gt 0 ]] || die "$dir does not differ from $base"

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
            diff -u -p --label "a/$f" --label "b/$f" "$base/$f" "$dir/$f" || [[ $? -eq 1 ]]
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
