//! What build.rs compiled is exactly vendor/llama.cpp with patches/ applied, nothing else.

#[path = "../build/bindings.rs"]
#[allow(dead_code)]
mod bindings;
#[path = "../build/patch.rs"]
#[allow(dead_code)]
mod patch;

use std::path::{Path, PathBuf};

fn files_under(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    let full = root.join(rel);
    if full.is_file() {
        out.push(rel.to_path_buf());
    } else if let Ok(entries) = std::fs::read_dir(&full) {
        for e in entries.flatten() {
            files_under(root, &rel.join(e.file_name()), out);
        }
    }
}

#[test]
fn compiled_source_is_vendor_plus_patches() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let vendor = manifest.join("vendor/llama.cpp");
    let built = PathBuf::from(env!("SPOTLIGHT_PATCHED_SRC"));
    let patches = patch::list_patches(&manifest.join("patches")).unwrap();
    assert!(!patches.is_empty(), "patches/ has no NNNN-*.patch");
    let patched = patch::apply_patches(&vendor, &patches).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        patched.contains_key("include/llama.h"),
        "the first patch adds the hook to llama.h"
    );

    let (mut want, mut have) = (Vec::new(), Vec::new());
    for part in patch::SOURCE_PARTS {
        files_under(&vendor, Path::new(part), &mut want);
        files_under(&built, Path::new(part), &mut have);
    }
    want.sort();
    have.sort();
    assert_eq!(want, have, "the build tree has other files than vendor/");
    for rel in &want {
        let key = rel.to_string_lossy().replace('\\', "/");
        let expected = match patched.get(&key) {
            Some(text) => text.clone().into_bytes(),
            None => std::fs::read(vendor.join(rel)).unwrap(),
        };
        let actual = std::fs::read(built.join(rel)).unwrap();
        assert!(
            expected == actual,
            "{key} in the build tree differs from vendor + patches"
        );
    }
    let header = std::fs::read_to_string(built.join("include/llama.h")).unwrap();
    assert!(header.contains("llama_attn_steer_set_hooks"));
    let pristine = std::fs::read_to_string(vendor.join("include/llama.h")).unwrap();
    assert!(
        !pristine.contains("llama_attn_steer"),
        "vendor/ must stay pristine: the hook comes from patches/"
    );
}

#[test]
fn a_patch_that_does_not_fit_fails_loudly() {
    let dir = std::env::temp_dir().join(format!("spotlight-patch-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/a.txt"), "one\ntwo\nthree\n").unwrap();
    let bad = dir.join("0001-bad.patch");
    std::fs::write(
        &bad,
        "--- a/src/a.txt\n+++ b/src/a.txt\n@@ -1,2 +1,2 @@\n one\n-TWO\n+2\n",
    )
    .unwrap();
    let err = patch::apply_patches(&dir, std::slice::from_ref(&bad))
        .unwrap_err()
        .to_string();
    assert!(err.contains("0001-bad.patch") && err.contains("src/a.txt"), "{err}");
    let good = dir.join("0002-good.patch");
    std::fs::write(
        &good,
        "--- a/src/a.txt\n+++ b/src/a.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+2\n three\n",
    )
    .unwrap();
    let out = patch::apply_patches(&dir, &[good]).unwrap();
    assert_eq!(out["src/a.txt"], "one\n2\nthree\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The headers bindgen reads, from the tree build.rs compiled.
fn built_headers() -> std::collections::BTreeMap<String, Vec<u8>> {
    let built = PathBuf::from(env!("SPOTLIGHT_PATCHED_SRC"));
    bindings::headers(&|rel: &str| std::fs::read(built.join(rel)).ok()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn committed_bindings_belong_to_the_patched_headers() {
    let headers = built_headers();
    for h in ["include/llama.h", "ggml/include/ggml.h", "ggml/include/ggml-backend.h"] {
        assert!(headers.contains_key(h), "bindgen reads {h}: {:?}", headers.keys());
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    bindings::check_committed(manifest, &headers).unwrap_or_else(|e| panic!("{e}"));
}

/// What build.rs says when a patch changed llama.h but the bindings were not regenerated, or
/// the bindings were edited by hand.
#[test]
fn stale_or_edited_bindings_are_refused_naming_the_script() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(manifest.join(bindings::RECORD)).unwrap();
    let generated = std::fs::read(manifest.join(bindings::BINDINGS)).unwrap();
    let mut headers = built_headers();
    assert!(bindings::compare(&bindings::record(&headers, &generated), &committed).is_ok());

    let mut edited = generated.clone();
    edited.extend_from_slice(b"\n// edited\n");
    let err = bindings::compare(&bindings::record(&headers, &edited), &committed).unwrap_err();
    assert!(
        err.contains("edited by hand") && err.contains("scripts/regen-bindings.sh"),
        "{err}"
    );

    headers
        .get_mut("include/llama.h")
        .unwrap()
        .extend_from_slice(b"\nLLAMA_API void llama_new_hook(void);\n");
    headers.insert("ggml/include/ggml-new.h".into(), b"// new\n".to_vec());
    let err = bindings::compare(&bindings::record(&headers, &generated), &committed).unwrap_err();
    for needle in [
        "include/llama.h changed",
        "ggml/include/ggml-new.h is new",
        "src/llama/bindings.sha256",
        "scripts/regen-bindings.sh",
    ] {
        assert!(err.contains(needle), "{needle:?} in: {err}");
    }
    assert!(!err.contains("edited by hand"), "{err}");
}
