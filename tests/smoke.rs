//! The first tests to compute (scripts/test.sh runs this file before the others): the binary
//! generates a few tokens, unsteered and steered, and a death by signal is reported as such —
//! on a CPU whose instructions the build does not match (the AMX SIGILL), later tests would
//! only see a closed pipe or a timeout.

mod common;

use common::*;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Run the binary with a time limit; a signal or a hang fails with what happened.
fn run_bounded(args: &[&str], limit: Duration) -> Output {
    let _g = compute_lock();
    let mut child = Command::new(bin())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn spotlight");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait for spotlight").is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "spotlight {args:?} did not finish within {limit:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("collect output");
    if let Some(signal) = out.status.signal() {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(str::to_string))
            .unwrap_or_default();
        panic!(
            "spotlight {args:?} was killed by signal {signal}{} on this CPU ({cpu}); stderr: {}",
            if signal == 4 {
                " (SIGILL: the build uses an instruction this CPU or OS does not allow)"
            } else {
                ""
            },
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn generate(extra: &[&str]) -> String {
    let model = model_path();
    let mut args = vec![
        "run",
        "--model",
        model.to_str().unwrap(),
        "--temp",
        "0",
        "--n-predict",
        "4",
        "--threads",
        "2",
        "--json",
    ];
    args.extend_from_slice(extra);
    args.push("Say **hello**.");
    let out = run_bounded(&args, Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "spotlight run failed: {stderr}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn unsteered_and_steered_runs_generate() {
    for extra in [&["--no-steer"][..], &[][..], &["--granularity", "head"][..]] {
        let json: serde_json::Value = serde_json::from_str(&generate(extra)).expect("one JSON object");
        let tokens = json["tokens"].as_array().map_or(0, Vec::len);
        assert!(tokens > 0, "{extra:?}: no tokens generated: {json}");
        let steered = extra != ["--no-steer"];
        assert_eq!(!json["steering"].is_null(), steered, "{extra:?}: steering: {json}");
    }
}

#[test]
fn version_names_the_cpu_build() {
    let out = run_bounded(&["--version"], Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CPU build: "), "{text}");
    assert!(
        text.contains("AMX off") || text.contains("AMX on") || text.contains("AMX n/a"),
        "{text}"
    );
}
