//! `spotlight.trace: true`: the span shares of one request's rows, per layer, before and after
//! the correction, summed over every ubatch that computed them — the evidence that the share
//! was brought to τ, in the response itself.

use crate::spotlight::trace::{summarize, UbatchTrace};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone, Serialize)]
pub struct LayerTotals {
    pub layer: usize,
    /// Units (rows, or rows × heads per head) that see a highlighted token.
    pub units: usize,
    /// Units whose share was below τ.
    pub steered: usize,
    pub before_mean: f32,
    pub before_min: f32,
    pub after_mean: Option<f32>,
    pub after_min: Option<f32>,
}

#[derive(Debug, Default)]
pub struct TraceSummary {
    ubatches: usize,
    layers: BTreeMap<usize, LayerTotals>,
}

impl TraceSummary {
    /// Add the rows of sequence `seq` from one computed ubatch.
    pub fn add(&mut self, ubatch: &UbatchTrace, seq: i32) {
        let rows = ubatch.rows_of(seq);
        if rows.pos.is_empty() {
            return;
        }
        self.ubatches += 1;
        for l in summarize(&rows, 0).layers {
            let Some(before) = l.before else { continue };
            let t = self.layers.entry(l.layer).or_insert_with(|| LayerTotals {
                layer: l.layer,
                before_min: f32::INFINITY,
                ..Default::default()
            });
            let (n_old, n_new) = (t.units as f32, l.units as f32);
            let mix = |old: f32, new: f32| (old * n_old + new * n_new) / (n_old + n_new);
            t.before_mean = mix(t.before_mean, before.mean);
            t.before_min = t.before_min.min(before.min);
            if let Some(after) = l.after {
                t.after_mean = Some(mix(t.after_mean.unwrap_or(0.0), after.mean));
                t.after_min = Some(t.after_min.map_or(after.min, |m| m.min(after.min)));
            }
            t.units += l.units;
            t.steered += l.steered;
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ubatches": self.ubatches,
            "layers": self.layers.values().collect::<Vec<_>>(),
        })
    }
}
