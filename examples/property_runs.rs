//! Long property runs (issue #18, "Never crash"): at least 10⁶ generated cases each for
//!
//! - `markup`: the `**highlight**` parser, against a second parser written from the rules in
//!   src/spotlight/markup.rs (results *and* error kinds and positions must agree), plus valid
//!   markup built from segments whose text and spans are known in advance;
//! - `writer`: the markup writer round trip (`to_markup` then `parse_markup` gives back the text
//!   and `markup_safe` spans, which are well formed and come from the input spans);
//! - `prompt`: turns → the model's chat template → tokens → highlighted token positions, with the
//!   default model's real tokenizer (no decoding), against a prompt and spans computed by hand
//!   from ChatML, which is what llama.cpp renders for SmolLM2;
//! - `layers`: `--layers` parsing, against a reference parser and against sets written out.
//!
//! The unit tests keep proptest's quick default (256 cases); this is the long, dedicated run:
//!
//! ```sh
//! cargo run --release --example property_runs                          # all four, 10⁶ cases each
//! cargo run --release --example property_runs -- --only prompt --cases 2000000 --seed 7
//! ```
//!
//! Each property prints its case count, failures (0, or the shrunk failing case) and time; the
//! exit status is non-zero if any property failed.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
use spotlight::llama::{init_backend, ChatTemplate, LlamaError, Model, ModelParams, Vocab};
use spotlight::models::default_model_path;
use spotlight::spotlight::markup::{merge_spans, parse_markup, Highlighted, MarkupError};
use spotlight::spotlight::markup_writer::{markup_safe, to_markup};
use spotlight::spotlight::prompt::{prepare, PromptError, Turn};
use spotlight::spotlight::LayerSelection;
use std::cell::Cell;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Instant;

const PROPERTIES: [&str; 4] = ["markup", "writer", "prompt", "layers"];

fn main() {
    let mut cases: u32 = 1_000_000;
    let mut only: Vec<String> = PROPERTIES.iter().map(|s| s.to_string()).collect();
    let mut seed: u64 = 18;
    let mut model_path: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{a} needs a value")));
        match a.as_str() {
            "--cases" => cases = value().parse().unwrap_or_else(|_| usage("--cases takes a number")),
            "--seed" => seed = value().parse().unwrap_or_else(|_| usage("--seed takes a number")),
            "--model" => model_path = Some(PathBuf::from(value())),
            "--only" => only = value().split(',').map(str::to_string).collect(),
            _ => usage(&format!("unknown argument {a}")),
        }
    }
    for name in &only {
        if !PROPERTIES.contains(&name.as_str()) {
            usage(&format!("unknown property {name}"));
        }
    }
    println!("property runs: {cases} cases each, seed {seed}");
    let mut failed = 0;
    for name in &only {
        let ok = match name.as_str() {
            "markup" => run(name, cases, seed, markup_case(), check_markup),
            "writer" => run(name, cases, seed, writer_case(), check_writer),
            "prompt" => {
                init_backend(false);
                let path = model_path.clone().unwrap_or_else(default_model_path);
                let model = Model::load(
                    &path,
                    &ModelParams {
                        n_gpu_layers: 0,
                        progress: false,
                    },
                )
                .unwrap_or_else(|e| {
                    eprintln!("the prompt property needs the default model ({}): {e}", path.display());
                    std::process::exit(2)
                });
                let template = ChatTemplate::from_model(&model).expect("the default model has a chat template");
                run(name, cases, seed, prompt_case(), |c| {
                    check_prompt(model.vocab(), &template, c)
                })
            }
            "layers" => run(name, cases, seed, layers_case(), check_layers),
            _ => unreachable!(),
        };
        failed += usize::from(!ok);
    }
    if failed > 0 {
        eprintln!("{failed} propert{} failed", if failed == 1 { "y" } else { "ies" });
        std::process::exit(1);
    }
}

fn usage(msg: &str) -> ! {
    eprintln!("{msg}\nusage: property_runs [--cases N] [--seed S] [--only markup,writer,prompt,layers] [--model FILE]");
    std::process::exit(2)
}

/// Run one property for `cases` generated cases; prints the count that passed (or the shrunk
/// failure) and returns whether all passed.
fn run<S: Strategy>(
    name: &str,
    cases: u32,
    seed: u64,
    strategy: S,
    check: impl Fn(&S::Value) -> Result<(), TestCaseError>,
) -> bool
where
    S::Value: Debug,
{
    let config = Config {
        cases,
        failure_persistence: None,
        // Generated inputs are never rejected by these properties; shrinking gets a bounded budget.
        max_shrink_iters: 20_000,
        ..Config::default()
    };
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..8 + name.len().min(24)].copy_from_slice(&name.as_bytes()[..name.len().min(24)]);
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
    let calls = Cell::new(0u64);
    let start = Instant::now();
    // A panic in the code under test is a failure that proptest reports (and shrinks) itself;
    // the default hook would print a backtrace for every shrinking step.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = runner.run(&strategy, |v| {
        calls.set(calls.get() + 1);
        check(&v)
    });
    std::panic::set_hook(default_hook);
    let secs = start.elapsed().as_secs_f64();
    match result {
        Ok(()) => {
            // Without a failure there is no shrinking, so every call was one generated case.
            println!(
                "{name}: {} cases, 0 failures ({secs:.1} s, {:.1} µs/case)",
                calls.get(),
                secs * 1e6 / calls.get().max(1) as f64
            );
            assert_eq!(calls.get(), u64::from(cases), "{name}: the runner skipped cases");
            true
        }
        Err(TestError::Fail(reason, value)) => {
            println!(
                "{name}: FAILED after {} calls ({secs:.1} s): {reason}\nminimal case: {value:?}",
                calls.get()
            );
            false
        }
        Err(TestError::Abort(reason)) => {
            println!("{name}: ABORTED after {} calls: {reason}", calls.get());
            false
        }
    }
}

// ---------------------------------------------------------------------------------------------
// markup: parse_markup against a reference parser

#[derive(Debug, Clone)]
enum MarkupCase {
    /// Any input: the two parsers must agree (mostly errors for star-heavy text).
    Free(String),
    /// Valid markup with the text and spans it must give.
    Built { input: String, expected: Highlighted },
}

fn markup_case() -> impl Strategy<Value = MarkupCase> {
    // Pieces of valid markup: 0 plain, 1 `**seg**`, 2 `***seg***` (the inner stars are text),
    // 3 an escaped `\**`, 4 a lone ` * `.
    let built = prop::collection::vec(("[^*\\\\]{0,8}", 0u8..5), 0..10).prop_map(|parts| {
        let (mut input, mut text, mut spans) = (String::new(), String::new(), Vec::new());
        let mut prev_span = false;
        for (seg, kind) in parts {
            let kind = match kind {
                1 if seg.trim().is_empty() => 0,
                2 if seg.is_empty() => 0,
                k => k,
            };
            let is_span = matches!(kind, 1 | 2);
            if is_span && prev_span {
                // `**a****b**` is an error by design: spans need text between them.
                input.push('|');
                text.push('|');
            }
            match kind {
                1 | 2 => {
                    let star = if kind == 2 { "*" } else { "" };
                    input.push_str(&format!("**{star}{seg}{star}**"));
                    let start = text.len();
                    text.push_str(&format!("{star}{seg}{star}"));
                    spans.push(start..text.len());
                }
                3 => {
                    input.push_str("\\**");
                    text.push_str("**");
                }
                4 => {
                    input.push_str(" * ");
                    text.push_str(" * ");
                }
                _ => {
                    input.push_str(&seg);
                    text.push_str(&seg);
                }
            }
            // Only a piece that adds text separates two spans.
            if is_span || kind != 0 || !seg.is_empty() {
                prev_span = is_span;
            }
        }
        MarkupCase::Built {
            input,
            expected: Highlighted { text, spans },
        }
    });
    prop_oneof![
        any::<String>().prop_map(MarkupCase::Free),
        "[*\\\\a é🎉\n\t]{0,40}".prop_map(MarkupCase::Free),
        built,
    ]
}

fn check_markup(case: &MarkupCase) -> Result<(), TestCaseError> {
    let input = match case {
        MarkupCase::Free(s) => s,
        MarkupCase::Built { input, .. } => input,
    };
    let got = parse_markup(input);
    prop_assert_eq!(&got, &reference_parse(input), "input {:?}", input);
    if let Ok(h) = &got {
        well_formed(h)?;
    }
    if let MarkupCase::Built { expected, .. } = case {
        prop_assert_eq!(got.as_ref(), Ok(expected), "input {:?}", input);
    }
    Ok(())
}

fn well_formed(h: &Highlighted) -> Result<(), TestCaseError> {
    for r in &h.spans {
        prop_assert!(r.start < r.end && r.end <= h.text.len(), "span {:?} of {:?}", r, h.text);
        prop_assert!(h.text.is_char_boundary(r.start) && h.text.is_char_boundary(r.end));
        prop_assert!(!h.text[r.clone()].trim().is_empty(), "blank span {:?}", r);
    }
    for w in h.spans.windows(2) {
        prop_assert!(w[0].end <= w[1].start, "spans overlap: {:?}", h.spans);
    }
    Ok(())
}

/// The markup rules (module docs of src/spotlight/markup.rs), implemented a second time over
/// characters instead of bytes and segments.
fn reference_parse(input: &str) -> Result<Highlighted, MarkupError> {
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let char_at = |k: usize| chars.get(k).map(|c| c.1);
    let position = |byte: usize| {
        let (mut line, mut column) = (1, 1);
        for c in input[..byte].chars() {
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        (line, column)
    };
    let mut text = String::new();
    let mut spans = Vec::new();
    let mut open: Option<(usize, usize)> = None;
    let mut k = 0;
    while k < chars.len() {
        let (at, c) = chars[k];
        if c == '\\' && char_at(k + 1) == Some('*') && char_at(k + 2) == Some('*') {
            text.push_str("**");
            k += 3;
            continue;
        }
        if c != '*' {
            text.push(c);
            k += 1;
            continue;
        }
        let run = chars[k..].iter().take_while(|c| c.1 == '*').count();
        k += run;
        match (run, open) {
            (1, _) => text.push('*'),
            (2 | 3, None) => {
                open = Some((at, text.len()));
                if run == 3 {
                    text.push('*');
                }
            }
            (2 | 3, Some((marker, start))) => {
                if run == 3 {
                    text.push('*');
                }
                if text[start..].trim().is_empty() {
                    let (line, column) = position(marker);
                    return Err(MarkupError::EmptyHighlight { line, column });
                }
                spans.push(start..text.len());
                open = None;
            }
            (4, None) => {
                let (line, column) = position(at);
                return Err(MarkupError::EmptyHighlight { line, column });
            }
            (count, _) => {
                let (line, column) = position(at);
                return Err(MarkupError::StarRun { count, line, column });
            }
        }
    }
    if let Some((marker, _)) = open {
        let (line, column) = position(marker);
        return Err(MarkupError::Unbalanced { line, column });
    }
    Ok(Highlighted { text, spans })
}

// ---------------------------------------------------------------------------------------------
// writer: to_markup / markup_safe round trip

fn writer_case() -> impl Strategy<Value = (String, Vec<Range<usize>>)> {
    (
        prop_oneof![
            "[*\\\\ab é🎉\n\t]{0,40}",
            any::<String>(),
            "([a ]{0,3}(\\*\\*|\\\\\\*\\*|\\*\\*\\*)){0,6}[a ]{0,3}",
        ],
        // Byte ranges of any kind: out of bounds, reversed, empty, inside a multi-byte char.
        prop::collection::vec((0usize..48, 0usize..48), 0..6),
    )
        .prop_map(|(text, spans)| (text, spans.into_iter().map(|(a, b)| a..b).collect()))
}

fn check_writer((text, spans): &(String, Vec<Range<usize>>)) -> Result<(), TestCaseError> {
    let safe = markup_safe(text, spans);
    well_formed(&Highlighted {
        text: text.clone(),
        spans: safe.clone(),
    })?;
    for w in safe.windows(2) {
        // Touching spans would be written `**a****b**`, which does not parse.
        prop_assert!(w[0].end < w[1].start, "safe spans touch: {:?}", safe);
    }
    // Nothing invented: widening and merging only grow input spans, shrinking at the end only
    // trims them, so every safe span shares bytes with some (clamped) input span.
    for r in &safe {
        let from_input = spans.iter().any(|s| {
            let (a, b) = (s.start.min(text.len()), s.end.min(text.len()));
            a.max(r.start) < b.min(r.end)
        });
        prop_assert!(from_input, "safe span {:?} overlaps no input span of {:?}", r, spans);
    }
    prop_assert_eq!(&markup_safe(text, &safe), &safe, "markup_safe is not idempotent");
    let markup = to_markup(text, spans);
    prop_assert_eq!(&to_markup(text, &safe), &markup);
    let parsed = parse_markup(&markup).map_err(|e| TestCaseError::fail(format!("{markup:?}: {e}")))?;
    prop_assert_eq!(
        parsed,
        Highlighted {
            text: text.clone(),
            spans: safe
        },
        "markup {:?}",
        markup
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// prompt: turns → chat template → tokens → highlighted token positions (real tokenizer)

const SPECIAL: [&str; 3] = ["<|im_start|>", "<|im_end|>", "<|endoftext|>"];
const SENTINEL: &str = "\u{E000}1\u{E001}";

#[derive(Debug, Clone)]
struct PromptCase {
    turns: Vec<(String, Highlighted)>,
    add_assistant: bool,
}

fn prompt_case() -> impl Strategy<Value = PromptCase> {
    // A piece of a message: text (sometimes a special-token string, the reserved sentinel shape or
    // a NUL byte: all things a user can type) and whether it is highlighted.
    let piece = (
        prop_oneof![
            8 => "[a-zA-Z0-9 .,!?'\n\t<|>*é中🎉\u{E000}\u{E001}-]{1,12}",
            1 => prop::sample::select(SPECIAL.to_vec()).prop_map(str::to_string),
            1 => prop::sample::select(vec![SENTINEL, "\u{E000}x\u{E001}", "a\0b"]).prop_map(str::to_string),
        ],
        any::<bool>(),
    );
    let message = prop::collection::vec(piece, 0..6).prop_map(|pieces| {
        let mut h = Highlighted {
            text: String::new(),
            spans: Vec::new(),
        };
        for (text, on) in pieces {
            let start = h.text.len();
            h.text.push_str(&text);
            // Markup never produces blank spans; the parser's properties cover that rule.
            if on && !text.trim().is_empty() {
                h.spans.push(start..h.text.len());
            }
        }
        h.spans = merge_spans(std::mem::take(&mut h.spans));
        h
    });
    let role = prop::sample::select(vec!["system", "user", "assistant"]);
    (prop::collection::vec((role, message), 1..4), any::<bool>()).prop_map(|(turns, add_assistant)| PromptCase {
        turns: turns.into_iter().map(|(r, m)| (r.to_string(), m)).collect(),
        add_assistant,
    })
}

fn check_prompt(vocab: Vocab<'_>, template: &ChatTemplate, case: &PromptCase) -> Result<(), TestCaseError> {
    let turns: Vec<Turn> = case
        .turns
        .iter()
        .map(|(role, content)| Turn {
            role: role.clone(),
            content: content.clone(),
        })
        .collect();
    let got = prepare(vocab, Some(template), &turns, case.add_assistant);

    // Expected by hand: llama.cpp renders SmolLM2's template as ChatML, contents verbatim.
    let mut text = String::new();
    let mut spans = Vec::new();
    for (role, content) in &case.turns {
        text.push_str(&format!("<|im_start|>{role}\n"));
        let base = text.len();
        text.push_str(&content.text);
        spans.extend(content.spans.iter().map(|r| r.start + base..r.end + base));
        text.push_str("<|im_end|>\n");
    }
    if case.add_assistant {
        text.push_str("<|im_start|>assistant\n");
    }
    let contents = || case.turns.iter().map(|(_, c)| c.text.as_str());
    let special_only = |s: &str| {
        SPECIAL
            .iter()
            .fold(s.to_string(), |acc, sp| acc.replace(sp, ""))
            .is_empty()
    };

    // The sentinel shape, written independently of template_map: U+E000, digits, U+E001.
    static SHAPE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let sentinel_shape = SHAPE.get_or_init(|| regex::Regex::new("\u{E000}[0-9]+\u{E001}").unwrap());
    if contents().any(|c| sentinel_shape.is_match(c)) {
        prop_assert!(
            matches!(&got, Err(PromptError::Template(m)) if m.contains("reserved sequence")),
            "a sentinel-shaped content must be refused: {:?}",
            got
        );
        return Ok(());
    }
    if contents().any(|c| c.contains('\0')) {
        prop_assert!(
            matches!(&got, Err(PromptError::Llama(LlamaError::InvalidText(_)))),
            "a NUL byte must be refused: {:?}",
            got
        );
        return Ok(());
    }
    if let Some(s) = spans.iter().find(|s| special_only(&text[(*s).clone()])) {
        // A highlight of nothing but special-token text covers only control tokens.
        prop_assert!(
            matches!(&got, Err(PromptError::SpanOnlyTemplate { text: t }) if *t == text[s.clone()]),
            "span {:?} of special tokens only: {:?}",
            &text[s.clone()],
            got
        );
        return Ok(());
    }
    let p = got.map_err(|e| TestCaseError::fail(format!("prepare failed: {e}")))?;
    prop_assert_eq!(&p.text, &text);
    prop_assert_eq!(&p.span_ranges, &merge_spans(spans));
    prop_assert_eq!(p.tokens.len(), p.token_ranges.len());

    // Token ranges tile the text in order.
    let mut cursor = 0;
    for r in &p.token_ranges {
        prop_assert_eq!(r.start, cursor, "token ranges leave a gap or overlap");
        prop_assert!(r.end >= r.start);
        cursor = r.end;
    }
    prop_assert_eq!(cursor, text.len());
    let rebuilt: Vec<u8> = p
        .token_ranges
        .iter()
        .flat_map(|r| text.as_bytes()[r.clone()].to_vec())
        .collect();
    prop_assert_eq!(&rebuilt, text.as_bytes());

    // Highlighted tokens: exactly those sharing a byte with a span (brute force).
    let expected: Vec<usize> = p
        .token_ranges
        .iter()
        .enumerate()
        .filter(|(_, t)| p.span_ranges.iter().any(|s| s.start.max(t.start) < s.end.min(t.end)))
        .map(|(i, _)| i)
        .collect();
    prop_assert_eq!(&p.span_token_positions, &expected);
    // Every span byte lies in a highlighted token.
    for s in &p.span_ranges {
        for b in s.clone() {
            let tok = p.token_ranges.iter().position(|t| t.contains(&b));
            prop_assert!(
                tok.is_some_and(|i| expected.binary_search(&i).is_ok()),
                "byte {} unhighlighted",
                b
            );
        }
    }
    // The runs handed to llama.cpp: sorted, apart, and expanding to exactly those positions.
    let offset = 7;
    let runs = p.span_position_ranges(offset);
    for w in runs.windows(2) {
        prop_assert!(w[0].1 < w[1].0, "runs touch or overlap: {:?}", runs);
    }
    let expanded: Vec<usize> = runs
        .iter()
        .flat_map(|&(a, b)| a..b)
        .map(|p| (p - offset) as usize)
        .collect();
    prop_assert_eq!(&expanded, &expected);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// layers: --layers parsing

#[derive(Debug, Clone)]
enum LayersCase {
    /// Any text: must agree with the reference parser.
    Free(String),
    /// A set written as ranges and lists with random spacing, and a model size to validate against.
    Written {
        set: BTreeSet<usize>,
        text: String,
        n_layer: usize,
    },
}

fn layers_case() -> impl Strategy<Value = LayersCase> {
    let written = (
        prop::collection::btree_set(0usize..600, 0..12),
        prop::collection::vec((any::<bool>(), 0u8..3, 0u8..3), 12),
        1usize..600,
    )
        .prop_map(|(set, style, n_layer)| {
            // Consecutive runs, each written either as `a-b` or item by item.
            let mut runs: Vec<(usize, usize)> = Vec::new();
            for &l in &set {
                match runs.last_mut() {
                    Some(r) if r.1 + 1 == l => r.1 = l,
                    _ => runs.push((l, l)),
                }
            }
            let pad = |n: u8| " ".repeat(n as usize);
            let mut items = Vec::new();
            for (i, &(a, b)) in runs.iter().enumerate() {
                let (as_range, p1, p2) = style[i % style.len()];
                if as_range {
                    items.push(format!("{}{a}{}-{}{b}{}", pad(p1), pad(p2), pad(p1), pad(p2)));
                } else {
                    items.extend((a..=b).map(|l| format!("{}{l}{}", pad(p1), pad(p2))));
                }
            }
            LayersCase::Written {
                set,
                text: items.join(","),
                n_layer,
            }
        });
    prop_oneof![
        any::<String>().prop_map(LayersCase::Free),
        "[0-9,\\- aAlL+]{0,24}".prop_map(LayersCase::Free),
        prop::sample::select(vec![
            "all", " ALL ", "All", "al", "all,1", "-", "1-", "-1", "0-511", "0-512"
        ])
        .prop_map(|s| LayersCase::Free(s.to_string())),
        written,
    ]
}

/// `--layers` read a second time: `Some(set)` for a list, `None` for `all`, `Err` when invalid.
fn reference_layers(s: &str) -> Result<Option<BTreeSet<usize>>, ()> {
    let s = s.trim();
    if s.to_lowercase() == "all" && s.len() == 3 {
        return Ok(None);
    }
    let number = |t: &str| t.trim().parse::<usize>().ok().filter(|&n| n < 512).ok_or(());
    let mut set = BTreeSet::new();
    for item in s.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(());
        }
        match item.find('-') {
            Some(at) => {
                let (a, b) = (number(&item[..at])?, number(&item[at + 1..])?);
                if a > b {
                    return Err(());
                }
                set.extend(a..=b);
            }
            None => {
                set.insert(number(item)?);
            }
        }
    }
    Ok(Some(set))
}

fn check_layers(case: &LayersCase) -> Result<(), TestCaseError> {
    let text = match case {
        LayersCase::Free(t) => t,
        LayersCase::Written { text, .. } => text,
    };
    let got = text.parse::<LayerSelection>();
    let want = reference_layers(text);
    match (&got, &want) {
        (Ok(LayerSelection::All), Ok(None)) => {}
        (Ok(LayerSelection::Only(a)), Ok(Some(b))) => prop_assert_eq!(a, b, "{:?}", text),
        (Err(_), Err(())) => {}
        _ => prop_assert!(false, "{:?}: parsed {:?}, reference {:?}", text, got, want),
    }
    if let Ok(sel) = &got {
        // Display is a valid --layers value for the same selection.
        prop_assert_eq!(&sel.to_string().parse::<LayerSelection>(), &Ok(sel.clone()));
    }
    if let LayersCase::Written { set, n_layer, .. } = case {
        if set.is_empty() {
            prop_assert!(got.is_err(), "an empty list must be an error");
        } else if set.iter().any(|&l| l >= 512) {
            prop_assert!(got.as_ref().is_err_and(|e| e.contains("at most 512")), "{:?}", got);
        } else {
            let sel = got.map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
            prop_assert_eq!(&sel, &LayerSelection::Only(set.clone()));
            for l in 0..600 {
                prop_assert_eq!(sel.contains(l), set.contains(&l));
            }
            let too_big = set.iter().any(|&l| l >= *n_layer);
            prop_assert_eq!(sel.validate(*n_layer).is_err(), too_big);
        }
    }
    Ok(())
}
