use std::path::PathBuf;

/// Errors from llama.cpp, as the condition llama.cpp is in. They name no command-line flags:
/// the wrapper does not know its front end, so the CLI adds the flag that helps where it reports
/// the error (`cli::with_hint`).
#[derive(Debug, thiserror::Error)]
pub enum LlamaError {
    #[error("model file {0} does not exist")]
    ModelNotFound(PathBuf),
    #[error("{path} is not a GGUF model file (it starts with {magic:?}, a GGUF file starts with \"GGUF\")")]
    NotGguf { path: PathBuf, magic: String },
    // not a `source`: the message already says it, and error chains would print it twice
    #[error("cannot read {path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{0} is a directory, not a GGUF model file")]
    IsADirectory(PathBuf),
    /// Metadata that llama.cpp would abort on (it asserts instead of reporting), found by
    /// reading the GGUF header before handing the file over.
    #[error("{path} is not a usable model: {detail}")]
    InvalidModel { path: PathBuf, detail: String },
    #[error("llama.cpp could not load the model {path}{detail}")]
    ModelLoad { path: PathBuf, detail: String },
    #[error("llama.cpp could not create a context{0}")]
    ContextCreate(String),
    #[error("the model has no built-in chat template")]
    NoChatTemplate,
    #[error("the chat template could not be applied{0}")]
    ChatTemplate(String),
    #[error("tokenization failed: {0}")]
    Tokenize(String),
    #[error("the prompt has {n_tokens} tokens but the context holds {n_ctx}")]
    PromptTooLong { n_tokens: usize, n_ctx: u32 },
    #[error("the context is full ({n_ctx} tokens)")]
    ContextFull { n_ctx: u32 },
    #[error("llama_decode failed with status {status}{detail}")]
    Decode { status: i32, detail: String },
    #[error("invalid text for llama.cpp: {0}")]
    InvalidText(String),
    #[error("cannot reach the RPC server {endpoint}: {detail}")]
    RpcUnreachable { endpoint: String, detail: String },
    #[error("the RPC server {0} is listed twice")]
    RpcListedTwice(String),
    #[error("the RPC server {0} offers no devices")]
    RpcNoDevices(String),
    #[error("the RPC server cannot serve on {endpoint}: {detail}")]
    RpcServe { endpoint: String, detail: String },
    #[error("invalid tensor split: {0}")]
    TensorSplit(String),
}

/// Format captured llama.cpp error log lines as a suffix for an error message.
pub(crate) fn detail_from_log(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!(": {}", lines.join("; "))
    }
}
