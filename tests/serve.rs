//! `spotlight serve` against the real model: OpenAI semantics, steering equal to `run`,
//! per-request isolation under concurrency, prompt-prefix reuse, bad input, and overload.
//! Each test owns one server process on 127.0.0.1 and holds the compute lock while it runs.

mod common;

use common::server::Server;
use common::*;
use serde_json::{json, Value};
use std::process::Command;

const PROMPT: &str = "Write a short poem about the sea. **Use only lowercase letters.**";
const KEY: &str = "test-key-123";

/// `spotlight run` greedy, as the reference the server must reproduce.
fn run_text(extra: &[&str], prompt: &str, n: usize) -> String {
    let model = model_path();
    let n = n.to_string();
    let out = Command::new(bin())
        .args([
            "run",
            "--model",
            model.to_str().unwrap(),
            "--temp",
            "0",
            "--threads",
            "2",
            "--json",
        ])
        .args(["--n-predict", &n])
        .args(extra)
        .arg(prompt)
        .output()
        .expect("run spotlight");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["text"].as_str().unwrap().to_string()
}

fn chat(content: &str, max_tokens: usize, spotlight: Value) -> Value {
    json!({
        "model": "anything",
        "messages": [{"role": "user", "content": content}],
        "temperature": 0,
        "max_tokens": max_tokens,
        "spotlight": spotlight,
    })
}

fn text_of(v: &Value) -> String {
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no content: {v}"))
        .to_string()
}

/// The replies to chat requests sent all at once, in the order of `bodies`.
fn post_at_once(server: &Server, bodies: &[Value]) -> Vec<String> {
    std::thread::scope(|s| {
        let handles: Vec<_> = bodies
            .iter()
            .map(|b| s.spawn(|| text_of(&server.post("/v1/chat/completions", b).1)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn chat_matches_run_streams_and_isolates_requests() {
    let _g = compute_lock();
    let steered_ref = run_text(&[], PROMPT, 16);
    let plain_ref = run_text(&["--no-steer"], PROMPT, 16);
    let head_ref = run_text(&["--granularity", "head", "--alpha", "0.1"], PROMPT, 16);
    assert_ne!(
        steered_ref, plain_ref,
        "the reference prompt must be one that steering changes"
    );

    let server = Server::start(&["--threads", "2", "--parallel", "4", "-c", "8192", "--api-key", KEY]);
    let (status, health) = server.get("/health", false);
    assert_eq!((status, health.contains("ok")), (200, true), "{health}");
    let (status, models) = server.get("/v1/models", true);
    assert_eq!(status, 200, "{models}");
    assert!(models.contains("\"object\":\"list\""), "{models}");

    // one request at a time: the defaults steer like `run`, alpha 0 is `run --no-steer`
    let (status, steered) = server.post("/v1/chat/completions", &chat(PROMPT, 16, json!(null)));
    assert_eq!(status, 200, "{steered}");
    assert_eq!(text_of(&steered), steered_ref);
    assert_eq!(steered["object"], "chat.completion");
    assert_eq!(steered["spotlight"]["steered"], true);
    assert!(steered["spotlight"]["highlighted_tokens"].as_u64().unwrap() > 0);
    assert_eq!(steered["usage"]["completion_tokens"], 16);
    assert_eq!(steered["choices"][0]["finish_reason"], "length");
    let (_, plain) = server.post("/v1/chat/completions", &chat(PROMPT, 16, json!({"alpha": 0})));
    assert_eq!(text_of(&plain), plain_ref);
    assert_eq!(plain["spotlight"]["steered"], false);
    let (_, head) = server.post(
        "/v1/chat/completions",
        &chat(PROMPT, 16, json!({"alpha": 0.1, "granularity": "head"})),
    );
    assert_eq!(text_of(&head), head_ref);
    // highlights as substrings instead of markup give the same spans
    let needle = chat(
        "Write a short poem about the sea. Use only lowercase letters.",
        16,
        json!({"highlights": [" Use only lowercase letters."]}),
    );
    let (_, by_needle) = server.post("/v1/chat/completions", &needle);
    assert_eq!(
        by_needle["spotlight"]["highlighted_tokens"],
        steered["spotlight"]["highlighted_tokens"]
    );

    // streaming: role first, deltas that add up to the same text, finish chunk, usage, [DONE]
    let mut body = chat(PROMPT, 16, json!(null));
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let events = server.stream("/v1/chat/completions", &body);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{events:?}");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, steered_ref);
    let finish = chunks
        .iter()
        .find(|c| c["choices"][0]["finish_reason"].is_string())
        .unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    assert_eq!(finish["spotlight"]["steered"], true);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 16);

    // four at once, each with its own steering: every reply equals its one-at-a-time reply
    let bodies = [
        chat(PROMPT, 16, json!(null)),
        chat(PROMPT, 16, json!({"alpha": 0})),
        chat(PROMPT, 16, json!({"alpha": 0.1, "granularity": "head"})),
        chat(PROMPT, 16, json!(null)),
    ];
    let expected = [&steered_ref, &plain_ref, &head_ref, &steered_ref];
    let texts = post_at_once(&server, &bodies);
    for (i, (got, want)) in texts.iter().zip(expected).enumerate() {
        assert_eq!(got, want, "concurrent request {i}");
    }

    // a client that hangs up mid-stream frees its slot: the server goes on serving
    let mut long = chat(PROMPT, 200, json!(null));
    long["stream"] = json!(true);
    server.stream_and_hang_up("/v1/chat/completions", &long);
    let (status, after) = server.post("/v1/chat/completions", &chat(PROMPT, 16, json!(null)));
    assert_eq!((status, text_of(&after)), (200, steered_ref.clone()));
    let (_, metrics) = server.get("/metrics", true);
    assert!(metrics.contains("spotlight_requests_total"), "{metrics}");
    let processing = metrics
        .lines()
        .find_map(|l| l.strip_prefix("spotlight_requests_processing "))
        .unwrap();
    assert_eq!(processing, "0", "{metrics}");
}

#[test]
fn multi_turn_reuses_the_cached_prefix_with_the_same_result() {
    let _g = compute_lock();
    let server = Server::start(&["--threads", "2", "--parallel", "2", "-c", "4096"]);
    let first = chat("Name a colour. **Answer in one word.**", 8, json!(null));
    let (_, reply) = server.post("/v1/chat/completions", &first);
    let answer = text_of(&reply);
    let follow = json!({
        "messages": [
            {"role": "user", "content": "Name a colour. **Answer in one word.**"},
            {"role": "assistant", "content": answer},
            {"role": "user", "content": "Now name an animal."},
        ],
        "temperature": 0,
        "max_tokens": 12,
    });
    let (_, cached) = server.post("/v1/chat/completions", &follow);
    let reused = cached["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(reused > 10, "the earlier turn should come from the cache: {cached}");
    let mut cold = follow.clone();
    cold["cache_prompt"] = json!(false);
    let (_, recomputed) = server.post("/v1/chat/completions", &cold);
    assert_eq!(recomputed["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(
        text_of(&cached),
        text_of(&recomputed),
        "reuse must not change the reply"
    );
    assert_eq!(
        cached["spotlight"]["steered"], true,
        "the earlier turn's span stays steered"
    );
}

#[test]
fn completions_logprobs_and_stop() {
    let _g = compute_lock();
    let server = Server::start(&["--threads", "2", "--parallel", "1"]);
    let raw = "The capital of France is";
    let (status, v) = server.post(
        "/v1/completions",
        &json!({"prompt": raw, "temperature": 0, "max_tokens": 6, "logprobs": 3}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "text_completion");
    let lp = &v["choices"][0]["logprobs"];
    let n = v["usage"]["completion_tokens"].as_u64().unwrap() as usize;
    assert_eq!(lp["tokens"].as_array().unwrap().len(), n);
    for (i, top) in lp["top_logprobs"].as_array().unwrap().iter().enumerate() {
        let top = top.as_object().unwrap();
        assert!(!top.is_empty() && top.len() <= 3);
        // greedy: the chosen token is the most likely one
        let best = top.values().map(|x| x.as_f64().unwrap()).fold(f64::MIN, f64::max);
        let chosen = lp["token_logprobs"][i].as_f64().unwrap();
        assert!((best - chosen).abs() < 1e-4 && chosen <= 0.0, "{lp}");
    }
    let text = v["choices"][0]["text"].as_str().unwrap().to_string();
    // a stop sequence taken from the greedy text ends the reply right before it
    let word = text.split_whitespace().nth(1).expect("two words");
    let (_, stopped) = server.post(
        "/v1/completions",
        &json!({"prompt": raw, "temperature": 0, "max_tokens": 6, "stop": [word]}),
    );
    let got = stopped["choices"][0]["text"].as_str().unwrap();
    assert_eq!(stopped["choices"][0]["finish_reason"], "stop");
    assert_eq!(got, &text[..text.find(word).unwrap()]);
    // chat logprobs in OpenAI's chat shape
    let mut body = chat(PROMPT, 4, json!(null));
    body["logprobs"] = json!(true);
    body["top_logprobs"] = json!(2);
    let (_, c) = server.post("/v1/chat/completions", &body);
    let content = c["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert_eq!(content.len(), 4);
    assert_eq!(content[0]["top_logprobs"].as_array().unwrap().len(), 2);
    assert!(content[0]["bytes"].is_array());
}

fn assert_error(got: &(u16, Value), status: u16, needle: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    let msg = got.1["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error body: {}", got.1));
    assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
    assert!(got.1["error"]["type"].is_string());
}

#[test]
fn bad_requests_get_openai_errors_and_the_server_survives() {
    let _g = compute_lock();
    let server = Server::start(&["--threads", "2", "--parallel", "2", "-c", "1024", "--api-key", KEY]);
    let post = |body: &str| {
        let (s, _, text) = server.post_raw("/v1/chat/completions", body);
        (
            s,
            serde_json::from_str::<Value>(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
        )
    };
    assert_error(&post("{not json"), 400, "not valid JSON");
    assert_error(&post(""), 400, "empty");
    assert_error(&post(r#"{"model": "x"}"#), 400, "messages");
    assert_error(&post(r#"{"messages": "hi"}"#), 400, "messages");
    assert_error(
        &post(r#"{"messages": [], "max_tokens": 4}"#),
        400,
        "at least one message",
    );
    let one = |extra: Value| {
        let mut b = chat("Say **hi**.", 4, json!(null));
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        post(&b.to_string())
    };
    assert_error(&one(json!({"n": 2})), 400, "n = 2");
    assert_error(&one(json!({"temperature": "hot"})), 400, "temperature");
    assert_error(&one(json!({"temperature": 5})), 400, "temperature");
    assert_error(&one(json!({"spotlight": {"alpha": 1.5}})), 400, "[0, 1)");
    assert_error(&one(json!({"spotlight": {"granularity": "token"}})), 400, "granularity");
    assert_error(&one(json!({"spotlight": {"layers": "99"}})), 400, "layer 99");
    assert_error(&one(json!({"spotlight": {"highlights": ["absent"]}})), 400, "absent");
    assert_error(&one(json!({"spotlight": {"bogus": 1}})), 400, "bogus");
    assert_error(&one(json!({"stop": ["a", "b", "c", "d", "e"]})), 400, "stop");
    assert_error(
        &one(json!({"messages": [{"role": "user", "content": "unbalanced **markup"}]})),
        400,
        "messages[0]",
    );
    assert_error(
        &one(json!({"messages": [{"role": "wizard", "content": "x"}]})),
        400,
        "role",
    );
    let long = "word ".repeat(2000);
    let too_long = one(json!({"messages": [{"role": "user", "content": long}]}));
    assert_error(&too_long, 400, "tokens but a slot holds");
    assert_eq!(too_long.1["error"]["code"], "context_length_exceeded");

    // authentication: 401 without the key, /health open
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut r = agent
        .post(&format!("{}/v1/chat/completions", server.base))
        .send(chat("hi", 2, json!(null)).to_string())
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
    assert_eq!(server.get("/health", false).0, 200);
    assert_eq!(server.get("/v1/models", false).0, 401);
    let (status, text) = server.get("/v1/nothing", true);
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("\"error\""), "{text}");
    let (status, _) = server.get("/v1/chat/completions", true);
    assert_eq!(status, 405);

    // after all that, a good request still works
    let (status, ok) = server.post("/v1/chat/completions", &chat("Say **hi**.", 4, json!(null)));
    assert_eq!(status, 200, "{ok}");
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let _g = compute_lock();
    let server = Server::start(&["--threads", "2", "--parallel", "1", "--queue", "1"]);
    // the first request holds the slot, the second waits; more get 503 while both are in flight.
    // The requests arrive 30 ms apart and ask for a long reply (128 tokens of an essay take far
    // longer than the 120 ms the last one arrives after, on any machine that runs the suite; the
    // short poem of an earlier version was done in under 300 ms on a fast CPU)
    let essay = "Write a long essay about the history of the Roman Empire. **Be detailed.**";
    let statuses: Vec<(u16, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..5)
            .map(|i| {
                let server = &server;
                s.spawn(move || {
                    std::thread::sleep(std::time::Duration::from_millis(30 * i));
                    let (status, headers, _) =
                        server.post_raw("/v1/chat/completions", &chat(essay, 128, json!(null)).to_string());
                    let retry = headers.into_iter().find(|(k, _)| k == "retry-after").map(|(_, v)| v);
                    (status, retry)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = statuses.iter().filter(|(s, _)| *s == 200).count();
    let busy: Vec<_> = statuses.iter().filter(|(s, _)| *s == 503).collect();
    assert!(ok >= 2 && !busy.is_empty(), "{statuses:?}");
    assert!(busy.iter().all(|(_, r)| r.as_deref() == Some("1")), "{statuses:?}");
    assert_eq!(ok + busy.len(), 5, "{statuses:?}");
}

#[test]
fn the_openai_python_client_works_unchanged() {
    let _g = compute_lock();
    let server = Server::start(&["--threads", "2", "--parallel", "2", "--api-key", KEY]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve_openai_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .env("SPOTLIGHT_BASE", format!("{}/v1", server.base))
        .env("SPOTLIGHT_KEY", KEY)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the openai client script failed (scripts/test.sh installs the `openai` package):\n{stdout}\n{stderr}"
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(report["steered"], true, "{report}");
    assert_eq!(report["plain_steered"], false, "{report}");
    assert_eq!(report["stream_text"], report["text"], "{report}");
    assert_ne!(report["text"], report["plain_text"], "{report}");
    assert_eq!(report["bad_alpha_status"], 400, "{report}");
}

/// The token strings and per-step top log-probabilities of a chat reply.
/// One generated token and its top candidates with log-probabilities.
type Chosen = (String, Vec<(String, f64)>);

fn tokens_and_tops(v: &Value) -> Vec<Chosen> {
    v["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap_or_else(|| panic!("no logprobs: {v}"))
        .iter()
        .map(|e| {
            let tops = e["top_logprobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| (t["token"].as_str().unwrap().to_string(), t["logprob"].as_f64().unwrap()))
                .collect();
            (e["token"].as_str().unwrap().to_string(), tops)
        })
        .collect()
}

/// Where two greedy replies part, and by how much the run that went on preferred its token over
/// the other run's choice (None: the other choice was not among its top candidates). Batching may
/// flip a near-tie, so a parting must be one. A reply that is a prefix of the other parted where
/// the shorter one ended: its end-of-generation token shows as "" (special tokens have no text)
/// among the longer run's candidates. None overall: the replies are identical.
fn parting(name: &str, a: &[Chosen], b: &[Chosen]) -> Option<(usize, Option<f64>)> {
    let step = a.iter().zip(b).position(|(x, y)| x.0 != y.0);
    let (step, longer, other_choice) = match step {
        Some(s) => (s, a, b[s].0.as_str()),
        None if a.len() == b.len() => return None,
        None if a.len() > b.len() => (b.len(), a, ""),
        None => (a.len(), b, ""),
    };
    let (chosen, tops) = &longer[step];
    let chosen_lp = tops.iter().find(|t| &t.0 == chosen).map(|t| t.1).unwrap();
    let gap = tops.iter().find(|t| t.0 == other_choice).map(|t| chosen_lp - t.1);
    eprintln!("{name}: parts at step {step}: {chosen:?} vs {other_choice:?}, gap {gap:?}");
    Some((step, gap))
}

#[test]
fn load_of_64_concurrent_requests_loses_nothing_and_matches_solo_replies() {
    let _g = compute_lock();
    let server = Server::start(&["--threads", "2", "--parallel", "4", "-c", "4096", "--queue", "100"]);
    let topics = [
        "the sea", "a cat", "winter", "a city", "music", "the moon", "bread", "a train",
    ];
    let rules = [
        "Use only lowercase letters.",
        "Answer in exactly three sentences.",
        "Do not use any commas.",
        "End with the word goodbye.",
    ];
    let steering = [json!(null), json!({"alpha": 0.1, "granularity": "head"})];
    let mut bodies = Vec::new();
    for (i, topic) in topics.iter().enumerate() {
        for (j, rule) in rules.iter().enumerate() {
            for s in &steering {
                let content = format!("Write about {topic}. **{rule}**");
                let mut b = chat(&content, 32, s.clone());
                b["logprobs"] = json!(true);
                b["top_logprobs"] = json!(3);
                bodies.push((format!("{i}/{j}/{s}"), b));
            }
        }
    }
    assert_eq!(bodies.len(), 64);
    let solo: Vec<Value> = bodies
        .iter()
        .map(|(name, b)| {
            let (status, v) = server.post("/v1/chat/completions", b);
            assert_eq!(status, 200, "{name}: {v}");
            v
        })
        .collect();
    let started = std::time::Instant::now();
    let concurrent: Vec<(u16, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = bodies
            .iter()
            .map(|(_, b)| s.spawn(|| server.post("/v1/chat/completions", b)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!("64 concurrent requests in {:.1} s", started.elapsed().as_secs_f64());
    let (mut identical, mut gaps) = (0, Vec::new());
    for (((name, _), alone), (status, together)) in bodies.iter().zip(&solo).zip(&concurrent) {
        assert_eq!(*status, 200, "{name}: {together}");
        assert_eq!(
            alone["spotlight"], together["spotlight"],
            "{name}: steering reported alike"
        );
        let (a, b) = (tokens_and_tops(alone), tokens_and_tops(together));
        let Some((step, gap)) = parting(name, &a, &b) else {
            identical += 1;
            continue;
        };
        gaps.push((name.clone(), step, gap));
    }
    // Measured here (2026-12-02, AVX2 CPU, two runs): 63 and 59 of 64 identical; the others
    // parted at gaps of 0.02–0.09 and once 0.19 — wider than a 0.1 near-tie: CPU kernels
    // accumulate in an order that depends on the batch's shape, and 30 layers amplify it.
    // Cross-talk between spans would not keep every parting at a near-tie.
    for (name, step, gap) in &gaps {
        assert!(
            gap.is_some_and(|g| g <= 0.3),
            "{name}: step {step}: not a near-tie ({gap:?})"
        );
    }
    assert!(
        gaps.len() <= 8,
        "too many replies parted from their solo reply: {gaps:?}"
    );
    let near_ties = gaps.len();
    eprintln!("{identical} identical, {near_ties} parted at a near-tie");
    let (_, metrics) = server.get("/metrics", false);
    let total = metrics
        .lines()
        .find_map(|l| l.strip_prefix("spotlight_requests_total "))
        .unwrap();
    assert_eq!(total, "128", "{metrics}");
}

#[test]
fn oversized_body_gets_413() {
    let _g = compute_lock();
    let server = Server::start(&["--threads", "1", "--parallel", "1"]);
    let huge = format!(
        r#"{{"messages": [{{"role": "user", "content": "{}"}}]}}"#,
        "a".repeat(17 << 20)
    );
    let (status, _, text) = server.post_raw("/v1/chat/completions", &huge);
    assert_eq!(status, 413, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("MiB"), "{v}");
    // a slot holds 8192 tokens here (default context, one slot)
    let over = chat("Say **hi**.", 9000, json!(null));
    let (status, v) = server.post("/v1/chat/completions", &over);
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["param"], "max_tokens");
}

#[test]
fn trace_shows_the_span_share_brought_to_tau_and_sigterm_stops_cleanly() {
    let _g = compute_lock();
    let server = Server::start(&["--threads", "2", "--parallel", "2"]);
    for (granularity, alpha) in [("layer", 0.2), ("head", 0.1)] {
        let body = chat(
            PROMPT,
            4,
            json!({"alpha": alpha, "granularity": granularity, "trace": true}),
        );
        let (status, v) = server.post("/v1/chat/completions", &body);
        assert_eq!(status, 200, "{v}");
        let trace = &v["spotlight"]["trace"];
        let layers = trace["layers"].as_array().unwrap_or_else(|| panic!("no trace: {v}"));
        assert_eq!(layers.len(), 30, "every layer of the model: {trace}");
        let mut steered = 0;
        for l in layers {
            // units below τ are raised to τ, the others keep theirs: nothing ends below τ. Per
            // head that is exact; per layer one bias from the mean share p̄ moves every head
            // (the mean of the moved shares is τ only to first order), so a unit may end a
            // little below τ
            // (measured: down to 0.18 for τ = 0.2), though never below where it started
            let after_min = l["after_min"].as_f64().unwrap();
            let floor = if granularity == "head" {
                alpha - 1e-3
            } else {
                l["before_min"].as_f64().unwrap().min(alpha) - 1e-3
            };
            assert!(
                after_min >= floor,
                "{granularity}: layer {} ends at {after_min}: {l}",
                l["layer"]
            );
            if l["steered"].as_u64().unwrap() > 0 {
                assert!(l["after_mean"].as_f64().unwrap() > l["before_mean"].as_f64().unwrap());
            }
            steered += l["steered"].as_u64().unwrap();
        }
        assert!(steered > 0, "{granularity}: some unit was below τ: {trace}");
        // the prompt and every decode step of this request, nothing of another request
        assert_eq!(trace["ubatches"], 4, "{trace}");
    }
    let (_, observed) = server.post(
        "/v1/chat/completions",
        &chat(PROMPT, 2, json!({"alpha": 0, "trace": true})),
    );
    assert_eq!(observed["spotlight"]["steered"], false);
    let layer0 = &observed["spotlight"]["trace"]["layers"][0];
    assert!(layer0["before_mean"].as_f64().unwrap() > 0.0, "{observed}");
    assert!(layer0["after_mean"].is_null(), "observing changes nothing: {layer0}");
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "SIGTERM ends the server normally: {status:?}");
}

/// Per-request τ for the prompt's rows and the reply's (`prefill_alpha`/`decode_alpha`): each
/// reply equals `run` with the same options, alone and while requests of the other phase
/// settings run beside it (the engine groups a request by the phase it is in); the server's own
/// `--decode-alpha` is the default of requests that set no τ, and a request's `alpha` means both.
#[test]
fn phase_alphas_match_run_alone_and_side_by_side() {
    let _g = compute_lock();
    let full = run_text(&[], PROMPT, 16);
    let prompt_only = run_text(&["--decode-alpha", "0"], PROMPT, 16);
    let reply_only = run_text(&["--prefill-alpha", "0"], PROMPT, 16);
    let gentle = run_text(&["--decode-alpha", "0.1"], PROMPT, 16);
    assert_ne!(
        prompt_only, full,
        "the prompt must be one where the reply's rows matter"
    );
    assert_ne!(gentle, full, "the prompt must be one where the reply's τ matters");

    let server = Server::start(&[
        "--threads",
        "2",
        "--parallel",
        "4",
        "-c",
        "8192",
        "--decode-alpha",
        "0.1",
    ]);
    let bodies = [
        chat(PROMPT, 16, json!(null)),
        chat(PROMPT, 16, json!({"alpha": 0.2})),
        chat(PROMPT, 16, json!({"decode_alpha": 0})),
        chat(PROMPT, 16, json!({"prefill_alpha": 0, "decode_alpha": 0.2})),
    ];
    let expected = [&gentle, &full, &prompt_only, &reply_only];
    let mut alone = Vec::new();
    for (body, want) in bodies.iter().zip(expected) {
        let (status, v) = server.post("/v1/chat/completions", body);
        assert_eq!(status, 200, "{v}");
        assert_eq!(&text_of(&v), want, "alone: {}", body["spotlight"]);
        assert_eq!(v["spotlight"]["steered"], true);
        alone.push(v);
    }
    assert_eq!(
        (
            alone[0]["spotlight"]["prefill_alpha"].as_f64(),
            alone[0]["spotlight"]["decode_alpha"].as_f64()
        ),
        (Some(0.2), Some(0.1)),
        "the server's default phases are reported"
    );
    assert_eq!(alone[1]["spotlight"]["decode_alpha"].as_f64(), Some(0.2));
    assert_eq!(alone[3]["spotlight"]["prefill_alpha"].as_f64(), Some(0.0));
    let texts = post_at_once(&server, &bodies);
    for (i, (got, want)) in texts.iter().zip(expected).enumerate() {
        assert_eq!(got, want, "side by side, request {i}: {}", bodies[i]["spotlight"]);
    }
    let bad = server.post("/v1/chat/completions", &chat(PROMPT, 4, json!({"decode_alpha": 1.5})));
    assert_error(&bad, 400, "[0, 1)");
}
