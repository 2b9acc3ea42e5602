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

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

/// Bootstrap resamples per condition: 10,000 gives percentile bounds that move by well under
/// a tenth of a percentage point between seeds at IFEval's size.
pub const BOOTSTRAP_RESAMPLES: usize = 10_000;

/// Two-sided confidence level of every interval in the report.
pub const CONFIDENCE: f64 = 0.95;

/// One prompt's result under one condition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PromptResult {
    pub key: i64,
    pub instruction_ids: Vec<String>,
    pub strict: Vec<bool>,
    pub loose: Vec<bool>,
    pub prompt_strict: bool,
    pub prompt_loose: bool,
    pub response_chars: usize,
    /// The reply is mostly one passage repeated (see `eval::repetition`).
    #[serde(default)]
    pub looping: bool,
}

/// All prompts' results under one condition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConditionResults {
    /// E.g. `baseline`, `emphasis`, `static:2`, `spotlight:0.1:head`.
    pub name: String,
    /// τ for spotlight conditions, None otherwise
    pub alpha: Option<f32>,
    /// "head"/"layer" for spotlight conditions
    pub granularity: Option<String>,
    pub results: Vec<PromptResult>,
}

/// A two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl Interval {
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// Accuracy on the instructions of one category (the id's part before `:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryAccuracy {
    /// Prompts with at least one instruction of this category.
    pub prompts: usize,
    /// Instructions of this category over all prompts.
    pub instructions: usize,
    /// Share of those prompts whose instructions of this category are all followed (loose).
    pub prompt_loose: f64,
    pub instruction_strict: f64,
    pub instruction_loose: f64,
}

/// A condition compared with the baseline on the same prompts (prompt-level loose accuracy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineComparison {
    /// Condition's accuracy minus baseline's, as a fraction (0.017 = +1.7 points).
    pub delta_prompt_loose: f64,
    /// Paired percentile bootstrap interval of `delta_prompt_loose`.
    pub delta_ci: Interval,
    /// Exact two-sided McNemar test on the discordant prompts.
    pub mcnemar_p: f64,
    /// Prompts the condition passes and the baseline fails.
    pub gain: usize,
    /// Prompts the baseline passes and the condition fails.
    pub damage: usize,
    /// Condition's accuracy divided by baseline's; None when the baseline's is 0.
    pub relative_gain: Option<f64>,
    /// Keys of the `gain` prompts, in the baseline's order (for looking at the responses).
    #[serde(default)]
    pub gained_keys: Vec<i64>,
    /// Keys of the `damage` prompts, in the baseline's order.
    #[serde(default)]
    pub damaged_keys: Vec<i64>,
}

/// Prompt-level loose accuracy on the subset of prompts without length constraints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LengthFree {
    /// Prompts in the subset (the same for every condition).
    pub prompts: usize,
    /// None when every prompt has a length constraint.
    pub prompt_loose: Option<f64>,
    /// Condition's minus baseline's on the subset, in fractions; None for the baseline.
    pub delta_prompt_loose: Option<f64>,
    /// Exact McNemar p on the subset; None for the baseline.
    pub mcnemar_p: Option<f64>,
}

/// Looping replies (see `eval::repetition`) and the prompt-level loose accuracy that counts a
/// prompt only when its reply passes without looping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Looping {
    /// Share of replies that loop.
    pub share: f64,
    /// Share of prompts that pass (prompt-level loose) with a reply that does not loop.
    pub prompt_loose_not_looping: f64,
    /// Condition's minus baseline's `prompt_loose_not_looping`, paired; None for the baseline.
    pub delta: Option<f64>,
    /// Exact McNemar p of that difference; None for the baseline.
    pub mcnemar_p: Option<f64>,
}

/// Whether an instruction constrains the reply's length (words, sentences, paragraphs).
fn is_length_constraint(id: &str) -> bool {
    category(id) == "length_constraints"
}

/// One condition's row of the report. Accuracies are fractions in [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionReport {
    pub name: String,
    pub alpha: Option<f32>,
    pub granularity: Option<String>,
    /// Prompts scored.
    pub n: usize,
    /// Instructions over all prompts.
    pub instructions: usize,
    pub prompt_strict: f64,
    pub prompt_loose: f64,
    pub instruction_strict: f64,
    pub instruction_loose: f64,
    /// Bootstrap interval of `prompt_loose` itself (the plot's error bars).
    pub prompt_loose_ci: Interval,
    pub mean_response_chars: f64,
    /// Prompt-level loose accuracy on the prompts without a `length_constraints:*`
    /// instruction: steering that only shortens replies passes "less than N words" more
    /// often and "at least N words" less often, so this is the comparison length cannot
    /// drive directly.
    pub length_free: LengthFree,
    /// Replies stuck in a loop, and passes that do not come from one.
    pub looping: Looping,
    /// Keyed by category, so report.json lists them in a stable (sorted) order.
    pub categories: BTreeMap<String, CategoryAccuracy>,
    /// None for the baseline itself.
    pub vs_baseline: Option<BaselineComparison>,
}

/// The whole evaluation report (written as report.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Name of the baseline condition.
    pub baseline: String,
    pub seed: u64,
    pub bootstrap_resamples: usize,
    pub confidence: f64,
    /// All categories seen, sorted.
    pub categories: Vec<String>,
    /// In the order the conditions were given.
    pub conditions: Vec<ConditionReport>,
}

impl Report {
    pub fn condition(&self, name: &str) -> Option<&ConditionReport> {
        self.conditions.iter().find(|c| c.name == name)
    }
}

/// Keys shown in an error message before it says "and N more": a whole missing split would
/// otherwise print hundreds of keys.
const KEYS_SHOWN: usize = 20;

fn key_list(keys: &[i64]) -> String {
    let mut s = keys
        .iter()
        .take(KEYS_SHOWN)
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > KEYS_SHOWN {
        let _ = write!(s, " and {} more", keys.len() - KEYS_SHOWN);
    }
    s
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("baseline condition `{name}` is not among the conditions ({})", available.join(", "))]
    MissingBaseline { name: String, available: Vec<String> },
    #[error("condition `{0}` is given more than once")]
    DuplicateCondition(String),
    #[error("baseline `{0}` has no prompts or no instructions to score")]
    Empty(String),
    #[error("condition `{condition}` has prompt {key} more than once")]
    DuplicateKey { condition: String, key: i64 },
    #[error("condition `{condition}` lacks {} prompt(s) that baseline `{baseline}` has: keys {}", keys.len(), key_list(keys))]
    MissingKeys {
        condition: String,
        baseline: String,
        keys: Vec<i64>,
    },
    #[error("condition `{condition}` has {} prompt(s) that baseline `{baseline}` lacks: keys {}", keys.len(), key_list(keys))]
    ExtraKeys {
        condition: String,
        baseline: String,
        keys: Vec<i64>,
    },
    #[error("condition `{condition}`, prompt {key}: {detail}")]
    Inconsistent {
        condition: String,
        key: i64,
        detail: String,
    },
    #[error("cannot draw the plot {path}: {detail}")]
    Plot { path: String, detail: String },
}

/// splitmix64 (Steele, Lea & Flood 2014): tiny, fast, and its output passes BigCrush, which is
/// far more than a bootstrap needs; written here to keep `rand` out of the dependencies.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` by multiply-shift (Lemire): the bias is at most n / 2^64, far below
    /// anything a 10,000-resample bootstrap could show, and it needs no rejection loop.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// Linear-interpolation quantile (R's type 7) of sorted integer sums, divided by `n` to turn
/// them into fractions.
fn quantile(sorted: &[i64], q: f64, n: usize) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    let v = sorted[lo] as f64 + (sorted[hi] - sorted[lo]) as f64 * frac;
    v / n as f64
}

/// Paired percentile bootstrap over prompts: returns the interval of `mean(cond) - mean(base)`
/// and of `mean(cond)`, both from the same resamples. Sums are kept as integers so the
/// resampled statistics are exact and sorting them is cheap.
fn bootstrap(base: &[bool], cond: &[bool], seed: u64, resamples: usize) -> (Interval, Interval) {
    assert_eq!(base.len(), cond.len());
    assert!(!base.is_empty() && resamples > 0);
    let n = base.len();
    let mut rng = SplitMix64(seed);
    let mut diffs = Vec::with_capacity(resamples);
    let mut accs = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let (mut d, mut a) = (0i64, 0i64);
        for _ in 0..n {
            let i = rng.below(n);
            let c = i64::from(cond[i]);
            d += c - i64::from(base[i]);
            a += c;
        }
        diffs.push(d);
        accs.push(a);
    }
    diffs.sort_unstable();
    accs.sort_unstable();
    let tail = (1.0 - CONFIDENCE) / 2.0;
    let interval = |v: &[i64]| Interval {
        low: quantile(v, tail, n),
        high: quantile(v, 1.0 - tail, n),
    };
    (interval(&diffs), interval(&accs))
}

/// Exact two-sided McNemar test: with `b` and `c` the two kinds of discordant pairs, under the
/// null each discordant pair goes either way with probability 1/2, so
/// p = min(1, 2·P(X ≤ min(b, c))) for X ~ Bin(b + c, 1/2).
///
/// The binomial terms are summed in log space (log-sum-exp over ln C(n, k) − n·ln 2), because
/// at n = 541 the terms span hundreds of orders of magnitude and 2^541 overflows f64.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let m = b.min(c);
    // ln k! for k = 0..=n, by running sums of ln k: exact to ~1e-13 relative for n in the
    // thousands, which is all IFEval needs.
    let mut ln_fact = Vec::with_capacity(n as usize + 1);
    ln_fact.push(0.0f64);
    for k in 1..=n {
        ln_fact.push(ln_fact[k as usize - 1] + (k as f64).ln());
    }
    let ln_n = ln_fact[n as usize];
    let n_ln2 = n as f64 * std::f64::consts::LN_2;
    let terms: Vec<f64> = (0..=m)
        .map(|k| ln_n - ln_fact[k as usize] - ln_fact[(n - k) as usize] - n_ln2)
        .collect();
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let ln_tail = max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln();
    (2.0 * ln_tail.exp()).min(1.0)
}

/// The category of an instruction id: the part before the first `:` (the whole id if none).
fn category(id: &str) -> &str {
    id.split_once(':').map_or(id, |(c, _)| c)
}

fn ratio(num: usize, den: usize) -> f64 {
    num as f64 / den as f64
}

#[derive(Default)]
struct CategoryCounts {
    prompts: usize,
    prompt_loose: usize,
    instructions: usize,
    strict: usize,
    loose: usize,
}

/// Check one prompt's fields against each other, so a scorer bug shows up as an error here
/// instead of as a wrong accuracy.
fn check_prompt(condition: &str, r: &PromptResult) -> Result<(), ReportError> {
    let bad = |detail: String| ReportError::Inconsistent {
        condition: condition.to_string(),
        key: r.key,
        detail,
    };
    let n = r.instruction_ids.len();
    if r.strict.len() != n || r.loose.len() != n {
        return Err(bad(format!(
            "{n} instruction ids but {} strict and {} loose verdicts",
            r.strict.len(),
            r.loose.len()
        )));
    }
    if r.prompt_strict != r.strict.iter().all(|&v| v) {
        return Err(bad(
            "prompt_strict disagrees with the instruction-level strict verdicts".into(),
        ));
    }
    if r.prompt_loose != r.loose.iter().all(|&v| v) {
        return Err(bad(
            "prompt_loose disagrees with the instruction-level loose verdicts".into()
        ));
    }
    Ok(())
}

/// Accuracies of one condition, its results already ordered like the baseline's.
fn summarize(cond: &ConditionResults, aligned: &[&PromptResult]) -> ConditionReport {
    let n = aligned.len();
    let mut instructions = 0;
    let (mut ps, mut pl, mut is, mut il, mut chars) = (0, 0, 0, 0, 0usize);
    let mut cats: BTreeMap<String, CategoryCounts> = BTreeMap::new();
    for r in aligned {
        ps += usize::from(r.prompt_strict);
        pl += usize::from(r.prompt_loose);
        instructions += r.instruction_ids.len();
        is += r.strict.iter().filter(|&&v| v).count();
        il += r.loose.iter().filter(|&&v| v).count();
        chars += r.response_chars;
        // Per prompt: whether every instruction of each category present was followed.
        let mut in_prompt: BTreeMap<&str, bool> = BTreeMap::new();
        for ((id, &s), &l) in r.instruction_ids.iter().zip(&r.strict).zip(&r.loose) {
            let cat = category(id);
            let e = cats.entry(cat.to_string()).or_default();
            e.instructions += 1;
            e.strict += usize::from(s);
            e.loose += usize::from(l);
            *in_prompt.entry(cat).or_insert(true) &= l;
        }
        for (cat, all) in in_prompt {
            let e = cats.get_mut(cat).expect("inserted above");
            e.prompts += 1;
            e.prompt_loose += usize::from(all);
        }
    }
    let categories = cats
        .into_iter()
        .map(|(cat, c)| {
            let acc = CategoryAccuracy {
                prompts: c.prompts,
                instructions: c.instructions,
                prompt_loose: ratio(c.prompt_loose, c.prompts),
                instruction_strict: ratio(c.strict, c.instructions),
                instruction_loose: ratio(c.loose, c.instructions),
            };
            (cat, acc)
        })
        .collect();
    ConditionReport {
        name: cond.name.clone(),
        alpha: cond.alpha,
        granularity: cond.granularity.clone(),
        n,
        instructions,
        prompt_strict: ratio(ps, n),
        prompt_loose: ratio(pl, n),
        instruction_strict: ratio(is, instructions),
        instruction_loose: ratio(il, instructions),
        // Filled in by the caller, which runs the bootstrap.
        prompt_loose_ci: Interval { low: 0.0, high: 0.0 },
        mean_response_chars: ratio(chars, n),
        // Filled in by the caller, which knows the baseline's verdicts.
        length_free: LengthFree {
            prompts: 0,
            prompt_loose: None,
            delta_prompt_loose: None,
            mcnemar_p: None,
        },
        looping: Looping {
            share: ratio(aligned.iter().filter(|r| r.looping).count(), n),
            prompt_loose_not_looping: ratio(aligned.iter().filter(|r| passes_not_looping(r)).count(), n),
            delta: None,
            mcnemar_p: None,
        },
        categories,
        vs_baseline: None,
    }
}

/// Order `cond`'s results like `base`'s, checking that both cover exactly the same prompts
/// with the same instructions (a comparison on different prompts would not be paired).
fn align<'a>(
    cond: &'a ConditionResults,
    base: &ConditionResults,
    base_index: &HashMap<i64, usize>,
) -> Result<Vec<&'a PromptResult>, ReportError> {
    let mut by_key: HashMap<i64, &PromptResult> = HashMap::with_capacity(cond.results.len());
    for r in &cond.results {
        check_prompt(&cond.name, r)?;
        if by_key.insert(r.key, r).is_some() {
            return Err(ReportError::DuplicateKey {
                condition: cond.name.clone(),
                key: r.key,
            });
        }
    }
    let mut missing: Vec<i64> = base
        .results
        .iter()
        .map(|r| r.key)
        .filter(|k| !by_key.contains_key(k))
        .collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        return Err(ReportError::MissingKeys {
            condition: cond.name.clone(),
            baseline: base.name.clone(),
            keys: missing,
        });
    }
    let mut extra: Vec<i64> = by_key.keys().copied().filter(|k| !base_index.contains_key(k)).collect();
    if !extra.is_empty() {
        extra.sort_unstable();
        return Err(ReportError::ExtraKeys {
            condition: cond.name.clone(),
            baseline: base.name.clone(),
            keys: extra,
        });
    }
    base.results
        .iter()
        .map(|b| {
            let r = by_key[&b.key];
            if r.instruction_ids != b.instruction_ids {
                return Err(ReportError::Inconsistent {
                    condition: cond.name.clone(),
                    key: r.key,
                    detail: format!(
                        "instruction ids {:?} differ from baseline's {:?}",
                        r.instruction_ids, b.instruction_ids
                    ),
                });
            }
            Ok(r)
        })
        .collect()
}

/// A prompt passed (prompt-level loose) with a reply that does not loop.
fn passes_not_looping(r: &PromptResult) -> bool {
    r.prompt_loose && !r.looping
}

/// Gain and damage of `cond` against `base` (aligned), for a pass criterion.
fn discordant(base: &[&PromptResult], cond: &[&PromptResult], pass: fn(&PromptResult) -> bool) -> (u64, u64) {
    let (mut gain, mut damage) = (0, 0);
    for (b, c) in base.iter().zip(cond) {
        gain += u64::from(pass(c) && !pass(b));
        damage += u64::from(pass(b) && !pass(c));
    }
    (gain, damage)
}

/// Prompt-level loose accuracy on the prompts without length constraints, paired with the
/// baseline's verdicts on them (`base_pass`, aligned with `aligned`).
fn length_free(aligned: &[&PromptResult], base_pass: &[bool], compare: bool) -> LengthFree {
    let (mut prompts, mut passed, mut gain, mut damage) = (0usize, 0usize, 0u64, 0u64);
    for (r, &b) in aligned.iter().zip(base_pass) {
        if r.instruction_ids.iter().any(|id| is_length_constraint(id)) {
            continue;
        }
        prompts += 1;
        passed += usize::from(r.prompt_loose);
        gain += u64::from(r.prompt_loose && !b);
        damage += u64::from(b && !r.prompt_loose);
    }
    LengthFree {
        prompts,
        prompt_loose: (prompts > 0).then(|| ratio(passed, prompts)),
        delta_prompt_loose: (compare && prompts > 0).then(|| (gain as f64 - damage as f64) / prompts as f64),
        mcnemar_p: (compare && prompts > 0).then(|| mcnemar_exact(damage, gain)),
    }
}

/// Build the report. `baseline` names one of `conditions`; every condition must cover exactly
/// the baseline's prompt keys (in any order) with the same instruction ids.
pub fn build_report(baseline: &str, conditions: &[ConditionResults], seed: u64) -> Result<Report, ReportError> {
    let mut names = HashSet::new();
    for c in conditions {
        if !names.insert(c.name.as_str()) {
            return Err(ReportError::DuplicateCondition(c.name.clone()));
        }
    }
    let base = conditions
        .iter()
        .find(|c| c.name == baseline)
        .ok_or_else(|| ReportError::MissingBaseline {
            name: baseline.to_string(),
            available: conditions.iter().map(|c| c.name.clone()).collect(),
        })?;
    if base.results.is_empty() || base.results.iter().all(|r| r.instruction_ids.is_empty()) {
        return Err(ReportError::Empty(base.name.clone()));
    }
    let mut base_index = HashMap::with_capacity(base.results.len());
    for (i, r) in base.results.iter().enumerate() {
        if base_index.insert(r.key, i).is_some() {
            return Err(ReportError::DuplicateKey {
                condition: base.name.clone(),
                key: r.key,
            });
        }
    }
    let base_aligned = align(base, base, &base_index)?;
    let base_pass: Vec<bool> = base_aligned.iter().map(|r| r.prompt_loose).collect();
    let base_acc = ratio(base_pass.iter().filter(|&&v| v).count(), base_pass.len());

    let mut out = Vec::with_capacity(conditions.len());
    let mut categories = HashSet::new();
    for cond in conditions {
        let aligned = align(cond, base, &base_index)?;
        let mut row = summarize(cond, &aligned);
        let pass: Vec<bool> = aligned.iter().map(|r| r.prompt_loose).collect();
        let (delta_ci, acc_ci) = bootstrap(&base_pass, &pass, seed, BOOTSTRAP_RESAMPLES);
        row.prompt_loose_ci = acc_ci;
        row.length_free = length_free(&aligned, &base_pass, cond.name != base.name);
        if cond.name != base.name {
            let (gain, damage) = discordant(&base_aligned, &aligned, passes_not_looping);
            row.looping.delta = Some((gain as f64 - damage as f64) / aligned.len() as f64);
            row.looping.mcnemar_p = Some(mcnemar_exact(damage, gain));
        }
        if cond.name != base.name {
            let keys_where = |want: bool| -> Vec<i64> {
                aligned
                    .iter()
                    .zip(&base_pass)
                    .filter(|&(r, &b)| r.prompt_loose == want && b != want)
                    .map(|(r, _)| r.key)
                    .collect()
            };
            let (gained_keys, damaged_keys) = (keys_where(true), keys_where(false));
            let (gain, damage) = (gained_keys.len(), damaged_keys.len());
            row.vs_baseline = Some(BaselineComparison {
                // From counts, so the difference is the nearest float to the exact fraction
                // instead of carrying the rounding of two accuracies.
                delta_prompt_loose: (gain as f64 - damage as f64) / pass.len() as f64,
                delta_ci,
                mcnemar_p: mcnemar_exact(damage as u64, gain as u64),
                gain,
                damage,
                relative_gain: (base_acc > 0.0).then(|| row.prompt_loose / base_acc),
                gained_keys,
                damaged_keys,
            });
        }
        categories.extend(row.categories.keys().cloned());
        out.push(row);
    }
    let mut categories: Vec<String> = categories.into_iter().collect();
    categories.sort();
    Ok(Report {
        baseline: base.name.clone(),
        seed,
        bootstrap_resamples: BOOTSTRAP_RESAMPLES,
        confidence: CONFIDENCE,
        categories,
        conditions: out,
    })
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// Signed percentage points.
fn pp(x: f64) -> String {
    format!("{:+.1}", 100.0 * x)
}

fn p_value(p: f64) -> String {
    if p < 0.001 {
        "<0.001".to_string()
    } else {
        format!("{p:.3}")
    }
}

/// Escape what would break a Markdown table cell: a `|` ends the cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// A code fence longer than any backtick run in `text`, so a command containing backticks
/// cannot close the fence early.
fn fence_for(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for ch in text.chars() {
        run = if ch == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    "`".repeat((longest + 1).max(3))
}

/// Render the report as Markdown; `command` is the exact command line that produced it, shown
/// at the top so the numbers can be reproduced.
pub fn render_markdown(report: &Report, command: &str) -> String {
    let mut md = String::new();
    let conf = format!("{:.0}%", 100.0 * report.confidence);
    let n = report.condition(&report.baseline).map_or(0, |c| c.n);
    let _ = writeln!(md, "# SpotLight IFEval report\n");
    let fence = fence_for(command);
    let _ = writeln!(md, "Command:\n\n{fence}sh\n{command}\n{fence}\n");
    let _ = writeln!(
        md,
        "{n} prompts under {} conditions; baseline `{}`. Δ loose = prompt-level loose accuracy minus the \
         baseline's on the same prompts, in percentage points, with a {conf} paired bootstrap CI \
         ({} resamples of the prompts, seed {}). McNemar p: exact two-sided test on the prompts where exactly one \
         of the two passes. Gain/damage: prompts that pass (prompt-level loose) only under the condition / only \
         under the baseline. Rel.: accuracy relative to the baseline's. Length: mean response length in \
         characters.\n",
        report.conditions.len(),
        report.baseline,
        report.bootstrap_resamples,
        report.seed
    );

    let _ = writeln!(md, "## Accuracy\n");
    let _ = writeln!(
        md,
        "| condition | n | prompt strict | prompt loose | instr strict | instr loose | Δ loose vs baseline [{conf} CI] \
         | rel. | McNemar p | gain/damage | mean length |"
    );
    let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for c in &report.conditions {
        let (delta, rel, p, gd) = match &c.vs_baseline {
            Some(v) => (
                format!(
                    "{} [{}, {}]",
                    pp(v.delta_prompt_loose),
                    pp(v.delta_ci.low),
                    pp(v.delta_ci.high)
                ),
                v.relative_gain.map_or("—".to_string(), |r| format!("{r:.3}×")),
                p_value(v.mcnemar_p),
                format!("{}/{}", v.gain, v.damage),
            ),
            None => ("—".into(), "—".into(), "—".into(), "—".into()),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {delta} | {rel} | {p} | {gd} | {:.0} |",
            cell(&c.name),
            c.n,
            pct(c.prompt_strict),
            pct(c.prompt_loose),
            pct(c.instruction_strict),
            pct(c.instruction_loose),
            c.mean_response_chars
        );
    }

    let length_free = report.condition(&report.baseline).map_or(0, |c| c.length_free.prompts);
    if length_free > 0 {
        let _ = writeln!(md, "\n## Without length constraints\n");
        let _ = writeln!(
            md,
            "Prompt-level loose accuracy on the {length_free} prompts that have no `length_constraints:*` \
             instruction: no instruction there counts words, sentences or paragraphs (a shorter reply can still \
             pass some of them more easily, e.g. no commas).\n"
        );
        let _ = writeln!(md, "| condition | prompt loose | Δ vs baseline | McNemar p |");
        let _ = writeln!(md, "|---|--:|--:|--:|");
        for c in &report.conditions {
            let lf = &c.length_free;
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                cell(&c.name),
                lf.prompt_loose.map_or("—".to_string(), pct),
                lf.delta_prompt_loose.map_or("—".to_string(), pp),
                lf.mcnemar_p.map_or("—".to_string(), p_value)
            );
        }
    }

    let _ = writeln!(md, "\n## Looping replies\n");
    let _ = writeln!(
        md,
        "A reply loops when it has at least {} words and fewer than {:.0}% of its word trigrams are distinct \
         (one passage repeated, usually up to the token limit). A looping reply can still pass instructions \
         (no commas, lower case, a letter count), so \"not looping\" counts a prompt only when it passes \
         (prompt-level loose) with a reply that does not loop.\n",
        crate::eval::repetition::MIN_WORDS,
        100.0 * crate::eval::repetition::MAX_DISTINCT_TRIGRAM_SHARE
    );
    let _ = writeln!(
        md,
        "| condition | looping replies | prompt loose, not looping | Δ vs baseline | McNemar p |"
    );
    let _ = writeln!(md, "|---|--:|--:|--:|--:|");
    for c in &report.conditions {
        let l = &c.looping;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            cell(&c.name),
            pct(l.share),
            pct(l.prompt_loose_not_looping),
            l.delta.map_or("—".to_string(), pp),
            l.mcnemar_p.map_or("—".to_string(), p_value)
        );
    }

    let _ = writeln!(md, "\n## Per category\n");
    let _ = writeln!(
        md,
        "Instruction-level loose accuracy per category (the part of the instruction id before `:`); \
         the best condition in each row is in bold.\n"
    );
    let _ = write!(md, "| category | instructions |");
    for c in &report.conditions {
        let _ = write!(md, " {} |", cell(&c.name));
    }
    let _ = writeln!(md, "\n|---|--:|{}", "--:|".repeat(report.conditions.len()));
    for cat in &report.categories {
        let accs: Vec<Option<&CategoryAccuracy>> = report.conditions.iter().map(|c| c.categories.get(cat)).collect();
        let best = accs
            .iter()
            .flatten()
            .map(|a| a.instruction_loose)
            .fold(f64::NEG_INFINITY, f64::max);
        let count = accs.iter().flatten().map(|a| a.instructions).next().unwrap_or(0);
        let _ = write!(md, "| {} | {count} |", cell(cat));
        for a in &accs {
            let _ = match a {
                Some(a) if a.instruction_loose == best => write!(md, " **{}** |", pct(a.instruction_loose)),
                Some(a) => write!(md, " {} |", pct(a.instruction_loose)),
                None => write!(md, " — |"),
            };
        }
        let _ = writeln!(md);
    }

    let _ = writeln!(md, "\n## Notes\n");
    for note in notes(report) {
        let _ = writeln!(md, "- {note}");
    }
    md
}

/// One-line observations for the Notes section.
fn notes(report: &Report) -> Vec<String> {
    let mut notes = Vec::new();
    let best = report
        .conditions
        .iter()
        .map(|c| c.prompt_loose)
        .fold(f64::NEG_INFINITY, f64::max);
    let leaders: Vec<&ConditionReport> = report.conditions.iter().filter(|c| c.prompt_loose == best).collect();
    let names = |cs: &[&ConditionReport]| {
        cs.iter()
            .map(|c| format!("`{}`", c.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let vs = |c: &ConditionReport| {
        c.vs_baseline.as_ref().map_or(" (the baseline)".to_string(), |v| {
            format!(
                " ({} pp vs baseline, McNemar p = {})",
                pp(v.delta_prompt_loose),
                p_value(v.mcnemar_p)
            )
        })
    };
    if let [one] = leaders.as_slice() {
        notes.push(format!(
            "Best by prompt-level loose accuracy: `{}` at {}{}.",
            one.name,
            pct(best),
            vs(one)
        ));
    } else {
        notes.push(format!(
            "Best by prompt-level loose accuracy: {} tied at {}.",
            names(&leaders),
            pct(best)
        ));
    }

    let compared: Vec<&ConditionReport> = report.conditions.iter().filter(|c| c.vs_baseline.is_some()).collect();
    let significant: Vec<&ConditionReport> = compared
        .iter()
        .copied()
        .filter(|c| c.vs_baseline.as_ref().is_some_and(|v| v.mcnemar_p < 0.05))
        .collect();
    if !compared.is_empty() {
        // Uncorrected: with k comparisons about 0.05·k false positives are expected, which the
        // note says instead of silently applying a correction the reader may not expect.
        let which = if significant.is_empty() {
            "none".to_string()
        } else {
            // With the sign, so a significant loss is not read as a win.
            let delta = |c: &ConditionReport| c.vs_baseline.as_ref().map_or(0.0, |v| v.delta_prompt_loose);
            let parts: Vec<String> = significant
                .iter()
                .map(|c| format!("`{}` ({} pp)", c.name, pp(delta(c))))
                .collect();
            parts.join(", ")
        };
        notes.push(format!(
            "Different from baseline at McNemar p < 0.05 (uncorrected for {} comparisons): {which}.",
            compared.len()
        ));
        let worst = compared
            .iter()
            .filter_map(|c| c.vs_baseline.as_ref().map(|v| (c, v.damage)))
            .max_by_key(|x| x.1);
        if let Some((c, damage)) = worst {
            if damage > 0 {
                notes.push(format!(
                    "Most damage: `{}` fails {damage} prompt(s) that the baseline passes (and passes {} it fails).",
                    c.name,
                    c.vs_baseline.as_ref().map_or(0, |v| v.gain)
                ));
            }
        }
    }
    // Steering can make a model ramble or truncate; the length range flags either at a glance.
    let by_len = |a: &&ConditionReport, b: &&ConditionReport| a.mean_response_chars.total_cmp(&b.mean_response_chars);
    let shortest = report.conditions.iter().min_by(by_len);
    let longest = report.conditions.iter().max_by(by_len);
    if let (Some(s), Some(l)) = (shortest, longest) {
        if s.mean_response_chars < l.mean_response_chars {
            notes.push(format!(
                "Mean response length ranges from {:.0} characters (`{}`) to {:.0} (`{}`).",
                s.mean_response_chars, s.name, l.mean_response_chars, l.name
            ));
        }
    }
    notes
}

/// tab10 colours: distinguishable on white and for the common forms of colour blindness.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

const PLOT_SIZE: (u32, u32) = (800, 500);
/// Width of the legend panel right of the chart: a legend inside the chart would hide data
/// whose position is not known in advance.
const LEGEND_WIDTH: u32 = 190;
/// Characters of a legend label that fit in the panel at the legend's font size.
const LEGEND_CHARS: usize = 22;

struct Series {
    label: String,
    color: RGBColor,
    /// (τ, accuracy %, CI low %, CI high %), sorted by τ.
    points: Vec<(f64, f64, f64, f64)>,
}

struct Reference {
    label: String,
    color: RGBColor,
    y: f64,
}

fn legend_label(s: &str) -> String {
    if s.chars().count() > LEGEND_CHARS {
        let mut t: String = s.chars().take(LEGEND_CHARS - 1).collect();
        t.push('…');
        t
    } else {
        s.to_string()
    }
}

/// Plot prompt-level loose accuracy against τ: one line per granularity of the spotlight
/// conditions (those with an `alpha`) with bootstrap error bars, and a dashed horizontal line
/// for each other condition (baseline, emphasis, static, ...). Writes an 800×500 PNG.
///
/// Text uses the DejaVu font embedded by [`crate::plot`] (no system fonts needed).
pub fn plot_accuracy(report: &Report, path: &Path) -> Result<(), ReportError> {
    let err = |e: &dyn std::fmt::Display| ReportError::Plot {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    crate::plot::ensure_font().map_err(|e| err(&e))?;

    // Group spotlight conditions by granularity, in order of first appearance.
    let mut groups: Vec<(Option<&str>, Vec<&ConditionReport>)> = Vec::new();
    let mut references = Vec::new();
    for c in &report.conditions {
        match c.alpha {
            Some(_) => match groups.iter_mut().find(|(g, _)| *g == c.granularity.as_deref()) {
                Some((_, cs)) => cs.push(c),
                None => groups.push((c.granularity.as_deref(), vec![c])),
            },
            None => references.push(c),
        }
    }
    let mut colors = PALETTE.iter().copied().cycle();
    let series: Vec<Series> = groups
        .into_iter()
        .map(|(g, mut cs)| {
            cs.sort_by(|a, b| a.alpha.unwrap_or(0.0).total_cmp(&b.alpha.unwrap_or(0.0)));
            let points = cs
                .iter()
                .map(|c| {
                    let x = f64::from(c.alpha.unwrap_or(0.0));
                    (
                        x,
                        100.0 * c.prompt_loose,
                        100.0 * c.prompt_loose_ci.low,
                        100.0 * c.prompt_loose_ci.high,
                    )
                })
                .collect();
            let label = g.map_or("SpotLight".to_string(), |g| format!("SpotLight ({g})"));
            Series {
                label,
                color: colors.next().unwrap_or(BLUE),
                points,
            }
        })
        .collect();
    // The baseline in black: it is the line every other one is read against.
    let references: Vec<Reference> = references
        .into_iter()
        .map(|c| Reference {
            label: c.name.clone(),
            color: if c.name == report.baseline {
                BLACK
            } else {
                colors.next().unwrap_or(BLACK)
            },
            y: 100.0 * c.prompt_loose,
        })
        .collect();

    // Axis ranges from everything drawn, padded so nothing sits on the frame.
    let xs: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    let (mut x0, mut x1) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
        (lo.min(x), hi.max(x))
    });
    if xs.is_empty() {
        (x0, x1) = (0.0, 1.0);
    } else if x1 - x0 < 1e-9 {
        (x0, x1) = (x0 - 0.05, x1 + 0.05);
    } else {
        let pad = 0.06 * (x1 - x0);
        (x0, x1) = (x0 - pad, x1 + pad);
    }
    let ys = series
        .iter()
        .flat_map(|s| s.points.iter().flat_map(|p| [p.2, p.3]))
        .chain(references.iter().map(|r| r.y));
    let (ylo, yhi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let (y0, y1) = if ylo.is_finite() {
        ((ylo - 5.0).max(0.0), (yhi + 5.0).min(100.0))
    } else {
        (0.0, 100.0)
    };

    let root = BitMapBackend::new(path, PLOT_SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let body = root
        .titled("IFEval prompt-level loose accuracy vs SpotLight τ", ("sans-serif", 22))
        .map_err(|e| err(&e))?;
    let (chart_area, legend_area) = body.split_horizontally(PLOT_SIZE.0 - LEGEND_WIDTH);
    let mut chart = ChartBuilder::on(&chart_area)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("τ (target attention share of the highlighted span)")
        .y_desc("prompt-level loose accuracy (%)")
        .axis_desc_style(("sans-serif", 15))
        .label_style(("sans-serif", 13))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| err(&e))?;

    for r in &references {
        chart
            .draw_series(DashedLineSeries::new(
                [(x0, r.y), (x1, r.y)],
                8,
                5,
                r.color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?;
    }
    // Series at the same τ are shifted apart a little so their error bars do not overlap.
    let dodge = 0.015 * (x1 - x0);
    let cap = 0.006 * (x1 - x0);
    let k = series.len() as f64;
    for (i, s) in series.iter().enumerate() {
        let shift = (i as f64 - (k - 1.0) / 2.0) * dodge;
        let style = s.color.stroke_width(2);
        chart
            .draw_series(LineSeries::new(s.points.iter().map(|p| (p.0 + shift, p.1)), style))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(
                s.points
                    .iter()
                    .map(|p| Circle::new((p.0 + shift, p.1), 4, s.color.filled())),
            )
            .map_err(|e| err(&e))?;
        let bars = s.points.iter().flat_map(|&(x, _, lo, hi)| {
            let x = x + shift;
            [
                PathElement::new(vec![(x, lo), (x, hi)], s.color.stroke_width(1)),
                PathElement::new(vec![(x - cap, lo), (x + cap, lo)], s.color.stroke_width(1)),
                PathElement::new(vec![(x - cap, hi), (x + cap, hi)], s.color.stroke_width(1)),
            ]
        });
        chart.draw_series(bars).map_err(|e| err(&e))?;
    }

    // Legend panel: solid lines with a marker for the τ sweeps, dashed for reference conditions.
    let font = ("sans-serif", 13)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let row = 20;
    let mut y = 20;
    legend_area
        .draw(&Text::new("95% bootstrap CI bars", (8, y), font.clone()))
        .map_err(|e| err(&e))?;
    y += row + 4;
    let rows_fit = ((PLOT_SIZE.1 as i32 - 60 - y) / row).max(1) as usize;
    let total = series.len() + references.len();
    let shown = if total > rows_fit { rows_fit - 1 } else { total };
    for s in series.iter().take(shown) {
        legend_area
            .draw(&PathElement::new(vec![(8, y), (36, y)], s.color.stroke_width(2)))
            .map_err(|e| err(&e))?;
        legend_area
            .draw(&Circle::new((22, y), 4, s.color.filled()))
            .map_err(|e| err(&e))?;
        legend_area
            .draw(&Text::new(legend_label(&s.label), (44, y), font.clone()))
            .map_err(|e| err(&e))?;
        y += row;
    }
    for r in references.iter().take(shown.saturating_sub(series.len())) {
        for (a, b) in [(8, 17), (22, 31)] {
            legend_area
                .draw(&PathElement::new(vec![(a, y), (b, y)], r.color.stroke_width(2)))
                .map_err(|e| err(&e))?;
        }
        legend_area
            .draw(&Text::new(legend_label(&r.label), (44, y), font.clone()))
            .map_err(|e| err(&e))?;
        y += row;
    }
    if shown < total {
        legend_area
            .draw(&Text::new(format!("+{} more", total - shown), (8, y), font))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(key: i64, ids: &[&str], strict: &[bool], loose: &[bool], chars: usize) -> PromptResult {
        PromptResult {
            key,
            instruction_ids: ids.iter().map(|s| s.to_string()).collect(),
            strict: strict.to_vec(),
            loose: loose.to_vec(),
            prompt_strict: strict.iter().all(|&v| v),
            prompt_loose: loose.iter().all(|&v| v),
            response_chars: chars,
            looping: false,
        }
    }

    fn condition(
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
    fn simple(key: i64, pass: bool) -> PromptResult {
        prompt(key, &["length_constraints:number_words"], &[pass], &[pass], 100)
    }

    /// Condition `name` on prompts 0..n, one instruction each, prompt `i` passing iff `pass(i)`.
    fn paired(name: &str, n: i64, pass: impl Fn(i64) -> bool) -> ConditionResults {
        condition(name, None, None, (0..n).map(|i| simple(i, pass(i))).collect())
    }

    /// Σ_{k ≤ m} C(n, k) / 2^n by the multiplicative formula in plain f64: accurate for small n
    /// and independent of the log-space code under test.
    fn direct_tail(n: u64, m: u64) -> f64 {
        let mut coef = 1.0f64;
        let mut sum = 0.0;
        for k in 0..=m {
            if k > 0 {
                coef *= (n - k + 1) as f64 / k as f64;
            }
            sum += coef;
        }
        sum / 2f64.powi(n as i32)
    }

    #[test]
    fn mcnemar_matches_hand_computed_values() {
        // b=10, c=2: 2·(1 + 12 + 66)/4096 = 0.03857421875.
        assert!((mcnemar_exact(10, 2) - 0.038_574_218_75).abs() < 1e-12);
        assert!((mcnemar_exact(2, 10) - 0.038_574_218_75).abs() < 1e-12);
        // b=0, c=5: 2·(1/32).
        assert!((mcnemar_exact(0, 5) - 0.0625).abs() < 1e-12);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        assert_eq!(mcnemar_exact(7, 7), 1.0);
        assert_eq!(mcnemar_exact(0, 1), 1.0);
        // An odd total split as evenly as possible: P(X ≤ 270) = 1/2 exactly at n = 541.
        assert!((mcnemar_exact(270, 271) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn mcnemar_agrees_with_direct_sum_and_survives_large_n() {
        for n in [1u64, 5, 20, 41, 60] {
            for b in 0..=n {
                let c = n - b;
                let want = (2.0 * direct_tail(n, b.min(c))).min(1.0);
                let got = mcnemar_exact(b, c);
                assert!(
                    (got - want).abs() <= 1e-10 * want.max(1e-300),
                    "b={b} c={c}: {got} vs {want}"
                );
            }
        }
        // All 541 discordant pairs one way: 2·2^-541 = 2^-540, far below f64's 2^53 range for
        // direct computation but fine in log space.
        let p = mcnemar_exact(0, 541);
        let want = 2f64.powi(-540);
        assert!(((p - want) / want).abs() < 1e-9, "{p} vs {want}");
        let p = mcnemar_exact(230, 311);
        assert!(p > 0.0 && p < 0.01, "{p}");
    }

    #[test]
    fn splitmix64_matches_reference_outputs() {
        // Published first outputs of splitmix64 for seed 1234567.
        let mut rng = SplitMix64(1_234_567);
        let got: Vec<u64> = (0..5).map(|_| rng.next_u64()).collect();
        assert_eq!(
            got,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423,
                4_593_380_528_125_082_431,
                16_408_922_859_458_223_821
            ]
        );
        let mut rng = SplitMix64(9);
        assert!((0..10_000).all(|_| rng.below(7) < 7));
    }

    #[test]
    fn bootstrap_ci_contains_observed_difference_and_is_deterministic() {
        let n = 200;
        // Baseline passes every 2nd prompt, the condition every prompt not divisible by 3:
        // discordant both ways, observed Δ = 133/200 - 100/200.
        let base: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
        let cond: Vec<bool> = (0..n).map(|i| i % 3 != 0).collect();
        let observed = ratio(cond.iter().filter(|&&v| v).count(), n) - ratio(base.iter().filter(|&&v| v).count(), n);
        let (d1, a1) = bootstrap(&base, &cond, 42, BOOTSTRAP_RESAMPLES);
        let (d2, a2) = bootstrap(&base, &cond, 42, BOOTSTRAP_RESAMPLES);
        assert_eq!((d1, a1), (d2, a2));
        assert!(d1.contains(observed), "{d1:?} vs {observed}");
        assert!(a1.contains(ratio(cond.iter().filter(|&&v| v).count(), n)));
        assert!(d1.low < observed && observed < d1.high);
        // Standard error of the paired mean difference is ~0.047 here; the 95% interval should
        // be about ±1.96 of that.
        let half = (d1.high - d1.low) / 2.0;
        assert!((0.07..0.12).contains(&half), "{half}");
        let (d3, _) = bootstrap(&base, &cond, 43, BOOTSTRAP_RESAMPLES);
        assert_ne!(d1, d3);
        // Identical verdicts: no resample can differ.
        let (d, _) = bootstrap(&base, &base, 1, 1000);
        assert_eq!(d, Interval { low: 0.0, high: 0.0 });
    }

    #[test]
    fn accuracies_on_a_tiny_set() {
        let base = condition(
            "baseline",
            None,
            None,
            vec![
                // Both followed strictly.
                prompt(1, &["format:title", "length:words"], &[true, true], &[true, true], 100),
                // Second followed only loosely.
                prompt(2, &["format:title", "length:words"], &[true, false], &[true, true], 200),
                // First not followed at all.
                prompt(3, &["format:json", "keywords:x"], &[false, true], &[false, true], 300),
                prompt(4, &["keywords:x"], &[false], &[false], 400),
            ],
        );
        let report = build_report("baseline", &[base], 7).unwrap();
        let c = &report.conditions[0];
        assert_eq!((c.n, c.instructions), (4, 7));
        assert_eq!(c.prompt_strict, 0.25);
        assert_eq!(c.prompt_loose, 0.5);
        assert_eq!(c.instruction_strict, 4.0 / 7.0);
        assert_eq!(c.instruction_loose, 5.0 / 7.0);
        assert_eq!(c.mean_response_chars, 250.0);
        assert!(c.vs_baseline.is_none());
        assert_eq!(report.categories, ["format", "keywords", "length"]);
        let format = &c.categories["format"];
        assert_eq!((format.prompts, format.instructions), (3, 3));
        assert_eq!(format.instruction_strict, 2.0 / 3.0);
        assert_eq!(format.prompt_loose, 2.0 / 3.0);
        let length = &c.categories["length"];
        assert_eq!(
            (length.instruction_strict, length.instruction_loose, length.prompt_loose),
            (0.5, 1.0, 1.0)
        );
        let keywords = &c.categories["keywords"];
        assert_eq!((keywords.prompts, keywords.prompt_loose), (2, 0.5));
    }

    #[test]
    fn length_free_subset_leaves_out_prompts_with_length_constraints() {
        let words = "length_constraints:number_words";
        let comma = "punctuation:no_comma";
        let base = condition(
            "baseline",
            None,
            None,
            vec![
                prompt(1, &[comma], &[false], &[false], 100),
                prompt(2, &[comma], &[true], &[true], 100),
                prompt(3, &[comma, words], &[true, true], &[true, true], 100),
                prompt(4, &[words], &[false], &[false], 100),
                prompt(5, &[comma], &[false], &[false], 100),
            ],
        );
        // Gains on 1 and 5, loses 2; the length-constrained prompts (3 fails, 4 passes) do not count.
        let short = condition(
            "short",
            None,
            None,
            vec![
                prompt(1, &[comma], &[true], &[true], 10),
                prompt(2, &[comma], &[false], &[false], 10),
                prompt(3, &[comma, words], &[true, false], &[true, false], 10),
                prompt(4, &[words], &[true], &[true], 10),
                prompt(5, &[comma], &[true], &[true], 10),
            ],
        );
        let report = build_report("baseline", &[base, short], 7).unwrap();
        let (b, s) = (&report.conditions[0].length_free, &report.conditions[1].length_free);
        assert_eq!(
            (b.prompts, b.prompt_loose, b.delta_prompt_loose, b.mcnemar_p),
            (3, Some(1.0 / 3.0), None, None)
        );
        assert_eq!((s.prompts, s.prompt_loose), (3, Some(2.0 / 3.0)));
        assert_eq!(s.delta_prompt_loose, Some(1.0 / 3.0));
        assert_eq!(s.mcnemar_p, Some(mcnemar_exact(1, 2)));
        let md = render_markdown(&report, "spotlight eval");
        assert!(
            md.contains("## Without length constraints") && md.contains("| short | 66.7% |"),
            "{md}"
        );
    }

    #[test]
    fn passes_from_looping_replies_are_counted_apart() {
        let comma = "punctuation:no_comma";
        let looping = |mut p: PromptResult| {
            p.looping = true;
            p
        };
        let base = condition(
            "baseline",
            None,
            None,
            vec![
                prompt(1, &[comma], &[true], &[true], 100),
                prompt(2, &[comma], &[false], &[false], 100),
                looping(prompt(3, &[comma], &[true], &[true], 100)),
                prompt(4, &[comma], &[false], &[false], 100),
            ],
        );
        // Passes 2 and 4 only by looping, and 1 no longer passes: more passes, fewer real ones.
        let loops = condition(
            "loops",
            None,
            None,
            vec![
                looping(prompt(1, &[comma], &[true], &[true], 900)),
                looping(prompt(2, &[comma], &[true], &[true], 900)),
                looping(prompt(3, &[comma], &[true], &[true], 900)),
                looping(prompt(4, &[comma], &[true], &[true], 900)),
            ],
        );
        let report = build_report("baseline", &[base, loops], 7).unwrap();
        let (b, l) = (&report.conditions[0].looping, &report.conditions[1].looping);
        assert_eq!((b.share, b.prompt_loose_not_looping, b.delta), (0.25, 0.25, None));
        assert_eq!((l.share, l.prompt_loose_not_looping), (1.0, 0.0));
        assert_eq!(l.delta, Some(-0.25));
        assert_eq!(l.mcnemar_p, Some(mcnemar_exact(1, 0)));
        assert_eq!(report.conditions[1].prompt_loose, 1.0);
        let md = render_markdown(&report, "spotlight eval");
        assert!(md.contains("| loops | 100.0% | 0.0% | -25.0 |"), "{md}");
    }

    #[test]
    fn comparison_counts_gain_damage_and_pairs_by_key() {
        let base = paired("baseline", 40, |i| i < 20);
        // Passes 0..10 and 20..32: damage = 10 (10..20), gain = 12 (20..32). Given in reverse
        // order, which pairing by key must not care about.
        let mut cond = paired("spotlight:0.1:head", 40, |i| i < 10 || (20..32).contains(&i));
        cond.results.reverse();
        cond.alpha = Some(0.1);
        cond.granularity = Some("head".into());
        let report = build_report("baseline", &[base, cond], 3).unwrap();
        let v = report
            .condition("spotlight:0.1:head")
            .unwrap()
            .vs_baseline
            .clone()
            .unwrap();
        assert_eq!((v.gain, v.damage), (12, 10));
        assert!((v.delta_prompt_loose - 0.05).abs() < 1e-12);
        assert!(v.delta_ci.contains(v.delta_prompt_loose));
        assert_eq!(v.mcnemar_p, mcnemar_exact(10, 12));
        assert!((v.relative_gain.unwrap() - 22.0 / 20.0).abs() < 1e-12);
        // The baseline's interval is that of its own accuracy.
        assert!(report.conditions[0].prompt_loose_ci.contains(0.5));
        // Determinism of the whole report, including through JSON.
        let again = build_report("baseline", &[paired("baseline", 40, |i| i < 20)], 3).unwrap();
        assert_eq!(again.conditions[0], report.conditions[0]);
        let json = serde_json::to_string(&report).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn relative_gain_is_none_when_baseline_scores_zero() {
        let report = build_report(
            "baseline",
            &[paired("baseline", 5, |_| false), paired("x", 5, |i| i == 0)],
            0,
        )
        .unwrap();
        assert_eq!(report.conditions[1].vs_baseline.as_ref().unwrap().relative_gain, None);
    }

    #[test]
    fn missing_keys_are_named() {
        let base = paired("baseline", 30, |_| true);
        let mut cond = paired("emphasis", 30, |_| true);
        cond.results.retain(|r| r.key != 4 && r.key != 17);
        let err = build_report("baseline", &[base, cond], 0).unwrap_err();
        match &err {
            ReportError::MissingKeys { condition, keys, .. } => {
                assert_eq!(condition, "emphasis");
                assert_eq!(keys, &[4, 17]);
            }
            other => panic!("unexpected error {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("emphasis") && msg.contains("4, 17"), "{msg}");
        // A long list is cut short in the message but kept whole in the error.
        let base = paired("baseline", 30, |_| true);
        let err = build_report("baseline", &[base, paired("x", 1, |_| true)], 0).unwrap_err();
        assert!(err.to_string().contains("and 9 more"), "{err}");
    }

    #[test]
    fn other_input_errors() {
        let err = build_report("baseline", &[paired("emphasis", 3, |_| true)], 0).unwrap_err();
        assert!(matches!(err, ReportError::MissingBaseline { .. }), "{err:?}");
        assert!(err.to_string().contains("emphasis"));

        let err = build_report(
            "baseline",
            &[paired("baseline", 3, |_| true), paired("x", 4, |_| true)],
            0,
        );
        assert!(
            matches!(err, Err(ReportError::ExtraKeys { ref keys, .. }) if keys == &[3]),
            "{err:?}"
        );

        let mut dup = paired("x", 3, |_| true);
        dup.results[2].key = 0;
        let err = build_report("baseline", &[paired("baseline", 3, |_| true), dup], 0);
        assert!(matches!(err, Err(ReportError::DuplicateKey { key: 0, .. })), "{err:?}");

        let err = build_report(
            "baseline",
            &[paired("baseline", 3, |_| true), paired("baseline", 3, |_| true)],
            0,
        );
        assert!(matches!(err, Err(ReportError::DuplicateCondition(_))), "{err:?}");

        let err = build_report("baseline", &[paired("baseline", 0, |_| true)], 0);
        assert!(matches!(err, Err(ReportError::Empty(_))), "{err:?}");

        let mut other_ids = paired("x", 3, |_| true);
        other_ids.results[1].instruction_ids[0] = "format:title".into();
        let err = build_report("baseline", &[paired("baseline", 3, |_| true), other_ids], 0);
        assert!(matches!(err, Err(ReportError::Inconsistent { key: 1, .. })), "{err:?}");

        let mut lying = paired("x", 3, |_| true);
        lying.results[2].loose[0] = false;
        let err = build_report("baseline", &[paired("baseline", 3, |_| true), lying], 0);
        assert!(matches!(err, Err(ReportError::Inconsistent { key: 2, .. })), "{err:?}");
    }

    fn sample_report() -> Report {
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

    #[test]
    fn markdown_has_command_tables_and_notes() {
        let report = sample_report();
        let command = "spotlight eval -m model.gguf --conditions baseline,emphasis,`odd`";
        let md = render_markdown(&report, command);
        assert!(md.starts_with("# SpotLight IFEval report"));
        assert!(md.contains(&format!("```sh\n{command}\n```")), "{md}");
        assert_eq!(fence_for("echo ```x``` `y`"), "````");
        assert!(md.contains(
            "| condition | n | prompt strict | prompt loose | instr strict | instr loose | Δ loose vs baseline [95% CI] \
             | rel. | McNemar p | gain/damage | mean length |"
        ));
        assert!(
            md.contains("| baseline | 60 | 66.7% | 66.7% | 66.7% | 66.7% | — | — | — | — | 100 |"),
            "{md}"
        );
        assert!(md.contains("| category | instructions | baseline | emphasis |"));
        assert!(md.contains("| length_constraints | 60 |"));
        assert!(
            md.contains("Best by prompt-level loose accuracy: `spotlight:0.2:head` at 86.7% (+20.0 pp"),
            "{md}"
        );
        // Every table row has as many cells as its table's header.
        let mut header_cells = None;
        let mut tables = 0;
        for line in md.lines() {
            if !line.starts_with('|') {
                header_cells = None;
                continue;
            }
            let cells = line.matches('|').count();
            match header_cells {
                None => {
                    header_cells = Some(cells);
                    tables += 1;
                }
                Some(n) => assert_eq!(cells, n, "{line}"),
            }
        }
        // accuracy, looping, per category (every sample prompt has a length constraint)
        assert_eq!(tables, 3);
    }

    /// Width and height from a PNG's IHDR chunk, after checking the signature.
    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&bytes[12..16], b"IHDR");
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        (be(&bytes[16..20]), be(&bytes[20..24]))
    }

    #[test]
    fn plot_writes_a_png_that_decodes() {
        let dir = std::env::temp_dir().join(format!("spotlight-report-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("accuracy.png");
        plot_accuracy(&sample_report(), &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(png_size(&bytes), PLOT_SIZE);
        let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), PLOT_SIZE);
        // Something was drawn in several colours (lines, text), not a blank canvas.
        let colors: HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        assert!(colors.len() > 20, "{} colours", colors.len());
        // Title text lands in the top band, which no series reaches.
        let dark_in_title = (0..PLOT_SIZE.0)
            .flat_map(|x| (0..30).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&c| c < 100))
            .count();
        assert!(dark_in_title > 100, "{dark_in_title} dark pixels in the title band");

        // Only reference conditions (no τ sweep) still gives a plot.
        let only = build_report("baseline", &[paired("baseline", 5, |i| i > 1)], 0).unwrap();
        let path2 = dir.join("only-baseline.png");
        plot_accuracy(&only, &path2).unwrap();
        assert_eq!(png_size(&std::fs::read(&path2).unwrap()), PLOT_SIZE);

        let err = plot_accuracy(&only, &dir.join("no-such-dir").join("x.png")).unwrap_err();
        assert!(matches!(err, ReportError::Plot { .. }), "{err:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
