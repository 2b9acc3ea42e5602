//! What the HTTP side hands the engine, and what comes back while a request runs.

use crate::llama::{SamplingParams, Token};
use crate::spotlight::prompt::PreparedPrompt;
use crate::spotlight::SteerConfig;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

/// One generation request, ready to run.
pub struct Job {
    pub prompt: PreparedPrompt,
    /// None: unsteered (τ = 0, or no highlighted token).
    pub steer: Option<SteerConfig>,
    pub sampling: SamplingParams,
    /// None: until end of generation or the slot's share of the context is full.
    pub max_tokens: Option<usize>,
    pub stop: Vec<String>,
    /// Some(k): report the chosen token's log-probability and the k most likely alternatives.
    pub logprobs: Option<usize>,
    /// Reuse a slot's cached prefix (llama-server's `cache_prompt`).
    pub cache_prompt: bool,
    pub events: UnboundedSender<Event>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
    /// Prompt tokens whose KV came from the slot's cache (not recomputed).
    pub cached_tokens: usize,
}

/// A token and its log-probability, with the most likely alternatives at that step.
#[derive(Debug, Clone)]
pub struct TokenLogprob {
    pub token: Token,
    pub logprob: f32,
    pub top: Vec<(Token, f32)>,
}

#[derive(Debug)]
pub enum Event {
    /// The request got a slot; `cached_tokens` of its prompt are reused.
    Started {
        slot: usize,
        cached_tokens: usize,
    },
    /// Generated text (may be empty while text is held back for stop sequences).
    Text {
        text: String,
        logprob: Option<TokenLogprob>,
    },
    Done {
        finish_reason: FinishReason,
        usage: Usage,
        /// With `spotlight.trace`: per-layer span shares of the request's rows.
        trace: Option<serde_json::Value>,
    },
    Failed {
        message: String,
    },
}
