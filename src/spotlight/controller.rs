//! The SpotLight correction as ggml ops, emitted into llama.cpp's graph once per attention layer.
//!
//! With P the post-softmax attention [n_kv, n_tokens, n_head, n_stream] and M the span mask, S = P·M
//! holds the span part of P and p = Σ_kv S the span share of every (query row, head). Where p is
//! below the target τ (and above 0):
//! - head granularity: span probabilities × τ/p, the rest × (1−τ)/(1−p);
//! - layer granularity: with p̄ the mean share over heads and e^b = τ(1−p̄)/(p̄(1−τ)), every head
//!   gets the logit bias b on span keys: span × e^b/Z_h, rest × 1/Z_h, Z_h = p_h·e^b + 1 − p_h.
//!
//! Head granularity is the same bias computed per head (e^b from p_h makes the share exactly τ),
//! so all three actions (with the static bias) are "span keys × e^b, then renormalise". That is
//! written as P + S·(e^b − 1), with Z = 1 + p·(e^b − 1) handed back as the row sums that llama.cpp
//! divides the attention output by. The patch passes the mask only for the window of KV cells
//! holding highlighted positions, so S = P_w·M, p = Σ S, S·(e^b − 1) and P_w += S·(e^b − 1) touch
//! only those columns (P_w a view of P): there is no pass over the whole attention matrix, and
//! the only temporary is S (window-sized).
//!
//! e^b − 1 = (τ − p_c)/(p_c·(1 − τ)) with p_c = clamp(p, ε, τ): exactly 0 where p ≥ τ (p_c = τ), so
//! those rows keep their bits (Z = 1); where the span is not visible (p = 0, S = 0) it is huge
//! but finite and multiplies only zeros. Every graph node costs a thread barrier per decode step,
//! so the small per-row math uses as few ops as that allows.

use super::config::{Action, Granularity, SteerConfig, MIN_SHARE};
use super::trace::{after_name, before_name, TraceSink, UbatchTrace};
use crate::llama::{
    AttnSteer, ComputedGraph, FlashAttnOperands, GraphBuilder, SpanMask, SteeredAttention, Tensor, UbatchInfo,
};
use std::sync::{Arc, Mutex};

/// The [`AttnSteer`] implementation registered with the llama.cpp context.
pub struct SpotlightHook {
    config: SteerConfig,
    n_layer: usize,
    sink: Arc<Mutex<TraceSink>>,
}

impl SpotlightHook {
    /// # Panics
    /// If the configuration breaks [`SteerConfig::check`] (τ outside [0, 1), a non-finite
    /// static bias): such a graph produces garbage, and every parser builds τ through
    /// [`Alpha`](super::config::Alpha), so only a hand-written configuration gets here.
    pub fn new(config: SteerConfig, n_layer: usize, sink: Arc<Mutex<TraceSink>>) -> Self {
        if let Err(e) = config.check() {
            panic!("invalid steering configuration: {e}");
        }
        Self { config, n_layer, sink }
    }
}

/// The bias that raises a share p to τ where it is below: e^b − 1 = (τ − p_c)/(p_c(1 − τ)),
/// p_c = clamp(p, ε, τ); exactly 0 where p ≥ τ.
pub(super) fn bias_to_reach<'g>(g: &mut GraphBuilder<'g>, p: Tensor<'g>, alpha: f32) -> Tensor<'g> {
    let pc = g.clamp(p, MIN_SHARE, alpha);
    let num = g.scale_bias(pc, -1.0, alpha);
    let den = g.scale_bias(pc, 1.0 - alpha, 0.0);
    g.div(num, den)
}

/// Mean share over the heads of a layer: [1, T, H, S] → [1, T, 1, S].
fn mean_over_heads<'g>(g: &mut GraphBuilder<'g>, p_head: Tensor<'g>) -> Tensor<'g> {
    let n_head = p_head.shape()[2] as f32;
    // sum_rows reduces dimension 0: [1, T, H, S] → [H, T, 1, S] (contiguous) → [1, T, 1, S]
    let by_head = g.permute(p_head, [2, 1, 0, 3]);
    let by_head = g.cont(by_head);
    let p_sum = g.sum_rows(by_head);
    g.scale_bias(p_sum, 1.0 / n_head, 0.0)
}

/// e^b − 1 per row (and head), or one constant for the static bias.
enum BiasMinusOne<'g> {
    PerRow(Tensor<'g>),
    Constant(f32),
}

impl AttnSteer for SpotlightHook {
    fn build<'g>(
        &mut self,
        g: &mut GraphBuilder<'g>,
        kq: Tensor<'g>,
        span: SpanMask<'g>,
        layer: usize,
    ) -> SteeredAttention<'g> {
        if !self.config.layers.contains(layer) {
            return SteeredAttention::unchanged(kq);
        }
        let width = span.mask.shape()[0];
        let window = g.view_columns(kq, span.kv0, width);
        let s = g.mul(window, span.mask);
        let p_head = g.sum_rows(s);
        if self.config.trace {
            g.set_name(p_head, &before_name(layer));
            g.mark_output(p_head);
        }
        let eb_m1 = match self.config.action {
            Action::Observe => return SteeredAttention::unchanged(kq),
            // every share is ≥ 0: τ ≤ 0 asks for nothing (and would break the clamp below)
            Action::Steer { alpha, .. } if alpha <= 0.0 => BiasMinusOne::Constant(0.0),
            Action::Steer {
                alpha,
                granularity: Granularity::Head,
            } => BiasMinusOne::PerRow(bias_to_reach(g, p_head, alpha)),
            Action::Steer {
                alpha,
                granularity: Granularity::Layer,
            } => {
                let p_mean = mean_over_heads(g, p_head);
                BiasMinusOne::PerRow(bias_to_reach(g, p_mean, alpha))
            }
            Action::StaticBias { bias } => BiasMinusOne::Constant(bias.exp() - 1.0),
        };
        // span keys × e^b: P_w += S·(e^b − 1) in place; row sums Z = 1 + p·(e^b − 1)
        let (extra, row_sums) = match eb_m1 {
            BiasMinusOne::PerRow(eb_m1) => {
                let z = g.mul(p_head, eb_m1);
                (g.mul_inplace(s, eb_m1), g.scale_bias(z, 1.0, 1.0))
            }
            BiasMinusOne::Constant(c) => (g.scale_bias(s, c, 0.0), g.scale_bias(p_head, c, 1.0)),
        };
        let probs = g.add_to_columns(kq, span.kv0, extra);
        if self.config.trace {
            let window_steered = g.view_columns(probs, span.kv0, width);
            let after_span = g.mul(window_steered, span.mask);
            let after_sum = g.sum_rows(after_span);
            let p_after = g.div(after_sum, row_sums);
            g.set_name(p_after, &after_name(layer));
            g.mark_output(p_after);
        }
        SteeredAttention {
            probs,
            row_sums: Some(row_sums),
        }
    }

    fn build_flash<'g>(
        &mut self,
        g: &mut GraphBuilder<'g>,
        fa: FlashAttnOperands<'g>,
        span: SpanMask<'g>,
        layer: usize,
    ) -> Tensor<'g> {
        super::flash::steer_flash(g, fa, span, &self.config, layer)
    }

    fn wants_computed(&self) -> bool {
        self.config.trace
    }

    fn computed(&mut self, graph: &ComputedGraph<'_>, ubatch: &UbatchInfo<'_>) {
        if !self.config.trace {
            return;
        }
        let trace = UbatchTrace::read(graph, ubatch, &self.config, self.n_layer);
        if let Ok(mut sink) = self.sink.lock() {
            sink.push(trace);
        }
    }
}
