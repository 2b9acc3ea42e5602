//! `spotlight bench`: prompt processing (pp) and generation (tg) speed of stock llama.cpp and of
//! steered contexts, measured in one run with the configurations interleaved, reported as medians
//! and as ratios to stock (flash attention off).

use super::args::BenchArgs;
use anyhow::{bail, Context as _};
use serde::Serialize;
use spotlight::llama::{capture_logs, Batch, Context, ContextParams, FlashAttn, Model};
use spotlight::spotlight::controller::SpotlightHook;
use spotlight::spotlight::trace::TraceSink;
use spotlight::spotlight::{Alpha, Granularity, LayerSelection, SteerConfig};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One benchmarked configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Config {
    /// No hooks, flash attention off: the reference for ratios.
    StockFaOff,
    /// No hooks, flash attention auto (llama.cpp's default).
    StockFaAuto,
    /// Hooks installed, prompt without highlights.
    NoHighlights,
    SteerLayer,
    SteerHead,
    /// τ so small that every share is already above it: the ops run, nothing changes.
    SteerSaturated,
    /// No hooks, flash attention on: the reference for the steered flash-attention rows.
    StockFaOn,
    SteerLayerFa,
    SteerHeadFa,
}

impl Config {
    const ALL: [Config; 9] = [
        Config::StockFaOff,
        Config::StockFaAuto,
        Config::NoHighlights,
        Config::SteerLayer,
        Config::SteerHead,
        Config::SteerSaturated,
        Config::StockFaOn,
        Config::SteerLayerFa,
        Config::SteerHeadFa,
    ];

    fn name(self) -> &'static str {
        match self {
            Config::StockFaOff => "stock (FA off)",
            Config::StockFaAuto => "stock (FA auto)",
            Config::NoHighlights => "hook, no highlights",
            Config::SteerLayer => "steer layer τ=0.1",
            Config::SteerHead => "steer head τ=0.1",
            Config::SteerSaturated => "steer, all shares ≥ τ",
            Config::StockFaOn => "stock (FA on)",
            Config::SteerLayerFa => "steer layer τ=0.1, FA on",
            Config::SteerHeadFa => "steer head τ=0.1, FA on",
        }
    }

    /// What the ratios compare with: stock llama.cpp with the same flash-attention setting.
    fn reference(self) -> Config {
        match self {
            Config::StockFaOn | Config::SteerLayerFa | Config::SteerHeadFa => Config::StockFaOn,
            _ => Config::StockFaOff,
        }
    }

    /// The hook's configuration and whether the prompt gets a highlighted span.
    fn steer(self) -> Option<(SteerConfig, bool)> {
        let config = |tau: f32, granularity| {
            let alpha = Alpha::new(tau).expect("the benchmark's τ values are in [0, 1)");
            SteerConfig::spotlight(alpha, granularity, LayerSelection::All)
        };
        match self {
            Config::StockFaOff | Config::StockFaAuto | Config::StockFaOn => None,
            Config::NoHighlights => Some((config(0.1, Granularity::Layer), false)),
            Config::SteerLayer | Config::SteerLayerFa => Some((config(0.1, Granularity::Layer), true)),
            Config::SteerHead | Config::SteerHeadFa => Some((config(0.1, Granularity::Head), true)),
            Config::SteerSaturated => Some((config(1e-6, Granularity::Layer), true)),
        }
    }
}

#[derive(Debug, Serialize)]
struct Series {
    config: Config,
    name: &'static str,
    n_prompt: usize,
    pp_tok_s: Vec<f64>,
    tg_tok_s: Vec<f64>,
}

/// Threads per context: 2 unless given (bench's default before the model options were shared,
/// and the setting of the results in docs/results), rather than the other commands' all cores.
fn threads(args: &BenchArgs) -> i32 {
    args.model.threads.unwrap_or(2)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return 0.0;
    }
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// Deterministic pseudo-random ordinary tokens (llama-bench also benchmarks on random tokens).
fn random_tokens(n: usize, n_vocab: usize, seed: u64) -> Vec<i32> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (100 + (x % (n_vocab as u64 - 200))) as i32
        })
        .collect()
}

/// Compute-buffer sizes (MiB) llama.cpp reported in its log lines: at creation, on regrowth,
/// and when the context is freed (the size the buffer finally had, e.g. "compute buffer size of
/// 503.4 MiB, does not match expectation of 110.4 MiB" when a graph outgrew the reservation).
fn compute_buffer_mib(lines: &[String]) -> Option<f64> {
    let mut size: Option<f64> = None;
    for line in lines {
        let reported = [
            "compute buffer size = ",
            "compute buffer size is ",
            "compute buffer size of ",
        ]
        .iter()
        .find_map(|marker| line.split(marker).nth(1));
        let value = if let Some(rest) = reported {
            rest.split_whitespace().next()
        } else if line.contains("reallocating") {
            line.split(" to ").nth(1).and_then(|r| r.split_whitespace().next())
        } else {
            None
        };
        if let Some(v) = value.and_then(|v| v.parse::<f64>().ok()) {
            size = Some(size.map_or(v, |s: f64| s.max(v)));
        }
    }
    size
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace()
        .nth(1)?
        .parse::<f64>()
        .ok()
        .map(|kb| kb / 1024.0)
}

struct Bench<'m> {
    ctx: Context<'m>,
    config: Config,
}

impl<'m> Bench<'m> {
    fn new(model: &'m Model, config: Config, n_ctx: u32, args: &BenchArgs) -> anyhow::Result<Self> {
        let flash_attn = match config {
            Config::StockFaAuto => FlashAttn::Auto,
            Config::StockFaOn | Config::SteerLayerFa | Config::SteerHeadFa => FlashAttn::On,
            _ => FlashAttn::Off,
        };
        let params = ContextParams {
            n_ctx,
            n_batch: args.batch_size,
            n_ubatch: args.ubatch_size,
            n_threads: threads(args),
            n_seq_max: 1,
            flash_attn,
        };
        let mut ctx = Context::new(model, params)?;
        if let Some((steer, _)) = config.steer() {
            let sink = Arc::new(Mutex::new(TraceSink::default()));
            ctx.set_steer(Some(Box::new(SpotlightHook::new(steer, model.n_layer(), sink))));
        }
        Ok(Self { ctx, config })
    }

    /// Prefill `tokens` (with a highlighted span of ~5% in the middle when steering), then
    /// generate `n_gen` tokens one at a time. Returns (pp tokens/s, tg tokens/s).
    fn run(&mut self, tokens: &[i32], n_gen: usize, n_batch: usize) -> anyhow::Result<(f64, f64)> {
        self.ctx.clear_kv();
        self.ctx.clear_spans();
        if self.config.steer().is_some_and(|(_, spans)| spans) {
            let start = tokens.len() as i32 / 2;
            let len = (tokens.len() as i32 / 20).max(1);
            self.ctx.set_spans(0, &[(start, start + len)]);
        }
        let mut batch = Batch::new(n_batch, 1);
        let t0 = Instant::now();
        for (c, chunk) in tokens.chunks(n_batch).enumerate() {
            batch.clear();
            for (i, &t) in chunk.iter().enumerate() {
                let pos = c * n_batch + i;
                batch.add(t, pos as i32, &[0], pos + 1 == tokens.len());
            }
            self.ctx.decode(&batch)?;
        }
        let pp = tokens.len() as f64 / t0.elapsed().as_secs_f64();
        let gen = random_tokens(n_gen, self.ctx.model().vocab().n_tokens(), 7);
        let t1 = Instant::now();
        for (i, &t) in gen.iter().enumerate() {
            batch.clear();
            batch.add(t, (tokens.len() + i) as i32, &[0], true);
            self.ctx.decode(&batch)?;
        }
        let tg = n_gen as f64 / t1.elapsed().as_secs_f64();
        Ok((pp, tg))
    }
}

pub fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    let prompts: Vec<usize> = args
        .n_prompt
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<usize>()
                .with_context(|| format!("--n-prompt: `{s}` is not a number"))
        })
        .collect::<anyhow::Result<_>>()?;
    if prompts.iter().any(|&p| p < 20) || args.n_gen == 0 || args.repetitions == 0 {
        bail!("--n-prompt values must be at least 20, --n-gen and --repetitions at least 1");
    }
    let model = super::load_model(&args.model, false)?;
    let n_ctx = (prompts.iter().max().unwrap() + args.n_gen + 16) as u32;
    let n_vocab = model.vocab().n_tokens();

    // Only one context exists at a time: an idle context's ggml worker threads keep spinning for a
    // while after its last computation and would slow down whichever context runs next.
    let mut buffers: Vec<Option<f64>> = vec![None; Config::ALL.len()];
    let mut series: Vec<Series> = Vec::new();
    for &p in &prompts {
        for &config in &Config::ALL {
            series.push(Series {
                config,
                name: config.name(),
                n_prompt: p,
                pp_tok_s: vec![],
                tg_tok_s: vec![],
            });
        }
    }
    for rep in 0..=args.repetitions {
        for (pi, &p) in prompts.iter().enumerate() {
            let tokens = random_tokens(p, n_vocab, 42 + rep as u64);
            // interleave the configurations so that machine noise hits them alike
            for (ci, &config) in Config::ALL.iter().enumerate() {
                let (measured, lines) = capture_logs(|| -> anyhow::Result<(f64, f64)> {
                    let mut b = Bench::new(&model, config, n_ctx, args)?;
                    b.run(&tokens[..tokens.len().min(64)], 4, args.batch_size as usize)?; // warm-up
                    b.run(&tokens, args.n_gen, args.batch_size as usize)
                });
                let (pp, tg) = measured?;
                if let Some(mib) = compute_buffer_mib(&lines) {
                    buffers[ci] = Some(buffers[ci].map_or(mib, |b: f64| b.max(mib)));
                }
                // repetition 0 is the warm-up of the whole machine (caches, page faults)
                if rep > 0 {
                    let s = &mut series[pi * Config::ALL.len() + ci];
                    s.pp_tok_s.push(pp);
                    s.tg_tok_s.push(tg);
                }
            }
        }
        if !args.json {
            eprint!("\rrepetition {rep}/{}", args.repetitions);
        }
    }
    if !args.json {
        eprintln!();
    }

    let rss = peak_rss_mib();
    let mut out = std::io::stdout().lock();
    if args.json {
        let buffers: Vec<_> = Config::ALL
            .iter()
            .zip(&buffers)
            .map(|(c, b)| serde_json::json!({"config": c, "compute_buffer_mib": b}))
            .collect();
        let v = serde_json::json!({
            "model": model.description(),
            "threads": threads(args),
            "n_gen": args.n_gen,
            "repetitions": args.repetitions,
            "series": series,
            "compute_buffers": buffers,
            "peak_rss_mib": rss,
        });
        writeln!(out, "{v}")?;
        return Ok(());
    }
    writeln!(
        out,
        "model: {} · threads {} · {} repetitions (+1 warm-up), configurations interleaved · medians [min–max] tokens/s",
        model.description(),
        threads(args),
        args.repetitions
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "ratios: against stock llama.cpp with the same flash-attention setting (FA off, or FA on)"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| configuration | prompt | pp t/s | pp ratio | tg t/s (at depth) | tg ratio |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|")?;
    for (pi, &p) in prompts.iter().enumerate() {
        let row = &series[pi * Config::ALL.len()..(pi + 1) * Config::ALL.len()];
        for s in row {
            let base = row
                .iter()
                .find(|b| b.config == s.config.reference())
                .expect("every reference configuration is benchmarked");
            let (base_pp, base_tg) = (median(&base.pp_tok_s), median(&base.tg_tok_s));
            let range = |v: &[f64]| {
                let min = v.iter().copied().fold(f64::INFINITY, f64::min);
                let max = v.iter().copied().fold(0.0, f64::max);
                format!("{:.1} [{:.1}–{:.1}]", median(v), min, max)
            };
            writeln!(
                out,
                "| {} | {p} | {} | {:.3} | {} | {:.3} |",
                s.name,
                range(&s.pp_tok_s),
                median(&s.pp_tok_s) / base_pp,
                range(&s.tg_tok_s),
                median(&s.tg_tok_s) / base_tg
            )?;
        }
    }
    writeln!(out)?;
    writeln!(out, "| configuration | compute buffer (MiB, as llama.cpp reports) |")?;
    writeln!(out, "|---|---:|")?;
    for (c, b) in Config::ALL.iter().zip(&buffers) {
        writeln!(
            out,
            "| {} | {} |",
            c.name(),
            b.map_or("n/a".into(), |v| format!("{v:.2}"))
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "peak RSS of the whole run: {}",
        rss.map_or("n/a".into(), |r| format!("{r:.0} MiB"))
    )?;
    Ok(())
}
