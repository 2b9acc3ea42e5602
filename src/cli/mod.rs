//! Command-line interface: argument definitions and the subcommands.

mod args;
mod pull;
mod run;
mod show_spans;

pub use args::{expand_short_aliases, Cli, Command};

/// Run a parsed command line; errors are reported by main.
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Pull(args) => pull::pull(&args),
    }
}
