//! The multi-turn report: per condition and turn, the share of replies that keep the turn-1
//! instruction (loose, as IFEval's headline; strict beside it), with a 95% bootstrap interval
//! over conversations; the first-to-last-turn drop (absolute and relative to turn 1) with a paired
//! interval; and per turn the paired comparison with the baseline (Δ, exact McNemar). Controls:
//! looping replies and median words per turn, because a steered model that only repeats the rule
//! or answers in a word would "keep" most rules.

use super::TurnVerdict;
use crate::eval::report::{
    bootstrap, bootstrap_mean, mcnemar_exact, median, p_value, pct, Interval, BOOTSTRAP_RESAMPLES,
};
use serde::Serialize;
use std::fmt::Write as _;

/// One condition's verdicts: per conversation (same order in every condition), per turn.
pub struct ConditionTurns {
    pub name: String,
    pub conversations: Vec<Vec<TurnVerdict>>,
}

#[derive(Debug, Serialize)]
pub struct TurnStats {
    pub turn: usize,
    pub loose: f64,
    pub loose_ci: Interval,
    pub strict: f64,
    pub looping: f64,
    /// Replies that keep the rule (loose) and do not loop: a loop that happens to keep it (a
    /// lowercase sentence repeated) does not count.
    pub loose_not_looping: f64,
    pub median_words: f64,
    /// Loose compliance minus the baseline's at this turn (percentage points) and the exact
    /// McNemar p on the conversations where exactly one of the two keeps the rule.
    pub delta_vs_baseline_pp: Option<f64>,
    pub mcnemar_p: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct ConditionCurve {
    pub name: String,
    pub turns: Vec<TurnStats>,
    /// Turn 1 minus the last turn, loose, in percentage points, with a paired bootstrap interval.
    pub drop_pp: f64,
    pub drop_ci_pp: Interval,
    /// The drop relative to turn 1's compliance, in percent (the paper's 18.2 % → 9.3 % form).
    pub drop_relative_pct: Option<f64>,
    /// The baseline's drop minus this condition's, in percentage points (positive: the rule
    /// lasts better than in the baseline), with a paired bootstrap interval over conversations
    /// (each contributes its own difference of differences); None for the baseline.
    pub drop_shrink_vs_baseline_pp: Option<f64>,
    pub drop_shrink_ci_pp: Option<Interval>,
}

#[derive(Debug, Serialize)]
pub struct MultiTurnReport {
    pub conversations: usize,
    pub turns: usize,
    pub baseline: String,
    pub conditions: Vec<ConditionCurve>,
}

#[derive(Debug, thiserror::Error)]
pub enum MultiTurnReportError {
    #[error("no conditions")]
    Empty,
    #[error("condition {name} has {got} conversations of {turns} turns where {expected} were expected")]
    Shape {
        name: String,
        got: usize,
        turns: usize,
        expected: usize,
    },
}

fn share(v: &[bool]) -> f64 {
    v.iter().filter(|&&b| b).count() as f64 / v.len() as f64
}

/// The report; the first condition named `baseline` (else the first) is the reference.
pub fn build(conditions: &[ConditionTurns], seed: u64) -> Result<MultiTurnReport, MultiTurnReportError> {
    let first = conditions.first().ok_or(MultiTurnReportError::Empty)?;
    let n = first.conversations.len();
    let turns = first.conversations.first().map_or(0, Vec::len);
    for c in conditions {
        if n == 0 || c.conversations.len() != n || c.conversations.iter().any(|t| t.len() != turns) {
            return Err(MultiTurnReportError::Shape {
                name: c.name.clone(),
                got: c.conversations.len(),
                turns,
                expected: n,
            });
        }
    }
    let base = conditions.iter().find(|c| c.name == "baseline").unwrap_or(first);
    let column = |c: &ConditionTurns, t: usize, f: fn(&TurnVerdict) -> bool| -> Vec<bool> {
        c.conversations.iter().map(|conv| f(&conv[t])).collect()
    };
    let mut curves = Vec::new();
    for c in conditions {
        let mut stats = Vec::new();
        for t in 0..turns {
            let loose = column(c, t, |v| v.loose);
            let (_, acc_ci) = bootstrap(&loose, &loose, seed, BOOTSTRAP_RESAMPLES);
            let (delta, p) = if std::ptr::eq(c, base) {
                (None, None)
            } else {
                let b = column(base, t, |v| v.loose);
                let only_cond = loose.iter().zip(&b).filter(|(c, b)| **c && !**b).count() as u64;
                let only_base = loose.iter().zip(&b).filter(|(c, b)| !**c && **b).count() as u64;
                (
                    Some(100.0 * (share(&loose) - share(&b))),
                    Some(mcnemar_exact(only_cond, only_base)),
                )
            };
            stats.push(TurnStats {
                turn: t + 1,
                loose: share(&loose),
                loose_ci: acc_ci,
                strict: share(&column(c, t, |v| v.strict)),
                looping: share(&column(c, t, |v| v.looping)),
                loose_not_looping: share(&column(c, t, |v| v.loose && !v.looping)),
                median_words: median(c.conversations.iter().map(|conv| conv[t].words).collect()),
                delta_vs_baseline_pp: delta,
                mcnemar_p: p,
            });
        }
        let first_turn = column(c, 0, |v| v.loose);
        let last_turn = column(c, turns - 1, |v| v.loose);
        // bootstrap(base, cond) gives cond − base: last − first, negated into a drop
        let (diff_ci, _) = bootstrap(&first_turn, &last_turn, seed, BOOTSTRAP_RESAMPLES);
        let (f, l) = (share(&first_turn), share(&last_turn));
        let (shrink, shrink_ci) = if std::ptr::eq(c, base) {
            (None, None)
        } else {
            let (bf, bl) = (column(base, 0, |v| v.loose), column(base, turns - 1, |v| v.loose));
            let per_conversation: Vec<i64> = (0..n)
                .map(|i| (i64::from(bf[i]) - i64::from(bl[i])) - (i64::from(first_turn[i]) - i64::from(last_turn[i])))
                .collect();
            let ci = bootstrap_mean(&per_conversation, seed, BOOTSTRAP_RESAMPLES);
            let mean = per_conversation.iter().sum::<i64>() as f64 / n as f64;
            (
                Some(100.0 * mean),
                Some(Interval {
                    low: 100.0 * ci.low + 0.0,
                    high: 100.0 * ci.high + 0.0,
                }),
            )
        };
        curves.push(ConditionCurve {
            name: c.name.clone(),
            turns: stats,
            drop_pp: 100.0 * (f - l),
            drop_ci_pp: Interval {
                // + 0.0 turns a -0.0 into 0.0 for printing
                low: -100.0 * diff_ci.high + 0.0,
                high: -100.0 * diff_ci.low + 0.0,
            },
            drop_relative_pct: (f > 0.0).then(|| 100.0 * (f - l) / f),
            drop_shrink_vs_baseline_pp: shrink,
            drop_shrink_ci_pp: shrink_ci,
        });
    }
    Ok(MultiTurnReport {
        conversations: n,
        turns,
        baseline: base.name.clone(),
        conditions: curves,
    })
}

pub fn render_markdown(report: &MultiTurnReport, command: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# SpotLight multi-turn report\n\nCommand:\n\n```sh\n{command}\n```\n"
    );
    let _ = writeln!(
        md,
        "{} conversations of {} user turns. Turn 1: an IFEval prompt with one instruction that can hold for any reply, plus \"{}\" (both highlighted); later turns: new tasks that do not mention it. Every reply is checked against the turn-1 instruction (IFEval's verifier; loose). Intervals: 95% bootstrap over conversations ({BOOTSTRAP_RESAMPLES} resamples). Δ and McNemar p: paired with `{}` at the same turn.\n",
        report.conversations,
        report.turns,
        super::KEEP_SENTENCE,
        report.baseline
    );
    md.push_str("## Compliance by turn (loose)\n\n| condition |");
    for t in 1..=report.turns {
        let _ = write!(md, " turn {t} |");
    }
    md.push_str(" drop turn 1 → last [95% CI] | relative drop |\n|---|");
    for _ in 0..report.turns + 2 {
        md.push_str("--:|");
    }
    md.push('\n');
    for c in &report.conditions {
        let _ = write!(md, "| {} |", c.name);
        for t in &c.turns {
            let _ = write!(
                md,
                " {} [{:.0}, {:.0}] |",
                pct(t.loose),
                100.0 * t.loose_ci.low,
                100.0 * t.loose_ci.high
            );
        }
        let rel = c.drop_relative_pct.map_or("—".into(), |r| format!("{r:.1}%"));
        let _ = writeln!(
            md,
            " {:+.1} pp [{:+.1}, {:+.1}] | {rel} |",
            c.drop_pp, c.drop_ci_pp.low, c.drop_ci_pp.high
        );
    }
    md.push_str(
        "\n## Against the baseline, per turn\n\n| condition | turn | Δ loose (pp) | McNemar p |\n|---|--:|--:|--:|\n",
    );
    for c in report.conditions.iter().filter(|c| c.name != report.baseline) {
        for t in &c.turns {
            if let (Some(d), Some(p)) = (t.delta_vs_baseline_pp, t.mcnemar_p) {
                let _ = writeln!(md, "| {} | {} | {d:+.1} | {} |", c.name, t.turn, p_value(p));
            }
        }
    }
    md.push_str("\nThe drop from turn 1 to the last turn against the baseline's (the baseline's drop minus the condition's: positive when the rule lasts better), paired over conversations:\n\n| condition | baseline's drop − drop [95% CI] |\n|---|--:|\n");
    for c in &report.conditions {
        if let (Some(d), Some(ci)) = (c.drop_shrink_vs_baseline_pp, c.drop_shrink_ci_pp) {
            let _ = writeln!(md, "| {} | {d:+.1} pp [{:+.1}, {:+.1}] |", c.name, ci.low, ci.high);
        }
    }
    md.push_str("\n## Controls per turn\n\nStrict compliance, looping replies (≥ 30 words, < 30% distinct word trigrams), replies that keep the rule without looping, and median words.\n\n| condition | turn | strict | looping | kept, not looping | median words |\n|---|--:|--:|--:|--:|--:|\n");
    for c in &report.conditions {
        for t in &c.turns {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                c.name,
                t.turn,
                pct(t.strict),
                pct(t.looping),
                pct(t.loose_not_looping),
                t.median_words
            );
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(loose: bool) -> TurnVerdict {
        TurnVerdict {
            strict: loose,
            loose,
            looping: false,
            words: 10,
        }
    }

    fn condition(name: &str, pattern: &[[bool; 3]]) -> ConditionTurns {
        ConditionTurns {
            name: name.into(),
            conversations: pattern
                .iter()
                .map(|turns| turns.iter().map(|&b| v(b)).collect())
                .collect(),
        }
    }

    #[test]
    fn curve_drop_and_paired_comparison() {
        let base = condition(
            "baseline",
            &[
                [true, false, false],
                [true, true, false],
                [false, false, false],
                [true, true, true],
            ],
        );
        let steer = condition(
            "spotlight:0.2:layer",
            &[
                [true, true, true],
                [true, true, true],
                [false, false, false],
                [true, true, true],
            ],
        );
        let r = build(&[base, steer], 0).unwrap();
        assert_eq!((r.conversations, r.turns), (4, 3));
        let b = &r.conditions[0];
        assert_eq!(b.turns.iter().map(|t| t.loose).collect::<Vec<_>>(), [0.75, 0.5, 0.25]);
        assert!((b.drop_pp - 50.0).abs() < 1e-9);
        assert!((b.drop_relative_pct.unwrap() - 66.666_666).abs() < 1e-3);
        assert!(b.drop_ci_pp.low <= b.drop_pp && b.drop_pp <= b.drop_ci_pp.high);
        assert!(b.turns[0].delta_vs_baseline_pp.is_none());
        let s = &r.conditions[1];
        assert_eq!(s.drop_pp, 0.0);
        assert!(b.drop_shrink_vs_baseline_pp.is_none() && b.drop_shrink_ci_pp.is_none());
        // per conversation (base drop − steered drop): 1, 1, 0, 0 → mean 0.5
        assert!((s.drop_shrink_vs_baseline_pp.unwrap() - 50.0).abs() < 1e-9);
        let ci = s.drop_shrink_ci_pp.unwrap();
        assert!(
            0.0 <= ci.low && ci.low <= 50.0 && 50.0 <= ci.high && ci.high <= 100.0,
            "{ci:?}"
        );
        assert!((s.turns[2].delta_vs_baseline_pp.unwrap() - 50.0).abs() < 1e-9);
        // 2 conversations keep the rule only when steered, none only in the baseline
        assert!((s.turns[2].mcnemar_p.unwrap() - 0.5).abs() < 1e-12);
        let md = render_markdown(&r, "spotlight multiturn …");
        assert!(md.contains("| baseline | 75.0%"), "{md}");
        assert!(md.contains("+50.0 pp"), "{md}");
        assert!(md.contains("| spotlight:0.2:layer | +50.0 pp ["), "{md}");
    }

    #[test]
    fn shapes_must_agree() {
        let a = condition("baseline", &[[true, true, true]]);
        let b = condition("x", &[[true, true, true], [false, false, false]]);
        assert!(matches!(build(&[a, b], 0), Err(MultiTurnReportError::Shape { .. })));
        assert!(matches!(build(&[], 0), Err(MultiTurnReportError::Empty)));
    }
}
