//! `spotlight`: the command-line tool.

// The binary calls only the library's safe API; `unsafe` lives in `spotlight::llama`.
#![deny(unsafe_code)]

mod cli;

use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;

/// `--version`: our version, the vendored llama.cpp, the patches, and what the build supports.
/// Kept in a static (clap wants `&'static str`), so it stays reachable: a leak checker run on
/// the binary (scripts/leak-check.sh) reports nothing for it.
fn long_version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "{}\nllama.cpp {} (vendored from crates.io llama-cpp-sys-2 0.1.161), patches: {}\n\
         CPU build: {}; compiled for: {}\n{}",
            env!("CARGO_PKG_VERSION"),
            "0.6.0-dev",
            env!("SPOTLIGHT_PATCHES"),
            env!("SPOTLIGHT_CPU_BUILD"),
            spotlight::llama::compiled_cpu_features().join(" "),
            spotlight::llama::system_info().trim()
        )
    })
}

fn main() -> ExitCode {
    let args = cli::expand_short_aliases(std::env::args());
    let mut command = cli::Cli::command();
    if args.iter().any(|a| a == "--version") {
        command = command.long_version(long_version());
    }
    let parsed = command
        .try_get_matches_from(args)
        .and_then(|m| cli::Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2)
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let missing = spotlight::llama::unsupported_cpu_features();
    if !missing.is_empty() {
        eprintln!(
            "error: this build of llama.cpp uses {} but this CPU does not support {}; rebuild on this \
             machine (cargo build) or with SPOTLIGHT_PORTABLE=1 (x86-64-v3) or SPOTLIGHT_PORTABLE=baseline",
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" }
        );
        return ExitCode::from(3);
    }
    match cli::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
