//! Splitting a prompt into the sentences the rules choose from (the rules of step 1 in the
//! module documentation of `annotate`).

use super::patterns::{re, PS_NO_DOT};
use std::ops::Range;

/// Quotations longer than this (in bytes) are treated as quoted passages rather than phrases: they are split into
/// sentences and cut off from the surrounding instruction, so that highlighting the instruction does not also
/// highlight a paragraph of text to rewrite.
const LONG_QUOTE: usize = 120;

/// Split `text` into trimmed, non-empty sentence ranges (see the module documentation for the rules).
pub(super) fn split_sentences(text: &str) -> Vec<Range<usize>> {
    let quotes = quote_pairs(text);
    // Short quotes are phrases: no cut may fall strictly inside them.
    let protected: Vec<Range<usize>> = quotes.iter().filter(|q| !is_long(text, q)).cloned().collect();
    let inside = |pos: usize| protected.iter().any(|q| q.start < pos && pos < q.end);
    let mut cuts: Vec<usize> = Vec::new();

    for q in &quotes {
        if is_long(text, q) {
            cuts.push(q.start);
            cuts.push(q.end);
        } else if ends_sentence_after_quote(text, q) {
            cuts.push(q.end);
        }
    }

    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        if c == '\n' {
            if !continues_line(text, pos) {
                cuts.push(pos);
            }
            i += 1;
            continue;
        }
        if !matches!(c, '.' | '!' | '?' | '…') || inside(pos) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && matches!(chars[j].1, '.' | '!' | '?' | '…') {
            j += 1;
        }
        // Only a lone `.` can be an abbreviation; "etc.." or "?!" end the sentence.
        let single_dot = c == '.' && j == i + 1;
        // Closing quotes and brackets belong to the sentence they close, unless they close a protected quote that
        // started after the sentence (then they are not ours to take).
        while j < chars.len() && matches!(chars[j].1, '"' | '”' | '’' | '\'' | ')' | ']') && !inside(chars[j].0) {
            j += 1;
        }
        let end = chars.get(j).map_or(text.len(), |c| c.0);
        let next = chars.get(j).map(|c| c.1);
        let at_ws = next.is_none_or(char::is_whitespace);
        if at_ws && !(single_dot && abbreviation_blocks(text, pos, end)) {
            cuts.push(end);
        }
        i = j.max(i + 1);
    }

    // "starting with P.P.S The response must ..." : the marker has no final dot, yet a sentence ends after it.
    for m in re(&PS_NO_DOT).find_iter(text) {
        let cut = m.start() + m.as_str().find([' ', '\t']).unwrap_or(m.len());
        if !inside(cut) {
            cuts.push(cut);
        }
    }

    cuts.push(0);
    cuts.push(text.len());
    cuts.sort_unstable();
    cuts.dedup();

    let mut segs: Vec<Range<usize>> = cuts.windows(2).filter_map(|w| trim_range(text, w[0]..w[1])).collect();
    merge_letterless(text, &mut segs);
    segs
}

/// Pairs of double quotes (`"`, `“`, `”` all toggle, because prompts mix them: `”My answer is yes."`), as ranges
/// from the opening quote to just after the closing one. An unpaired last quote is ignored.
pub(super) fn quote_pairs(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut open: Option<usize> = None;
    for (pos, c) in text.char_indices() {
        if matches!(c, '"' | '“' | '”') {
            match open.take() {
                None => open = Some(pos),
                Some(start) => out.push(start..pos + c.len_utf8()),
            }
        }
    }
    out
}

fn is_long(text: &str, q: &Range<usize>) -> bool {
    q.len() > LONG_QUOTE || text[q.clone()].contains('\n')
}

/// A short quote that ends with sentence punctuation and is followed by a new capitalised sentence ("...anonymous."
/// What are...) ends the sentence, although the punctuation inside it is protected.
fn ends_sentence_after_quote(text: &str, q: &Range<usize>) -> bool {
    let inner = text[q.clone()].trim_end_matches(['"', '“', '”']).trim_end();
    if !inner.ends_with(['.', '!', '?']) {
        return false;
    }
    let rest = &text[q.end..];
    let trimmed = rest.trim_start();
    if trimmed.is_empty() {
        return true;
    }
    rest.starts_with(char::is_whitespace) && trimmed.starts_with(|c: char| c.is_uppercase() || c.is_ascii_digit())
}

/// A line break inside a sentence ("Mark the beginning\nof each advertisement"): a single break between a word or
/// comma and a lowercase word. Everything else (blank lines, list items, capitalised lines) is a boundary.
fn continues_line(text: &str, nl: usize) -> bool {
    let before = text[..nl].trim_end_matches([' ', '\t', '\r']);
    let after = &text[nl + 1..];
    let prev_ok = before
        .chars()
        .next_back()
        .is_some_and(|c| c.is_alphanumeric() || c == ',');
    let next_ok = after.chars().next().is_some_and(|c| c.is_lowercase());
    prev_ok && next_ok
}

/// Whether the single `.` at `dot` (sentence would end at `end`) belongs to an abbreviation or a list number and so
/// does not end the sentence.
fn abbreviation_blocks(text: &str, dot: usize, end: usize) -> bool {
    let before = &text[..dot];
    let tok_start = before
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '.'))
        .map_or(0, |(p, c)| p + c.len_utf8());
    let tok = &before[tok_start..];
    if tok.is_empty() {
        return false;
    }
    let next_upper = text[end..].trim_start().starts_with(|c: char| c.is_uppercase());
    let lower = tok.to_lowercase();
    const NEVER: [&str; 13] = [
        "i.e", "e.g", "mr", "mrs", "ms", "dr", "prof", "vs", "cf", "approx", "jr", "sr", "st",
    ];
    if NEVER.contains(&lower.as_str()) {
        return true;
    }
    // Dotted abbreviations (U.S., P.S., a.m.) and "etc." end a sentence only before a capitalised word.
    if tok.contains('.') || lower == "etc" {
        return !next_upper;
    }
    // List numbers: "1. Do not ..." at the start of a line or after "(", ";" or ":" ("(Notes: 1. do not ...; 2.
    // the request ..."), and any small number before a lowercase word. Initials are not special: "SECTION X. Finish"
    // is more common in prompts than "George P. Smith".
    if tok.len() <= 3 && tok.bytes().all(|b| b.is_ascii_digit()) {
        let line_prefix = before[..tok_start].rsplit('\n').next().unwrap_or("");
        let next_lower = text[end..].trim_start().starts_with(|c: char| c.is_lowercase());
        return line_prefix.trim().is_empty() || line_prefix.trim_end().ends_with(['(', ';', ':']) || next_lower;
    }
    false
}

fn trim_range(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let s = &text[r.clone()];
    let lead = s.len() - s.trim_start().len();
    let trail = s.len() - s.trim_end().len();
    (lead + trail < s.len()).then(|| r.start + lead..r.end - trail)
}

/// Fold fragments without any letter ("1.", a stray `"`) into the neighbouring sentence on the same line, so they
/// neither become sentences of their own nor split one. Letterless lines (`******`) stay separate: they are format
/// examples, not instructions.
fn merge_letterless(text: &str, segs: &mut Vec<Range<usize>>) {
    let mut i = 0;
    while i < segs.len() {
        if text[segs[i].clone()].chars().any(char::is_alphabetic) || segs.len() == 1 {
            i += 1;
            continue;
        }
        let same_line = |a: &Range<usize>, b: &Range<usize>| !text[a.end..b.start].contains('\n');
        if i > 0 && same_line(&segs[i - 1], &segs[i]) {
            segs[i - 1].end = segs[i].end;
            segs.remove(i);
        } else if i + 1 < segs.len() && same_line(&segs[i], &segs[i + 1]) {
            segs[i + 1].start = segs[i].start;
            segs.remove(i);
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentences(text: &str) -> Vec<&str> {
        split_sentences(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn splits_on_terminators_and_newlines() {
        assert_eq!(
            sentences("Write a poem. Is it good? Yes!\nNext line\n\n  Last one.  "),
            ["Write a poem.", "Is it good?", "Yes!", "Next line", "Last one."]
        );
        assert_eq!(
            sentences("One sentence without a stop"),
            ["One sentence without a stop"]
        );
        assert!(sentences("").is_empty());
        assert!(sentences(" \n\t ").is_empty());
    }

    #[test]
    fn abbreviations_and_list_numbers_do_not_split() {
        assert_eq!(
            sentences("Include a title in double angular brackets, i.e. <<title>>. Use e.g. this."),
            [
                "Include a title in double angular brackets, i.e. <<title>>.",
                "Use e.g. this."
            ]
        );
        assert_eq!(
            sentences("Do this:\n1. Do not include any commas.\n2. Use at least 250 words."),
            [
                "Do this:",
                "1. Do not include any commas.",
                "2. Use at least 250 words."
            ]
        );
        assert_eq!(
            sentences("Then answer (1. do not say any words; 2. the request does not include this sentence)"),
            ["Then answer (1. do not say any words; 2. the request does not include this sentence)"]
        );
        assert_eq!(
            sentences("Mrs. Smith paid 3.5 dollars."),
            ["Mrs. Smith paid 3.5 dollars."]
        );
        assert_eq!(
            sentences("Write about the U.S. economy. Mark it with SECTION X. Finish it."),
            ["Write about the U.S. economy.", "Mark it with SECTION X.", "Finish it."]
        );
    }

    #[test]
    fn postscript_markers_end_sentences_only_before_capitals() {
        assert_eq!(
            sentences("Add a postscript starting with P.S. The word sneaker should appear."),
            ["Add a postscript starting with P.S.", "The word sneaker should appear."]
        );
        assert_eq!(
            sentences("Add a postscript starting with P.P.S The response must contain placeholders."),
            [
                "Add a postscript starting with P.P.S",
                "The response must contain placeholders."
            ]
        );
        assert_eq!(
            sentences("Add a postscript starting with P.S. at the end."),
            ["Add a postscript starting with P.S. at the end."]
        );
    }

    #[test]
    fn short_quotes_stay_whole_and_long_quotes_are_cut_off() {
        assert_eq!(
            sentences("End it with \"Is there anything else I can help with?\". No other words should follow."),
            [
                "End it with \"Is there anything else I can help with?\".",
                "No other words should follow."
            ]
        );
        assert_eq!(
            sentences("\"Coincidence is God's way of remaining anonymous.\" What are your thoughts on this quote?"),
            [
                "\"Coincidence is God's way of remaining anonymous.\"",
                "What are your thoughts on this quote?"
            ]
        );
        assert_eq!(
            sentences("Answer with one of the following: ”My answer is yes.\", \"My answer is no.\"."),
            ["Answer with one of the following: ”My answer is yes.\", \"My answer is no.\"."]
        );
        let long = "Rewrite this, without commas: \"We may be able to improve our model for the next year. We will \
                    compare our data with the data from the previous year, and see how our model performed.\" Go.";
        assert_eq!(
            sentences(long),
            [
                "Rewrite this, without commas:",
                "\"We may be able to improve our model for the next year.",
                "We will compare our data with the data from the previous year, and see how our model performed.\"",
                "Go."
            ]
        );
    }

    #[test]
    fn wrapped_lines_join_and_letterless_lines_stay_apart() {
        assert_eq!(
            sentences("Mark the beginning\nof each advertisement with Audience 1. Done."),
            ["Mark the beginning\nof each advertisement with Audience 1.", "Done."]
        );
        assert_eq!(
            sentences("Separate them like this:\n[poem 1]\n******\n[poem 2]"),
            ["Separate them like this:", "[poem 1]", "******", "[poem 2]"]
        );
    }
}
