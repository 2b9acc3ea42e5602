//! The SpotLight correction as ggml ops, emitted into llama.cpp's graph once per attention layer.
//!
//! With P the post-softmax attention [n_kv, n_tokens, n_head, n_stream] and M the span mask
//! [n_kv, n_tokens, 1, n_stream], S = P·M holds the span part of P and p = Σ_kv S the span share
//! of every (query row, head). Where p is below the target τ (and above 0):
//! - head granularity: span probabilities × τ/p, the rest × (1−τ)/(1−p);
//! - layer granularity: with p̄ the mean share over heads and e^b = τ(1−p̄)/(p̄(1−τ)), every head
//!   gets the logit bias b on span keys: span × e^b/Z_h, rest × 1/Z_h, Z_h = p_h·e^b + 1 − p_h.
//!
//! Both are written as P' = P·f_rest + S·(f_span − f_rest) with per-(row, head) factors, so the
//! only full-size temporary is S and P is updated in place: S = P·M, p = Σ S, P·f_rest, S·d, P + S.
//! The factors come from the *target share* t = max(p, τ)·[p > 0]: t = τ where steering is
//! needed, t = p where the share is already enough (the factors are then exactly 1 and 0, so the
//! row keeps its bits), t = 0 where the span is not visible (S = 0 there; f_rest is exactly 1).
//! Every graph node costs a thread barrier per decode step, so the small per-row math is written
//! with as few ops as that allows.

use super::layers::LayerSelection;
use super::trace::{TraceSink, UbatchTrace};
use crate::llama::{AttnSteer, ComputedGraph, GraphBuilder, Tensor, UbatchInfo};
use std::sync::{Arc, Mutex};

/// Floor for p in divisions: keeps τ/p and e^b finite when p underflows.
const MIN_SHARE: f32 = 1e-30;

/// Per head, or one bias shared by all heads of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Head,
    Layer,
}

impl std::str::FromStr for Granularity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "head" => Ok(Granularity::Head),
            "layer" => Ok(Granularity::Layer),
            other => Err(format!("granularity must be `head` or `layer`, not `{other}`")),
        }
    }
}

impl std::fmt::Display for Granularity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Granularity::Head => "head",
            Granularity::Layer => "layer",
        })
    }
}

/// What the hook does in each selected layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// SpotLight: raise the span share to at least `alpha`.
    Steer { alpha: f32, granularity: Granularity },
    /// A constant logit bias `bias` on span keys (the fixed-bias baseline): span × e^b/Z, rest × 1/Z.
    StaticBias { bias: f32 },
    /// Change nothing, only measure the span share (for traces of unsteered runs).
    Observe,
}

/// Configuration of the steering hook.
#[derive(Debug, Clone, PartialEq)]
pub struct SteerConfig {
    pub action: Action,
    pub layers: LayerSelection,
    /// Measure the span share before and after the correction and record it per ubatch.
    pub trace: bool,
}

pub(crate) fn before_name(layer: usize) -> String {
    format!("spotlight_before-{layer}")
}

pub(crate) fn after_name(layer: usize) -> String {
    format!("spotlight_after-{layer}")
}

/// The [`AttnSteer`] implementation registered with the llama.cpp context.
pub struct SpotlightHook {
    config: SteerConfig,
    n_layer: usize,
    sink: Arc<Mutex<TraceSink>>,
}

impl SpotlightHook {
    pub fn new(config: SteerConfig, n_layer: usize, sink: Arc<Mutex<TraceSink>>) -> Self {
        Self { config, n_layer, sink }
    }

    /// Head granularity: f_span = t/p, f_rest = (1 − t)/(1 − p); returns (f_rest, f_span − f_rest).
    fn head_factors<'g>(g: &mut GraphBuilder<'g>, p: Tensor<'g>, alpha: f32) -> (Tensor<'g>, Tensor<'g>) {
        let t = target_share(g, p, alpha);
        let p_floor = g.clamp(p, MIN_SHARE, 1.0);
        let f_span = g.div(t, p_floor);
        let rest_t = g.scale_bias(t, -1.0, 1.0);
        let rest_p = g.scale_bias(p, -1.0, 1.0);
        let rest_p = g.clamp(rest_p, MIN_SHARE, 1.0);
        let f_rest = g.div(rest_t, rest_p);
        let diff = g.sub(f_span, f_rest);
        (f_rest, diff)
    }

    /// A logit bias on span keys, given as e^b − 1 (`eb_m1`, [1, T, 1|H, S]):
    /// Z_h = 1 + p_h·(e^b − 1), f_rest = 1/Z_h, f_span − f_rest = (e^b − 1)/Z_h.
    fn bias_factors<'g>(g: &mut GraphBuilder<'g>, p_head: Tensor<'g>, eb_m1: Tensor<'g>) -> (Tensor<'g>, Tensor<'g>) {
        let z = g.mul(p_head, eb_m1);
        let z = g.scale_bias(z, 1.0, 1.0);
        let one = g.scale_bias(z, 0.0, 1.0);
        let f_rest = g.div(one, z);
        let diff = g.mul(f_rest, eb_m1);
        (f_rest, diff)
    }

    /// Layer granularity: p̄ = mean over heads and, where 0 < p̄ < τ, e^b = τ(1 − p̄)/(p̄(1 − τ))
    /// for all heads (computed as k(1 − p̄)/p̄ with k = τ/(1 − τ), the rounding of the reference).
    fn layer_factors<'g>(g: &mut GraphBuilder<'g>, p_head: Tensor<'g>, alpha: f32) -> (Tensor<'g>, Tensor<'g>) {
        let n_head = p_head.shape()[2] as f32;
        // mean over heads: [1, T, H, S] → [H, T, 1, S] → sum → [1, T, 1, S]
        let by_head = g.permute(p_head, [2, 1, 0, 3]);
        let by_head = g.cont(by_head);
        let p_sum = g.sum_rows(by_head);
        let p_mean = g.scale_bias(p_sum, 1.0 / n_head, 0.0);
        // 1 where p̄ < τ: where p̄ ≥ τ, e^b − 1 must be exactly 0. (Where p̄ = 0 every p_h and
        // S are 0, so the huge but finite e^b of the floored p̄ multiplies only zeros.)
        let below = g.scale_bias(p_mean, -1.0, alpha);
        let need = g.step(below);
        let pc = g.clamp(p_mean, MIN_SHARE, alpha);
        let k = alpha / (1.0 - alpha);
        let num = g.scale_bias(pc, -k, k);
        let eb = g.div(num, pc);
        let eb_m1 = g.scale_bias(eb, 1.0, -1.0);
        let eb_m1 = g.mul(eb_m1, need);
        Self::bias_factors(g, p_head, eb_m1)
    }
}

/// The share the span should end with: max(p, τ) where the span is visible (p > 0), else 0.
fn target_share<'g>(g: &mut GraphBuilder<'g>, p: Tensor<'g>, alpha: f32) -> Tensor<'g> {
    let raised = g.clamp(p, alpha, 1.0);
    let seen = g.step(p);
    g.mul(raised, seen)
}

impl AttnSteer for SpotlightHook {
    fn build<'g>(
        &mut self,
        g: &mut GraphBuilder<'g>,
        kq: Tensor<'g>,
        span_mask: Tensor<'g>,
        layer: usize,
    ) -> Tensor<'g> {
        if !self.config.layers.contains(layer) {
            return kq;
        }
        let span = g.mul(kq, span_mask);
        let p_head = g.sum_rows(span);
        if self.config.trace {
            g.set_name(p_head, &before_name(layer));
            g.mark_output(p_head);
        }
        let (f_rest, diff) = match self.config.action {
            Action::Observe => return kq,
            Action::Steer {
                alpha,
                granularity: Granularity::Head,
            } => Self::head_factors(g, p_head, alpha),
            Action::Steer {
                alpha,
                granularity: Granularity::Layer,
            } => Self::layer_factors(g, p_head, alpha),
            Action::StaticBias { bias } => {
                // a constant e^b − 1 (rows that do not see the span have S = 0: the bias is moot)
                let eb_m1 = g.scale_bias(p_head, 0.0, bias.exp() - 1.0);
                Self::bias_factors(g, p_head, eb_m1)
            }
        };
        let rest = g.mul_inplace(kq, f_rest);
        let span = g.mul_inplace(span, diff);
        let steered = g.add_inplace(rest, span);
        if self.config.trace {
            let after_span = g.mul(steered, span_mask);
            let p_after = g.sum_rows(after_span);
            g.set_name(p_after, &after_name(layer));
            g.mark_output(p_after);
        }
        steered
    }

    fn wants_computed(&self) -> bool {
        self.config.trace
    }

    fn computed(&mut self, graph: &ComputedGraph<'_>, ubatch: &UbatchInfo<'_>) {
        if !self.config.trace {
            return;
        }
        let trace = UbatchTrace::read(graph, ubatch, self.n_layer);
        if let Ok(mut sink) = self.sink.lock() {
            sink.push(trace);
        }
    }
}
