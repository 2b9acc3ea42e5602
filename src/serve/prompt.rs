//! From request messages to a prepared prompt with highlights: `**markup**` in any message and
//! `spotlight.highlights` substrings, placed through the model's chat template.

use super::error::ApiError;
use super::request::{Message, SteerRequest};
use crate::llama::{ChatTemplate, Vocab};
use crate::spotlight::markup::{self, Highlighted};
use crate::spotlight::prompt::{self, HighlightOptions, PreparedPrompt, PromptError, Turn};
use std::ops::Range;

/// Roles the chat template is given; `developer` is OpenAI's newer name for `system`.
fn template_role(role: &str, index: usize) -> Result<&'static str, ApiError> {
    match role {
        "system" | "developer" => Ok("system"),
        "user" => Ok("user"),
        "assistant" => Ok("assistant"),
        other => Err(ApiError::invalid_param(
            &format!("messages[{index}].role"),
            format!("messages[{index}] has role `{other}`; use system, developer, user or assistant"),
        )),
    }
}

fn markup_error(part: String, e: PromptError) -> ApiError {
    match e {
        PromptError::Markup { error, .. } => ApiError::invalid_param(&part, format!("{part}: {error}")),
        other => ApiError::invalid(other.to_string()),
    }
}

/// Parse one message's highlights (markup) into plain text with spans.
fn highlighted(text: &str, part: String, steer: &SteerRequest) -> Result<Highlighted, ApiError> {
    let opts = HighlightOptions {
        markup: steer.markup,
        ..Default::default()
    };
    prompt::highlight(&part, text, &opts, false).map_err(|e| markup_error(part, e))
}

/// Highlight every occurrence of each needle in any message; a needle found nowhere is an error.
fn add_needles(turns: &mut [Turn], needles: &[String]) -> Result<(), ApiError> {
    for (n, needle) in needles.iter().enumerate() {
        let mut found = false;
        for turn in turns.iter_mut() {
            let hits: Vec<Range<usize>> = turn
                .content
                .text
                .match_indices(needle.as_str())
                .map(|(at, m)| at..at + m.len())
                .collect();
            found |= !hits.is_empty();
            turn.content.spans.extend(hits);
        }
        if !found {
            return Err(ApiError::invalid_param(
                &format!("spotlight.highlights[{n}]"),
                format!("the highlight {needle:?} does not occur in any message"),
            ));
        }
    }
    for turn in turns {
        turn.content.spans = markup::merge_spans(std::mem::take(&mut turn.content.spans));
    }
    Ok(())
}

fn prepared(
    vocab: Vocab<'_>,
    template: Option<&ChatTemplate>,
    turns: &[Turn],
    add_assistant: bool,
) -> Result<PreparedPrompt, ApiError> {
    prompt::prepare(vocab, template, turns, add_assistant).map_err(|e| match e {
        PromptError::Llama(l) => ApiError::invalid(format!("the prompt could not be prepared: {l}")),
        other => ApiError::invalid(other.to_string()),
    })
}

/// A chat request's messages through the model's chat template, with the assistant turn opened.
pub fn chat_prompt(
    vocab: Vocab<'_>,
    template: Option<&ChatTemplate>,
    messages: &[Message],
    steer: &SteerRequest,
) -> Result<PreparedPrompt, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid_param(
            "messages",
            "`messages` must hold at least one message",
        ));
    }
    let Some(template) = template else {
        return Err(ApiError::invalid(
            "the model has no built-in chat template; use /v1/completions with a raw prompt",
        ));
    };
    let mut turns = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let role = template_role(&m.role, i)?;
        let text = m.text(i)?;
        turns.push(Turn {
            role: role.to_string(),
            content: highlighted(&text, format!("messages[{i}].content"), steer)?,
        });
    }
    add_needles(&mut turns, &steer.highlights)?;
    prepared(vocab, Some(template), &turns, true)
}

/// A completion request's prompt, as is (no chat template).
pub fn completion_prompt(vocab: Vocab<'_>, text: &str, steer: &SteerRequest) -> Result<PreparedPrompt, ApiError> {
    let mut turns = [Turn {
        role: "user".into(),
        content: highlighted(text, "prompt".into(), steer)?,
    }];
    add_needles(&mut turns, &steer.highlights)?;
    if turns[0].content.text.is_empty() {
        return Err(ApiError::invalid_param("prompt", "`prompt` must not be empty"));
    }
    prepared(vocab, None, &turns, false)
}
