//! What the rules look at in a sentence (tokens, numbers, cues), typed access to kwargs, and how
//! the best sentence for a rule is picked (step 2 and 3 of the module documentation).

use super::patterns::{re, INSTRUCTION};
use regex::Regex;
use serde_json::{Map, Value};
use std::ops::Range;

/// One sentence of the prompt with what the rules look at.
pub(super) struct Sent<'a> {
    pub(super) range: Range<usize>,
    pub(super) text: &'a str,
    /// Lowercase alphanumeric tokens, for "a number shortly before a noun" cues.
    tokens: Vec<String>,
    pub(super) has_letters: bool,
}

impl<'a> Sent<'a> {
    pub(super) fn new(prompt: &'a str, range: Range<usize>) -> Self {
        let text = &prompt[range.clone()];
        let tokens = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|t| !t.is_empty())
            .map(str::to_lowercase)
            .collect();
        let has_letters = text.chars().any(char::is_alphabetic);
        Sent {
            range,
            text,
            tokens,
            has_letters,
        }
    }

    pub(super) fn has(&self, re: &Regex) -> bool {
        re.is_match(self.text)
    }

    /// Whether a number (digits or a number word) occurs at most `window` tokens before one of `nouns`. Returns the
    /// number found, or `None`.
    pub(super) fn number_before(&self, nouns: &[&str], window: usize) -> Option<u64> {
        for (i, t) in self.tokens.iter().enumerate() {
            if nouns.contains(&t.as_str()) {
                for j in (i.saturating_sub(window)..i).rev() {
                    if let Some(n) = number_value(&self.tokens[j]) {
                        return Some(n);
                    }
                }
            }
        }
        None
    }

    /// Whether the sentence mentions `n` (or `n ± 1`, because "less than 11" is written "at most 10").
    pub(super) fn mentions_number(&self, n: Option<u64>) -> bool {
        let Some(n) = n else { return false };
        self.tokens
            .iter()
            .filter_map(|t| number_value(t))
            .any(|v| v == n || v + 1 == n || v == n + 1)
    }

    pub(super) fn any_number(&self) -> bool {
        self.tokens.iter().any(|t| number_value(t).is_some())
    }
}

/// Value of a numeric token: digits, or an English number word up to twenty and the tens.
fn number_value(t: &str) -> Option<u64> {
    if !t.is_empty() && t.len() <= 6 && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().ok();
    }
    const WORDS: [(&str, u64); 33] = [
        ("zero", 0),
        ("one", 1),
        ("once", 1),
        ("single", 1),
        ("two", 2),
        ("twice", 2),
        ("three", 3),
        ("thrice", 3),
        ("four", 4),
        ("five", 5),
        ("six", 6),
        ("seven", 7),
        ("eight", 8),
        ("nine", 9),
        ("ten", 10),
        ("eleven", 11),
        ("twelve", 12),
        ("thirteen", 13),
        ("fourteen", 14),
        ("fifteen", 15),
        ("sixteen", 16),
        ("seventeen", 17),
        ("eighteen", 18),
        ("nineteen", 19),
        ("twenty", 20),
        ("thirty", 30),
        ("forty", 40),
        ("fifty", 50),
        ("sixty", 60),
        ("seventy", 70),
        ("eighty", 80),
        ("ninety", 90),
        ("hundred", 100),
    ];
    WORDS.iter().find(|(w, _)| *w == t).map(|&(_, v)| v)
}

/// Typed access to one instruction's kwargs; nulls count as absent, as in IFEval's data.
pub(super) struct Kw<'a>(pub(super) &'a Map<String, Value>);

impl Kw<'_> {
    pub(super) fn str(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
    }
    pub(super) fn num(&self, k: &str) -> Option<u64> {
        self.0.get(k).and_then(Value::as_u64)
    }
    pub(super) fn strs(&self, k: &str) -> Vec<&str> {
        self.0
            .get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|s| !s.trim().is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Index of the best-scoring sentence: highest score, then shortest, then earliest. Sentences without letters and
/// scores of 0 or less never win; instruction-like sentences get +1 to break near-ties.
pub(super) fn best(sents: &[Sent], score: impl Fn(&Sent) -> i32) -> Option<usize> {
    let mut top: Option<(i32, usize, usize)> = None;
    for (i, s) in sents.iter().enumerate() {
        if !s.has_letters {
            continue;
        }
        let base = score(s);
        if base <= 0 {
            continue;
        }
        // A markdown list item ("* This is an example bullet") shows the format; the instruction is elsewhere.
        let example = s.text.starts_with(['*', '-']) && s.text[1..].starts_with(' ');
        let total = base + i32::from(s.has(re(&INSTRUCTION))) - 4 * i32::from(example);
        let len = s.range.len();
        let better = match top {
            None => true,
            Some((t, l, _)) => total > t || (total == t && len < l),
        };
        if better {
            top = Some((total, len, i));
        }
    }
    top.map(|(_, _, i)| i)
}

pub(super) fn bonus(cond: bool, points: i32) -> i32 {
    if cond {
        points
    } else {
        0
    }
}

/// The sentence right before or after `b` that satisfies `pred` and has letters (the one after first).
pub(super) fn neighbour(sents: &[Sent], b: usize, pred: impl Fn(&Sent) -> bool) -> Option<usize> {
    [b + 1, b.wrapping_sub(1)]
        .into_iter()
        .find(|&i| i < sents.len() && sents[i].has_letters && pred(&sents[i]))
}
