//! Per-layer span shares read back after each computed ubatch, and their JSONL form.

use super::controller::{after_name, before_name, Granularity};
use crate::llama::{ComputedGraph, UbatchInfo};
use serde::Serialize;

/// Span shares of one layer for one ubatch, indexed [token][head].
#[derive(Debug, Clone)]
pub struct LayerShares {
    pub layer: usize,
    pub n_head: usize,
    pub before: Vec<f32>,
    /// Absent for observe-only runs.
    pub after: Option<Vec<f32>>,
}

impl LayerShares {
    pub fn before_at(&self, token: usize, head: usize) -> f32 {
        self.before[token * self.n_head + head]
    }

    pub fn after_at(&self, token: usize, head: usize) -> Option<f32> {
        self.after.as_ref().map(|a| a[token * self.n_head + head])
    }

    /// Mean over heads of a [token][head] share table.
    pub fn mean_over_heads(shares: &[f32], n_head: usize, token: usize) -> f32 {
        shares[token * n_head..(token + 1) * n_head].iter().sum::<f32>() / n_head as f32
    }
}

/// What one computed ubatch looked like.
#[derive(Debug, Clone)]
pub struct UbatchTrace {
    pub pos: Vec<i32>,
    pub seq_ids: Vec<i32>,
    pub layers: Vec<LayerShares>,
}

/// Reorder a ggml [1, T/S, H, S] tensor into [token][head] with token = stream·(T/S) + row.
fn to_token_head(data: &[f32], ne: [i64; 4]) -> (Vec<f32>, usize) {
    let (rows, n_head, n_stream) = (ne[1] as usize, ne[2] as usize, ne[3] as usize);
    let mut out = vec![0f32; rows * n_head * n_stream];
    for s in 0..n_stream {
        for h in 0..n_head {
            for r in 0..rows {
                out[(s * rows + r) * n_head + h] = data[r + rows * (h + n_head * s)];
            }
        }
    }
    (out, n_head)
}

impl UbatchTrace {
    pub(crate) fn read(graph: &ComputedGraph<'_>, ubatch: &UbatchInfo<'_>, n_layer: usize) -> Self {
        let layers = (0..n_layer)
            .filter_map(|layer| {
                let (data, ne) = graph.read_f32(&before_name(layer))?;
                let (before, n_head) = to_token_head(&data, ne);
                let after = graph
                    .read_f32(&after_name(layer))
                    .map(|(d, ne)| to_token_head(&d, ne).0);
                Some(LayerShares {
                    layer,
                    n_head,
                    before,
                    after,
                })
            })
            .collect();
        Self {
            pos: ubatch.pos.to_vec(),
            seq_ids: ubatch.seq_ids.clone(),
            layers,
        }
    }
}

/// Collects traces as llama.cpp computes ubatches; drained by the caller after each decode.
#[derive(Debug, Default)]
pub struct TraceSink {
    pending: Vec<UbatchTrace>,
}

impl TraceSink {
    pub fn push(&mut self, t: UbatchTrace) {
        self.pending.push(t);
    }

    pub fn drain(&mut self) -> Vec<UbatchTrace> {
        std::mem::take(&mut self.pending)
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Stats {
    pub mean: f32,
    pub min: f32,
    pub max: f32,
}

fn stats(values: &[f32]) -> Option<Stats> {
    if values.is_empty() {
        return None;
    }
    let mut s = Stats {
        mean: 0.0,
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
    };
    for &v in values {
        s.mean += v;
        s.min = s.min.min(v);
        s.max = s.max.max(v);
    }
    s.mean /= values.len() as f32;
    Some(s)
}

/// One layer of a trace line.
#[derive(Debug, Clone, Serialize)]
pub struct LayerSummary {
    pub layer: usize,
    /// Units (rows × heads for `head`, rows for `layer` granularity) that see a highlighted token.
    pub units: usize,
    /// Units whose share was below τ (those the correction acts on).
    pub steered: usize,
    pub before: Option<Stats>,
    pub after: Option<Stats>,
    /// Equivalent logit bias b = ln(τ(1−p)/(p(1−τ))) over the steered units.
    pub bias: Option<Stats>,
    /// Per-head shares of the last token of the ubatch (the one whose logits are sampled).
    pub last_token_before: Vec<f32>,
    pub last_token_after: Option<Vec<f32>>,
}

/// One line of `--trace FILE.jsonl`: one decode call (one ubatch).
#[derive(Debug, Clone, Serialize)]
pub struct TraceLine {
    pub step: usize,
    /// "prefill" for the prompt, "decode" for generated tokens.
    pub phase: &'static str,
    pub n_tokens: usize,
    pub first_pos: i32,
    pub alpha: f32,
    pub granularity: Granularity,
    pub layers: Vec<LayerSummary>,
}

/// Summarise a ubatch trace for the JSONL file.
pub fn summarize(t: &UbatchTrace, step: usize, alpha: f32, granularity: Granularity) -> TraceLine {
    let n_tokens = t.pos.len();
    let layers = t
        .layers
        .iter()
        .map(|l| {
            let unit_values = |shares: &[f32]| -> Vec<(usize, f32)> {
                match granularity {
                    Granularity::Head => shares.iter().copied().enumerate().collect(),
                    Granularity::Layer => (0..n_tokens)
                        .map(|tok| (tok, LayerShares::mean_over_heads(shares, l.n_head, tok)))
                        .collect(),
                }
            };
            let before_units = unit_values(&l.before);
            let seen: Vec<usize> = before_units.iter().filter(|(_, p)| *p > 0.0).map(|(i, _)| *i).collect();
            let before: Vec<f32> = seen.iter().map(|&i| before_units[i].1).collect();
            let after = l.after.as_ref().map(|a| {
                let au = unit_values(a);
                seen.iter().map(|&i| au[i].1).collect::<Vec<f32>>()
            });
            let biases: Vec<f32> = before
                .iter()
                .filter(|&&p| p < alpha)
                .map(|&p| ((alpha * (1.0 - p)) / (p.max(1e-30) * (1.0 - alpha))).ln())
                .collect();
            let last = n_tokens.saturating_sub(1);
            let head_slice = |v: &Vec<f32>| v[last * l.n_head..(last + 1) * l.n_head].to_vec();
            LayerSummary {
                layer: l.layer,
                units: before.len(),
                steered: biases.len(),
                before: stats(&before),
                after: after.as_deref().and_then(stats),
                bias: if alpha > 0.0 { stats(&biases) } else { None },
                last_token_before: if n_tokens > 0 { head_slice(&l.before) } else { vec![] },
                last_token_after: l.after.as_ref().filter(|_| n_tokens > 0).map(head_slice),
            }
        })
        .collect();
    TraceLine {
        step,
        phase: if n_tokens > 1 || step == 0 { "prefill" } else { "decode" },
        n_tokens,
        first_pos: t.pos.first().copied().unwrap_or(0),
        alpha,
        granularity,
        layers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorders_stream_major_tensor_to_token_head() {
        // ne = [1, rows=2, heads=3, streams=1]: data[r + 2*h]
        let data = [0.0, 1.0, 10.0, 11.0, 20.0, 21.0];
        let (out, n_head) = to_token_head(&data, [1, 2, 3, 1]);
        assert_eq!(n_head, 3);
        assert_eq!(out, vec![0.0, 10.0, 20.0, 1.0, 11.0, 21.0]);
    }

    #[test]
    fn summary_counts_only_units_that_see_the_span() {
        let t = UbatchTrace {
            pos: vec![0, 1],
            seq_ids: vec![0, 0],
            layers: vec![LayerShares {
                layer: 0,
                n_head: 2,
                before: vec![0.0, 0.0, 0.05, 0.3],
                after: Some(vec![0.0, 0.0, 0.1, 0.3]),
            }],
        };
        let line = summarize(&t, 0, 0.1, Granularity::Head);
        let l = &line.layers[0];
        assert_eq!((l.units, l.steered), (2, 1));
        assert_eq!(l.before.unwrap().min, 0.05);
        assert_eq!(l.after.unwrap().min, 0.1);
        let b = l.bias.unwrap().mean;
        assert!((b - ((0.1f32 * 0.95) / (0.05 * 0.9)).ln()).abs() < 1e-5);
        assert_eq!(l.last_token_before, vec![0.05, 0.3]);
    }
}
