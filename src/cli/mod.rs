//! Command-line interface: argument definitions and the subcommands.

mod annotate;
mod args;
mod bench;
mod chat;
mod eval;
mod multiturn;
mod pull;
mod rpc;
mod rpc_server;
mod run;
mod serve;
mod show_spans;

pub use args::{expand_short_aliases, Cli, Command};

use spotlight::llama::LlamaError;
use spotlight::spotlight::prompt::PromptError;

/// Resolve the model path (given, or the pulled default), start llama.cpp and load the model.
pub(crate) fn load_model(model: &args::ModelArgs, progress: bool) -> anyhow::Result<spotlight::llama::Model> {
    let path = run::model_path(model.path.as_ref())?;
    spotlight::llama::init_backend(model.verbose);
    let placement = spotlight::llama::Placement {
        rpc: rpc::connect(model)?,
        tensor_split: model.tensor_split.clone(),
    };
    Ok(spotlight::llama::Model::load_placed(
        &path,
        &spotlight::llama::ModelParams {
            n_gpu_layers: model.n_gpu_layers,
            progress,
        },
        &placement,
    )?)
}

/// The llama.cpp condition behind an error, if that is what it is (also inside a prompt error,
/// whose `Llama` variant is transparent and so hides it from the source chain).
pub(crate) fn llama_error<'e>(err: &'e (dyn std::error::Error + 'static)) -> Option<&'e LlamaError> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(l) = e.downcast_ref::<LlamaError>() {
            return Some(l);
        }
        if let Some(PromptError::Llama(l)) = e.downcast_ref::<PromptError>() {
            return Some(l);
        }
        next = e.source();
    }
    None
}

/// Add what the user can do about a llama.cpp condition, in the flags of the command that hit
/// it: the wrapper's messages describe the condition only, since the library cannot know which
/// front end (and so which options) it runs under.
fn with_hint(err: anyhow::Error, hint: fn(&LlamaError) -> Option<&'static str>) -> anyhow::Error {
    match llama_error(err.as_ref()).and_then(hint) {
        Some(h) => anyhow::anyhow!("{err:#}; {h}"),
        None => err,
    }
}

/// Threads to use: the given number, else every core.
/// `--repeat-penalty` as `eval` and `multiturn` accept it: a positive, finite factor.
pub(crate) fn check_repeat_penalty(penalty: f32) -> anyhow::Result<()> {
    if penalty > 0.0 && penalty.is_finite() {
        Ok(())
    } else {
        anyhow::bail!("--repeat-penalty must be a positive number (1.0 = off), got {penalty}")
    }
}

pub(crate) fn threads(requested: Option<i32>) -> i32 {
    requested.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get() as i32)
            .unwrap_or(2)
    })
}

/// Run a parsed command line; errors are reported by main.
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run::run(&args).map_err(|e| with_hint(e, run::flag_hint)),
        Command::Pull(args) => pull::pull(&args),
        Command::Bench(args) => bench::bench(&args),
        Command::Serve(args) => serve::serve(&args),
        Command::RpcServer(args) => rpc_server::rpc_server(&args),
        Command::Chat(args) => chat::chat(&args).map_err(|e| with_hint(e, chat::flag_hint)),
        Command::Eval(args) => eval::eval(&args),
        Command::Multiturn(args) => multiturn::multiturn(&args),
        Command::Annotate(args) => annotate::annotate(&args),
        Command::Plot(args) => {
            let summary = spotlight::plot::plot_trace(&args.trace, &args.output)?;
            println!(
                "{} ({}×{}, {} steps, {} layers)",
                args.output.display(),
                summary.width,
                summary.height,
                summary.steps,
                summary.layers
            );
            Ok(())
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "spotlight", &mut std::io::stdout());
            Ok(())
        }
    }
}
