//! From per-prompt results to the report's numbers: checking and pairing the conditions by
//! prompt key, accuracies per condition and category, and the comparisons with the baseline.

use super::stats::{bootstrap, mcnemar_exact, median, ratio};
use super::types::*;
use super::{BOOTSTRAP_RESAMPLES, CONFIDENCE};
use crate::eval::key::Key;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Whether an instruction constrains the reply's length (words, sentences, paragraphs).
fn is_length_constraint(id: &str) -> bool {
    category(id) == "length_constraints"
}

/// Replies shorter than this many words count as short in the report.
const SHORT_REPLY_WORDS: usize = 20;

/// Label of a length instruction in the length table: the id after `length_constraints:`, with
/// its relation where it has one.
fn length_label(id: &str, relation: Option<&str>) -> String {
    let name = id.split_once(':').map_or(id, |(_, n)| n);
    match relation {
        Some(r) => format!("{name} ({r})"),
        None => name.to_string(),
    }
}

/// Loose accuracy per length instruction label.
fn length_instructions(aligned: &[&PromptResult]) -> BTreeMap<String, LengthInstruction> {
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in aligned {
        for (i, (id, &l)) in r.instruction_ids.iter().zip(&r.loose).enumerate() {
            if is_length_constraint(id) {
                let relation = r.relations.get(i).and_then(|x| x.as_deref());
                let e = counts.entry(length_label(id, relation)).or_default();
                e.0 += 1;
                e.1 += usize::from(l);
            }
        }
    }
    counts
        .into_iter()
        .map(|(label, (n, pass))| {
            (
                label,
                LengthInstruction {
                    instructions: n,
                    loose: ratio(pass, n),
                },
            )
        })
        .collect()
}

/// The category of an instruction id: the part before the first `:` (the whole id if none).
fn category(id: &str) -> &str {
    id.split_once(':').map_or(id, |(c, _)| c)
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
        key: r.key.clone(),
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
        median_words: median(aligned.iter().map(|r| r.response_words).collect()),
        short_replies: ratio(
            aligned.iter().filter(|r| r.response_words < SHORT_REPLY_WORDS).count(),
            n,
        ),
        length_instructions: length_instructions(aligned),
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
    base_index: &HashMap<&Key, usize>,
) -> Result<Vec<&'a PromptResult>, ReportError> {
    let mut by_key: HashMap<&Key, &PromptResult> = HashMap::with_capacity(cond.results.len());
    for r in &cond.results {
        check_prompt(&cond.name, r)?;
        if by_key.insert(&r.key, r).is_some() {
            return Err(ReportError::DuplicateKey {
                condition: cond.name.clone(),
                key: r.key.clone(),
            });
        }
    }
    let mut missing: Vec<Key> = base
        .results
        .iter()
        .filter(|r| !by_key.contains_key(&r.key))
        .map(|r| r.key.clone())
        .collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        return Err(ReportError::MissingKeys {
            condition: cond.name.clone(),
            baseline: base.name.clone(),
            keys: missing,
        });
    }
    let mut extra: Vec<Key> = by_key
        .keys()
        .filter(|k| !base_index.contains_key(*k))
        .map(|&k| k.clone())
        .collect();
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
                    key: r.key.clone(),
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
        if base_index.insert(&r.key, i).is_some() {
            return Err(ReportError::DuplicateKey {
                condition: base.name.clone(),
                key: r.key.clone(),
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
            let keys_where = |want: bool| -> Vec<Key> {
                aligned
                    .iter()
                    .zip(&base_pass)
                    .filter(|&(r, &b)| r.prompt_loose == want && b != want)
                    .map(|(r, _)| r.key.clone())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::report::markdown::render_markdown;
    use crate::eval::report::test_support::*;

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
        cond.results.retain(|r| r.key != Key::Int(4) && r.key != Key::Int(17));
        let err = build_report("baseline", &[base, cond], 0).unwrap_err();
        match &err {
            ReportError::MissingKeys { condition, keys, .. } => {
                assert_eq!(condition, "emphasis");
                assert_eq!(keys, &[Key::Int(4), Key::Int(17)]);
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
            matches!(err, Err(ReportError::ExtraKeys { ref keys, .. }) if keys == &[Key::Int(3)]),
            "{err:?}"
        );

        let mut dup = paired("x", 3, |_| true);
        dup.results[2].key = Key::Int(0);
        let err = build_report("baseline", &[paired("baseline", 3, |_| true), dup], 0);
        assert!(
            matches!(err, Err(ReportError::DuplicateKey { key: Key::Int(0), .. })),
            "{err:?}"
        );

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
        assert!(
            matches!(err, Err(ReportError::Inconsistent { key: Key::Int(1), .. })),
            "{err:?}"
        );

        let mut lying = paired("x", 3, |_| true);
        lying.results[2].loose[0] = false;
        let err = build_report("baseline", &[paired("baseline", 3, |_| true), lying], 0);
        assert!(
            matches!(err, Err(ReportError::Inconsistent { key: Key::Int(2), .. })),
            "{err:?}"
        );
    }
}
