//! Rule-based highlighting of the constraint sentences of IFEval prompts.
//!
//! IFEval prompts say *what* to write and then state constraints ("Do not use any commas.", "Answer with at least
//! 300 words."), but nothing marks where the constraints are. [`annotate`] finds, for every instruction id of a
//! prompt, the sentence(s) that state that constraint, so that SpotLight can steer attention towards them. The rules
//! are deliberately simple and transparent: keyword cues and the instruction's own kwargs, no model. Users must be
//! able to predict what gets highlighted, hence the table below; bump [`RULES_VERSION`] whenever a rule changes so
//! that cached annotations and results can be told apart.
//!
//! # How a sentence is chosen
//!
//! 1. The prompt is split into sentences: at `.`, `!`, `?` followed by whitespace, and at line breaks. Short
//!    quotations (at most 120 bytes, one line) are never split, so `"Is there anything else I can help with?"` stays
//!    inside its sentence; longer quoted passages are split like running text and also cut off from the instruction
//!    that introduces them. Abbreviations (`i.e.`, `e.g.`, `Mr.`, list numbers such as `1.`) do not end a sentence;
//!    `P.S.` and `U.S.` end one only before a capitalised word. A line break ends a sentence unless it only wraps
//!    one (a word or comma, then a lowercase word). Spans are trimmed of whitespace.
//! 2. Each rule scores every sentence; a sentence without a cue scores 0 and is never chosen, nor is a sentence
//!    without letters (separator lines such as `******`). Kwargs that pin the wording (keywords, numbers, phrases)
//!    add to the score, so the sentence that states *this* constraint beats one that merely mentions the topic.
//!    Sentences that look like instructions (`your`, `response`, `must`, `should`, ...) get +1; markdown list items
//!    (`* This is a bullet`), which show a format rather than state it, get -4.
//! 3. The highest score wins; ties go to the shorter sentence, then to the earlier one. Some rules add a closely
//!    related neighbour (column "also").
//! 4. If no sentence scores, the instruction id is reported in [`Annotation::unmatched`].
//! 5. The chosen sentences of all instructions are merged into [`Annotation::spans`] (adjusted as described in
//!    [`to_markup`], which only matters next to literal `*` or `\`), with the ids that chose each span in
//!    [`Annotation::reasons`].
//!
//! # Rules
//!
//! Cues are case-insensitive unless noted. "number" means the kwarg's count (±1, because prompts say "at most 10"
//! for `less than 11`) written as digits or as a word (`five`, `twice`).
//!
//! | instruction id | cue (a sentence must contain) | score boosts | also |
//! |---|---|---|---|
//! | `punctuation:no_comma` | `comma`/`commas` | | |
//! | `change_case:english_lowercase` | `lowercase`/`lower case`/`lowercased`; or a negated `capital…`/`capitalized` ("no capital letters") | | |
//! | `change_case:english_capital` | `all capital letters`, `capital letters`, `capitalize`, `all caps`, `uppercase` | penalised when negated ("no capital letters") or about counted words ("words with all capital letters") | |
//! | `change_case:capital_word_frequency` | `word(s)` near `capital`/`caps`/`capitalized`/`uppercase`, or `capitalize … words` | number (`capital_frequency`); relation words | |
//! | `keywords:existence` | one of the `keywords` as a whole word | +5 per keyword, +3 if all; `include`/`use`/`mention`/`keyword`... | |
//! | `keywords:frequency` | the `keyword` as a whole word; or number + `times`/`at least`/... + `name`/`word` ("the name of the company at least five times") | number (`frequency`) with `times`/`at least`/`appear`/... | |
//! | `keywords:forbidden_words` | one of the `forbidden_words` as a whole word | +5 per word; a negated verb (`do not include`, `without`, `avoid`, `exclude`, `refrain`) | |
//! | `keywords:letter_frequency` | `letter X` (X = `letter`, optionally quoted); for a non-letter: the character itself, `#` also as `hashtag`, `!` as `exclamation` | number (`let_frequency`) | |
//! | `language:response_language` | the name of the language of `language` (ISO 639-1, e.g. `kn` → Kannada) | `language`, `only`/`entirely`, `no other language`, `response`/`answer`/`respond` | |
//! | `length_constraints:number_sentences` | a number within 3 words before `sentence(s)`; or `sentences` and any number | number (`num_sentences`) | |
//! | `length_constraints:number_paragraphs` | a number within 3 words before `paragraph(s)`/`section(s)`/`parts`/`stanzas`/`steps`/`chunks`/`pieces`; `***`/`divider`; `(exact/following) format below` | number (`num_paragraphs`); penalised with `highlight`/`italic`/`bullet` | adjacent divider or count sentence |
//! | `length_constraints:number_words` | a number within 3 words before `word(s)`; or `words` and `at least`/`less than`/`longer than`/... | number (`num_words`); penalised with `capital` (counted capital words) | |
//! | `length_constraints:nth_paragraph_first_word` | `first_word` as a whole word | `start`/`begin`; `paragraph` | the `number_paragraphs` sentence for `num_paragraphs` |
//! | `detectable_content:number_placeholders` | `placeholder(s)`; `square brackets` | number (`num_placeholders`) | |
//! | `detectable_content:postscript` | `postscript_marker` (case-sensitive; trailing `.` optional), `postscript`/`post script` | both present | |
//! | `detectable_format:number_bullet_lists` | `bullet` | number (`num_bullets`); `markdown` | |
//! | `detectable_format:constrained_response` | `one of the following`, `following phrases/options`, `choose from`; `My answer is` | | following option lines (`My answer is …`) |
//! | `detectable_format:number_highlighted_sections` | `highlight`, `italic`, `italicize`; `*text*` | number (`num_highlights`); `markdown`; penalised with `capital` | |
//! | `detectable_format:multiple_sections` | `section_spliter` followed by `X` or a digit (case-sensitive), or the splitter word alone | `section(s)`; number (`num_sections`) | adjacent count sentence |
//! | `detectable_format:json_format` | `JSON` | `format`/`wrap`/`entire`/`output`/`block` | |
//! | `detectable_format:title` | `<<…>>`; `angular`/`angle brackets` | `title` | |
//! | `combination:two_responses` | `******` or `six`/`6 asterisk(s)`; `two` (or `2`) within 3 words before `responses`/`answers`/`versions`/... | | adjacent sentence with the other cue |
//! | `combination:repeat_prompt` | outside the kwarg `prompt_to_repeat` (if it occurs in the prompt): `repeat`, `word for word`, `without change`, `before repeating`, `say any(thing)`, `first line`... | | every such sentence |
//! | `startend:end_checker` | the `end_phrase` (case-insensitive, any whitespace); without it: `end/finish … with` | `end`/`finish`/`last`/`final` | a cue sentence up to two before ("Finish the song with:") and what lies between, a following "no other words should follow" |
//! | `startend:quotation` | `double quot…`, `quotation marks`, `in quotes` | `wrap`/`entire`/`around`/`whole` | |
//!
//! Unknown instruction ids are reported as unmatched.

use regex::Regex;
use serde_json::{Map, Value};
use std::ops::Range;

/// Version of the rules above; bump it whenever a rule or the sentence splitter changes.
pub const RULES_VERSION: &str = "1";

/// Highlights for one IFEval prompt.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Annotation {
    pub key: i64,
    /// highlighted byte ranges of the prompt, sorted, merged, on char boundaries
    pub spans: Vec<Range<usize>>,
    /// instruction ids for which no span was found
    pub unmatched: Vec<String>,
    /// per span, the instruction ids whose rule chose it
    pub reasons: Vec<Vec<String>>,
}

/// Quotations longer than this (in bytes) are treated as quoted passages rather than phrases: they are split into
/// sentences and cut off from the surrounding instruction, so that highlighting the instruction does not also
/// highlight a paragraph of text to rewrite.
const LONG_QUOTE: usize = 120;

/// Find the constraint sentences of `prompt` for each of `instruction_ids` (with the matching `kwargs`; a missing
/// kwargs object counts as empty). See the module documentation for the rules.
pub fn annotate(key: i64, prompt: &str, instruction_ids: &[String], kwargs: &[Map<String, Value>]) -> Annotation {
    let empty = Map::new();
    let sents: Vec<Sent> = split_sentences(prompt)
        .into_iter()
        .map(|range| Sent::new(prompt, range))
        .collect();
    let mut chosen: Vec<(Range<usize>, &str)> = Vec::new();
    let mut unmatched = Vec::new();
    for (i, id) in instruction_ids.iter().enumerate() {
        let kw = Kw(kwargs.get(i).unwrap_or(&empty));
        let picked = choose(id, &kw, prompt, &sents);
        if picked.is_empty() {
            unmatched.push(id.clone());
        }
        for s in picked {
            chosen.push((sents[s].range.clone(), id.as_str()));
        }
    }
    let spans = markup_safe(prompt, &chosen.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>());
    // A chosen sentence lies inside exactly one merged span, because merging only ever grows spans.
    let reasons = spans
        .iter()
        .map(|span| {
            let mut ids: Vec<String> = Vec::new();
            for (r, id) in &chosen {
                if r.start < span.end && span.start < r.end && !ids.iter().any(|x| x == id) {
                    ids.push((*id).to_string());
                }
            }
            ids
        })
        .collect::<Vec<Vec<String>>>();
    // A sentence can be chosen and still lose its span, when no `**` can be placed around it
    // unambiguously (text like `*a*\\`): its instruction then has no highlight and is reported
    // as unmatched, like one whose rule found nothing.
    for id in instruction_ids {
        if !unmatched.contains(id) && !reasons.iter().flatten().any(|r| r == id) {
            unmatched.push(id.clone());
        }
    }
    Annotation {
        key,
        spans,
        unmatched,
        reasons,
    }
}

/// The prompt with `**` around each span (and any literal `**` in the prompt escaped as `\**`), i.e. the markup form
/// that `spotlight run` parses.
///
/// Spans are clamped to the prompt, snapped outwards to char boundaries, merged when they overlap or touch, and
/// dropped when empty or blank. A span boundary next to a `*` or `\` cannot always be written unambiguously (`a*`
/// followed by `**` reads as `***`), so such a span is widened over the adjacent stars and backslashes (or, at the
/// very end of the prompt, shrunk); [`annotate`] applies the same adjustment to its own spans, so parsing the markup
/// gives back exactly the prompt and [`Annotation::spans`].
pub fn to_markup(prompt: &str, spans: &[Range<usize>]) -> String {
    let spans = markup_safe(prompt, spans);
    let mut out = String::with_capacity(prompt.len() + 4 * spans.len() + 8);
    let mut at = 0;
    for r in &spans {
        out.push_str(&prompt[at..r.start].replace("**", "\\**"));
        out.push_str("**");
        out.push_str(&prompt[r.clone()].replace("**", "\\**"));
        out.push_str("**");
        at = r.end;
    }
    out.push_str(&prompt[at..].replace("**", "\\**"));
    out
}

/// Normalise spans (see [`to_markup`]) so that writing them as markup is unambiguous.
fn markup_safe(prompt: &str, spans: &[Range<usize>]) -> Vec<Range<usize>> {
    let b = prompt.as_bytes();
    let mut v: Vec<Range<usize>> = spans
        .iter()
        .map(|r| {
            let mut s = r.start.min(prompt.len());
            let mut e = r.end.min(prompt.len()).max(s);
            while !prompt.is_char_boundary(s) {
                s -= 1;
            }
            while !prompt.is_char_boundary(e) {
                e += 1;
            }
            s..e
        })
        .filter(|r| !prompt[r.clone()].trim().is_empty())
        .collect();
    v.sort_by_key(|r| (r.start, r.end));
    // Widening can make a span touch its neighbour, and merging can create a new unsafe boundary, so repeat until
    // nothing changes. Every pass only widens or drops spans, hence this terminates.
    loop {
        let merged = merge(&v);
        let mut changed = merged.len() != v.len();
        let mut next = Vec::with_capacity(merged.len());
        for r in merged {
            let fixed = make_safe(b, r.clone());
            changed |= fixed.as_ref() != Some(&r);
            if let Some(f) = fixed {
                if !prompt[f.clone()].trim().is_empty() {
                    next.push(f);
                }
            }
        }
        v = next;
        if !changed {
            return v;
        }
    }
}

/// Merge overlapping or touching ranges of a sorted list. Touching spans must merge because `**a****b**` is not
/// valid markup.
fn merge(v: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::with_capacity(v.len());
    for r in v {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r.clone()),
        }
    }
    out
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

/// Widen `r` until its markers are unambiguous; at the end of the prompt, where it cannot grow, shrink it instead.
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

// ---------------------------------------------------------------------------------------------------------------
// Sentence splitting
// ---------------------------------------------------------------------------------------------------------------

/// Split `text` into trimmed, non-empty sentence ranges (see the module documentation for the rules).
fn split_sentences(text: &str) -> Vec<Range<usize>> {
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
fn quote_pairs(text: &str) -> Vec<Range<usize>> {
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

// ---------------------------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------------------------

/// One sentence of the prompt with what the rules look at.
struct Sent<'a> {
    range: Range<usize>,
    text: &'a str,
    /// Lowercase alphanumeric tokens, for "a number shortly before a noun" cues.
    tokens: Vec<String>,
    has_letters: bool,
}

impl<'a> Sent<'a> {
    fn new(prompt: &'a str, range: Range<usize>) -> Self {
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

    fn has(&self, re: &Regex) -> bool {
        re.is_match(self.text)
    }

    /// Whether a number (digits or a number word) occurs at most `window` tokens before one of `nouns`. Returns the
    /// number found, or `None`.
    fn number_before(&self, nouns: &[&str], window: usize) -> Option<u64> {
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
    fn mentions_number(&self, n: Option<u64>) -> bool {
        let Some(n) = n else { return false };
        self.tokens
            .iter()
            .filter_map(|t| number_value(t))
            .any(|v| v == n || v + 1 == n || v == n + 1)
    }

    fn any_number(&self) -> bool {
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
struct Kw<'a>(&'a Map<String, Value>);

impl Kw<'_> {
    fn str(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
    }
    fn num(&self, k: &str) -> Option<u64> {
        self.0.get(k).and_then(Value::as_u64)
    }
    fn strs(&self, k: &str) -> Vec<&str> {
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

/// A lazily compiled built-in pattern.
struct Pat {
    src: &'static str,
    cell: std::sync::OnceLock<Regex>,
}

macro_rules! pat {
    ($name:ident, $src:expr) => {
        static $name: Pat = Pat {
            src: $src,
            cell: std::sync::OnceLock::new(),
        };
    };
}

fn re(p: &'static Pat) -> &'static Regex {
    // The patterns are constants exercised by the unit tests, so a failure here is a programming error.
    p.cell
        .get_or_init(|| Regex::new(p.src).expect("built-in pattern compiles"))
}

/// `word` as a whole word, case-insensitively; edges that are not word characters need no `\b`.
fn word_re(word: &str) -> Option<Regex> {
    let w = word.trim();
    let first = w.chars().next()?;
    let last = w.chars().next_back()?;
    let lb = if first.is_alphanumeric() || first == '_' {
        r"\b"
    } else {
        ""
    };
    let rb = if last.is_alphanumeric() || last == '_' {
        r"\b"
    } else {
        ""
    };
    let body = regex::escape(w).replace(' ', r"\s+");
    Regex::new(&format!("(?i){lb}{body}{rb}")).ok()
}

pat!(PS_NO_DOT, r"\bP\.(?:P\.)?S[ \t]+\p{Lu}");
pat!(
    INSTRUCTION,
    r"(?i)\b(?:your|response|answer|reply|output|entire|must|should|please|make sure)\b"
);
pat!(COMMA, r"(?i)\bcommas?\b");
pat!(LOWER, r"(?i)lower[\s-]?case|lowercased|\blowercases\b");
pat!(
    CAPITAL_ANY,
    r"(?i)\bcapital|\bcapitali[sz]|\bupper[\s-]?case|\ball[\s-]?caps\b"
);
pat!(
    NEGATED_CAPITAL,
    r"(?i)\b(?:no|not|without|never)\b(?:\s+\w+){0,8}\s+(?:capital|capitali[sz]|upper)"
);
pat!(
    CAPITAL,
    r"(?i)\ball\s+(?:capital|caps|upper[\s-]?case)|\bcapital\s+letters?\b|\bcapitali[sz]e\b|\bcapitali[sz]ed\b|\bupper[\s-]?case\b|\ball[\s-]caps\b|\bin\s+caps\b"
);
pat!(
    CAPITAL_WORDS,
    r"(?i)\b(?:words?|phrases?)\b.{0,40}?(?:capital|\bcaps\b|all-caps|upper[\s-]?case)|(?:capitali[sz]ed|all[\s-]caps|capital)\s+words\b|\bcapitali[sz]e\s+(?:a\s+few\s+|some\s+|\w+\s+)?words\b|\bstress\s+words\b"
);
pat!(
    RELATION,
    r"(?i)\b(?:at least|at most|less than|more than|fewer than|or more|or less|or fewer|times|limit|under|exactly)\b"
);
pat!(
    EXIST_CUE,
    r"(?i)\b(?:include|includes|including|contain|containing|use|mention|keywords?|words?|phrase|line|items|has|have)\b"
);
pat!(NAME_OR_WORD, r"(?i)\b(?:name|word|keyword|term)\b");
pat!(
    FREQ_CUE,
    r"(?i)\b(?:times?|at least|at most|less than|more than|fewer|once|twice|appears?|appearing|mention|use)\b"
);
pat!(
    FORBID_CUE,
    r"(?i)\b(?:not|never|don't|doesn't|cannot|can't)\b(?:\s+\w+){0,3}?\s+(?:use|using|include|including|mention|mentioning|say|saying|contain|containing|appear|be|add|have)\b|\b(?:avoid|exclude|without|refrain)\b|\bmust not\b"
);
pat!(LANG_CUE, r"(?i)\blanguage\b");
pat!(
    LANG_ONLY,
    r"(?i)\b(?:only|entirely|completely|no other language|outside of)\b"
);
pat!(LANG_RESP, r"(?i)\b(?:respond|response|answer|reply|written|write)\b");
pat!(SENTENCES, r"(?i)\bsentences\b");
pat!(WORDS, r"(?i)\bwords\b");
pat!(DIVIDER, r"(?i)\*\*\*|\bdivider\b");
pat!(
    FORMAT_BELOW,
    r"(?i)\bformat\s+below\b|\bfollowing\s+(?:exact\s+)?format\b|\bexact\s+format\b"
);
pat!(HIGHLIGHT_WORDS, r"(?i)\bhighlight|\bitalic|\bbullet");
pat!(PLACEHOLDER, r"(?i)\bplaceholders?\b");
pat!(SQUARE, r"(?i)\bsquare\s+brackets?\b");
pat!(POSTSCRIPT, r"(?i)\bpost[\s-]?script\b");
pat!(BULLET, r"(?i)\bbullet");
pat!(MARKDOWN, r"(?i)\bmarkdown\b");
pat!(
    CONSTRAINED,
    r"(?i)\bone\s+of\s+the\s+following\b|\bfollowing\s+(?:phrases|options)\b|\bchoose\s+from\b|\banswer\s+with\s+(?:exactly\s+)?one\s+of\b"
);
pat!(MY_ANSWER, r"(?i)\bmy\s+answer\s+is\b");
pat!(HIGHLIGHT, r"(?i)\bhighlight|\bitalic|\bitali[cs]i[sz]e");
pat!(STARRED, r"\*[^*\s][^*\n]*\*");
pat!(SECTIONS, r"(?i)\bsections?\b");
pat!(JSON, r"(?i)\bjson\b");
pat!(JSON_CUE, r"(?i)\b(?:format|wrap|wrapped|entire|output|block)\b");
pat!(ANGLE_TITLE, r"<<[^<>\n]*>>");
pat!(ANGLE_WORDS, r"(?i)\bangul[ao]r\s+brackets?\b|\bangle\s+brackets?\b");
pat!(TITLE, r"(?i)\btitle\b");
pat!(SIX_STARS, r"\*{6}|(?i:\b(?:six|6)\s+asterisks?\b)");
pat!(
    TWO_THINGS,
    r"(?i)\b(?:two|2)\s+(?:\w+\s+){0,2}?(?:responses|answers|versions|alternatives|jokes|limericks|poems|critiques|options|movies|letters|parts|scenes|descriptions)\b"
);
pat!(
    REPEAT_CUE,
    r"(?i)\brepe?l?eat|\bword\s+(?:for|by)\s+word\b|\bwithout\s+(?:any\s+)?chang|\bdo\s+not\s+change\b|\bbefore\s+repeating\b|\bis\s+repeated\b|\bsay\s+any|\bsay\s+anything\b|\boutput\s+any\b|\badd\s+any\s+word|\bfirst\s+line\b|\bentire\s+response\s+should\s+start\b|\brespond\s+to\s+the\s+request\b"
);
pat!(
    END_CUE,
    r"(?i)\b(?:end|ends|ending|finish|finished|last|final|conclude|very end)\b"
);
pat!(
    END_WITH,
    r"(?i)\b(?:end|finish|conclude)\w*\b.{0,40}\b(?:with|phrase)\b"
);
pat!(
    NOTHING_AFTER,
    r"(?i)\bno\s+(?:other|additional|more)\s+words?\b|\bnothing\s+(?:else\s+)?after\b|\bnot\s+say\s+anything\s+after\b|\bvery\s+end\b"
);
pat!(
    QUOTATION,
    r"(?i)\bdouble[\s-]?quot|\bquotation\s+marks?\b|\bin\s+quotes\b|\bdouble\s+quotes\b"
);
pat!(QUOTATION_CUE, r"(?i)\b(?:wrap|wrapped|entire|around|whole|inside)\b");
pat!(START_CUE, r"(?i)\b(?:start|starts|begin|begins|first\s+word)\b");
pat!(PARAGRAPH, r"(?i)\bparagraph");

/// Nouns that count paragraph-like units for `number_paragraphs`.
const PARA_NOUNS: [&str; 9] = [
    "paragraph",
    "paragraphs",
    "sections",
    "parts",
    "stanzas",
    "steps",
    "chunks",
    "pieces",
    "section",
];

/// Index of the best-scoring sentence: highest score, then shortest, then earliest. Sentences without letters and
/// scores of 0 or less never win; instruction-like sentences get +1 to break near-ties.
fn best(sents: &[Sent], score: impl Fn(&Sent) -> i32) -> Option<usize> {
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

fn bonus(cond: bool, points: i32) -> i32 {
    if cond {
        points
    } else {
        0
    }
}

/// Dispatch one instruction to its rule; returns the chosen sentence indices.
fn choose(id: &str, kw: &Kw, prompt: &str, sents: &[Sent]) -> Vec<usize> {
    let one = |score: &dyn Fn(&Sent) -> i32| best(sents, score).into_iter().collect::<Vec<_>>();
    match id {
        "punctuation:no_comma" => one(&|s| bonus(s.has(re(&COMMA)), 10)),
        "change_case:english_lowercase" => one(&|s| {
            if s.has(re(&LOWER)) {
                10
            } else {
                bonus(s.has(re(&CAPITAL_ANY)) && s.has(re(&NEGATED_CAPITAL)), 6)
            }
        }),
        "change_case:english_capital" => one(&|s| {
            if !s.has(re(&CAPITAL)) {
                return 0;
            }
            10 - bonus(s.has(re(&NEGATED_CAPITAL)), 8) - bonus(s.has(re(&CAPITAL_WORDS)), 5)
        }),
        "change_case:capital_word_frequency" => one(&|s| {
            if !s.has(re(&CAPITAL_WORDS)) {
                return 0;
            }
            10 + bonus(s.mentions_number(kw.num("capital_frequency")), 3) + bonus(s.has(re(&RELATION)), 1)
        }),
        "keywords:existence" => {
            let res: Vec<Regex> = kw.strs("keywords").iter().filter_map(|k| word_re(k)).collect();
            one(&|s| {
                let m = res.iter().filter(|r| s.has(r)).count() as i32;
                if m == 0 {
                    return 0;
                }
                5 * m + bonus(m as usize == res.len(), 3) + bonus(s.has(re(&EXIST_CUE)), 2)
            })
        }
        "keywords:frequency" => {
            let Some(r) = kw.str("keyword").and_then(word_re) else {
                return vec![];
            };
            let n = kw.num("frequency");
            one(&|s| {
                let counted = s.mentions_number(n) && s.has(re(&FREQ_CUE));
                if s.has(&r) {
                    6 + bonus(counted, 4) + bonus(s.has(re(&FREQ_CUE)), 2)
                } else {
                    // "...company named \"grid\". Can you write one that includes the name of the company at least
                    // five times?" : the count refers back to the keyword.
                    bonus(counted && s.has(re(&NAME_OR_WORD)), 7)
                }
            })
        }
        "keywords:forbidden_words" => {
            let res: Vec<Regex> = kw.strs("forbidden_words").iter().filter_map(|k| word_re(k)).collect();
            one(&|s| {
                let m = res.iter().filter(|r| s.has(r)).count() as i32;
                if m == 0 {
                    return 0;
                }
                5 * m + bonus(s.has(re(&FORBID_CUE)), 3)
            })
        }
        "keywords:letter_frequency" => letter_frequency(kw, sents),
        "language:response_language" => {
            let Some(names) = kw.str("language").and_then(language_names) else {
                return vec![];
            };
            let res: Vec<Regex> = names.iter().filter_map(|n| word_re(n)).collect();
            one(&|s| {
                if !res.iter().any(|r| s.has(r)) {
                    return 0;
                }
                10 + bonus(s.has(re(&LANG_CUE)), 2) + bonus(s.has(re(&LANG_ONLY)), 2) + bonus(s.has(re(&LANG_RESP)), 1)
            })
        }
        "length_constraints:number_sentences" => one(&|s| {
            let base = if s.number_before(&["sentence", "sentences"], 3).is_some() {
                10
            } else if s.has(re(&SENTENCES)) && s.any_number() {
                6
            } else {
                return 0;
            };
            base + bonus(s.mentions_number(kw.num("num_sentences")), 3)
        }),
        "length_constraints:number_paragraphs" => number_paragraphs(kw.num("num_paragraphs"), sents, true),
        "length_constraints:number_words" => one(&|s| {
            let base = if s.number_before(&["word", "words"], 3).is_some() {
                10
            } else if s.has(re(&WORDS)) && s.has(re(&RELATION)) {
                5
            } else {
                return 0;
            };
            base + bonus(s.mentions_number(kw.num("num_words")), 3) - bonus(s.has(re(&CAPITAL_ANY)), 6)
        }),
        "length_constraints:nth_paragraph_first_word" => {
            let Some(r) = kw.str("first_word").and_then(word_re) else {
                return vec![];
            };
            let mut out: Vec<usize> = one(&|s| {
                if !s.has(&r) {
                    return 0;
                }
                8 + bonus(s.has(re(&START_CUE)), 2) + bonus(s.has(re(&PARAGRAPH)), 2)
            });
            if !out.is_empty() {
                // The checker also counts paragraphs, so the sentence giving the count belongs to the constraint.
                out.extend(number_paragraphs(kw.num("num_paragraphs"), sents, false));
            }
            out
        }
        "detectable_content:number_placeholders" => one(&|s| {
            let base = if s.has(re(&PLACEHOLDER)) {
                10
            } else if s.has(re(&SQUARE)) {
                8
            } else {
                return 0;
            };
            base + bonus(s.mentions_number(kw.num("num_placeholders")), 2)
        }),
        "detectable_content:postscript" => {
            let marker = kw.str("postscript_marker").and_then(|m| {
                let m = m.trim().trim_end_matches('.');
                Regex::new(&format!(r"(?:^|[^\w.]){}(?:\.|\b|$)", regex::escape(m))).ok()
            });
            one(&|s| bonus(marker.as_ref().is_some_and(|m| s.has(m)), 8) + bonus(s.has(re(&POSTSCRIPT)), 8))
        }
        "detectable_format:number_bullet_lists" => one(&|s| {
            if !s.has(re(&BULLET)) {
                return 0;
            }
            10 + bonus(s.mentions_number(kw.num("num_bullets")), 3) + bonus(s.has(re(&MARKDOWN)), 1)
        }),
        "detectable_format:constrained_response" => {
            let mut out: Vec<usize> = one(&|s| bonus(s.has(re(&CONSTRAINED)), 8) + bonus(s.has(re(&MY_ANSWER)), 6));
            if let Some(&b) = out.first() {
                // Options listed one per line after the instruction are part of it.
                let mut i = b + 1;
                while i < sents.len() && sents[i].has(re(&MY_ANSWER)) && !sents[i].has(re(&CONSTRAINED)) {
                    out.push(i);
                    i += 1;
                }
            }
            out
        }
        "detectable_format:number_highlighted_sections" => one(&|s| {
            let base = if s.has(re(&HIGHLIGHT)) {
                10
            } else if s.has(re(&STARRED)) {
                4
            } else {
                return 0;
            };
            base + bonus(s.mentions_number(kw.num("num_highlights")), 3) + bonus(s.has(re(&MARKDOWN)), 1)
                - bonus(s.has(re(&CAPITAL_ANY)), 5)
        }),
        "detectable_format:multiple_sections" => multiple_sections(kw, sents),
        "detectable_format:json_format" => one(&|s| {
            if !s.has(re(&JSON)) {
                return 0;
            }
            10 + bonus(s.has(re(&JSON_CUE)), 2)
        }),
        "detectable_format:title" => one(&|s| {
            let base = bonus(s.has(re(&ANGLE_TITLE)) || s.has(re(&ANGLE_WORDS)), 10);
            if base == 0 {
                return 0;
            }
            base + bonus(s.has(re(&TITLE)), 2)
        }),
        "combination:two_responses" => {
            let stars = |s: &Sent| s.has(re(&SIX_STARS));
            let two = |s: &Sent| s.has(re(&TWO_THINGS));
            let mut out: Vec<usize> = one(&|s| bonus(stars(s), 8) + bonus(two(s), 8));
            if let Some(&b) = out.first() {
                // "Give two different responses. Separate them with ******." states one constraint in two sentences.
                let want: &dyn Fn(&Sent) -> bool = if !stars(&sents[b]) { &stars } else { &two };
                if !(stars(&sents[b]) && two(&sents[b])) {
                    out.extend(neighbour(sents, b, |s| want(s)));
                }
            }
            out
        }
        "combination:repeat_prompt" => repeat_prompt(kw, prompt, sents),
        "startend:end_checker" => end_checker(kw, prompt, sents),
        "startend:quotation" => one(&|s| {
            if !s.has(re(&QUOTATION)) {
                return 0;
            }
            10 + bonus(s.has(re(&QUOTATION_CUE)), 2)
        }),
        _ => vec![],
    }
}

/// The sentence right before or after `b` that satisfies `pred` and has letters (the one after first).
fn neighbour(sents: &[Sent], b: usize, pred: impl Fn(&Sent) -> bool) -> Option<usize> {
    [b + 1, b.wrapping_sub(1)]
        .into_iter()
        .find(|&i| i < sents.len() && sents[i].has_letters && pred(&sents[i]))
}

fn letter_frequency(kw: &Kw, sents: &[Sent]) -> Vec<usize> {
    let Some(letter) = kw.str("letter").map(str::trim) else {
        return vec![];
    };
    let esc = regex::escape(letter);
    let cue = if letter.chars().all(char::is_alphabetic) {
        // "the letter q", "letter \"l\"", "letter 'a'".
        format!(r#"(?i)\bletters?\s+["'“‘]?{esc}["'”’]?(?:[^\w]|$)"#)
    } else {
        let alias = match letter {
            "#" => r"|(?i:\bhashtags?\b)",
            "!" => r"|(?i:\bexclamation)",
            _ => "",
        };
        format!("{esc}{alias}")
    };
    let Ok(cue) = Regex::new(&cue) else {
        return vec![];
    };
    best(sents, |s| {
        if !s.has(&cue) {
            return 0;
        }
        10 + bonus(s.mentions_number(kw.num("let_frequency")), 3) + bonus(s.has(re(&RELATION)), 1)
    })
    .into_iter()
    .collect()
}

/// `number_paragraphs`, also used for the count sentence of `nth_paragraph_first_word` (then without the
/// divider-only and format cues, and without the neighbour).
fn number_paragraphs(num: Option<u64>, sents: &[Sent], full: bool) -> Vec<usize> {
    let count = |s: &Sent| s.number_before(&PARA_NOUNS, 3).is_some();
    let divider = |s: &Sent| s.has(re(&DIVIDER));
    let score = |s: &Sent| {
        let mut v = bonus(count(s), 8) + bonus(s.mentions_number(num) && count(s), 3);
        if full {
            v += bonus(divider(s), 6) + bonus(v == 0 && s.has(re(&FORMAT_BELOW)), 3);
        } else if !s.mentions_number(num) {
            return 0;
        }
        if v > 0 {
            v -= bonus(s.has(re(&HIGHLIGHT_WORDS)), 6);
        }
        v
    };
    let mut out: Vec<usize> = best(sents, score).into_iter().collect();
    if full {
        if let Some(&b) = out.first() {
            // "Write exactly 4 paragraphs. Separate them with ***." : the count and the divider go together.
            let (c, d) = (count(&sents[b]), divider(&sents[b]));
            if c != d {
                out.extend(neighbour(sents, b, |s| {
                    !s.has(re(&HIGHLIGHT_WORDS)) && if c { divider(s) } else { count(s) }
                }));
            }
        }
    }
    out
}

fn multiple_sections(kw: &Kw, sents: &[Sent]) -> Vec<usize> {
    let Some(splitter) = kw.str("section_spliter").map(str::trim) else {
        return vec![];
    };
    let esc = regex::escape(splitter);
    // The checker is case-sensitive about the splitter, and so is this cue.
    let (Ok(marked), Ok(word)) = (
        Regex::new(&format!(r"\b{esc}\s+(?:X|\d+|[IVX]+)\b")),
        Regex::new(&format!(r"(?i)\b{esc}\b")),
    ) else {
        return vec![];
    };
    let num = kw.num("num_sections");
    let count = |s: &Sent| s.number_before(&["sections", "section", "parts"], 3).is_some() && s.mentions_number(num);
    let mut out: Vec<usize> = best(sents, |s| {
        let base = if s.has(&marked) {
            10
        } else if s.has(&word) {
            5
        } else {
            return 0;
        };
        base + bonus(s.has(re(&SECTIONS)), 2) + bonus(s.mentions_number(num), 2)
    })
    .into_iter()
    .collect();
    if let Some(&b) = out.first() {
        if !count(&sents[b]) {
            out.extend(neighbour(sents, b, count));
        }
    }
    out
}

fn repeat_prompt(kw: &Kw, prompt: &str, sents: &[Sent]) -> Vec<usize> {
    let cue = |s: &Sent| s.has(re(&REPEAT_CUE));
    // The request to repeat is itself part of the prompt; the instruction is everything around it.
    if let Some(p) = kw.str("prompt_to_repeat").map(str::trim) {
        if let Some(at) = prompt.find(p) {
            let req = at..at + p.len();
            let out: Vec<usize> = sents
                .iter()
                .enumerate()
                .filter(|(_, s)| (s.range.end <= req.start || s.range.start >= req.end) && s.has_letters && cue(s))
                .map(|(i, _)| i)
                .collect();
            if !out.is_empty() {
                return out;
            }
        }
    }
    best(sents, |s| bonus(s.has(re(&REPEAT_CUE)), 10)).into_iter().collect()
}

fn end_checker(kw: &Kw, prompt: &str, sents: &[Sent]) -> Vec<usize> {
    let phrase = kw.str("end_phrase").and_then(|p| {
        let body = regex::escape(p.trim()).replace(' ', r"\s+");
        Regex::new(&format!("(?i){body}")).ok()
    });
    let matches: Vec<Range<usize>> = phrase
        .as_ref()
        .map(|r| r.find_iter(prompt).map(|m| m.range()).collect())
        .unwrap_or_default();
    let overlaps = |s: &Sent, m: &Range<usize>| s.range.start < m.end && m.start < s.range.end;
    let b = best(sents, |s| {
        if matches.iter().any(|m| overlaps(s, m)) {
            10 + bonus(s.has(re(&END_CUE)), 3)
        } else {
            bonus(s.has(re(&END_WITH)), 5)
        }
    });
    let Some(b) = b else { return vec![] };
    let mut out = vec![b];
    // A phrase that was split over several sentences ("Let me know how it works. I can give you ...").
    for m in matches.iter().filter(|m| overlaps(&sents[b], m)) {
        out.extend((0..sents.len()).filter(|&i| i != b && overlaps(&sents[i], m)));
    }
    // "Finish the song with:\n\nPeace!\n\nNo additional words should follow \"Peace!\"" : the instruction is a line
    // or two before the phrase; take it and what lies between.
    if !sents[b].has(re(&END_CUE)) {
        if let Some(k) = (b.saturating_sub(2)..b).rev().find(|&k| sents[k].has(re(&END_WITH))) {
            out.extend(k..b);
        }
    }
    // "No other words should follow this phrase." restates the constraint.
    if b + 1 < sents.len() && sents[b + 1].has(re(&NOTHING_AFTER)) {
        out.push(b + 1);
    }
    out
}

/// English names (and common alternatives) of the languages IFEval's `language` kwarg can name (langdetect's set).
fn language_names(code: &str) -> Option<&'static [&'static str]> {
    const TABLE: [(&str, &[&str]); 56] = [
        ("af", &["Afrikaans"]),
        ("ar", &["Arabic"]),
        ("bg", &["Bulgarian"]),
        ("bn", &["Bengali", "Bangla"]),
        ("ca", &["Catalan"]),
        ("cs", &["Czech"]),
        ("cy", &["Welsh"]),
        ("da", &["Danish"]),
        ("de", &["German"]),
        ("el", &["Greek"]),
        ("en", &["English"]),
        ("es", &["Spanish"]),
        ("et", &["Estonian"]),
        ("fa", &["Persian", "Farsi"]),
        ("fi", &["Finnish"]),
        ("fr", &["French"]),
        ("gu", &["Gujarati"]),
        ("he", &["Hebrew"]),
        ("hi", &["Hindi"]),
        ("hr", &["Croatian"]),
        ("hu", &["Hungarian"]),
        ("id", &["Indonesian"]),
        ("it", &["Italian"]),
        ("ja", &["Japanese"]),
        ("kn", &["Kannada"]),
        ("ko", &["Korean"]),
        ("lt", &["Lithuanian"]),
        ("lv", &["Latvian"]),
        ("mk", &["Macedonian"]),
        ("ml", &["Malayalam"]),
        ("mr", &["Marathi"]),
        ("ne", &["Nepali"]),
        ("nl", &["Dutch"]),
        ("no", &["Norwegian"]),
        ("pa", &["Punjabi"]),
        ("pl", &["Polish"]),
        ("pt", &["Portuguese"]),
        ("ro", &["Romanian"]),
        ("ru", &["Russian"]),
        ("sk", &["Slovak"]),
        ("sl", &["Slovenian", "Slovene"]),
        ("so", &["Somali"]),
        ("sq", &["Albanian"]),
        ("sv", &["Swedish"]),
        ("sw", &["Swahili"]),
        ("ta", &["Tamil"]),
        ("te", &["Telugu"]),
        ("th", &["Thai"]),
        ("tl", &["Tagalog", "Filipino"]),
        ("tr", &["Turkish"]),
        ("uk", &["Ukrainian"]),
        ("ur", &["Urdu"]),
        ("vi", &["Vietnamese"]),
        ("zh", &["Chinese", "Mandarin"]),
        ("zh-cn", &["Chinese", "Mandarin"]),
        ("zh-tw", &["Chinese", "Mandarin"]),
    ];
    let code = code.trim().to_lowercase();
    TABLE.iter().find(|(c, _)| *c == code).map(|(_, names)| *names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spotlight::markup::parse_markup;
    use proptest::prelude::*;
    use serde_json::json;

    fn maps(kwargs: &[Value]) -> Vec<Map<String, Value>> {
        kwargs
            .iter()
            .map(|v| v.as_object().cloned().unwrap_or_default())
            .collect()
    }

    fn run(prompt: &str, ids: &[&str], kwargs: &[Value]) -> Annotation {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        let a = annotate(7, prompt, &ids, &maps(kwargs));
        check_invariants(prompt, &ids, &a);
        a
    }

    /// The highlighted texts chosen (among others) by `id`.
    fn chosen_by<'p>(prompt: &'p str, a: &Annotation, id: &str) -> Vec<&'p str> {
        a.spans
            .iter()
            .zip(&a.reasons)
            .filter(|(_, why)| why.iter().any(|w| w == id))
            .map(|(r, _)| &prompt[r.clone()])
            .collect()
    }

    /// Annotate a single-instruction prompt and return what that instruction highlighted.
    fn one<'p>(prompt: &'p str, id: &str, kwargs: Value) -> Vec<&'p str> {
        let a = run(prompt, &[id], &[kwargs]);
        assert!(a.unmatched.is_empty(), "{id} unmatched in {prompt:?}");
        chosen_by(prompt, &a, id)
    }

    fn check_invariants(prompt: &str, ids: &[String], a: &Annotation) {
        assert_eq!(a.spans.len(), a.reasons.len());
        for (i, r) in a.spans.iter().enumerate() {
            assert!(r.start < r.end && r.end <= prompt.len(), "{r:?} out of bounds");
            assert!(prompt.is_char_boundary(r.start) && prompt.is_char_boundary(r.end));
            assert!(!prompt[r.clone()].trim().is_empty());
            if i > 0 {
                assert!(a.spans[i - 1].end < r.start, "spans not sorted, disjoint and apart");
            }
            assert!(!a.reasons[i].is_empty());
            assert!(a.reasons[i].iter().all(|id| ids.contains(id)));
        }
        assert!(a.unmatched.iter().all(|id| ids.contains(id)));
        // The markup parses back to exactly the prompt and the spans.
        let h = parse_markup(&to_markup(prompt, &a.spans)).expect("markup parses");
        assert_eq!(h.text, prompt);
        assert_eq!(h.spans, a.spans);
    }

    fn sentences(text: &str) -> Vec<&str> {
        split_sentences(text).into_iter().map(|r| &text[r]).collect()
    }

    // --- sentence splitter -------------------------------------------------------------------------------------

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

    // --- rules, one per instruction id, on prompts from IFEval's data ------------------------------------------

    #[test]
    fn no_comma() {
        let p = "I am planning a trip to Japan, and I would like thee to write an itinerary for my journey in a \
                 Shakespearean style. You are not allowed to use any commas in your response.";
        assert_eq!(
            one(p, "punctuation:no_comma", json!({})),
            ["You are not allowed to use any commas in your response."]
        );
    }

    #[test]
    fn english_lowercase() {
        let p = "Write a story about commandos who are in the middle of the night in a sector. It should be in \
                 English, and no capital letters are allowed. The story should not include keywords \"coop\", \
                 \"killings\", \"dead\", \"night\".";
        assert_eq!(
            one(p, "change_case:english_lowercase", json!({})),
            ["It should be in English, and no capital letters are allowed."]
        );
        let p = "Given the sentence \"Two young boys with toy guns and horns.\" can you ask a question? Please ensure \
                 that your response is in English, and in all lowercase letters. No capital letters are allowed.";
        assert_eq!(
            one(p, "change_case:english_lowercase", json!({})),
            ["Please ensure that your response is in English, and in all lowercase letters."]
        );
    }

    #[test]
    fn english_capital() {
        let p = "Write the lyrics to a hit song by the rock band 'The Gifted and The Not Gifted'. To make it rocky, \
                 the response should be in all capital letters. The word \"rock\" should not appear in your response.";
        assert_eq!(
            one(p, "change_case:english_capital", json!({})),
            ["To make it rocky, the response should be in all capital letters."]
        );
    }

    #[test]
    fn capital_word_frequency() {
        let p = "I work in the marketing department and I need your help. I need a template for an advertisement for \
                 a new product which is a portable camera. In the template, capitalize a few words to stress main \
                 points. Please limit the number of words with all capital letters to less than four. Your response \
                 should contain at least ten sentences.";
        let kw = json!({"capital_relation": "less than", "capital_frequency": 4});
        assert_eq!(
            one(p, "change_case:capital_word_frequency", kw),
            ["Please limit the number of words with all capital letters to less than four."]
        );
    }

    #[test]
    fn keywords_existence() {
        let p = "Write an HTML page that lists 25 limericks about people named \"Bill\". The page should include \
                 keywords 'economist', 'bill', and 'jurgen'";
        let kw = json!({"keywords": ["bill", "economist", "jurgen"]});
        assert_eq!(
            one(p, "keywords:existence", kw),
            ["The page should include keywords 'economist', 'bill', and 'jurgen'"]
        );
    }

    #[test]
    fn keywords_frequency() {
        let p = "What happened when the Tang dynasty of China was in power? Make sure to use the word war at least 8 \
                 times, and the word peace at least 10 times.";
        let kw = json!({"relation": "at least", "keyword": "peace", "frequency": 10});
        assert_eq!(
            one(p, "keywords:frequency", kw),
            ["Make sure to use the word war at least 8 times, and the word peace at least 10 times."]
        );
        let p =
            "I work for a software development company named \"grid\", and they want a catchy tweet. Can you write \
                 one that includes the name of the company at least five times?";
        let kw = json!({"relation": "at least", "keyword": "grid", "frequency": 5});
        assert_eq!(
            one(p, "keywords:frequency", kw),
            ["Can you write one that includes the name of the company at least five times?"]
        );
    }

    #[test]
    fn forbidden_words() {
        let p = "Write a song that critiques the song \"We Are Never Ever Getting Back Together\" by Taylor Swift. \
                 Wrap your entire response with double quotation marks. Do not mention the word Taylor, Swift, or \
                 Together.";
        let kw = json!({"forbidden_words": ["taylor", "swift", "together"]});
        assert_eq!(
            one(p, "keywords:forbidden_words", kw),
            ["Do not mention the word Taylor, Swift, or Together."]
        );
    }

    #[test]
    fn letter_frequency() {
        let p = "Create a dialogue between two people who are both trying to avoid using the letter t. But somehow \
                 they ended up using a lot of t in their dialogue. Break the dialogue into two scenes, separated by 6 \
                 asterisk symbols: ******. The letter t must appear at least 30 times in the dialogue you write.";
        let kw = json!({"let_relation": "at least", "letter": "t", "let_frequency": 30});
        assert_eq!(
            one(p, "keywords:letter_frequency", kw),
            ["The letter t must appear at least 30 times in the dialogue you write."]
        );
        let p = "make a tweet for playboy's twitter account without using capital letters. Include at least 4 \
                 hashtags, starting with '#'";
        let kw = json!({"let_relation": "at least", "letter": "#", "let_frequency": 4});
        assert_eq!(
            one(p, "keywords:letter_frequency", kw),
            ["Include at least 4 hashtags, starting with '#'"]
        );
    }

    #[test]
    fn response_language() {
        let p = "Write a funny riddle in Hindi, about a man named Aarav who never spoke. Your entire response should \
                 be written in Hindi. Also, you cannot use any commas in your entire response.";
        assert_eq!(
            one(p, "language:response_language", json!({"language": "hi"})),
            ["Your entire response should be written in Hindi."]
        );
    }

    #[test]
    fn number_sentences() {
        let p = "Can you give me an example for a journal entry about stress management? Tell me how you come up \
                 with the example. Your entire response should contain less than 6 sentences.";
        let kw = json!({"relation": "less than", "num_sentences": 6});
        assert_eq!(
            one(p, "length_constraints:number_sentences", kw),
            ["Your entire response should contain less than 6 sentences."]
        );
    }

    #[test]
    fn number_paragraphs() {
        let p = "Write a very angry letter to someone who's been trying to convince you that 1+1=3. There should be \
                 exactly 4 paragraphs. Separate the paragraphs with ***.";
        assert_eq!(
            one(p, "length_constraints:number_paragraphs", json!({"num_paragraphs": 4})),
            [
                "There should be exactly 4 paragraphs.",
                "Separate the paragraphs with ***."
            ]
        );
    }

    #[test]
    fn number_words() {
        let p = "Write a 300+ word summary of the wikipedia page \"https://en.wikipedia.org/wiki/Raymond_III,_Count_\
                 of_Tripoli\". Do not use any commas and highlight at least 3 sections that has titles in markdown \
                 format, for example *highlighted section part 1*, *highlighted section part 2*, *highlighted \
                 section part 3*.";
        let kw = json!({"relation": "at least", "num_words": 300});
        assert_eq!(
            one(p, "length_constraints:number_words", kw),
            [
                "Write a 300+ word summary of the wikipedia page \"https://en.wikipedia.org/wiki/Raymond_III,_Count_\
              of_Tripoli\"."
            ]
        );
        let p = "I want to write a reflective essay on how my life has changed since I started college. Do you have \
                 any recommendation? Please reply in English and capitalize all your words. Control the length of \
                 your reply. I don't want anything longer than 30 words.";
        let kw = json!({"relation": "less than", "num_words": 31});
        assert_eq!(
            one(p, "length_constraints:number_words", kw),
            ["I don't want anything longer than 30 words."]
        );
    }

    #[test]
    fn nth_paragraph_first_word() {
        let p = "Write exactly 4 paragraphs about tips for installing a car seat for moms. Use 2 new lines to \
                 separate paragraphs. Start the 4th paragraph with the word \"elm\".";
        let kw = json!({"first_word": "elm", "num_paragraphs": 4, "nth_paragraph": 4});
        assert_eq!(
            one(p, "length_constraints:nth_paragraph_first_word", kw),
            [
                "Write exactly 4 paragraphs about tips for installing a car seat for moms.",
                "Start the 4th paragraph with the word \"elm\"."
            ]
        );
    }

    #[test]
    fn number_placeholders() {
        let p = "Write a resume for a fresh high school graduate who is seeking their first job. Make sure to \
                 include at least 12 placeholder represented by square brackets, such as [address], [name].";
        assert_eq!(
            one(p, "detectable_content:number_placeholders", json!({"num_placeholders": 12})),
            ["Make sure to include at least 12 placeholder represented by square brackets, such as [address], [name]."]
        );
    }

    #[test]
    fn postscript() {
        let p = "Which one is a better brand for sneakers: Prada or Nike? Your entire response should be in English, \
                 and in all capital letters. At the end of your response, please explicitly add a postscript \
                 starting with P.S. The word sneaker should appear 10 or more times in your response.";
        assert_eq!(
            one(p, "detectable_content:postscript", json!({"postscript_marker": "P.S."})),
            ["At the end of your response, please explicitly add a postscript starting with P.S."]
        );
        let p = "Could you tell me what kind of balls are used in tennis? I would like the answer in the form of a \
                 medieval style poem with a P.P.S at the end.";
        assert_eq!(
            one(
                p,
                "detectable_content:postscript",
                json!({"postscript_marker": "P.P.S"})
            ),
            ["I would like the answer in the form of a medieval style poem with a P.P.S at the end."]
        );
    }

    #[test]
    fn number_bullet_lists() {
        let p = "List exactly 10 possible names for a new baby boy. Then add a postscript starting with P.P.S to the \
                 end of your response. Put the names into bullet points that are indicated by:\n* This is an example \
                 bullet";
        assert_eq!(
            one(p, "detectable_format:number_bullet_lists", json!({"num_bullets": 10})),
            ["Put the names into bullet points that are indicated by:"]
        );
    }

    #[test]
    fn constrained_response() {
        let p =
            "Would you consider yourself to be smart? Choose from:\nMy answer is yes.\nMy answer is no.\nMy answer \
                 is maybe.\nJust choose one phrase from above as your answer.";
        assert_eq!(
            one(p, "detectable_format:constrained_response", json!({})),
            [
                "Choose from:",
                "My answer is yes.",
                "My answer is no.",
                "My answer is maybe."
            ]
        );
    }

    #[test]
    fn number_highlighted_sections() {
        let p = "Write a limerick about a woman named Sarah who lives in a town where it's always 90°F. Highlight at \
                 least 6 sections in your answer with markdown, example: *highlighted section*. Mention the name \
                 Sarah only once.";
        assert_eq!(
            one(
                p,
                "detectable_format:number_highlighted_sections",
                json!({"num_highlights": 6})
            ),
            ["Highlight at least 6 sections in your answer with markdown, example: *highlighted section*."]
        );
    }

    #[test]
    fn multiple_sections() {
        let p = "Write a blog post about how to raise awareness for a cause. Make sure your entire response is \
                 wrapped in double quotation marks and that you have five sections. Mark the beginning of each \
                 section with Section X.";
        let kw = json!({"section_spliter": "Section", "num_sections": 5});
        assert_eq!(
            one(p, "detectable_format:multiple_sections", kw),
            [
                "Make sure your entire response is wrapped in double quotation marks and that you have five sections.",
                "Mark the beginning of each section with Section X."
            ]
        );
    }

    #[test]
    fn json_format() {
        let p = "Write a facebook post about a flea market in JSON format. Do not include keywords 'flea' and 'JSON' \
                 in the response.";
        assert_eq!(
            one(p, "detectable_format:json_format", json!({})),
            ["Write a facebook post about a flea market in JSON format."]
        );
    }

    #[test]
    fn title() {
        let p = "Write a song about choking on a piece of chicken in the Potomac River. Put the title in double \
                 angular brackets, i.e. <<title of my song>>.";
        assert_eq!(
            one(p, "detectable_format:title", json!({})),
            ["Put the title in double angular brackets, i.e. <<title of my song>>."]
        );
    }

    #[test]
    fn two_responses() {
        let p = "What is a name that people call God? Please give exactly two different responses. Separate the \
                 responses with 6 asterisk symbols: ******.";
        assert_eq!(
            one(p, "combination:two_responses", json!({})),
            [
                "Please give exactly two different responses.",
                "Separate the responses with 6 asterisk symbols: ******."
            ]
        );
    }

    #[test]
    fn repeat_prompt() {
        let request = "Write a limerick about a customer who is always right. The word \"right\" should appear less \
                       than 2 times in the response.";
        let p = format!(
            "{request}\nBefore you give the limerick, just repeat the request above without any change, at the very \
             beginning of your entire response."
        );
        assert_eq!(
            one(&p, "combination:repeat_prompt", json!({"prompt_to_repeat": request})),
            [
                "Before you give the limerick, just repeat the request above without any change, at the very \
                 beginning of your entire response."
            ]
        );
        // The repeated text itself mentions repeating; only the instruction around it counts.
        let request = "Write an essay about a person who repeats the same day.";
        let p = format!(
            "First repeat the request below word for word without change, then give your answer. Do not say any \
             words or characters before repeating the request.\n\n{request}"
        );
        assert_eq!(
            one(&p, "combination:repeat_prompt", json!({"prompt_to_repeat": request})),
            [
                "First repeat the request below word for word without change, then give your answer.",
                "Do not say any words or characters before repeating the request."
            ]
        );
    }

    #[test]
    fn end_checker() {
        let p = "Write a strange rap song about Alexander the Great becoming the king of Macedon. Finish the song \
                 with:\n\nPeace!\n\nNo additional words should follow \"Peace!\"";
        assert_eq!(
            one(p, "startend:end_checker", json!({"end_phrase": "Peace!"})),
            [
                "Finish the song with:",
                "Peace!",
                "No additional words should follow \"Peace!\""
            ]
        );
        let p = "Write a poem about how I am missing my classes. The poem must have 4 sections marked with SECTION X. \
                 Finish the poem with this exact phrase: \"Can I get my money back for the classes I missed?\"";
        let kw = json!({"end_phrase": "Can I get my money back for the classes I missed?"});
        assert_eq!(
            one(p, "startend:end_checker", kw),
            ["Finish the poem with this exact phrase: \"Can I get my money back for the classes I missed?\""]
        );
    }

    #[test]
    fn quotation() {
        let p = "Write a blog post about the history of the internet and how it has impacted our lives. Aim the blog \
                 post at teenagers and wrap your entire response with double quotation marks.";
        assert_eq!(
            one(p, "startend:quotation", json!({})),
            ["Aim the blog post at teenagers and wrap your entire response with double quotation marks."]
        );
    }

    #[test]
    fn several_ids_share_a_sentence_and_unknown_ids_are_unmatched() {
        let p = "Write an essay about Alvin and the Chipmunks. Your response should be in English, all capital \
                 letters, contain no commas, and be fewer than 16 sentences.";
        let ids = [
            "change_case:english_capital",
            "punctuation:no_comma",
            "length_constraints:number_sentences",
            "no:such_id",
        ];
        let kwargs = [
            json!({}),
            json!({}),
            json!({"relation": "less than", "num_sentences": 16}),
        ];
        let a = run(p, &ids, &kwargs);
        assert_eq!(a.unmatched, ["no:such_id"]);
        assert_eq!(a.spans.len(), 1);
        assert_eq!(&p[a.spans[0].clone()], &p[p.find("Your").unwrap()..]);
        assert_eq!(a.reasons[0], &ids[..3]);
    }

    #[test]
    fn missing_or_null_kwargs_do_not_panic() {
        let p = "Write something. Include the keywords \"x\" and \"y\".";
        let a = run(
            p,
            &["keywords:existence", "startend:end_checker"],
            &[json!({"keywords": null})],
        );
        assert_eq!(a.unmatched, ["keywords:existence", "startend:end_checker"]);
        assert!(a.spans.is_empty());
    }

    #[test]
    fn one_sentence_prompt_is_highlighted_whole_and_trimmed() {
        let p = "  Write a riddle about Camilla that doesn't use commas.\n";
        assert_eq!(
            one(p, "punctuation:no_comma", json!({})),
            ["Write a riddle about Camilla that doesn't use commas."]
        );
    }

    // --- markup ------------------------------------------------------------------------------------------------

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
        let a = run(p, &["punctuation:no_comma"], &[json!({})]);
        let m = to_markup(p, &a.spans);
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
        // ...and at the very end of the prompt it shrinks instead.
        assert_eq!(mark(r"ab\", 0..3), r"**ab**\");
        // Touching spans merge; empty, blank and out-of-range spans are dropped or clamped.
        assert_eq!(to_markup("abcd", &[0..2, 2..4]), "**abcd**");
        assert_eq!(to_markup("ab  cd", &[2..4, 3..3, 9..12]), "ab  cd");
        assert_eq!(mark("abcd", 2..40), "ab**cd**");
        // Spans are snapped outwards to char boundaries.
        assert_eq!(mark("aéb", 2..3), "a**é**b");
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

    #[test]
    fn a_chosen_sentence_that_cannot_be_marked_up_leaves_its_instruction_unmatched() {
        // The only sentence mentions highlighting, but `**` cannot be placed around `*a*\` safely.
        let ids = ["detectable_format:number_highlighted_sections".to_string()];
        let a = annotate(1, "*a*\\", &ids, &maps(&[json!({"num_highlights": 1})]));
        assert!(a.spans.is_empty());
        assert_eq!(a.unmatched, ids);
    }

    proptest! {
        #[test]
        fn annotate_keeps_its_invariants_on_arbitrary_text(
            prompt in "[a-zA-Z0-9 .,!?:;\"“”'*\\\\\n#é]{0,120}",
            which in prop::collection::vec(0usize..25, 0..4),
            keyword in "[a-z]{1,6}",
            n in 0u64..50,
        ) {
            const IDS: [&str; 25] = [
                "keywords:existence", "keywords:frequency", "keywords:forbidden_words", "keywords:letter_frequency",
                "language:response_language", "length_constraints:number_sentences",
                "length_constraints:number_paragraphs", "length_constraints:number_words",
                "length_constraints:nth_paragraph_first_word", "detectable_content:number_placeholders",
                "detectable_content:postscript", "detectable_format:number_bullet_lists",
                "detectable_format:constrained_response", "detectable_format:number_highlighted_sections",
                "detectable_format:multiple_sections", "detectable_format:json_format", "detectable_format:title",
                "combination:two_responses", "combination:repeat_prompt", "startend:end_checker",
                "change_case:capital_word_frequency", "change_case:english_capital", "change_case:english_lowercase",
                "punctuation:no_comma", "startend:quotation",
            ];
            let ids: Vec<String> = which.iter().map(|&i| IDS[i].to_string()).collect();
            let kw = json!({
                "keywords": [keyword.clone()], "keyword": keyword.clone(), "forbidden_words": [keyword.clone()],
                "letter": &keyword[..1], "first_word": keyword.clone(), "end_phrase": keyword.clone(),
                "section_spliter": keyword.clone(), "prompt_to_repeat": keyword.clone(), "language": "de",
                "postscript_marker": "P.S.", "frequency": n, "num_words": n, "num_sentences": n,
            });
            let kwargs = maps(&vec![kw; ids.len()]);
            let a = annotate(1, &prompt, &ids, &kwargs);
            check_invariants(&prompt, &ids, &a);
            // Every instruction is either unmatched or the reason for some span.
            for id in &ids {
                prop_assert!(a.unmatched.contains(id) || a.reasons.iter().flatten().any(|r| r == id));
            }
        }
    }

    // --- the whole data set ------------------------------------------------------------------------------------

    #[derive(serde::Deserialize)]
    struct Line {
        key: i64,
        prompt: String,
        instruction_id_list: Vec<String>,
        kwargs: Vec<Map<String, Value>>,
    }

    #[test]
    fn all_ifeval_prompts() {
        let path = std::env::var("IFEVAL_DATA")
            .unwrap_or_else(|_| format!("{}/../shared/data/ifeval/input_data.jsonl", env!("CARGO_MANIFEST_DIR")));
        let data = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("IFEval data not found at {path} ({e}); set IFEVAL_DATA"));
        let (mut prompts, mut pairs, mut found) = (0, 0, 0);
        for line in data.lines().filter(|l| !l.trim().is_empty()) {
            let l: Line = serde_json::from_str(line).expect("valid IFEval line");
            let a = annotate(l.key, &l.prompt, &l.instruction_id_list, &l.kwargs);
            assert_eq!(a.key, l.key);
            check_invariants(&l.prompt, &l.instruction_id_list, &a);
            // The whole prompt is highlighted only when it is a single sentence.
            if a.spans.iter().any(|r| r.len() == l.prompt.trim().len()) {
                assert_eq!(
                    split_sentences(&l.prompt).len(),
                    1,
                    "key {}: whole prompt highlighted",
                    l.key
                );
            }
            prompts += 1;
            pairs += l.instruction_id_list.len();
            found += l.instruction_id_list.len() - a.unmatched.len();
        }
        let coverage = found as f64 / pairs as f64;
        println!(
            "IFEval annotation coverage (rules v{RULES_VERSION}): {found}/{pairs} instructions = {:.1}% over {prompts} \
             prompts",
            100.0 * coverage
        );
        assert_eq!(prompts, 541);
        assert!(coverage >= 0.85, "coverage {coverage:.3} below 85%");
    }
}
