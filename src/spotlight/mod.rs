//! SpotLight: highlighted spans of a prompt receive at least a target share of each layer's
//! attention. Markup parsing, span mapping, the ggml correction and the generation session.

pub mod chat;
pub mod config;
pub mod controller;
pub mod flash;
pub mod layers;
pub mod markup;
pub mod markup_writer;
pub mod prompt;
pub mod session;
pub mod template_map;
pub mod trace;

pub use chat::Chat;
pub use config::{Action, Alpha, ConfigError, Granularity, Phase, SteerConfig, DEFAULT_ALPHA, DEFAULT_GRANULARITY};
pub use layers::LayerSelection;
pub use session::{GenerateOptions, Generation, Session};
