//! Minimal unified-diff applier used by `build.rs` (and by the build-integrity test) to apply
//! `patches/NNNN-*.patch` to the pristine vendored llama.cpp. It is strict on purpose: every
//! context and removed line must match exactly (a hunk may only move by a few lines), so a patch
//! that no longer fits upstream fails loudly instead of being applied fuzzily.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The parts of vendor/llama.cpp that the library build needs (tools, tests, docs are not built).
pub const SOURCE_PARTS: &[&str] = &["CMakeLists.txt", "LICENSE", "cmake", "ggml", "include", "src", "vendor"];

/// How far (in lines) a hunk may have moved from where its header says it starts.
const MAX_HUNK_DRIFT: usize = 200;

#[derive(Debug)]
pub struct PatchError {
    pub patch: PathBuf,
    pub message: String,
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "patch {} does not apply: {}", self.patch.display(), self.message)
    }
}

struct Hunk {
    header: String,
    old_start: usize,
    old: Vec<String>,
    new: Vec<String>,
}

struct FilePatch {
    path: String,
    hunks: Vec<Hunk>,
}

fn parse_range_start(field: &str) -> Option<usize> {
    field.split(',').next()?.parse().ok()
}

fn parse(text: &str) -> Result<Vec<FilePatch>, String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut files = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if !line.starts_with("--- ") {
            i += 1;
            continue;
        }
        let plus = lines
            .get(i + 1)
            .filter(|l| l.starts_with("+++ "))
            .ok_or_else(|| format!("line {}: `---` without `+++`", i + 1))?;
        let target = plus[4..].trim_end();
        let path = target.strip_prefix("b/").unwrap_or(target).to_string();
        i += 2;
        let mut hunks = Vec::new();
        while i < lines.len() && lines[i].starts_with("@@ ") {
            let header = lines[i].trim_end().to_string();
            let old_start = header
                .split_whitespace()
                .nth(1)
                .and_then(|f| f.strip_prefix('-'))
                .and_then(parse_range_start)
                .ok_or_else(|| format!("line {}: bad hunk header `{header}`", i + 1))?;
            i += 1;
            let (mut old, mut new) = (Vec::new(), Vec::new());
            while i < lines.len() {
                let l = lines[i];
                let body = l.get(1..).unwrap_or("").to_string();
                match l.as_bytes().first() {
                    Some(b' ') => {
                        old.push(body.clone());
                        new.push(body);
                    }
                    Some(b'-') if !l.starts_with("--- ") => old.push(body),
                    Some(b'+') if !l.starts_with("+++ ") => new.push(body),
                    Some(b'\\') => {
                        // "\ No newline at end of file": the previous line has no '\n'
                        for v in [&mut old, &mut new] {
                            if let Some(last) = v.last_mut() {
                                if last.ends_with('\n') {
                                    last.pop();
                                }
                            }
                        }
                    }
                    // An empty line inside a hunk is an empty context line whose space was
                    // stripped by an editor.
                    Some(b'\n') => {
                        old.push("\n".into());
                        new.push("\n".into());
                    }
                    _ => break,
                }
                i += 1;
            }
            hunks.push(Hunk {
                header,
                old_start,
                old,
                new,
            });
        }
        if hunks.is_empty() {
            return Err(format!("no hunks for {path}"));
        }
        files.push(FilePatch { path, hunks });
    }
    if files.is_empty() {
        return Err("no file changes found".into());
    }
    Ok(files)
}

fn apply_hunks(original: &str, file: &FilePatch) -> Result<String, String> {
    let mut lines: Vec<String> = original.split_inclusive('\n').map(str::to_string).collect();
    // Lines added or removed by earlier hunks shift where later hunks start.
    let mut shift: isize = 0;
    for hunk in &file.hunks {
        let expected = (hunk.old_start.max(1) - 1) as isize + shift;
        let fits = |at: usize| at + hunk.old.len() <= lines.len() && lines[at..at + hunk.old.len()] == hunk.old[..];
        let found = (0..=MAX_HUNK_DRIFT).find_map(|d| {
            [expected + d as isize, expected - d as isize]
                .into_iter()
                .filter(|&at| at >= 0)
                .map(|at| at as usize)
                .find(|&at| fits(at))
        });
        let at = found.ok_or_else(|| format!("{}: hunk `{}` does not match the source", file.path, hunk.header))?;
        lines.splice(at..at + hunk.old.len(), hunk.new.iter().cloned());
        shift += hunk.new.len() as isize - hunk.old.len() as isize;
    }
    Ok(lines.concat())
}

/// Apply the patches (in the given order) on top of the tree at `root`; returns the new contents
/// of every file they touch, keyed by path relative to `root`.
pub fn apply_patches(root: &Path, patches: &[PathBuf]) -> Result<BTreeMap<String, String>, PatchError> {
    let mut changed: BTreeMap<String, String> = BTreeMap::new();
    for patch in patches {
        let err = |message: String| PatchError {
            patch: patch.clone(),
            message,
        };
        let text = std::fs::read_to_string(patch).map_err(|e| err(format!("cannot read: {e}")))?;
        for file in parse(&text).map_err(err)? {
            let current = match changed.get(&file.path) {
                Some(c) => c.clone(),
                None => std::fs::read_to_string(root.join(&file.path))
                    .map_err(|e| err(format!("{}: cannot read: {e}", file.path)))?,
            };
            let patched = apply_hunks(&current, &file).map_err(err)?;
            changed.insert(file.path, patched);
        }
    }
    Ok(changed)
}

/// The `patches/NNNN-*.patch` files in apply order.
pub fn list_patches(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut patches: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".patch") && name.as_bytes().first().is_some_and(u8::is_ascii_digit)
        })
        .collect();
    patches.sort();
    Ok(patches)
}
