//! `examples.md`: the prompts behind a condition's gain and damage counts, with the start of
//! both responses, so a reader can see *how* steering helps or hurts (e.g. a reply that obeys the
//! highlighted constraint and forgets the task) without opening the JSONL files.

use super::key::Key;
use super::report::Report;
use std::fmt::Write as _;

/// What the examples show of one prompt.
pub struct ExamplePrompt<'a> {
    pub prompt: &'a str,
    pub instruction_ids: &'a [String],
}

/// Longest excerpt of prompts and responses, in characters.
const EXCERPT_CHARS: usize = 220;

fn excerpt(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// Up to `per_kind` damaged and gained prompts per condition (the first ones in data order).
/// `prompt(key)` and `response(condition, key)` look up the texts.
pub fn render_examples<'a>(
    report: &Report,
    per_kind: usize,
    prompt: impl Fn(&Key) -> Option<ExamplePrompt<'a>>,
    response: impl Fn(&str, &Key) -> Option<&'a str>,
) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Examples behind the gain and damage counts\n\nPer condition, the first {per_kind} prompts \
         (in data order) that pass under `{base}` and fail under the condition (damage), and the first \
         {per_kind} the other way round (gain), prompt-level loose. Texts are cut at {EXCERPT_CHARS} \
         characters, white space folded; the full responses are in `responses-*.jsonl`, all keys in \
         `report.json` (`gained_keys`, `damaged_keys`).",
        base = report.baseline
    );
    for cond in &report.conditions {
        let Some(vs) = &cond.vs_baseline else { continue };
        let _ = writeln!(md, "\n## {}\n", cond.name);
        for (kind, keys) in [("damage", &vs.damaged_keys), ("gain", &vs.gained_keys)] {
            let _ = writeln!(md, "### {kind} ({} prompts)\n", keys.len());
            for key in keys.iter().take(per_kind) {
                let Some(p) = prompt(key) else { continue };
                let _ = writeln!(md, "- key {key} · {}", p.instruction_ids.join(", "));
                let _ = writeln!(md, "  - prompt: {}", excerpt(p.prompt));
                for name in [report.baseline.as_str(), cond.name.as_str()] {
                    let text = response(name, key).map_or_else(|| "(missing)".to_string(), excerpt);
                    let _ = writeln!(md, "  - {name}: {text}");
                }
            }
            md.push('\n');
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_fold_white_space_and_cut_on_char_boundaries() {
        assert_eq!(excerpt("a \n\n b\tc"), "a b c");
        let long = "é".repeat(300);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn string_keys_are_shown_and_kept_as_strings() {
        use crate::eval::report::{build_report, ConditionResults, PromptResult};
        let result = |key: &str, pass: bool| PromptResult {
            key: Key::from(key),
            instruction_ids: vec!["punctuation:no_comma".into()],
            strict: vec![pass],
            loose: vec![pass],
            prompt_strict: pass,
            prompt_loose: pass,
            response_chars: 10,
            looping: false,
            response_words: 2,
            relations: vec![None],
        };
        let condition = |name: &str, passing: &str| ConditionResults {
            name: name.into(),
            alpha: None,
            granularity: None,
            results: ["0", "1"].iter().map(|&k| result(k, k == passing)).collect(),
        };
        let report = build_report("baseline", &[condition("baseline", "0"), condition("emphasis", "1")], 0).unwrap();
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["conditions"][1]["vs_baseline"]["gained_keys"],
            serde_json::json!(["1"])
        );
        let ids = vec!["punctuation:no_comma".to_string()];
        let md = render_examples(
            &report,
            4,
            |key| {
                (key == &Key::from("1")).then_some(ExamplePrompt {
                    prompt: "No commas, please.",
                    instruction_ids: &ids,
                })
            },
            |name, key| (*key == Key::from("1")).then_some(if name == "baseline" { "a, b" } else { "a b" }),
        );
        assert!(md.contains("- key 1 · punctuation:no_comma\n"), "{md}");
        assert!(md.contains("  - emphasis: a b\n"), "{md}");
    }
}
