//! spotlight over llama.cpp's RPC backend, on loopback: two `spotlight rpc-server` workers and a
//! client with every layer on them compute what the local CPU computes, steered or not (the
//! steering ops are ordinary ggml ops, the span mask an ordinary graph input), and a worker that
//! dies, hangs or was never there ends the client with an error naming it, in bounded time.
//!
//! Every process runs one thread (2-core machine); every wait is bounded; workers listen on
//! 127.0.0.1 only and are killed on drop.

mod common;

use common::{bin, compute_lock, model_path};
use serde_json::Value;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Read a pipe to the end on a thread, into a shared buffer (so a child never blocks on a full pipe).
fn drain(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let out = Arc::new(Mutex::new(String::new()));
    let sink = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    out
}

/// A `spotlight rpc-server` on 127.0.0.1, killed on drop.
struct Worker {
    child: Child,
    endpoint: String,
    stderr: Arc<Mutex<String>>,
}

impl Worker {
    fn start(extra: &[&str]) -> Worker {
        let port = free_port();
        let mut child = Command::new(bin())
            .args([
                "rpc-server",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "-t",
                "1",
            ])
            .args(extra)
            // ggml prints a line per client to stdout; nobody reads it
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn spotlight rpc-server");
        let stderr = drain(child.stderr.take().unwrap());
        let endpoint = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        // listening = accepts a connection (the worker takes it as a client that hangs up at once)
        while TcpStream::connect_timeout(&endpoint.parse().unwrap(), Duration::from_secs(1)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("rpc-server exited ({status}): {}", stderr.lock().unwrap());
            }
            assert!(
                Instant::now() < deadline,
                "rpc-server {endpoint} did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Worker {
            child,
            endpoint,
            stderr,
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {}", self.child.id());
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("rpc-server {} stderr:\n{}", self.endpoint, self.stderr.lock().unwrap());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait for a child, at most `limit`; panics (killing it) past that.
fn wait_bounded(guard: &mut Guard, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = guard.0.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what} still running after {limit:?} (a hang)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Run spotlight to the end, bounded by `limit`.
fn spotlight(args: &[&str], limit: Duration) -> Finished {
    let start = Instant::now();
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn spotlight");
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let mut guard = Guard(child);
    let status = wait_bounded(&mut guard, limit, &format!("spotlight {args:?}"));
    // the pipes close with the process; give the reader threads a moment to finish
    std::thread::sleep(Duration::from_millis(100));
    let (stdout, stderr) = (stdout.lock().unwrap().clone(), stderr.lock().unwrap().clone());
    Finished {
        status,
        stdout,
        stderr,
        took: start.elapsed(),
    }
}

fn ok_json(f: &Finished) -> Value {
    assert!(f.status.success(), "{}: {}", f.status, f.stderr);
    serde_json::from_str(f.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", f.stdout))
}

const PLAIN: &str = "What is the capital of France? Answer in one sentence.";
const STEERED: &str = "Write a short poem about the sea. **Use only lowercase letters.**";

fn run_args<'a>(model: &'a str, rpc: Option<&'a str>, prompt: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["run", "-m", model, "-t", "1", "--temp", "0", "-n", "24", "--json"];
    if let Some(r) = rpc {
        v.extend(["--rpc", r]);
    }
    v.extend_from_slice(extra);
    v.push(prompt);
    v
}

fn tokens(v: &Value) -> Vec<i64> {
    v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect()
}

fn read_trace(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every span share of two traces (per layer and step: before/after mean, min, max, and the
/// last token's per-head shares), as (where, local, remote).
fn share_pairs(local: &[Value], remote: &[Value]) -> Vec<(String, f64, f64)> {
    assert_eq!(local.len(), remote.len(), "trace lines");
    let mut pairs = Vec::new();
    for (l, r) in local.iter().zip(remote) {
        let (ll, rl) = (l["layers"].as_array().unwrap(), r["layers"].as_array().unwrap());
        assert_eq!(ll.len(), rl.len(), "layers of step {}", l["step"]);
        for (a, b) in ll.iter().zip(rl) {
            let at = format!("step {} layer {}", l["step"], a["layer"]);
            assert_eq!(a["units"], b["units"], "{at}: units");
            for key in ["before", "after"] {
                for stat in ["mean", "min", "max"] {
                    if let (Some(x), Some(y)) = (a[key][stat].as_f64(), b[key][stat].as_f64()) {
                        pairs.push((format!("{at} {key}.{stat}"), x, y));
                    } else {
                        assert_eq!(a[key].is_null(), b[key].is_null(), "{at} {key}");
                    }
                }
            }
            for key in ["last_token_before", "last_token_after"] {
                let (xa, ya) = (a[key].as_array(), b[key].as_array());
                assert_eq!(xa.map(Vec::len), ya.map(Vec::len), "{at} {key}");
                for (i, (x, y)) in xa.into_iter().flatten().zip(ya.into_iter().flatten()).enumerate() {
                    pairs.push((format!("{at} {key}[{i}]"), x.as_f64().unwrap(), y.as_f64().unwrap()));
                }
            }
        }
    }
    pairs
}

#[test]
fn layers_on_two_workers_compute_what_the_cpu_computes() {
    let _lock = compute_lock();
    let model = model_path();
    let model = model.to_str().unwrap();
    // equal reported memory, so the default split is half the layers each on any host
    let w1 = Worker::start(&["--mem", "2048"]);
    let w2 = Worker::start(&["--mem", "2048"]);
    let rpc = format!("{},{}", w1.endpoint, w2.endpoint);
    let limit = Duration::from_secs(300);

    let local = ok_json(&spotlight(&run_args(model, None, PLAIN, &[]), limit));
    let remote_run = spotlight(&run_args(model, Some(&rpc), PLAIN, &["-v"]), limit);
    let remote = ok_json(&remote_run);
    // the layers really ran on the workers: both hold weights, and every layer is offloaded
    let log = &remote_run.stderr;
    for w in [&w1, &w2] {
        let buffer = format!("[{}] model buffer size", w.endpoint);
        assert!(log.contains(&buffer), "no `{buffer}` in the client's log:\n{log}");
    }
    let offloaded = log
        .lines()
        .find(|l| l.contains("offloaded") && l.contains("layers to GPU"))
        .unwrap_or_else(|| panic!("no offload line in:\n{log}"));
    let (done, all) = offloaded
        .split("offloaded ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.split_once('/'))
        .unwrap();
    assert_eq!(done, all, "{offloaded}");
    assert_eq!(tokens(&local), tokens(&remote), "unsteered greedy tokens, local vs RPC");
    assert!(!tokens(&local).is_empty());

    let dir = std::env::temp_dir().join(format!("spotlight-rpc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (tl, tr) = (dir.join("local.jsonl"), dir.join("rpc.jsonl"));
    let local = ok_json(&spotlight(
        &run_args(model, None, STEERED, &["--trace", tl.to_str().unwrap()]),
        limit,
    ));
    let remote = ok_json(&spotlight(
        &run_args(model, Some(&rpc), STEERED, &["--trace", tr.to_str().unwrap()]),
        limit,
    ));
    assert!(!local["steering"].is_null() && local["steering"] == remote["steering"]);
    let (lt, rt) = (tokens(&local), tokens(&remote));
    let first_diff = lt.iter().zip(&rt).position(|(a, b)| a != b);
    let (lines_l, lines_r) = (read_trace(&tl), read_trace(&tr));
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(step) = first_diff {
        // allowed only at a near-tie, which the first step's top-5 shows when it is there
        let top = &local["first_step_top5"];
        panic!("steered greedy tokens differ from step {step}: local {lt:?}, RPC {rt:?} (first-step top-5 {top})");
    }
    assert_eq!(lt.len(), rt.len());
    let pairs = share_pairs(&lines_l, &lines_r);
    assert!(pairs.len() > 100, "{} shares compared", pairs.len());
    let worst = pairs
        .iter()
        .max_by(|a, b| (a.1 - a.2).abs().total_cmp(&(b.1 - b.2).abs()))
        .unwrap();
    eprintln!(
        "{} span shares compared over {} trace lines; largest difference {:.2e} ({})",
        pairs.len(),
        lines_l.len(),
        (worst.1 - worst.2).abs(),
        worst.0
    );
    assert!((worst.1 - worst.2).abs() <= 1e-4, "{worst:?}");
    drop((w1, w2));
}

#[test]
fn tensor_split_decides_what_each_worker_holds() {
    let _lock = compute_lock();
    let model = model_path();
    let w1 = Worker::start(&[]);
    let w2 = Worker::start(&[]);
    let rpc = format!("{},{}", w1.endpoint, w2.endpoint);
    let run = spotlight(
        &[
            "run",
            "-m",
            model.to_str().unwrap(),
            "-t",
            "1",
            "-n",
            "1",
            "--temp",
            "0",
            "--rpc",
            &rpc,
            "--tensor-split",
            "1,3",
            "-v",
            "Hi",
        ],
        Duration::from_secs(300),
    );
    assert!(run.status.success(), "{}", run.stderr);
    let mib = |w: &Worker| -> f64 {
        let key = format!("[{}] model buffer size =", w.endpoint);
        let line = run
            .stderr
            .lines()
            .find(|l| l.contains(&key))
            .unwrap_or_else(|| panic!("{key}: {}", run.stderr));
        line.split('=')
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (a, b) = (mib(&w1), mib(&w2));
    // 1:3 of the layers (the second also holds the output layer): well below half for the first
    assert!(a > 0.0 && b > 2.0 * a, "RPC0 {a} MiB, RPC1 {b} MiB");
    let bad = spotlight(
        &[
            "run",
            "-m",
            model.to_str().unwrap(),
            "--rpc",
            &rpc,
            "--tensor-split",
            "1,-1",
            "Hi",
        ],
        Duration::from_secs(120),
    );
    assert_eq!(bad.status.code(), Some(1), "{}", bad.stderr);
    assert!(bad.stderr.contains("tensor split"), "{}", bad.stderr);
}

/// Start a long streamed generation over both workers and return once it is generating.
fn start_long_run(model: &str, rpc: &str, extra: &[&str]) -> (Guard, Arc<Mutex<String>>, Arc<Mutex<String>>) {
    let mut child = Command::new(bin())
        .args([
            "run", "-m", model, "-t", "1", "--temp", "0", "-n", "1500", "--rpc", rpc, "-c", "2048",
        ])
        .args(extra)
        .arg("Write the numbers from 1 to 500, separated by commas.")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn spotlight run");
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let mut guard = Guard(child);
    let deadline = Instant::now() + Duration::from_secs(300);
    while stdout.lock().unwrap().len() < 20 {
        if let Some(status) = guard.0.try_wait().unwrap() {
            panic!("the run ended before generating ({status}): {}", stderr.lock().unwrap());
        }
        assert!(Instant::now() < deadline, "no output within 300 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    (guard, stdout, stderr)
}

#[test]
fn a_worker_killed_mid_generation_ends_the_client_with_an_error_naming_it() {
    let _lock = compute_lock();
    let model = model_path();
    let w1 = Worker::start(&[]);
    let mut w2 = Worker::start(&[]);
    let rpc = format!("{},{}", w1.endpoint, w2.endpoint);
    let (mut run, stdout, stderr) = start_long_run(model.to_str().unwrap(), &rpc, &[]);
    w2.child.kill().unwrap();
    w2.child.wait().unwrap();
    let killed = Instant::now();
    let status = wait_bounded(&mut run, Duration::from_secs(30), "the client after its worker died");
    std::thread::sleep(Duration::from_millis(100));
    let err = stderr.lock().unwrap().clone();
    eprintln!("client ended {:?} after the kill: {status}\n{err}", killed.elapsed());
    // exit status 1 from the error path, not a signal (SIGABRT) or a success
    assert_eq!(status.code(), Some(1), "{status}: {err}");
    assert!(err.contains(&format!("RPC server {}", w2.endpoint)), "{err}");
    assert!(err.contains("no longer accepts connections"), "{err}");
    assert!(!stdout.lock().unwrap().is_empty());
    drop(w1);
}

#[test]
fn a_hung_worker_ends_the_client_after_the_rpc_timeout() {
    let _lock = compute_lock();
    let model = model_path();
    let w1 = Worker::start(&[]);
    let w2 = Worker::start(&[]);
    let rpc = format!("{},{}", w1.endpoint, w2.endpoint);
    let (mut run, _stdout, stderr) = start_long_run(model.to_str().unwrap(), &rpc, &["--rpc-timeout", "3"]);
    // stopped, not dead: its kernel still accepts connections, it just never answers
    w1.signal("-STOP");
    let stopped = Instant::now();
    let status = wait_bounded(&mut run, Duration::from_secs(30), "the client of a hung worker");
    let took = stopped.elapsed();
    w1.signal("-CONT");
    std::thread::sleep(Duration::from_millis(100));
    let err = stderr.lock().unwrap().clone();
    eprintln!("client ended {took:?} after the stop: {status}\n{err}");
    assert_eq!(status.code(), Some(1), "{status}: {err}");
    assert!(err.contains(&format!("RPC server {}", w1.endpoint)), "{err}");
    assert!(
        err.contains("still accepts connections") && err.contains("within 3 s"),
        "{err}"
    );
    assert!(
        took >= Duration::from_secs(2),
        "ended after {took:?}, before the timeout"
    );
    drop(w2);
}

#[test]
fn unreachable_and_wrong_endpoints_fail_fast_naming_them() {
    let _lock = compute_lock();
    let model = model_path();
    let model = model.to_str().unwrap();
    let limit = Duration::from_secs(60);

    // nothing listens: refused before llama.cpp is involved
    let nothing = format!("127.0.0.1:{}", free_port());
    let f = spotlight(&["run", "-m", model, "--rpc", &nothing, "Hi"], limit);
    assert_eq!(f.status.code(), Some(1), "{}", f.stderr);
    assert!(
        f.stderr.contains(&format!("cannot reach the RPC server {nothing}")) && f.stderr.contains("refused"),
        "{}",
        f.stderr
    );
    assert!(f.stderr.contains("spotlight rpc-server"), "hint: {}", f.stderr);
    assert!(f.took < Duration::from_secs(20), "{:?}", f.took);

    // something listens but never speaks the protocol (another program on that port)
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_ep = format!("127.0.0.1:{}", silent.local_addr().unwrap().port());
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for conn in silent.incoming().flatten() {
            keep.lock().unwrap().push(conn);
        }
    });
    let f = spotlight(
        &[
            "bench",
            "-m",
            model,
            "--rpc",
            &silent_ep,
            "--rpc-timeout",
            "2",
            "-p",
            "32",
            "-n",
            "4",
            "-r",
            "1",
        ],
        limit,
    );
    assert_eq!(f.status.code(), Some(1), "{}", f.stderr);
    assert!(
        f.stderr.contains(&format!("RPC handshake failed for {silent_ep}")),
        "{}",
        f.stderr
    );
    assert!(f.stderr.contains("still accepts connections"), "{}", f.stderr);
    assert!(f.took < Duration::from_secs(20), "{:?}", f.took);

    // a wrong endpoint is a usage error, listed twice an error naming it
    let f = spotlight(&["chat", "-m", model, "--rpc", "127.0.0.1"], limit);
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr);
    assert!(f.stderr.contains("HOST:PORT"), "{}", f.stderr);
    let twice = format!("{nothing},{nothing}");
    let f = spotlight(&["serve", "-m", model, "--port", "0", "--rpc", &twice], limit);
    assert_eq!(f.status.code(), Some(1), "{}", f.stderr);
    assert!(
        f.stderr.contains(&format!("the RPC server {nothing} is listed twice")),
        "{}",
        f.stderr
    );
}

#[test]
fn rpc_server_refuses_bad_addresses_and_warns_off_loopback() {
    let _lock = compute_lock();
    let limit = Duration::from_secs(30);
    let f = spotlight(&["rpc-server", "--host", "localhost"], limit);
    assert_eq!(f.status.code(), Some(2), "{}", f.stderr);
    assert!(f.stderr.contains("IPv4"), "{}", f.stderr);

    // a port in use: the reason, not "Failed to create server socket"
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let f = spotlight(&["rpc-server", "--port", &port, "-t", "1"], limit);
    assert_eq!(f.status.code(), Some(1), "{}", f.stderr);
    assert!(
        f.stderr.contains(&format!("cannot serve on 127.0.0.1:{port}")) && f.stderr.contains("in use"),
        "{}",
        f.stderr
    );

    // off loopback it warns first; 192.0.2.1 (TEST-NET-1) is no address of this machine, so
    // the bind fails and nothing ever listens off loopback
    let f = spotlight(
        &["rpc-server", "--host", "192.0.2.1", "--port", &port, "-t", "1"],
        limit,
    );
    assert_eq!(f.status.code(), Some(1), "{}", f.stderr);
    assert!(f.stderr.contains("never expose the RPC server"), "{}", f.stderr);
    assert!(f.stderr.contains("no authentication"), "{}", f.stderr);
    drop(taken);

    let f = spotlight(
        &["rpc-server", "--mem", "1,2,3,4,5,6,7,8,9", "--port", "1", "-t", "1"],
        limit,
    );
    assert_eq!(f.status.code(), Some(1), "{}", f.stderr);
    assert!(f.stderr.contains("--mem has 9 values"), "{}", f.stderr);
}
