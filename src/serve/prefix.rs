//! How much of a slot's KV cache a new request can reuse.
//!
//! Steering changes the hidden states of every row that sees a highlighted key, so cached KV is
//! only what a fresh computation would give up to the first position where the steering that
//! produced it and the steering asked for now could differ: with the same configuration, the
//! first position whose highlight membership differs; with different configurations, the first
//! highlighted position of either. Unsteered KV ignores spans.

use crate::llama::Token;
use crate::spotlight::SteerConfig;

/// What produced (or will produce) the KV of a sequence.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KvOrigin {
    pub tokens: Vec<Token>,
    /// Highlighted position runs [start, end); ignored when `steer` is None.
    pub spans: Vec<(i32, i32)>,
    pub steer: Option<SteerConfig>,
}

impl KvOrigin {
    fn effective_spans(&self) -> &[(i32, i32)] {
        if self.steer.is_some() {
            &self.spans
        } else {
            &[]
        }
    }
}

fn highlighted(spans: &[(i32, i32)], pos: i32) -> bool {
    spans.iter().any(|&(a, b)| a <= pos && pos < b)
}

/// First position below `limit` where the two span sets disagree, else `limit`.
fn first_difference(a: &[(i32, i32)], b: &[(i32, i32)], limit: usize) -> usize {
    // only run boundaries can start a disagreement
    let mut starts: Vec<i32> = a.iter().chain(b).flat_map(|&(s, e)| [s, e]).collect();
    starts.sort_unstable();
    starts
        .into_iter()
        .filter(|&p| p >= 0 && (p as usize) < limit)
        .find(|&p| highlighted(a, p) != highlighted(b, p))
        .map_or(limit, |p| p as usize)
}

fn first_span_start(spans: &[(i32, i32)]) -> Option<usize> {
    spans.iter().map(|&(s, _)| s.max(0) as usize).min()
}

/// Tokens of `cached` that a request described by `wanted` can keep. At least one prompt token
/// is always recomputed, so that the last one yields logits.
pub fn reusable_prefix(cached: &KvOrigin, wanted: &KvOrigin) -> usize {
    let common = cached
        .tokens
        .iter()
        .zip(&wanted.tokens)
        .take_while(|(a, b)| a == b)
        .count()
        .min(wanted.tokens.len().saturating_sub(1));
    let (a, b) = (cached.effective_spans(), wanted.effective_spans());
    if cached.steer == wanted.steer {
        first_difference(a, b, common)
    } else {
        [first_span_start(a), first_span_start(b)]
            .into_iter()
            .flatten()
            .fold(common, usize::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spotlight::{Alpha, Granularity, LayerSelection};

    fn steer(alpha: f32) -> Option<SteerConfig> {
        Some(SteerConfig::spotlight(
            Alpha::new(alpha).unwrap(),
            Granularity::Layer,
            LayerSelection::All,
        ))
    }

    fn origin(n: i32, spans: &[(i32, i32)], steer: Option<SteerConfig>) -> KvOrigin {
        KvOrigin {
            tokens: (0..n).collect(),
            spans: spans.to_vec(),
            steer,
        }
    }

    #[test]
    fn unsteered_reuses_the_common_prefix_but_one() {
        let cached = origin(10, &[], None);
        let mut wanted = origin(20, &[], None);
        assert_eq!(reusable_prefix(&cached, &wanted), 10);
        wanted.tokens[4] = 99;
        assert_eq!(reusable_prefix(&cached, &wanted), 4);
        // the same prompt again: the last token is recomputed for its logits
        assert_eq!(reusable_prefix(&cached, &origin(10, &[], None)), 9);
    }

    #[test]
    fn same_steering_and_spans_reuses_everything_common() {
        let cached = origin(10, &[(2, 5)], steer(0.2));
        let wanted = origin(20, &[(2, 5), (12, 14)], steer(0.2));
        assert_eq!(reusable_prefix(&cached, &wanted), 10);
    }

    #[test]
    fn a_span_that_differs_stops_reuse_where_it_differs() {
        let cached = origin(10, &[(2, 5)], steer(0.2));
        assert_eq!(reusable_prefix(&cached, &origin(20, &[(2, 4)], steer(0.2))), 4);
        assert_eq!(reusable_prefix(&cached, &origin(20, &[(1, 5)], steer(0.2))), 1);
        assert_eq!(reusable_prefix(&cached, &origin(20, &[(2, 5), (7, 8)], steer(0.2))), 7);
    }

    #[test]
    fn other_steering_reuses_only_what_precedes_every_span() {
        let cached = origin(10, &[(3, 5)], steer(0.2));
        assert_eq!(reusable_prefix(&cached, &origin(20, &[(3, 5)], steer(0.1))), 3);
        assert_eq!(reusable_prefix(&cached, &origin(20, &[(3, 5)], None)), 3);
        assert_eq!(
            reusable_prefix(&origin(10, &[(3, 5)], None), &origin(20, &[(6, 7)], steer(0.1))),
            6
        );
    }
}
