//! `responses-<condition>.jsonl` files (`key`, `prompt`, `response`: the official IFEval
//! evaluator's input format), written as responses arrive so an interrupted run can resume.
//! Each line also records how it was decoded, so a resumed run cannot mix settings (the
//! official evaluator ignores the extra field).

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
    /// Absent in files written before it was recorded (those lines are not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoding: Option<Decoding>,
}

/// The options that decide a reply besides the prompt and the condition.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Decoding {
    pub max_tokens: usize,
    pub temp: f32,
    pub repeat_penalty: f32,
    /// Only when sampling (temp > 0): greedy replies do not depend on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Decoding {
    pub fn new(max_tokens: usize, temp: f32, repeat_penalty: f32, seed: u64) -> Self {
        Self {
            max_tokens,
            temp,
            repeat_penalty,
            seed: (temp > 0.0).then_some(seed),
        }
    }
}

/// As the command-line options that give it.
impl std::fmt::Display for Decoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--max-tokens {} --temp {} --repeat-penalty {}",
            self.max_tokens, self.temp, self.repeat_penalty
        )?;
        if let Some(seed) = self.seed {
            write!(f, " --seed {seed}")?;
        }
        Ok(())
    }
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

    /// The first line (by key) recorded with other decoding options than `decoding`.
    pub fn decoded_otherwise(&self, decoding: &Decoding) -> Option<(&Key, Decoding)> {
        self.done
            .iter()
            .find_map(|(k, l)| l.decoding.filter(|d| d != decoding).map(|d| (k, d)))
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
            decoding: None,
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
                decoding: None,
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
    fn decoding_is_recorded_and_a_different_one_is_found() {
        let dir = temp_dir("decoding");
        let path = dir.join("responses-baseline.jsonl");
        // a line from before the field existed, then one that records its decoding
        std::fs::write(&path, "{\"key\":1,\"prompt\":\"p\",\"response\":\"r\"}\n").unwrap();
        let greedy = Decoding::new(384, 0.0, 1.1, 7);
        assert_eq!(greedy.seed, None, "greedy replies do not depend on the seed");
        let mut f = ResponseFile::open(&path).unwrap();
        f.append(ResponseLine {
            key: Key::Int(2),
            prompt: "q".into(),
            response: "s".into(),
            decoding: Some(greedy),
        })
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .ends_with(r#""decoding":{"max_tokens":384,"temp":0.0,"repeat_penalty":1.1}}"#),
            "{text}"
        );
        let f = ResponseFile::open(&path).unwrap();
        assert!(f.decoded_otherwise(&Decoding::new(384, 0.0, 1.1, 99)).is_none());
        let other = Decoding::new(384, 0.0, 1.0, 7);
        let (key, found) = f.decoded_otherwise(&other).unwrap();
        assert_eq!((key, found), (&Key::Int(2), greedy));
        assert_eq!(found.to_string(), "--max-tokens 384 --temp 0 --repeat-penalty 1.1");
        assert_eq!(
            Decoding::new(64, 0.8, 1.0, 3).to_string(),
            "--max-tokens 64 --temp 0.8 --repeat-penalty 1 --seed 3"
        );
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
