//! Steering the prompt's rows and the generated tokens' rows differently (`--prefill-alpha`,
//! `--decode-alpha`, eval's `spotlight:τ:decode=τ`), on the real model.

mod common;

use common::rule::check_rule;
use common::*;
use spotlight::llama::{ContextParams, FlashAttn, LlamaError};
use spotlight::spotlight::{
    Action, Alpha, GenerateOptions, Generation, Granularity, LayerSelection, Session, SteerConfig,
};

fn params(n_seq_max: u32) -> ContextParams {
    ctx_params(n_seq_max, FlashAttn::Off)
}

fn phased(prefill: f32, decode: f32, trace: bool) -> Option<SteerConfig> {
    let a = |v| Alpha::new(v).unwrap();
    Some(SteerConfig {
        trace,
        ..SteerConfig::spotlight_phased(a(prefill), a(decode), Granularity::Layer, LayerSelection::All)
    })
}

fn bits_equal(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn run(config: Option<SteerConfig>, options: &GenerateOptions) -> Generation {
    let mut session = Session::new(model(), params(1), config).unwrap();
    session.generate(&prepare_user(POEM), options, |_| {}).unwrap()
}

#[test]
fn prompt_only_steering_steers_the_prompt_rows_and_observes_the_reply() {
    let _g = compute_lock();
    let greedy = GenerateOptions::greedy(10);
    let full = run(phased(0.2, 0.2, true), &greedy);
    let mut forced = greedy.clone();
    forced.forced = Some(vec![full.tokens.clone()]);
    let prompt_only = run(phased(0.2, 0.0, true), &forced);
    let full_forced = run(phased(0.2, 0.2, false), &forced);

    // the prompt is computed exactly as with full steering: the first token's logits agree bit for bit
    assert!(bits_equal(&prompt_only.first_logits, &full.first_logits));
    let (prefill, decode): (Vec<_>, Vec<_>) = prompt_only.trace.iter().partition(|t| t.pos.len() > 1);
    assert_eq!(prefill.len(), 1, "one prompt ubatch");
    assert!(
        prefill[0].config.alpha() > 0.0,
        "the prompt ubatch ran the steering hook"
    );
    assert!(check_rule(&prompt_only.trace[..1], 0.2, Granularity::Layer) > 0);
    assert!(decode.len() >= 8, "decode steps are traced");
    for t in &decode {
        assert_eq!(
            t.config.action,
            Action::Observe,
            "pos {:?}: generated rows only observed",
            t.pos
        );
        assert!(
            t.layers.iter().all(|l| l.after.is_none()),
            "nothing corrected in decode"
        );
    }
    // and the reply's rows are not steered: with the same tokens forced, later steps differ
    let differs = full_forced
        .step_top5
        .iter()
        .zip(&prompt_only.step_top5)
        .skip(1)
        .any(|(a, b)| a != b);
    assert!(differs, "decode rows must not be steered under decode τ = 0");
}

#[test]
fn generated_only_steering_leaves_the_prompt_stock() {
    let _g = compute_lock();
    let greedy = GenerateOptions::greedy(8);
    let stock = run(None, &greedy);
    let generated_only = run(phased(0.0, 0.2, true), &greedy);
    assert!(
        bits_equal(&generated_only.first_logits, &stock.first_logits),
        "prompt rows are computed as stock"
    );
    let decode: Vec<_> = generated_only
        .trace
        .iter()
        .filter(|t| t.pos.len() == 1)
        .cloned()
        .collect();
    assert!(decode.len() >= 6);
    assert!(decode.iter().all(|t| t.config.alpha() == 0.2));
    // shares of generated rows reach τ where they were below (the rule, as for full steering)
    check_rule(&decode, 0.2, Granularity::Layer);
    assert_ne!(
        generated_only.tokens, stock.tokens,
        "steering the reply changes it on this prompt"
    );
}

#[test]
fn queued_prompts_with_phased_steering_match_solo_runs() {
    let _g = compute_lock();
    let texts = [
        POEM,
        "What is the capital of **France**? Answer in one word.",
        "**Reply in French.** How are you today?",
        "List two fruits. **Use bullet points.**",
    ];
    let prompts: Vec<_> = texts.iter().map(|t| prepare_user(t)).collect();
    // strong steering of the prompt, none of the reply: a row computed under the wrong phase's
    // action moves the logits by far more than batching does
    let config = phased(0.3, 0.0, false);
    let greedy = GenerateOptions::greedy(8);
    let solo_run = |config: &Option<SteerConfig>, p, forced: Option<Vec<_>>| {
        let mut session = Session::new(model(), params(1), config.clone()).unwrap();
        let tokens = forced.unwrap_or_else(|| session.generate(p, &greedy, |_| {}).unwrap().tokens);
        let mut forced = greedy.clone();
        forced.forced = Some(vec![tokens]);
        session.generate(p, &forced, |_| {}).unwrap()
    };
    let solo: Vec<Generation> = prompts.iter().map(|p| solo_run(&config, p, None)).collect();
    // the sensitivity of the comparison below: steering the reply too changes the top logit of
    // some step by more than 1
    let longest = (0..prompts.len()).max_by_key(|&i| solo[i].tokens.len()).unwrap();
    assert!(solo[longest].tokens.len() >= 4, "a reply long enough to compare");
    let both = solo_run(
        &phased(0.3, 0.3, false),
        &prompts[longest],
        Some(solo[longest].tokens.clone()),
    );
    let moved = both
        .step_top5
        .iter()
        .zip(&solo[longest].step_top5)
        .map(|(a, b)| (a[0].1 - b[0].1).abs())
        .fold(0f32, f32::max);
    assert!(moved > 2.0, "steering decode rows moved the top logit by only {moved}");
    let mut forced = greedy.clone();
    forced.forced = Some(solo.iter().map(|g| g.tokens.clone()).collect());
    // two slots for four prompts: prompts start while others decode, the case that needs the
    // prompt rows and the decode rows in separate decodes
    let mut session = Session::new(model(), params(2), config).unwrap();
    let mut queued: Vec<Option<Generation>> = vec![None; prompts.len()];
    session
        .generate_queue(&prompts, &forced, |i, g| -> Result<(), LlamaError> {
            queued[i] = Some(g);
            Ok(())
        })
        .unwrap();
    let mut worst = 0f32;
    for (i, (s, q)) in solo.iter().zip(&queued).enumerate() {
        let q = q.as_ref().expect("every prompt finishes");
        assert_eq!(s.tokens, q.tokens, "prompt {i}: forced tokens");
        for (step, (x, y)) in s.step_top5.iter().zip(&q.step_top5).enumerate() {
            // a batch of other shapes rounds differently (by up to about 0.3 here, as in
            // tests/steering.rs's queue test); the wrong phase's action moves it by `moved`
            let diff = (x[0].1 - y[0].1).abs();
            worst = worst.max(diff);
            assert!(
                x[0].0 == y[0].0 && diff < moved / 5.0,
                "prompt {i} step {step}: solo {x:?} vs queued {y:?} (steering the reply moves {moved})"
            );
        }
    }
    eprintln!("queued vs solo: largest top-logit difference {worst} (phase error would be {moved})");
}
