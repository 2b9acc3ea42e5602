//! What the report is made of (report.json), and what can stop it from being built.

use crate::eval::key::Key;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One prompt's result under one condition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PromptResult {
    pub key: Key,
    pub instruction_ids: Vec<String>,
    pub strict: Vec<bool>,
    pub loose: Vec<bool>,
    pub prompt_strict: bool,
    pub prompt_loose: bool,
    pub response_chars: usize,
    /// The reply is mostly one passage repeated (see `eval::repetition`).
    #[serde(default)]
    pub looping: bool,
    /// Whitespace-separated words of the reply.
    #[serde(default)]
    pub response_words: usize,
    /// Per instruction, its `relation` argument where it has one ("at least", "less than"):
    /// the length table splits word and sentence counts by it.
    #[serde(default)]
    pub relations: Vec<Option<String>>,
}

/// Loose accuracy on one kind of length instruction (e.g. `number_words (less than)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LengthInstruction {
    pub instructions: usize,
    pub loose: f64,
}

/// All prompts' results under one condition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConditionResults {
    /// E.g. `baseline`, `emphasis`, `static:2`, `spotlight:0.1:head`.
    pub name: String,
    /// τ for spotlight conditions, None otherwise
    pub alpha: Option<f32>,
    /// "head"/"layer" for spotlight conditions
    pub granularity: Option<String>,
    pub results: Vec<PromptResult>,
}

/// A two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl Interval {
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// Accuracy on the instructions of one category (the id's part before `:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryAccuracy {
    /// Prompts with at least one instruction of this category.
    pub prompts: usize,
    /// Instructions of this category over all prompts.
    pub instructions: usize,
    /// Share of those prompts whose instructions of this category are all followed (loose).
    pub prompt_loose: f64,
    pub instruction_strict: f64,
    pub instruction_loose: f64,
}

/// A condition compared with the baseline on the same prompts (prompt-level loose accuracy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineComparison {
    /// Condition's accuracy minus baseline's, as a fraction (0.017 = +1.7 points).
    pub delta_prompt_loose: f64,
    /// Paired percentile bootstrap interval of `delta_prompt_loose`.
    pub delta_ci: Interval,
    /// Exact two-sided McNemar test on the discordant prompts.
    pub mcnemar_p: f64,
    /// Prompts the condition passes and the baseline fails.
    pub gain: usize,
    /// Prompts the baseline passes and the condition fails.
    pub damage: usize,
    /// Condition's accuracy divided by baseline's; None when the baseline's is 0.
    pub relative_gain: Option<f64>,
    /// Keys of the `gain` prompts, in the baseline's order (for looking at the responses).
    #[serde(default)]
    pub gained_keys: Vec<Key>,
    /// Keys of the `damage` prompts, in the baseline's order.
    #[serde(default)]
    pub damaged_keys: Vec<Key>,
}

/// Prompt-level loose accuracy on the subset of prompts without length constraints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LengthFree {
    /// Prompts in the subset (the same for every condition).
    pub prompts: usize,
    /// None when every prompt has a length constraint.
    pub prompt_loose: Option<f64>,
    /// Condition's minus baseline's on the subset, in fractions; None for the baseline.
    pub delta_prompt_loose: Option<f64>,
    /// Exact McNemar p on the subset; None for the baseline.
    pub mcnemar_p: Option<f64>,
}

/// Looping replies (see `eval::repetition`) and the prompt-level loose accuracy that counts a
/// prompt only when its reply passes without looping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Looping {
    /// Share of replies that loop.
    pub share: f64,
    /// Share of prompts that pass (prompt-level loose) with a reply that does not loop.
    pub prompt_loose_not_looping: f64,
    /// Condition's minus baseline's `prompt_loose_not_looping`, paired; None for the baseline.
    pub delta: Option<f64>,
    /// Exact McNemar p of that difference; None for the baseline.
    pub mcnemar_p: Option<f64>,
}

/// One condition's row of the report. Accuracies are fractions in [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionReport {
    pub name: String,
    pub alpha: Option<f32>,
    pub granularity: Option<String>,
    /// Prompts scored.
    pub n: usize,
    /// Instructions over all prompts.
    pub instructions: usize,
    pub prompt_strict: f64,
    pub prompt_loose: f64,
    pub instruction_strict: f64,
    pub instruction_loose: f64,
    /// Bootstrap interval of `prompt_loose` itself (the plot's error bars).
    pub prompt_loose_ci: Interval,
    pub mean_response_chars: f64,
    /// Median words per reply, and the share of replies under 20 words: brevity is the side
    /// effect that can pass "less than N words" and fail the task.
    #[serde(default)]
    pub median_words: f64,
    #[serde(default)]
    pub short_replies: f64,
    /// Loose accuracy per length instruction and relation, keyed by label.
    #[serde(default)]
    pub length_instructions: BTreeMap<String, LengthInstruction>,
    /// Prompt-level loose accuracy on the prompts without a `length_constraints:*`
    /// instruction: steering that only shortens replies passes "less than N words" more
    /// often and "at least N words" less often, so this is the comparison length cannot
    /// drive directly.
    pub length_free: LengthFree,
    /// Replies stuck in a loop, and passes that do not come from one.
    pub looping: Looping,
    /// Keyed by category, so report.json lists them in a stable (sorted) order.
    pub categories: BTreeMap<String, CategoryAccuracy>,
    /// None for the baseline itself.
    pub vs_baseline: Option<BaselineComparison>,
}

/// The whole evaluation report (written as report.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Name of the baseline condition.
    pub baseline: String,
    pub seed: u64,
    pub bootstrap_resamples: usize,
    pub confidence: f64,
    /// All categories seen, sorted.
    pub categories: Vec<String>,
    /// In the order the conditions were given.
    pub conditions: Vec<ConditionReport>,
}

impl Report {
    pub fn condition(&self, name: &str) -> Option<&ConditionReport> {
        self.conditions.iter().find(|c| c.name == name)
    }
}

/// Keys shown in an error message before it says "and N more": a whole missing split would
/// otherwise print hundreds of keys.
const KEYS_SHOWN: usize = 20;

fn key_list(keys: &[Key]) -> String {
    let mut s = keys
        .iter()
        .take(KEYS_SHOWN)
        .map(Key::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > KEYS_SHOWN {
        let _ = write!(s, " and {} more", keys.len() - KEYS_SHOWN);
    }
    s
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("baseline condition `{name}` is not among the conditions ({})", available.join(", "))]
    MissingBaseline { name: String, available: Vec<String> },
    #[error("condition `{0}` is given more than once")]
    DuplicateCondition(String),
    #[error("baseline `{0}` has no prompts or no instructions to score")]
    Empty(String),
    #[error("condition `{condition}` has prompt {key} more than once")]
    DuplicateKey { condition: String, key: Key },
    #[error("condition `{condition}` lacks {} prompt(s) that baseline `{baseline}` has: keys {}", keys.len(), key_list(keys))]
    MissingKeys {
        condition: String,
        baseline: String,
        keys: Vec<Key>,
    },
    #[error("condition `{condition}` has {} prompt(s) that baseline `{baseline}` lacks: keys {}", keys.len(), key_list(keys))]
    ExtraKeys {
        condition: String,
        baseline: String,
        keys: Vec<Key>,
    },
    #[error("condition `{condition}`, prompt {key}: {detail}")]
    Inconsistent {
        condition: String,
        key: Key,
        detail: String,
    },
    #[error("cannot draw the plot {path}: {detail}")]
    Plot { path: String, detail: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_reports_still_load_with_integer_keys() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/results/ifeval-smollm2");
        let text = std::fs::read_to_string(dir.join("report.json")).unwrap();
        let report: Report = serde_json::from_str(&text).unwrap();
        let keys: Vec<&Key> = report
            .conditions
            .iter()
            .flat_map(|c| &c.vs_baseline)
            .flat_map(|v| v.gained_keys.iter().chain(&v.damaged_keys))
            .collect();
        assert!(!keys.is_empty() && keys.iter().all(|k| matches!(k, Key::Int(_))));
        // And they are written back as the same integers.
        let again = serde_json::to_value(&report).unwrap();
        let original: serde_json::Value = serde_json::from_str(&text).unwrap();
        for (a, o) in again["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .zip(original["conditions"].as_array().unwrap())
        {
            for field in ["gained_keys", "damaged_keys"] {
                assert_eq!(a["vs_baseline"][field], o["vs_baseline"][field], "{}", o["name"]);
            }
        }
    }

    #[test]
    fn long_key_lists_are_cut_short() {
        let keys: Vec<Key> = (0..25).map(Key::Int).chain([Key::from("a")]).collect();
        assert_eq!(key_list(&keys[..3]), "0, 1, 2");
        assert_eq!(key_list(&keys), format!("{} and 6 more", key_list(&keys[..20])));
    }
}
