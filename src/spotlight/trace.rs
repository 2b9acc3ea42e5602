//! Per-layer span shares read back after each computed ubatch, and their JSONL form.

use super::config::{Granularity, SteerConfig, DEFAULT_GRANULARITY};
use crate::llama::{ComputedGraph, UbatchInfo};
use serde::Serialize;

/// Name of the graph output holding a layer's span shares before the correction. The hook in
/// `controller.rs` names its outputs with these and [`UbatchTrace::read`] looks them up, so the
/// names live with the reader and the controller depends on the trace, not both ways.
pub(crate) fn before_name(layer: usize) -> String {
    format!("spotlight_before-{layer}")
}

/// Name of a layer's span shares after the correction (see [`before_name`]).
pub(crate) fn after_name(layer: usize) -> String {
    format!("spotlight_after-{layer}")
}

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
    /// The configuration of the hook that computed it (chat's `/alpha` changes it between turns).
    pub config: SteerConfig,
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
    /// Only the rows (tokens) of sequence `seq`: one request's part of a shared batch.
    pub fn rows_of(&self, seq: i32) -> UbatchTrace {
        let keep: Vec<usize> = (0..self.seq_ids.len()).filter(|&i| self.seq_ids[i] == seq).collect();
        let pick = |v: &[f32], n_head: usize| -> Vec<f32> {
            keep.iter()
                .flat_map(|&t| v[t * n_head..(t + 1) * n_head].iter().copied())
                .collect()
        };
        UbatchTrace {
            pos: keep.iter().map(|&i| self.pos[i]).collect(),
            seq_ids: keep.iter().map(|&i| self.seq_ids[i]).collect(),
            layers: self
                .layers
                .iter()
                .map(|l| LayerShares {
                    layer: l.layer,
                    n_head: l.n_head,
                    before: pick(&l.before, l.n_head),
                    after: l.after.as_ref().map(|a| pick(a, l.n_head)),
                })
                .collect(),
            config: self.config.clone(),
        }
    }

    pub(crate) fn read(
        graph: &ComputedGraph<'_>,
        ubatch: &UbatchInfo<'_>,
        config: &SteerConfig,
        n_layer: usize,
    ) -> Self {
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
            config: config.clone(),
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
    /// Equivalent logit bias over the steered units ([`Action::bias_for_share`]).
    ///
    /// [`Action::bias_for_share`]: super::config::Action::bias_for_share
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
    /// τ of the configuration (0 when it does not steer toward a share); read by `spotlight plot`.
    pub alpha: f32,
    /// The units of `units`/`steered`/`before`/`after`: the configuration's granularity, or
    /// the default one for a configuration without (observation, static bias).
    pub granularity: Granularity,
    /// The configuration the ubatch was computed under (`action`, `alpha`, `granularity`,
    /// `layers`), nested because `layers` below is the per-layer summary.
    pub config: SteerConfig,
    pub layers: Vec<LayerSummary>,
}

/// Summarise a ubatch trace for the JSONL file.
pub fn summarize(t: &UbatchTrace, step: usize) -> TraceLine {
    let n_tokens = t.pos.len();
    let action = &t.config.action;
    let granularity = t.config.granularity().unwrap_or(DEFAULT_GRANULARITY);
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
            let biases: Vec<f32> = before.iter().filter_map(|&p| action.bias_for_share(p)).collect();
            let last = n_tokens.saturating_sub(1);
            let head_slice = |v: &Vec<f32>| v[last * l.n_head..(last + 1) * l.n_head].to_vec();
            LayerSummary {
                layer: l.layer,
                units: before.len(),
                steered: biases.len(),
                before: stats(&before),
                after: after.as_deref().and_then(stats),
                bias: stats(&biases),
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
        alpha: t.config.alpha(),
        granularity,
        config: t.config.clone(),
        layers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spotlight::config::Action;
    use crate::spotlight::LayerSelection;

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
            config: SteerConfig {
                action: Action::Steer {
                    alpha: 0.1,
                    granularity: Granularity::Head,
                },
                decode: None,
                layers: LayerSelection::All,
                trace: true,
            },
        };
        let line = summarize(&t, 0);
        let l = &line.layers[0];
        assert_eq!((l.units, l.steered), (2, 1));
        assert_eq!(l.before.unwrap().min, 0.05);
        assert_eq!(l.after.unwrap().min, 0.1);
        let b = l.bias.unwrap().mean;
        assert!((b - ((0.1f32 * 0.95) / (0.05 * 0.9)).ln()).abs() < 1e-5);
        assert_eq!(l.last_token_before, vec![0.05, 0.3]);
        // the line carries its configuration: the fields `spotlight plot` reads, and the rest
        let v = serde_json::to_value(&line).unwrap();
        assert!((v["alpha"].as_f64().unwrap() - 0.1).abs() < 1e-6);
        assert_eq!(v["granularity"], "head");
        assert_eq!(v["config"]["action"], "steer");
        assert_eq!(v["config"]["layers"], "all");
        assert_eq!(v["layers"][0]["layer"], 0);
    }

    #[test]
    fn observed_traces_have_no_bias_and_the_default_units() {
        let t = UbatchTrace {
            pos: vec![0, 1],
            seq_ids: vec![0, 0],
            layers: vec![LayerShares {
                layer: 3,
                n_head: 2,
                before: vec![0.0, 0.0, 0.05, 0.15],
                after: None,
            }],
            config: SteerConfig {
                action: Action::Observe,
                decode: None,
                layers: "3".parse().unwrap(),
                trace: true,
            },
        };
        let line = summarize(&t, 1);
        assert_eq!((line.alpha, line.granularity), (0.0, DEFAULT_GRANULARITY));
        let l = &line.layers[0];
        // layer units: one per row that sees the span (row 1, mean share 0.1)
        assert_eq!((l.units, l.steered), (1, 0));
        assert!(l.bias.is_none() && l.after.is_none());
        let v = serde_json::to_value(&line).unwrap();
        assert_eq!(v["config"]["action"], "observe");
        assert_eq!(v["config"]["layers"], "3");
    }
}
