//! `spotlight chat`: an interactive conversation with highlights in any turn. The KV cache is
//! reused across turns, so earlier turns (and their highlights) are not processed again.

use super::args::{ChatArgs, SteerArgs};
use anyhow::Context as _;
use rustyline::error::ReadlineError;
use spotlight::llama::{ChatTemplate, ContextParams, FlashAttn, LlamaError, SamplingParams};
use spotlight::spotlight::markup::{self, Highlighted};
use spotlight::spotlight::trace::summarize;
use spotlight::spotlight::{Alpha, Chat, GenerateOptions, Granularity, Session, SteerConfig};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const HELP: &str = "commands: /alpha T (0 = off), /granularity head|layer, /spans, /clear, /trace on|off, /help; \
                    Ctrl-C stops a reply, Ctrl-D quits. Use **text** to highlight.";

/// What `chat`'s options and commands can do about a llama.cpp condition (see
/// `cli::with_hint`); chat always uses the model's template, so `--raw` is no way out here.
pub(super) fn flag_hint(e: &LlamaError) -> Option<&'static str> {
    match e {
        LlamaError::NoChatTemplate => Some("chat needs one; `spotlight run --raw` sends a prompt as is"),
        LlamaError::PromptTooLong { .. } | LlamaError::ContextFull { .. } => {
            Some("/clear the conversation or restart with a larger --ctx-size")
        }
        _ => None,
    }
}

/// Steering and tracing settings the user can change between turns.
struct Settings {
    /// Starts as the command line's; `/alpha` and `/granularity` change it.
    steer: SteerArgs,
    trace: bool,
}

impl Settings {
    /// The hook's configuration, or none at all for τ = 0: no hook means the stock graph.
    fn steer_config(&self) -> Option<SteerConfig> {
        self.steer.steers().then(|| SteerConfig {
            trace: self.trace,
            ..self.steer.config()
        })
    }
}

/// What a line typed at the prompt asks for.
enum Input {
    Message(Highlighted),
    Command(String, String),
    Empty,
}

fn parse_line(line: &str) -> Result<Input, String> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Ok(Input::Empty);
    }
    if let Some(cmd) = trimmed.strip_prefix('/') {
        let (name, arg) = cmd.split_once(char::is_whitespace).unwrap_or((cmd, ""));
        return Ok(Input::Command(name.to_string(), arg.trim().to_string()));
    }
    markup::parse_markup(line)
        .map(Input::Message)
        .map_err(|e| e.to_string())
}

/// Apply a slash command; Ok(message to show).
fn apply_command(name: &str, arg: &str, settings: &mut Settings, chat: &mut Chat<'_>) -> Result<String, String> {
    match name {
        "alpha" => {
            let a: Alpha = arg.parse().map_err(|e| format!("/alpha: {e}"))?;
            settings.steer.alpha = a;
            // one τ for prompt and reply from now on (--prefill-alpha/--decode-alpha no longer apply)
            settings.steer.prefill_alpha = None;
            settings.steer.decode_alpha = None;
            chat.session().set_steer(settings.steer_config());
            Ok(if a.is_off() {
                "steering off".into()
            } else {
                format!("τ = {a}")
            })
        }
        "granularity" => {
            settings.steer.granularity = arg.parse::<Granularity>().map_err(|e| format!("/granularity: {e}"))?;
            chat.session().set_steer(settings.steer_config());
            Ok(format!("granularity = {}", settings.steer.granularity))
        }
        "trace" => {
            settings.trace = match arg {
                "on" => true,
                "off" => false,
                other => return Err(format!("/trace on|off, not `{other}`")),
            };
            chat.session().set_steer(settings.steer_config());
            Ok(format!("trace {arg}"))
        }
        "spans" => {
            let spans = chat.spans();
            if spans.is_empty() {
                return Ok("no highlighted spans".into());
            }
            Ok(spans
                .iter()
                .map(|s| format!("turn {} ({}): {:?}", s.turn + 1, s.role, s.text))
                .collect::<Vec<_>>()
                .join("\n"))
        }
        "clear" => {
            chat.clear();
            Ok("conversation cleared".into())
        }
        "help" => Ok(HELP.into()),
        other => Err(format!("unknown command /{other}; {HELP}")),
    }
}

/// `/trace on`: one line per reply with the highlighted tokens' attention share.
fn trace_summary(trace: &[spotlight::spotlight::trace::UbatchTrace]) -> String {
    use spotlight::spotlight::trace::LayerShares;
    let (mut before, mut after, mut n) = (0.0f64, 0.0f64, 0usize);
    for t in trace {
        let last = t.pos.len().saturating_sub(1);
        for l in &t.layers {
            before += LayerShares::mean_over_heads(&l.before, l.n_head, last) as f64;
            if let Some(a) = &l.after {
                after += LayerShares::mean_over_heads(a, l.n_head, last) as f64;
            }
            n += 1;
        }
    }
    if n == 0 {
        return "[trace] no highlighted span visible in this reply".into();
    }
    format!(
        "[trace] span share of each step's last token, mean over layers and steps: {:.3} before → {:.3} after steering",
        before / n as f64,
        after / n as f64
    )
}

pub fn chat(args: &ChatArgs) -> anyhow::Result<()> {
    let model = super::load_model(&args.model, !args.quiet)?;
    let mut settings = Settings {
        steer: args.steer.clone(),
        trace: args.trace.is_some(),
    };
    settings
        .steer
        .layers
        .validate(model.n_layer())
        .map_err(anyhow::Error::msg)?;
    let threads = super::threads(args.model.threads);
    // steering can be switched on at any turn, so the context never uses flash attention
    let params = ContextParams {
        n_ctx: args.ctx_size,
        n_batch: 512,
        n_ubatch: 512,
        n_threads: threads,
        n_seq_max: 1,
        flash_attn: FlashAttn::Off,
    };
    let session = Session::new(&model, params, settings.steer_config())?;
    let system = match &args.system {
        Some(s) => Some(markup::parse_markup(s).map_err(|e| anyhow::anyhow!("in the system prompt: {e}"))?),
        None => None,
    };
    let mut chat = Chat::new(session, Some(ChatTemplate::from_model(&model)?), system);
    let mut trace_file = match &args.trace {
        Some(p) => Some(std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?),
        None => None,
    };

    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        ctrlc::set_handler(move || cancel.store(true, Ordering::Relaxed))
            .context("cannot install the Ctrl-C handler")?;
    }
    let mut editor = rustyline::DefaultEditor::new().context("cannot open the terminal")?;
    let history = spotlight::models::cache_dir().join("chat_history.txt");
    let _ = editor.load_history(&history);
    println!("spotlight chat · {} · {HELP}", model.description());
    let mut turn = 0usize;
    loop {
        let line = match editor.readline("> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let _ = editor.add_history_entry(line.as_str());
        match parse_line(&line) {
            Ok(Input::Empty) => {}
            Ok(Input::Command(name, arg)) => match apply_command(&name, &arg, &mut settings, &mut chat) {
                Ok(msg) => println!("{msg}"),
                Err(msg) => println!("error: {msg}"),
            },
            Err(msg) => println!("error: {msg}"),
            Ok(Input::Message(user)) => {
                cancel.store(false, Ordering::Relaxed);
                let options = GenerateOptions {
                    n_predict: (args.n_predict > 0).then_some(args.n_predict as usize),
                    sampling: SamplingParams {
                        temp: args.temp,
                        seed: args.seed.unwrap_or(0xFFFF_FFFF),
                        ..SamplingParams::default()
                    },
                    forced: None,
                    cancel: Some(cancel.clone()),
                };
                let mut stdout = std::io::stdout();
                let result = chat.send(user, &options, |piece| {
                    let _ = stdout.write_all(piece.as_bytes());
                    let _ = stdout.flush();
                });
                println!();
                turn += 1;
                match result {
                    Err(e) => match super::llama_error(&e).and_then(flag_hint) {
                        Some(hint) => println!("error: {e}; {hint}"),
                        None => println!("error: {e}"),
                    },
                    Ok(out) => {
                        if cancel.load(Ordering::Relaxed) {
                            println!("[stopped]");
                        }
                        if settings.trace {
                            println!("{}", trace_summary(&out.trace));
                        }
                        if let Some(file) = trace_file.as_mut() {
                            for (step, t) in out.trace.iter().enumerate() {
                                // τ of the hook that computed the ubatch, not of the settings now
                                let line = summarize(t, step);
                                let mut v = serde_json::to_value(&line)?;
                                v["turn"] = serde_json::json!(turn);
                                writeln!(file, "{v}")?;
                            }
                            file.flush()?;
                        }
                    }
                }
            }
        }
    }
    let _ = std::fs::create_dir_all(spotlight::models::cache_dir());
    let _ = editor.save_history(&history);
    Ok(())
}
