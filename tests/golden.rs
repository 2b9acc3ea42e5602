//! Reproduce the stock-llama.cpp reference outputs (../shared/golden), steering off and on.

mod common;

use common::*;
use spotlight::llama::{ContextParams, FlashAttn};
use spotlight::spotlight::{Action, GenerateOptions, Granularity, LayerSelection, Session, SteerConfig};

fn golden_params() -> ContextParams {
    ContextParams {
        n_ctx: 2048,
        n_batch: 512,
        n_ubatch: 512,
        n_threads: 2,
        n_seq_max: 1,
        flash_attn: FlashAttn::Off,
    }
}

fn steer(run: &str, trace: bool) -> Option<SteerConfig> {
    let action = match run {
        "none" => return None,
        "0.1,head" => Action::Steer {
            alpha: 0.1,
            granularity: Granularity::Head,
        },
        "0.2,layer" => Action::Steer {
            alpha: 0.2,
            granularity: Granularity::Layer,
        },
        other => panic!("unknown run {other}"),
    };
    Some(SteerConfig {
        action,
        decode: None,
        layers: LayerSelection::All,
        trace,
    })
}

/// Tolerances of one comparison: for a build with the reference's SIMD flags, and for any other
/// x86-64 build (AVX2 without AVX-512, portable builds), whose kernels round differently.
struct Tolerance {
    same_simd: (f32, f64),
    other_simd: (f32, f64),
}

/// Teacher-forced comparison: at every step the reference token must be our argmax, or tie with
/// it within `tol` (a different float rounding may flip a near-tie, see the golden README); at the
/// first step, the reference's top-5 logits must be ours within `first_tol`.
fn check_forced(run: &str, tolerance: Tolerance) {
    let (tol, first_tol) = if same_simd_as_golden() {
        tolerance.same_simd
    } else {
        tolerance.other_simd
    };
    eprintln!(
        "{run}: build {} the reference's SIMD flags: step tolerance {tol}, first-step tolerance {first_tol}",
        if same_simd_as_golden() { "has" } else { "differs from" }
    );
    let _g = compute_lock();
    let model = model();
    for case in golden_cases(run) {
        let prompt = prepare_user(case["user"].as_str().unwrap());
        assert_eq!(
            prompt.tokens,
            ints(&case["prompt_tokens"]),
            "{run}/{}: prompt tokens",
            case["name"]
        );
        assert_eq!(
            prompt
                .span_token_positions
                .iter()
                .map(|&p| p as i32)
                .collect::<Vec<_>>(),
            ints(&case["span_token_positions"]),
            "{run}/{}: span positions",
            case["name"]
        );
        let expected = ints(&case["greedy_tokens"]);
        let mut session = Session::new(model, golden_params(), steer(run, false)).unwrap();
        let mut options = GenerateOptions::greedy(expected.len());
        options.forced = Some(vec![expected.clone()]);
        let out = session.generate(&prompt, &options, |_| {}).unwrap();
        let mut max_gap = 0f32;
        for (step, (top, &want)) in out.step_top5.iter().zip(&expected).enumerate() {
            let best = top[0].1;
            if let Some((_, l)) = top.iter().find(|(t, _)| *t == want) {
                max_gap = max_gap.max(best - l);
            }
            let ours = top.iter().find(|(t, _)| *t == want).map(|(_, l)| *l);
            let gap = ours.map(|l| best - l);
            assert!(
                gap.is_some_and(|g| g <= tol),
                "{run}/{} step {step}: reference token {want} is not our argmax (top5 {top:?})",
                case["name"]
            );
        }
        eprintln!(
            "{run}/{}: largest gap between our argmax and the reference token: {max_gap}",
            case["name"]
        );
        // first step: the same argmax, and the reference's top-5 logits (near-ties among them may
        // change order) within first_tol
        let ref_top = case["first_step_top5"].as_array().unwrap();
        assert_eq!(
            out.first_step_top5[0].0 as i64,
            ref_top[0][0].as_i64().unwrap(),
            "{run}: first-step argmax"
        );
        for (i, theirs) in ref_top.iter().enumerate() {
            let token = theirs[0].as_u64().unwrap() as usize;
            let diff = (out.first_logits[token] as f64 - theirs[1].as_f64().unwrap()).abs();
            eprintln!("{run}: first-step logit of rank {i} differs by {diff:.4}");
            assert!(
                diff < first_tol,
                "{run}: first-step logit of rank {i} (token {token}) differs by {diff}"
            );
        }
    }
}

#[test]
fn unsteered_matches_reference_step_by_step() {
    // measured on an AVX2-only AMD EPYC (2026-12-02): steps within 0.12, first step within 0.31
    check_forced(
        "none",
        Tolerance {
            same_simd: (1e-3, 1e-3),
            other_simd: (0.25, 0.5),
        },
    );
}

// Steered runs agree with the reference up to float rounding, and the rounding differs by design:
// the reference normalises every row of the attention (P/Z) before the product with the F16 V
// cache, which rounds the probabilities to F16; spotlight leaves P unnormalised (only the window
// of highlighted columns is touched) and divides the product by Z afterwards, so other values are
// rounded to F16. That is the one change from our earlier implementation, which normalised in
// the graph like the reference and matched its first step bit for bit (and the layer run token
// for token). Measured on the golden prompt, first step: the same argmax, the reference's top-5
// logits within 0.16 (layer, τ = 0.2: single heads far above p̄ get the largest Z) and 0.28
// (head: the span part is multiplied by τ/p with p down to 1e-4, amplifying any rounding); over
// the teacher-forced continuation the reference token is always our argmax or within 0.05
// (layer) / 0.27 (head) of it. The rules themselves are pinned exactly (±1e-4 on every share) by
// tests/steering.rs.

#[test]
fn head_granularity_matches_reference_step_by_step() {
    // other SIMD (AVX2-only AMD EPYC, 2026-12-02): first step within 0.36
    check_forced(
        "0.1,head",
        Tolerance {
            same_simd: (0.3, 0.35),
            other_simd: (0.4, 0.6),
        },
    );
}

#[test]
fn layer_granularity_matches_reference_step_by_step() {
    // other SIMD (AVX2-only AMD EPYC, 2026-12-02): first step within 0.28
    check_forced(
        "0.2,layer",
        Tolerance {
            same_simd: (0.1, 0.2),
            other_simd: (0.25, 0.45),
        },
    );
}

/// The golden build had AVX2, AVX-512F, FMA and F16C; builds with other SIMD flags round
/// differently and may part ways after a few greedy steps. Decided by what the library was
/// compiled with (not what the CPU could do: a portable build on an AVX-512 CPU differs too).
fn same_simd_as_golden() -> bool {
    let compiled = spotlight::llama::compiled_cpu_features();
    ["AVX2", "AVX512", "FMA", "F16C"].iter().all(|f| compiled.contains(f))
}

fn run_cli(extra: &[&str], user: &str) -> serde_json::Value {
    let model = model_path();
    let mut args = vec![
        "run",
        "--model",
        model.to_str().unwrap(),
        "--temp",
        "0",
        "--n-predict",
        "48",
    ];
    args.extend([
        "--ctx-size",
        "2048",
        "--batch-size",
        "512",
        "--threads",
        "2",
        "--flash-attn",
        "off",
        "--json",
    ]);
    args.extend(extra);
    args.push(user);
    let _g = compute_lock();
    let out = std::process::Command::new(bin())
        .args(&args)
        .output()
        .expect("run spotlight");
    assert!(
        out.status.success(),
        "spotlight failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("--json prints one JSON object")
}

#[test]
fn cli_reproduces_reference_greedy_runs() {
    for (run, extra) in [
        ("none", vec!["--no-steer"]),
        ("0.2,layer", vec!["--alpha", "0.2", "--granularity", "layer"]),
        ("0.1,head", vec!["--alpha", "0.1", "--granularity", "head"]),
    ] {
        for case in golden_cases(run) {
            let out = run_cli(&extra, case["user"].as_str().unwrap());
            assert_eq!(
                ints(&out["prompt_tokens"]),
                ints(&case["prompt_tokens"]),
                "{run}: prompt tokens"
            );
            assert_eq!(out["prompt"], case["templated"], "{run}: templated prompt");
            assert_eq!(
                ints(&out["span_token_positions"]),
                ints(&case["span_token_positions"]),
                "{run}: spans"
            );
            let ours = ints(&out["tokens"]);
            let theirs = ints(&case["greedy_tokens"]);
            // first token always; the whole unsteered run where the builds match (steered: see
            // above, the reference continuation is checked step by step instead)
            assert_eq!(ours[0], theirs[0], "{run}/{}: first greedy token", case["name"]);
            if same_simd_as_golden() && run == "none" {
                assert_eq!(ours, theirs, "{run}/{}: greedy tokens", case["name"]);
                assert_eq!(out["text"], case["greedy_text"], "{run}/{}: text", case["name"]);
            }
        }
    }
}

#[test]
fn unsteered_trace_matches_reference_span_shares() {
    let dir = tempdir();
    for case in golden_cases("none") {
        let expected = case["span_mass_last_prompt_token"].as_array().unwrap();
        if expected.is_empty() {
            continue;
        }
        let trace = dir.join("trace.jsonl");
        run_cli(
            &["--no-steer", "--trace", trace.to_str().unwrap()],
            case["user"].as_str().unwrap(),
        );
        let first: serde_json::Value = serde_json::from_str(
            std::fs::read_to_string(&trace)
                .unwrap()
                .lines()
                .next()
                .expect("a trace line"),
        )
        .unwrap();
        let layers = first["layers"].as_array().unwrap();
        assert_eq!(layers.len(), expected.len(), "one trace entry per layer");
        let (mut max_diff, mut sum_diff, mut n_diff) = (0f64, 0f64, 0usize);
        for (layer, want) in layers.iter().zip(expected) {
            let ours = layer["last_token_before"].as_array().unwrap();
            assert_eq!(layer["layer"], want["layer"]);
            let want = want["per_head"].as_array().unwrap();
            assert_eq!(ours.len(), want.len(), "heads in layer {}", layer["layer"]);
            // other SIMD: rounding differences grow with depth (measured on an AVX2-only AMD EPYC,
            // 2026-12-02: at most 0.034), so each share gets a loose bound and the
            // mean over all heads a tight one (see below)
            let tol = if same_simd_as_golden() { 1e-3 } else { 0.05 };
            for (h, (a, b)) in ours.iter().zip(want).enumerate() {
                let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
                max_diff = max_diff.max((a - b).abs());
                sum_diff += (a - b).abs();
                n_diff += 1;
                assert!(
                    (a - b).abs() < tol,
                    "layer {} head {h}: share {a} vs reference {b}",
                    layer["layer"]
                );
            }
        }
        let mean_diff = sum_diff / n_diff.max(1) as f64;
        eprintln!(
            "{}: span-share difference largest {max_diff:.2e}, mean {mean_diff:.2e}",
            case["name"]
        );
        // AVX2-only AMD EPYC, 2026-12-02: largest 0.034, mean 1.1e-3
        let mean_tol = if same_simd_as_golden() { 1e-3 } else { 5e-3 };
        assert!(
            mean_diff < mean_tol,
            "mean span-share difference {mean_diff} over {n_diff} heads"
        );
    }
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "spotlight-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
