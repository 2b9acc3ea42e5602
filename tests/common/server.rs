//! A `spotlight serve` process on 127.0.0.1 for tests: started on a free port, killed on drop.

use super::{bin, model_path};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Server {
    child: Child,
    pub base: String,
    pub key: Option<String>,
}

impl Server {
    /// Start with `extra` options; waits until it listens (bounded).
    pub fn start(extra: &[&str]) -> Server {
        let model = model_path();
        let mut cmd = Command::new(bin());
        cmd.args([
            "serve",
            "--model",
            model.to_str().unwrap(),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ])
        .args(extra)
        .env_remove("SPOTLIGHT_API_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn spotlight serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut seen = Vec::new();
        let base = loop {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        break rest.split_whitespace().next().unwrap().to_string();
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let status = child.try_wait().ok().flatten();
                    let _ = child.kill();
                    panic!("spotlight serve did not start (status {status:?}); stderr: {seen:?}");
                }
            }
        };
        // keep draining stderr so the server never blocks on a full pipe
        std::thread::spawn(move || while rx.recv().is_ok() {});
        let key = extra
            .iter()
            .position(|a| *a == "--api-key")
            .map(|i| extra[i + 1].to_string());
        Server { child, base, key }
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .into()
    }

    fn auth(
        &self,
        req: ureq::RequestBuilder<ureq::typestate::WithBody>,
    ) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        match &self.key {
            Some(k) => req.header("Authorization", &format!("Bearer {k}")),
            None => req,
        }
    }

    /// POST a raw body; returns (status, headers as (name, value), body text).
    pub fn post_raw(&self, path: &str, body: &str) -> (u16, Vec<(String, String)>, String) {
        let req = self
            .auth(Self::agent().post(&format!("{}{path}", self.base)))
            .header("Content-Type", "application/json");
        let mut resp = req.send(body).expect("HTTP request");
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        (
            resp.status().as_u16(),
            headers,
            resp.body_mut().read_to_string().expect("body"),
        )
    }

    /// POST JSON; returns (status, parsed body).
    pub fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let (status, _, text) = self.post_raw(path, &body.to_string());
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"));
        (status, v)
    }

    pub fn get(&self, path: &str, with_key: bool) -> (u16, String) {
        let mut req = Self::agent().get(&format!("{}{path}", self.base));
        if let (true, Some(k)) = (with_key, &self.key) {
            req = req.header("Authorization", &format!("Bearer {k}"));
        }
        let mut resp = req.call().expect("HTTP request");
        (resp.status().as_u16(), resp.body_mut().read_to_string().expect("body"))
    }

    /// A streamed request: the `data:` payloads in order (the last should be `[DONE]`).
    pub fn stream(&self, path: &str, body: &serde_json::Value) -> Vec<String> {
        let req = self
            .auth(Self::agent().post(&format!("{}{path}", self.base)))
            .header("Content-Type", "application/json");
        let mut resp = req.send(body.to_string()).expect("HTTP request");
        assert_eq!(resp.status().as_u16(), 200);
        let ct = resp
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(ct.starts_with("text/event-stream"), "content type {ct}");
        let text = resp.body_mut().read_to_string().expect("stream body");
        text.lines()
            .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
            .map(str::to_string)
            .collect()
    }

    /// Open a stream, read its first event, and hang up.
    pub fn stream_and_hang_up(&self, path: &str, body: &serde_json::Value) {
        use std::io::Read;
        let req = self
            .auth(Self::agent().post(&format!("{}{path}", self.base)))
            .header("Content-Type", "application/json");
        let resp = req.send(body.to_string()).expect("HTTP request");
        let mut reader = resp.into_body().into_reader();
        let mut buf = [0u8; 64];
        let n = reader.read(&mut buf).expect("first bytes");
        assert!(n > 0);
        drop(reader);
    }
}

impl Server {
    /// Send SIGTERM and wait (bounded) for the process to end.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "the server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
