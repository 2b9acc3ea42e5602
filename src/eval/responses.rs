//! `responses-<condition>.jsonl` files (`key`, `prompt`, `response`: the official IFEval
//! evaluator's input format), written as responses arrive so an interrupted run can resume.

use super::key::Key;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResponseLine {
    pub key: Key,
    pub prompt: String,
    pub response: String,
}

/// An append-only responses file; reopening it keeps what is there (minus a torn last line).
pub struct ResponseFile {
    path: PathBuf,
    done: BTreeMap<Key, ResponseLine>,
    file: std::fs::File,
}

impl ResponseFile {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let mut done = BTreeMap::new();
        let mut valid = String::new();
        if let Ok(text) = std::fs::read_to_string(path) {
            for line in text.lines() {
                // a line cut short by an interrupted run does not parse: drop it and redo its key
                if let Ok(r) = serde_json::from_str::<ResponseLine>(line) {
                    valid.push_str(line);
                    valid.push('\n');
                    done.insert(r.key.clone(), r);
                }
            }
            if valid.len() != text.len() {
                std::fs::write(path, &valid)?;
            }
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            done,
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn contains(&self, key: &Key) -> bool {
        self.done.contains_key(key)
    }

    pub fn get(&self, key: &Key) -> Option<&ResponseLine> {
        self.done.get(key)
    }

    pub fn append(&mut self, line: ResponseLine) -> std::io::Result<()> {
        let mut text = serde_json::to_string(&line).map_err(std::io::Error::other)?;
        text.push('\n');
        self.file.write_all(text.as_bytes())?;
        self.file.flush()?;
        self.done.insert(line.key.clone(), line);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("spotlight-resp-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn resumes_and_drops_a_torn_last_line() {
        let dir = temp_dir("torn");
        let path = dir.join("responses-baseline.jsonl");
        std::fs::write(
            &path,
            "{\"key\":1,\"prompt\":\"p\",\"response\":\"r\"}\n{\"key\":2,\"prom",
        )
        .unwrap();
        let mut f = ResponseFile::open(&path).unwrap();
        assert!(f.contains(&Key::Int(1)) && !f.contains(&Key::Int(2)));
        f.append(ResponseLine {
            key: Key::Int(2),
            prompt: "q".into(),
            response: "s".into(),
        })
        .unwrap();
        let reopened = ResponseFile::open(&path).unwrap();
        assert_eq!(reopened.get(&Key::Int(2)).unwrap().response, "s");
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keys_keep_their_kind_through_the_file() {
        let dir = temp_dir("kinds");
        let path = dir.join("responses-baseline.jsonl");
        let mut f = ResponseFile::open(&path).unwrap();
        for key in [Key::from("0"), Key::Int(0), Key::from("1")] {
            let response = format!("reply to {key:?}");
            f.append(ResponseLine {
                key,
                prompt: "p".into(),
                response,
            })
            .unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let raw: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(raw[0]["key"], "0");
        assert_eq!(raw[1]["key"], 0);
        let reopened = ResponseFile::open(&path).unwrap();
        // The string "0" and the integer 0 are different prompts.
        assert_eq!(reopened.get(&Key::from("0")).unwrap().response, "reply to Str(\"0\")");
        assert_eq!(reopened.get(&Key::Int(0)).unwrap().response, "reply to Int(0)");
        assert!(reopened.contains(&Key::from("1")) && !reopened.contains(&Key::Int(1)));
        // Reopening rewrote nothing.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn committed_results_still_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/results/ifeval-smollm2");
        let text = std::fs::read_to_string(dir.join("responses-baseline.jsonl")).unwrap();
        let lines: Vec<ResponseLine> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 541);
        assert!(lines.iter().all(|l| matches!(l.key, Key::Int(_))));
        // Written again, a line is byte for byte the committed one.
        assert_eq!(serde_json::to_string(&lines[0]).unwrap(), text.lines().next().unwrap());
    }
}
