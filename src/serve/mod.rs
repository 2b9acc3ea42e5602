//! `spotlight serve`: an OpenAI-compatible HTTP server whose requests can highlight parts of
//! their messages, each request steered by its own spans while many run at once.
//!
//! One engine thread owns the llama.cpp context ([`engine`]); HTTP handlers on a small tokio
//! runtime parse and tokenize requests ([`request`], [`prompt`]), queue them as [`job::Job`]s
//! and turn the engine's events into JSON or server-sent events ([`http`], [`response`]).

pub mod engine;
pub mod error;
pub mod http;
pub mod job;
pub mod metrics;
pub mod prefix;
pub mod prompt;
pub mod request;
pub mod response;
pub mod stop;
pub mod trace_summary;

use crate::llama::{ChatTemplate, Context, ContextParams, FlashAttn, Model};
use metrics::Metrics;
use request::SteerRequest;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub host: String,
    pub port: u16,
    pub api_key: Option<String>,
    /// Name reported by /v1/models and in responses.
    pub model_name: String,
    /// Parallel sequences (slots).
    pub slots: usize,
    /// Requests that may wait for a slot before new ones get 503.
    pub queue: usize,
    /// The whole context; each slot gets `n_ctx / slots` tokens.
    pub n_ctx: u32,
    pub n_batch: u32,
    pub n_ubatch: u32,
    pub threads: i32,
    pub flash_attn: FlashAttn,
    /// τ, granularity, layers and markup of requests that do not say.
    pub steer_defaults: SteerRequest,
}

/// What handlers share.
pub struct ServeState {
    pub model: &'static Model,
    pub template: Option<ChatTemplate>,
    pub model_name: String,
    pub api_key: Option<String>,
    pub steer_defaults: SteerRequest,
    pub slots: usize,
    pub n_ctx_slot: usize,
    /// Requests in flight at most: the slots plus the queue.
    pub capacity: usize,
    pub flash_attn: FlashAttn,
    pub started: u64,
    pub metrics: Arc<Metrics>,
    pub jobs: mpsc::Sender<Job>,
}

pub use job::Job;

/// Serve until the process is interrupted. `on_listening` gets the bound address (the port is
/// chosen by the OS for `port = 0`).
pub fn serve(
    model: &'static Model,
    options: ServeOptions,
    on_listening: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let slots = options.slots.max(1);
    let params = ContextParams {
        n_ctx: options.n_ctx,
        n_batch: options.n_batch,
        n_ubatch: options.n_ubatch,
        n_threads: options.threads,
        n_seq_max: slots as u32,
        // `auto` picks the explicit-attention path, which steers at less cost on the CPU; `on`
        // steers on the flash path
        flash_attn: match options.flash_attn {
            FlashAttn::On => FlashAttn::On,
            _ => FlashAttn::Off,
        },
    };
    let metrics = Arc::new(Metrics::default());
    let (jobs, rx) = mpsc::channel();
    // the context is not Send: it is created, used and freed on the engine thread
    let (ready, is_ready) = mpsc::channel();
    let engine_metrics = metrics.clone();
    let engine_thread =
        std::thread::Builder::new()
            .name("spotlight-engine".into())
            .spawn(move || match Context::new(model, params) {
                Ok(ctx) => {
                    let engine = engine::Engine::new(ctx, engine_metrics);
                    let _ = ready.send(Ok(engine.n_ctx_slot()));
                    engine.run(rx);
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                }
            })?;
    let n_ctx_slot = is_ready
        .recv()
        .map_err(|_| anyhow::anyhow!("the engine thread ended before it started"))??;
    let state = Arc::new(ServeState {
        model,
        template: ChatTemplate::from_model(model).ok(),
        model_name: options.model_name.clone(),
        api_key: options.api_key.clone(),
        steer_defaults: options.steer_defaults.clone(),
        slots,
        n_ctx_slot,
        capacity: slots + options.queue,
        flash_attn: options.flash_attn,
        started: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        metrics,
        jobs,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((options.host.as_str(), options.port))
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}:{}: {e}", options.host, options.port))?;
        on_listening(listener.local_addr()?);
        axum::serve(listener, http::router(state))
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        anyhow::Ok(())
    });
    // the state (and with it the job sender) is gone: the engine finishes and returns
    drop(runtime);
    let _ = engine_thread.join();
    result
}

/// Ctrl-C or SIGTERM (what service managers and `kill` send): stop accepting, finish in-flight
/// responses, then return.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    eprintln!("spotlight serve: shutting down");
}
