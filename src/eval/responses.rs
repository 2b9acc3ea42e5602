//! `responses-<condition>.jsonl` files (`key`, `prompt`, `response`: the official IFEval
//! evaluator's input format), written as responses arrive so an interrupted run can resume.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResponseLine {
    pub key: i64,
    pub prompt: String,
    pub response: String,
}

/// An append-only responses file; reopening it keeps what is there (minus a torn last line).
pub struct ResponseFile {
    path: PathBuf,
    done: BTreeMap<i64, ResponseLine>,
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
                    done.insert(r.key, r);
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

    pub fn contains(&self, key: i64) -> bool {
        self.done.contains_key(&key)
    }

    pub fn get(&self, key: i64) -> Option<&ResponseLine> {
        self.done.get(&key)
    }

    pub fn append(&mut self, line: ResponseLine) -> std::io::Result<()> {
        let mut text = serde_json::to_string(&line).map_err(std::io::Error::other)?;
        text.push('\n');
        self.file.write_all(text.as_bytes())?;
        self.file.flush()?;
        self.done.insert(line.key, line);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumes_and_drops_a_torn_last_line() {
        let dir = std::env::temp_dir().join(format!("spotlight-resp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("responses-baseline.jsonl");
        std::fs::write(
            &path,
            "{\"key\":1,\"prompt\":\"p\",\"response\":\"r\"}\n{\"key\":2,\"prom",
        )
        .unwrap();
        let mut f = ResponseFile::open(&path).unwrap();
        assert!(f.contains(1) && !f.contains(2));
        f.append(ResponseLine {
            key: 2,
            prompt: "q".into(),
            response: "s".into(),
        })
        .unwrap();
        let reopened = ResponseFile::open(&path).unwrap();
        assert_eq!(reopened.get(2).unwrap().response, "s");
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
