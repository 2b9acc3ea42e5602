//! `spotlight run`: one prompt, one reply, optionally steered.

use super::args::{OnOff, OnOffAuto, RunArgs};
use super::show_spans;
use anyhow::{bail, Context as _};
use serde_json::json;
use spotlight::llama::{ChatTemplate, ContextParams, FlashAttn, LlamaError, SamplingParams};
use spotlight::models::default_model_path;
use spotlight::spotlight::prompt::{self, HighlightOptions, Turn};
use spotlight::spotlight::trace::summarize;
use spotlight::spotlight::{Action, GenerateOptions, Session, SteerConfig};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

fn read_prompt(args: &RunArgs) -> anyhow::Result<String> {
    if let Some(p) = args.prompt.as_ref().or(args.prompt_arg.as_ref()) {
        return Ok(p.clone());
    }
    if let Some(file) = &args.file {
        return std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the prompt file {}", file.display()));
    }
    if std::io::stdin().is_terminal() {
        bail!("no prompt given: pass it as an argument, with --prompt, --file, or on standard input");
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the prompt from standard input")?;
    if text.trim().is_empty() {
        bail!("the prompt on standard input is empty");
    }
    Ok(text)
}

/// The model to use: the one given, else the pulled default model.
pub fn model_path(model: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(m) = model {
        return Ok(m.clone());
    }
    let path = default_model_path();
    if !path.exists() {
        bail!("no model given and the default model is not downloaded yet: run `spotlight pull` (or pass --model FILE.gguf)");
    }
    Ok(path)
}

/// What `run`'s options can do about a llama.cpp condition (see `cli::with_hint`).
pub(super) fn flag_hint(e: &LlamaError) -> Option<&'static str> {
    match e {
        LlamaError::NoChatTemplate => Some("pass --raw to send the prompt as is"),
        LlamaError::PromptTooLong { .. } => Some("raise --ctx-size or shorten the prompt"),
        LlamaError::ContextFull { .. } => Some("raise --ctx-size"),
        _ => None,
    }
}

/// Check option values that clap cannot check by type.
fn validate(args: &RunArgs) -> anyhow::Result<()> {
    if args.n_predict == 0 || args.n_predict < -1 {
        bail!(
            "--n-predict must be a positive number of tokens, or -1 for no limit (got {})",
            args.n_predict
        );
    }
    if args.ctx_size < 16 {
        bail!("--ctx-size must be at least 16 (got {})", args.ctx_size);
    }
    if args.batch_size == 0 || args.ubatch_size == 0 {
        bail!("--batch-size and --ubatch-size must be positive");
    }
    if args.temp < 0.0 {
        bail!("--temp must not be negative (0 = greedy)");
    }
    Ok(())
}

pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    validate(args)?;
    let layers = &args.steer.layers;
    let user_text = read_prompt(args)?;
    let show_progress = !args.quiet && !args.json && std::io::stderr().is_terminal();
    let model = super::load_model(&args.model, show_progress)?;
    layers.validate(model.n_layer()).map_err(anyhow::Error::msg)?;

    let opts = HighlightOptions {
        markup: args.markup == OnOff::On,
        substrings: args.highlight.clone(),
        all_occurrences: args.highlight_all,
    };
    let mut turns = Vec::new();
    if let Some(system) = &args.system {
        turns.push(Turn {
            role: "system".into(),
            content: prompt::highlight("system prompt", system, &opts, false)?,
        });
    }
    turns.push(Turn {
        role: "user".into(),
        content: prompt::highlight("prompt", &user_text, &opts, true)?,
    });
    let template = if args.raw {
        None
    } else {
        Some(ChatTemplate::from_model(&model)?)
    };
    let prepared = prompt::prepare(model.vocab(), template.as_ref(), &turns, true)?;
    if args.show_spans {
        eprintln!("{}", show_spans::render(&prepared));
    }

    let has_spans = !prepared.span_token_positions.is_empty();
    let steering = has_spans && args.steer.steers() && !args.no_steer;
    // --plot needs the trace; without --trace it goes to a file next to the plot
    let trace_path = args
        .trace
        .clone()
        .or_else(|| args.plot.as_ref().map(|p| p.with_extension("trace.jsonl")));
    let trace = trace_path.is_some();
    let steer = if steering {
        Some(SteerConfig {
            trace,
            ..args.steer.config()
        })
    } else if trace && has_spans {
        // unsteered, but the trace still shows how much attention the spans get
        Some(SteerConfig {
            action: Action::Observe,
            decode: None,
            layers: layers.clone(),
            trace,
        })
    } else {
        None
    };
    if trace && !has_spans {
        eprintln!("note: the prompt has no highlights, so the trace has nothing to measure");
    }

    let threads = super::threads(args.model.threads);
    let params = ContextParams {
        n_ctx: args.ctx_size,
        n_batch: args.batch_size,
        n_ubatch: args.ubatch_size,
        n_threads: threads,
        n_seq_max: 1,
        flash_attn: match args.flash_attn {
            OnOffAuto::On => FlashAttn::On,
            OnOffAuto::Off => FlashAttn::Off,
            OnOffAuto::Auto => FlashAttn::Auto,
        },
    };
    let mut session = Session::new(&model, params, steer.clone())?;
    // long prompts take seconds to process on a CPU: show how far along it is
    if show_progress && prepared.tokens.len() > 2 * args.batch_size as usize {
        let bar = indicatif::ProgressBar::new(prepared.tokens.len() as u64).with_style(
            indicatif::ProgressStyle::with_template("prompt {bar:30} {pos}/{len} tokens · ETA {eta}")
                .expect("static template is valid"),
        );
        session.set_prefill_progress(Some(Box::new(move |done, total| {
            bar.set_position(done as u64);
            if done == total {
                bar.finish_and_clear();
            }
        })));
    }
    let options = GenerateOptions {
        n_predict: (args.n_predict > 0).then_some(args.n_predict as usize),
        sampling: SamplingParams {
            temp: args.temp,
            top_k: args.top_k,
            top_p: args.top_p,
            min_p: args.min_p,
            repeat_penalty: args.repeat_penalty,
            seed: args.seed.unwrap_or(0xFFFF_FFFF),
            ..SamplingParams::default()
        },
        forced: None,
        cancel: None,
    };
    let stream = !args.json;
    let mut stdout = std::io::stdout().lock();
    let generation = session.generate(&prepared, &options, |piece| {
        if stream {
            // A closed pipe (e.g. `| head`) must not panic; the text is lost to a reader that left.
            let _ = stdout.write_all(piece.as_bytes());
            let _ = stdout.flush();
        }
    })?;

    if let Some(path) = &trace_path {
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot create the trace file {}", path.display()))?,
        );
        for (step, t) in generation.trace.iter().enumerate() {
            // each ubatch's trace carries the configuration it was computed under
            serde_json::to_writer(&mut file, &summarize(t, step))?;
            file.write_all(b"\n")?;
        }
        file.flush()
            .with_context(|| format!("cannot write the trace file {}", path.display()))?;
    }

    if let (Some(plot), Some(trace)) = (&args.plot, &trace_path) {
        spotlight::plot::plot_trace(trace, plot).with_context(|| format!("cannot draw {}", plot.display()))?;
        if !args.json {
            eprintln!("attention plot: {}", plot.display());
        }
    }

    let per_s = |n: usize, ms: f64| if ms > 0.0 { n as f64 * 1000.0 / ms } else { 0.0 };
    if args.json {
        let out = json!({
            "prompt": prepared.text,
            "prompt_tokens": prepared.tokens,
            "tokens": generation.tokens,
            "text": generation.text,
            "stopped_at_eog": generation.stopped_at_eog,
            "first_step_top5": generation.first_step_top5,
            "span_token_positions": prepared.span_token_positions,
            // action, alpha, granularity, layers: the same form as a trace line's `config`
            "steering": match steer.as_ref().filter(|_| steering) {
                Some(config) => serde_json::to_value(config)?,
                None => serde_json::Value::Null,
            },
            "timings": {
                "prompt_tokens_per_s": per_s(prepared.tokens.len(), generation.prompt_ms),
                "gen_tokens_per_s": per_s(generation.tokens.len().saturating_sub(1), generation.gen_ms),
            },
        });
        writeln!(stdout, "{out}")?;
    } else {
        writeln!(stdout)?;
    }
    Ok(())
}
