//! The SpotLight rule, checked unit by unit through the trace (shared by the steering tests of
//! both attention paths).

use spotlight::spotlight::trace::{LayerShares, UbatchTrace};
use spotlight::spotlight::Granularity;

/// Every (layer, row, head|layer) unit that sees the span: raised to exactly τ where it was
/// below, untouched where it was at or above τ. Returns how many units were raised.
pub fn check_rule(traces: &[UbatchTrace], alpha: f32, granularity: Granularity) -> usize {
    let mut raised = 0;
    for t in traces {
        for l in &t.layers {
            for tok in 0..t.pos.len() {
                // the unit's share p decides; each head's expected share follows from the rule
                let layer_mean = LayerShares::mean_over_heads(&l.before, l.n_head, tok);
                for h in 0..l.n_head {
                    let (before, after) = (l.before_at(tok, h), l.after_at(tok, h).unwrap());
                    assert!(
                        after.is_finite(),
                        "layer {} pos {}: non-finite share",
                        l.layer,
                        t.pos[tok]
                    );
                    let p = match granularity {
                        Granularity::Head => before,
                        Granularity::Layer => layer_mean,
                    };
                    let expected = if p > 0.0 && p < alpha {
                        raised += 1;
                        match granularity {
                            // share becomes exactly τ
                            Granularity::Head => alpha,
                            // shared bias e^b = τ(1−p)/(p(1−τ)) on every head
                            Granularity::Layer => {
                                let eb = alpha * (1.0 - p) / (p * (1.0 - alpha));
                                before * eb / (before * eb + 1.0 - before)
                            }
                        }
                    } else {
                        before
                    };
                    assert!(
                        (after - expected).abs() < 1e-4,
                        "{granularity} layer {} pos {} head {h}: {before} → {after}, want {expected}",
                        l.layer,
                        t.pos[tok]
                    );
                }
            }
        }
    }
    raised
}
