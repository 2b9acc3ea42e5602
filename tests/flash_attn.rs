//! Steering with flash attention on: the same rule as the explicit-attention path, shares that
//! agree with it, greedy tokens that agree or part at a near-tie, and stock bits where nothing
//! is steered.

mod common;

use common::rule::check_rule;
use common::*;
use spotlight::llama::{ContextParams, FlashAttn, Model, ModelParams, Token};
use spotlight::spotlight::prompt::PreparedPrompt;
use spotlight::spotlight::trace::UbatchTrace;
use spotlight::spotlight::{Action, GenerateOptions, Generation, Granularity, LayerSelection, Session, SteerConfig};

fn params(flash_attn: FlashAttn) -> ContextParams {
    ctx_params(1, flash_attn)
}

fn config(action: Action, trace: bool) -> Option<SteerConfig> {
    Some(SteerConfig {
        action,
        decode: None,
        layers: LayerSelection::All,
        trace,
    })
}

fn steer(alpha: f32, granularity: Granularity) -> Action {
    Action::Steer { alpha, granularity }
}

fn generate(
    m: &Model,
    prompt: &PreparedPrompt,
    fa: FlashAttn,
    steer: Option<SteerConfig>,
    options: &GenerateOptions,
) -> Generation {
    let mut session = Session::new(m, params(fa), steer).unwrap();
    session.generate(prompt, options, |_| {}).unwrap()
}

#[test]
fn flash_steering_raises_shares_to_tau_where_below_and_leaves_the_rest() {
    let _g = compute_lock();
    let prompt = prepare_user(POEM);
    for (alpha, granularity) in [
        (0.1, Granularity::Head),
        (0.2, Granularity::Layer),
        (0.5, Granularity::Layer),
    ] {
        let steer = config(steer(alpha, granularity), true);
        let out = generate(model(), &prompt, FlashAttn::On, steer, &GenerateOptions::greedy(8));
        assert_eq!(
            out.trace.len(),
            1 + out.tokens.len().min(7),
            "one trace per decode call"
        );
        assert_eq!(out.trace[0].layers.len(), model().n_layer(), "every layer is traced");
        let raised = check_rule(&out.trace, alpha, granularity);
        assert!(
            raised > 0,
            "{granularity} τ={alpha}: some units must be below τ on this prompt"
        );
    }
}

/// Largest |difference| of the before-steering shares of two traces, per layer, over every
/// token and head of the prefill.
fn share_gaps(a: &UbatchTrace, b: &UbatchTrace) -> Vec<f32> {
    assert_eq!(a.pos, b.pos);
    a.layers
        .iter()
        .zip(&b.layers)
        .map(|(la, lb)| {
            assert_eq!(la.layer, lb.layer);
            la.before
                .iter()
                .zip(&lb.before)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max)
        })
        .collect()
}

#[test]
fn flash_span_shares_equal_the_explicit_attention_path() {
    let _g = compute_lock();
    // a short prompt, and one long enough (≥ 64 rows) for the CPU's tiled flash-attention kernel
    let short = prepare_user(POEM);
    let long = prepare_user(&format!(
        "{POEM}{}",
        " The sea is wide and the waves are high.".repeat(12)
    ));
    assert!(long.tokens.len() >= 64);
    let options = GenerateOptions::greedy(1);
    let cases = [
        (&short, Action::Observe),
        (&short, steer(0.2, Granularity::Layer)),
        (&long, steer(0.1, Granularity::Head)),
        (&short, Action::StaticBias { bias: 1.0 }),
    ];
    for (prompt, action) in cases {
        let explicit = generate(model(), prompt, FlashAttn::Off, config(action.clone(), true), &options);
        let flash = generate(model(), prompt, FlashAttn::On, config(action.clone(), true), &options);
        let gaps = share_gaps(&explicit.trace[0], &flash.trace[0]);
        eprintln!("{action:?}: largest share difference per layer {gaps:?}");
        // layer 0 sees the same inputs on both paths: ψ from the flash pass is the explicit
        // share up to float rounding: 1.5e-7 measured; 1.3e-4 from the tiled kernel, which
        // multiplies Q in F32 where the explicit path rounds Q to F16
        let bound = if prompt.tokens.len() >= 64 { 1e-3 } else { 1e-5 };
        assert!(gaps[0] < bound, "{action:?}: layer 0 shares differ by {}", gaps[0]);
        // deeper layers see hidden states that stock flash attention already rounds differently
        // (its CPU kernel accumulates F16 values in F16); measured here: at most 0.034, the
        // same with and without steering
        let worst = gaps.iter().copied().fold(0.0, f32::max);
        assert!(
            worst < 0.06,
            "{action:?}: shares differ by {worst} (per layer {gaps:?})"
        );
    }
}

/// Teacher-forced on `reference`, the steps where `other`'s argmax is not the reference token,
/// with how far the reference token's logit is below the argmax (None: not in the top 5).
fn partings(reference: &[Token], other: &Generation) -> Vec<(usize, Option<f32>)> {
    reference
        .iter()
        .zip(&other.step_top5)
        .enumerate()
        .filter(|(_, (tok, top))| top[0].0 != **tok)
        .map(|(i, (tok, top))| (i, top.iter().find(|(t, _)| t == tok).map(|(_, l)| top[0].1 - l)))
        .collect()
}

#[test]
fn flash_steered_tokens_follow_the_explicit_path_or_part_at_a_near_tie() {
    let _g = compute_lock();
    let prompt = prepare_user(POEM);
    // the rounding of stock flash attention against the explicit path on this CPU (the first
    // case): AVX-512 builds part by ≤ 0.1 logits, AVX2 builds (AMD EPYC) by up to 0.22; the
    // steered cases' bounds are not allowed below it
    let mut stock_worst = 0f32;
    for (name, action) in [
        ("stock", None),
        ("steer head τ=0.1", Some(steer(0.1, Granularity::Head))),
        ("steer layer τ=0.2", Some(steer(0.2, Granularity::Layer))),
        ("static bias 1.0", Some(Action::StaticBias { bias: 1.0 })),
    ] {
        let explicit = generate(
            model(),
            &prompt,
            FlashAttn::Off,
            action.clone().and_then(|a| config(a, false)),
            &GenerateOptions::greedy(32),
        );
        let mut forced = GenerateOptions::greedy(explicit.tokens.len());
        forced.forced = Some(vec![explicit.tokens.clone()]);
        let flash = generate(
            model(),
            &prompt,
            FlashAttn::On,
            action.clone().and_then(|a| config(a, false)),
            &forced,
        );
        assert_eq!(flash.step_top5.len(), explicit.tokens.len());
        let parts = partings(&explicit.tokens, &flash);
        eprintln!(
            "{name}: {} tokens, flash argmax differs at {parts:?}",
            explicit.tokens.len()
        );
        // free-running greedy runs part at the first of these: a near-tie; later steps (still
        // forced onto the explicit path's tokens) are compared too, with room for the rounding
        // of stock flash attention's F16 accumulation, which steering amplifies (measured: ≤ 0.15)
        // The static bias changes every row that sees the span (the rules only rows below τ), so
        // all of them carry stock FA's rounding through O_S: its first parting measured 0.164,
        // with layer-by-layer shares as close to the explicit path's as unsteered runs are
        // (flash_span_shares_equal_the_explicit_attention_path)
        let first_bound: f32 = if name.starts_with("static") { 0.2 } else { 0.1 };
        if name == "stock" {
            // upstream's own rounding, not ours: only a near-tie is required
            stock_worst = parts.iter().filter_map(|(_, g)| *g).fold(0.0, f32::max);
        }
        let slack = if name == "stock" { 0.3 } else { 1.5 * stock_worst };
        for (i, (step, gap)) in parts.iter().enumerate() {
            let bound = if i == 0 { first_bound } else { 0.2f32 }.max(slack);
            assert!(
                gap.is_some_and(|g| g <= bound),
                "{name}: step {step}: flash attention prefers another token by {gap:?} logits (bound {bound})"
            );
        }
    }
}

#[test]
fn flash_zero_tau_and_prompts_without_highlights_are_bit_identical_to_stock_flash() {
    let _g = compute_lock();
    let highlighted = prepare_user(POEM);
    let plain = prepare_user("Write a short poem about the sea. Use only lowercase letters.");
    assert_eq!(highlighted.tokens, plain.tokens);
    let options = GenerateOptions::greedy(6);
    let reference = generate(model(), &plain, FlashAttn::On, None, &options);
    for (name, prompt, action) in [
        ("τ = 0, head", &highlighted, steer(0.0, Granularity::Head)),
        ("τ = 0, layer", &highlighted, steer(0.0, Granularity::Layer)),
        ("no highlights", &plain, steer(0.2, Granularity::Layer)),
        ("observe only", &highlighted, Action::Observe),
    ] {
        let out = generate(model(), prompt, FlashAttn::On, config(action.clone(), true), &options);
        assert_eq!(out.tokens, reference.tokens, "{name}: tokens");
        assert_eq!(out.first_logits.len(), reference.first_logits.len());
        let same = out
            .first_logits
            .iter()
            .zip(&reference.first_logits)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{name}: logits are not bit-identical to stock flash attention");
    }
    let steered = generate(
        model(),
        &highlighted,
        FlashAttn::On,
        config(steer(0.2, Granularity::Layer), false),
        &options,
    );
    assert_ne!(
        steered.first_logits, reference.first_logits,
        "steering must change something"
    );
}

#[test]
fn flash_steering_covers_sliding_window_layers() {
    use spotlight::models::{cache_dir, fetch, GEMMA3_270M};
    use spotlight::spotlight::prompt::{self, HighlightOptions, Turn};

    let path = fetch(&GEMMA3_270M, &cache_dir(), None).unwrap_or_else(|e| panic!("fetching Gemma 3 270M failed: {e}"));
    let _g = compute_lock();
    spotlight::llama::init_backend(false);
    let gemma = Model::load(
        &path,
        &ModelParams {
            n_gpu_layers: 0,
            progress: false,
        },
    )
    .unwrap();
    let text = format!(
        "**Reply in French.**{}",
        " The quick brown fox jumps over the lazy dog.".repeat(75)
    );
    let opts = HighlightOptions {
        markup: true,
        ..Default::default()
    };
    let content = prompt::highlight("prompt", &text, &opts, true).unwrap();
    let prepared = prompt::prepare(
        gemma.vocab(),
        None,
        &[Turn {
            role: "user".into(),
            content,
        }],
        false,
    )
    .unwrap();
    assert!(
        prepared.tokens.len() > gemma.n_swa() as usize,
        "the span must leave the sliding window"
    );
    let alpha = 0.1;
    let steer = config(steer(alpha, Granularity::Head), true);
    let options = GenerateOptions::greedy(2);
    let explicit = generate(&gemma, &prepared, FlashAttn::Off, steer.clone(), &options);
    let flash = generate(&gemma, &prepared, FlashAttn::On, steer, &options);
    let raised = check_rule(&flash.trace, alpha, Granularity::Head);
    assert!(raised > 0, "global layers see the span and are raised");
    // the same layers see the span (SWA layers past the window have shares of 0) on both paths
    // the prompt's last token, in the last prefill ubatch
    let last = prepared.tokens.len() as i32 - 1;
    let blind = |g: &Generation| -> Vec<usize> {
        let t = g
            .trace
            .iter()
            .find(|t| t.pos.contains(&last))
            .expect("the last prompt token is traced");
        let row = t.pos.iter().position(|&p| p == last).unwrap();
        t.layers
            .iter()
            .filter(|l| (0..l.n_head).all(|h| l.before_at(row, h) == 0.0))
            .map(|l| l.layer)
            .collect()
    };
    let (blind_explicit, blind_flash) = (blind(&explicit), blind(&flash));
    assert!(
        !blind_flash.is_empty(),
        "some sliding-window layers no longer see the span"
    );
    assert_eq!(
        blind_flash, blind_explicit,
        "the same layers see the span on both paths"
    );
    assert!(
        blind_flash.len() < gemma.n_layer(),
        "global layers see the span: {blind_flash:?}"
    );
}

#[test]
fn run_with_flash_attention_on_steers_and_traces() {
    let _g = compute_lock();
    let trace = std::env::temp_dir().join(format!("spotlight-fa-trace-{}.jsonl", std::process::id()));
    let out = std::process::Command::new(bin())
        .args([
            "run",
            "--model",
            model_path().to_str().unwrap(),
            "-fa",
            "on",
            "--temp",
            "0",
            "-n",
            "4",
        ])
        .args(["-t", "2", "--alpha", "0.2", "--trace", trace.to_str().unwrap(), POEM])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!out.stdout.is_empty(), "a reply");
    let text = std::fs::read_to_string(&trace).unwrap();
    std::fs::remove_file(&trace).ok();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let layers = first["layers"].as_array().unwrap();
    assert_eq!(layers.len(), model().n_layer());
    let steered: u64 = layers.iter().map(|l| l["steered"].as_u64().unwrap()).sum();
    assert!(steered > 0, "the trace shows steered units: {first}");
}
