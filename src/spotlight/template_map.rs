//! Locate chat message contents inside a chat-templated prompt.
//!
//! Highlights are found in each message's content, but the model sees the
//! prompt produced by the chat template. To move spans across without
//! guessing, the template is rendered once with a unique sentinel in place of
//! each content. Each sentinel must occur exactly once; the text between
//! sentinels is the template's own text. Substituting the real contents back
//! gives a prompt in which every content's position is known.
//!
//! The template is then rendered with the real contents and the two results
//! are compared. Templates that transform contents (typically `| trim`) make
//! them differ; in that case the real rendering is aligned against the
//! template text, allowing each content to appear either verbatim or with
//! leading and/or trailing whitespace removed. If exactly one alignment
//! exists it is used; otherwise the error names the message that could not be
//! located. Transformations that change the bytes themselves (case mapping,
//! escaping) cannot be mapped back and are reported as errors.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use super::markup::merge_spans;

/// Chat messages are the wrapper's own type: one definition for the template and the mapping.
pub use crate::llama::ChatMessage;

/// A rendered prompt and where each message's content ended up in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templated {
    /// The prompt exactly as the template renders the real messages.
    pub prompt: String,
    /// Byte range of each message's content inside `prompt`.
    pub content_ranges: Vec<Range<usize>>,
    /// Byte range of each message's own content that appears at
    /// `content_ranges[i]` (same length). The whole content unless the
    /// template trimmed it; spans outside it have no place in the prompt.
    pub source_ranges: Vec<Range<usize>>,
}

/// Why content positions in the templated prompt could not be determined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateMapError<E> {
    /// The render callback failed.
    #[error("chat template failed to render: {0}")]
    Render(E),
    /// A message contains text shaped like our sentinels, which would make
    /// locating contents unreliable.
    #[error(
        "message {message}: {field} contains the reserved sequence \
         U+E000 <digits> U+E001 used to locate message contents"
    )]
    ReservedSequence { message: usize, field: &'static str },
    /// The template dropped, altered or repeated a message's content, so its
    /// place in the prompt is not unique.
    #[error(
        "message {message}: the chat template rendered its content {count} times \
         (expected exactly once), so highlights cannot be placed in the prompt"
    )]
    ContentNotUnique { message: usize, count: usize },
    /// The template transformed a content (or the text around it) in a way
    /// that cannot be mapped back to the original bytes.
    #[error(
        "message {message}: the chat template changed its content beyond trimming \
         whitespace, so highlights cannot be placed in the prompt"
    )]
    ContentNotLocated { message: usize },
    /// A trimmed content fits the rendered prompt in more than one place.
    #[error(
        "message {message}: the chat template trimmed its content and the result \
         can be located in more than one way, so highlights cannot be placed reliably"
    )]
    ContentAmbiguous { message: usize },
}

const SENTINEL_OPEN: char = '\u{E000}';
const SENTINEL_CLOSE: char = '\u{E001}';

/// Stand-in for message `index`'s content.
///
/// Private-use characters do not occur in ordinary text, are left alone by
/// whitespace trimming and case mapping, and the digits keep the stand-ins
/// distinct. The closing character keeps `1` from matching a prefix of `11`.
fn sentinel(index: usize) -> String {
    format!("{SENTINEL_OPEN}{index}{SENTINEL_CLOSE}")
}

/// Whether `s` contains anything of the form of a sentinel. Only the full
/// shape is rejected, since lone private-use characters do appear in real
/// text (icon fonts).
fn contains_sentinel(s: &str) -> bool {
    s.match_indices(SENTINEL_OPEN).any(|(at, _)| {
        let rest = &s[at + SENTINEL_OPEN.len_utf8()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && rest[digits..].starts_with(SENTINEL_CLOSE)
    })
}

/// Render `messages` with `render` and report where each content landed.
///
/// `render` is called twice: once with sentinel contents, once with the real
/// messages. The returned prompt is always the second rendering.
pub fn render_with_offsets<E>(
    messages: &[ChatMessage],
    mut render: impl FnMut(&[ChatMessage]) -> Result<String, E>,
) -> Result<Templated, TemplateMapError<E>> {
    for (message, m) in messages.iter().enumerate() {
        for (field, text) in [("role", &m.role), ("content", &m.content)] {
            if contains_sentinel(text) {
                return Err(TemplateMapError::ReservedSequence { message, field });
            }
        }
    }

    let stand_ins: Vec<ChatMessage> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| ChatMessage::new(m.role.clone(), sentinel(i)))
        .collect();
    let skeleton = render(&stand_ins).map_err(TemplateMapError::Render)?;

    // (position in skeleton, message index), in prompt order: templates may
    // reorder messages (e.g. hoist the system prompt).
    let mut slots = Vec::with_capacity(messages.len());
    for message in 0..messages.len() {
        let s = sentinel(message);
        let found: Vec<usize> = skeleton.match_indices(&s).map(|(at, _)| at).collect();
        match found.as_slice() {
            [at] => slots.push((*at, message)),
            _ => {
                return Err(TemplateMapError::ContentNotUnique {
                    message,
                    count: found.len(),
                })
            }
        }
    }
    slots.sort_unstable();
    let order: Vec<usize> = slots.iter().map(|&(_, m)| m).collect();

    // The template's own text: pieces[k] precedes the k-th content in prompt
    // order, and the last piece follows the final content.
    let mut pieces = Vec::with_capacity(slots.len() + 1);
    let mut from = 0;
    for &(at, message) in &slots {
        pieces.push(&skeleton[from..at]);
        from = at + sentinel(message).len();
    }
    pieces.push(&skeleton[from..]);

    let mut expected = String::with_capacity(skeleton.len());
    let mut content_ranges = vec![0..0; messages.len()];
    for (piece, &message) in pieces.iter().zip(&order) {
        expected.push_str(piece);
        let start = expected.len();
        expected.push_str(&messages[message].content);
        content_ranges[message] = start..expected.len();
    }
    expected.push_str(pieces[pieces.len() - 1]);

    let actual = render(messages).map_err(TemplateMapError::Render)?;
    // With no messages there is nothing to locate, whatever was rendered.
    if actual == expected || messages.is_empty() {
        return Ok(Templated {
            prompt: actual,
            content_ranges,
            source_ranges: messages.iter().map(|m| 0..m.content.len()).collect(),
        });
    }
    align(actual, &pieces, &order, messages)
}

/// Parts of `content` a template might emit in its place: the content itself
/// or the content with leading, trailing or both kinds of whitespace removed
/// (Jinja's `trim`, Python's `strip`/`lstrip`/`rstrip`). Only substrings of
/// the content are considered because only those map back byte for byte.
fn candidate_sources(content: &str) -> Vec<Range<usize>> {
    let len = content.len();
    let start = len - content.trim_start().len();
    let end = content.trim_end().len();
    let mut out: Vec<Range<usize>> = Vec::with_capacity(4);
    for r in [0..len, 0..end, start..len, start..end.max(start)] {
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// How an alignment state (level k, cursor in the prompt) was reached.
#[derive(Clone)]
struct Reached {
    /// Number of alignments reaching this state, capped at 2: we only need
    /// to tell "none", "one" and "several" apart.
    ways: u8,
    /// Cursor at the previous level and the source range chosen there.
    prev: usize,
    source: Range<usize>,
}

/// Align `actual` against the template pieces, letting each content appear
/// as one of its [`candidate_sources`], and accept the result only if exactly
/// one alignment covers the whole prompt.
///
/// Dynamic programming over (content index in prompt order, byte cursor)
/// keeps this polynomial even when many candidates fit locally; a greedy
/// choice could pick a trim that only fails several messages later.
fn align<E>(
    actual: String,
    pieces: &[&str],
    order: &[usize],
    messages: &[ChatMessage],
) -> Result<Templated, TemplateMapError<E>> {
    let n = order.len();
    // levels[k]: states where everything before pieces[k] has been matched.
    let mut levels: Vec<BTreeMap<usize, Reached>> = vec![BTreeMap::new(); n + 1];
    levels[0].insert(
        0,
        Reached {
            ways: 1,
            prev: 0,
            source: 0..0,
        },
    );
    for k in 0..n {
        let content = &messages[order[k]].content;
        let candidates = candidate_sources(content);
        let current = std::mem::take(&mut levels[k]);
        for (&cursor, reached) in &current {
            let Some(rest) = actual[cursor..].strip_prefix(pieces[k]) else {
                continue;
            };
            let content_at = cursor + pieces[k].len();
            let mut seen_lengths = Vec::with_capacity(candidates.len());
            for source in &candidates {
                // Equal lengths that both fit are the same text (all of them
                // empty, for whitespace-only content): one state, not two.
                if seen_lengths.contains(&source.len()) || !rest.starts_with(&content[source.clone()]) {
                    continue;
                }
                seen_lengths.push(source.len());
                let next = levels[k + 1].entry(content_at + source.len()).or_insert(Reached {
                    ways: 0,
                    prev: cursor,
                    source: source.clone(),
                });
                next.ways = (next.ways + reached.ways).min(2);
            }
        }
        levels[k] = current;
    }

    let last_piece = pieces[n];
    let finals: Vec<usize> = levels[n]
        .keys()
        .copied()
        .filter(|&c| actual[c..] == *last_piece)
        .collect();

    let total: u8 = finals.iter().map(|c| levels[n][c].ways).fold(0, |a, b| (a + b).min(2));
    if total == 0 {
        return Err(TemplateMapError::ContentNotLocated {
            message: order[failing_slot(&actual, pieces, &levels)],
        });
    }
    if total > 1 {
        let slot = ambiguous_slot(&actual, pieces, order, messages, &levels, &finals);
        return Err(TemplateMapError::ContentAmbiguous { message: order[slot] });
    }

    let mut content_ranges = vec![0..0; messages.len()];
    let mut source_ranges = vec![0..0; messages.len()];
    let mut cursor = finals[0];
    for k in (1..=n).rev() {
        let reached = &levels[k][&cursor];
        let message = order[k - 1];
        content_ranges[message] = cursor - reached.source.len()..cursor;
        source_ranges[message] = reached.source.clone();
        cursor = reached.prev;
    }
    Ok(Templated {
        prompt: actual,
        content_ranges,
        source_ranges,
    })
}

/// Position (in prompt order) of the content where several full alignments
/// part ways.
///
/// Walks back from the accepted end states marking which states lie on a
/// full alignment. Distinct alignments differ in some cursor, so the first
/// level with more than one such state follows the content where they split.
fn ambiguous_slot(
    actual: &str,
    pieces: &[&str],
    order: &[usize],
    messages: &[ChatMessage],
    levels: &[BTreeMap<usize, Reached>],
    finals: &[usize],
) -> usize {
    let n = order.len();
    let mut viable: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n + 1];
    viable[n] = finals.iter().copied().collect();
    for k in (0..n).rev() {
        let content = &messages[order[k]].content;
        let candidates = candidate_sources(content);
        let on_path: BTreeSet<usize> = levels[k]
            .keys()
            .copied()
            .filter(|&cursor| {
                actual[cursor..].strip_prefix(pieces[k]).is_some_and(|rest| {
                    let content_at = cursor + pieces[k].len();
                    candidates.iter().any(|s| {
                        rest.starts_with(&content[s.clone()]) && viable[k + 1].contains(&(content_at + s.len()))
                    })
                })
            })
            .collect();
        viable[k] = on_path;
    }
    (1..=n).find(|&k| viable[k].len() > 1).unwrap_or(1) - 1
}

/// Position (in prompt order) of the content to blame when no alignment
/// exists: the deepest level reached. If the template text before that
/// content matched, the content itself could not be found; otherwise the
/// previous content (or the text after it) is what went wrong.
fn failing_slot(actual: &str, pieces: &[&str], levels: &[BTreeMap<usize, Reached>]) -> usize {
    let n = pieces.len() - 1;
    let deepest = (0..=n).rev().find(|&k| !levels[k].is_empty()).unwrap_or(0);
    if deepest == n {
        return n.saturating_sub(1);
    }
    let piece_matched = levels[deepest]
        .keys()
        .any(|&c| actual[c..].starts_with(pieces[deepest]));
    if piece_matched {
        deepest
    } else {
        deepest.saturating_sub(1)
    }
}

/// Shift spans (byte ranges within message `i`'s content) into prompt
/// coordinates. Returns sorted, merged ranges.
///
/// Parts of a span that the template trimmed away are dropped, since they
/// are not in the prompt. Span lists beyond the number of messages are
/// ignored.
pub fn spans_in_prompt(t: &Templated, per_message_spans: &[Vec<Range<usize>>]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    for ((spans, dest), src) in per_message_spans.iter().zip(&t.content_ranges).zip(&t.source_ranges) {
        for span in spans {
            let start = span.start.max(src.start);
            let end = span.end.min(src.end);
            if start < end {
                out.push(dest.start + (start - src.start)..dest.start + (end - src.start));
            }
        }
    }
    merge_spans(out)
}

#[cfg(test)]
// One-element lists of spans are ordinary test data here, not a typo for a
// collected range.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::super::markup::parse_markup;
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct RenderFailed(&'static str);

    impl std::fmt::Display for RenderFailed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    /// ChatML with a generation prompt, applying `content` to each content.
    fn chatml_with(
        content: impl Fn(usize, &str) -> String,
    ) -> impl FnMut(&[ChatMessage]) -> Result<String, RenderFailed> {
        move |messages| {
            let mut out = String::new();
            for (i, m) in messages.iter().enumerate() {
                out.push_str(&format!(
                    "<|im_start|>{}\n{}<|im_end|>\n",
                    m.role,
                    content(i, &m.content)
                ));
            }
            out.push_str("<|im_start|>assistant\n");
            Ok(out)
        }
    }

    fn chatml() -> impl FnMut(&[ChatMessage]) -> Result<String, RenderFailed> {
        chatml_with(|_, c| c.to_string())
    }

    fn msgs(list: &[(&str, &str)]) -> Vec<ChatMessage> {
        list.iter().map(|(r, c)| ChatMessage::new(*r, *c)).collect()
    }

    /// Parse markup in every message, render, and return the prompt plus the
    /// highlighted prompt substrings.
    fn highlight_through<E: std::fmt::Debug>(
        marked: &[(&str, &str)],
        render: impl FnMut(&[ChatMessage]) -> Result<String, E>,
    ) -> (Templated, Vec<String>) {
        let parsed: Vec<_> = marked.iter().map(|(_, c)| parse_markup(c).unwrap()).collect();
        let messages: Vec<ChatMessage> = marked
            .iter()
            .zip(&parsed)
            .map(|((r, _), h)| ChatMessage::new(*r, h.text.clone()))
            .collect();
        let t = render_with_offsets(&messages, render).unwrap();
        let spans: Vec<_> = parsed.iter().map(|h| h.spans.clone()).collect();
        let texts = spans_in_prompt(&t, &spans)
            .into_iter()
            .map(|r| t.prompt[r].to_string())
            .collect();
        (t, texts)
    }

    #[test]
    fn chatml_multiple_messages_exact() {
        let messages = msgs(&[
            ("system", "Be brief."),
            ("user", "Hi"),
            ("assistant", "Hello!"),
            ("user", "Bye"),
        ]);
        let t = render_with_offsets(&messages, chatml()).unwrap();
        assert!(t.prompt.ends_with("<|im_start|>assistant\n"));
        for (m, r) in messages.iter().zip(&t.content_ranges) {
            assert_eq!(&t.prompt[r.clone()], m.content);
        }
        assert_eq!(
            t.source_ranges,
            messages.iter().map(|m| 0..m.content.len()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn spans_map_to_highlighted_text() {
        let (_, texts) = highlight_through(
            &[
                ("system", "You are **terse**."),
                ("user", "Translate **this line**\nand **that one**."),
            ],
            chatml(),
        );
        assert_eq!(texts, ["terse", "this line", "that one"]);
    }

    #[test]
    fn non_ascii_content() {
        let (t, texts) = highlight_through(
            &[
                ("system", "Réponds en **français** 🇫🇷"),
                ("user", "日本語で**答えて**ください 🎌"),
            ],
            chatml(),
        );
        assert_eq!(texts, ["français", "答えて"]);
        assert!(t.prompt.contains("日本語で答えてください 🎌"));
    }

    #[test]
    fn upper_cased_role_is_template_text() {
        let render = |messages: &[ChatMessage]| -> Result<String, RenderFailed> {
            Ok(messages
                .iter()
                .map(|m| format!("### {}:\n{}\n\n", m.role.to_uppercase(), m.content))
                .collect::<String>()
                + "### ASSISTANT:\n")
        };
        let (t, texts) = highlight_through(&[("system", "be **kind**"), ("user", "say **hi**")], render);
        assert!(t.prompt.starts_with("### SYSTEM:\nbe kind\n\n### USER:\nsay hi"));
        assert_eq!(texts, ["kind", "hi"]);
    }

    #[test]
    fn trimming_template_falls_back_to_trimmed_content() {
        let messages = msgs(&[("system", "  Be **brief**.\n"), ("user", "\n**Hello** there  ")]);
        let parsed: Vec<_> = messages.iter().map(|m| parse_markup(&m.content).unwrap()).collect();
        let cleaned: Vec<ChatMessage> = messages
            .iter()
            .zip(&parsed)
            .map(|(m, h)| ChatMessage::new(m.role.clone(), h.text.clone()))
            .collect();
        let t = render_with_offsets(&cleaned, chatml_with(|_, c| c.trim().to_string())).unwrap();
        assert_eq!(
            t.prompt,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n\
             <|im_start|>assistant\n"
        );
        assert_eq!(&t.prompt[t.content_ranges[0].clone()], "Be brief.");
        assert_eq!(&t.prompt[t.content_ranges[1].clone()], "Hello there");
        assert_eq!(t.source_ranges[0], 2..11);
        assert_eq!(t.source_ranges[1], 1..12);
        let spans: Vec<_> = parsed.iter().map(|h| h.spans.clone()).collect();
        let texts: Vec<_> = spans_in_prompt(&t, &spans).into_iter().map(|r| &t.prompt[r]).collect();
        assert_eq!(texts, ["brief", "Hello"]);
    }

    #[test]
    fn trimmed_away_parts_of_spans_are_dropped() {
        let messages = msgs(&[("user", "  padded  ")]);
        let t = render_with_offsets(&messages, chatml_with(|_, c| c.trim().to_string())).unwrap();
        // Span fully in the trimmed whitespace vanishes; a straddling one is clipped.
        let spans = spans_in_prompt(&t, &[vec![0..1, 1..4]]);
        assert_eq!(spans.len(), 1);
        assert_eq!(&t.prompt[spans[0].clone()], "pa");
    }

    #[test]
    fn template_that_trims_only_some_messages() {
        // Like templates that strip only the last assistant turn.
        let messages = msgs(&[("user", " a "), ("assistant", " b "), ("user", " c ")]);
        let render = chatml_with(|i, c| if i == 1 { c.trim_end().into() } else { c.into() });
        let t = render_with_offsets(&messages, render).unwrap();
        assert_eq!(t.source_ranges, vec![0..3, 0..2, 0..3]);
        assert_eq!(&t.prompt[t.content_ranges[1].clone()], " b");
        assert_eq!(&t.prompt[t.content_ranges[2].clone()], " c ");
    }

    #[test]
    fn whitespace_only_and_empty_contents() {
        let messages = msgs(&[("system", ""), ("user", "   "), ("user", "x")]);
        let t = render_with_offsets(&messages, chatml_with(|_, c| c.trim().into())).unwrap();
        assert_eq!(t.content_ranges[1].len(), 0);
        assert_eq!(&t.prompt[t.content_ranges[2].clone()], "x");
    }

    #[test]
    fn reordering_template_is_handled() {
        // System prompt rendered after the conversation.
        let render = |messages: &[ChatMessage]| -> Result<String, RenderFailed> {
            let mut out = String::new();
            for m in messages.iter().filter(|m| m.role != "system") {
                out += &format!("[{}] {}\n", m.role, m.content);
            }
            for m in messages.iter().filter(|m| m.role == "system") {
                out += &format!("(rules: {})\n", m.content);
            }
            Ok(out)
        };
        let (t, texts) = highlight_through(&[("system", "**S**"), ("user", "**U**")], render);
        assert_eq!(t.prompt, "[user] U\n(rules: S)\n");
        assert_eq!(texts, ["U", "S"]);
    }

    #[test]
    fn ambiguity_resolved_by_later_messages() {
        // Message 0 is trimmed; locally both "a\n" and "a" fit before the
        // "\n" separator, but only "a" lets message 1 ("\n\nb", verbatim and
        // not fitting trimmed either) follow. A greedy match would give up.
        let messages = msgs(&[("user", "a\n"), ("user", "\n\nb")]);
        let render = |m: &[ChatMessage]| -> Result<String, RenderFailed> {
            Ok(format!("{}\n{}END", m[0].content.trim(), m[1].content))
        };
        let t = render_with_offsets(&messages, render).unwrap();
        assert_eq!(t.prompt, "a\n\n\nbEND");
        assert_eq!(t.content_ranges, vec![0..1, 2..5]);
        assert_eq!(t.source_ranges, vec![0..1, 0..3]);
    }

    #[test]
    fn genuinely_ambiguous_alignment_is_an_error() {
        // The prompt "a\n\n" reads as "a" + "\n" + "\n" (message 0 trimmed)
        // or as "a\n" + "\n" + "" (message 1 trimmed): nothing decides.
        let messages = msgs(&[("user", "a\n"), ("user", "\n")]);
        let render = |m: &[ChatMessage]| -> Result<String, RenderFailed> {
            Ok(format!("{}\n{}", m[0].content.trim(), m[1].content))
        };
        let err = render_with_offsets(&messages, render).unwrap_err();
        assert_eq!(err, TemplateMapError::ContentAmbiguous { message: 0 });
        assert!(err.to_string().starts_with("message 0:"));
    }

    #[test]
    fn content_transformed_beyond_trimming_names_message() {
        let messages = msgs(&[("system", "ok"), ("user", "shout this")]);
        let render = chatml_with(|i, c| if i == 1 { c.to_uppercase() } else { c.into() });
        let err = render_with_offsets(&messages, render).unwrap_err();
        assert_eq!(err, TemplateMapError::ContentNotLocated { message: 1 });
        assert!(err.to_string().contains("message 1"));
    }

    #[test]
    fn dropped_or_repeated_content_is_an_error() {
        let messages = msgs(&[("system", "s"), ("user", "u")]);
        let drop_system = |m: &[ChatMessage]| -> Result<String, RenderFailed> {
            Ok(m.iter()
                .filter(|m| m.role != "system")
                .map(|m| m.content.clone())
                .collect())
        };
        assert_eq!(
            render_with_offsets(&messages, drop_system).unwrap_err(),
            TemplateMapError::ContentNotUnique { message: 0, count: 0 }
        );
        let repeat_user = |m: &[ChatMessage]| -> Result<String, RenderFailed> {
            Ok(format!("{} {} {}", m[0].content, m[1].content, m[1].content))
        };
        let err = render_with_offsets(&messages, repeat_user).unwrap_err();
        assert_eq!(err, TemplateMapError::ContentNotUnique { message: 1, count: 2 });
        assert!(err.to_string().contains("2 times"));
    }

    #[test]
    fn reserved_sequence_in_input_is_rejected() {
        let bad = format!("look: {}", sentinel(0));
        let messages = vec![ChatMessage::new("user", "fine"), ChatMessage::new("user", bad)];
        assert_eq!(
            render_with_offsets(&messages, chatml()).unwrap_err(),
            TemplateMapError::ReservedSequence {
                message: 1,
                field: "content"
            }
        );
        let messages = vec![ChatMessage::new(format!("{SENTINEL_OPEN}7{SENTINEL_CLOSE}"), "x")];
        assert!(matches!(
            render_with_offsets(&messages, chatml()),
            Err(TemplateMapError::ReservedSequence { field: "role", .. })
        ));
        // Lone private-use characters (icon fonts) are fine.
        let icons = msgs(&[("user", "\u{E000} \u{E001} \u{E000}x\u{E001}")]);
        assert!(render_with_offsets(&icons, chatml()).is_ok());
    }

    #[test]
    fn render_errors_are_passed_through() {
        let messages = msgs(&[("user", "x")]);
        let err = render_with_offsets(&messages, |_: &[ChatMessage]| {
            Err::<String, _>(RenderFailed("roles must alternate"))
        })
        .unwrap_err();
        assert_eq!(err, TemplateMapError::Render(RenderFailed("roles must alternate")));
        assert_eq!(err.to_string(), "chat template failed to render: roles must alternate");
        // An error on the second (real) rendering is reported too.
        let mut calls = 0;
        let err = render_with_offsets(&messages, |m: &[ChatMessage]| {
            calls += 1;
            if calls == 2 {
                Err(RenderFailed("second"))
            } else {
                Ok(m[0].content.clone())
            }
        })
        .unwrap_err();
        assert_eq!(err, TemplateMapError::Render(RenderFailed("second")));
    }

    #[test]
    fn no_messages() {
        let t = render_with_offsets(&[], chatml()).unwrap();
        assert_eq!(t.prompt, "<|im_start|>assistant\n");
        assert!(t.content_ranges.is_empty());
        assert!(spans_in_prompt(&t, &[]).is_empty());
    }

    proptest! {
        #[test]
        fn located_contents_match_the_prompt(
            parts in prop::collection::vec(("[a-zé🎉 \n]{0,10}", 0u8..4), 0..6)
        ) {
            let messages: Vec<ChatMessage> = parts
                .iter()
                .map(|(c, _)| ChatMessage::new("user", c.clone()))
                .collect();
            let transforms: Vec<u8> = parts.iter().map(|&(_, t)| t).collect();
            let render = chatml_with(move |i, c| match transforms[i] {
                0 => c.to_string(),
                1 => c.trim().to_string(),
                2 => c.trim_start().to_string(),
                _ => c.trim_end().to_string(),
            });
            let untouched = parts.iter().all(|&(_, t)| t == 0);
            match render_with_offsets(&messages, render) {
                Ok(t) => {
                    for (i, m) in messages.iter().enumerate() {
                        let (dest, src) = (&t.content_ranges[i], &t.source_ranges[i]);
                        prop_assert_eq!(&t.prompt[dest.clone()], &m.content[src.clone()]);
                    }
                    // Every byte of a span that survived lands on the same text.
                    let spans: Vec<Vec<Range<usize>>> =
                        messages.iter().map(|m| vec![0..m.content.len()]).collect();
                    for r in spans_in_prompt(&t, &spans) {
                        prop_assert!(t.prompt.is_char_boundary(r.start));
                        prop_assert!(t.prompt.is_char_boundary(r.end));
                    }
                }
                // Only trimming can make the reading ambiguous.
                Err(e) => {
                    prop_assert!(!untouched, "{}", e);
                    prop_assert!(matches!(e, TemplateMapError::ContentAmbiguous { .. }), "{}", e);
                }
            }
        }
    }

    #[test]
    fn spans_in_prompt_merges_and_ignores_extra_lists() {
        let messages = msgs(&[("user", "abcdef")]);
        let t = render_with_offsets(&messages, chatml()).unwrap();
        let base = t.content_ranges[0].start;
        let spans = spans_in_prompt(&t, &[vec![3..5, 0..2, 1..3], vec![0..1]]);
        assert_eq!(spans, vec![base..base + 5]);
    }
}
