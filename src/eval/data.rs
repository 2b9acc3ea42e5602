//! Evaluation input: IFEval-format JSONL (`key`, `prompt`, `instruction_id_list`, `kwargs`;
//! IFBench's file has the same fields, with string keys) or any JSONL of `{key, prompt}`, with
//! highlights given as `**markup**` in a `prompt_marked` field, as a `highlights` list of
//! substrings, or — for IFEval records without either — found by the rule-based annotator.

use super::annotate;
use super::ifeval::IfevalPrompt;
use super::key::Key;
use crate::spotlight::markup;
use crate::spotlight::markup_writer::to_markup;
use serde_json::{Map, Value};
use std::ops::Range;
use std::path::Path;

/// One evaluation item: the plain prompt and its highlighted byte ranges.
#[derive(Debug, Clone)]
pub struct EvalItem {
    pub key: Key,
    pub prompt: String,
    pub spans: Vec<Range<usize>>,
    /// Set for IFEval records: what the verifiers check.
    pub ifeval: Option<IfevalPrompt>,
    /// Where the highlights came from: "markup", "highlights", "annotator".
    pub highlight_source: &'static str,
    /// For highlights from the annotator: the same instructions' highlights in clause scope
    /// (`highlight=clause` conditions); None for highlights given in the data.
    pub clause_spans: Option<Vec<Range<usize>>>,
}

impl EvalItem {
    /// The prompt with its spans wrapped in markdown bold (the `emphasis` condition).
    pub fn emphasized(&self) -> String {
        to_markup(&self.prompt, &self.spans)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Record { path: String, line: usize, message: String },
    #[error("{path}: no records")]
    Empty { path: String },
}

fn parse_record(value: Value, line: usize, path: &str) -> Result<EvalItem, DataError> {
    let err = |message: String| DataError::Record {
        path: path.to_string(),
        line,
        message,
    };
    let obj: Map<String, Value> = match value {
        Value::Object(o) => o,
        _ => return Err(err("a record must be a JSON object".into())),
    };
    // IFEval's keys are integers, IFBench's strings ("0"): either is kept as given.
    let key = obj
        .get("key")
        .and_then(Key::from_json)
        .ok_or_else(|| err("missing `key` (an integer or a string)".into()))?;
    let marked = obj.get("prompt_marked").and_then(Value::as_str);
    let prompt_field = obj.get("prompt").and_then(Value::as_str);
    let ifeval = if obj.contains_key("instruction_id_list") {
        let p: IfevalPrompt = serde_json::from_value(Value::Object(obj.clone()))
            .map_err(|e| err(format!("not an IFEval record: {e}")))?;
        Some(p)
    } else {
        None
    };
    let mut clause_spans = None;
    let (prompt, spans, source) = if let Some(marked) = marked {
        let h = markup::parse_markup(marked).map_err(|e| err(format!("prompt_marked: {e}")))?;
        if prompt_field.is_some_and(|p| p != h.text) {
            return Err(err("prompt_marked without its markup differs from prompt".into()));
        }
        (h.text, h.spans, "markup")
    } else {
        let prompt = prompt_field
            .ok_or_else(|| err("missing string `prompt`".into()))?
            .to_string();
        if let Some(list) = obj.get("highlights") {
            let needles: Vec<String> = serde_json::from_value(list.clone())
                .map_err(|_| err("`highlights` must be a list of strings".into()))?;
            let spans = markup::find_substrings(&prompt, &needles, true).map_err(|e| err(e.to_string()))?;
            (prompt, markup::merge_spans(spans), "highlights")
        } else if let Some(p) = &ifeval {
            let a = annotate::annotate(&key, &prompt, &p.instruction_id_list, &p.kwargs);
            let c = annotate::annotate_in(
                annotate::Scope::Clause,
                &key,
                &prompt,
                &p.instruction_id_list,
                &p.kwargs,
            );
            clause_spans = Some(c.spans);
            (prompt, a.spans, "annotator")
        } else {
            let h = markup::parse_markup(&prompt).map_err(|e| err(format!("prompt: {e}")))?;
            (h.text, h.spans, "markup")
        }
    };
    Ok(EvalItem {
        key,
        prompt,
        spans,
        ifeval,
        highlight_source: source,
        clause_spans,
    })
}

/// Read every record; errors name the file and line.
pub fn load(path: &Path) -> Result<Vec<EvalItem>, DataError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: name.clone(),
        source,
    })?;
    let mut items = Vec::new();
    // responses, scores and reports are keyed by `key`: a repeated key would silently merge two
    // prompts into one, so it is an error naming both lines
    let mut first_line: std::collections::HashMap<Key, usize> = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| DataError::Record {
            path: name.clone(),
            line: i + 1,
            message: e.to_string(),
        })?;
        let item = parse_record(value, i + 1, &name)?;
        if let Some(&earlier) = first_line.get(&item.key) {
            return Err(DataError::Record {
                path: name.clone(),
                line: i + 1,
                message: format!(
                    "key {} is used again (first on line {earlier}): keys must be unique",
                    item.key
                ),
            });
        }
        first_line.insert(item.key.clone(), i + 1);
        items.push(item);
    }
    if items.is_empty() {
        return Err(DataError::Empty { path: name });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_repeated_key_is_an_error_naming_both_lines() {
        let path = std::env::temp_dir().join(format!("spotlight-dup-keys-{}.jsonl", std::process::id()));
        std::fs::write(
            &path,
            "{\"key\": 1, \"prompt\": \"a **b**\"}\n\n{\"key\": 2, \"prompt\": \"c\"}\n{\"key\": 1, \"prompt\": \"d\"}\n",
        )
        .unwrap();
        let e = load(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(
            e.ends_with(":4: key 1 is used again (first on line 1): keys must be unique"),
            "{e}"
        );
    }

    #[test]
    fn highlights_come_from_markup_lists_or_the_annotator() {
        let m = parse_record(json!({"key": 1, "prompt_marked": "Say **hi**."}), 1, "f").unwrap();
        assert_eq!((m.prompt.as_str(), m.highlight_source), ("Say hi.", "markup"));
        assert_eq!(m.spans, vec![std::ops::Range { start: 4, end: 6 }]);
        let l = parse_record(json!({"key": 2, "prompt": "a b a", "highlights": ["a"]}), 2, "f").unwrap();
        assert_eq!(l.spans, vec![0..1, 4..5]);
        let ife = json!({"key": 3, "prompt": "Write a poem. Do not use any commas.",
            "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]});
        let a = parse_record(ife, 3, "f").unwrap();
        assert_eq!(a.highlight_source, "annotator");
        assert_eq!(&a.prompt[a.spans[0].clone()], "Do not use any commas.");
        assert_eq!(a.emphasized(), "Write a poem. **Do not use any commas.**");
        assert_eq!(
            m.clause_spans, None,
            "clause scope exists only for the annotator's highlights"
        );
        let two = json!({"key": 4, "prompt": "Write a poem, and do not use any commas.",
            "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]});
        let t = parse_record(two, 4, "f").unwrap();
        assert_eq!(
            &t.prompt[t.spans[0].clone()],
            "Write a poem, and do not use any commas."
        );
        assert_eq!(
            &t.prompt[t.clause_spans.unwrap()[0].clone()],
            "and do not use any commas."
        );
    }

    /// `lines` written to a fresh file and loaded.
    fn load_lines(name: &str, lines: &[serde_json::Value]) -> Vec<EvalItem> {
        let dir = std::env::temp_dir().join(format!("spotlight-data-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("data.jsonl");
        let text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        std::fs::write(&path, text.join("\n") + "\n").unwrap();
        let items = load(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        items
    }

    #[test]
    fn keys_are_kept_as_given_strings_or_integers() {
        // IFBench's official file writes its keys as strings.
        let ifbench = load_lines(
            "str",
            &[
                json!({"key": "0", "prompt": "Write a haiku. Use at most 20 words.",
                    "instruction_id_list": ["count:word_count_range"], "kwargs": [{"min_words": null, "max_words": 20}]}),
                json!({"key": "17", "prompt_marked": "Say **hi**."}),
            ],
        );
        let keys: Vec<&Key> = ifbench.iter().map(|i| &i.key).collect();
        assert_eq!(keys, [&Key::from("0"), &Key::from("17")]);
        assert_eq!(ifbench[0].ifeval.as_ref().unwrap().key, Key::from("0"));
        let ifeval = load_lines(
            "int",
            &[
                json!({"key": 1000, "prompt": "Write a poem. Do not use any commas.",
                    "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}),
                json!({"key": 7, "prompt": "a b", "highlights": ["b"]}),
            ],
        );
        let keys: Vec<&Key> = ifeval.iter().map(|i| &i.key).collect();
        assert_eq!(keys, [&Key::Int(1000), &Key::Int(7)]);
        let e = parse_record(json!({"key": 1.5, "prompt": "x"}), 3, "d")
            .unwrap_err()
            .to_string();
        assert!(e.contains("d:3") && e.contains("integer or a string"), "{e}");
    }

    #[test]
    fn bad_records_name_the_line() {
        let e = parse_record(json!({"prompt": "x"}), 7, "data.jsonl")
            .unwrap_err()
            .to_string();
        assert!(e.contains("data.jsonl:7") && e.contains("key"), "{e}");
        let e = parse_record(json!({"key": 1, "prompt": "x", "highlights": ["zz"]}), 2, "d")
            .unwrap_err()
            .to_string();
        assert!(e.contains("zz"), "{e}");
    }
}
