//! A long steered chat through the library's `spotlight::Chat` API, for leak checks (issue #18):
//! many short turns with a highlight in the system prompt and in every user turn, a few
//! generated tokens each. Prints the resident memory every `--every` turns so growth per turn can
//! be read off; run it in the sanitizer build (scripts/sanitize.sh, LeakSanitizer reports at
//! exit) or under valgrind to see unreachable blocks.
//!
//! ```sh
//! cargo run --release --example chat_memory -- --turns 200 --n-predict 4 [--model FILE]
//! ```

use spotlight::llama::{init_backend, ChatTemplate, ContextParams, FlashAttn, Model, ModelParams};
use spotlight::models::default_model_path;
use spotlight::spotlight::markup::parse_markup;
use spotlight::spotlight::{Alpha, Chat, GenerateOptions, Granularity, LayerSelection, Session, SteerConfig};
use std::path::PathBuf;

fn main() {
    let (mut turns, mut n_predict, mut every, mut n_ctx) = (200usize, 4usize, 25usize, 8192u32);
    let mut model_path = default_model_path();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| fail(&format!("{a} needs a value")));
        let num = |v: &str| {
            v.parse::<usize>()
                .unwrap_or_else(|_| fail(&format!("{a} takes a number")))
        };
        match a.as_str() {
            "--turns" => turns = num(&v),
            "--n-predict" => n_predict = num(&v),
            "--every" => every = num(&v).max(1),
            "--ctx-size" => n_ctx = num(&v) as u32,
            "--model" => model_path = PathBuf::from(v),
            _ => fail(&format!("unknown argument {a}")),
        }
    }
    init_backend(false);
    let model = Model::load(
        &model_path,
        &ModelParams {
            n_gpu_layers: 0,
            progress: false,
        },
    )
    .unwrap_or_else(|e| fail(&e.to_string()));
    let params = ContextParams {
        n_ctx,
        n_batch: 512,
        n_ubatch: 512,
        n_threads: 2,
        n_seq_max: 1,
        flash_attn: FlashAttn::Off,
    };
    let steer = SteerConfig::spotlight(Alpha::new(0.2).unwrap(), Granularity::Layer, LayerSelection::All);
    let session = Session::new(&model, params, Some(steer)).unwrap_or_else(|e| fail(&e.to_string()));
    let template = ChatTemplate::from_model(&model).unwrap_or_else(|e| fail(&e.to_string()));
    let system = parse_markup("You are terse. **Answer in one word.**").unwrap();
    let mut chat = Chat::new(session, Some(template), Some(system));
    let options = GenerateOptions::greedy(n_predict);
    let mut generated = 0;
    let mut kv_len = 0;
    println!("turn rss_kib hwm_kib kv_len");
    for turn in 1..=turns {
        let user = parse_markup(&format!("Question {turn}: say **yes** or no?")).unwrap();
        let out = chat
            .send(user, &options, |_| {})
            .unwrap_or_else(|e| fail(&format!("turn {turn}: {e}")));
        generated += out.tokens.len();
        kv_len = out.kv_len;
        if turn % every == 0 || turn == turns {
            let (rss, hwm) = memory_kib();
            println!("{turn} {rss} {hwm} {kv_len}");
        }
    }
    println!(
        "done: {turns} turns, {generated} generated tokens, {} highlighted spans, kv_len {kv_len}",
        chat.spans().len()
    );
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}

/// (VmRSS, VmHWM) of this process in KiB, from /proc (0 where unavailable).
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
