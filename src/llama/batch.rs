//! A batch of tokens to decode.

use super::sys;
use super::{Pos, SeqId, Token};

pub struct Batch {
    raw: sys::llama_batch,
    capacity: usize,
    n_seq_max: usize,
}

impl Batch {
    /// A batch for up to `capacity` tokens, each in up to `n_seq_max` sequences.
    pub fn new(capacity: usize, n_seq_max: usize) -> Self {
        assert!(
            capacity > 0 && n_seq_max > 0,
            "a batch needs room for a token and a sequence"
        );
        // SAFETY: allocates arrays of `capacity` entries (embd = 0: token batch); freed on drop.
        let raw = unsafe { sys::llama_batch_init(capacity as i32, 0, n_seq_max as i32) };
        Self {
            raw,
            capacity,
            n_seq_max,
        }
    }

    pub fn len(&self) -> usize {
        self.raw.n_tokens as usize
    }

    pub fn is_empty(&self) -> bool {
        self.raw.n_tokens == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn clear(&mut self) {
        self.raw.n_tokens = 0;
    }

    /// Append a token; `logits`: compute its output logits. Panics when full (a caller bug).
    pub fn add(&mut self, token: Token, pos: Pos, seqs: &[SeqId], logits: bool) {
        let i = self.len();
        assert!(i < self.capacity, "batch full ({} tokens)", self.capacity);
        assert!(
            !seqs.is_empty() && seqs.len() <= self.n_seq_max,
            "bad sequence list {seqs:?}"
        );
        // SAFETY: i < capacity and seqs.len() <= n_seq_max, the sizes the arrays were allocated with.
        unsafe {
            *self.raw.token.add(i) = token;
            *self.raw.pos.add(i) = pos;
            *self.raw.n_seq_id.add(i) = seqs.len() as i32;
            let dst = *self.raw.seq_id.add(i);
            for (k, &s) in seqs.iter().enumerate() {
                *dst.add(k) = s;
            }
            *self.raw.logits.add(i) = logits as i8;
        }
        self.raw.n_tokens += 1;
    }

    pub(crate) fn raw(&self) -> sys::llama_batch {
        self.raw
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        // SAFETY: raw was allocated by llama_batch_init and is freed once.
        unsafe { sys::llama_batch_free(self.raw) }
    }
}
