//! The report's statistics: a paired percentile bootstrap driven by splitmix64, and the exact
//! McNemar test.

use super::types::Interval;
use super::CONFIDENCE;
use crate::eval::rng::SplitMix64;

/// Median of counts (words per reply); 0 for none.
pub(crate) fn median(mut v: Vec<usize>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m] as f64
    } else {
        (v[m - 1] + v[m]) as f64 / 2.0
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
pub(crate) fn bootstrap(base: &[bool], cond: &[bool], seed: u64, resamples: usize) -> (Interval, Interval) {
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

/// Percentile bootstrap of the mean of small integers, one per unit resampled (per
/// conversation, e.g. a difference of differences in −2..=2): the same resampling and quantiles
/// as [`bootstrap`], for a statistic that is not one proportion minus another.
pub(crate) fn bootstrap_mean(values: &[i64], seed: u64, resamples: usize) -> Interval {
    assert!(!values.is_empty() && resamples > 0);
    let n = values.len();
    let mut rng = SplitMix64(seed);
    let mut sums: Vec<i64> = (0..resamples)
        .map(|_| (0..n).map(|_| values[rng.below(n)]).sum())
        .collect();
    sums.sort_unstable();
    let tail = (1.0 - CONFIDENCE) / 2.0;
    Interval {
        low: quantile(&sums, tail, n),
        high: quantile(&sums, 1.0 - tail, n),
    }
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

pub(super) fn ratio(num: usize, den: usize) -> f64 {
    num as f64 / den as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::report::BOOTSTRAP_RESAMPLES;

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
    fn mean_bootstrap_agrees_with_the_paired_one_on_differences() {
        // cond − base per unit, as integers, is what the paired bootstrap resamples: with the
        // same seed both draw the same units, so the intervals are identical.
        let base: Vec<bool> = (0..120).map(|i| i % 2 == 0).collect();
        let cond: Vec<bool> = (0..120).map(|i| i % 3 != 0).collect();
        let diffs: Vec<i64> = base
            .iter()
            .zip(&cond)
            .map(|(b, c)| i64::from(*c) - i64::from(*b))
            .collect();
        let (paired, _) = bootstrap(&base, &cond, 7, 2000);
        assert_eq!(bootstrap_mean(&diffs, 7, 2000), paired);
        let constant = bootstrap_mean(&[2, 2, 2], 1, 100);
        assert_eq!((constant.low, constant.high), (2.0, 2.0));
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
}
