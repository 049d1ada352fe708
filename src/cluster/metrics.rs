//! Cluster metrics: Redis call latency and errors, the breaker, lease sizes, live nodes.
//! Atomics written by the side thread (and a worker on a lease timeout), rendered by
//! the admin API's `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::metrics::registry::escape;

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: [u64; 8] = [250, 500, 1000, 2500, 5000, 10_000, 50_000, 250_000];

#[derive(Debug, Default)]
pub struct Metrics {
    calls: AtomicU64,
    errors: AtomicU64,
    latency_sum_us: AtomicU64,
    buckets: [AtomicU64; 8],
    breaker_opened: AtomicU64,
    leases: AtomicU64,
    leased_tokens: AtomicU64,
    lease_timeouts: AtomicU64,
    /// Consecutive failed calls: the breaker opens at [`OPEN_AFTER`].
    pub(super) failing: AtomicU64,
}

/// Consecutive failures that open the breaker.
pub const OPEN_AFTER: u64 = 3;

impl Metrics {
    pub(super) fn call(&self, took: Duration, ok: bool) {
        let us = took.as_micros() as u64;
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
        if let Some(i) = BUCKETS_US.iter().position(|b| us <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        if ok {
            self.failing.store(0, Ordering::Relaxed);
        } else {
            self.errors.fetch_add(1, Ordering::Relaxed);
            self.failing.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn lease(&self, granted: u32) {
        self.leases.fetch_add(1, Ordering::Relaxed);
        self.leased_tokens
            .fetch_add(u64::from(granted), Ordering::Relaxed);
    }

    pub(super) fn breaker_opened(&self) {
        self.breaker_opened.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a lease a worker gave up on; returns the failures in a row.
    pub(super) fn lease_timeout(&self) -> u64 {
        self.lease_timeouts.fetch_add(1, Ordering::Relaxed);
        self.failing.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Prometheus text for `/metrics`.
    pub fn render(&self, out: &mut String, open: bool, nodes: u32, node: &str, hash: &str) {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(out, "# TYPE portico_cluster_redis_seconds histogram");
        let mut cum = 0;
        for (b, c) in BUCKETS_US.iter().zip(&self.buckets) {
            cum += g(c);
            let _ = writeln!(
                out,
                "portico_cluster_redis_seconds_bucket{{le=\"{}\"}} {cum}",
                *b as f64 / 1e6
            );
        }
        let _ = writeln!(
            out,
            "portico_cluster_redis_seconds_bucket{{le=\"+Inf\"}} {}\nportico_cluster_redis_seconds_sum {}\nportico_cluster_redis_seconds_count {}",
            g(&self.calls),
            g(&self.latency_sum_us) as f64 / 1e6,
            g(&self.calls)
        );
        let _ = writeln!(
            out,
            "# TYPE portico_cluster_redis_errors_total counter\nportico_cluster_redis_errors_total {}",
            g(&self.errors)
        );
        let _ = writeln!(
            out,
            "# TYPE portico_cluster_breaker_open gauge\nportico_cluster_breaker_open {}\n# TYPE portico_cluster_breaker_opened_total counter\nportico_cluster_breaker_opened_total {}",
            u8::from(open),
            g(&self.breaker_opened)
        );
        let _ = writeln!(
            out,
            "# TYPE portico_cluster_leases_total counter\nportico_cluster_leases_total {}\n# TYPE portico_cluster_leased_tokens_total counter\nportico_cluster_leased_tokens_total {}\n# TYPE portico_cluster_lease_timeouts_total counter\nportico_cluster_lease_timeouts_total {}",
            g(&self.leases),
            g(&self.leased_tokens),
            g(&self.lease_timeouts)
        );
        // A node name may hold `"` and `\` (any printable ASCII).
        let _ = writeln!(
            out,
            "# TYPE portico_cluster_nodes gauge\nportico_cluster_nodes {nodes}\n# TYPE portico_config_info gauge\nportico_config_info{{hash=\"{}\",node=\"{}\"}} 1",
            escape(hash),
            escape(node)
        );
    }
}
