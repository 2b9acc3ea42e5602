//! Writing highlight markup: the inverse of [`parse_markup`](super::markup::parse_markup).
//!
//! [`to_markup`] puts `**` around spans of a plain text and escapes the text's own `**` as
//! `\**`, so that parsing the result gives back exactly the text and the spans. Not every span
//! can be written that way (`a*` followed by `**` reads as `***`), so the spans are first made
//! safe by [`markup_safe`]; code that keeps spans alongside their markup (the eval annotator)
//! applies the same function, so both agree.

use super::markup::merge_spans;
use std::ops::Range;

/// The text with `**` around each span (and any literal `**` in the text escaped as `\**`), i.e.
/// the markup form that `spotlight run` parses.
///
/// Spans are clamped to the text, snapped outwards to char boundaries, merged when they overlap
/// or touch, and dropped when empty or blank. A span boundary next to a `*` or `\` cannot always
/// be written unambiguously (`a*` followed by `**` reads as `***`), so such a span is widened over
/// the adjacent stars and backslashes (or, at the very end of the text, shrunk). Parsing the
/// result gives back exactly `text` and [`markup_safe`]`(text, spans)`.
pub fn to_markup(text: &str, spans: &[Range<usize>]) -> String {
    let spans = markup_safe(text, spans);
    let mut out = String::with_capacity(text.len() + 4 * spans.len() + 8);
    let mut at = 0;
    for r in &spans {
        out.push_str(&text[at..r.start].replace("**", "\\**"));
        out.push_str("**");
        out.push_str(&text[r.clone()].replace("**", "\\**"));
        out.push_str("**");
        at = r.end;
    }
    out.push_str(&text[at..].replace("**", "\\**"));
    out
}

/// The spans [`to_markup`] writes for `spans`: sorted, apart (touching spans must merge, because
/// `**a****b**` is not valid markup), on char boundaries, not blank, and with boundaries that
/// `**` can be placed at unambiguously.
pub fn markup_safe(text: &str, spans: &[Range<usize>]) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut v: Vec<Range<usize>> = spans
        .iter()
        .map(|r| {
            let mut s = r.start.min(text.len());
            let mut e = r.end.min(text.len()).max(s);
            if s == e {
                // Empty (or reversed) stays empty and is dropped below: snapping it outwards
                // inside a multi-byte char would invent a one-char highlight (found by
                // examples/property_runs.rs).
                return 0..0;
            }
            while !text.is_char_boundary(s) {
                s -= 1;
            }
            while !text.is_char_boundary(e) {
                e += 1;
            }
            s..e
        })
        .filter(|r| !text[r.clone()].trim().is_empty())
        .collect();
    // Widening can make a span touch its neighbour, and merging can create a new unsafe boundary, so repeat until
    // nothing changes. Every pass only widens or drops spans, hence this terminates.
    loop {
        let before = v.len();
        let merged = merge_spans(std::mem::take(&mut v));
        let mut changed = merged.len() != before;
        for r in merged {
            let fixed = make_safe(b, r.clone());
            changed |= fixed.as_ref() != Some(&r);
            if let Some(f) = fixed {
                if !text[f.clone()].trim().is_empty() {
                    v.push(f);
                }
            }
        }
        if !changed {
            return v;
        }
    }
}

/// Whether `**` markers at the ends of `r` parse back as exactly `r` (given that all other text escapes `**` as
/// `\**`). The markup parser reads `\**` as an escape and merges adjacent stars into one run, so the characters on
/// both sides of each marker matter; all of them are ASCII, which keeps the byte arithmetic on char boundaries.
fn boundary_ok(b: &[u8], r: &Range<usize>) -> bool {
    let content = &b[r.clone()];
    let before_ok = r.start == 0 || !matches!(b[r.start - 1], b'*' | b'\\');
    let after_ok = r.end == b.len() || b[r.end] != b'*';
    // A trailing `\` would escape the closing marker; so would `\*` (escaped as is, giving `\***`). A lone `*` would
    // form a run of five stars with both markers.
    let end_ok = !content.ends_with(b"\\") && !content.ends_with(b"\\*") && content != b"*";
    before_ok && after_ok && end_ok
}

/// Widen `r` until its markers are unambiguous; at the end of the text, where it cannot grow, shrink it instead.
/// `None` if nothing is left.
fn make_safe(b: &[u8], mut r: Range<usize>) -> Option<Range<usize>> {
    while !boundary_ok(b, &r) {
        if r.start > 0 && matches!(b[r.start - 1], b'*' | b'\\') {
            r.start -= 1;
        } else if r.end < b.len() {
            // The offending byte is ASCII (`*` after the span, or `\`/`*` at its end); step over one whole char.
            r.end += utf8_len(b[r.end]);
        } else {
            // At the very end: drop trailing stars and backslashes, then give up if a star still follows.
            while r.end > r.start && matches!(b[r.end - 1], b'*' | b'\\') {
                r.end -= 1;
            }
            return (r.start < r.end && boundary_ok(b, &r)).then_some(r);
        }
    }
    Some(r)
}

/// Byte length of the UTF-8 sequence that starts with `first`.
fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
// One-element lists of spans are ordinary test data here, not a typo for a collected range.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use crate::spotlight::markup::{parse_markup, Highlighted};
    use proptest::prelude::*;

    /// Undo `to_markup` by hand: drop `**` markers and turn `\**` back into `**`.
    fn strip_markup(markup: &str) -> String {
        let mut out = String::new();
        let mut rest = markup;
        while let Some(c) = rest.chars().next() {
            if let Some(r) = rest.strip_prefix("\\**") {
                out.push_str("**");
                rest = r;
            } else if let Some(r) = rest.strip_prefix("**") {
                rest = r;
            } else {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        out
    }

    #[test]
    fn markup_wraps_spans_and_escapes_literal_stars() {
        let p = "Use **bold** words. Do not use commas. Separate with ***.";
        let at = p.find("Do not").unwrap();
        let m = to_markup(p, &[at..at + "Do not use commas.".len()]);
        assert_eq!(m, r"Use \**bold\** words. **Do not use commas.** Separate with \***.");
        assert_eq!(strip_markup(&m), p);
        assert_eq!(
            to_markup(p, &[]),
            r"Use \**bold\** words. Do not use commas. Separate with \***."
        );
    }

    /// `to_markup` with a single span.
    fn mark(text: &str, span: Range<usize>) -> String {
        to_markup(text, std::slice::from_ref(&span))
    }

    #[test]
    fn markup_widens_spans_next_to_stars_and_backslashes() {
        // A span right after `*` would turn the marker into a run of three stars; it grows over the star instead.
        assert_eq!(mark("a*bc", 2..4), "a***bc**");
        assert_eq!(parse_markup("a***bc**").unwrap().spans.first(), Some(&(1..4)));
        // A span ending in a backslash would escape its closing marker.
        assert_eq!(mark(r"ab\c", 0..3), r"**ab\c**");
        // ...and at the very end of the text it shrinks instead.
        assert_eq!(mark(r"ab\", 0..3), r"**ab**\");
        // Touching spans merge; empty, blank and out-of-range spans are dropped or clamped.
        assert_eq!(to_markup("abcd", &[0..2, 2..4]), "**abcd**");
        assert_eq!(to_markup("ab  cd", &[2..4, 3..3, 9..12]), "ab  cd");
        assert_eq!(mark("abcd", 2..40), "ab**cd**");
        // Spans are snapped outwards to char boundaries; empty and reversed ones inside a char
        // stay empty.
        assert_eq!(mark("aéb", 2..3), "a**é**b");
        assert_eq!(mark("aéb", 2..2), "aéb");
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = 2..1;
        assert_eq!(mark("aéb", reversed), "aéb");
    }

    #[test]
    fn markup_round_trips_exhaustively_on_a_small_alphabet() {
        // Every string of up to 5 chars over the characters that matter to the markup parser, with every single span
        // and every pair of spans (byte ranges, including ones inside `é`).
        let alphabet = ['*', '\\', 'a', ' ', 'é'];
        let mut texts = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = texts
                .iter()
                .filter(|t| t.chars().count() == texts.last().map_or(0, |l| l.chars().count()))
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            texts.extend(longer);
        }
        for t in &texts {
            let n = t.len();
            let ranges: Vec<Range<usize>> = (0..=n).flat_map(|s| (s..=n).map(move |e| s..e)).collect();
            let mut cases: Vec<Vec<Range<usize>>> = ranges.iter().map(|r| vec![r.clone()]).collect();
            if n <= 4 {
                for a in &ranges {
                    for b in &ranges {
                        cases.push(vec![a.clone(), b.clone()]);
                    }
                }
            }
            for spans in cases {
                let m = to_markup(t, &spans);
                assert_eq!(strip_markup(&m), *t, "{t:?} {spans:?} -> {m:?}");
                let h = parse_markup(&m).unwrap_or_else(|e| panic!("{t:?} {spans:?} -> {m:?}: {e}"));
                assert_eq!(h.text, *t, "{m:?}");
                assert_eq!(h.spans, markup_safe(t, &spans), "{t:?} {spans:?} -> {m:?}");
            }
        }
    }

    proptest! {
        #[test]
        fn writing_then_parsing_gives_the_text_and_the_safe_spans(
            text in prop_oneof![
                "[*\\\\ab é🎉\n\t]{0,40}",
                any::<String>(),
            ],
            // Arbitrary byte ranges: out of bounds, reversed, empty, inside a multi-byte char.
            spans in prop::collection::vec((0usize..48, 0usize..48), 0..6),
        ) {
            let spans: Vec<Range<usize>> = spans.into_iter().map(|(a, b)| a..b).collect();
            let safe = markup_safe(&text, &spans);
            // Made safe once, the spans stay as they are and give the same markup.
            prop_assert_eq!(&markup_safe(&text, &safe), &safe);
            let markup = to_markup(&text, &safe);
            prop_assert_eq!(&to_markup(&text, &spans), &markup);
            let parsed = parse_markup(&markup).map_err(|e| TestCaseError::fail(format!("{markup:?}: {e}")))?;
            prop_assert_eq!(parsed, Highlighted { text: text.clone(), spans: safe });
        }
    }
}
