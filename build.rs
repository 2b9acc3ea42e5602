//! Builds the vendored llama.cpp with our patches applied:
//! vendor/llama.cpp (pristine) → OUT_DIR/llama.cpp (copy + patches/NNNN-*.patch) → cmake → static libs.
//! Rust bindings are pre-generated in src/llama/sys.rs; `--features bindgen` regenerates them.

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
    println!("cargo:rerun-if-env-changed=SPOTLIGHT_PORTABLE");
    println!("cargo:rerun-if-env-changed=CUDA_PATH");

    if !vendor.join("CMakeLists.txt").exists() {
        fail(&format!(
            "{} is missing: the vendored llama.cpp is part of the repository",
            vendor.display()
        ));
    }

    let patches = patch::list_patches(&patches_dir)
        .unwrap_or_else(|e| fail(&format!("cannot list {}: {e}", patches_dir.display())));
    let patched = patch::apply_patches(&vendor, &patches).unwrap_or_else(|e| fail(&e.to_string()));

    // One llama.cpp build per configuration, shared by every build-script run of this crate
    // (check, clippy, test and release builds each get their own OUT_DIR; without this each
    // would compile llama.cpp again). Cargo's lock on the target directory serializes access.
    let shared = shared_build_dir(&out);
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

    let dst = build_llama(&src, &shared.join("cmake"));
    link(&dst);

    #[cfg(feature = "bindgen")]
    generate_bindings(&src, &out);
}

/// `<target-dir>/llama-cpp/<configuration>`: OUT_DIR is `<target-dir>/<profile>/build/<pkg>/out`.
fn shared_build_dir(out: &Path) -> PathBuf {
    let target_dir = out.ancestors().nth(4).unwrap_or(out);
    let portable = env::var("SPOTLIGHT_PORTABLE").is_ok_and(|v| !v.is_empty() && v != "0");
    let mut key = env::var("TARGET").unwrap_or_else(|_| "host".into());
    for (on, name) in [
        (cfg!(feature = "cuda"), "cuda"),
        (cfg!(feature = "metal"), "metal"),
        (cfg!(feature = "openmp"), "openmp"),
        (portable, "portable"),
    ] {
        if on {
            key.push('-');
            key.push_str(name);
        }
    }
    target_dir.join("llama-cpp").join(key)
}

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

fn build_llama(src: &Path, out_dir: &Path) -> PathBuf {
    let portable = env::var("SPOTLIGHT_PORTABLE").is_ok_and(|v| !v.is_empty() && v != "0");
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
        .define("GGML_RPC", "OFF");
    if cfg!(feature = "cuda") {
        // No VMM keeps the driver library optional at link time on machines without it.
        cfg.define("GGML_CUDA_NCCL", "OFF");
    }
    cfg.build()
}

fn link(dst: &Path) {
    for dir in ["lib", "lib64"] {
        println!("cargo:rustc-link-search=native={}", dst.join(dir).display());
    }
    // Order matters for static linking: dependents before their dependencies.
    println!("cargo:rustc-link-lib=static=llama");
    if cfg!(feature = "cuda") {
        println!("cargo:rustc-link-lib=static=ggml-cuda");
    }
    if cfg!(feature = "metal") {
        println!("cargo:rustc-link-lib=static=ggml-metal");
    }
    for lib in ["ggml", "ggml-cpu", "ggml-base"] {
        println!("cargo:rustc-link-lib=static={lib}");
    }

    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if cfg!(feature = "cuda") {
        let cuda = env::var("CUDA_PATH").unwrap_or_else(|_| "/usr/local/cuda".into());
        for dir in ["lib64", "lib", "lib64/stubs", "lib/stubs"] {
            println!("cargo:rustc-link-search=native={cuda}/{dir}");
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
