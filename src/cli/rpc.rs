//! `--rpc` on the commands that load a model: connecting to the servers, and what the user sees
//! when one of them fails (see `spotlight::llama::rpc` for the failure model).

use super::args::ModelArgs;
use spotlight::llama::rpc::describe_failure;
use spotlight::llama::{exit_on_abort, last_log_errors, LlamaError, RpcServers};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Read by [`report_abort`], which is a plain function pointer.
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Connect to the `--rpc` servers (None without `--rpc`). From here on an abort in llama.cpp
/// ends the command with a message instead of SIGABRT.
pub(super) fn connect(model: &ModelArgs) -> anyhow::Result<Option<RpcServers>> {
    if model.rpc.is_empty() {
        return Ok(None);
    }
    VERBOSE.store(model.verbose, Ordering::Relaxed);
    exit_on_abort(report_abort);
    let servers =
        RpcServers::connect(&model.rpc, Duration::from_secs(model.rpc_timeout.into())).map_err(|e| match hint(&e) {
            Some(h) => anyhow::anyhow!("{e}; {h}"),
            None => e.into(),
        })?;
    if model.verbose {
        for (endpoint, d) in servers.devices() {
            eprintln!(
                "rpc: {endpoint}: {} ({}, {} MiB free of {} MiB)",
                d.name,
                d.description,
                d.free_bytes >> 20,
                d.total_bytes >> 20
            );
        }
    }
    Ok(Some(servers))
}

/// What the options can do about an RPC condition.
fn hint(e: &LlamaError) -> Option<&'static str> {
    match e {
        LlamaError::RpcUnreachable { .. } => Some(
            "start `spotlight rpc-server --host ADDRESS --port PORT` (or llama.cpp's rpc-server) on that \
             machine, or correct --rpc",
        ),
        LlamaError::RpcListedTwice(_) => Some("list each server once in --rpc"),
        _ => None,
    }
}

/// Report a llama.cpp abort (with `--rpc`, nearly always a lost server) as an error.
fn report_abort(location: &str, message: &str) {
    let verbose = VERBOSE.load(Ordering::Relaxed);
    // a streamed reply may have stopped mid-line; stdout is not touched (the main thread may
    // hold its lock while it waits for the server that failed)
    if std::io::stdout().is_terminal() {
        eprintln!();
    }
    let mut text = format!("error: {message}");
    if let Some(state) = describe_failure(message) {
        text.push_str("; ");
        text.push_str(&state.description);
        if state.listening {
            text.push_str(" (--rpc-timeout sets how long to wait)");
        }
    }
    for line in last_log_errors() {
        // ggml-rpc's own lines (a failed recv, its byte counts) add nothing for a user except
        // a protocol version mismatch
        if verbose || line.contains("version") {
            text.push_str(&format!("\n  llama.cpp: {line}"));
        }
    }
    if verbose && !location.is_empty() {
        text.push_str(&format!("\n  (aborted at {location})"));
    }
    eprintln!("{text}");
}
