//! Counters for `GET /metrics` (Prometheus text format) and for admission control.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub requests_total: AtomicU64,
    pub requests_rejected_busy: AtomicU64,
    pub requests_failed: AtomicU64,
    pub prompt_tokens_total: AtomicU64,
    pub prompt_tokens_cached: AtomicU64,
    pub completion_tokens_total: AtomicU64,
    pub steered_requests_total: AtomicU64,
    /// Requests accepted and not finished (running or queued).
    pub in_flight: AtomicUsize,
    /// Requests with a slot.
    pub active: AtomicUsize,
    /// Nanoseconds spent in decode calls that processed prompt tokens / only generated tokens.
    pub prefill_ns: AtomicU64,
    pub generate_ns: AtomicU64,
    pub generate_steps_tokens: AtomicU64,
}

impl Metrics {
    /// Take a place for a new request unless `capacity` are already in flight.
    pub fn try_admit(&self, capacity: usize) -> bool {
        self.in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < capacity).then_some(n + 1))
            .is_ok()
    }

    pub fn release(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn render(&self, slots: usize) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        let active = self.active.load(Ordering::Relaxed);
        let per_s = |tokens: u64, ns: u64| if ns == 0 { 0.0 } else { tokens as f64 * 1e9 / ns as f64 };
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(out, "# HELP spotlight_{name} {help}");
            let _ = writeln!(out, "# TYPE spotlight_{name} {kind}");
            let _ = writeln!(out, "spotlight_{name} {value}");
        };
        metric(
            "requests_total",
            "counter",
            "Generation requests accepted.",
            get(&self.requests_total).to_string(),
        );
        metric(
            "requests_rejected_total",
            "counter",
            "Requests refused with 503 because slots and queue were full.",
            get(&self.requests_rejected_busy).to_string(),
        );
        metric(
            "requests_failed_total",
            "counter",
            "Requests that ended in a server error.",
            get(&self.requests_failed).to_string(),
        );
        metric(
            "steered_requests_total",
            "counter",
            "Requests steered by SpotLight.",
            get(&self.steered_requests_total).to_string(),
        );
        metric(
            "prompt_tokens_total",
            "counter",
            "Prompt tokens of accepted requests.",
            get(&self.prompt_tokens_total).to_string(),
        );
        metric(
            "prompt_tokens_cached_total",
            "counter",
            "Prompt tokens reused from a slot's KV cache.",
            get(&self.prompt_tokens_cached).to_string(),
        );
        metric(
            "tokens_predicted_total",
            "counter",
            "Generated tokens.",
            get(&self.completion_tokens_total).to_string(),
        );
        metric(
            "requests_processing",
            "gauge",
            "Requests holding a slot.",
            active.to_string(),
        );
        metric(
            "requests_deferred",
            "gauge",
            "Requests waiting for a slot.",
            in_flight.saturating_sub(active).to_string(),
        );
        metric("slots", "gauge", "Parallel sequences.", slots.to_string());
        let prompt_done = get(&self.prompt_tokens_total).saturating_sub(get(&self.prompt_tokens_cached));
        metric(
            "prompt_tokens_seconds",
            "gauge",
            "Average prompt throughput (tokens/s) of decode calls that processed prompt tokens.",
            format!("{:.3}", per_s(prompt_done, get(&self.prefill_ns))),
        );
        metric(
            "predicted_tokens_seconds",
            "gauge",
            "Average generation throughput (tokens/s, all slots) of generation-only decode calls.",
            format!("{:.3}", per_s(get(&self.generate_steps_tokens), get(&self.generate_ns))),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_stops_at_capacity_and_resumes_after_release() {
        let m = Metrics::default();
        assert!(m.try_admit(2) && m.try_admit(2));
        assert!(!m.try_admit(2));
        m.release();
        assert!(m.try_admit(2));
    }

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.requests_total.fetch_add(3, Ordering::Relaxed);
        let text = m.render(4);
        assert!(
            text.contains("# TYPE spotlight_requests_total counter\nspotlight_requests_total 3\n"),
            "{text}"
        );
        assert!(text.contains("spotlight_slots 4"));
    }
}
