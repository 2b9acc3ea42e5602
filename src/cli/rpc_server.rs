//! `spotlight rpc-server`: a worker of llama.cpp's RPC backend, the counterpart of llama.cpp's
//! `rpc-server`, so that `--rpc` clients (spotlight or llama.cpp) can put model layers on this
//! machine's devices. It serves one client at a time until the process is stopped.

use clap::Args;
use spotlight::llama::rpc::{serve_forever, worker_devices, WorkerOptions};
use spotlight::llama::{exit_on_abort, init_backend};
use std::net::Ipv4Addr;

#[derive(Debug, Args)]
pub struct RpcServerArgs {
    /// IPv4 address to listen on. Anything but loopback exposes this machine: the RPC protocol
    /// has no authentication.
    #[arg(short = 'H', long, default_value = "127.0.0.1", value_parser = parse_ipv4)]
    pub host: Ipv4Addr,
    /// Port to listen on.
    #[arg(short = 'p', long, default_value_t = 50052, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// Threads of the CPU device [default: half the cores, as llama.cpp's rpc-server].
    #[arg(short = 't', long, value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// Memory in MiB that each device (comma-separated, in the order printed at start) reports
    /// to clients, whose default layer split follows it [default: the device's own numbers, all
    /// of the RAM for the CPU]. Reported, not enforced.
    #[arg(long, value_name = "MiB,...", value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..))]
    pub mem: Vec<u64>,
    /// Show llama.cpp's logs.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

fn parse_ipv4(s: &str) -> Result<Ipv4Addr, String> {
    s.parse().map_err(|_| {
        format!(
            "`{s}` is not an IPv4 address such as 127.0.0.1 or 0.0.0.0 (llama.cpp's RPC server listens on IPv4 only)"
        )
    })
}

/// A failed assertion while serving (a client sent a graph this machine cannot compute) ends
/// the worker with a message rather than SIGABRT and a core dump.
fn report_abort(location: &str, message: &str) {
    eprintln!("error: llama.cpp's RPC server stopped: {message} (at {location})");
}

pub fn rpc_server(args: &RpcServerArgs) -> anyhow::Result<()> {
    init_backend(args.verbose);
    exit_on_abort(report_abort);
    if !args.host.is_loopback() {
        // llama.cpp's rpc-server warns the same way
        eprintln!(
            "warning: listening on {}, not 127.0.0.1: never expose the RPC server to an open or untrusted \
             network. llama.cpp's RPC protocol is experimental and has no authentication or encryption: \
             whoever reaches this port can run computations on this machine and read and write the \
             memory it serves.",
            args.host
        );
    }
    let devices = worker_devices();
    if args.mem.len() > devices.len() {
        anyhow::bail!(
            "--mem has {} values but this machine offers {} device{} ({})",
            args.mem.len(),
            devices.len(),
            if devices.len() == 1 { "" } else { "s" },
            devices.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    let threads = args.threads.map_or_else(
        || {
            std::thread::available_parallelism()
                .map(|n| (n.get() / 2).max(1))
                .unwrap_or(1)
        },
        |t| t as usize,
    );
    let memory = args
        .mem
        .iter()
        .map(|&mib| {
            mib.checked_mul(1 << 20)
                .and_then(|b| usize::try_from(b).ok())
                .ok_or_else(|| anyhow::anyhow!("--mem {mib} MiB is more than this machine can address"))
        })
        .collect::<anyhow::Result<Vec<usize>>>()?;
    eprintln!(
        "spotlight rpc-server: serving {} on {}:{} ({threads} thread{}); Ctrl-C stops",
        devices.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", "),
        args.host,
        args.port,
        if threads == 1 { "" } else { "s" }
    );
    let options = WorkerOptions {
        host: args.host,
        port: args.port,
        threads,
        memory,
    };
    Err(serve_forever(&options).into())
}
