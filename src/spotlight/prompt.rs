//! From what the user typed to tokens: markup → chat template → tokens, with highlighted spans
//! carried through every step as byte ranges and finally as token positions.

use super::markup::{self, Highlighted, MarkupError};
use super::template_map::{self, TemplateMapError};
use crate::llama::{ChatMessage, ChatTemplate, LlamaError, Token, Vocab};
use std::ops::Range;

/// A chat turn whose content carries highlighted byte ranges.
#[derive(Debug, Clone)]
pub struct Turn {
    pub role: String,
    pub content: Highlighted,
}

/// How highlights are given.
#[derive(Debug, Clone, Default)]
pub struct HighlightOptions {
    /// Parse `**span**` markup (off: text is taken literally).
    pub markup: bool,
    /// `--highlight SUBSTRING` needles, searched in the user's message.
    pub substrings: Vec<String>,
    /// Highlight every occurrence of an ambiguous needle instead of failing.
    pub all_occurrences: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("in the {part}: {error}")]
    Markup { part: String, error: MarkupError },
    #[error("the highlight {text:?} covers only chat-template tokens, not message text")]
    SpanOnlyTemplate { text: String },
    #[error("cannot place the highlights in the chat-templated prompt: {0}")]
    Template(String),
    #[error(transparent)]
    Llama(#[from] LlamaError),
}

/// The prompt as the model sees it.
#[derive(Debug, Clone)]
pub struct PreparedPrompt {
    /// Text after the chat template (or the raw prompt).
    pub text: String,
    pub tokens: Vec<Token>,
    /// Byte range of `text` each token covers.
    pub token_ranges: Vec<Range<usize>>,
    /// Highlighted byte ranges of `text`.
    pub span_ranges: Vec<Range<usize>>,
    /// Positions of highlighted tokens (a token is highlighted iff its bytes overlap a span).
    pub span_token_positions: Vec<usize>,
}

impl PreparedPrompt {
    /// Highlighted positions as [start, end) runs, the form llama.cpp takes.
    pub fn span_position_ranges(&self, offset: i32) -> Vec<(i32, i32)> {
        let mut runs: Vec<(i32, i32)> = Vec::new();
        for &p in &self.span_token_positions {
            let p = p as i32 + offset;
            match runs.last_mut() {
                Some(last) if last.1 == p => last.1 = p + 1,
                _ => runs.push((p, p + 1)),
            }
        }
        runs
    }
}

/// Parse the highlights of one message.
pub fn highlight(
    part: &str,
    text: &str,
    opts: &HighlightOptions,
    search_needles: bool,
) -> Result<Highlighted, PromptError> {
    let wrap = |error| PromptError::Markup {
        part: part.to_string(),
        error,
    };
    let mut h = if opts.markup {
        markup::parse_markup(text).map_err(wrap)?
    } else {
        markup::plain(text)
    };
    if search_needles && !opts.substrings.is_empty() {
        let found = markup::find_substrings(&h.text, &opts.substrings, opts.all_occurrences).map_err(wrap)?;
        h.spans.extend(found);
        h.spans = markup::merge_spans(std::mem::take(&mut h.spans));
    }
    Ok(h)
}

/// Render turns through the chat template (or concatenate them for raw prompts), tokenize, and
/// map the highlights to token positions.
pub fn prepare(
    vocab: Vocab<'_>,
    template: Option<&ChatTemplate>,
    turns: &[Turn],
    add_assistant: bool,
) -> Result<PreparedPrompt, PromptError> {
    let (text, span_ranges) = match template {
        Some(template) => {
            let messages: Vec<ChatMessage> = turns
                .iter()
                .map(|t| ChatMessage::new(t.role.clone(), t.content.text.clone()))
                .collect();
            let mapped = template_map::render_with_offsets(&messages, |m| template.apply(m, add_assistant)).map_err(
                |e| match e {
                    TemplateMapError::Render(err) => PromptError::Llama(err),
                    other => PromptError::Template(other.to_string()),
                },
            )?;
            let spans: Vec<Vec<Range<usize>>> = turns.iter().map(|t| t.content.spans.clone()).collect();
            let ranges = template_map::spans_in_prompt(&mapped, &spans);
            (mapped.prompt, ranges)
        }
        None => {
            // Raw mode: turns are joined as they are (normally just one).
            let mut text = String::new();
            let mut ranges = Vec::new();
            for t in turns {
                let base = text.len();
                text.push_str(&t.content.text);
                ranges.extend(t.content.spans.iter().map(|r| r.start + base..r.end + base));
            }
            (text, ranges)
        }
    };
    let tok = vocab.tokenize_with_offsets(&text, true, true)?;
    for span in &span_ranges {
        let hit = markup::tokens_overlapping(&tok.ranges, std::slice::from_ref(span));
        if hit.iter().all(|&i| vocab.is_control(tok.tokens[i])) {
            return Err(PromptError::SpanOnlyTemplate {
                text: text[span.clone()].to_string(),
            });
        }
    }
    let span_token_positions = markup::tokens_overlapping(&tok.ranges, &span_ranges);
    Ok(PreparedPrompt {
        text,
        tokens: tok.tokens,
        token_ranges: tok.ranges,
        span_ranges,
        span_token_positions,
    })
}
