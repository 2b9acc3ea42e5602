//! Command-line interface: argument definitions and the subcommands.

mod annotate;
mod args;
mod bench;
mod chat;
mod eval;
mod pull;
mod run;
mod show_spans;

pub use args::{expand_short_aliases, Cli, Command};

/// Resolve the model path (given, or the pulled default), start llama.cpp and load the model.
pub(crate) fn load_model(
    model: Option<&std::path::PathBuf>,
    verbose: bool,
    n_gpu_layers: i32,
    progress: bool,
) -> anyhow::Result<spotlight::llama::Model> {
    let path = run::model_path(model)?;
    spotlight::llama::init_backend(verbose);
    Ok(spotlight::llama::Model::load(
        &path,
        &spotlight::llama::ModelParams { n_gpu_layers, progress },
    )?)
}

/// Threads to use: the given number, else every core.
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
        Command::Run(args) => run::run(&args),
        Command::Pull(args) => pull::pull(&args),
        Command::Bench(args) => bench::bench(&args),
        Command::Chat(args) => chat::chat(&args),
        Command::Eval(args) => eval::eval(&args),
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
