//! The SpotLight correction with flash attention on, where no probability matrix exists.
//!
//! Per layer, query row and head, with O = FA(Q, K, V) the stock output and S the highlighted
//! cells (softmax weights p_j over all visible cells):
//! - the span share ψ = Σ_{j∈S} p_j is FA(Q, K, 1_S): flash attention with values that are 1 on
//!   highlighted cells and 0 elsewhere (same mask, scale, soft-cap and sinks as the stock pass);
//! - O_S = FA(Q, K_w, V_w) over the window of highlighted cells with every other cell masked
//!   out: the span's part of the output, normalised over the span alone, so that
//!   O = (1 − ψ)·O_rest + ψ·O_S;
//! - span keys × e^b (the same e^b − 1 as the non-flash path: head, layer or static) turns that
//!   mixture into O' = (O + c·O_S) / (1 + c) with c = ψ·(e^b − 1). Where ψ ≥ τ, c = 0 and the row
//!   keeps its bits (O + 0·O_S = O, divided by 1).
//!
//! The span's share after steering is (ψ + c)/(1 + c), which is what the trace records.
//!
//! Cost: the ψ pass walks every visible cell like the stock pass (its values are one column on
//! the CPU, the layer's value width elsewhere, where flash-attention kernels exist only for the
//! model's head sizes); the O_S pass and the masks are window-sized.
//!
//! Exactness assumes a cell's highlight does not depend on which of its sequences looks at it
//! (true unless one cell of a unified cache is shared by sequences highlighted differently):
//! 1_S is per cell, the highlight of the sequences that see it.

use super::config::{Action, Granularity, SteerConfig};
use super::controller::bias_to_reach;
use super::trace::{after_name, before_name};
use crate::llama::{ElemType, FlashAttnOperands, GraphBuilder, SpanMask, Tensor};

/// A mask value that removes a cell from a softmax yet stays finite in F16, so that a row with
/// no highlighted cell in view gives a finite (and unused: ψ = 0 there) O_S rather than 0/0.
const MASKED_OUT: f32 = 65504.0;

/// Rows from which ggml's CPU flash attention uses its tiled kernel (GGML_FA_TILE_Q).
const CPU_FA_TILE: i64 = 64;

/// The steered attention output of one layer, or `fa.out` where nothing is to change.
pub fn steer_flash<'g>(
    g: &mut GraphBuilder<'g>,
    fa: FlashAttnOperands<'g>,
    span: SpanMask<'g>,
    config: &SteerConfig,
    layer: usize,
) -> Tensor<'g> {
    if !config.layers.contains(layer) {
        return fa.out;
    }
    let psi = span_share(g, &fa, span);
    if config.trace {
        let before = by_token(g, psi);
        g.set_name(before, &before_name(layer));
        g.mark_output(before);
    }
    // c = ψ·(e^b − 1), [1, H, T, S]; e^b − 1 per row and head, per row (layer), or a constant
    let c = match config.action {
        Action::Observe => return fa.out,
        // every share is ≥ 0: τ ≤ 0 asks for nothing
        Action::Steer { alpha, .. } if alpha <= 0.0 => return fa.out,
        Action::Steer {
            alpha,
            granularity: Granularity::Head,
        } => {
            let eb_m1 = bias_to_reach(g, psi, alpha);
            g.mul(psi, eb_m1)
        }
        Action::Steer {
            alpha,
            granularity: Granularity::Layer,
        } => {
            let mean = mean_over_heads(g, psi);
            let eb_m1 = bias_to_reach(g, mean, alpha);
            g.mul(psi, eb_m1)
        }
        Action::StaticBias { bias } => g.scale_bias(psi, bias.exp() - 1.0, 0.0),
    };
    let span_out = span_output(g, &fa, span);
    let weighted = g.mul(span_out, c);
    let num = g.add(fa.out, weighted);
    let den = g.scale_bias(c, 1.0, 1.0);
    if config.trace {
        let raised = g.add(psi, c);
        let after = g.div(raised, den);
        let after = by_token(g, after);
        g.set_name(after, &after_name(layer));
        g.mark_output(after);
    }
    g.div(num, den)
}

/// O_S, the attention output over the highlighted cells alone: [d_v, H, T, S].
fn span_output<'g>(g: &mut GraphBuilder<'g>, fa: &FlashAttnOperands<'g>, span: SpanMask<'g>) -> Tensor<'g> {
    let n_w = span.mask.shape()[0];
    let k = g.view_rows(fa.k, span.kv0, n_w);
    let v = g.view_rows(fa.v, span.kv0, n_w);
    // the CPU kernel accumulates F16 values in F16 and F32 values in F32: a window-sized copy
    // buys this pass F32 accumulation (elsewhere kernels accumulate in F32 and take F16 only)
    let v = if fa.values_on_host() {
        g.cast(v, ElemType::F32)
    } else {
        v
    };
    // the stock mask on the window (visibility, ALiBi) plus −MASKED_OUT on cells outside the
    // span, clamped so that −∞ becomes finite; F16 and contiguous, as flash attention takes it
    let stock = g.view_columns(fa.kq_mask, span.kv0, n_w);
    let stock = g.cast(stock, ElemType::F32);
    let outside = g.scale_bias(span.mask, MASKED_OUT, -MASKED_OUT);
    let mask = g.add(stock, outside);
    let mask = g.clamp(mask, -MASKED_OUT, MASKED_OUT);
    let mask = g.cast(mask, ElemType::F16);
    g.flash_attn(fa, k, v, mask, None)
}

/// ψ, the span share per row and head: [1, H, T, S].
fn span_share<'g>(g: &mut GraphBuilder<'g>, fa: &FlashAttnOperands<'g>, span: SpanMask<'g>) -> Tensor<'g> {
    // 1_S per cell of the window: highlighted for some query of the ubatch ([1, n_w, 1, S]);
    // a cell no query sees has weight 0 anyway
    let by_cell = g.transpose(span.mask);
    let by_cell = g.cont(by_cell);
    let seen = g.sum_rows(by_cell);
    let in_span = g.step(seen);
    let n_kv = fa.k.shape()[1];
    let n_w = span.mask.shape()[0];
    let ones = g.pad_rows(in_span, span.kv0, n_kv - span.kv0 - n_w);
    let ones = if fa.values_on_host() {
        // the CPU kernel takes any value width. It accumulates F32 values in F32; F16 values in
        // F16, except in its tiled kernel (F32), which it uses for ≥ CPU_FA_TILE rows when K and
        // V have one type: a prompt's rows get one F16 column (the fast tiled kernel), a decode
        // step one F32 column
        if fa.q.shape()[1] >= CPU_FA_TILE && fa.k.elem_type() == Some(ElemType::F16) {
            g.cast(ones, ElemType::F16)
        } else {
            ones
        }
    } else {
        let [d_v, _, n_head_kv, n_stream] = fa.v.shape();
        let wide = g.repeat(ones, [d_v, n_kv, n_head_kv, n_stream]);
        g.cast(wide, ElemType::F16)
    };
    let share = g.flash_attn(fa, fa.k, ones, fa.kq_mask, fa.sinks);
    let first = g.view_first_of_rows(share);
    g.cont(first)
}

/// [1, H, T, S] → [1, T, H, S], the trace's layout (that of the non-flash path).
fn by_token<'g>(g: &mut GraphBuilder<'g>, a: Tensor<'g>) -> Tensor<'g> {
    let t = g.permute(a, [0, 2, 1, 3]);
    g.cont(t)
}

/// Mean over heads: [1, H, T, S] → [1, 1, T, S].
fn mean_over_heads<'g>(g: &mut GraphBuilder<'g>, psi: Tensor<'g>) -> Tensor<'g> {
    let n_head = psi.shape()[1] as f32;
    let heads_first = g.permute(psi, [1, 0, 2, 3]);
    let heads_first = g.cont(heads_first);
    let sum = g.sum_rows(heads_first);
    g.scale_bias(sum, 1.0 / n_head, 0.0)
}
