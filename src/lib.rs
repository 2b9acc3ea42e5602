//! llama-spotlight: SpotLight attention steering (arXiv 2505.12025) for llama.cpp.
//!
//! - [`llama`]: safe wrapper over the patched, vendored llama.cpp (the only `unsafe` code).
//! - [`spotlight`]: highlight markup, span mapping through the chat template, the in-graph
//!   correction and a generation [`spotlight::Session`].
//! - [`models`]: the default model and how to fetch it.
//! - [`plot`]: attention-share heatmaps from traces; [`eval`]: instruction-following evaluation.

pub mod eval;
pub mod llama;
pub mod models;
pub mod plot;
pub mod spotlight;
