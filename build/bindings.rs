//! Keeps the committed FFI bindings (src/llama/sys_generated.rs) tied to the patched headers
//! they were generated from, used by `build.rs` and by the build-integrity test.
//!
//! The bindings are pre-generated so that a build needs no libclang. The price is that a patch
//! changing `llama.h` (a new hook argument, a field) would still compile against the old
//! declarations and fail at run time. src/llama/bindings.sha256 records the SHA-256 of every
//! header bindgen read and of the bindings it wrote; the build compares that record with the
//! headers it is about to compile and the bindings it is about to include, and fails naming
//! what changed and `scripts/regen-bindings.sh`, which regenerates both.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// The record, relative to the repository root.
pub const RECORD: &str = "src/llama/bindings.sha256";
/// The pre-generated bindings, relative to the repository root.
pub const BINDINGS: &str = "src/llama/sys_generated.rs";
/// The header bindgen is given (see `generate_bindings` in build.rs), relative to the patched tree.
pub const ROOT_HEADER: &str = "include/llama.h";
/// Where a quoted `#include` is looked up after the including file's own directory: the
/// `-I` directories bindgen is given (include/ holds llama.h itself).
const INCLUDE_DIRS: &[&str] = &["include", "ggml/include"];

const HEADER_NOTE: &str = "\
# Written by scripts/regen-bindings.sh (through build.rs with --features bindgen): SHA-256 of
# the patched headers src/llama/sys_generated.rs was generated from (paths in vendor/llama.cpp
# with patches/ applied) and of the bindings themselves. build.rs fails when either differs.
";

/// SHA-256 of a text file, line endings normalised so that a checkout with CRLF line endings
/// records and checks the same values.
fn sha256_hex(bytes: &[u8]) -> String {
    let mut normalised = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if !(bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n')) {
            normalised.push(bytes[i]);
        }
        i += 1;
    }
    Sha256::digest(&normalised).iter().map(|b| format!("{b:02x}")).collect()
}

/// The quoted includes of a C header, in order (`<system>` headers are not llama.cpp's).
fn quoted_includes(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let rest = line
                .trim_start()
                .strip_prefix('#')?
                .trim_start()
                .strip_prefix("include")?;
            let rest = rest.trim_start().strip_prefix('"')?;
            Some(rest[..rest.find('"')?].to_string())
        })
        .collect()
}

/// Every header bindgen reads for [`ROOT_HEADER`], by path in the patched tree, with its
/// content: the root and, transitively, each quoted include (whatever `#if` guards it, so the
/// record is on the safe side). `read` gives a file of the patched tree, None if it is absent.
pub fn headers(read: &dyn Fn(&str) -> Option<Vec<u8>>) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut found = BTreeMap::new();
    let mut todo = vec![ROOT_HEADER.to_string()];
    while let Some(path) = todo.pop() {
        if found.contains_key(&path) {
            continue;
        }
        let bytes = read(&path).ok_or_else(|| format!("{path} is missing from the patched llama.cpp tree"))?;
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        for name in quoted_includes(&String::from_utf8_lossy(&bytes)) {
            let candidates = std::iter::once(dir).chain(INCLUDE_DIRS.iter().copied());
            let resolved = candidates
                .map(|d| {
                    if d.is_empty() {
                        name.clone()
                    } else {
                        format!("{d}/{name}")
                    }
                })
                .find(|p| found.contains_key(p) || read(p).is_some())
                .ok_or_else(|| format!("{path} includes \"{name}\", which is in none of {INCLUDE_DIRS:?}"))?;
            todo.push(resolved);
        }
        found.insert(path, bytes);
    }
    Ok(found)
}

/// The record for these headers and bindings, as src/llama/bindings.sha256 holds it.
pub fn record(headers: &BTreeMap<String, Vec<u8>>, bindings: &[u8]) -> String {
    let mut out = HEADER_NOTE.to_string();
    for (path, bytes) in headers {
        out.push_str(&format!("header {} {path}\n", sha256_hex(bytes)));
    }
    out.push_str(&format!("bindings {} {BINDINGS}\n", sha256_hex(bindings)));
    out
}

/// (kind, path) → hash of a record's entries; comments and blank lines are not entries.
fn entries(record: &str) -> BTreeMap<(String, String), String> {
    record
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut fields = l.splitn(3, ' ');
            let (kind, hash, path) = (fields.next()?, fields.next()?, fields.next()?);
            Some(((kind.to_string(), path.to_string()), hash.to_string()))
        })
        .collect()
}

/// Ok when `committed` (the content of [`RECORD`]) records exactly `expected`; otherwise what
/// differs and how to bring the bindings up to date.
pub fn compare(expected: &str, committed: &str) -> Result<(), String> {
    let (want, have) = (entries(expected), entries(committed));
    if want == have {
        return Ok(());
    }
    let mut changes = Vec::new();
    for (key, hash) in &want {
        match have.get(key) {
            None => changes.push(format!("{} is new", key.1)),
            Some(h) if h != hash => changes.push(format!("{} changed", key.1)),
            Some(_) => {}
        }
    }
    for key in have.keys().filter(|k| !want.contains_key(*k)) {
        changes.push(format!("{} is no longer read", key.1));
    }
    let only_bindings = changes.len() == 1 && changes[0].starts_with(BINDINGS);
    let what = if only_bindings {
        format!("{BINDINGS} is not the file bindgen wrote (edited by hand?)")
    } else {
        format!(
            "the FFI bindings {BINDINGS} were generated from other llama.cpp headers than the \
             patched ones this build compiles"
        )
    };
    Err(format!(
        "{what} ({}; recorded in {RECORD}). Run scripts/regen-bindings.sh (needs libclang) to \
         regenerate the bindings and the record, and review the bindings' diff",
        changes.join(", ")
    ))
}

/// Check the bindings and the record committed under `manifest` against `headers`.
pub fn check_committed(manifest: &Path, headers: &BTreeMap<String, Vec<u8>>) -> Result<(), String> {
    let bindings = std::fs::read(manifest.join(BINDINGS)).map_err(|e| format!("cannot read {BINDINGS}: {e}"))?;
    let committed = std::fs::read_to_string(manifest.join(RECORD)).map_err(|e| {
        format!("cannot read {RECORD} ({e}): run scripts/regen-bindings.sh to regenerate the bindings and the record")
    })?;
    compare(&record(headers, &bindings), &committed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_quoted_includes_only() {
        let text = "#include \"ggml.h\"\n  #  include \"a/b.h\" // x\n#include <stdio.h>\n// #include \"no.h\"\n";
        assert_eq!(quoted_includes(text), ["ggml.h", "a/b.h"]);
    }

    #[test]
    fn crlf_checkouts_hash_alike() {
        assert_eq!(sha256_hex(b"a\r\nb\n"), sha256_hex(b"a\nb\n"));
        assert_ne!(sha256_hex(b"a\rb\n"), sha256_hex(b"ab\n"), "a lone CR is content");
    }

    #[test]
    fn includes_resolve_next_to_the_includer_then_in_the_include_dirs() {
        let files: BTreeMap<&str, &str> = [
            ("include/llama.h", "#include \"ggml.h\"\n#include \"local.h\"\n"),
            ("include/local.h", "int x;\n"),
            ("ggml/include/ggml.h", "#include \"ggml-alloc.h\"\n"),
            ("ggml/include/ggml-alloc.h", "#include \"ggml.h\"\n"),
            ("ggml/include/unused.h", ""),
        ]
        .into_iter()
        .collect();
        let read = |p: &str| files.get(p).map(|t| t.as_bytes().to_vec());
        let found = headers(&read).unwrap();
        let names: Vec<&str> = found.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "ggml/include/ggml-alloc.h",
                "ggml/include/ggml.h",
                "include/llama.h",
                "include/local.h"
            ]
        );
        let missing = |p: &str| if p == "ggml/include/ggml.h" { None } else { read(p) };
        assert!(headers(&missing).unwrap_err().contains("\"ggml.h\""));
    }
}
