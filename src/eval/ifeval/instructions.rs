//! The 25 IFEval instruction checkers.
//!
//! Each variant of [`Instruction`] holds its parsed kwargs and
//! [`Instruction::check`] reproduces the corresponding `check_following` of
//! the reference (`instruction_following_eval/instructions.py`), including its
//! quirks (e.g. the postscript pattern is not anchored to a line start, and a
//! `*` bullet followed by a line break swallows the next line). Parsing is
//! separate from checking so that loose scoring can run one instruction over
//! eight response variants without re-reading kwargs or recompiling regexes.

use super::lang::detect_language;
use super::text::{
    count_words, is_py_boundary, py_islower, py_isupper, py_split_whitespace, py_strip, user_regex, PY_SPACE_CLASS,
};
use super::{pyjson, sentences, treebank};
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// Why an instruction could not be built from its id and kwargs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BuildError {
    UnknownId,
    Kwargs(String),
}

/// `less than` / `at least`, the two comparisons IFEval supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Relation {
    LessThan,
    AtLeast,
}

impl Relation {
    fn holds(self, actual: usize, threshold: usize) -> bool {
        match self {
            Relation::LessThan => actual < threshold,
            Relation::AtLeast => actual >= threshold,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Instruction {
    KeywordsExistence(Vec<Regex>),
    KeywordsFrequency {
        keyword: Regex,
        frequency: usize,
        relation: Relation,
    },
    ForbiddenWords(Vec<Regex>),
    LetterFrequency {
        letter: String,
        frequency: usize,
        relation: Relation,
    },
    ResponseLanguage(String),
    NumberSentences {
        num: usize,
        relation: Relation,
    },
    NumberParagraphs(usize),
    NumberWords {
        num: usize,
        relation: Relation,
    },
    NthParagraphFirstWord {
        num_paragraphs: usize,
        nth: usize,
        first_word: String,
    },
    NumberPlaceholders(usize),
    Postscript(Regex),
    NumberBulletLists(usize),
    ConstrainedResponse,
    NumberHighlightedSections(usize),
    MultipleSections {
        splitter: Regex,
        num: usize,
    },
    JsonFormat,
    Title,
    TwoResponses,
    RepeatPrompt(String),
    EndChecker(String),
    CapitalWordFrequency {
        frequency: usize,
        relation: Relation,
    },
    EnglishCapital,
    EnglishLowercase,
    NoComma,
    Quotation,
}

/// Typed access to one instruction's kwargs. `null` values count as absent
/// (the Hugging Face copy of the data lists every key with `null`), and
/// leftover keys are an error because the reference's `build_description`
/// would reject an unexpected keyword argument.
struct Args<'a> {
    map: &'a Map<String, Value>,
    used: HashSet<&'static str>,
}

impl<'a> Args<'a> {
    fn new(map: &'a Map<String, Value>) -> Self {
        Args {
            map,
            used: HashSet::new(),
        }
    }

    fn get(&mut self, name: &'static str) -> Option<&'a Value> {
        self.used.insert(name);
        self.map.get(name).filter(|v| !v.is_null())
    }

    fn required(&mut self, name: &'static str) -> Result<&'a Value, BuildError> {
        self.get(name)
            .ok_or_else(|| BuildError::Kwargs(format!("missing required argument `{name}`")))
    }

    /// A non-negative integer (the reference replaces negatives by a random
    /// value, which has no place in a reproducible evaluation). Integral
    /// floats such as `3.0` are accepted because Python compares them fine.
    fn count(&mut self, name: &'static str) -> Result<usize, BuildError> {
        let value = self.required(name)?;
        let bad = || BuildError::Kwargs(format!("`{name}` must be a non-negative integer, got {value}"));
        if let Some(n) = value.as_u64() {
            return usize::try_from(n).map_err(|_| bad());
        }
        match value.as_f64() {
            Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= u32::MAX as f64 => Ok(f as usize),
            _ => Err(bad()),
        }
    }

    fn string(&mut self, name: &'static str) -> Result<&'a str, BuildError> {
        let value = self.required(name)?;
        value
            .as_str()
            .ok_or_else(|| BuildError::Kwargs(format!("`{name}` must be a string, got {value}")))
    }

    fn relation(&mut self, name: &'static str) -> Result<Relation, BuildError> {
        match self.string(name)? {
            "less than" => Ok(Relation::LessThan),
            "at least" => Ok(Relation::AtLeast),
            other => Err(BuildError::Kwargs(format!(
                "`{name}` must be \"less than\" or \"at least\", got {other:?}"
            ))),
        }
    }

    /// A non-empty list of strings (the reference draws random words for an
    /// empty one).
    fn string_list(&mut self, name: &'static str) -> Result<Vec<&'a str>, BuildError> {
        let value = self.required(name)?;
        let bad = || BuildError::Kwargs(format!("`{name}` must be a non-empty list of strings, got {value}"));
        let items = value.as_array().ok_or_else(bad)?;
        if items.is_empty() {
            return Err(bad());
        }
        items.iter().map(|v| v.as_str().ok_or_else(bad)).collect()
    }

    fn finish(self) -> Result<(), BuildError> {
        let mut unknown: Vec<&str> = self
            .map
            .iter()
            .filter(|(k, v)| !v.is_null() && !self.used.contains(k.as_str()))
            .map(|(k, _)| k.as_str())
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        unknown.sort_unstable();
        Err(BuildError::Kwargs(format!("unexpected argument(s) {unknown:?}")))
    }
}

/// Compiles a pattern assembled from static parts (with [`PY_SPACE_CLASS`]
/// standing for Python's `\s`) and already validated user parts.
fn static_regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("pattern compiles")
}

/// A kwargs string that the reference splices into a larger regex: spliced
/// the same way (unwrapped, so precedence is Python's) when Rust accepts it
/// on its own, matched literally otherwise.
fn regex_fragment(s: &str) -> String {
    if Regex::new(s).is_ok() {
        s.to_string()
    } else {
        regex::escape(s)
    }
}

impl Instruction {
    /// Builds the checker for `id` from its kwargs. `prompt` is only used
    /// by `combination:repeat_prompt` when its kwargs lack `prompt_to_repeat`.
    pub(crate) fn build(id: &str, kwargs: &Map<String, Value>, prompt: &str) -> Result<Self, BuildError> {
        let mut args = Args::new(kwargs);
        let instruction = match id {
            "keywords:existence" => Instruction::KeywordsExistence(
                args.string_list("keywords")?
                    .into_iter()
                    .map(|k| user_regex(k, true))
                    .collect(),
            ),
            "keywords:frequency" => Instruction::KeywordsFrequency {
                // The reference strips the keyword before using it as a regex.
                keyword: user_regex(py_strip(args.string("keyword")?), true),
                frequency: args.count("frequency")?,
                relation: args.relation("relation")?,
            },
            "keywords:forbidden_words" => Instruction::ForbiddenWords(
                args.string_list("forbidden_words")?
                    .into_iter()
                    .map(|w| user_regex(w, true))
                    .collect(),
            ),
            "keywords:letter_frequency" => {
                let letter = py_strip(args.string("letter")?);
                if letter.chars().count() != 1 {
                    return Err(BuildError::Kwargs(format!(
                        "`letter` must be a single character, got {letter:?}"
                    )));
                }
                Instruction::LetterFrequency {
                    letter: letter.to_lowercase(),
                    frequency: args.count("let_frequency")?,
                    relation: args.relation("let_relation")?,
                }
            }
            "language:response_language" => Instruction::ResponseLanguage(args.string("language")?.to_string()),
            "length_constraints:number_sentences" => Instruction::NumberSentences {
                num: args.count("num_sentences")?,
                relation: args.relation("relation")?,
            },
            "length_constraints:number_paragraphs" => Instruction::NumberParagraphs(args.count("num_paragraphs")?),
            "length_constraints:number_words" => Instruction::NumberWords {
                num: args.count("num_words")?,
                relation: args.relation("relation")?,
            },
            "length_constraints:nth_paragraph_first_word" => {
                let num_paragraphs = args.count("num_paragraphs")?;
                let nth = args.count("nth_paragraph")?;
                if nth == 0 || nth > num_paragraphs {
                    return Err(BuildError::Kwargs(format!(
                        "`nth_paragraph` must be in 1..={num_paragraphs}, got {nth}"
                    )));
                }
                Instruction::NthParagraphFirstWord {
                    num_paragraphs,
                    nth,
                    first_word: args.string("first_word")?.to_lowercase(),
                }
            }
            "detectable_content:number_placeholders" => {
                Instruction::NumberPlaceholders(args.count("num_placeholders")?)
            }
            "detectable_content:postscript" => {
                let marker = py_strip(args.string("postscript_marker")?);
                // The reference special-cases its two stock markers to allow
                // spaces and a missing final period; anything else is used
                // as a (lower-cased) regex. None of the patterns is anchored
                // to a line start: a marker anywhere in the text counts.
                let core = match marker {
                    "P.P.S" => format!(r"p\.{S}?p\.{S}?s", S = PY_SPACE_CLASS),
                    "P.S." => format!(r"p\.{S}?s\.", S = PY_SPACE_CLASS),
                    other => regex_fragment(&other.to_lowercase()),
                };
                Instruction::Postscript(static_regex(&format!(r"(?m){S}*{core}.*$", S = PY_SPACE_CLASS)))
            }
            "detectable_format:number_bullet_lists" => Instruction::NumberBulletLists(args.count("num_bullets")?),
            "detectable_format:constrained_response" => Instruction::ConstrainedResponse,
            "detectable_format:number_highlighted_sections" => {
                Instruction::NumberHighlightedSections(args.count("num_highlights")?)
            }
            "detectable_format:multiple_sections" => {
                let splitter = regex_fragment(py_strip(args.string("section_spliter")?));
                Instruction::MultipleSections {
                    splitter: static_regex(&format!(r"{S}?{splitter}{S}?\d+{S}?", S = PY_SPACE_CLASS)),
                    num: args.count("num_sections")?,
                }
            }
            "detectable_format:json_format" => Instruction::JsonFormat,
            "detectable_format:title" => Instruction::Title,
            "combination:two_responses" => Instruction::TwoResponses,
            "combination:repeat_prompt" => {
                // The reference requires `prompt_to_repeat`; falling back to
                // the prompt itself keeps hand-written data usable.
                let text = match args.get("prompt_to_repeat") {
                    Some(Value::String(s)) => s.as_str(),
                    Some(other) => {
                        return Err(BuildError::Kwargs(format!(
                            "`prompt_to_repeat` must be a string, got {other}"
                        )))
                    }
                    None => prompt,
                };
                Instruction::RepeatPrompt(py_strip(text).to_lowercase())
            }
            "startend:end_checker" => Instruction::EndChecker(py_strip(args.string("end_phrase")?).to_lowercase()),
            "change_case:capital_word_frequency" => Instruction::CapitalWordFrequency {
                frequency: args.count("capital_frequency")?,
                relation: args.relation("capital_relation")?,
            },
            "change_case:english_capital" => Instruction::EnglishCapital,
            "change_case:english_lowercase" => Instruction::EnglishLowercase,
            "punctuation:no_comma" => Instruction::NoComma,
            "startend:quotation" => Instruction::Quotation,
            _ => return Err(BuildError::UnknownId),
        };
        args.finish()?;
        Ok(instruction)
    }

    /// `check_following` of the reference for one (already non-blank) text.
    pub(crate) fn check(&self, value: &str) -> bool {
        match self {
            Instruction::KeywordsExistence(keywords) => keywords.iter().all(|k| k.is_match(value)),
            Instruction::KeywordsFrequency {
                keyword,
                frequency,
                relation,
            } => relation.holds(keyword.find_iter(value).count(), *frequency),
            Instruction::ForbiddenWords(words) => !words.iter().any(|w| has_bounded_match(w, value)),
            Instruction::LetterFrequency {
                letter,
                frequency,
                relation,
            } => {
                // `collections.Counter(value.lower())[letter]`; lower-casing
                // first matters because it can expand (e.g. U+0130 -> "i̇").
                let target = letter.chars().next();
                let count = value.to_lowercase().chars().filter(|&c| Some(c) == target).count();
                // A letter that lower-cases to several characters never
                // equals one character of the text, as in Python.
                let count = if letter.chars().count() == 1 { count } else { 0 };
                relation.holds(count, *frequency)
            }
            Instruction::ResponseLanguage(language) => detect_language(value).is_none_or(|l| l == *language),
            Instruction::NumberSentences { num, relation } => relation.holds(sentences::count_sentences(value), *num),
            Instruction::NumberParagraphs(num) => check_paragraphs(value, *num),
            Instruction::NumberWords { num, relation } => relation.holds(count_words(value), *num),
            Instruction::NthParagraphFirstWord {
                num_paragraphs,
                nth,
                first_word,
            } => check_nth_paragraph(value, *num_paragraphs, *nth, first_word),
            Instruction::NumberPlaceholders(num) => placeholder_regex().find_iter(value).count() >= *num,
            Instruction::Postscript(pattern) => pattern.is_match(&value.to_lowercase()),
            Instruction::NumberBulletLists(num) => {
                let (star, dash) = bullet_regexes();
                star.find_iter(value).count() + dash.find_iter(value).count() == *num
            }
            Instruction::ConstrainedResponse => {
                let value = py_strip(value);
                ["My answer is yes.", "My answer is no.", "My answer is maybe."]
                    .iter()
                    .any(|option| value.contains(option))
            }
            Instruction::NumberHighlightedSections(num) => count_highlights(value) >= *num,
            Instruction::MultipleSections { splitter, num } => splitter.find_iter(value).count() >= *num,
            Instruction::JsonFormat => pyjson::is_valid(strip_code_fence(value)),
            Instruction::Title => title_regex()
                .find_iter(value)
                .any(|m| !py_strip(m.as_str().trim_start_matches('<').trim_end_matches('>')).is_empty()),
            Instruction::TwoResponses => check_two_responses(value),
            Instruction::RepeatPrompt(prompt) => py_strip(value).to_lowercase().starts_with(prompt.as_str()),
            Instruction::EndChecker(phrase) => py_strip(value)
                .trim_matches('"')
                .to_lowercase()
                .ends_with(phrase.as_str()),
            Instruction::CapitalWordFrequency { frequency, relation } => {
                let capitals = treebank::word_tokenize(value).iter().filter(|w| py_isupper(w)).count();
                relation.holds(capitals, *frequency)
            }
            // The case test short-circuits before language detection, and
            // undetectable text counts as followed, as in the reference.
            Instruction::EnglishCapital => py_isupper(value) && detect_language(value).is_none_or(|l| l == "en"),
            Instruction::EnglishLowercase => py_islower(value) && detect_language(value).is_none_or(|l| l == "en"),
            Instruction::NoComma => !value.contains(','),
            Instruction::Quotation => {
                let v = py_strip(value);
                v.chars().count() > 1 && v.starts_with('"') && v.ends_with('"')
            }
        }
    }
}

/// `re.search(r"\b" + word + r"\b", value, re.IGNORECASE)` with Python's
/// word boundaries (Rust's `\b` also treats combining marks as word
/// characters). Every match start is tried, like a backtracking search.
fn has_bounded_match(word: &Regex, value: &str) -> bool {
    let mut pos = 0;
    while let Some(m) = word.find_at(value, pos) {
        let before = value[..m.start()].chars().next_back();
        let first = value[m.start()..].chars().next();
        let last = value[..m.end()].chars().next_back();
        let after = value[m.end()..].chars().next();
        if is_py_boundary(before, first) && is_py_boundary(last, after) {
            return true;
        }
        // Retry from the next character after this match's start.
        match first {
            Some(c) => pos = m.start() + c.len_utf8(),
            None => break,
        }
    }
    false
}

fn placeholder_regex() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\[.*?\]").expect("static pattern compiles"))
}

fn title_regex() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| Regex::new(r"<<[^\n]+>>").expect("static pattern compiles"))
}

/// `^\s*\*[^\*].*$` and `^\s*-.*$` in MULTILINE mode. `\s*` may run over
/// blank lines and `[^\*]` may be a newline, exactly as in Python.
fn bullet_regexes() -> &'static (Regex, Regex) {
    static RE: std::sync::OnceLock<(Regex, Regex)> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        (
            static_regex(&format!(r"(?m)^{S}*\*[^*].*$", S = PY_SPACE_CLASS)),
            static_regex(&format!(r"(?m)^{S}*-.*$", S = PY_SPACE_CLASS)),
        )
    })
}

/// `*text*` and `**text**` spans on one line with non-blank content; a
/// bold span counts once as `**...**` (its `*`-pairs are empty).
fn count_highlights(value: &str) -> usize {
    static RE: std::sync::OnceLock<(Regex, Regex)> = std::sync::OnceLock::new();
    let (single, double) = RE.get_or_init(|| {
        (
            Regex::new(r"\*[^\n*]*\*").expect("static pattern compiles"),
            Regex::new(r"\*\*[^\n*]*\*\*").expect("static pattern compiles"),
        )
    });
    let singles = single
        .find_iter(value)
        .filter(|m| !py_strip(m.as_str().trim_matches('*')).is_empty())
        .count();
    let doubles = double
        .find_iter(value)
        .filter(|m| !py_strip(&m.as_str()[2..m.as_str().len() - 2]).is_empty())
        .count();
    singles + doubles
}

/// Paragraphs separated by `***` (with one optional whitespace on each
/// side); empty pieces are tolerated only at the very start or end.
fn check_paragraphs(value: &str, expected: usize) -> bool {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| static_regex(&format!(r"{S}?\*\*\*{S}?", S = PY_SPACE_CLASS)));
    let pieces: Vec<&str> = re.split(value).collect();
    let last = pieces.len() - 1;
    let mut count = pieces.len();
    for (i, piece) in pieces.iter().enumerate() {
        if py_strip(piece).is_empty() {
            if i == 0 || i == last {
                count -= 1;
            } else {
                return false;
            }
        }
    }
    count == expected
}

/// Paragraphs separated by `\n\n`; the count skips blank pieces but the
/// nth paragraph is indexed among all pieces, as in the reference.
fn check_nth_paragraph(value: &str, expected: usize, nth: usize, first_word: &str) -> bool {
    let pieces: Vec<&str> = value.split("\n\n").collect();
    let count = pieces.iter().filter(|p| !py_strip(p).is_empty()).count();
    if nth > count {
        return false;
    }
    let paragraph = py_strip(pieces[nth - 1]);
    let Some(word) = py_split_whitespace(paragraph).next() else {
        return false;
    };
    let word = word.trim_start_matches('\'').trim_start_matches('"');
    let actual: String = word
        .chars()
        .take_while(|c| !matches!(c, '.' | ',' | '?' | '!' | '\'' | '"'))
        .flat_map(char::to_lowercase)
        .collect();
    count == expected && actual == first_word
}

/// Strips whitespace, an opening code fence (```` ```json ````, ```` ```Json ````,
/// ```` ```JSON ````, then a bare ```` ``` ````, each removed if present in
/// turn) and a closing fence.
fn strip_code_fence(value: &str) -> &str {
    let mut v = py_strip(value);
    for prefix in ["```json", "```Json", "```JSON", "```"] {
        v = v.strip_prefix(prefix).unwrap_or(v);
    }
    py_strip(v.strip_suffix("```").unwrap_or(v))
}

/// Exactly two non-blank, different answers separated by `******`; blank
/// pieces are allowed only at the ends.
fn check_two_responses(value: &str) -> bool {
    let pieces: Vec<&str> = value.split("******").collect();
    let last = pieces.len() - 1;
    let mut valid = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        if py_strip(piece).is_empty() {
            if i != 0 && i != last {
                return false;
            }
        } else {
            valid.push(*piece);
        }
    }
    valid.len() == 2 && py_strip(valid[0]) != py_strip(valid[1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kw(v: Value) -> Map<String, Value> {
        v.as_object().expect("object").clone()
    }

    fn check(id: &str, args: Value, response: &str) -> bool {
        Instruction::build(id, &kw(args), "the prompt")
            .expect("builds")
            .check(response)
    }

    #[test]
    fn keywords_existence() {
        let args = json!({"keywords": ["Correlated", "experiencing"]});
        assert!(check(
            "keywords:existence",
            args.clone(),
            "We are EXPERIENCING correlated issues."
        ));
        assert!(!check("keywords:existence", args, "We are experiencing issues."));
    }

    #[test]
    fn keywords_frequency() {
        let at_least = json!({"keyword": "cat", "frequency": 2, "relation": "at least"});
        assert!(check("keywords:frequency", at_least.clone(), "Cat and cats."));
        assert!(!check("keywords:frequency", at_least, "One cat."));
        let less = json!({"keyword": "cat", "frequency": 2, "relation": "less than"});
        assert!(check("keywords:frequency", less.clone(), "One cat."));
        assert!(!check("keywords:frequency", less, "cat cat"));
    }

    #[test]
    fn forbidden_words() {
        let args = json!({"forbidden_words": ["bad", "evil"]});
        assert!(check("keywords:forbidden_words", args.clone(), "Badly done, devilish."));
        assert!(!check("keywords:forbidden_words", args.clone(), "That is BAD."));
        assert!(!check("keywords:forbidden_words", args, "Evil_ ish? no: evil."));
    }

    #[test]
    fn letter_frequency() {
        let args = json!({"letter": "a", "let_frequency": 3, "let_relation": "at least"});
        assert!(check("keywords:letter_frequency", args.clone(), "A banana"));
        assert!(!check("keywords:letter_frequency", args, "A cat"));
        let less = json!({"letter": "#", "let_frequency": 2, "let_relation": "less than"});
        assert!(check("keywords:letter_frequency", less.clone(), "# one"));
        assert!(!check("keywords:letter_frequency", less, "## two"));
    }

    #[test]
    fn response_language() {
        let args = json!({"language": "fr"});
        assert!(check(
            "language:response_language",
            args.clone(),
            "Bonjour, je suis très heureux de vous rencontrer aujourd'hui dans cette belle ville."
        ));
        assert!(!check(
            "language:response_language",
            args.clone(),
            "Hello, I am very happy to meet you today in this beautiful city of ours."
        ));
        // Nothing to detect: counted as followed, like langdetect's exception.
        assert!(check("language:response_language", args, "12345 67890"));
    }

    #[test]
    fn number_sentences() {
        let args = json!({"num_sentences": 3, "relation": "less than"});
        assert!(check("length_constraints:number_sentences", args.clone(), "One. Two."));
        assert!(!check("length_constraints:number_sentences", args, "One. Two. Three."));
        let at_least = json!({"num_sentences": 2, "relation": "at least"});
        assert!(check(
            "length_constraints:number_sentences",
            at_least.clone(),
            "Dr. Who is here. Yes."
        ));
        assert!(!check(
            "length_constraints:number_sentences",
            at_least,
            "Dr. Who is here."
        ));
    }

    #[test]
    fn number_paragraphs() {
        let args = json!({"num_paragraphs": 2});
        assert!(check(
            "length_constraints:number_paragraphs",
            args.clone(),
            "First.\n***\nSecond."
        ));
        assert!(check(
            "length_constraints:number_paragraphs",
            args.clone(),
            "***\nFirst.\n***\nSecond.\n***"
        ));
        assert!(!check(
            "length_constraints:number_paragraphs",
            args.clone(),
            "First.\n***\n***\nSecond."
        ));
        assert!(!check("length_constraints:number_paragraphs", args, "Only one."));
    }

    #[test]
    fn number_words() {
        let args = json!({"num_words": 5, "relation": "at least"});
        assert!(check(
            "length_constraints:number_words",
            args.clone(),
            "one two three four five"
        ));
        assert!(!check("length_constraints:number_words", args, "one two, three-four"));
        let less = json!({"num_words": 3, "relation": "less than"});
        assert!(check("length_constraints:number_words", less.clone(), "it's"));
        assert!(!check("length_constraints:number_words", less, "it's fine"));
    }

    #[test]
    fn nth_paragraph_first_word() {
        let args = json!({"num_paragraphs": 3, "nth_paragraph": 2, "first_word": "Summary"});
        let id = "length_constraints:nth_paragraph_first_word";
        assert!(check(id, args.clone(), "Intro.\n\n\"Summary, here.\n\nEnd."));
        assert!(check(id, args.clone(), "Intro.\n\nsummary, here.\n\n\n\nEnd."));
        // Only . , ? ! ' " end the word; a colon stays part of it.
        assert!(!check(id, args.clone(), "Intro.\n\nSummary: here.\n\nEnd."));
        assert!(!check(id, args.clone(), "Intro.\n\nOverview here.\n\nEnd."));
        assert!(!check(id, args.clone(), "Intro.\n\nSummary here."));
        // The nth piece is counted among all pieces, blank ones included.
        assert!(!check(id, args, "\n\nIntro.\n\nSummary here.\n\nEnd."));
    }

    #[test]
    fn number_placeholders() {
        let args = json!({"num_placeholders": 2});
        assert!(check(
            "detectable_content:number_placeholders",
            args.clone(),
            "[name] at [address]"
        ));
        assert!(!check(
            "detectable_content:number_placeholders",
            args,
            "[name] at [\naddress]"
        ));
    }

    #[test]
    fn postscript() {
        let ps = json!({"postscript_marker": "P.S."});
        assert!(check(
            "detectable_content:postscript",
            ps.clone(),
            "Body.\n\nP.S. Call me."
        ));
        assert!(check("detectable_content:postscript", ps.clone(), "Body. p. s. inline"));
        assert!(!check("detectable_content:postscript", ps, "Body.\n\nPS call me."));
        let pps = json!({"postscript_marker": "P.P.S"});
        assert!(check("detectable_content:postscript", pps.clone(), "Body.\nP.P.S bye"));
        assert!(!check("detectable_content:postscript", pps, "Body.\nP.S. bye"));
    }

    #[test]
    fn number_bullet_lists() {
        let args = json!({"num_bullets": 3});
        let id = "detectable_format:number_bullet_lists";
        assert!(check(id, args.clone(), "Intro\n* one\n* two\n- three\n**bold** line"));
        assert!(!check(id, args.clone(), "* one\n* two"));
        // A lone `*` swallows the next line, as `[^\*]` matches the newline.
        assert!(!check(id, args, "*\n* two\n* three"));
    }

    #[test]
    fn constrained_response() {
        let id = "detectable_format:constrained_response";
        assert!(check(id, json!({}), "  My answer is maybe. Because."));
        assert!(!check(id, json!({}), "My answer is probably."));
    }

    #[test]
    fn number_highlighted_sections() {
        let args = json!({"num_highlights": 3});
        let id = "detectable_format:number_highlighted_sections";
        assert!(check(id, args.clone(), "*one* and **two** and *three*"));
        assert!(!check(id, args.clone(), "*one* and ** ** and * * and *two*"));
        assert!(!check(id, args, "*one\ntwo* *three*"));
    }

    #[test]
    fn multiple_sections() {
        let args = json!({"section_spliter": "Section", "num_sections": 2});
        let id = "detectable_format:multiple_sections";
        assert!(check(id, args.clone(), "Section 1\nfoo\nSection 2\nbar"));
        assert!(!check(id, args.clone(), "Section 1\nfoo\nSECTION 2\nbar"));
        assert!(!check(id, args, "Section one\nSection two"));
    }

    #[test]
    fn json_format() {
        let id = "detectable_format:json_format";
        assert!(check(id, json!({}), "```json\n{\"a\": 1}\n```"));
        assert!(check(id, json!({}), "  [1, 2]  "));
        assert!(!check(id, json!({}), "Here it is: {\"a\": 1}"));
        assert!(!check(id, json!({}), "```python\n{\"a\": 1}\n```"));
    }

    #[test]
    fn title() {
        let id = "detectable_format:title";
        assert!(check(id, json!({}), "<<Poem of Joy>>\nText"));
        assert!(!check(id, json!({}), "<< >> and <<\n>>"));
    }

    #[test]
    fn two_responses() {
        let id = "combination:two_responses";
        assert!(check(id, json!({}), "First answer.\n******\nSecond answer."));
        assert!(check(id, json!({}), "******\nFirst.\n******\nSecond.\n******"));
        assert!(!check(id, json!({}), "Same.\n******\nSame."));
        assert!(!check(id, json!({}), "A\n******\n\n******\nB"));
    }

    #[test]
    fn repeat_prompt() {
        let args = json!({"prompt_to_repeat": "Write a poem."});
        assert!(check(
            "combination:repeat_prompt",
            args.clone(),
            "  write a POEM. Roses are red."
        ));
        assert!(!check(
            "combination:repeat_prompt",
            args,
            "Sure! Write a poem. Roses are red."
        ));
        // Without kwargs the prompt itself is the text to repeat.
        assert!(check(
            "combination:repeat_prompt",
            json!({}),
            "The prompt, then the answer."
        ));
    }

    #[test]
    fn end_checker() {
        let args = json!({"end_phrase": "Any other questions?"});
        assert!(check(
            "startend:end_checker",
            args.clone(),
            "Text. any other questions?\"\n"
        ));
        assert!(!check("startend:end_checker", args, "Any other questions? Bye."));
    }

    #[test]
    fn capital_word_frequency() {
        let args = json!({"capital_frequency": 3, "capital_relation": "at least"});
        let id = "change_case:capital_word_frequency";
        assert!(check(id, args.clone(), "I CAN'T stop"));
        assert!(!check(id, args.clone(), "NASA's rocket"));
        let less = json!({"capital_frequency": 2, "capital_relation": "less than"});
        assert!(check(id, less.clone(), "The USA is big."));
        assert!(!check(id, less, "The USA and UK are big."));
    }

    #[test]
    fn english_capital() {
        let id = "change_case:english_capital";
        assert!(check(
            id,
            json!({}),
            "THIS IS A RESPONSE WRITTEN ENTIRELY IN CAPITAL LETTERS FOR THE READER."
        ));
        assert!(!check(id, json!({}), "THIS IS ALMOST ALL CAPITALS but not quite."));
    }

    #[test]
    fn english_lowercase() {
        let id = "change_case:english_lowercase";
        assert!(check(
            id,
            json!({}),
            "this is a response written entirely in lower case letters for you."
        ));
        assert!(!check(id, json!({}), "this is almost all lower case, but Not quite."));
        assert!(!check(
            id,
            json!({}),
            "ceci est une réponse écrite entièrement en lettres minuscules pour vous aujourd'hui."
        ));
    }

    #[test]
    fn no_comma() {
        assert!(check("punctuation:no_comma", json!({}), "No commas here。、"));
        assert!(!check("punctuation:no_comma", json!({}), "One, two"));
    }

    #[test]
    fn quotation() {
        assert!(check("startend:quotation", json!({}), " \"Wrapped.\"\n"));
        assert!(!check("startend:quotation", json!({}), "\""));
        assert!(!check("startend:quotation", json!({}), "\"Half wrapped."));
    }

    #[test]
    fn kwargs_validation() {
        let build = |id: &str, v: Value| Instruction::build(id, &kw(v), "");
        assert_eq!(build("nope:nope", json!({})).unwrap_err(), BuildError::UnknownId);
        assert!(matches!(
            build("length_constraints:number_words", json!({"num_words": 5})),
            Err(BuildError::Kwargs(m)) if m.contains("relation")
        ));
        assert!(build(
            "length_constraints:number_words",
            json!({"num_words": "5", "relation": "at least"})
        )
        .is_err());
        assert!(build(
            "length_constraints:number_words",
            json!({"num_words": -1, "relation": "at least"})
        )
        .is_err());
        assert!(build(
            "length_constraints:number_words",
            json!({"num_words": 5, "relation": "at most"})
        )
        .is_err());
        assert!(build("punctuation:no_comma", json!({"extra": 1})).is_err());
        // Null values are absent values, and integral floats are integers.
        assert!(build("punctuation:no_comma", json!({"extra": null})).is_ok());
        assert!(build(
            "length_constraints:number_words",
            json!({"num_words": 5.0, "relation": "at least"})
        )
        .is_ok());
        assert!(build("keywords:existence", json!({"keywords": []})).is_err());
        assert!(build(
            "keywords:letter_frequency",
            json!({"letter": "ab", "let_frequency": 1, "let_relation": "at least"})
        )
        .is_err());
        assert!(build(
            "length_constraints:nth_paragraph_first_word",
            json!({"num_paragraphs": 2, "nth_paragraph": 3, "first_word": "x"})
        )
        .is_err());
    }
}
