//! A steerable generation session: one llama.cpp context plus the SpotLight hook.

use super::controller::{SpotlightHook, SteerConfig};
use super::prompt::PreparedPrompt;
use super::trace::{TraceSink, UbatchTrace};
use crate::llama::{Batch, Context, ContextParams, LlamaError, Model, Sampler, SamplingParams, SeqId, Token, TokenDecoder};
use std::sync::{Arc, Mutex};

/// The sequence a single-prompt session uses.
const SEQ: SeqId = 0;

/// Result of one generation.
#[derive(Debug, Clone, Default)]
pub struct Generation {
    pub tokens: Vec<Token>,
    pub text: String,
    /// The five highest logits of the first generated step, as (token, logit).
    pub first_step_top5: Vec<(Token, f32)>,
    /// All logits of the first generated step (for exact comparisons).
    pub first_logits: Vec<f32>,
    /// With forced tokens: the top-5 logits of every step.
    pub step_top5: Vec<Vec<(Token, f32)>>,
    /// Stopped at an end-of-generation token (rather than the token limit).
    pub stopped_at_eog: bool,
    pub prompt_ms: f64,
    pub gen_ms: f64,
    /// One entry per computed ubatch (empty unless tracing).
    pub trace: Vec<UbatchTrace>,
}

/// Generation options.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Maximum number of new tokens; None = until end of generation or a full context.
    pub n_predict: Option<usize>,
    pub sampling: SamplingParams,
    /// Teacher forcing: take these tokens instead of sampling (and record the top-5 logits of
    /// every step in [`Generation::step_top5`]); used to compare against reference outputs.
    pub forced: Option<Vec<Token>>,
}

impl GenerateOptions {
    /// Greedy decoding of at most `n_predict` tokens.
    pub fn greedy(n_predict: usize) -> Self {
        Self { n_predict: Some(n_predict), sampling: SamplingParams { temp: 0.0, ..Default::default() }, forced: None }
    }
}

/// Owns a context with the steering hook installed (when configured).
///
/// ```no_run
/// use spotlight::llama::{init_backend, Model, ModelParams, ChatTemplate, ContextParams, SamplingParams};
/// use spotlight::spotlight::{prompt, Session, SteerConfig, Action, Granularity, LayerSelection};
///
/// init_backend(false);
/// let model = Model::load("model.gguf".as_ref(), &ModelParams::default())?;
/// let template = ChatTemplate::from_model(&model)?;
/// let opts = prompt::HighlightOptions { markup: true, ..Default::default() };
/// let user = prompt::highlight("prompt", "Write a poem. **Use only lowercase letters.**", &opts, true)?;
/// let turns = [prompt::Turn { role: "user".into(), content: user }];
/// let prepared = prompt::prepare(model.vocab(), Some(&template), &turns, true)?;
/// let steer = SteerConfig {
///     action: Action::Steer { alpha: 0.1, granularity: Granularity::Layer },
///     layers: LayerSelection::All,
///     trace: false,
/// };
/// let mut session = Session::new(&model, ContextParams::default(), Some(steer))?;
/// let options = spotlight::spotlight::GenerateOptions::greedy(64);
/// let out = session.generate(&prepared, &options, |piece| print!("{piece}"))?;
/// println!("\n{} tokens", out.tokens.len());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Session<'m> {
    ctx: Context<'m>,
    sink: Arc<Mutex<TraceSink>>,
    steering: bool,
}

impl<'m> Session<'m> {
    /// Create a context. With steering, flash attention must be off (the hook needs the explicit
    /// attention matrix): `params.flash_attn` is overridden to Off.
    pub fn new(model: &'m Model, mut params: ContextParams, steer: Option<SteerConfig>) -> Result<Self, LlamaError> {
        if steer.is_some() {
            params.flash_attn = crate::llama::FlashAttn::Off;
        }
        let mut ctx = Context::new(model, params)?;
        let sink = Arc::new(Mutex::new(TraceSink::default()));
        let steering = steer.is_some();
        if let Some(config) = steer {
            ctx.set_steer(Some(Box::new(SpotlightHook::new(config, model.n_layer(), sink.clone()))));
        }
        Ok(Self { ctx, sink, steering })
    }

    pub fn context(&mut self) -> &mut Context<'m> {
        &mut self.ctx
    }

    /// Generate a reply to a fresh prompt (the KV cache is cleared first).
    pub fn generate(
        &mut self,
        prompt: &PreparedPrompt,
        options: &GenerateOptions,
        mut on_text: impl FnMut(&str),
    ) -> Result<Generation, LlamaError> {
        let n_ctx = self.ctx.n_ctx();
        if prompt.tokens.len() >= n_ctx as usize {
            return Err(LlamaError::PromptTooLong { n_tokens: prompt.tokens.len(), n_ctx });
        }
        self.ctx.clear_kv();
        self.ctx.clear_spans();
        if self.steering {
            self.ctx.set_spans(SEQ, &prompt.span_position_ranges(0));
        }
        self.sink.lock().expect("trace sink").drain();
        self.ctx.reset_perf();

        let model = self.ctx.model();
        let vocab = model.vocab();
        let mut sampler = Sampler::new(&options.sampling, vocab.n_tokens());
        let n_batch = self.ctx.params().n_batch as usize;
        let mut batch = Batch::new(n_batch.max(1), 1);

        // prefill in n_batch chunks; only the last prompt token needs logits
        let n_prompt = prompt.tokens.len();
        for (chunk_index, chunk) in prompt.tokens.chunks(n_batch).enumerate() {
            batch.clear();
            for (k, &tok) in chunk.iter().enumerate() {
                let pos = chunk_index * n_batch + k;
                batch.add(tok, pos as i32, &[SEQ], pos + 1 == n_prompt);
            }
            self.ctx.decode(&batch)?;
        }

        let mut out = Generation::default();
        let mut decoder = TokenDecoder::new(vocab, false);
        let mut pos = n_prompt;
        let mut logits_index = (batch.len() - 1) as i32;
        loop {
            if out.tokens.is_empty() {
                out.first_logits = self.ctx.logits(logits_index).to_vec();
                out.first_step_top5 = top_k(&out.first_logits, 5);
            }
            let token = match &options.forced {
                Some(forced) => {
                    out.step_top5.push(top_k(self.ctx.logits(logits_index), 5));
                    match forced.get(out.tokens.len()) {
                        Some(&t) => t,
                        None => break,
                    }
                }
                None => sampler.sample(&self.ctx, logits_index),
            };
            if vocab.is_eog(token) {
                out.stopped_at_eog = true;
                break;
            }
            out.tokens.push(token);
            let piece = decoder.push(token);
            on_text(&piece);
            out.text.push_str(&piece);
            if options.n_predict.is_some_and(|n| out.tokens.len() >= n) || pos + 1 >= n_ctx as usize {
                break;
            }
            batch.clear();
            batch.add(token, pos as i32, &[SEQ], true);
            self.ctx.decode(&batch)?;
            pos += 1;
            logits_index = 0;
        }
        let rest = decoder.finish();
        on_text(&rest);
        out.text.push_str(&rest);
        let perf = self.ctx.perf();
        out.prompt_ms = perf.prompt_ms;
        out.gen_ms = perf.gen_ms;
        out.trace = self.sink.lock().expect("trace sink").drain();
        Ok(out)
    }
}

/// The k largest logits as (token, logit), best first.
pub fn top_k(logits: &[f32], k: usize) -> Vec<(Token, f32)> {
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    let k = k.min(idx.len());
    idx.select_nth_unstable_by(k.saturating_sub(1), |&a, &b| logits[b].total_cmp(&logits[a]));
    idx.truncate(k);
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    idx.into_iter().map(|i| (i as Token, logits[i])).collect()
}
