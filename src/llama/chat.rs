//! The model's chat template, applied through llama.cpp.

use super::error::LlamaError;
use super::sys;
use super::Model;
use std::ffi::CString;

/// One chat turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A chat template taken from a model.
pub struct ChatTemplate {
    source: CString,
}

impl ChatTemplate {
    /// The model's built-in template, or [`LlamaError::NoChatTemplate`] when it has none.
    pub fn from_model(model: &Model) -> Result<Self, LlamaError> {
        model
            .chat_template_source()
            .map(|source| Self { source })
            .ok_or(LlamaError::NoChatTemplate)
    }

    /// Render `messages`; `add_assistant` appends the start of the assistant's turn.
    pub fn apply(&self, messages: &[ChatMessage], add_assistant: bool) -> Result<String, LlamaError> {
        let owned: Vec<(CString, CString)> = messages
            .iter()
            .map(|m| Ok((CString::new(m.role.as_str())?, CString::new(m.content.as_str())?)))
            .collect::<Result<_, std::ffi::NulError>>()
            .map_err(|_| LlamaError::InvalidText("a chat message contains a NUL byte".into()))?;
        let raw: Vec<sys::llama_chat_message> = owned
            .iter()
            .map(|(r, c)| sys::llama_chat_message {
                role: r.as_ptr(),
                content: c.as_ptr(),
            })
            .collect();
        let total: usize = messages.iter().map(|m| m.content.len() + m.role.len()).sum();
        let mut buf = vec![0u8; total * 2 + 1024];
        for _ in 0..2 {
            // SAFETY: raw points into `owned`, alive for the call; buf is writable for its length.
            let n = unsafe {
                sys::llama_chat_apply_template(
                    self.source.as_ptr(),
                    raw.as_ptr(),
                    raw.len(),
                    add_assistant,
                    buf.as_mut_ptr().cast(),
                    buf.len() as i32,
                )
            };
            if n < 0 {
                return Err(LlamaError::ChatTemplate(
                    ": llama.cpp does not support this template".into(),
                ));
            }
            if (n as usize) <= buf.len() {
                buf.truncate(n as usize);
                return String::from_utf8(buf)
                    .map_err(|_| LlamaError::ChatTemplate(": the result is not valid UTF-8".into()));
            }
            buf.resize(n as usize, 0);
        }
        Err(LlamaError::ChatTemplate(": buffer size mismatch".into()))
    }
}
