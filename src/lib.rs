//! llama-spotlight: SpotLight attention steering (arXiv 2505.12025) for llama.cpp.
//!
//! - [`llama`]: safe wrapper over the patched, vendored llama.cpp (the only `unsafe` code).
//! - [`spotlight`]: highlight markup, span mapping through the chat template, the in-graph
//!   correction and a generation [`spotlight::Session`].
//! - [`models`]: the default model and how to fetch it.
//! - [`plot`]: attention-share heatmaps from traces; [`eval`]: instruction-following evaluation.

// `unsafe` belongs in the FFI wrapper only; everything else gets safe handles from it.
#![deny(unsafe_code)]

pub mod eval;
#[allow(unsafe_code)]
pub mod llama;
pub mod models;
pub mod plot;
pub mod serve;
pub mod spotlight;
