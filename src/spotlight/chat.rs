//! Multi-turn chat on one KV cache: every turn is rendered through the chat template in full, the
//! cached prefix is reused (no re-prefill of earlier turns), and highlights of earlier turns stay
//! steered because their positions stay in the span list.

use super::markup::{self, Highlighted};
use super::prompt::{prepare, PromptError, Turn};
use super::session::{GenerateOptions, Generation, Session};
use crate::llama::{ChatTemplate, Token};

pub struct Chat<'m> {
    session: Session<'m>,
    template: Option<ChatTemplate>,
    turns: Vec<Turn>,
    /// Tokens the KV cache holds for the conversation, in order.
    cached: Vec<Token>,
}

/// A highlighted span of the conversation, for listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSpan {
    pub turn: usize,
    pub role: String,
    pub text: String,
}

impl<'m> Chat<'m> {
    /// `template`: None sends turns without a chat template (raw).
    pub fn new(session: Session<'m>, template: Option<ChatTemplate>, system: Option<Highlighted>) -> Self {
        let turns = system
            .map(|content| {
                vec![Turn {
                    role: "system".into(),
                    content,
                }]
            })
            .unwrap_or_default();
        Self {
            session,
            template,
            turns,
            cached: Vec::new(),
        }
    }

    pub fn session(&mut self) -> &mut Session<'m> {
        &mut self.session
    }

    /// Send a user turn and generate the reply.
    pub fn send(
        &mut self,
        user: Highlighted,
        options: &GenerateOptions,
        on_text: impl FnMut(&str),
    ) -> Result<Generation, PromptError> {
        self.turns.push(Turn {
            role: "user".into(),
            content: user,
        });
        let vocab = self.session.model().vocab();
        let prepared = match prepare(vocab, self.template.as_ref(), &self.turns, true) {
            Ok(p) => p,
            Err(e) => {
                self.turns.pop();
                return Err(e);
            }
        };
        let reuse = self
            .cached
            .iter()
            .zip(&prepared.tokens)
            .take_while(|(a, b)| a == b)
            .count();
        let out = match self.session.generate_continuing(&prepared, reuse, options, on_text) {
            Ok(out) => out,
            Err(e) => {
                self.turns.pop();
                self.cached.clear();
                return Err(e.into());
            }
        };
        self.cached = prepared
            .tokens
            .iter()
            .chain(&out.tokens)
            .copied()
            .take(out.kv_len)
            .collect();
        self.turns.push(Turn {
            role: "assistant".into(),
            content: markup::plain(&out.text),
        });
        Ok(out)
    }

    /// All highlighted spans of the conversation so far.
    pub fn spans(&self) -> Vec<ActiveSpan> {
        let mut spans = Vec::new();
        for (i, t) in self.turns.iter().enumerate() {
            for r in &t.content.spans {
                spans.push(ActiveSpan {
                    turn: i,
                    role: t.role.clone(),
                    text: t.content.text[r.clone()].to_string(),
                });
            }
        }
        spans
    }

    /// Forget the conversation (the system prompt stays).
    pub fn clear(&mut self) {
        self.turns.retain(|t| t.role == "system");
        self.cached.clear();
    }

    pub fn n_turns(&self) -> usize {
        self.turns.len()
    }
}
