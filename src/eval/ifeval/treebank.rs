//! `nltk.word_tokenize` (sentence split, then `NLTKWordTokenizer`).
//!
//! Only `change_case:capital_word_frequency` uses it, counting tokens for
//! which `str.isupper()` holds. That count depends on where the tokenizer
//! cuts: contractions (`DON'T` -> `DO`, `N'T`), possessives (`NASA's`),
//! punctuation between letters (`AT&T`, `A,B`) all change it, so the
//! substitution rules of NLTK 3.8/3.9 (see `sentences` for why those releases)
//! are reproduced in order.

use super::sentences;
use super::text::{is_py_word_char, py_split_whitespace, PY_SPACE_CLASS};
use regex::Regex;
use std::sync::OnceLock;

/// A substitution applied with `re.sub` semantics (all non-overlapping
/// matches, left to right).
struct Rule {
    re: Regex,
    replacement: &'static str,
}

struct Rules {
    starting_quotes: Vec<Rule>,
    punctuation: Vec<Rule>,
    ending_quotes: Vec<Rule>,
    contractions: Vec<Rule>,
}

fn rule(pattern: &str, replacement: &'static str) -> Rule {
    let pattern = pattern.replace(r"\s", PY_SPACE_CLASS);
    Rule {
        re: Regex::new(&pattern).expect("static tokenizer rule compiles"),
        replacement,
    }
}

fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(|| Rules {
        starting_quotes: vec![
            rule("([«“‘„]|`+)", " ${1} "),
            rule("^\"", "``"),
            rule("(``)", " ${1} "),
            rule(r#"([ (\[{<])("|'')"#, "${1} `` "),
        ],
        punctuation: vec![
            rule(r#"([^.])(\.)([\])}>"'»”’ ]*)\s*\z"#, "${1} ${2} ${3} "),
            rule(r"([:,])([^\d])", " ${1} ${2}"),
            // Python's `$` also matches before a final newline.
            rule("([:,])(\n?)\\z", " ${1} ${2}"),
            rule(r"\.{2,}", " ${0} "),
            rule("[;@#$%&]", " ${0} "),
            rule(r#"([^.])(\.)([\])}>"']*)\s*\z"#, "${1} ${2}${3} "),
            rule("[?!]", " ${0} "),
            rule("([^'])' ", "${1} ' "),
            rule(r"[*]", " ${0} "),
            // PARENS_BRACKETS and DOUBLE_DASHES run right after PUNCTUATION.
            rule(r"[\]\[(){}<>]", " ${0} "),
            rule("--", " -- "),
        ],
        ending_quotes: vec![
            rule("([»”’])", " ${1} "),
            rule("''", " '' "),
            rule("\"", " '' "),
            rule(r"\s+", " "),
            rule("([^' ])('[sS]|'[mM]|'[dD]|') ", "${1} ${2} "),
            rule("([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", "${1} ${2} "),
        ],
        contractions: vec![
            rule(r"(?i)\b(can)(not)\b", " ${1} ${2} "),
            rule(r"(?i)\b(d)('ye)\b", " ${1} ${2} "),
            rule(r"(?i)\b(gim)(me)\b", " ${1} ${2} "),
            rule(r"(?i)\b(gon)(na)\b", " ${1} ${2} "),
            rule(r"(?i)\b(got)(ta)\b", " ${1} ${2} "),
            rule(r"(?i)\b(lem)(me)\b", " ${1} ${2} "),
            rule(r"(?i)\b(more)('n)\b", " ${1} ${2} "),
            // NLTK uses the lookahead `(?=\s)`; consuming the space and
            // writing it back is equivalent, since the next match needs a
            // word boundary that the space still provides.
            rule(r"(?i)\b(wan)(na)(\s)", " ${1} ${2} ${3}"),
            rule(r"(?i) ('t)(is)\b", " ${1} ${2} "),
            rule(r"(?i) ('t)(was)\b", " ${1} ${2} "),
        ],
    })
}

fn apply(rules: &[Rule], mut text: String) -> String {
    for r in rules {
        text = r.re.replace_all(&text, r.replacement).into_owned();
    }
    text
}

/// The last STARTING_QUOTES rule, which needs a lookahead:
/// `(?i)(\')(?!re|ve|ll|m|t|s|d|n)(\w)\b` -> `"\1 \2"`. A quote before a
/// one-character word (`'a`) is split off, unless that character could start
/// a contraction suffix. With a single word character before the boundary
/// only the one-letter suffixes can match; under IGNORECASE `s` also matches
/// U+017F (long s).
fn split_quote_before_single_char(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        out.push(c);
        if c != '\'' {
            continue;
        }
        let Some(&next) = chars.get(i + 1) else {
            continue;
        };
        let single_char_word = is_py_word_char(next) && !chars.get(i + 2).is_some_and(|&n| is_py_word_char(n));
        let suffix_start = matches!(
            next,
            'm' | 'M' | 't' | 'T' | 's' | 'S' | '\u{17f}' | 'd' | 'D' | 'n' | 'N'
        );
        if single_char_word && !suffix_start {
            out.push(' ');
        }
    }
    out
}

/// `NLTKWordTokenizer.tokenize` for one sentence.
fn tokenize_sentence(sentence: &str) -> Vec<String> {
    let rules = rules();
    let text = apply(&rules.starting_quotes, sentence.to_string());
    let text = split_quote_before_single_char(&text);
    let text = apply(&rules.punctuation, text);
    let text = format!(" {text} ");
    let text = apply(&rules.ending_quotes, text);
    let text = apply(&rules.contractions, text);
    py_split_whitespace(&text).map(str::to_string).collect()
}

/// `nltk.word_tokenize(text)`, with sentences split by [`sentences::sentences`].
pub(crate) fn word_tokenize(text: &str) -> Vec<String> {
    sentences::sentences(text)
        .iter()
        .flat_map(|s| tokenize_sentence(s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_contractions_and_punctuation() {
        assert_eq!(
            word_tokenize("I CAN'T do it, NASA's AT&T GONNA wanna go."),
            ["I", "CA", "N'T", "do", "it", ",", "NASA", "'s", "AT", "&", "T", "GON", "NA", "wan", "na", "go", "."]
        );
    }

    #[test]
    fn handles_quotes_and_brackets() {
        assert_eq!(
            word_tokenize("\"Hello,\" she said (quietly). 'Tis fine."),
            ["``", "Hello", ",", "''", "she", "said", "(", "quietly", ")", ".", "'T", "is", "fine", "."]
        );
        assert_eq!(word_tokenize("**BOLD** text"), ["*", "*", "BOLD", "*", "*", "text"]);
    }

    #[test]
    fn quote_before_single_character() {
        assert_eq!(
            split_quote_before_single_char("'hello 'a 'b, 's 'T"),
            "'hello ' a ' b, 's 'T"
        );
        assert_eq!(
            word_tokenize("'hello 'tis 'a b."),
            ["'hello", "'t", "is", "'", "a", "b", "."]
        );
    }
}
