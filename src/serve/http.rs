//! Routes, authentication, and turning engine events into JSON bodies or server-sent events.

use super::error::ApiError;
use super::job::{Event, FinishReason, Job, Usage};
use super::metrics::Metrics;
use super::request::{self, ChatRequest, CommonParams, CompletionRequest, PromptInput, SteerRequest};
use super::response::{Collected, Endpoint, ResponseMeta};
use super::{prompt, ServeState};
use crate::llama::SamplingParams;
use crate::spotlight::prompt::PreparedPrompt;
use crate::spotlight::{Alpha, SteerConfig};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

/// Request bodies above this are refused with 413 (a long prompt is a few hundred KiB).
const BODY_LIMIT: usize = 16 << 20;

pub fn router(state: Arc<ServeState>) -> Router {
    let api = Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .route("/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_key));
    Router::new()
        .route("/health", get(health))
        .merge(api)
        .fallback(|| async { ApiError::not_found("this endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request_error",
                "method not allowed here",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

async fn require_key(State(state): State<Arc<ServeState>>, request: Request, next: Next) -> Response {
    if let Some(key) = &state.api_key {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(key.as_str()) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(request).await
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn models(State(state): State<Arc<ServeState>>) -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{
            "id": state.model_name,
            "object": "model",
            "created": state.started,
            "owned_by": "spotlight",
            "meta": {
                "n_ctx_slot": state.n_ctx_slot,
                "n_layer": state.model.n_layer(),
                "slots": state.slots,
            },
        }],
    }))
}

async fn metrics(State(state): State<Arc<ServeState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(state.slots),
    )
        .into_response()
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        let status = e.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("the request body is larger than {} MiB", BODY_LIMIT >> 20)
        } else {
            format!("cannot read the request body: {e}")
        };
        ApiError::new(status, "invalid_request_error", message)
    })
}

async fn chat_completions(State(state): State<Arc<ServeState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let result = async {
        let value = request::parse_json(&body_bytes(body)?)?;
        let req: ChatRequest = request::from_value(&value)?;
        let mut common: CommonParams = request::from_value(&value)?;
        if req
            .tools
            .as_ref()
            .is_some_and(|t| !t.is_null() && t.as_array().is_none_or(|a| !a.is_empty()))
        {
            return Err(ApiError::invalid_param(
                "tools",
                "tool calling is not supported by this server",
            ));
        }
        if let Some(format) = req
            .response_format
            .as_ref()
            .and_then(|f| f.get("type"))
            .and_then(Value::as_str)
        {
            if format != "text" {
                return Err(ApiError::invalid_param(
                    "response_format",
                    format!("response_format `{format}` is not supported; only `text`"),
                ));
            }
        }
        let top = match (req.logprobs, req.top_logprobs) {
            (false, Some(_)) => {
                return Err(ApiError::invalid_param(
                    "top_logprobs",
                    "`top_logprobs` needs `logprobs: true`",
                ))
            }
            (true, k) => Some(check_top(k.unwrap_or(0), "top_logprobs")?),
            (false, None) => None,
        };
        let steer = resolve_steer(&state, &mut common)?;
        let prepared = prompt::chat_prompt(state.model.vocab(), state.template.as_ref(), &req.messages, &steer)?;
        let max = req.max_completion_tokens.or(common.max_tokens);
        start(&state, Endpoint::Chat, common, prepared, &steer, top, max)
    }
    .await;
    match result {
        Ok(started) => started.respond(state).await,
        Err(e) => e.into_response(),
    }
}

async fn completions(State(state): State<Arc<ServeState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let result = async {
        let value = request::parse_json(&body_bytes(body)?)?;
        let req: CompletionRequest = request::from_value(&value)?;
        let mut common: CommonParams = request::from_value(&value)?;
        if req.echo {
            return Err(ApiError::invalid_param(
                "echo",
                "`echo` is not supported by this server",
            ));
        }
        if req.suffix.as_ref().is_some_and(|s| !s.is_empty()) {
            return Err(ApiError::invalid_param(
                "suffix",
                "`suffix` (insertion) is not supported by this server",
            ));
        }
        let text = match req.prompt {
            PromptInput::One(p) => p,
            PromptInput::Many(mut v) if v.len() == 1 => v.remove(0),
            PromptInput::Many(v) => {
                return Err(ApiError::invalid_param(
                    "prompt",
                    format!(
                        "{} prompts in one request are not supported; send one prompt per request",
                        v.len()
                    ),
                ))
            }
        };
        let top = req.logprobs.map(|k| check_top(k, "logprobs")).transpose()?;
        let steer = resolve_steer(&state, &mut common)?;
        let prepared = prompt::completion_prompt(state.model.vocab(), &text, &steer)?;
        let max = common.max_tokens;
        start(&state, Endpoint::Completion, common, prepared, &steer, top, max)
    }
    .await;
    match result {
        Ok(started) => started.respond(state).await,
        Err(e) => e.into_response(),
    }
}

fn check_top(k: u32, param: &str) -> Result<usize, ApiError> {
    if k > 20 {
        return Err(ApiError::invalid_param(
            param,
            format!("`{param}` must be between 0 and 20, not {k}"),
        ));
    }
    Ok(k as usize)
}

fn resolve_steer(state: &ServeState, common: &mut CommonParams) -> Result<SteerRequest, ApiError> {
    request::check_sampling(common)?;
    let ext = common.spotlight.take().unwrap_or_default();
    ext.resolve(&state.steer_defaults, state.model.n_layer())
}

fn next_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{:x}{n:04x}", std::process::id())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Check the prepared request against the server's limits, queue it, and answer.
fn start(
    state: &Arc<ServeState>,
    endpoint: Endpoint,
    common: CommonParams,
    prepared: PreparedPrompt,
    steer: &SteerRequest,
    logprobs: Option<usize>,
    max_tokens: Option<u64>,
) -> Result<Started, ApiError> {
    let stop = common
        .stop
        .as_ref()
        .map(|s| s.strings())
        .transpose()?
        .unwrap_or_default();
    let n_prompt = prepared.tokens.len();
    if n_prompt >= state.n_ctx_slot {
        return Err(ApiError::invalid_param(
            "messages",
            format!(
                "the prompt has {n_prompt} tokens but a slot holds {} (context {} over {} slots); \
                 shorten the prompt or start the server with a larger --ctx-size",
                state.n_ctx_slot,
                state.n_ctx_slot * state.slots,
                state.slots
            ),
        )
        .with_code("context_length_exceeded"));
    }
    if let Some(max) = max_tokens.filter(|&m| n_prompt as u64 + m > state.n_ctx_slot as u64) {
        return Err(ApiError::invalid_param(
            "max_tokens",
            format!(
                "the prompt ({n_prompt} tokens) plus max_tokens ({max}) exceed a slot's {} tokens; \
                 lower max_tokens or start the server with a larger --ctx-size",
                state.n_ctx_slot
            ),
        )
        .with_code("context_length_exceeded"));
    }
    let highlighted = prepared.span_token_positions.len();
    let (prefill, decode) = steer.phases();
    let steered = !(prefill.is_off() && decode.is_off()) && highlighted > 0;
    // a traced request with highlights but τ = 0 is observed: measured, not changed
    let config = (steered || (steer.trace && highlighted > 0)).then(|| SteerConfig {
        trace: steer.trace,
        ..SteerConfig::spotlight_phased(prefill, decode, steer.granularity, steer.layers.clone())
    });
    // through the shortest decimal form of the f32, so 0.2 is sent as 0.2
    let number = |a: Alpha| {
        if steered {
            a.to_string().parse::<f64>().unwrap_or(0.0)
        } else {
            0.0
        }
    };
    let sampling = SamplingParams {
        temp: common.temperature.unwrap_or(0.8),
        top_k: common.top_k.unwrap_or(40),
        top_p: common.top_p.unwrap_or(0.95),
        min_p: common.min_p.unwrap_or(0.05),
        repeat_penalty: common.repeat_penalty.unwrap_or(1.0),
        frequency_penalty: common.frequency_penalty.unwrap_or(0.0),
        presence_penalty: common.presence_penalty.unwrap_or(0.0),
        seed: common.seed.map_or(u32::MAX, |s| s as u32),
        ..SamplingParams::default()
    };
    let meta = ResponseMeta {
        endpoint,
        id: next_id(if endpoint == Endpoint::Chat { "chatcmpl" } else { "cmpl" }),
        created: now_secs(),
        model: common.model.clone().unwrap_or_else(|| state.model_name.clone()),
        spotlight: json!({
            "alpha": number(steer.alpha),
            "prefill_alpha": number(prefill),
            "decode_alpha": number(decode),
            "granularity": steer.granularity,
            "layers": steer.layers.to_string(),
            "highlighted_tokens": highlighted,
            "steered": steered,
        }),
        logprobs,
    };
    if !state.metrics.try_admit(state.capacity) {
        state.metrics.requests_rejected_busy.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::overloaded(1));
    }
    let (events, rx) = mpsc::unbounded_channel();
    let job = Job {
        prompt: prepared,
        steer: config,
        sampling,
        max_tokens: max_tokens.map(|m| m as usize),
        stop,
        logprobs,
        cache_prompt: common.cache_prompt.unwrap_or(true),
        events,
    };
    let metrics: &Metrics = &state.metrics;
    metrics.requests_total.fetch_add(1, Ordering::Relaxed);
    metrics
        .prompt_tokens_total
        .fetch_add(n_prompt as u64, Ordering::Relaxed);
    if steered {
        metrics.steered_requests_total.fetch_add(1, Ordering::Relaxed);
    }
    if state.jobs.send(job).is_err() {
        metrics.release();
        return Err(ApiError::server("the generation engine has stopped"));
    }
    let include_usage = common.stream_options.as_ref().is_some_and(|o| o.include_usage);
    Ok(Started {
        meta,
        rx,
        stream: common.stream,
        include_usage,
    })
}

/// A queued request whose answer is on its way.
struct Started {
    meta: ResponseMeta,
    rx: mpsc::UnboundedReceiver<Event>,
    stream: bool,
    include_usage: bool,
}

impl Started {
    /// Stream it, or wait for the whole generation and answer once. Dropping this (the client
    /// left) drops the receiver, which tells the engine to free the slot.
    async fn respond(self, state: Arc<ServeState>) -> Response {
        if self.stream {
            return stream(state, self.meta, self.rx, self.include_usage).into_response();
        }
        let Started { meta, mut rx, .. } = self;
        let mut got = Collected::default();
        while let Some(event) = rx.recv().await {
            match event {
                Event::Started { .. } => {}
                Event::Text { text, logprob } => {
                    got.text.push_str(&text);
                    got.logprobs.extend(logprob);
                }
                Event::Done {
                    finish_reason,
                    usage,
                    trace,
                } => {
                    let mut body = meta.full(state.model.vocab(), &got, finish_reason, &usage);
                    if let Some(trace) = trace {
                        body["spotlight"]["trace"] = trace;
                    }
                    return Json(body).into_response();
                }
                Event::Failed { message } => return ApiError::server(message).into_response(),
            }
        }
        ApiError::server("the generation engine stopped").into_response()
    }
}

/// Server-sent events in OpenAI's chunk format, ending with `data: [DONE]`.
fn stream(
    state: Arc<ServeState>,
    meta: ResponseMeta,
    mut rx: mpsc::UnboundedReceiver<Event>,
    include_usage: bool,
) -> impl IntoResponse {
    let (tx, out) = mpsc::unbounded_channel::<Result<SseEvent, Infallible>>();
    tokio::spawn(async move {
        let send = |v: Value| tx.send(Ok(SseEvent::default().data(v.to_string()))).is_ok();
        if let Some(first) = meta.role_chunk() {
            if !send(first) {
                return;
            }
        }
        let mut offset = 0;
        let mut done: Option<(FinishReason, Usage, Option<Value>)> = None;
        while let Some(event) = rx.recv().await {
            match event {
                Event::Started { .. } => {}
                Event::Text { text, logprob } => {
                    if text.is_empty() && logprob.is_none() {
                        continue;
                    }
                    let chunk = meta.text_chunk(state.model.vocab(), &text, logprob.as_ref(), offset);
                    offset += text.len();
                    if !send(chunk) {
                        return; // the client left; dropping rx tells the engine
                    }
                }
                Event::Done {
                    finish_reason,
                    usage,
                    trace,
                } => {
                    done = Some((finish_reason, usage, trace));
                    break;
                }
                Event::Failed { message } => {
                    send(ApiError::server(message).body());
                    break;
                }
            }
        }
        if let Some((finish, usage, trace)) = done {
            let mut last = meta.finish_chunk(finish);
            if let Some(trace) = trace {
                last["spotlight"]["trace"] = trace;
            }
            send(last);
            if include_usage {
                send(meta.usage_chunk(&usage));
            }
        }
        let _ = tx.send(Ok(SseEvent::default().data("[DONE]")));
    });
    Sse::new(UnboundedReceiverStream::new(out)).keep_alive(KeepAlive::default())
}
