//! A steerable generation session: one llama.cpp context plus the SpotLight hook.

use super::config::{Phase, SteerConfig};
use super::controller::SpotlightHook;
use super::prompt::PreparedPrompt;
use super::trace::{TraceSink, UbatchTrace};
use crate::llama::{
    AttnSteer, Batch, Context, ContextParams, LlamaError, Model, Sampler, SamplingParams, SeqId, Token, TokenDecoder,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Result of one generation.
#[derive(Debug, Clone, Default)]
pub struct Generation {
    pub tokens: Vec<Token>,
    pub text: String,
    /// The five highest logits of the first generated step, as (token, logit).
    pub first_step_top5: Vec<(Token, f32)>,
    /// Tokens of this sequence in the KV cache afterwards (prompt + decoded replies).
    pub kv_len: usize,
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
    /// Teacher forcing, one token list per sequence: take these tokens instead of sampling (and
    /// record the top-5 logits of every step in [`Generation::step_top5`]); used to compare
    /// against reference outputs.
    pub forced: Option<Vec<Vec<Token>>>,
    /// Set from elsewhere (e.g. a Ctrl-C handler) to stop generating after the current token.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl GenerateOptions {
    /// Greedy decoding of at most `n_predict` tokens.
    pub fn greedy(n_predict: usize) -> Self {
        Self {
            n_predict: Some(n_predict),
            sampling: SamplingParams {
                temp: 0.0,
                ..Default::default()
            },
            forced: None,
            cancel: None,
        }
    }
}

/// Owns a context with the steering hook installed (when configured).
///
/// ```no_run
/// use spotlight::llama::{init_backend, Model, ModelParams, ChatTemplate, ContextParams, SamplingParams};
/// use spotlight::spotlight::{prompt, Alpha, Granularity, LayerSelection, Session, SteerConfig};
///
/// init_backend(false);
/// let model = Model::load("model.gguf".as_ref(), &ModelParams::default())?;
/// let template = ChatTemplate::from_model(&model)?;
/// let opts = prompt::HighlightOptions { markup: true, ..Default::default() };
/// let user = prompt::highlight("prompt", "Write a poem. **Use only lowercase letters.**", &opts, true)?;
/// let turns = [prompt::Turn { role: "user".into(), content: user }];
/// let prepared = prompt::prepare(model.vocab(), Some(&template), &turns, true)?;
/// let alpha: Alpha = "0.1".parse()?; // τ in [0, 1), checked where it is read
/// let steer = SteerConfig::spotlight(alpha, Granularity::Layer, LayerSelection::All);
/// let mut session = Session::new(&model, ContextParams::default(), Some(steer))?;
/// let options = spotlight::spotlight::GenerateOptions::greedy(64);
/// let out = session.generate(&prepared, &options, |piece| print!("{piece}"))?;
/// println!("\n{} tokens", out.tokens.len());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Session<'m> {
    ctx: Context<'m>,
    sink: Arc<Mutex<TraceSink>>,
    /// The steering configuration (None: no hook, the stock graph).
    steer: Option<SteerConfig>,
    /// The phase whose action the installed hook runs (matters only for a phased config).
    phase: Phase,
    /// Called with (prompt tokens processed, total) after each prefill batch.
    prefill_progress: Option<Box<dyn FnMut(usize, usize) + 'm>>,
}

impl<'m> Session<'m> {
    /// Create a context. With steering, flash attention `Auto` means Off: the non-flash path
    /// steers at less cost on the CPU (see docs/results/flash-attn-steering-2026-12-02.md);
    /// `On` steers on the flash path.
    ///
    /// # Panics
    /// If `steer` fails [`SteerConfig::check`] (a hand-written τ outside [0, 1)).
    pub fn new(model: &'m Model, mut params: ContextParams, steer: Option<SteerConfig>) -> Result<Self, LlamaError> {
        if steer.is_some() && params.flash_attn == crate::llama::FlashAttn::Auto {
            params.flash_attn = crate::llama::FlashAttn::Off;
        }
        let ctx = Context::new(model, params)?;
        let mut session = Self {
            ctx,
            sink: Arc::new(Mutex::new(TraceSink::default())),
            steer: None,
            phase: Phase::Prefill,
            prefill_progress: None,
        };
        session.set_steer(steer);
        Ok(session)
    }

    /// Replace the steering configuration (None = no steering). The KV cache is kept: tokens
    /// computed so far stay as they were; new tokens use the new setting.
    ///
    /// # Panics
    /// As [`Session::new`], for a configuration that fails [`SteerConfig::check`].
    pub fn set_steer(&mut self, steer: Option<SteerConfig>) {
        self.steer = steer;
        self.phase = Phase::Prefill;
        self.install_hook();
    }

    /// Install the hook for the current phase (or none).
    fn install_hook(&mut self) {
        let n_layer = self.ctx.model().n_layer();
        let hook = self.steer.as_ref().map(|c| {
            Box::new(SpotlightHook::new(c.for_phase(self.phase), n_layer, self.sink.clone())) as Box<dyn AttnSteer>
        });
        self.ctx.set_steer(hook);
    }

    /// Before a decode of `phase` rows: swap the hook where the configuration steers prompt and
    /// generated rows differently (a new hook invalidates the graph, so no graph built for the
    /// other phase is reused).
    fn enter_phase(&mut self, phase: Phase) {
        if self.phase != phase && self.phase_split() {
            self.phase = phase;
            self.install_hook();
        }
    }

    /// Prompt and generated rows need separate decodes (a phased configuration).
    fn phase_split(&self) -> bool {
        self.steer.as_ref().is_some_and(SteerConfig::is_phased)
    }

    fn steering(&self) -> bool {
        self.steer.is_some()
    }

    /// Report prompt-processing progress (e.g. to draw a progress bar for long prompts).
    pub fn set_prefill_progress(&mut self, progress: Option<Box<dyn FnMut(usize, usize) + 'm>>) {
        self.prefill_progress = progress;
    }

    pub fn model(&self) -> &'m Model {
        self.ctx.model()
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
        let (mut outs, trace) =
            self.generate_parallel(std::slice::from_ref(prompt), options, |_, piece| on_text(piece))?;
        let mut out = outs.pop().expect("one generation per prompt");
        out.trace = trace;
        Ok(out)
    }

    /// Generate replies to several prompts at once, each in its own sequence of one batch with its
    /// own highlighted spans. `on_text(i, piece)` streams the text of prompt i. Returns the
    /// generations and the traces of all computed ubatches (empty unless tracing).
    pub fn generate_parallel(
        &mut self,
        prompts: &[PreparedPrompt],
        options: &GenerateOptions,
        on_text: impl FnMut(usize, &str),
    ) -> Result<(Vec<Generation>, Vec<UbatchTrace>), LlamaError> {
        self.ctx.clear_kv();
        self.generate_from(prompts, &vec![0; prompts.len()], options, on_text)
    }

    /// Continue sequence 0: its KV cache holds `prompt.tokens[..cached]` from earlier calls (a
    /// chat history); positions from `cached` on are dropped and recomputed, the rest is reused.
    /// [`Generation::kv_len`] tells how many tokens the cache holds afterwards.
    pub fn generate_continuing(
        &mut self,
        prompt: &PreparedPrompt,
        cached: usize,
        options: &GenerateOptions,
        mut on_text: impl FnMut(&str),
    ) -> Result<Generation, LlamaError> {
        let cached = cached.min(prompt.tokens.len().saturating_sub(1));
        self.ctx.remove_seq(0, cached as i32, -1);
        let (mut outs, trace) = self.generate_from(std::slice::from_ref(prompt), &[cached], options, |_, piece| {
            on_text(piece)
        })?;
        let mut out = outs.pop().expect("one generation per prompt");
        out.trace = trace;
        Ok(out)
    }

    fn generate_from(
        &mut self,
        prompts: &[PreparedPrompt],
        cached: &[usize],
        options: &GenerateOptions,
        mut on_text: impl FnMut(usize, &str),
    ) -> Result<(Vec<Generation>, Vec<UbatchTrace>), LlamaError> {
        let n_ctx = self.ctx.n_ctx();
        let n_seq = self.ctx.params().n_seq_max as usize;
        assert!(
            prompts.len() <= n_seq,
            "{} prompts but the context has {n_seq} sequences",
            prompts.len()
        );
        // every prompt must fit its sequence's share of the context, with room for one token
        let n_ctx_seq = n_ctx / n_seq.max(1) as u32;
        if let Some(p) = prompts.iter().find(|p| p.tokens.len() >= n_ctx_seq as usize) {
            return Err(LlamaError::PromptTooLong {
                n_tokens: p.tokens.len(),
                n_ctx: n_ctx_seq,
            });
        }
        self.ctx.clear_spans();
        if self.steering() {
            for (seq, prompt) in prompts.iter().enumerate() {
                self.ctx.set_spans(seq as SeqId, &prompt.span_position_ranges(0));
            }
        }
        self.sink.lock().expect("trace sink").drain();
        self.ctx.reset_perf();

        let mut seqs: Vec<SeqState<'m>> = prompts.iter().map(|p| self.new_seq_state(p, options)).collect();
        let n_batch = self.ctx.params().n_batch as usize;
        let mut batch = Batch::new(n_batch.max(prompts.len()), 1);

        // prefill: all prompts share the batch; a prompt's last token asks for logits, and the
        // sequence samples its first token right after the decode that computed them
        let mut pending: Vec<(Token, i32, usize, bool)> = Vec::new();
        for (seq, prompt) in prompts.iter().enumerate() {
            for (pos, &tok) in prompt.tokens.iter().enumerate().skip(cached[seq]) {
                pending.push((tok, pos as i32, seq, pos + 1 == prompt.tokens.len()));
            }
        }
        let (n_pending, mut n_done) = (pending.len(), 0);
        self.enter_phase(Phase::Prefill);
        for chunk in pending.chunks(n_batch) {
            batch.clear();
            for (i, &(tok, pos, seq, logits)) in chunk.iter().enumerate() {
                batch.add(tok, pos, &[seq as SeqId], logits);
                if logits {
                    seqs[seq].logits_index = Some(i as i32);
                }
            }
            self.ctx.decode(&batch)?;
            n_done += chunk.len();
            if let Some(progress) = self.prefill_progress.as_mut() {
                progress(n_done, n_pending);
            }
            self.sample_ready(&mut seqs, options, &mut on_text);
        }

        // decode: one token per unfinished sequence per batch
        self.enter_phase(Phase::Decode);
        while seqs.iter().any(|s| !s.done) {
            batch.clear();
            for (seq, st) in seqs.iter_mut().enumerate().filter(|(_, s)| !s.done) {
                let token = *st
                    .out
                    .tokens
                    .last()
                    .expect("a sequence that is not done has sampled a token");
                st.logits_index = Some(batch.len() as i32);
                batch.add(token, st.pos as i32, &[seq as SeqId], true);
                st.pos += 1;
            }
            self.ctx.decode(&batch)?;
            self.sample_ready(&mut seqs, options, &mut on_text);
        }

        let perf = self.ctx.perf();
        let outs = seqs
            .into_iter()
            .enumerate()
            .map(|(i, mut st)| {
                let rest = st.decoder.finish();
                on_text(i, &rest);
                st.out.text.push_str(&rest);
                st.out.kv_len = st.pos;
                st.out.prompt_ms = perf.prompt_ms;
                st.out.gen_ms = perf.gen_ms;
                st.out
            })
            .collect();
        let trace = self.sink.lock().expect("trace sink").drain();
        Ok((outs, trace))
    }

    /// Generate replies to many prompts with up to `n_seq_max` of them in flight (continuous
    /// batching): when a sequence finishes, its KV stream is cleared and the next queued prompt
    /// starts in the same batch as the other sequences' next tokens, so a long reply does not keep
    /// the other slots idle. Each prompt has its own spans, as in [`Session::generate_parallel`].
    /// `on_done(i, generation)` is called for prompt i as soon as it finishes (completion order),
    /// e.g. to save it; an error from it stops the run.
    pub fn generate_queue<E: From<LlamaError>>(
        &mut self,
        prompts: &[PreparedPrompt],
        options: &GenerateOptions,
        mut on_done: impl FnMut(usize, Generation) -> Result<(), E>,
    ) -> Result<(), E> {
        let n_seq = self.ctx.params().n_seq_max.max(1) as usize;
        let n_ctx_seq = self.ctx.n_ctx() / n_seq as u32;
        if let Some(p) = prompts.iter().find(|p| p.tokens.len() >= n_ctx_seq as usize) {
            return Err(LlamaError::PromptTooLong {
                n_tokens: p.tokens.len(),
                n_ctx: n_ctx_seq,
            }
            .into());
        }
        self.ctx.clear_kv();
        self.ctx.clear_spans();
        let n_batch = self.ctx.params().n_batch as usize;
        let mut batch = Batch::new(n_batch.max(n_seq), 1);
        let mut slots: Vec<Option<QueuedSeq<'m>>> = (0..n_seq).map(|_| None).collect();
        let mut queue = 0..prompts.len();
        loop {
            // fill free slots with queued prompts
            for (seq, slot) in slots.iter_mut().enumerate().filter(|(_, s)| s.is_none()) {
                let Some(index) = queue.next() else { break };
                self.ctx.remove_seq(seq as SeqId, -1, -1);
                if self.steering() {
                    self.ctx
                        .set_spans(seq as SeqId, &prompts[index].span_position_ranges(0));
                }
                *slot = Some(QueuedSeq {
                    index,
                    prefilled: 0,
                    state: self.new_seq_state(&prompts[index], options),
                });
            }
            if slots.iter().all(Option::is_none) {
                return Ok(());
            }
            // one batch: the next token of every decoding sequence, then as many prompt tokens
            // of the prefilling ones as fit; a phased configuration computes the two kinds of
            // rows in separate decodes, each with its phase's hook
            batch.clear();
            for (seq, q) in slots.iter_mut().enumerate() {
                let Some(q) = q.as_mut().filter(|q| q.prefilled == prompts[q.index].tokens.len()) else {
                    continue;
                };
                let st = &mut q.state;
                let token = *st.out.tokens.last().expect("a decoding sequence has sampled a token");
                st.logits_index = Some(batch.len() as i32);
                batch.add(token, st.pos as i32, &[seq as SeqId], true);
                st.pos += 1;
            }
            let prefilling = slots
                .iter()
                .flatten()
                .any(|q| q.prefilled < prompts[q.index].tokens.len());
            if self.phase_split() && !batch.is_empty() {
                self.enter_phase(Phase::Decode);
                self.decode_queued(&batch, &mut slots, options, &mut on_done)?;
                batch.clear();
            }
            for (seq, q) in slots.iter_mut().enumerate() {
                let Some(q) = q.as_mut() else { continue };
                let tokens = &prompts[q.index].tokens;
                while q.prefilled < tokens.len() && batch.len() < n_batch {
                    let last = q.prefilled + 1 == tokens.len();
                    if last {
                        q.state.logits_index = Some(batch.len() as i32);
                    }
                    batch.add(tokens[q.prefilled], q.prefilled as i32, &[seq as SeqId], last);
                    q.prefilled += 1;
                }
            }
            if !batch.is_empty() {
                if prefilling {
                    self.enter_phase(Phase::Prefill);
                }
                self.decode_queued(&batch, &mut slots, options, &mut on_done)?;
            }
        }
    }

    /// Decode one batch of [`Session::generate_queue`], sample the sequences it computed logits
    /// for, and hand finished ones to `on_done` (freeing their slots).
    fn decode_queued<E: From<LlamaError>>(
        &mut self,
        batch: &Batch,
        slots: &mut [Option<QueuedSeq<'m>>],
        options: &GenerateOptions,
        on_done: &mut impl FnMut(usize, Generation) -> Result<(), E>,
    ) -> Result<(), E> {
        self.ctx.decode(batch)?;
        for slot in slots.iter_mut() {
            let Some(q) = slot.as_mut() else { continue };
            let forced = options
                .forced
                .as_ref()
                .map(|f| f.get(q.index).map_or(&[][..], |v| v.as_slice()));
            self.sample_one(&mut q.state, forced, options, &mut |_| {});
            if q.state.done {
                let q = slot.take().expect("checked above");
                let mut st = q.state;
                let rest = st.decoder.finish();
                st.out.text.push_str(&rest);
                st.out.kv_len = st.pos;
                on_done(q.index, st.out)?;
            }
        }
        Ok(())
    }

    fn new_seq_state(&self, prompt: &PreparedPrompt, options: &GenerateOptions) -> SeqState<'m> {
        let vocab = self.ctx.model().vocab();
        SeqState {
            out: Generation::default(),
            sampler: Sampler::new(&options.sampling, vocab.n_tokens()),
            decoder: TokenDecoder::new(vocab, false),
            pos: prompt.tokens.len(),
            logits_index: None,
            done: false,
        }
    }

    /// Sample the next token of every sequence whose logits the last decode computed.
    fn sample_ready(
        &self,
        seqs: &mut [SeqState<'m>],
        options: &GenerateOptions,
        on_text: &mut impl FnMut(usize, &str),
    ) {
        for (seq, st) in seqs.iter_mut().enumerate() {
            let forced = options
                .forced
                .as_ref()
                .map(|f| f.get(seq).map_or(&[][..], |v| v.as_slice()));
            self.sample_one(st, forced, options, &mut |piece| on_text(seq, piece));
        }
    }

    /// Sample the next token of one sequence if the last decode computed its logits; with
    /// `forced`, take the next forced token instead (and stop when they run out).
    fn sample_one(
        &self,
        st: &mut SeqState<'m>,
        forced: Option<&[Token]>,
        options: &GenerateOptions,
        on_text: &mut impl FnMut(&str),
    ) {
        let Some(idx) = st.logits_index.take() else { return };
        // parallel sequences each have their own KV stream of n_ctx / n_seq_max cells
        let n_ctx = (self.ctx.n_ctx() / self.ctx.params().n_seq_max.max(1)) as usize;
        let vocab = self.ctx.model().vocab();
        let out = &mut st.out;
        if out.tokens.is_empty() {
            out.first_logits = self.ctx.logits(idx).to_vec();
            out.first_step_top5 = top_k(&out.first_logits, 5);
        }
        let token = match forced {
            Some(forced) => {
                out.step_top5.push(top_k(self.ctx.logits(idx), 5));
                match forced.get(out.tokens.len()) {
                    Some(&t) => t,
                    None => {
                        st.done = true;
                        return;
                    }
                }
            }
            None => st.sampler.sample(&self.ctx, idx),
        };
        if vocab.is_eog(token) {
            out.stopped_at_eog = true;
            st.done = true;
            return;
        }
        out.tokens.push(token);
        let piece = st.decoder.push(token);
        on_text(&piece);
        out.text.push_str(&piece);
        let cancelled = options.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed));
        if cancelled || options.n_predict.is_some_and(|n| out.tokens.len() >= n) || st.pos + 1 >= n_ctx {
            st.done = true;
        }
    }
}

/// A prompt of [`Session::generate_queue`] occupying a sequence slot.
struct QueuedSeq<'m> {
    /// Index into the prompt list.
    index: usize,
    /// Prompt tokens already in a batch.
    prefilled: usize,
    state: SeqState<'m>,
}

/// Per-sequence state of a generation.
struct SeqState<'m> {
    out: Generation,
    sampler: Sampler,
    decoder: TokenDecoder<'m>,
    /// Position of the next token to decode.
    pos: usize,
    /// Batch index of this sequence's logits in the last decode, if it asked for them.
    logits_index: Option<i32>,
    done: bool,
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
