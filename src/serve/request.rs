//! OpenAI request bodies, parsed and checked into what the engine runs.
//!
//! Fields the server does not implement are refused when they ask for something (`n: 2`,
//! `tools`), and ignored when they are the default, so that clients which always send them work.

use super::error::ApiError;
use crate::spotlight::{Alpha, Granularity, LayerSelection};
use serde::Deserialize;
use serde_json::Value;

/// `POST /v1/chat/completions`.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    #[serde(default)]
    pub logprobs: bool,
    pub top_logprobs: Option<u32>,
    pub max_completion_tokens: Option<u64>,
    pub tools: Option<Value>,
    pub response_format: Option<Value>,
}

/// `POST /v1/completions`.
#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    pub prompt: PromptInput,
    /// Number of top log-probabilities per token (OpenAI's legacy completions form).
    pub logprobs: Option<u32>,
    #[serde(default)]
    pub echo: bool,
    pub suffix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PromptInput {
    One(String),
    Many(Vec<String>),
}

/// Parameters both endpoints share (read from the same body as the endpoint's own fields;
/// not `#[serde(flatten)]`, which would hide the path of a bad field).
#[derive(Debug, Deserialize)]
pub struct CommonParams {
    /// Accepted and echoed; the server serves the one model it loaded.
    pub model: Option<String>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<i32>,
    pub min_p: Option<f32>,
    pub seed: Option<i64>,
    pub stop: Option<StopInput>,
    pub repeat_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub presence_penalty: Option<f32>,
    pub n: Option<u32>,
    /// llama-server's switch: false recomputes the whole prompt instead of reusing a slot's
    /// cached prefix.
    pub cache_prompt: Option<bool>,
    pub spotlight: Option<SpotlightParams>,
}

#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum StopInput {
    One(String),
    Many(Vec<String>),
}

/// The extension object: what `openai` clients send with `extra_body={"spotlight": {...}}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpotlightParams {
    pub alpha: Option<Alpha>,
    /// τ for the prompt's rows / for the generated tokens' rows (default: `alpha`), as `run
    /// --prefill-alpha/--decode-alpha`.
    pub prefill_alpha: Option<Alpha>,
    pub decode_alpha: Option<Alpha>,
    pub granularity: Option<Granularity>,
    pub layers: Option<String>,
    pub markup: Option<bool>,
    #[serde(default)]
    pub highlights: Vec<String>,
    /// Return the per-layer span shares of this request's rows (before/after steering).
    #[serde(default)]
    pub trace: bool,
}

#[derive(Debug, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: Option<Content>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
}

/// Parse a request body as JSON.
pub fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid("the request body is empty; send a JSON object"));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("the request body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid("the request body must be a JSON object"));
    }
    Ok(value)
}

/// Read `T` out of a parsed body, naming the field at fault in the error.
pub fn from_value<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::invalid(format!("invalid request: {inner}"))
        } else {
            ApiError::invalid_param(&path, format!("invalid `{path}`: {inner}"))
        }
    })
}

impl Message {
    /// The text of the message; image and audio parts are refused (text-only model).
    pub fn text(&self, index: usize) -> Result<String, ApiError> {
        let param = format!("messages[{index}].content");
        match &self.content {
            None => Ok(String::new()),
            Some(Content::Text(t)) => Ok(t.clone()),
            Some(Content::Parts(parts)) => {
                let mut out = String::new();
                for (i, part) in parts.iter().enumerate() {
                    match (part.kind.as_str(), &part.text) {
                        ("text", Some(t)) => out.push_str(t),
                        ("text", None) => {
                            return Err(ApiError::invalid_param(
                                &format!("{param}[{i}].text"),
                                format!("{param}[{i}] is a text part without `text`"),
                            ))
                        }
                        (other, _) => {
                            return Err(ApiError::invalid_param(
                                &format!("{param}[{i}].type"),
                                format!("{param}[{i}] has type `{other}`; this server takes text parts only"),
                            ))
                        }
                    }
                }
                Ok(out)
            }
        }
    }
}

impl StopInput {
    pub fn strings(&self) -> Result<Vec<String>, ApiError> {
        let v = match self {
            StopInput::One(s) => vec![s.clone()],
            StopInput::Many(v) => v.clone(),
        };
        if v.len() > 4 {
            return Err(ApiError::invalid_param("stop", "at most 4 stop sequences"));
        }
        if v.iter().any(String::is_empty) {
            return Err(ApiError::invalid_param("stop", "stop sequences must not be empty"));
        }
        Ok(v)
    }
}

/// Steering settings of one request, defaults filled in from the server's options.
#[derive(Debug, Clone)]
pub struct SteerRequest {
    pub alpha: Alpha,
    /// Phase overrides of `alpha` (None: `alpha`).
    pub prefill_alpha: Option<Alpha>,
    pub decode_alpha: Option<Alpha>,
    pub granularity: Granularity,
    pub layers: LayerSelection,
    pub markup: bool,
    pub highlights: Vec<String>,
    pub trace: bool,
}

impl SteerRequest {
    /// τ of the prompt's rows and of the generated tokens' rows.
    pub fn phases(&self) -> (Alpha, Alpha) {
        (
            self.prefill_alpha.unwrap_or(self.alpha),
            self.decode_alpha.unwrap_or(self.alpha),
        )
    }
}

impl SpotlightParams {
    pub fn resolve(self, defaults: &SteerRequest, n_layer: usize) -> Result<SteerRequest, ApiError> {
        let layers = match self.layers {
            Some(s) => s
                .parse::<LayerSelection>()
                .and_then(|l| l.validate(n_layer).map(|_| l))
                .map_err(|e| ApiError::invalid_param("spotlight.layers", e.replace("--layers", "spotlight.layers")))?,
            None => defaults.layers.clone(),
        };
        if self.highlights.iter().any(String::is_empty) {
            return Err(ApiError::invalid_param(
                "spotlight.highlights",
                "highlights must be non-empty substrings of the messages",
            ));
        }
        // a request that sets `alpha` means it for both phases, unless it names a phase too; the
        // server's phase defaults apply only to requests that leave τ alone
        let phase =
            |own: Option<Alpha>, default: Option<Alpha>| own.or(if self.alpha.is_some() { None } else { default });
        Ok(SteerRequest {
            prefill_alpha: phase(self.prefill_alpha, defaults.prefill_alpha),
            decode_alpha: phase(self.decode_alpha, defaults.decode_alpha),
            alpha: self.alpha.unwrap_or(defaults.alpha),
            granularity: self.granularity.unwrap_or(defaults.granularity),
            layers,
            markup: self.markup.unwrap_or(defaults.markup),
            highlights: self.highlights,
            trace: self.trace,
        })
    }
}

/// Reject values that would make sampling meaningless; name the field.
pub fn check_sampling(c: &CommonParams) -> Result<(), ApiError> {
    let range = |name: &str, v: Option<f32>, lo: f32, hi: f32| match v {
        Some(x) if !(lo..=hi).contains(&x) => Err(ApiError::invalid_param(
            name,
            format!("`{name}` must be between {lo} and {hi}, not {x}"),
        )),
        _ => Ok(()),
    };
    range("temperature", c.temperature, 0.0, 2.0)?;
    range("top_p", c.top_p, 0.0, 1.0)?;
    range("min_p", c.min_p, 0.0, 1.0)?;
    range("repeat_penalty", c.repeat_penalty, 0.0, 10.0)?;
    range("frequency_penalty", c.frequency_penalty, -2.0, 2.0)?;
    range("presence_penalty", c.presence_penalty, -2.0, 2.0)?;
    if let Some(n) = c.n {
        if n != 1 {
            return Err(ApiError::invalid_param(
                "n",
                format!("n = {n} is not supported: this server returns one choice per request"),
            ));
        }
    }
    if c.max_tokens == Some(0) {
        return Err(ApiError::invalid_param("max_tokens", "`max_tokens` must be at least 1"));
    }
    Ok(())
}
