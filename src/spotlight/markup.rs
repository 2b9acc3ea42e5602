//! Highlight markup for prompts.
//!
//! Users mark the parts of a prompt the model should attend to with
//! `**markdown bold**`. This module strips the markers and reports which byte
//! ranges of the cleaned text were highlighted, so later stages can map them
//! onto tokens. It also implements the marker-free alternatives
//! (`--markup off`, `--highlight SUBSTRING`) and the span/token arithmetic
//! they share.
//!
//! # Markup rules
//!
//! * `**text**` highlights `text`. The markers are removed; the span is the
//!   byte range of `text` in the cleaned output. Spans may cross newlines and
//!   an input may contain any number of them.
//! * `\**` is a literal `**`: the backslash is removed and no span boundary
//!   is created. The escape consumes exactly two stars, so `\***` is a
//!   literal `***`. Any other backslash is kept as is (prompts are full of
//!   paths and regexes, so only the one sequence that would otherwise be
//!   markup is special). Note that `\\**` therefore reads as a literal `\`
//!   followed by an escaped `**`.
//! * A single `*` is always literal (italics, bullet points, `a * b`).
//! * A run of exactly three stars is one marker plus a literal `*` that goes
//!   on the *inside* of the span: the marker is the first two stars of an
//!   opening run and the last two stars of a closing run. So `***a***`
//!   highlights `*a*`, mirroring Markdown's bold-italic where the italic star
//!   is kept as text because we do not interpret italics.
//! * A run of four stars outside a span is an empty highlight (error). Any
//!   other run of four or more stars is an error too, because it cannot be
//!   read as markup unambiguously; escape literal stars as `\**` or switch
//!   markup off.
//! * An opening marker without a closing one, and a span that is empty or
//!   only whitespace, are errors.
//!
//! Errors name the 1-based line and column (counted in characters, not bytes,
//! because that is what editors show) of the offending marker in the
//! original input.

use std::ops::Range;

/// Prompt text with markers removed and the highlighted byte ranges of that
/// cleaned text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Highlighted {
    /// Cleaned text: markers and escape backslashes removed.
    pub text: String,
    /// Highlighted byte ranges of `text`: sorted, non-overlapping, non-empty
    /// and on char boundaries.
    pub spans: Vec<Range<usize>>,
}

/// Why markup or a `--highlight` substring could not be turned into spans.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkupError {
    /// An opening `**` that is never closed.
    #[error("unbalanced `**` at line {line}, column {column}: no closing `**`")]
    Unbalanced { line: usize, column: usize },
    /// `****`, or a span containing only whitespace. Position is the opening
    /// marker.
    #[error("empty highlight at line {line}, column {column}")]
    EmptyHighlight { line: usize, column: usize },
    /// A run of four or more stars that is not a plain empty highlight.
    #[error(
        "ambiguous run of {count} `*` at line {line}, column {column}: \
         use `**` or `***` as a marker and write literal stars as `\\**`"
    )]
    StarRun { count: usize, line: usize, column: usize },
    /// A `--highlight` substring that is the empty string.
    #[error("highlight substring #{index} is empty")]
    EmptyNeedle { index: usize },
    /// A `--highlight` substring that does not occur in the prompt.
    #[error("highlight substring {needle:?} not found in the prompt")]
    NeedleNotFound { needle: String },
    /// A `--highlight` substring that occurs several times while the caller
    /// asked for a unique match.
    #[error(
        "highlight substring {needle:?} occurs {count} times in the prompt \
         (first at line {line}, column {column}); make it unique or pass --highlight-all"
    )]
    NeedleAmbiguous {
        needle: String,
        count: usize,
        line: usize,
        column: usize,
    },
}

/// 1-based line and character column of byte `offset` in `text`.
///
/// Computed only when an error is reported, so the parser does not have to
/// track positions on its hot path.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Parse `**span**` markup; see the module documentation for the rules.
pub fn parse_markup(input: &str) -> Result<Highlighted, MarkupError> {
    let bytes = input.as_bytes();
    let mut text = String::with_capacity(input.len());
    let mut spans = Vec::new();
    // Open span: (byte offset of its marker in `input`, start in `text`).
    let mut open: Option<(usize, usize)> = None;
    // Literal input not yet copied to `text` starts here. Copying whole
    // segments keeps multi-byte characters intact: every index we stop at is
    // an ASCII `*` or `\`, hence a char boundary.
    let mut copied_to = 0;
    let mut i = 0;

    while i < bytes.len() {
        match bytes[i] {
            b'\\' if bytes[i + 1..].starts_with(b"**") => {
                text.push_str(&input[copied_to..i]);
                text.push_str("**");
                i += 3;
                copied_to = i;
            }
            b'*' => {
                let run = bytes[i..].iter().take_while(|&&b| b == b'*').count();
                match (run, open) {
                    // A lone star is ordinary text; leave it in the segment.
                    (1, _) => {}
                    (2 | 3, None) => {
                        text.push_str(&input[copied_to..i]);
                        open = Some((i, text.len()));
                        if run == 3 {
                            text.push('*');
                        }
                        copied_to = i + run;
                    }
                    (2 | 3, Some((marker, start))) => {
                        text.push_str(&input[copied_to..i]);
                        if run == 3 {
                            text.push('*');
                        }
                        if text[start..].trim().is_empty() {
                            let (line, column) = line_column(input, marker);
                            return Err(MarkupError::EmptyHighlight { line, column });
                        }
                        spans.push(start..text.len());
                        open = None;
                        copied_to = i + run;
                    }
                    (4, None) => {
                        let (line, column) = line_column(input, i);
                        return Err(MarkupError::EmptyHighlight { line, column });
                    }
                    (count, _) => {
                        let (line, column) = line_column(input, i);
                        return Err(MarkupError::StarRun { count, line, column });
                    }
                }
                i += run;
            }
            _ => i += 1,
        }
    }
    text.push_str(&input[copied_to..]);

    if let Some((marker, _)) = open {
        let (line, column) = line_column(input, marker);
        return Err(MarkupError::Unbalanced { line, column });
    }
    Ok(Highlighted { text, spans })
}

/// Leave text as is: no spans (for `--markup off`).
pub fn plain(input: &str) -> Highlighted {
    Highlighted {
        text: input.to_owned(),
        spans: Vec::new(),
    }
}

/// Byte offsets of every occurrence of `needle` in `text`, overlapping ones
/// included: for uniqueness, `aa` in `aaa` is ambiguous, and a user asking
/// for all occurrences wants every place the phrase appears.
fn occurrences(text: &str, needle: &str) -> Vec<usize> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(pos) = text[from..].find(needle) {
        let at = from + pos;
        found.push(at);
        // Step one character, not one byte, to stay on a char boundary.
        from = at + text[at..].chars().next().map_or(1, char::len_utf8);
    }
    found
}

/// `--highlight SUBSTRING` (repeatable): locate each needle in `text`.
///
/// Errors if a needle is empty, not found, or found more than once unless
/// `all` is true (then every occurrence, overlapping ones included, is a
/// span). Spans are returned per needle in order of occurrence and are not
/// merged, so `&text[r]` is always one of the needles; use [`merge_spans`]
/// before mapping them onto tokens.
pub fn find_substrings(text: &str, needles: &[String], all: bool) -> Result<Vec<Range<usize>>, MarkupError> {
    let mut spans = Vec::new();
    for (index, needle) in needles.iter().enumerate() {
        if needle.is_empty() {
            return Err(MarkupError::EmptyNeedle { index });
        }
        let found = occurrences(text, needle);
        match found.as_slice() {
            [] => return Err(MarkupError::NeedleNotFound { needle: needle.clone() }),
            [first, _, ..] if !all => {
                let (line, column) = line_column(text, *first);
                return Err(MarkupError::NeedleAmbiguous {
                    needle: needle.clone(),
                    count: found.len(),
                    line,
                    column,
                });
            }
            _ => spans.extend(found.iter().map(|&at| at..at + needle.len())),
        }
    }
    Ok(spans)
}

/// Sort and merge overlapping or adjacent ranges.
///
/// Empty (and reversed) ranges are dropped because they highlight nothing
/// and would otherwise survive as zero-width entries.
pub fn merge_spans(mut spans: Vec<Range<usize>>) -> Vec<Range<usize>> {
    spans.retain(|r| r.start < r.end);
    spans.sort_unstable_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(spans.len());
    for r in spans {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// Given each token's byte range in a text and highlighted byte ranges of the
/// same text, return the indices (ascending) of tokens whose bytes overlap
/// any highlighted range (overlap = non-empty intersection). Tokens with
/// empty byte ranges are never highlighted.
///
/// A token that only partly overlaps a span counts: tokenizers rarely split
/// exactly at the user's markers, and dropping the boundary token would lose
/// the start or end of the highlighted phrase.
pub fn tokens_overlapping(token_ranges: &[Range<usize>], spans: &[Range<usize>]) -> Vec<usize> {
    // Merged spans are sorted by start and by end alike, so one binary search
    // per token finds the only span that can overlap it first.
    let spans = merge_spans(spans.to_vec());
    token_ranges
        .iter()
        .enumerate()
        .filter(|(_, tok)| {
            if tok.start >= tok.end {
                return false;
            }
            let first_ending_after = spans.partition_point(|s| s.end <= tok.start);
            spans.get(first_ending_after).is_some_and(|s| s.start < tok.end)
        })
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
// One-element lists of spans are ordinary test data here, not a typo for a
// collected range.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(input: &str) -> Highlighted {
        parse_markup(input).unwrap_or_else(|e| panic!("{input:?}: {e}"))
    }

    /// Highlighted substrings, for readable assertions.
    fn highlighted(h: &Highlighted) -> Vec<&str> {
        h.spans.iter().map(|r| &h.text[r.clone()]).collect()
    }

    fn needles(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_markers_leaves_text_unchanged() {
        let input = "plain text, a * b, C:\\path\\ and ü 🎉";
        assert_eq!(ok(input), plain(input));
        assert_eq!(ok(""), plain(""));
    }

    #[test]
    fn single_span() {
        let h = ok("Answer **only in French** please");
        assert_eq!(h.text, "Answer only in French please");
        assert_eq!(h.spans, vec![7..21]);
        assert_eq!(highlighted(&h), ["only in French"]);
    }

    #[test]
    fn several_spans_and_span_at_both_ends() {
        let h = ok("**a** b **c** d **e**");
        assert_eq!(h.text, "a b c d e");
        assert_eq!(highlighted(&h), ["a", "c", "e"]);
        assert_eq!(h.spans, vec![0..1, 4..5, 8..9]);
    }

    #[test]
    fn span_crosses_newlines() {
        let h = ok("x **line one\nline two** y");
        assert_eq!(h.text, "x line one\nline two y");
        assert_eq!(highlighted(&h), ["line one\nline two"]);
    }

    #[test]
    fn intraword_markers_are_markers() {
        let h = ok("un**believ**able");
        assert_eq!(h.text, "unbelievable");
        assert_eq!(highlighted(&h), ["believ"]);
    }

    #[test]
    fn non_ascii_offsets_are_bytes_on_char_boundaries() {
        let h = ok("café **naïve 🎉 résumé** 日本");
        assert_eq!(h.text, "café naïve 🎉 résumé 日本");
        assert_eq!(highlighted(&h), ["naïve 🎉 résumé"]);
        let r = h.spans[0].clone();
        assert_eq!(r.start, "café ".len());
        assert!(h.text.is_char_boundary(r.start) && h.text.is_char_boundary(r.end));
    }

    #[test]
    fn escaped_markers_are_literal() {
        let h = ok(r"2 \** 3 = 8");
        assert_eq!(h.text, "2 ** 3 = 8");
        assert!(h.spans.is_empty());
        // An escaped pair inside a span neither closes it nor ends up escaped.
        let h = ok(r"**x \** y**");
        assert_eq!(h.text, "x ** y");
        assert_eq!(highlighted(&h), ["x ** y"]);
    }

    #[test]
    fn escape_consumes_exactly_two_stars() {
        assert_eq!(ok(r"\***").text, "***");
        let h = ok(r"\****b**");
        assert_eq!(h.text, "**b");
        assert_eq!(highlighted(&h), ["b"]);
    }

    #[test]
    fn other_backslashes_stay_literal() {
        let h = ok(r"C:\dir\file \n \* \\ end\");
        assert_eq!(h.text, r"C:\dir\file \n \* \\ end\");
        assert!(h.spans.is_empty());
        // `\\**` = literal backslash + escaped `**`.
        assert_eq!(ok(r"a\\**b").text, r"a\**b");
    }

    #[test]
    fn single_stars_are_literal() {
        let h = ok("* item\n* 2 * 3 **x*y**");
        assert_eq!(h.text, "* item\n* 2 * 3 x*y");
        assert_eq!(highlighted(&h), ["x*y"]);
    }

    #[test]
    fn triple_stars_keep_one_star_inside_the_span() {
        let h = ok("say ***hi*** now");
        assert_eq!(h.text, "say *hi* now");
        assert_eq!(highlighted(&h), ["*hi*"]);
        // Mixed: the extra star is inside whichever side has three.
        assert_eq!(highlighted(&ok("***a** b")), ["*a"]);
        assert_eq!(highlighted(&ok("**a*** b")), ["a*"]);
    }

    #[test]
    fn unbalanced_marker_reports_opening_position() {
        let err = parse_markup("ok **a** then\n  **never closed").unwrap_err();
        assert_eq!(err, MarkupError::Unbalanced { line: 2, column: 3 });
        assert_eq!(err.to_string(), "unbalanced `**` at line 2, column 3: no closing `**`");
        assert_eq!(
            parse_markup("**").unwrap_err(),
            MarkupError::Unbalanced { line: 1, column: 1 }
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(
            parse_markup("é🎉 **x").unwrap_err(),
            MarkupError::Unbalanced { line: 1, column: 4 }
        );
    }

    #[test]
    fn empty_highlight() {
        let err = parse_markup("a\nb ****").unwrap_err();
        assert_eq!(err, MarkupError::EmptyHighlight { line: 2, column: 3 });
        assert_eq!(err.to_string(), "empty highlight at line 2, column 3");
    }

    #[test]
    fn whitespace_only_highlight_is_empty() {
        assert_eq!(
            parse_markup("x ** \n\t ** y").unwrap_err(),
            MarkupError::EmptyHighlight { line: 1, column: 3 }
        );
    }

    #[test]
    fn long_star_runs_are_rejected() {
        let err = parse_markup("rating: *****").unwrap_err();
        assert_eq!(
            err,
            MarkupError::StarRun {
                count: 5,
                line: 1,
                column: 9
            }
        );
        assert!(err.to_string().contains("run of 5 `*`"));
        // `****` inside a span would be "close, then reopen": too ambiguous.
        assert!(matches!(
            parse_markup("**a****b**"),
            Err(MarkupError::StarRun { count: 4, .. })
        ));
        // Escaping is the way out.
        assert_eq!(ok(r"\**\**\**").text, "******");
    }

    #[test]
    fn plain_keeps_markers() {
        assert_eq!(
            plain("**a**"),
            Highlighted {
                text: "**a**".into(),
                spans: vec![]
            }
        );
    }

    #[test]
    fn find_substrings_unique() {
        let text = "the cat sat on the mat";
        let spans = find_substrings(text, &needles(&["cat", "mat"]), false).unwrap();
        assert_eq!(spans, vec![4..7, 19..22]);
    }

    #[test]
    fn find_substrings_errors() {
        let text = "the cat sat on\nthe mat";
        assert_eq!(
            find_substrings(text, &needles(&["cat", ""]), false),
            Err(MarkupError::EmptyNeedle { index: 1 })
        );
        assert_eq!(
            find_substrings(text, &needles(&["dog"]), false),
            Err(MarkupError::NeedleNotFound { needle: "dog".into() })
        );
        let err = find_substrings(text, &needles(&["at"]), false).unwrap_err();
        assert_eq!(
            err,
            MarkupError::NeedleAmbiguous {
                needle: "at".into(),
                count: 3,
                line: 1,
                column: 6
            }
        );
        assert!(err.to_string().contains("occurs 3 times"));
    }

    #[test]
    fn find_substrings_all_includes_overlaps() {
        let spans = find_substrings("aaa é é", &needles(&["aa", "é"]), true).unwrap();
        assert_eq!(spans, vec![0..2, 1..3, 4..6, 7..9]);
        // Overlapping occurrences make a needle ambiguous too.
        assert!(find_substrings("aaa", &needles(&["aa"]), false).is_err());
    }

    #[test]
    fn merge_spans_sorts_merges_and_drops_empty() {
        assert_eq!(
            merge_spans(vec![8..9, 0..2, 1..3, 3..4, 6..6, 10..12, 11..11]),
            vec![0..4, 8..9, 10..12]
        );
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = vec![5..2];
        assert_eq!(merge_spans(reversed), Vec::<Range<usize>>::new());
        assert_eq!(merge_spans(vec![]), Vec::<Range<usize>>::new());
    }

    #[test]
    fn tokens_overlapping_uses_nonempty_intersection() {
        // Tokens: "ab" "cd" "" "ef" "gh"
        let tokens = [0..2, 2..4, 4..4, 4..6, 6..8];
        // Span covering exactly "cd": touching neighbours are not highlighted.
        assert_eq!(tokens_overlapping(&tokens, &[2..4]), vec![1]);
        // Partial overlap counts; the empty token at 4 is never highlighted.
        assert_eq!(tokens_overlapping(&tokens, &[3..5]), vec![1, 3]);
        // Unsorted, overlapping spans are fine.
        assert_eq!(tokens_overlapping(&tokens, &[7..8, 0..1, 0..2]), vec![0, 4]);
        assert_eq!(tokens_overlapping(&tokens, &[]), Vec::<usize>::new());
        assert_eq!(tokens_overlapping(&tokens, &[4..4]), Vec::<usize>::new());
    }

    /// Check the invariants every successful parse must uphold.
    fn assert_well_formed(h: &Highlighted) -> Result<(), TestCaseError> {
        let mut prev_end = 0;
        for (i, r) in h.spans.iter().enumerate() {
            prop_assert!(r.start < r.end, "span {i} empty: {r:?}");
            prop_assert!(r.end <= h.text.len(), "span {i} out of bounds");
            prop_assert!(h.text.is_char_boundary(r.start));
            prop_assert!(h.text.is_char_boundary(r.end));
            prop_assert!(i == 0 || r.start >= prev_end, "spans unsorted/overlapping");
            prev_end = r.end;
        }
        Ok(())
    }

    /// Text segments that contain no markup characters.
    fn segment() -> impl Strategy<Value = String> {
        "[^*\\\\]{0,8}"
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_input(input in any::<String>()) {
            if let Ok(h) = parse_markup(&input) {
                assert_well_formed(&h)?;
            }
        }

        #[test]
        fn never_panics_on_star_and_backslash_heavy_input(
            input in "[*\\\\a é🎉\n]{0,40}"
        ) {
            if let Ok(h) = parse_markup(&input) {
                assert_well_formed(&h)?;
                // Only markers and escape backslashes are ever removed.
                prop_assert!(h.text.len() <= input.len());
            }
        }

        #[test]
        fn segments_round_trip(parts in prop::collection::vec((segment(), any::<bool>()), 0..8)) {
            let mut input = String::new();
            let mut expected_text = String::new();
            let mut expected_spans = Vec::new();
            let mut prev_wrapped = false;
            for (seg, want) in &parts {
                // Blank spans are an error by design; leave them unwrapped.
                let wrap = *want && !seg.trim().is_empty();
                if wrap && prev_wrapped {
                    // `**a****b**` is rejected on purpose, so keep wrapped
                    // neighbours apart with a plain separator.
                    input.push('|');
                    expected_text.push('|');
                }
                if wrap {
                    input.push_str("**");
                    expected_spans.push(expected_text.len()..expected_text.len() + seg.len());
                }
                input.push_str(seg);
                expected_text.push_str(seg);
                if wrap {
                    input.push_str("**");
                }
                // An empty plain segment does not separate two spans.
                if wrap || !seg.is_empty() {
                    prev_wrapped = wrap;
                }
            }
            let h = parse_markup(&input).map_err(|e| TestCaseError::fail(format!("{input:?}: {e}")))?;
            prop_assert_eq!(&h.text, &expected_text);
            prop_assert_eq!(&h.spans, &expected_spans);
            assert_well_formed(&h)?;
        }

        #[test]
        fn escaping_every_pair_yields_literal_text(input in "[*a é\n]{0,30}") {
            let escaped = input.replace("**", "\\**");
            prop_assert_eq!(parse_markup(&escaped), Ok(plain(&input)));
        }

        #[test]
        fn find_substrings_spans_match_needles(
            text in "[ab é🎉]{1,24}",
            picks in prop::collection::vec((any::<prop::sample::Index>(), 1usize..5), 1..4),
            all in any::<bool>(),
        ) {
            // Needles are taken from the text itself so most of them exist.
            let chars: Vec<(usize, char)> = text.char_indices().collect();
            let needles: Vec<String> = picks
                .iter()
                .map(|(idx, len)| {
                    let start = idx.index(chars.len());
                    let end = (start + len).min(chars.len());
                    let from = chars[start].0;
                    let to = chars.get(end).map_or(text.len(), |c| c.0);
                    text[from..to].to_string()
                })
                .collect();
            match find_substrings(&text, &needles, all) {
                Ok(spans) => {
                    prop_assert!(!spans.is_empty());
                    for r in &spans {
                        prop_assert!(needles.iter().any(|n| &text[r.clone()] == n));
                    }
                    if !all {
                        prop_assert_eq!(spans.len(), needles.len());
                        for (r, n) in spans.iter().zip(&needles) {
                            prop_assert_eq!(&text[r.clone()], n.as_str());
                        }
                    }
                }
                Err(e) => {
                    prop_assert!(!all, "all=true cannot fail for present needles: {}", e);
                    prop_assert!(matches!(e, MarkupError::NeedleAmbiguous { .. }), "{}", e);
                }
            }
        }

        #[test]
        fn merge_spans_is_sorted_disjoint_and_covers_same_bytes(
            spans in prop::collection::vec((0usize..40, 0usize..10), 0..10)
        ) {
            let spans: Vec<Range<usize>> = spans.into_iter().map(|(s, l)| s..s + l).collect();
            let merged = merge_spans(spans.clone());
            for w in merged.windows(2) {
                // Strictly apart: adjacent ranges must have been merged.
                prop_assert!(w[0].end < w[1].start);
            }
            for b in 0..50 {
                let before = spans.iter().any(|r| r.contains(&b));
                let after = merged.iter().any(|r| r.contains(&b));
                prop_assert_eq!(before, after, "byte {}", b);
            }
        }

        #[test]
        fn tokens_overlapping_matches_brute_force(
            cuts in prop::collection::btree_set(0usize..40, 0..12),
            spans in prop::collection::vec((0usize..40, 0usize..8), 0..5),
        ) {
            let cuts: Vec<usize> = cuts.into_iter().collect();
            let tokens: Vec<Range<usize>> = cuts.windows(2).map(|w| w[0]..w[1]).collect();
            let spans: Vec<Range<usize>> = spans.into_iter().map(|(s, l)| s..s + l).collect();
            let expected: Vec<usize> = tokens
                .iter()
                .enumerate()
                .filter(|(_, t)| spans.iter().any(|s| s.start.max(t.start) < s.end.min(t.end)))
                .map(|(i, _)| i)
                .collect();
            prop_assert_eq!(tokens_overlapping(&tokens, &spans), expected);
        }
    }
}
