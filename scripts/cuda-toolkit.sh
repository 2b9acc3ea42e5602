#!/usr/bin/env bash
# Assemble a CUDA 13.0 toolkit from NVIDIA's PyPI wheels, so that `cargo build --features cuda`
# works on a machine without a GPU or a system CUDA install (issue #14):
#
#   bash scripts/cuda-toolkit.sh && cargo build --release --features cuda
#
# Wheels (pinned by version and sha256): nvcc, the C runtime headers (crt), NVVM (cicc,
# libdevice), CCCL (thrust/cub/libcu++), the runtime (cudart) and cuBLAS. The toolkit goes to
# $SPOTLIGHT_CUDA_HOME (default ~/.cache/spotlight/cuda-13.0, outside the repository; about
# 0.9 GB, plus 0.5 GB of wheels kept in $SPOTLIGHT_CUDA_HOME/wheels for re-runs) and is laid out
# like /usr/local/cuda: bin/nvcc, include/, lib64/ (-> lib), targets/x86_64-linux/ (what
# nvcc.profile expects), unversioned .so links, and lib/stubs/libcuda.so, a link-time stub of
# the driver library generated from cuda.h (the wheels carry no driver; at run time the real
# libcuda.so.1 of the GPU machine's driver is used).
#
# build.rs finds the toolkit by itself: CUDA_PATH if set, else $SPOTLIGHT_CUDA_HOME, else this
# script's default location if it holds bin/nvcc, else /usr/local/cuda.
#
# CUDA 13.0 because it is what the H200 machine's driver (580.x) and nvcc there are; the
# vendored ggml-cuda needs CUDA >= 11.8 for sm_90 (ggml/src/ggml-cuda/CMakeLists.txt) and
# builds with 13.x (it drops the pre-Turing default archs there). CUDA 13.0 accepts GCC 6..15 as
# host compiler (Debian 12's gcc 12 is fine).
#
# Options (environment): SPOTLIGHT_CUDA_HOME (where), SPOTLIGHT_CUDA_FORCE=1 (re-assemble).
set -euo pipefail

home="${SPOTLIGHT_CUDA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/spotlight/cuda-13.0}"
case "$home" in /*) ;; *) home="$PWD/$home" ;; esac

# name==version sha256 (manylinux x86_64 wheels, pure data: any Python 3 can fetch them)
wheels=(
    "nvidia-cuda-nvcc==13.0.88 56fe502eb77625a12f25172caa3cdddb4e4c8ba2c8c17dba44b164761b380f03"
    "nvidia-cuda-crt==13.0.88 2c8043c7c9e02492716426e9919fc78d2c5b3b2a7a768a88e952676b08aa55a4"
    "nvidia-nvvm==13.0.88 c5f41ffeb6466944a026dfa5317d7d85355c119bbec279205d22f1869d1054e0"
    "nvidia-cuda-cccl==13.0.85 e0da7ad981f3a8aff08241b5bfc1af868742a63e2762f53a5171c492ef242649"
    "nvidia-cuda-runtime==13.0.96 7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548"
    "nvidia-cublas==13.0.2.14 0cf238ffdbe46c00cb9aa98e7bca745c223a5ca5a53e686ac8b3e5a08fe80d6c"
)

if [ "$(uname -m)" != x86_64 ] || [ "$(uname -s)" != Linux ]; then
    echo "cuda-toolkit.sh: only x86_64 Linux is supported (this is $(uname -sm))" >&2
    exit 1
fi
if [ -x "$home/bin/nvcc" ] && [ -e "$home/.complete" ] && [ "${SPOTLIGHT_CUDA_FORCE:-0}" != 1 ]; then
    echo "cuda-toolkit.sh: $home is already assembled ($("$home/bin/nvcc" --version | tail -2 | head -1))"
    exit 0
fi

bash "$(dirname "$0")/prereqs.sh"
for tool in unzip cc; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "cuda-toolkit.sh: '$tool' is missing (apt-get install unzip / a C compiler)" >&2
        exit 1
    fi
done

mkdir -p "$home/wheels"
req="$home/wheels/requirements.txt"
: >"$req"
for w in "${wheels[@]}"; do
    echo "${w% *} --hash=sha256:${w#* }" >>"$req"
done
echo "cuda-toolkit.sh: fetching ${#wheels[@]} wheels into $home/wheels (about 0.5 GB the first time)"
python3 -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64 \
    -d "$home/wheels" -r "$req"

# Unpack into a fresh staging tree, then move it into place.
stage="$home/.stage"
rm -rf "$stage" "$home/.complete"
mkdir -p "$stage"
for w in "${wheels[@]}"; do
    spec="${w% *}"
    name="${spec%%==*}"
    version="${spec#*==}"
    file=$(ls "$home/wheels/${name//-/_}-${version}-"*.whl)
    unzip -q -o "$file" -d "$stage/site"
done
root="$stage/site/nvidia/cu13"
for d in bin include lib nvvm; do
    [ -d "$root/$d" ] || { echo "cuda-toolkit.sh: wheel layout changed: no nvidia/cu13/$d" >&2; exit 1; }
    rm -rf "${home:?}/$d"
    mv "$root/$d" "$home/$d"
done
rm -rf "$stage"
chmod +x "$home"/bin/* "$home"/nvvm/bin/* 2>/dev/null || true

# /usr/local/cuda layout: lib64, targets/x86_64-linux (nvcc.profile adds its include/ and lib/),
# unversioned names for the linker.
ln -sfn lib "$home/lib64"
mkdir -p "$home/targets/x86_64-linux"
ln -sfn ../../include "$home/targets/x86_64-linux/include"
ln -sfn ../../lib "$home/targets/x86_64-linux/lib"
for lib in "$home"/lib/lib*.so.[0-9]*; do
    base="${lib##*/}"
    ln -sfn "$base" "$home/lib/${base%%.so.*}.so"
done

# Link-time stub of the driver API (libcuda.so.1): every function cuda.h declares, after its
# _v2/_v3 renaming macros, as an empty symbol. Programs linked against it load the real driver.
mkdir -p "$home/lib/stubs"
printf '#include <cuda.h>\n' |
    cc -E -P -x c -I"$home/include" - |
    grep -oE '\bCUresult +(CUDAAPI +)?cu[A-Za-z0-9_]+ *\(' |
    sed -E 's/.* (cu[A-Za-z0-9_]+) *\(/\1/' | sort -u |
    awk '{ print "void " $1 "(void) {}" }' >"$home/lib/stubs/libcuda-stub.c"
count=$(wc -l <"$home/lib/stubs/libcuda-stub.c")
[ "$count" -gt 100 ] || { echo "cuda-toolkit.sh: only $count driver functions found in cuda.h" >&2; exit 1; }
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$home/lib/stubs/libcuda.so" "$home/lib/stubs/libcuda-stub.c"

# Smoke test: compile a kernel for sm_90 and link it (static and shared runtime).
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
cat >"$probe/probe.cu" <<'EOF'
#include <cstdio>
#include <cuda.h>
#include <cublas_v2.h>
__global__ void k(float *x) { x[threadIdx.x] *= 2.0f; }
int main() {
    cublasHandle_t h;
    const char *s = nullptr;
    cuGetErrorString(CUDA_SUCCESS, &s);
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) { std::puts("no GPU (expected here)"); return 0; }
    k<<<1, 32>>>(nullptr);
    return 0;
}
EOF
"$home/bin/nvcc" -arch=sm_90 -o "$probe/probe" "$probe/probe.cu" -L"$home/lib/stubs" -lcuda -lcublas
"$home/bin/nvcc" -arch=sm_90 -cudart shared -o "$probe/probe-shared" "$probe/probe.cu" \
    -L"$home/lib/stubs" -lcuda -lcublas
touch "$home/.complete"
echo "cuda-toolkit.sh: CUDA toolkit in $home"
"$home/bin/nvcc" --version | tail -2
echo "cuda-toolkit.sh: build with: cargo build --release --features cuda" \
    "(SPOTLIGHT_CUDA_ARCHS='90-real' for an H100/H200-only build)"
