//! Safe wrapper over the patched llama.cpp. All `unsafe` code of the crate lives in this module;
//! everything above it works with owned Rust values and borrow-checked handles.
//!
//! The crate root denies `unsafe_code` everywhere else. Each `unsafe` block here states, in a
//! `// SAFETY:` comment, the invariant that makes it sound; clippy checks that none lacks one.

#![warn(clippy::undocumented_unsafe_blocks)]

mod backend;
mod batch;
mod chat;
mod context;
mod cpu_check;
mod error;
pub mod graph;
mod model;
pub mod rpc;
mod sampler;
pub(crate) mod sys;
mod vocab;

pub use backend::{capture_logs, exit_on_abort, init_backend, last_log_errors, system_info, AbortReport};
pub use batch::Batch;
pub use chat::{ChatMessage, ChatTemplate};
pub use context::{Context, ContextParams, FlashAttn, Perf};
pub use cpu_check::{compiled_cpu_features, unsupported_cpu_features};
pub use error::LlamaError;
pub use graph::{
    AttnSteer, ComputedGraph, ElemType, FlashAttnOperands, GraphBuilder, SpanMask, SteeredAttention, Tensor, UbatchInfo,
};
pub use model::{Model, ModelParams, Placement};
pub use rpc::{Endpoint, RpcServers};
pub use sampler::{Sampler, SamplingParams};
pub use vocab::{TokenDecoder, TokenizedText, Vocab};

/// A token id of the model's vocabulary.
pub type Token = i32;
/// A position in a sequence.
pub type Pos = i32;
/// A sequence id (parallel sequences share one context).
pub type SeqId = i32;
