use std::path::PathBuf;

/// Errors from llama.cpp, with what the user can do about them.
#[derive(Debug, thiserror::Error)]
pub enum LlamaError {
    #[error("model file {0} does not exist")]
    ModelNotFound(PathBuf),
    #[error("{path} is not a GGUF model file (it starts with {magic:?}, a GGUF file starts with \"GGUF\")")]
    NotGguf { path: PathBuf, magic: String },
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("llama.cpp could not load the model {path}{detail}")]
    ModelLoad { path: PathBuf, detail: String },
    #[error("llama.cpp could not create a context{0}")]
    ContextCreate(String),
    #[error("the model has no built-in chat template; pass --raw to send the prompt as is")]
    NoChatTemplate,
    #[error("the chat template could not be applied{0}")]
    ChatTemplate(String),
    #[error("tokenization failed: {0}")]
    Tokenize(String),
    #[error("the prompt has {n_tokens} tokens but the context holds {n_ctx}; raise --ctx-size or shorten the prompt")]
    PromptTooLong { n_tokens: usize, n_ctx: u32 },
    #[error("the context is full ({n_ctx} tokens); raise --ctx-size")]
    ContextFull { n_ctx: u32 },
    #[error("llama_decode failed with status {status}{detail}")]
    Decode { status: i32, detail: String },
    #[error("invalid text for llama.cpp: {0}")]
    InvalidText(String),
}

/// Format captured llama.cpp error log lines as a suffix for an error message.
pub(crate) fn detail_from_log(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!(": {}", lines.join("; "))
    }
}
