//! The report as Markdown (report.md): tables per condition and category, and short notes.

use super::types::{CategoryAccuracy, ConditionReport, Report};
use std::fmt::Write as _;

/// A fraction as a percentage with one decimal (also used by the multi-turn report).
pub(crate) fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// Signed percentage points.
fn pp(x: f64) -> String {
    format!("{:+.1}", 100.0 * x)
}

pub(crate) fn p_value(p: f64) -> String {
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

    length_section(&mut md, report);

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
/// Reply lengths and the length instructions, by kind and relation: the side effect to watch
/// when steering shortens replies (more "less than N words" passes, fewer "at least N").
fn length_section(md: &mut String, report: &Report) {
    let Some(base) = report.condition(&report.baseline) else {
        return;
    };
    let labels: Vec<&String> = base.length_instructions.keys().collect();
    let _ = writeln!(md, "\n## Reply length and length instructions\n");
    let _ = writeln!(
        md,
        "Median words per reply, the share of replies under 20 words, and instruction-level loose accuracy \
         on each kind of `length_constraints:*` instruction (with its relation; n = instructions).\n"
    );
    let mut header = "| condition | median words | replies < 20 words |".to_string();
    let mut rule = "|---|--:|--:|".to_string();
    for l in &labels {
        let n = base.length_instructions[*l].instructions;
        let _ = write!(header, " {} (n={n}) |", cell(l));
        rule.push_str("--:|");
    }
    let _ = writeln!(md, "{header}\n{rule}");
    for c in &report.conditions {
        let _ = write!(
            md,
            "| {} | {:.0} | {} |",
            cell(&c.name),
            c.median_words,
            pct(c.short_replies)
        );
        for l in &labels {
            let v = c.length_instructions.get(*l).map_or("—".to_string(), |x| pct(x.loose));
            let _ = write!(md, " {v} |");
        }
        md.push('\n');
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::report::test_support::*;

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
        // accuracy, reply length and length instructions, looping, per category (every sample
        // prompt has a length constraint, so there is no length-free table)
        assert_eq!(tables, 4);
    }
}
