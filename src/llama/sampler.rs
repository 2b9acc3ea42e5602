//! Token sampling (llama.cpp sampler chains).

use super::sys;
use super::{Context, Token};
use std::ptr::NonNull;

#[derive(Debug, Clone)]
pub struct SamplingParams {
    /// 0 = greedy (argmax).
    pub temp: f32,
    pub top_k: i32,
    pub top_p: f32,
    pub min_p: f32,
    /// 1.0 = off.
    pub repeat_penalty: f32,
    pub repeat_last_n: i32,
    /// OpenAI's penalties: subtract `frequency_penalty` × count and `presence_penalty` once
    /// from the logits of tokens seen in the last `repeat_last_n` (0.0 = off).
    pub frequency_penalty: f32,
    pub presence_penalty: f32,
    pub seed: u32,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temp: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            seed: 0xFFFF_FFFF,
        }
    }
}

pub struct Sampler {
    ptr: NonNull<sys::llama_sampler>,
}

// SAFETY: a sampler chain is plain state owned by this value; it is only used through &mut self.
unsafe impl Send for Sampler {}

impl Sampler {
    pub fn new(params: &SamplingParams, n_vocab: usize) -> Self {
        // SAFETY: all llama_sampler_init_* return owned samplers that the chain takes over.
        unsafe {
            let chain = sys::llama_sampler_chain_init(sys::llama_sampler_chain_default_params());
            let add = |s| sys::llama_sampler_chain_add(chain, s);
            if params.repeat_penalty != 1.0 || params.frequency_penalty != 0.0 || params.presence_penalty != 0.0 {
                add(sys::llama_sampler_init_penalties(
                    n_vocab as i32,
                    params.repeat_last_n,
                    params.repeat_penalty,
                    params.frequency_penalty,
                    params.presence_penalty,
                ));
            }
            if params.temp <= 0.0 {
                add(sys::llama_sampler_init_greedy());
            } else {
                add(sys::llama_sampler_init_top_k(params.top_k));
                add(sys::llama_sampler_init_top_p(params.top_p, 1));
                add(sys::llama_sampler_init_min_p(params.min_p, 1));
                add(sys::llama_sampler_init_temp(params.temp));
                add(sys::llama_sampler_init_dist(params.seed));
            }
            Self {
                ptr: NonNull::new(chain).expect("sampler chain allocation"),
            }
        }
    }

    /// Sample from the logits of batch index `idx` and record the choice (for penalties).
    pub fn sample(&mut self, ctx: &Context<'_>, idx: i32) -> Token {
        // an index without logits fails here, with this crate's message, not inside the sampler
        let _ = ctx.logits(idx);
        // SAFETY: the chain is owned by self and ctx is a live context borrowed for the call;
        // idx refers to a token with logits (checked just above).
        unsafe { sys::llama_sampler_sample(self.ptr.as_ptr(), ctx.raw_ptr(), idx) }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        // SAFETY: we own the chain, which frees its samplers.
        unsafe { sys::llama_sampler_free(self.ptr.as_ptr()) }
    }
}
