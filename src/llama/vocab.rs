//! Tokenization with byte offsets, and UTF-8-correct detokenization.

use super::error::LlamaError;
use super::sys;
use super::Token;
use std::marker::PhantomData;
use std::ops::Range;
use std::ptr::NonNull;

/// The vocabulary of a loaded model (borrowed from it).
#[derive(Clone, Copy)]
pub struct Vocab<'m> {
    ptr: NonNull<sys::llama_vocab>,
    _model: PhantomData<&'m super::Model>,
}

/// Tokens of a text and the byte range of the text each token covers. Tokens that the tokenizer
/// added (e.g. BOS) cover an empty range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedText {
    pub tokens: Vec<Token>,
    pub ranges: Vec<Range<usize>>,
}

impl<'m> Vocab<'m> {
    pub(crate) fn new(ptr: NonNull<sys::llama_vocab>) -> Self {
        Self {
            ptr,
            _model: PhantomData,
        }
    }

    pub fn n_tokens(&self) -> usize {
        // SAFETY: valid vocab pointer (borrowed from a live model).
        unsafe { sys::llama_vocab_n_tokens(self.ptr.as_ptr()) as usize }
    }

    /// Is this an end-of-generation token (EOS, EOT, ...)?
    pub fn is_eog(&self, token: Token) -> bool {
        // SAFETY: valid vocab pointer; any token id is accepted.
        unsafe { sys::llama_vocab_is_eog(self.ptr.as_ptr(), token) }
    }

    /// Is this a control token (e.g. `<|im_start|>`), i.e. part of the chat template, not text?
    pub fn is_control(&self, token: Token) -> bool {
        // SAFETY: valid vocab pointer; any token id is accepted.
        unsafe { sys::llama_vocab_is_control(self.ptr.as_ptr(), token) }
    }

    /// Tokenize `text`. `add_special` adds BOS/EOS as the model wants; `parse_special` turns
    /// special-token text such as `<|im_start|>` into the special token.
    pub fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<Token>, LlamaError> {
        let len = i32::try_from(text.len()).map_err(|_| LlamaError::Tokenize("text longer than 2 GiB".into()))?;
        let mut tokens: Vec<Token> = vec![0; text.len() + 8];
        for _ in 0..2 {
            // SAFETY: text is valid for `len` bytes; tokens is writable for its length.
            let n = unsafe {
                sys::llama_tokenize(
                    self.ptr.as_ptr(),
                    text.as_ptr().cast(),
                    len,
                    tokens.as_mut_ptr(),
                    tokens.len() as i32,
                    add_special,
                    parse_special,
                )
            };
            if n >= 0 {
                tokens.truncate(n as usize);
                return Ok(tokens);
            }
            if n == i32::MIN {
                return Err(LlamaError::Tokenize("the tokenizer rejected the text".into()));
            }
            // A negative count is the number of tokens needed.
            tokens.resize((-n) as usize, 0);
        }
        Err(LlamaError::Tokenize("token buffer size mismatch".into()))
    }

    /// Tokenize and report the byte range of `text` that each token covers, found by aligning the
    /// tokens' pieces with the text (so the ranges always reconstruct it exactly).
    pub fn tokenize_with_offsets(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<TokenizedText, LlamaError> {
        let tokens = self.tokenize(text, add_special, parse_special)?;
        let bytes = text.as_bytes();
        let mut ranges = Vec::with_capacity(tokens.len());
        let mut cursor = 0;
        for &token in &tokens {
            let piece = self.token_bytes(token, parse_special);
            let rest = &bytes[cursor..];
            let len = if !piece.is_empty() && rest.starts_with(&piece) {
                piece.len()
            } else if piece.first() == Some(&b' ') && rest.starts_with(&piece[1..]) {
                // SentencePiece-style tokenizers add a space before the first word.
                piece.len() - 1
            } else if self.is_control(token) || piece.is_empty() {
                // BOS/EOS added by the tokenizer cover no text.
                0
            } else {
                return Err(LlamaError::Tokenize(format!(
                    "cannot align token {token} ({:?}) with the text at byte {cursor}",
                    String::from_utf8_lossy(&piece)
                )));
            };
            ranges.push(cursor..cursor + len);
            cursor += len;
        }
        if cursor != bytes.len() {
            return Err(LlamaError::Tokenize(format!(
                "tokens cover {cursor} of {} bytes of the text",
                bytes.len()
            )));
        }
        Ok(TokenizedText { tokens, ranges })
    }

    /// The raw bytes of a token (may be part of a multi-byte UTF-8 character).
    pub fn token_bytes(&self, token: Token, special: bool) -> Vec<u8> {
        let mut buf = vec![0u8; 64];
        for _ in 0..2 {
            // SAFETY: buf is writable for its length; the result is not NUL-terminated.
            let n = unsafe {
                sys::llama_token_to_piece(
                    self.ptr.as_ptr(),
                    token,
                    buf.as_mut_ptr().cast(),
                    buf.len() as i32,
                    0,
                    special,
                )
            };
            if n >= 0 {
                buf.truncate(n as usize);
                return buf;
            }
            buf.resize((-n) as usize, 0);
        }
        Vec::new()
    }
}

/// Turns a stream of tokens into text, holding back bytes of a UTF-8 character that is split
/// across tokens until the character is complete.
pub struct TokenDecoder<'m> {
    vocab: Vocab<'m>,
    pending: Vec<u8>,
    special: bool,
}

impl<'m> TokenDecoder<'m> {
    /// `special`: render special tokens as their text (otherwise they produce nothing).
    pub fn new(vocab: Vocab<'m>, special: bool) -> Self {
        Self {
            vocab,
            pending: Vec::new(),
            special,
        }
    }

    /// Add a token; returns the text that is now complete.
    pub fn push(&mut self, token: Token) -> String {
        self.pending.extend(self.vocab.token_bytes(token, self.special));
        self.take_complete()
    }

    fn take_complete(&mut self) -> String {
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            // An invalid sequence (not just an incomplete one) will never become valid: emit it
            // replaced, so output is never stuck.
            Err(_) => {
                let text = String::from_utf8_lossy(&self.pending).into_owned();
                self.pending.clear();
                return text;
            }
        };
        let rest = self.pending.split_off(valid);
        String::from_utf8(std::mem::replace(&mut self.pending, rest)).expect("validated above")
    }

    /// Whatever is left at the end (an incomplete character is replaced by U+FFFD).
    pub fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}
