//! The SpotLight rules, checked through the trace on the real model.

mod common;

use common::rule::check_rule;
use common::*;
use spotlight::llama::{ContextParams, FlashAttn};
use spotlight::spotlight::trace::UbatchTrace;
use spotlight::spotlight::{Action, GenerateOptions, Granularity, LayerSelection, Session, SteerConfig};

fn params(n_seq_max: u32) -> ContextParams {
    ctx_params(n_seq_max, FlashAttn::Off)
}

fn steer(alpha: f32, granularity: Granularity, trace: bool) -> Option<SteerConfig> {
    Some(SteerConfig {
        action: Action::Steer { alpha, granularity },
        decode: None,
        layers: LayerSelection::All,
        trace,
    })
}

#[test]
fn shares_reach_alpha_where_below_and_stay_where_above() {
    let _g = compute_lock();
    let prompt = prepare_user(POEM);
    for (alpha, granularity) in [
        (0.1, Granularity::Head),
        (0.2, Granularity::Layer),
        (0.5, Granularity::Layer),
    ] {
        let mut session = Session::new(model(), params(1), steer(alpha, granularity, true)).unwrap();
        let out = session.generate(&prompt, &GenerateOptions::greedy(8), |_| {}).unwrap();
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

#[test]
fn steering_continues_during_generation() {
    let _g = compute_lock();
    let prompt = prepare_user(POEM);
    let mut session = Session::new(model(), params(1), steer(0.1, Granularity::Head, true)).unwrap();
    let out = session.generate(&prompt, &GenerateOptions::greedy(12), |_| {}).unwrap();
    let decode_steps: Vec<&UbatchTrace> = out.trace.iter().filter(|t| t.pos.len() == 1).collect();
    assert!(decode_steps.len() >= 10, "decode steps are traced too");
    for t in decode_steps {
        for l in &t.layers {
            for h in 0..l.n_head {
                let after = l.after_at(0, h).unwrap();
                assert!(
                    after >= 0.1 - 1e-4,
                    "pos {} layer {} head {h}: share {after} fell below τ",
                    t.pos[0],
                    l.layer
                );
            }
        }
    }
}

#[test]
fn zero_alpha_and_prompts_without_highlights_are_bit_identical_to_no_steering() {
    let _g = compute_lock();
    let highlighted = prepare_user(POEM);
    let plain = prepare_user("Write a short poem about the sea. Use only lowercase letters.");
    assert_eq!(highlighted.tokens, plain.tokens);
    assert!(plain.span_token_positions.is_empty());
    let run = |prompt, steer| {
        let mut s = Session::new(model(), params(1), steer).unwrap();
        s.generate(prompt, &GenerateOptions::greedy(6), |_| {}).unwrap()
    };
    let reference = run(&plain, None);
    for (name, out) in [
        (
            "τ = 0 with highlights (hook active)",
            run(&highlighted, steer(0.0, Granularity::Head, false)),
        ),
        (
            "τ = 0, layer granularity",
            run(&highlighted, steer(0.0, Granularity::Layer, false)),
        ),
        (
            "no highlights, hook installed",
            run(&plain, steer(0.1, Granularity::Layer, false)),
        ),
    ] {
        assert_eq!(out.tokens, reference.tokens, "{name}: tokens");
        let same = out
            .first_logits
            .iter()
            .zip(&reference.first_logits)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same && out.first_logits.len() == reference.first_logits.len(),
            "{name}: logits are not bit-identical"
        );
    }
    let steered = run(&highlighted, steer(0.1, Granularity::Layer, false));
    assert_ne!(
        steered.first_logits, reference.first_logits,
        "steering must change something"
    );
}

#[test]
fn parallel_sequences_do_not_leak_steering() {
    let _g = compute_lock();
    let a = prepare_user(POEM);
    let b = prepare_user("What is the capital of **France**? Answer in one word.");
    let c = prepare_user("Name three colors.");
    let config = steer(0.2, Granularity::Layer, true);
    let options = GenerateOptions::greedy(10);
    let solo: Vec<_> = [&a, &b, &c]
        .iter()
        .map(|p| {
            Session::new(model(), params(1), config.clone())
                .unwrap()
                .generate(p, &options, |_| {})
                .unwrap()
        })
        .collect();
    // Batched decoding runs other kernels than solo decoding (several rows at once), so compare
    // teacher-forced logits: a leak of steering would move them by far more than rounding.
    let mut session = Session::new(model(), params(3), config).unwrap();
    let prompts = [a, b, c];
    let mut forced = options.clone();
    forced.forced = Some(solo.iter().map(|g| g.tokens.clone()).collect());
    let (batched, trace) = session.generate_parallel(&prompts, &forced, |_, _| {}).unwrap();
    for (i, (s, p)) in solo.iter().zip(&batched).enumerate() {
        assert_eq!(s.tokens, p.tokens, "sequence {i}: forced tokens");
        let mut solo_forced = options.clone();
        solo_forced.forced = Some(vec![s.tokens.clone()]);
        let s = Session::new(model(), params(1), steer(0.2, Granularity::Layer, false))
            .unwrap()
            .generate(&prompts[i], &solo_forced, |_| {})
            .unwrap();
        // Steering amplifies kernel rounding (measured up to ~0.1 logits here); a leaked span
        // would shift logits by whole units.
        for (step, (x, y)) in s.step_top5.iter().zip(&p.step_top5).enumerate() {
            assert!(
                (x[0].1 - y[0].1).abs() < 0.25,
                "sequence {i} step {step}: top logit {x:?} vs {y:?}"
            );
            let solo_choice = x[0].0;
            let in_batch = y.iter().find(|(t, _)| *t == solo_choice).map(|(_, l)| y[0].1 - l);
            assert!(
                in_batch.is_some_and(|gap| gap < 0.25),
                "sequence {i} step {step}: {x:?} vs {y:?}"
            );
        }
    }
    // rows of the sequence without highlights never see a span: their share stays 0
    for t in &trace {
        for (row, &seq) in t.seq_ids.iter().enumerate() {
            if seq == 2 {
                for l in &t.layers {
                    assert!(
                        (0..l.n_head).all(|h| l.before_at(row, h) == 0.0),
                        "sequence 2 saw another sequence's span"
                    );
                }
            }
        }
    }
}

#[test]
fn tokenizer_offsets_reconstruct_non_ascii_text() {
    let vocab = model().vocab();
    let text = "Café naïve 🎉 日本語 — “quotes” and emoji 👩‍💻!";
    let tok = vocab.tokenize_with_offsets(text, false, false).unwrap();
    assert!(tok.tokens.len() > 5);
    let mut rebuilt = Vec::new();
    let mut cursor = 0;
    for (t, r) in tok.tokens.iter().zip(&tok.ranges) {
        assert_eq!(r.start, cursor, "ranges are contiguous");
        assert_eq!(
            &text.as_bytes()[r.clone()],
            &vocab.token_bytes(*t, false)[..],
            "token {t} covers its own bytes"
        );
        rebuilt.extend_from_slice(&text.as_bytes()[r.clone()]);
        cursor = r.end;
    }
    assert_eq!(rebuilt, text.as_bytes());
    // streaming detokenization never splits a character
    let mut dec = spotlight::llama::TokenDecoder::new(vocab, false);
    let mut out = String::new();
    for &t in &tok.tokens {
        out.push_str(&dec.push(t));
    }
    out.push_str(&dec.finish());
    assert_eq!(out, text);
}

/// Gemma 3 has sliding-window layers (window 512) and global layers. With the span at the start
/// of a ~750-token prompt, late rows see it only through the global layers: the rule must hold in
/// both kinds, and rows outside the window must be left alone in the SWA layers.
#[test]
fn gemma3_sliding_window_layers_are_steered_where_the_span_is_visible() {
    use spotlight::llama::{Model, ModelParams};
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
    let window = gemma.n_swa() as usize;
    assert!(window > 0, "Gemma 3 has sliding-window attention");
    let text = format!(
        "**Reply in French.**{}",
        " The quick brown fox jumps over the lazy dog.".repeat(75)
    );
    let opts = HighlightOptions {
        markup: true,
        ..Default::default()
    };
    let content = prompt::highlight("prompt", &text, &opts, true).unwrap();
    // base model: raw prompt, no chat template
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
        prepared.tokens.len() > window + 100,
        "the prompt must outgrow the window"
    );
    let last_span = *prepared.span_token_positions.last().unwrap();

    let params = ContextParams {
        n_ctx: 2048,
        n_batch: 1024,
        n_ubatch: 512,
        n_threads: 2,
        n_seq_max: 1,
        flash_attn: FlashAttn::Off,
    };
    let mut session = Session::new(&gemma, params, steer(0.1, Granularity::Head, true)).unwrap();
    let out = session
        .generate(&prepared, &GenerateOptions::greedy(3), |_| {})
        .unwrap();
    assert!(out.trace.len() >= 2, "the prompt spans two ubatches");
    let raised = check_rule(&out.trace, 0.1, Granularity::Head);
    assert!(raised > 0);

    // the last prompt row: SWA layers cannot see the span, global layers can (and get τ)
    let last = out
        .trace
        .iter()
        .find(|t| t.pos.contains(&((prepared.tokens.len() - 1) as i32)))
        .unwrap();
    let row = last
        .pos
        .iter()
        .position(|&p| p as usize == prepared.tokens.len() - 1)
        .unwrap();
    assert!(prepared.tokens.len() - 1 - last_span > window);
    let (mut blind, mut seeing) = (0, 0);
    for l in &last.layers {
        let before: Vec<f32> = (0..l.n_head).map(|h| l.before_at(row, h)).collect();
        if before.iter().all(|&p| p == 0.0) {
            blind += 1;
            assert!(
                (0..l.n_head).all(|h| l.after_at(row, h).unwrap() == 0.0),
                "layer {} was changed",
                l.layer
            );
        } else {
            seeing += 1;
            assert!(
                (0..l.n_head).all(|h| l.after_at(row, h).unwrap() >= 0.1 - 1e-4),
                "layer {} below τ",
                l.layer
            );
        }
    }
    assert!(
        blind > 0 && seeing > 0,
        "expected both SWA layers ({blind}) and global layers ({seeing})"
    );
}

#[test]
fn multi_turn_chat_keeps_earlier_spans_steered_and_reuses_the_cache() {
    use spotlight::llama::ChatTemplate;
    use spotlight::spotlight::markup::{parse_markup, plain};
    use spotlight::spotlight::Chat;

    let _g = compute_lock();
    let session = Session::new(model(), params(1), steer(0.1, Granularity::Head, true)).unwrap();
    let mut chat = Chat::new(session, Some(ChatTemplate::from_model(model()).unwrap()), None);
    let options = GenerateOptions::greedy(8);
    let first = chat
        .send(
            parse_markup("Always answer **in French**. Hello!").unwrap(),
            &options,
            |_| {},
        )
        .unwrap();
    assert!(!first.trace.is_empty());
    chat.send(plain("What is two plus two?"), &options, |_| {}).unwrap();
    let third = chat.send(plain("And three plus three?"), &options, |_| {}).unwrap();
    assert_eq!(chat.spans().len(), 1, "the turn-1 span is still listed");
    assert_eq!(chat.spans()[0].text, "in French");
    // turn 3 only computed its new tokens: the history came from the KV cache
    let prefill = &third.trace[0];
    assert!(
        prefill.pos[0] > 20,
        "turn 3 re-processed the history from position {}",
        prefill.pos[0]
    );
    let mut rows = 0;
    for t in &third.trace {
        for l in &t.layers {
            for tok in 0..t.pos.len() {
                for h in 0..l.n_head {
                    assert!(
                        l.before_at(tok, h) > 0.0,
                        "the turn-1 span is visible to every turn-3 row"
                    );
                    assert!(
                        l.after_at(tok, h).unwrap() >= 0.1 - 1e-4,
                        "turn 3, pos {}: share below τ",
                        t.pos[tok]
                    );
                    rows += 1;
                }
            }
        }
    }
    assert!(rows > 0);
}

/// The patch hands over the span mask only for the window of KV cells between the first and the
/// last highlighted cell. With two highlights far apart, the cells between them are in the window
/// but not highlighted: measured without steering, the share of both highlights must be the sum
/// of the shares of each alone (a gap counted as span would add to it), and steering both must
/// still follow the rule.
#[test]
fn two_distant_highlights_count_only_their_own_cells() {
    let _g = compute_lock();
    let filler = " The weather was mild and the market was busy all morning.".repeat(6);
    let text = |a: bool, b: bool| {
        let wrap = |s: &str, on: bool| if on { format!("**{s}**") } else { s.to_string() };
        format!(
            "{}{filler} {}",
            wrap("Answer in French.", a),
            wrap("Use exactly three sentences.", b)
        )
    };
    let observe = Some(SteerConfig {
        action: Action::Observe,
        decode: None,
        layers: LayerSelection::All,
        trace: true,
    });
    let shares = |a: bool, b: bool| {
        let prompt = prepare_user(&text(a, b));
        let mut session = Session::new(model(), params(1), observe.clone()).unwrap();
        let out = session.generate(&prompt, &GenerateOptions::greedy(1), |_| {}).unwrap();
        (
            prompt.tokens,
            out.trace.into_iter().next().expect("the prompt is traced"),
        )
    };
    let (tokens_ab, both) = shares(true, true);
    let (tokens_a, first) = shares(true, false);
    let (tokens_b, second) = shares(false, true);
    assert!(
        tokens_ab == tokens_a && tokens_a == tokens_b,
        "markup must not change the tokens"
    );
    let last = tokens_ab.len() - 1;
    let mut compared = 0;
    for ((lab, la), lb) in both.layers.iter().zip(&first.layers).zip(&second.layers) {
        for h in 0..lab.n_head {
            let (ab, a, b) = (lab.before_at(last, h), la.before_at(last, h), lb.before_at(last, h));
            assert!(
                (ab - (a + b)).abs() <= 1e-5 * ab.max(1e-3),
                "layer {} head {h}: share of both {ab} ≠ {a} + {b}",
                lab.layer
            );
            compared += 1;
        }
    }
    assert_eq!(compared, model().n_layer() * both.layers[0].n_head);

    let prompt = prepare_user(&text(true, true));
    for (alpha, granularity) in [(0.1, Granularity::Head), (0.2, Granularity::Layer)] {
        let mut session = Session::new(model(), params(1), steer(alpha, granularity, true)).unwrap();
        let out = session.generate(&prompt, &GenerateOptions::greedy(4), |_| {}).unwrap();
        assert!(check_rule(&out.trace, alpha, granularity) > 0);
    }
}

/// Steering must not hold on to memory: every layer's attention matrix is freed once its product
/// with V is done, as in the stock graph, so the compute buffer reserved when the context was
/// created (for a graph without highlights) still fits the steered graph of a full ubatch.
/// llama.cpp checks this when the context is freed and logs a mismatch otherwise (an earlier
/// version of our graph kept every layer's matrix alive: 503 MiB instead of 110 MiB).
#[test]
fn steered_graph_fits_the_reserved_compute_buffer() {
    let _g = compute_lock();
    let text = format!(
        "{} **Answer in exactly three sentences.** {}",
        "The committee reviewed the annual budget of the library. ".repeat(30),
        "Several proposals for the new building were discussed. ".repeat(30)
    );
    let prompt = prepare_user(&text);
    assert!(prompt.tokens.len() > 512, "the prompt fills a whole ubatch");
    for granularity in [Granularity::Head, Granularity::Layer] {
        let (out, lines) = spotlight::llama::capture_logs(|| {
            let mut session = Session::new(model(), params(1), steer(0.1, granularity, false)).unwrap();
            session.generate(&prompt, &GenerateOptions::greedy(2), |_| {}).unwrap()
        });
        assert!(!out.tokens.is_empty());
        let check: Vec<&String> = lines.iter().filter(|l| l.contains("expectation")).collect();
        assert!(
            !check.is_empty(),
            "llama.cpp logs its compute-buffer check when a context is freed"
        );
        assert!(
            check.iter().all(|l| l.contains("matches expectation")),
            "{granularity}: the compute buffer grew: {check:?}"
        );
    }
}

/// Decoding with steering reuses the graph between steps exactly as often as stock llama.cpp
/// does: the steering ops must not force a rebuild per token when nothing changed.
#[test]
fn steered_decoding_reuses_the_graph_like_stock() {
    let _g = compute_lock();
    let prompt = prepare_user(POEM);
    let mut reused = Vec::new();
    for config in [
        None,
        steer(0.1, Granularity::Head, false),
        steer(0.1, Granularity::Layer, false),
    ] {
        let mut session = Session::new(model(), params(1), config).unwrap();
        let out = session.generate(&prompt, &GenerateOptions::greedy(24), |_| {}).unwrap();
        assert_eq!(out.tokens.len(), 24, "the poem is longer than 24 tokens");
        reused.push(session.context().perf().graphs_reused);
    }
    assert!(reused[0] >= 20, "stock reuses the decode graph: {reused:?}");
    assert!(
        reused.iter().all(|&r| r == reused[0]),
        "graphs reused (stock, head, layer): {reused:?}"
    );
}

/// Continuous batching (`Session::generate_queue`): five prompts through two sequence slots, so
/// new prompts start in slots that other prompts just left, each with its own highlights (or
/// none). Every prompt must get the teacher-forced logits of its solo run (within the rounding
/// batching brings): neither KV cells nor spans of a slot's previous prompt may leak into it.
#[test]
fn queued_prompts_reuse_slots_without_leaks() {
    use spotlight::spotlight::Generation;
    let _g = compute_lock();
    let texts = [
        POEM,
        "What is the capital of **France**? Answer in one word.",
        "Name three colors.",
        "**Reply in French.** How are you today?",
        "List two fruits. **Use bullet points.**",
    ];
    let prompts: Vec<_> = texts.iter().map(|t| prepare_user(t)).collect();
    let config = steer(0.2, Granularity::Layer, false);
    let greedy = GenerateOptions::greedy(8);
    let solo: Vec<Generation> = prompts
        .iter()
        .map(|p| {
            let mut session = Session::new(model(), params(1), config.clone()).unwrap();
            let tokens = session.generate(p, &greedy, |_| {}).unwrap().tokens;
            let mut forced = greedy.clone();
            forced.forced = Some(vec![tokens]);
            session.generate(p, &forced, |_| {}).unwrap()
        })
        .collect();
    let mut forced = greedy.clone();
    forced.forced = Some(solo.iter().map(|g| g.tokens.clone()).collect());
    let mut session = Session::new(model(), params(2), config).unwrap();
    let mut queued: Vec<Option<Generation>> = vec![None; prompts.len()];
    let mut order = Vec::new();
    session
        .generate_queue(&prompts, &forced, |i, g| -> Result<(), spotlight::llama::LlamaError> {
            order.push(i);
            queued[i] = Some(g);
            Ok(())
        })
        .unwrap();
    assert_eq!(order.len(), prompts.len(), "every prompt finishes once");
    for (i, (s, q)) in solo.iter().zip(&queued).enumerate() {
        let q = q.as_ref().unwrap();
        assert_eq!(s.tokens, q.tokens, "prompt {i}: forced tokens");
        assert_eq!(s.step_top5.len(), q.step_top5.len(), "prompt {i}: steps");
        for (step, (x, y)) in s.step_top5.iter().zip(&q.step_top5).enumerate() {
            let solo_choice = x[0].0;
            let gap = y.iter().find(|(t, _)| *t == solo_choice).map(|(_, l)| y[0].1 - l);
            assert!(
                (x[0].1 - y[0].1).abs() < 0.25 && gap.is_some_and(|g| g < 0.25),
                "prompt {i} step {step}: solo {x:?} vs queued {y:?}"
            );
        }
    }
}
