//! `spotlight eval`: run prompts under several conditions, write the responses, score them with
//! the IFEval verifiers and report accuracies with paired statistics against the baseline.

use super::args::EvalArgs;
use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressStyle};
use spotlight::eval::annotate::Scope;
use spotlight::eval::condition::{parse_conditions, Condition};
use spotlight::eval::data::{self, EvalItem};
use spotlight::eval::examples::{render_examples, ExamplePrompt};
use spotlight::eval::ifeval;
use spotlight::eval::key::Key;
use spotlight::eval::repetition::is_looping;
use spotlight::eval::report::{build_report, plot_accuracy, render_markdown, ConditionResults, PromptResult};
use spotlight::eval::responses::{Decoding, ResponseFile, ResponseLine};
use spotlight::eval::subset::seeded_subset;
use spotlight::llama::{ChatTemplate, ContextParams, FlashAttn, SamplingParams};
use spotlight::spotlight::markup::{self, Highlighted};
use spotlight::spotlight::prompt::{prepare, PreparedPrompt, Turn};
use spotlight::spotlight::{GenerateOptions, Session};
use std::io::IsTerminal;

/// Damaged and gained prompts shown per condition in examples.md.
const EXAMPLES_PER_KIND: usize = 4;

/// One line of `scores-<condition>.jsonl`: a prompt's per-instruction verdicts, named like the
/// official evaluator's `follow_instruction_list`, so each verdict can be compared with it.
#[derive(serde::Serialize)]
struct ScoreLine<'a> {
    key: &'a Key,
    instruction_id_list: &'a [String],
    follow_instruction_list_strict: &'a [bool],
    follow_instruction_list_loose: &'a [bool],
    follow_all_instructions_strict: bool,
    follow_all_instructions_loose: bool,
}

/// Per-prompt verdicts of one condition, in the data's order (rewritten on every scoring).
fn write_scores(path: &std::path::Path, results: &[PromptResult]) -> anyhow::Result<()> {
    let mut out = String::new();
    for r in results {
        let line = ScoreLine {
            key: &r.key,
            instruction_id_list: &r.instruction_ids,
            follow_instruction_list_strict: &r.strict,
            follow_instruction_list_loose: &r.loose,
            follow_all_instructions_strict: r.prompt_strict,
            follow_all_instructions_loose: r.prompt_loose,
        };
        out.push_str(&serde_json::to_string(&line)?);
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// The prompt a condition sends for an item; a `highlight=clause` condition needs the annotator's
/// highlights (data that gives its own has no clause scope to take).
fn prompt_for(item: &EvalItem, condition: &Condition) -> anyhow::Result<Highlighted> {
    Ok(match condition {
        Condition::Baseline => markup::plain(&item.prompt),
        Condition::Emphasis => markup::plain(&item.emphasized()),
        Condition::Spotlight { levers, .. } if levers.highlight == Scope::Clause => {
            let Some(spans) = &item.clause_spans else {
                bail!(
                    "prompt {} under {condition}: `highlight=clause` needs highlights found by the annotator \
                     (IFEval records without `prompt_marked` or `highlights`); this record's come from {}",
                    item.key,
                    item.highlight_source
                );
            };
            Highlighted {
                text: item.prompt.clone(),
                spans: spans.clone(),
            }
        }
        Condition::Spotlight { .. } | Condition::Static { .. } => Highlighted {
            text: item.prompt.clone(),
            spans: item.spans.clone(),
        },
    })
}

fn progress(len: u64, label: &str, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:28} {bar:30} {pos}/{len} prompts · {elapsed} elapsed · ETA {eta}")
            .expect("static template is valid"),
    );
    bar.set_message(label.to_string());
    bar
}

pub fn eval(args: &EvalArgs) -> anyhow::Result<()> {
    let conditions = parse_conditions(&args.conditions).map_err(anyhow::Error::msg)?;
    if args.parallel == 0 || args.max_tokens == 0 {
        bail!("--parallel and --max-tokens must be at least 1");
    }
    super::check_repeat_penalty(args.repeat_penalty)?;
    let mut items = data::load(&args.data)?;
    if let Some(n) = args.subset {
        if n == 0 {
            bail!("--subset must be at least 1");
        }
        items = seeded_subset(items, n, args.subset_seed);
    }
    if let Some(limit) = args.limit {
        items.truncate(limit);
    }
    let model = super::load_model(&args.model, !args.quiet)?;
    for condition in &conditions {
        if let Some(config) = condition.steer_config() {
            config
                .layers
                .validate(model.n_layer())
                .map_err(|e| anyhow::anyhow!("--conditions `{condition}`: {e}"))?;
        }
    }
    let template = ChatTemplate::from_model(&model)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;

    // prepare every (condition, item) prompt up front: template and span errors surface early
    let mut prepared: Vec<Vec<PreparedPrompt>> = Vec::new();
    let mut longest = 0;
    for condition in &conditions {
        let mut list = Vec::new();
        for item in &items {
            let turn = Turn {
                role: "user".into(),
                content: prompt_for(item, condition)?,
            };
            let p = prepare(model.vocab(), Some(&template), &[turn], true)
                .with_context(|| format!("prompt {} under {condition}", item.key))?;
            longest = longest.max(p.tokens.len());
            list.push(p);
        }
        prepared.push(list);
    }
    let n_ctx = (args.parallel * (longest + args.max_tokens + 8)).div_ceil(256) * 256;
    let threads = super::threads(args.model.threads);
    let options = GenerateOptions {
        n_predict: Some(args.max_tokens),
        sampling: SamplingParams {
            temp: args.temp,
            seed: args.seed as u32,
            repeat_penalty: args.repeat_penalty,
            ..SamplingParams::default()
        },
        forced: None,
        cancel: None,
    };

    let decoding = Decoding::new(args.max_tokens, args.temp, args.repeat_penalty, args.seed);
    let mut files = Vec::new();
    for (ci, condition) in conditions.iter().enumerate() {
        let path = args.out.join(format!("responses-{}.jsonl", condition.slug()));
        if args.score_only && !path.exists() {
            bail!(
                "--score-only: {} does not exist (0 of {} responses)",
                path.display(),
                items.len()
            );
        }
        let mut file = ResponseFile::open(&path)?;
        let todo: Vec<usize> = (0..items.len()).filter(|&i| !file.contains(&items[i].key)).collect();
        // rescoring reads any file; adding replies to one decoded otherwise would mix two runs
        if let (false, Some((key, theirs))) = (todo.is_empty(), file.decoded_otherwise(&decoding)) {
            bail!(
                "{}: key {key} was decoded with {theirs}, this run asks for {decoding} (use another --out)",
                file.path().display()
            );
        }
        if args.score_only && !todo.is_empty() {
            bail!(
                "--score-only: {} has {} of {} responses (first missing key: {})",
                file.path().display(),
                items.len() - todo.len(),
                items.len(),
                items[todo[0]].key
            );
        }
        if !todo.is_empty() {
            let steer = condition.steer_config();
            let params = ContextParams {
                n_ctx: n_ctx as u32,
                n_batch: 512,
                n_ubatch: 512,
                n_threads: threads,
                n_seq_max: args.parallel as u32,
                flash_attn: FlashAttn::Off,
            };
            let mut session = Session::new(&model, params, steer)?;
            let bar = progress(items.len() as u64, &condition.to_string(), args.quiet);
            bar.set_position((items.len() - todo.len()) as u64);
            // continuous batching: a finished reply is saved at once and frees its slot
            let prompts: Vec<PreparedPrompt> = todo.iter().map(|&i| prepared[ci][i].clone()).collect();
            session.generate_queue(&prompts, &options, |j, out| -> anyhow::Result<()> {
                let item = &items[todo[j]];
                file.append(ResponseLine {
                    key: item.key.clone(),
                    prompt: item.prompt.clone(),
                    response: out.text,
                    decoding: Some(decoding),
                })?;
                bar.inc(1);
                Ok(())
            })?;
            bar.finish_and_clear();
        }
        if !args.quiet {
            eprintln!("{condition}: {} responses in {}", items.len(), file.path().display());
        }
        files.push(file);
    }

    // score and report (IFEval records only)
    let scored: Vec<&EvalItem> = items.iter().filter(|i| i.ifeval.is_some()).collect();
    if scored.is_empty() {
        eprintln!(
            "no IFEval instructions in {}: responses written, nothing to score",
            args.data.display()
        );
        return Ok(());
    }
    let mut results = Vec::new();
    for (condition, file) in conditions.iter().zip(&files) {
        let mut rs = Vec::new();
        for item in &scored {
            let p = item.ifeval.as_ref().expect("filtered above");
            let response = &file.get(&item.key).expect("every item has a response").response;
            let s = ifeval::score(p, response)?;
            rs.push(PromptResult {
                key: item.key.clone(),
                instruction_ids: p.instruction_id_list.clone(),
                strict: s.strict,
                loose: s.loose,
                prompt_strict: s.prompt_strict,
                prompt_loose: s.prompt_loose,
                response_chars: response.chars().count(),
                looping: is_looping(response),
                response_words: response.split_whitespace().count(),
                relations: p
                    .kwargs
                    .iter()
                    .map(|k| k.get("relation").and_then(|v| v.as_str()).map(str::to_string))
                    .collect(),
            });
        }
        write_scores(&args.out.join(format!("scores-{}.jsonl", condition.slug())), &rs)?;
        let (alpha, granularity) = match condition {
            Condition::Spotlight { alpha, granularity, .. } => (Some(alpha.get()), Some(granularity.to_string())),
            _ => (None, None),
        };
        results.push(ConditionResults {
            name: condition.to_string(),
            alpha,
            granularity,
            results: rs,
        });
    }
    let baseline = if conditions.contains(&Condition::Baseline) {
        "baseline".to_string()
    } else {
        conditions[0].to_string()
    };
    let report = build_report(&baseline, &results, args.seed)?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let markdown = render_markdown(&report, &command);
    std::fs::write(args.out.join("report.md"), &markdown)?;
    std::fs::write(args.out.join("report.json"), serde_json::to_string_pretty(&report)?)?;
    plot_accuracy(&report, &args.out.join("accuracy.png"))?;
    let examples = render_examples(
        &report,
        EXAMPLES_PER_KIND,
        |key| {
            let item = scored.iter().find(|i| &i.key == key)?;
            let p = item.ifeval.as_ref()?;
            Some(ExamplePrompt {
                prompt: &item.prompt,
                instruction_ids: &p.instruction_id_list,
            })
        },
        |name, key| {
            let i = conditions.iter().position(|c| c.to_string() == name)?;
            files[i].get(key).map(|r| r.response.as_str())
        },
    );
    std::fs::write(args.out.join("examples.md"), examples)?;
    println!("{markdown}");
    if !args.quiet {
        eprintln!(
            "wrote report.md, report.json, accuracy.png, examples.md, scores-*.jsonl to {}",
            args.out.display()
        );
    }
    Ok(())
}
