//! Response bodies and stream chunks in OpenAI's formats, for both endpoints.

use super::job::{FinishReason, TokenLogprob, Usage};
use crate::llama::Vocab;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completion,
}

/// What every chunk and the final body of one request share.
pub struct ResponseMeta {
    pub endpoint: Endpoint,
    pub id: String,
    pub created: u64,
    pub model: String,
    /// The `spotlight` object: how the request was steered.
    pub spotlight: Value,
    /// `top_logprobs`/`logprobs` asked for (None: no log-probabilities).
    pub logprobs: Option<usize>,
}

/// Text and log-probabilities collected for a non-streamed response.
#[derive(Default)]
pub struct Collected {
    pub text: String,
    pub logprobs: Vec<TokenLogprob>,
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    })
}

fn token_text(vocab: Vocab<'_>, token: i32) -> (String, Vec<u8>) {
    let bytes = vocab.token_bytes(token, false);
    (String::from_utf8_lossy(&bytes).into_owned(), bytes)
}

/// Chat format: `{"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}`.
fn chat_logprobs(vocab: Vocab<'_>, items: &[TokenLogprob]) -> Value {
    let entry = |token: i32, logprob: f32| {
        let (text, bytes) = token_text(vocab, token);
        json!({"token": text, "logprob": logprob, "bytes": bytes})
    };
    let content: Vec<Value> = items
        .iter()
        .map(|lp| {
            let mut e = entry(lp.token, lp.logprob);
            e["top_logprobs"] = lp.top.iter().map(|&(t, l)| entry(t, l)).collect();
            e
        })
        .collect();
    json!({ "content": content })
}

/// Legacy completions format: parallel arrays, offsets into the generated text.
fn completion_logprobs(vocab: Vocab<'_>, items: &[TokenLogprob], mut offset: usize) -> Value {
    let (mut tokens, mut lps, mut tops, mut offsets) = (vec![], vec![], vec![], vec![]);
    for lp in items {
        let (text, _) = token_text(vocab, lp.token);
        offsets.push(offset);
        offset += text.len();
        tokens.push(text);
        lps.push(lp.logprob);
        let top: serde_json::Map<String, Value> = lp
            .top
            .iter()
            .map(|&(t, l)| (token_text(vocab, t).0, json!(l)))
            .collect();
        tops.push(Value::Object(top));
    }
    json!({"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets})
}

impl ResponseMeta {
    fn logprobs_json(&self, vocab: Vocab<'_>, items: &[TokenLogprob], offset: usize) -> Value {
        match (self.logprobs, self.endpoint) {
            (None, _) => Value::Null,
            (Some(_), Endpoint::Chat) => chat_logprobs(vocab, items),
            (Some(_), Endpoint::Completion) => completion_logprobs(vocab, items, offset),
        }
    }

    fn envelope(&self, object: &str, choice: Value) -> Value {
        json!({
            "id": self.id,
            "object": object,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": concat!("spotlight-", env!("CARGO_PKG_VERSION")),
            "choices": [choice],
        })
    }

    /// The whole response of a request that was not streamed.
    pub fn full(&self, vocab: Vocab<'_>, got: &Collected, finish: FinishReason, usage: &Usage) -> Value {
        let logprobs = self.logprobs_json(vocab, &got.logprobs, 0);
        let (object, choice) = match self.endpoint {
            Endpoint::Chat => (
                "chat.completion",
                json!({
                    "index": 0,
                    "message": {"role": "assistant", "content": got.text},
                    "logprobs": logprobs,
                    "finish_reason": finish,
                }),
            ),
            Endpoint::Completion => (
                "text_completion",
                json!({"index": 0, "text": got.text, "logprobs": logprobs, "finish_reason": finish}),
            ),
        };
        let mut body = self.envelope(object, choice);
        body["usage"] = usage_json(usage);
        body["spotlight"] = self.spotlight.clone();
        body
    }

    fn chunk_object(&self) -> &'static str {
        match self.endpoint {
            Endpoint::Chat => "chat.completion.chunk",
            Endpoint::Completion => "text_completion",
        }
    }

    /// The first chunk of a chat stream announces the role.
    pub fn role_chunk(&self) -> Option<Value> {
        (self.endpoint == Endpoint::Chat).then(|| {
            self.envelope(
                self.chunk_object(),
                json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}),
            )
        })
    }

    /// A chunk with new text; `offset` is the text's byte offset in the completion.
    pub fn text_chunk(&self, vocab: Vocab<'_>, text: &str, logprob: Option<&TokenLogprob>, offset: usize) -> Value {
        let items: Vec<TokenLogprob> = logprob.into_iter().cloned().collect();
        let logprobs = self.logprobs_json(vocab, &items, offset);
        let choice = match self.endpoint {
            Endpoint::Chat => {
                json!({"index": 0, "delta": {"content": text}, "logprobs": logprobs, "finish_reason": null})
            }
            Endpoint::Completion => json!({"index": 0, "text": text, "logprobs": logprobs, "finish_reason": null}),
        };
        self.envelope(self.chunk_object(), choice)
    }

    /// The last chunk with a choice: the finish reason, and the `spotlight` object.
    pub fn finish_chunk(&self, finish: FinishReason) -> Value {
        let choice = match self.endpoint {
            Endpoint::Chat => json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish}),
            Endpoint::Completion => json!({"index": 0, "text": "", "logprobs": null, "finish_reason": finish}),
        };
        let mut chunk = self.envelope(self.chunk_object(), choice);
        chunk["spotlight"] = self.spotlight.clone();
        chunk
    }

    /// With `stream_options.include_usage`: a chunk with no choices and the usage.
    pub fn usage_chunk(&self, usage: &Usage) -> Value {
        let mut chunk = self.envelope(self.chunk_object(), Value::Null);
        chunk["choices"] = json!([]);
        chunk["usage"] = usage_json(usage);
        chunk
    }
}
