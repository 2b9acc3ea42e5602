//! Refuse to run when llama.cpp was compiled for instructions this CPU lacks.
//!
//! A native build copied to another machine, or a portable build on an old CPU, would otherwise
//! die with SIGILL somewhere inside the first decode, with no hint why. ggml's `ggml_cpu_has_*`
//! report what the library was *compiled* with; the standard library detects what the CPU (and
//! the OS, for AVX state) actually supports.

use super::sys;

/// A compiled-in instruction set that the running CPU does not support, by name.
pub fn unsupported_cpu_features() -> Vec<&'static str> {
    compiled_features()
        .into_iter()
        .filter(|(_, compiled, present)| *compiled && !present)
        .map(|(name, _, _)| name)
        .collect()
}

/// Which instruction sets the library was compiled with, for `--version`.
pub fn compiled_cpu_features() -> Vec<&'static str> {
    compiled_features()
        .into_iter()
        .filter(|(_, compiled, _)| *compiled)
        .map(|(name, _, _)| name)
        .collect()
}

/// (name, compiled into ggml, supported here).
#[cfg(target_arch = "x86_64")]
fn compiled_features() -> Vec<(&'static str, bool, bool)> {
    use std::arch::is_x86_feature_detected as has;
    // SAFETY: these ggml functions take no arguments and return compile-time constants.
    let compiled = unsafe {
        [
            sys::ggml_cpu_has_sse3(),
            sys::ggml_cpu_has_ssse3(),
            sys::ggml_cpu_has_avx(),
            sys::ggml_cpu_has_avx2(),
            sys::ggml_cpu_has_bmi2(),
            sys::ggml_cpu_has_f16c(),
            sys::ggml_cpu_has_fma(),
            sys::ggml_cpu_has_avx_vnni(),
            sys::ggml_cpu_has_avx512(),
            sys::ggml_cpu_has_avx512_vbmi(),
            sys::ggml_cpu_has_avx512_vnni(),
            sys::ggml_cpu_has_avx512_bf16(),
            sys::ggml_cpu_has_amx_int8(),
        ]
    };
    let present = [
        has!("sse3"),
        has!("ssse3"),
        has!("avx"),
        has!("avx2"),
        has!("bmi2"),
        has!("f16c"),
        has!("fma"),
        has!("avxvnni"),
        has!("avx512f"),
        has!("avx512vbmi"),
        has!("avx512vnni"),
        has!("avx512bf16"),
        amx_usable(),
    ];
    let names = [
        "SSE3",
        "SSSE3",
        "AVX",
        "AVX2",
        "BMI2",
        "F16C",
        "FMA",
        "AVX_VNNI",
        "AVX512",
        "AVX512_VBMI",
        "AVX512_VNNI",
        "AVX512_BF16",
        "AMX_INT8",
    ];
    names
        .into_iter()
        .zip(compiled)
        .zip(present)
        .map(|((n, c), p)| (n, c != 0, p))
        .collect()
}

#[cfg(not(target_arch = "x86_64"))]
fn compiled_features() -> Vec<(&'static str, bool, bool)> {
    Vec::new()
}

/// AMX needs the CPU flag; whether the kernel grants the tile state is ggml's own check.
#[cfg(target_arch = "x86_64")]
fn amx_usable() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains(" amx_int8"))
}
