//! The report of `spotlight eval`: accuracies per condition, paired comparisons with the
//! baseline, a Markdown summary and a plot.
//!
//! Every condition is scored on the same IFEval prompts, so comparisons are *paired* by prompt
//! key: the difference in prompt-level loose accuracy gets a 95% percentile bootstrap interval
//! that resamples prompts (not conditions independently), and significance is an exact McNemar
//! test on the prompts where exactly one of the two passes. Paired statistics are much tighter
//! than comparing two independent accuracies, which matters at IFEval's size (541 prompts),
//! where a few points of accuracy are within the noise of an unpaired comparison.
//!
//! Choices made here:
//! - The headline metric is prompt-level loose accuracy (all of a prompt's instructions
//!   followed by the response or one of its relaxed variants); Δ, the CI, McNemar, gain, damage
//!   and the relative gain all use it, because it is the least sensitive to formatting noise
//!   (e.g. a stray "Sure!" line) that steering is not meant to fix.
//! - Per category (the part of an instruction id before `:`), the report gives
//!   instruction-level strict and loose accuracy (as the IFEval reference breaks down by
//!   category), and a prompt-level loose accuracy restricted to the category: the share of
//!   prompts with at least one instruction of that category whose instructions *of that
//!   category* are all followed. Restricting keeps a prompt's other instructions from blurring
//!   which category gained or lost.
//! - The bootstrap uses a splitmix64 generator written here and seeded from the caller's seed,
//!   so a report is reproducible bit for bit; each condition starts from the same seed, so its
//!   interval does not depend on which other conditions are in the run or their order.

mod aggregate;
mod chart;
mod markdown;
mod stats;
mod types;

pub use aggregate::build_report;
pub use chart::plot_accuracy;
pub use markdown::render_markdown;
pub(crate) use markdown::{p_value, pct};
pub use stats::mcnemar_exact;
pub(crate) use stats::median;
pub(crate) use stats::{bootstrap, bootstrap_mean};
pub use types::{
    BaselineComparison, CategoryAccuracy, ConditionReport, ConditionResults, Interval, LengthFree, LengthInstruction,
    Looping, PromptResult, Report, ReportError,
};

/// Bootstrap resamples per condition: 10,000 gives percentile bounds that move by well under
/// a tenth of a percentage point between seeds at IFEval's size.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;

/// Two-sided confidence level of every interval in the report.
pub const CONFIDENCE: f64 = 0.95;

/// Conditions and reports made up for the tests of every part of the report.
#[cfg(test)]
mod test_support {
    use super::*;
    use crate::eval::key::Key;

    pub(super) fn prompt(key: i64, ids: &[&str], strict: &[bool], loose: &[bool], chars: usize) -> PromptResult {
        PromptResult {
            key: Key::Int(key),
            instruction_ids: ids.iter().map(|s| s.to_string()).collect(),
            strict: strict.to_vec(),
            loose: loose.to_vec(),
            prompt_strict: strict.iter().all(|&v| v),
            prompt_loose: loose.iter().all(|&v| v),
            response_chars: chars,
            looping: false,
            response_words: chars / 5,
            relations: ids.iter().map(|_| None).collect(),
        }
    }

    pub(super) fn condition(
        name: &str,
        alpha: Option<f32>,
        granularity: Option<&str>,
        results: Vec<PromptResult>,
    ) -> ConditionResults {
        ConditionResults {
            name: name.into(),
            alpha,
            granularity: granularity.map(Into::into),
            results,
        }
    }

    /// A one-instruction prompt whose strict and loose verdicts are both `pass`.
    pub(super) fn simple(key: i64, pass: bool) -> PromptResult {
        prompt(key, &["length_constraints:number_words"], &[pass], &[pass], 100)
    }

    /// Condition `name` on prompts 0..n, one instruction each, prompt `i` passing iff `pass(i)`.
    pub(super) fn paired(name: &str, n: i64, pass: impl Fn(i64) -> bool) -> ConditionResults {
        condition(name, None, None, (0..n).map(|i| simple(i, pass(i))).collect())
    }

    pub(super) fn sample_report() -> Report {
        let mut conds = vec![
            paired("baseline", 60, |i| i % 3 != 0),
            paired("emphasis", 60, |i| i % 4 != 0),
            paired("static:2", 60, |i| i % 5 != 0),
        ];
        for (k, (alpha, gran)) in [
            (0.05, "layer"),
            (0.1, "layer"),
            (0.2, "layer"),
            (0.05, "head"),
            (0.1, "head"),
            (0.2, "head"),
        ]
        .into_iter()
        .enumerate()
        {
            let name = format!("spotlight:{alpha}:{gran}");
            let mut c = paired(&name, 60, |i| (i + k as i64) % (k as i64 + 3) != 0);
            c.alpha = Some(alpha);
            c.granularity = Some(gran.into());
            conds.push(c);
        }
        build_report("baseline", &conds, 11).unwrap()
    }
}
