//! String primitives that behave like CPython's `str` methods and `re` classes.
//!
//! The official IFEval checkers are Python; wherever Rust's notion of
//! "whitespace", "word character" or "upper case" differs from Python's, a
//! checker would silently disagree with the reference on some responses. Every
//! checker goes through these helpers instead of the std equivalents.

use regex::Regex;
use std::sync::OnceLock;

/// Regex class matching what Python's `\s` matches in a `str` pattern.
///
/// Python counts the ASCII information separators U+001C..U+001F as
/// whitespace (`str.isspace()`), Unicode's White_Space property does not.
pub(crate) const PY_SPACE_CLASS: &str = r"[\s\x{1C}-\x{1F}]";

/// Python's `str.isspace()` for one character.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` without arguments.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Python's `str.split()` without arguments (runs of whitespace, no empties).
pub(crate) fn py_split_whitespace(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_py_space).filter(|part| !part.is_empty())
}

fn class_regex(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("static character class compiles"))
}

fn char_in(re: &Regex, c: char) -> bool {
    let mut buf = [0u8; 4];
    re.is_match(c.encode_utf8(&mut buf))
}

/// Python's `\w` in a `str` pattern: `str.isalnum()` or `_`.
///
/// `isalnum()` is "general category L* or a numeric character"; Rust's
/// `char::is_alphanumeric` also admits combining marks (Other_Alphabetic),
/// which would merge e.g. Devanagari syllables that Python splits.
pub(crate) fn is_py_word_char(c: char) -> bool {
    static WORD: OnceLock<Regex> = OnceLock::new();
    c == '_' || (c.is_ascii() && c.is_ascii_alphanumeric()) || {
        !c.is_ascii() && char_in(class_regex(&WORD, r"^[\p{L}\p{N}]$"), c)
    }
}

/// Python's `\d` in a `str` pattern (general category Nd).
pub(crate) fn is_py_digit(c: char) -> bool {
    static DIGIT: OnceLock<Regex> = OnceLock::new();
    c.is_ascii_digit() || (!c.is_ascii() && char_in(class_regex(&DIGIT, r"^\p{Nd}$"), c))
}

/// Title-case letters (category Lt); Python's `isupper`/`islower` treat them
/// as disqualifying, and Rust has no std predicate for them.
fn is_titlecase(c: char) -> bool {
    static TITLE: OnceLock<Regex> = OnceLock::new();
    !c.is_ascii() && char_in(class_regex(&TITLE, r"^\p{Lt}$"), c)
}

/// Python's `str.isupper()`: at least one cased character and none that is
/// lower or title case. Python uses the derived Uppercase/Lowercase
/// properties, which is what `char::is_uppercase`/`is_lowercase` report.
pub(crate) fn py_isupper(s: &str) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if c.is_lowercase() || is_titlecase(c) {
            return false;
        }
        if c.is_uppercase() {
            cased = true;
        }
    }
    cased
}

/// Python's `str.islower()`, the mirror image of [`py_isupper`].
pub(crate) fn py_islower(s: &str) -> bool {
    let mut cased = false;
    for c in s.chars() {
        if c.is_uppercase() || is_titlecase(c) {
            return false;
        }
        if c.is_lowercase() {
            cased = true;
        }
    }
    cased
}

/// `instructions_util.count_words`: NLTK's `RegexpTokenizer(r"\w+")`, i.e.
/// the number of maximal runs of Python word characters.
pub(crate) fn count_words(s: &str) -> usize {
    let mut count = 0;
    let mut in_word = false;
    for c in s.chars() {
        let w = is_py_word_char(c);
        if w && !in_word {
            count += 1;
        }
        in_word = w;
    }
    count
}

/// Python's word boundary test (`\b`) between two optional neighbours.
pub(crate) fn is_py_boundary(before: Option<char>, after: Option<char>) -> bool {
    before.is_some_and(is_py_word_char) != after.is_some_and(is_py_word_char)
}

/// Compiles a pattern the way the official code uses kwargs strings: as a
/// Python regex. Rust's syntax agrees on the plain words and simple patterns
/// the data uses; a string that is not a valid Rust regex (Python would
/// likely reject it too) is matched literally rather than failing the run.
pub(crate) fn user_regex(pattern: &str, case_insensitive: bool) -> Regex {
    let build = |p: &str| regex::RegexBuilder::new(p).case_insensitive(case_insensitive).build();
    build(pattern).unwrap_or_else(|_| build(&regex::escape(pattern)).expect("escaped literal compiles"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_matches_python() {
        assert!(is_py_space('\u{1c}'));
        assert!(is_py_space('\u{85}'));
        assert!(is_py_space('\u{3000}'));
        assert!(!is_py_space('\u{200b}'));
        assert_eq!(py_strip("\u{1f} a b\n"), "a b");
        assert_eq!(py_split_whitespace(" a  b\tc ").collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    fn word_chars_exclude_combining_marks() {
        assert!(is_py_word_char('_'));
        assert!(is_py_word_char('é'));
        assert!(is_py_word_char('²'));
        // DEVANAGARI VOWEL SIGN I (Mc) is not alphanumeric in Python.
        assert!(!is_py_word_char('\u{093f}'));
        assert_eq!(count_words("हिन्दी"), 3);
        assert_eq!(count_words("Hello, world! it's 3.5 foo_bar"), 7);
        assert_eq!(count_words(""), 0);
    }

    #[test]
    fn case_predicates_match_python() {
        assert!(py_isupper("HELLO, WORLD 1"));
        assert!(!py_isupper("Hello"));
        assert!(!py_isupper("123 !"));
        assert!(py_islower("hello, world 1"));
        assert!(!py_islower("hello World"));
        assert!(!py_islower("\u{01c5}")); // Dž is title case
        assert!(!py_isupper("A\u{01c5}"));
    }

    #[test]
    fn user_regex_falls_back_to_literal() {
        assert!(user_regex("c++", true).is_match("I like C++"));
        assert!(user_regex("colou?r", true).is_match("COLOR"));
    }
}
