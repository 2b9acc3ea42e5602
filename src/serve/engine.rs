//! The one thread that owns the llama.cpp context: slots as parallel sequences of one batch,
//! continuous batching, per-request steering, and prompt-prefix reuse.
//!
//! Each decode runs the graph under one steering configuration (the hook is per context), so
//! slots are grouped by configuration and the groups take turns, one decode each; unsteered
//! slots join every decode, since rows that see no highlighted key are left bit-for-bit alone by
//! the correction. A slot only ever sees its own KV stream, so one request's highlights never
//! reach another's rows — the same isolation `eval`'s parallel sequences rely on.

use super::job::{Event, FinishReason, Job, TokenLogprob, Usage};
use super::metrics::Metrics;
use super::prefix::{reusable_prefix, KvOrigin};
use super::stop::{StopMatcher, StopOutcome};
use super::trace_summary::TraceSummary;
use crate::llama::{Batch, Context, Model, Sampler, SeqId, Token, TokenDecoder};
use crate::spotlight::controller::SpotlightHook;
use crate::spotlight::session::top_k;
use crate::spotlight::trace::TraceSink;
use crate::spotlight::{Phase, SteerConfig};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A sequence of the context and what its KV cache holds.
struct Slot<'m> {
    origin: KvOrigin,
    running: Option<Running<'m>>,
    last_used: u64,
}

/// A request being prefilled or decoded in a slot.
struct Running<'m> {
    job: Job,
    /// Prompt tokens in the KV cache (reused or computed).
    prefilled: usize,
    cached_tokens: usize,
    sampler: Sampler,
    decoder: TokenDecoder<'m>,
    stop: StopMatcher,
    generated: usize,
    /// Sampled and not yet fed back.
    next: Option<Token>,
    logits_index: Option<i32>,
    /// The client went away: finish without sending.
    abandoned: bool,
    /// Span shares of this request's rows, when it asked for them.
    trace: Option<TraceSummary>,
}

impl Running<'_> {
    /// The configuration this request's rows are computed under now. A request whose prompt
    /// and reply are steered differently (`prefill_alpha`/`decode_alpha`) is in its prompt's
    /// phase until the whole prompt is in the cache, then in its reply's; it only joins decodes
    /// of that phase's configuration, so no row runs under the other phase's τ.
    fn steer_now(&self) -> Option<SteerConfig> {
        let config = self.job.steer.as_ref()?;
        if !config.is_phased() {
            return Some(config.clone());
        }
        let prompt_left = self.prefilled < self.job.prompt.tokens.len();
        Some(config.for_phase(if prompt_left { Phase::Prefill } else { Phase::Decode }))
    }
}

pub struct Engine<'m> {
    model: &'m Model,
    ctx: Context<'m>,
    slots: Vec<Slot<'m>>,
    waiting: VecDeque<Job>,
    /// The steering the context's hook runs now.
    current: Option<SteerConfig>,
    round: usize,
    clock: u64,
    batch: Batch,
    sink: Arc<Mutex<TraceSink>>,
    metrics: Arc<Metrics>,
}

impl<'m> Engine<'m> {
    pub fn new(ctx: Context<'m>, metrics: Arc<Metrics>) -> Self {
        let n_seq = ctx.params().n_seq_max.max(1) as usize;
        let n_batch = ctx.params().n_batch as usize;
        let slots = (0..n_seq)
            .map(|_| Slot {
                origin: KvOrigin::default(),
                running: None,
                last_used: 0,
            })
            .collect();
        Self {
            model: ctx.model(),
            batch: Batch::new(n_batch.max(n_seq), 1),
            ctx,
            slots,
            waiting: VecDeque::new(),
            current: None,
            round: 0,
            clock: 0,
            sink: Arc::new(Mutex::new(TraceSink::default())),
            metrics,
        }
    }

    /// Tokens each slot's sequence can hold.
    pub fn n_ctx_slot(&self) -> usize {
        (self.ctx.n_ctx() / self.slots.len() as u32) as usize
    }

    /// Serve jobs until every sender is gone and the work is done.
    pub fn run(mut self, jobs: Receiver<Job>) {
        loop {
            if self.idle() {
                match jobs.recv() {
                    Ok(job) => self.waiting.push_back(job),
                    Err(_) => return,
                }
            }
            while let Ok(job) = jobs.try_recv() {
                self.waiting.push_back(job);
            }
            self.admit();
            if self.slots.iter().any(|s| s.running.is_some()) {
                self.step();
            }
        }
    }

    fn idle(&self) -> bool {
        self.waiting.is_empty() && self.slots.iter().all(|s| s.running.is_none())
    }

    /// Give waiting jobs the free slot whose cache they can reuse most of.
    fn admit(&mut self) {
        while let Some(job) = self.waiting.pop_front() {
            if job.events.is_closed() {
                self.metrics.release();
                continue;
            }
            let steer = job.steer.clone();
            let wanted = KvOrigin {
                tokens: job.prompt.tokens.clone(),
                spans: job.prompt.span_position_ranges(0),
                steer,
            };
            let best = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.running.is_none())
                .map(|(i, s)| {
                    let reuse = if job.cache_prompt {
                        reusable_prefix(&s.origin, &wanted)
                    } else {
                        0
                    };
                    (reuse, std::cmp::Reverse(s.last_used), i)
                })
                .max();
            let Some((reuse, _, index)) = best else {
                self.waiting.push_front(job);
                return;
            };
            let seq = index as SeqId;
            self.ctx.remove_seq(seq, reuse as i32, -1);
            let spans = if wanted.steer.is_some() { &wanted.spans[..] } else { &[] };
            self.ctx.set_spans(seq, spans);
            let vocab = self.model.vocab();
            let slot = &mut self.slots[index];
            slot.origin = KvOrigin {
                tokens: wanted.tokens[..reuse].to_vec(),
                ..wanted
            };
            let _ = job.events.send(Event::Started {
                slot: index,
                cached_tokens: reuse,
            });
            self.metrics.active.fetch_add(1, Ordering::Relaxed);
            self.metrics
                .prompt_tokens_cached
                .fetch_add(reuse as u64, Ordering::Relaxed);
            slot.running = Some(Running {
                sampler: Sampler::new(&job.sampling, vocab.n_tokens()),
                decoder: TokenDecoder::new(vocab, false),
                stop: StopMatcher::new(job.stop.clone()),
                prefilled: reuse,
                cached_tokens: reuse,
                generated: 0,
                next: None,
                logits_index: None,
                abandoned: false,
                trace: job.steer.as_ref().filter(|c| c.trace).map(|_| TraceSummary::default()),
                job,
            });
        }
    }

    /// The steering configuration of the next decode: the steered groups take turns.
    fn pick_group(&mut self) -> Option<SteerConfig> {
        let mut groups: Vec<SteerConfig> = Vec::new();
        for running in self.slots.iter().filter_map(|s| s.running.as_ref()) {
            if let Some(c) = running.steer_now() {
                if !groups.contains(&c) {
                    groups.push(c);
                }
            }
        }
        if groups.is_empty() {
            return None;
        }
        self.round = self.round.wrapping_add(1);
        Some(groups.swap_remove(self.round % groups.len()))
    }

    fn step(&mut self) {
        let group = self.pick_group();
        if self.current != group {
            let hook = group.clone().map(|config| {
                Box::new(SpotlightHook::new(config, self.model.n_layer(), self.sink.clone()))
                    as Box<dyn crate::llama::AttnSteer>
            });
            self.ctx.set_steer(hook);
            self.current = group.clone();
        }
        let joins = |r: &Running| r.job.steer.is_none() || r.steer_now() == group;
        let n_batch = self.ctx.params().n_batch as usize;
        self.batch.clear();
        let mut participants = Vec::new();
        // generated tokens first (one per decoding slot), then as much prompt as fits
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let Some(r) = slot.running.as_mut().filter(|r| joins(r)) else {
                continue;
            };
            if let Some(token) = r.next.take() {
                r.logits_index = Some(self.batch.len() as i32);
                self.batch
                    .add(token, slot.origin.tokens.len() as i32, &[i as SeqId], true);
                slot.origin.tokens.push(token);
                participants.push(i);
            }
        }
        let mut prefill_tokens = 0;
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let Some(r) = slot.running.as_mut().filter(|r| joins(r)) else {
                continue;
            };
            let tokens = &r.job.prompt.tokens;
            let before = r.prefilled;
            while r.prefilled < tokens.len() && self.batch.len() < n_batch {
                let last = r.prefilled + 1 == tokens.len();
                if last {
                    r.logits_index = Some(self.batch.len() as i32);
                }
                self.batch
                    .add(tokens[r.prefilled], r.prefilled as i32, &[i as SeqId], last);
                slot.origin.tokens.push(tokens[r.prefilled]);
                r.prefilled += 1;
            }
            if r.prefilled > before {
                prefill_tokens += r.prefilled - before;
                if !participants.contains(&i) {
                    participants.push(i);
                }
            }
        }
        if self.batch.is_empty() {
            return;
        }
        let start = Instant::now();
        let result = self.ctx.decode(&self.batch);
        let ns = start.elapsed().as_nanos() as u64;
        if prefill_tokens > 0 {
            self.metrics.prefill_ns.fetch_add(ns, Ordering::Relaxed);
        } else {
            self.metrics.generate_ns.fetch_add(ns, Ordering::Relaxed);
            self.metrics
                .generate_steps_tokens
                .fetch_add(self.batch.len() as u64, Ordering::Relaxed);
        }
        if let Err(e) = result {
            for i in participants {
                self.fail(i, &format!("llama.cpp could not compute the batch: {e}"));
            }
            return;
        }
        if self.current.as_ref().is_some_and(|c| c.trace) {
            let traces = self.sink.lock().map(|mut s| s.drain()).unwrap_or_default();
            for &i in &participants {
                if let Some(summary) = self.slots[i].running.as_mut().and_then(|r| r.trace.as_mut()) {
                    for t in &traces {
                        summary.add(t, i as SeqId);
                    }
                }
            }
        }
        for i in participants {
            self.sample(i);
        }
    }

    /// Sample slot `i`'s next token if the last decode computed its logits, and act on it.
    fn sample(&mut self, i: usize) {
        let n_ctx_slot = self.n_ctx_slot();
        if let Some(reason) = self.sample_slot(i, n_ctx_slot) {
            self.finish(i, reason);
        }
    }

    /// Returns why the request ends, if it does.
    fn sample_slot(&mut self, i: usize, n_ctx_slot: usize) -> Option<FinishReason> {
        let vocab = self.model.vocab();
        let slot = &mut self.slots[i];
        let r = slot.running.as_mut()?;
        let idx = r.logits_index.take()?;
        let token = r.sampler.sample(&self.ctx, idx);
        if vocab.is_eog(token) {
            return Some(FinishReason::Stop);
        }
        let logprob = r.job.logprobs.map(|k| logprob_of(self.ctx.logits(idx), token, k));
        r.generated += 1;
        let piece = r.decoder.push(token);
        let (text, stopped) = match r.stop.push(&piece) {
            StopOutcome::Continue(t) => (t, false),
            StopOutcome::Stop(t) => (t, true),
        };
        if r.job.events.send(Event::Text { text, logprob }).is_err() {
            r.abandoned = true;
        }
        // the sampled token would take the next cell of the slot's sequence
        let full = slot.origin.tokens.len() + 1 >= n_ctx_slot;
        if stopped || r.abandoned {
            Some(FinishReason::Stop)
        } else if r.job.max_tokens.is_some_and(|m| r.generated >= m) || full {
            Some(FinishReason::Length)
        } else {
            r.next = Some(token);
            None
        }
    }

    fn finish(&mut self, i: usize, mut reason: FinishReason) {
        let slot = &mut self.slots[i];
        let Some(mut r) = slot.running.take() else { return };
        slot.last_used = {
            self.clock += 1;
            self.clock
        };
        self.metrics.active.fetch_sub(1, Ordering::Relaxed);
        self.metrics.release();
        self.metrics
            .completion_tokens_total
            .fetch_add(r.generated as u64, Ordering::Relaxed);
        if r.abandoned {
            return;
        }
        let rest = r.decoder.finish();
        let tail = match r.stop.push(&rest) {
            StopOutcome::Continue(t) => t + &r.stop.finish(),
            StopOutcome::Stop(t) => {
                reason = FinishReason::Stop;
                t
            }
        };
        if !tail.is_empty() {
            let _ = r.job.events.send(Event::Text {
                text: tail,
                logprob: None,
            });
        }
        let prompt_tokens = r.job.prompt.tokens.len();
        let _ = r.job.events.send(Event::Done {
            finish_reason: reason,
            usage: Usage {
                prompt_tokens,
                completion_tokens: r.generated,
                total_tokens: prompt_tokens + r.generated,
                cached_tokens: r.cached_tokens,
            },
            trace: r.trace.as_ref().map(TraceSummary::to_json),
        });
    }

    /// End slot `i`'s request with an error and forget its cache (its KV may be half written).
    fn fail(&mut self, i: usize, message: &str) {
        let slot = &mut self.slots[i];
        let Some(r) = slot.running.take() else { return };
        self.ctx.remove_seq(i as SeqId, -1, -1);
        slot.origin = KvOrigin::default();
        self.metrics.active.fetch_sub(1, Ordering::Relaxed);
        self.metrics.requests_failed.fetch_add(1, Ordering::Relaxed);
        self.metrics.release();
        let _ = r.job.events.send(Event::Failed {
            message: message.to_string(),
        });
    }
}

/// log p(token) and the k most likely tokens with their log-probabilities, from raw logits.
fn logprob_of(logits: &[f32], token: Token, k: usize) -> TokenLogprob {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_z = max + logits.iter().map(|&l| (l - max).exp()).sum::<f32>().ln();
    TokenLogprob {
        token,
        logprob: logits[token as usize] - log_z,
        top: top_k(logits, k).into_iter().map(|(t, l)| (t, l - log_z)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logprobs_are_log_softmax() {
        let logits = [1.0f32, 2.0, 3.0];
        let lp = logprob_of(&logits, 1, 2);
        let z: f32 = logits.iter().map(|l| l.exp()).sum();
        assert!((lp.logprob - (2.0f32.exp() / z).ln()).abs() < 1e-6);
        assert_eq!(lp.top.iter().map(|t| t.0).collect::<Vec<_>>(), [2, 1]);
        let total: f32 = [0, 1, 2].iter().map(|&t| logprob_of(&logits, t, 0).logprob.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
    }
}
