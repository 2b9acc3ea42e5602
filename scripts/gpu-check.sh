#!/usr/bin/env bash
# GPU check of steering on CUDA (issue #14), for a GPU machine with a driver but no Rust and no
# network: the CUDA binary is built here and carried there with the model and the golden data.
#
# The device tool sends the working tree (tracked + untracked-not-ignored files, about 36 MiB)
# plus the ignored paths a call names in `carry`, at most 64 MiB in all per call. The payload
# (binary ≈ see docs/results/cuda-build-2026-12-02.md, model 98 MB, golden JSON) is therefore
# xz-packed and split into parts of $SPOTLIGHT_GPU_PART_MIB (24) MiB under the ignored folder
# .gpu-check/, carried one part per call; each call moves its part out of the repository to
# $SPOTLIGHT_GPU_STAGE (/tmp/spotlight-gpu-check) on the (warm) machine, and the last call runs
# the checks. Never commit .gpu-check/ (it is in .gitignore) or the model.
#
# Here (x86-64 Linux, after scripts/cuda-toolkit.sh):
#   bash scripts/gpu-check.sh pack [MODEL.gguf]
#       builds `cargo build --release --features cuda` for SPOTLIGHT_CUDA_ARCHS (default 90-real:
#       the H100/H200) in $CARGO_TARGET_DIR (default target/cuda), or takes SPOTLIGHT_GPU_BIN;
#       the model defaults to spotlight's cache (spotlight pull), the golden data to
#       ${SPOTLIGHT_SHARED:-../shared}/golden. Prints the device calls to make, e.g.
#         call 1..N-1: command "bash scripts/gpu-check.sh receive",
#                      carry [".gpu-check/manifest", ".gpu-check/part-01"]   (then part-02, ...)
#         call N:      command "bash scripts/gpu-check.sh run", carry [manifest, part-N],
#                      timeout_s 600
#       Make the calls back to back (a machine stays warm only ~30 s after a call; a fresh one
#       has lost the earlier parts: `receive` and `run` say which are missing).
# There (the GPU machine):
#   bash scripts/gpu-check.sh receive    # keep the carried part(s), list what is still missing
#   bash scripts/gpu-check.sh run        # receive, unpack, check; report on stdout and in $OUT
#
# `run` prints: the GPU and driver; unsteered and steered greedy tokens on the golden prompts,
# GPU vs the CPU (same binary, -ngl 0) vs the reference; steered span shares from --trace (must
# reach τ within 1e-3 in every steered layer); graph splits and nodes not on CUDA, steered vs
# unsteered, with llama.cpp's compute-buffer sizes; `spotlight bench` (stock FA off/auto,
# steered, pp512, pp4096, tg128, compute buffers) in one run. Exit status 0 only if the hard
# checks pass (first greedy token GPU = CPU, τ reached, no extra split, no steering op off CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-}"
dir=.gpu-check
stage="${SPOTLIGHT_GPU_STAGE:-/tmp/spotlight-gpu-check}"
part_mib="${SPOTLIGHT_GPU_PART_MIB:-24}"
lock=(${SPOTLIGHT_LOCK:-})

pack() {
    local model="${1:-}" bin="${SPOTLIGHT_GPU_BIN:-}" golden
    golden="${SPOTLIGHT_SHARED:-../shared}/golden/smollm2-reference.json"
    [ -f "$golden" ] || { echo "gpu-check: no golden data at $golden (set SPOTLIGHT_SHARED)" >&2; exit 1; }
    if [ -z "$model" ]; then
        model="${SPOTLIGHT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spotlight}/SmolLM2-135M-Instruct.Q4_1.gguf"
    fi
    [ -f "$model" ] || { echo "gpu-check: no model at $model (spotlight pull, or pass MODEL.gguf)" >&2; exit 1; }
    if [ -z "$bin" ]; then
        export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/cuda}"
        export SPOTLIGHT_CUDA_ARCHS="${SPOTLIGHT_CUDA_ARCHS:-90-real}"
        echo "gpu-check: cargo build --release --features cuda (archs $SPOTLIGHT_CUDA_ARCHS, target dir $CARGO_TARGET_DIR)"
        "${lock[@]}" cargo build --release --features cuda --bin spotlight
        bin="$CARGO_TARGET_DIR/release/spotlight"
    fi
    if ! readelf -d "$bin" 2>/dev/null | grep -q 'libcudart'; then
        echo "gpu-check: $bin is not a CUDA build (no libcudart in its dynamic section)" >&2
        exit 1
    fi
    rm -rf "$dir"
    mkdir -p "$dir/payload"
    cp "$bin" "$dir/payload/spotlight"
    cp "$golden" "$dir/payload/smollm2-reference.json"
    cp "$model" "$dir/payload/model.gguf"
    (cd "$dir/payload" && sha256sum spotlight smollm2-reference.json model.gguf >SHA256SUMS)
    echo "gpu-check: packing $(du -sh "$dir/payload" | cut -f1) with xz"
    tar -C "$dir/payload" -cf - . | "${lock[@]}" xz -6 -T1 -c | split -b "${part_mib}M" --numeric-suffixes=1 -a 2 - "$dir/part-"
    rm -rf "$dir/payload"
    local parts=() p i
    for p in "$dir"/part-*; do
        parts+=("${p##*/}")
    done
    (cd "$dir" && sha256sum "${parts[@]}" >manifest)
    local tree
    tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
    echo "gpu-check: ${#parts[@]} parts of at most $part_mib MiB; the working tree that travels is $((tree / 1048576)) MiB"
    echo "gpu-check: device calls to make, back to back:"
    local n=${#parts[@]}
    for ((i = 1; i <= n; i++)); do
        local cmd="bash scripts/gpu-check.sh receive"
        [ "$i" -eq "$n" ] && cmd="bash scripts/gpu-check.sh run"
        echo "  $i/$n: command \"$cmd\"  carry [\"$dir/manifest\", \"$dir/${parts[$((i - 1))]}\"]"
    done
}

receive() {
    mkdir -p "$stage"
    [ -f "$dir/manifest" ] && cp "$dir/manifest" "$stage/manifest"
    [ -f "$stage/manifest" ] || { echo "gpu-check: no manifest (carry .gpu-check/manifest)" >&2; exit 1; }
    local p
    for p in "$dir"/part-*; do
        [ -e "$p" ] && cp "$p" "$stage/"
    done
    local missing=()
    while read -r sum name; do
        if [ ! -f "$stage/$name" ] || [ "$(sha256sum "$stage/$name" | cut -d' ' -f1)" != "$sum" ]; then
            missing+=("$name")
        fi
    done <"$stage/manifest"
    if ((${#missing[@]})); then
        echo "gpu-check: have $(($(wc -l <"$stage/manifest") - ${#missing[@]})) of $(wc -l <"$stage/manifest") parts; missing: ${missing[*]}"
        return 1
    fi
    echo "gpu-check: all $(wc -l <"$stage/manifest") parts are here"
}

find_lib_dir() {
    local lib="$1" d
    for d in ${CUDA_HOME:+$CUDA_HOME/lib64} /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
        /usr/lib/x86_64-linux-gnu /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
        [ -e "$d/$lib" ] && { echo "$d"; return 0; }
    done
    d=$(find / -xdev \( -path /proc -o -path /sys \) -prune -o -name "$lib" -print 2>/dev/null | head -1)
    [ -n "$d" ] && dirname "$d"
}

check() {
    receive || { echo "gpu-check: cannot run without every part" >&2; exit 1; }
    local out="${OUT:-$stage/out}" t0=$SECONDS status=0
    mkdir -p "$out" "$stage/payload"
    if [ ! -f "$stage/payload/.unpacked" ]; then
        (cd "$stage" && cat $(cut -d' ' -f3 manifest) | xz -dc | tar -C payload -xf -)
        (cd "$stage/payload" && sha256sum -c --quiet SHA256SUMS)
        touch "$stage/payload/.unpacked"
    fi
    local bin="$stage/payload/spotlight" model="$stage/payload/model.gguf" golden="$stage/payload/smollm2-reference.json"
    chmod +x "$bin"
    local libs="" lib d
    for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcuda.so.1; do
        d=$(find_lib_dir "$lib") || true
        [ -n "$d" ] && case ":$libs:" in *":$d:"*) ;; *) libs="$libs:$d" ;; esac
    done
    export LD_LIBRARY_PATH="${libs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    if ldd "$bin" | grep 'not found'; then
        echo "gpu-check: libraries missing (LD_LIBRARY_PATH=$LD_LIBRARY_PATH)" >&2
        exit 1
    fi
    {
        echo "# spotlight GPU check, $(date -u +%Y-%m-%dT%H:%MZ)"
        echo
        echo '```'
        nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 || true
        command -v nvcc >/dev/null && nvcc --version | tail -2
        "$bin" --version
        ldd "$bin" | grep -E 'cuda|cublas'
        echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) ($(nproc) cores)"
        echo '```'
        echo
    } | tee "$out/report.md"
    python3 scripts/gpu/checks.py golden "$bin" "$model" "$golden" "$out" | tee -a "$out/report.md" || status=1
    echo "(golden and trace: $((SECONDS - t0)) s)" | tee -a "$out/report.md"
    python3 scripts/gpu/checks.py splits "$bin" "$model" "$out" | tee -a "$out/report.md" || status=1
    echo "(splits: $((SECONDS - t0)) s)" | tee -a "$out/report.md"
    {
        echo "## spotlight bench -p 512,4096 -n 128 -r ${SPOTLIGHT_GPU_REPS:-3} -ngl 99 (tokens/s)"
        echo
        "$bin" bench --model "$model" --n-gpu-layers 99 -p 512,4096 -n 128 -r "${SPOTLIGHT_GPU_REPS:-3}" 2>"$out/bench.log" || {
            status=1
            tail -20 "$out/bench.log"
        }
        echo
        echo "(total: $((SECONDS - t0)) s)"
    } | tee -a "$out/report.md"
    # the logs are many small files; pack them so that they come back (8 files at most)
    (cd "$out" && tar -czf logs.tar.gz --remove-files ./*.log ./*.jsonl 2>/dev/null || true)
    if [ "$status" -eq 0 ]; then echo "gpu-check: PASS"; else echo "gpu-check: FAIL (see above)"; fi
    return "$status"
}

case "$what" in
    pack) shift; pack "$@" ;;
    receive) receive || true ;;
    run) check ;;
    *) sed -n '2,36p' "$0"; exit 2 ;;
esac
