//! An inference context: KV cache, decoding, logits, and the attention-steering hook.

use super::backend::last_log_errors;
use super::error::{detail_from_log, LlamaError};
use super::graph::{build_fa_trampoline, build_trampoline, computed_trampoline, AttnSteer, SteerBox};
use super::sys;
use super::{Batch, Model, Pos, SeqId};
use std::ffi::c_void;
use std::ptr::NonNull;

/// Flash-attention policy (llama.cpp `-fa on|off|auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashAttn {
    On,
    Off,
    Auto,
}

#[derive(Debug, Clone)]
pub struct ContextParams {
    pub n_ctx: u32,
    pub n_batch: u32,
    pub n_ubatch: u32,
    pub n_threads: i32,
    /// Number of parallel sequences.
    pub n_seq_max: u32,
    pub flash_attn: FlashAttn,
}

impl Default for ContextParams {
    fn default() -> Self {
        Self {
            n_ctx: 2048,
            n_batch: 512,
            n_ubatch: 512,
            n_threads: 2,
            n_seq_max: 1,
            flash_attn: FlashAttn::Auto,
        }
    }
}

/// Timings reported by llama.cpp.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Perf {
    pub prompt_ms: f64,
    pub prompt_tokens: i32,
    pub gen_ms: f64,
    pub gen_tokens: i32,
    pub graphs_reused: i32,
}

pub struct Context<'m> {
    ptr: NonNull<sys::llama_context>,
    model: &'m Model,
    params: ContextParams,
    /// Registered steering hook; boxed twice so llama.cpp holds a thin, stable pointer.
    steer: Option<SteerBox>,
}

impl<'m> Context<'m> {
    pub fn new(model: &'m Model, params: ContextParams) -> Result<Self, LlamaError> {
        // SAFETY: default params are plain data.
        let mut cp = unsafe { sys::llama_context_default_params() };
        cp.n_ctx = params.n_ctx;
        cp.n_batch = params.n_batch;
        cp.n_ubatch = params.n_ubatch.min(params.n_batch);
        cp.n_threads = params.n_threads;
        cp.n_threads_batch = params.n_threads;
        cp.n_seq_max = params.n_seq_max;
        // Parallel sequences get a KV stream each (n_ctx is split between them). With one unified
        // buffer, this llama.cpp version gives a sequence different logits (up to ~0.5 measured)
        // as soon as another sequence has cells in the cache; separate streams match a solo run
        // bit for bit (tests/steering.rs, tests/eval_cli.rs).
        cp.kv_unified = params.n_seq_max == 1;
        cp.no_perf = false;
        cp.flash_attn_type = match params.flash_attn {
            FlashAttn::On => sys::LLAMA_FLASH_ATTN_TYPE_ENABLED,
            FlashAttn::Off => sys::LLAMA_FLASH_ATTN_TYPE_DISABLED,
            FlashAttn::Auto => sys::LLAMA_FLASH_ATTN_TYPE_AUTO,
        };
        last_log_errors();
        // SAFETY: the model pointer is valid for 'm, which outlives the context.
        let ptr = unsafe { sys::llama_init_from_model(model.as_ptr(), cp) };
        let ptr = NonNull::new(ptr).ok_or_else(|| LlamaError::ContextCreate(detail_from_log(&last_log_errors())))?;
        Ok(Self {
            ptr,
            model,
            params,
            steer: None,
        })
    }

    pub fn model(&self) -> &'m Model {
        self.model
    }

    pub fn params(&self) -> &ContextParams {
        &self.params
    }

    pub fn n_ctx(&self) -> u32 {
        // SAFETY: valid context pointer.
        unsafe { sys::llama_n_ctx(self.ptr.as_ptr()) }
    }

    /// Decode a batch. Errors name the cause: a full context, or llama.cpp's own message.
    pub fn decode(&mut self, batch: &Batch) -> Result<(), LlamaError> {
        last_log_errors();
        // SAFETY: the batch's arrays are valid for batch.len() entries; the steering hook (if
        // any) only touches the boxed steer, which no Rust reference aliases during this call.
        let status = unsafe { sys::llama_decode(self.ptr.as_ptr(), batch.raw()) };
        match status {
            0 => Ok(()),
            1 => Err(LlamaError::ContextFull { n_ctx: self.n_ctx() }),
            status => Err(LlamaError::Decode {
                status,
                detail: detail_from_log(&last_log_errors()),
            }),
        }
    }

    /// Logits of the i-th output-enabled token of the last batch (by its index in the batch).
    pub fn logits(&self, i: i32) -> &[f32] {
        let n_vocab = self.model.vocab().n_tokens();
        // SAFETY: llama.cpp returns a pointer to n_vocab floats for a token that requested
        // logits (it aborts otherwise); the data lives until the next decode, which needs &mut.
        unsafe {
            let p = sys::llama_get_logits_ith(self.ptr.as_ptr(), i);
            assert!(!p.is_null(), "no logits for batch index {i}");
            std::slice::from_raw_parts(p, n_vocab)
        }
    }

    /// Drop everything from the KV cache.
    pub fn clear_kv(&mut self) {
        // SAFETY: valid context; the memory handle belongs to it.
        unsafe { sys::llama_memory_clear(sys::llama_get_memory(self.ptr.as_ptr()), true) }
    }

    /// Remove positions [p0, p1) of a sequence (-1 = to the end) from the KV cache.
    pub fn remove_seq(&mut self, seq: SeqId, p0: Pos, p1: Pos) -> bool {
        // SAFETY: valid context and memory handle.
        unsafe { sys::llama_memory_seq_rm(sys::llama_get_memory(self.ptr.as_ptr()), seq, p0, p1) }
    }

    /// Largest position of a sequence in the KV cache (-1 if empty).
    pub fn seq_pos_max(&self, seq: SeqId) -> Pos {
        // SAFETY: valid context and memory handle.
        unsafe { sys::llama_memory_seq_pos_max(sys::llama_get_memory(self.ptr.as_ptr()), seq) }
    }

    pub fn perf(&self) -> Perf {
        // SAFETY: valid context.
        let d = unsafe { sys::llama_perf_context(self.ptr.as_ptr()) };
        Perf {
            prompt_ms: d.t_p_eval_ms,
            prompt_tokens: d.n_p_eval,
            gen_ms: d.t_eval_ms,
            gen_tokens: d.n_eval,
            graphs_reused: d.n_reused,
        }
    }

    pub fn reset_perf(&mut self) {
        // SAFETY: valid context.
        unsafe { sys::llama_perf_context_reset(self.ptr.as_ptr()) }
    }

    /// Install (or remove with None) the attention-steering algorithm.
    pub fn set_steer(&mut self, steer: Option<Box<dyn AttnSteer>>) {
        let old = self.steer.take();
        self.steer = steer.map(Box::new);
        match &mut self.steer {
            Some(boxed) => {
                let hooks = sys::llama_attn_steer_hooks {
                    build: Some(build_trampoline),
                    computed: if boxed.wants_computed() {
                        Some(computed_trampoline)
                    } else {
                        None
                    },
                    user_data: (&mut **boxed) as *mut Box<dyn AttnSteer> as *mut c_void,
                    build_fa: Some(build_fa_trampoline),
                };
                // SAFETY: the user data points into self.steer, which stays at a fixed heap
                // address until it is replaced here or the context is freed (hooks die with it).
                unsafe { sys::llama_attn_steer_set_hooks(self.ptr.as_ptr(), &hooks) };
            }
            // SAFETY: NULL clears the hooks.
            None => unsafe { sys::llama_attn_steer_set_hooks(self.ptr.as_ptr(), std::ptr::null()) },
        }
        // The previous steer is dropped only now that llama.cpp no longer points at it.
        drop(old);
    }

    /// Set the highlighted position ranges [p0, p1) of a sequence (empty = none).
    pub fn set_spans(&mut self, seq: SeqId, ranges: &[(Pos, Pos)]) {
        let flat: Vec<Pos> = ranges.iter().flat_map(|&(a, b)| [a, b]).collect();
        // SAFETY: flat holds 2 * ranges.len() positions; llama.cpp copies them.
        unsafe { sys::llama_attn_steer_set_spans(self.ptr.as_ptr(), seq, flat.as_ptr(), ranges.len()) }
    }

    /// Remove the highlighted spans of all sequences.
    pub fn clear_spans(&mut self) {
        // SAFETY: a negative sequence id clears all; no array is read.
        unsafe { sys::llama_attn_steer_set_spans(self.ptr.as_ptr(), -1, std::ptr::null(), 0) }
    }

    /// The steering parameters changed: rebuild the graph at the next decode.
    pub fn invalidate_steer(&mut self) {
        // SAFETY: valid context.
        unsafe { sys::llama_attn_steer_invalidate(self.ptr.as_ptr()) }
    }
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the context; the steer box is dropped after it (field drop order).
        unsafe { sys::llama_free(self.ptr.as_ptr()) }
    }
}

impl Context<'_> {
    pub(crate) fn raw_ptr(&self) -> *mut sys::llama_context {
        self.ptr.as_ptr()
    }
}
