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
