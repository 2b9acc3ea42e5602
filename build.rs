//! Builds the vendored llama.cpp with our patches applied:
//! vendor/llama.cpp (pristine) → OUT_DIR/llama.cpp (copy + patches/NNNN-*.patch) → cmake → static libs.
//! Rust bindings are pre-generated in src/llama/sys_generated.rs; `--features bindgen` regenerates them
//! (scripts/regen-bindings.sh), and the build fails when they no longer belong to the patched
//! headers (build/bindings.rs checks src/llama/bindings.sha256).
//!
//! CPU instruction sets (see `CpuTarget`): native builds use `-march=native` without AMX unless
//! `SPOTLIGHT_AMX=1`, because ggml's AMX kernels die with SIGILL on some AMX machines (tile
//! permission requested on one thread only; see issue "Runs on every x86-64 CPU").
//! `SPOTLIGHT_PORTABLE=1` (or `v3`) targets x86-64-v3 (AVX2, FMA, F16C, BMI2);
//! `SPOTLIGHT_PORTABLE=baseline` enables no extension beyond x86-64 itself.
//!
//! `SPOTLIGHT_SANITIZE=1` compiles llama.cpp (with our patch) with `-fsanitize=address,undefined`
//! and links every binary of this crate (tests and examples included) against the sanitizer
//! runtimes, in a build dir of its own; scripts/sanitize.sh uses it with a separate target dir.

#[path = "build/bindings.rs"]
// a bindgen build records the bindings instead of checking them
#[cfg_attr(feature = "bindgen", allow(dead_code))]
mod bindings;
#[path = "build/patch.rs"]
mod patch;

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use patch::SOURCE_PARTS;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let vendor = manifest.join("vendor/llama.cpp");
    let patches_dir = manifest.join("patches");

    println!("cargo:rerun-if-changed=vendor/llama.cpp");
    println!("cargo:rerun-if-changed=patches");
    println!("cargo:rerun-if-changed=build/patch.rs");
    println!("cargo:rerun-if-changed=build/bindings.rs");
    println!("cargo:rerun-if-changed={}", bindings::RECORD);
    println!("cargo:rerun-if-changed={}", bindings::BINDINGS);
    println!("cargo:rerun-if-env-changed=SPOTLIGHT_PORTABLE");
    println!("cargo:rerun-if-env-changed=SPOTLIGHT_AMX");
    println!("cargo:rerun-if-env-changed=SPOTLIGHT_SANITIZE");
    println!("cargo:rerun-if-env-changed=CC");
    println!("cargo:rerun-if-env-changed=CXX");
    println!("cargo:rerun-if-env-changed=CUDA_PATH");
    if cfg!(feature = "cuda") {
        println!("cargo:rerun-if-env-changed=SPOTLIGHT_CUDA_HOME");
        println!("cargo:rerun-if-env-changed=SPOTLIGHT_CUDA_ARCHS");
    }

    if !vendor.join("CMakeLists.txt").exists() {
        fail(&format!(
            "{} is missing: the vendored llama.cpp is part of the repository",
            vendor.display()
        ));
    }

    let patches = patch::list_patches(&patches_dir)
        .unwrap_or_else(|e| fail(&format!("cannot list {}: {e}", patches_dir.display())));
    let patched = patch::apply_patches(&vendor, &patches).unwrap_or_else(|e| fail(&e.to_string()));
    let read_patched = |rel: &str| {
        patched
            .get(rel)
            .map(|text| text.clone().into_bytes())
            .or_else(|| fs::read(vendor.join(rel)).ok())
    };
    let headers = bindings::headers(&read_patched).unwrap_or_else(|e| fail(&e));
    // Before the cmake build, so stale bindings fail in a second rather than after minutes.
    #[cfg(not(feature = "bindgen"))]
    bindings::check_committed(&manifest, &headers).unwrap_or_else(|e| fail(&e));

    // One llama.cpp build per configuration, shared by every build-script run of this crate
    // (check, clippy, test and release builds each get their own OUT_DIR; without this each
    // would compile llama.cpp again). Cargo's lock on the target directory serializes access.
    let sanitize = sanitize_from_env();
    let shared = shared_build_dir(&out, &CpuTarget::from_env(), sanitize);
    let src = shared.join("llama.cpp");
    sync_tree(&vendor, &src, &patched);
    // The integrity test re-applies the patches and compares against this tree.
    println!("cargo:rustc-env=SPOTLIGHT_PATCHED_SRC={}", src.display());
    println!(
        "cargo:rustc-env=SPOTLIGHT_PATCHES={}",
        patches
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy())
            .collect::<Vec<_>>()
            .join(",")
    );

    let cpu = CpuTarget::from_env();
    let sanitized = if sanitize {
        ", ASan+UBSan (SPOTLIGHT_SANITIZE=1)"
    } else {
        ""
    };
    println!("cargo:rustc-env=SPOTLIGHT_CPU_BUILD={}{sanitized}", cpu.describe());
    let dst = build_llama(&src, &shared.join("cmake"), &cpu, sanitize);
    link(&dst, sanitize);

    #[cfg(feature = "bindgen")]
    {
        generate_bindings(&src, &out);
        // scripts/regen-bindings.sh copies this next to the bindings it copies
        let generated = fs::read(out.join("bindings.rs")).unwrap_or_else(|e| fail(&format!("read bindings.rs: {e}")));
        fs::write(out.join("bindings.sha256"), bindings::record(&headers, &generated))
            .unwrap_or_else(|e| fail(&format!("write bindings.sha256: {e}")));
    }
}

/// `<target-dir>/llama-cpp/<configuration>`: OUT_DIR is `<target-dir>/<profile>/build/<pkg>/out`.
/// The key names every setting that changes the compiled code, so check, clippy, test and
/// release builds made under the same environment share one build and differing ones never do.
fn shared_build_dir(out: &Path, cpu: &CpuTarget, sanitize: bool) -> PathBuf {
    let target_dir = out.ancestors().nth(4).unwrap_or(out);
    let mut key = env::var("TARGET").unwrap_or_else(|_| "host".into());
    for (on, name) in [
        (cfg!(feature = "cuda"), "cuda"),
        (cfg!(feature = "metal"), "metal"),
        (cfg!(feature = "openmp"), "openmp"),
    ] {
        if on {
            key.push('-');
            key.push_str(name);
        }
    }
    key.push('-');
    key.push_str(cpu.key());
    if sanitize {
        key.push_str("-asan-ubsan");
    }
    target_dir.join("llama-cpp").join(key)
}

/// `SPOTLIGHT_SANITIZE=1`: AddressSanitizer + UndefinedBehaviorSanitizer build (see the top).
fn sanitize_from_env() -> bool {
    match env::var("SPOTLIGHT_SANITIZE").unwrap_or_default().trim() {
        "" | "0" => false,
        "1" => true,
        other => fail(&format!("SPOTLIGHT_SANITIZE={other:?} is not understood: use 1 or 0")),
    }
}

/// Compiler flags of the sanitizer build. Frame pointers keep ASan's malloc/free stacks useful in
/// an -O3 build; UBSan stays recoverable at compile time so that UBSAN_OPTIONS=halt_on_error=1
/// (scripts/sanitize.sh) decides whether a finding is fatal.
const SANITIZE_FLAGS: [&str; 2] = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"];

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    panic!("llama-spotlight build failed: {msg}");
}

/// Copy the source parts of `vendor` into `dst`, substituting patched contents. Files are only
/// written when their content differs, so cmake rebuilds just what a vendor/patch change touched.
fn sync_tree(vendor: &Path, dst: &Path, patched: &BTreeMap<String, String>) {
    let mut wanted = std::collections::BTreeSet::new();
    for part in SOURCE_PARTS {
        for rel in walk(vendor, Path::new(part)) {
            let key = rel.to_string_lossy().replace('\\', "/");
            let target = dst.join(&rel);
            let content = match patched.get(&key) {
                Some(p) => p.as_bytes().to_vec(),
                None => fs::read(vendor.join(&rel)).unwrap_or_else(|e| fail(&format!("read {key}: {e}"))),
            };
            if fs::read(&target).ok().as_deref() != Some(&content[..]) {
                fs::create_dir_all(target.parent().unwrap()).unwrap();
                fs::write(&target, &content).unwrap_or_else(|e| fail(&format!("write {}: {e}", target.display())));
            }
            wanted.insert(key);
        }
    }
    for key in patched.keys() {
        if !wanted.contains(key) {
            fail(&format!(
                "a patch touches {key}, which is outside the built source parts {SOURCE_PARTS:?}"
            ));
        }
    }
    // Files that vanished from vendor must not linger in the build tree.
    for part in SOURCE_PARTS {
        for rel in walk(dst, Path::new(part)) {
            if !wanted.contains(&rel.to_string_lossy().replace('\\', "/")) {
                let _ = fs::remove_file(dst.join(rel));
            }
        }
    }
}

/// Relative paths of all files under `root/rel` (or `rel` itself if it is a file).
fn walk(root: &Path, rel: &Path) -> Vec<PathBuf> {
    let full = root.join(rel);
    if full.is_file() {
        return vec![rel.to_path_buf()];
    }
    let mut files = Vec::new();
    if let Ok(entries) = fs::read_dir(&full) {
        for entry in entries.flatten() {
            files.extend(walk(root, &rel.join(entry.file_name())));
        }
    }
    files.sort();
    files
}

fn on_off(b: bool) -> &'static str {
    if b {
        "ON"
    } else {
        "OFF"
    }
}

/// Which x86 instruction sets llama.cpp is compiled for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CpuLevel {
    /// `-march=native`: whatever the build machine has.
    Native,
    /// x86-64-v3: ggml's non-native defaults (SSE4.2, AVX, AVX2, BMI2, FMA, F16C).
    PortableV3,
    /// No extension beyond x86-64 (SSE2): runs on every x86-64 CPU.
    Baseline,
}

struct CpuTarget {
    level: CpuLevel,
    /// AMX tiles allowed in native builds (opt-in: needs a kernel and ggml that handle AMX).
    amx: bool,
    x86: bool,
}

impl CpuTarget {
    fn from_env() -> Self {
        let level = match env::var("SPOTLIGHT_PORTABLE").unwrap_or_default().trim() {
            "" | "0" => CpuLevel::Native,
            "1" | "v3" | "x86-64-v3" => CpuLevel::PortableV3,
            "baseline" | "x86-64" => CpuLevel::Baseline,
            other => fail(&format!(
                "SPOTLIGHT_PORTABLE={other:?} is not understood: use 1 (or v3) for x86-64-v3, \
                 baseline for plain x86-64, or leave it unset for a native build"
            )),
        };
        let amx = match env::var("SPOTLIGHT_AMX").unwrap_or_default().trim() {
            "" | "0" => false,
            "1" => true,
            other => fail(&format!("SPOTLIGHT_AMX={other:?} is not understood: use 1 or 0")),
        };
        let x86 = env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "x86_64" || a == "x86");
        if amx && level != CpuLevel::Native {
            fail("SPOTLIGHT_AMX=1 applies to native builds only; unset SPOTLIGHT_PORTABLE");
        }
        CpuTarget { level, amx, x86 }
    }

    fn key(&self) -> &'static str {
        match (self.level, self.amx) {
            (CpuLevel::Native, false) => "native",
            (CpuLevel::Native, true) => "native-amx",
            (CpuLevel::PortableV3, _) => "portable",
            (CpuLevel::Baseline, _) => "baseline",
        }
    }

    /// One line for `spotlight --version`.
    fn describe(&self) -> String {
        let level = match self.level {
            CpuLevel::Native => "native (-march=native)",
            CpuLevel::PortableV3 => "portable x86-64-v3 (AVX2 FMA F16C BMI2)",
            CpuLevel::Baseline => "portable baseline x86-64 (no SIMD beyond SSE2)",
        };
        let amx = if !self.x86 {
            "AMX n/a"
        } else if self.amx {
            "AMX on (SPOTLIGHT_AMX=1)"
        } else {
            "AMX off"
        };
        format!("{level}, {amx}")
    }

    /// Flags for both the C and the C++ compiler.
    fn compiler_flags(&self) -> Vec<&'static str> {
        if !self.x86 || self.amx || self.level != CpuLevel::Native {
            return Vec::new();
        }
        // GCC and Clang let an explicit -mno-X win over what -march=native implies, whatever the
        // order. A compiler that does not know the flags cannot emit AMX either.
        const NO_AMX: [&str; 3] = ["-mno-amx-tile", "-mno-amx-int8", "-mno-amx-bf16"];
        let c = env::var("CC").unwrap_or_else(|_| "cc".into());
        let cxx = env::var("CXX").unwrap_or_else(|_| "c++".into());
        if accepts_flags(&c, "c", &NO_AMX) && accepts_flags(&cxx, "c++", &NO_AMX) {
            NO_AMX.to_vec()
        } else {
            Vec::new()
        }
    }
}

/// Whether `compiler` compiles an empty translation unit with `flags`.
fn accepts_flags(compiler: &str, lang: &str, flags: &[&str]) -> bool {
    let probe = std::process::Command::new(compiler)
        .args(flags)
        .args(["-x", lang, "-fsyntax-only", "-"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    probe.is_ok_and(|s| s.success())
}

fn build_llama(src: &Path, out_dir: &Path, cpu: &CpuTarget, sanitize: bool) -> PathBuf {
    let portable = cpu.level != CpuLevel::Native;
    let mut cfg = cmake::Config::new(src);
    cfg.out_dir(out_dir)
        .profile("Release")
        .define("BUILD_SHARED_LIBS", "OFF")
        .define("LLAMA_BUILD_COMMON", "OFF")
        .define("LLAMA_BUILD_TESTS", "OFF")
        .define("LLAMA_BUILD_TOOLS", "OFF")
        .define("LLAMA_BUILD_EXAMPLES", "OFF")
        .define("LLAMA_BUILD_SERVER", "OFF")
        .define("LLAMA_BUILD_APP", "OFF")
        .define("LLAMA_CURL", "OFF")
        .define("GGML_CCACHE", "OFF")
        .define("GGML_NATIVE", on_off(!portable))
        .define("GGML_OPENMP", on_off(cfg!(feature = "openmp")))
        .define("GGML_CUDA", on_off(cfg!(feature = "cuda")))
        .define("GGML_METAL", on_off(cfg!(feature = "metal")))
        // Metal shaders are embedded so the binary does not need a .metallib next to it.
        .define("GGML_METAL_EMBED_LIBRARY", on_off(cfg!(feature = "metal")))
        .define("GGML_BLAS", "OFF")
        // `--rpc` clients and `spotlight rpc-server` workers (llama.cpp's RPC backend, TCP only:
        // RDMA would be switched on by whatever libibverbs the build machine happens to have and
        // then need linking; patches 0003/0004 adjust the TCP client and the server)
        .define("GGML_RPC", "ON")
        .define("GGML_RPC_RDMA", "OFF");
    if cpu.level == CpuLevel::Baseline {
        for ext in ["SSE42", "AVX", "AVX2", "BMI2", "FMA", "F16C", "AVX_VNNI", "AVX512"] {
            cfg.define(format!("GGML_{ext}"), "OFF");
        }
    }
    for flag in cpu.compiler_flags() {
        cfg.cflag(flag);
        cfg.cxxflag(flag);
    }
    if sanitize {
        for flag in SANITIZE_FLAGS {
            cfg.cflag(flag);
            cfg.cxxflag(flag);
        }
    }
    if cfg!(feature = "cuda") {
        let cuda = cuda_root();
        cfg.define("CUDAToolkit_ROOT", &cuda)
            .define("CMAKE_CUDA_COMPILER", cuda.join("bin/nvcc"))
            .define("CMAKE_CUDA_ARCHITECTURES", cuda_archs())
            // Single GPU: no NCCL (it would be picked up from whatever the machine has).
            .define("GGML_CUDA_NCCL", "OFF");
    }
    cfg.build()
}

fn link(dst: &Path, sanitize: bool) {
    if sanitize {
        // The instrumented static libraries call into libasan/libubsan. `-fsanitize=...` as a
        // link argument does not pull them in: rustc links with -nodefaultlibs, which turns off
        // the driver's sanitizer libraries. Naming them here, before every other library, puts
        // libasan first in the executable's DT_NEEDED list, which ASan requires (its malloc must
        // win over libc's); this works on stable Rust for every binary of the crate.
        println!("cargo:rustc-link-lib=dylib=asan");
        println!("cargo:rustc-link-lib=dylib=ubsan");
    }
    for dir in ["lib", "lib64"] {
        println!("cargo:rustc-link-search=native={}", dst.join(dir).display());
    }
    // Order matters for static linking: dependents before their dependencies.
    println!("cargo:rustc-link-lib=static=llama");
    if cfg!(feature = "metal") {
        println!("cargo:rustc-link-lib=static=ggml-metal");
    }
    // ggml's backend registry references ggml-rpc (and spotlight calls it directly); ggml-rpc
    // itself needs only ggml-base. The registry (libggml) is what references ggml-cuda
    // (ggml_backend_cuda_reg), and ggml-cuda needs only ggml-base, so it goes between them.
    let mut libs = vec!["ggml"];
    if cfg!(feature = "cuda") {
        libs.push("ggml-cuda");
    }
    libs.extend(["ggml-rpc", "ggml-cpu", "ggml-base"]);
    for lib in libs {
        println!("cargo:rustc-link-lib=static={lib}");
    }

    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if cfg!(feature = "cuda") {
        // What ggml-cuda's CMake links (CUDA::cudart, CUDA::cublas, CUDA::cuda_driver for VMM);
        // cublasLt comes with cublas. libcuda is the driver's: linked against the toolkit's stub,
        // loaded from the driver at run time (so a CUDA binary starts only where a driver is).
        let cuda = cuda_root();
        for dir in ["lib64", "lib", "lib64/stubs", "lib/stubs"] {
            println!("cargo:rustc-link-search=native={}", cuda.join(dir).display());
        }
        for lib in ["cudart", "cublas", "cublasLt", "cuda"] {
            println!("cargo:rustc-link-lib=dylib={lib}");
        }
    }
    match target_os.as_str() {
        "macos" | "ios" => {
            println!("cargo:rustc-link-lib=dylib=c++");
            println!("cargo:rustc-link-lib=framework=Foundation");
            println!("cargo:rustc-link-lib=framework=Accelerate");
            if cfg!(feature = "metal") {
                println!("cargo:rustc-link-lib=framework=Metal");
                println!("cargo:rustc-link-lib=framework=MetalKit");
            }
            if cfg!(feature = "openmp") {
                println!("cargo:rustc-link-lib=dylib=omp");
            }
        }
        _ => {
            println!("cargo:rustc-link-lib=dylib=stdc++");
            if cfg!(feature = "openmp") {
                println!("cargo:rustc-link-lib=dylib=gomp");
            }
        }
    }
}

/// The CUDA toolkit (`--features cuda`): `CUDA_PATH`, else `SPOTLIGHT_CUDA_HOME`, else where
/// scripts/cuda-toolkit.sh puts it by default (`~/.cache/spotlight/cuda-13.0`, honouring
/// `XDG_CACHE_HOME`) if it holds nvcc, else /usr/local/cuda.
fn cuda_root() -> PathBuf {
    let from_env = |name: &str| env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = from_env("CUDA_PATH").or_else(|| from_env("SPOTLIGHT_CUDA_HOME")) {
        return dir;
    }
    let cache = from_env("XDG_CACHE_HOME").or_else(|| from_env("HOME").map(|h| h.join(".cache")));
    if let Some(dir) = cache.map(|c| c.join("spotlight/cuda-13.0")) {
        if dir.join("bin/nvcc").is_file() {
            return dir;
        }
    }
    let system = PathBuf::from("/usr/local/cuda");
    if !system.join("bin/nvcc").is_file() {
        fail(
            "--features cuda: no CUDA toolkit found (CUDA_PATH, SPOTLIGHT_CUDA_HOME, \
             ~/.cache/spotlight/cuda-13.0, /usr/local/cuda); run scripts/cuda-toolkit.sh",
        );
    }
    system
}

/// `CMAKE_CUDA_ARCHITECTURES`: `SPOTLIGHT_CUDA_ARCHS` (CMake syntax, e.g. `90-real` or
/// `86-real;90`), else A100 (80), RTX 30/40, A10, L4 (86 runs on 8.6–8.9) and H100/H200 (90) as
/// device code, plus PTX of 90 that newer GPUs compile at load time.
fn cuda_archs() -> String {
    let archs = env::var("SPOTLIGHT_CUDA_ARCHS").unwrap_or_default();
    let archs = archs.trim();
    if archs.is_empty() {
        return "80-real;86-real;90".into();
    }
    if !archs
        .split([';', ','])
        .all(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        fail(&format!(
            "SPOTLIGHT_CUDA_ARCHS={archs:?} is not a list of CUDA architectures such as \
             \"90-real\" or \"86-real;90\""
        ));
    }
    archs.replace(',', ";")
}

#[cfg(feature = "bindgen")]
fn generate_bindings(src: &Path, out: &Path) {
    let bindings = bindgen::Builder::default()
        .header(src.join("include/llama.h").to_string_lossy())
        .clang_arg(format!("-I{}", src.join("ggml/include").display()))
        .allowlist_function("llama_.*")
        .allowlist_function("ggml_.*")
        .allowlist_type("llama_.*")
        .allowlist_type("ggml_.*")
        .allowlist_var("LLAMA_.*")
        .allowlist_var("GGML_.*")
        .layout_tests(false)
        .derive_default(true)
        .prepend_enum_name(false)
        .generate()
        .unwrap_or_else(|e| fail(&format!("bindgen failed: {e}")));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .unwrap_or_else(|e| fail(&format!("cannot write bindings: {e}")));
}
