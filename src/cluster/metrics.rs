//! Cluster metrics: Redis call latency and errors, the breaker, lease sizes, live nodes.
//! Atomics written by the side thread (and a worker on a lease timeout), rendered by
//! the admin API's `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::metrics::registry::{escape, header};

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

    /// A sync tick that could not even connect: an error, not a call (no latency). The
    /// error count left these out, so during an outage it moved once per dropped
    /// connection rather than once per failed tick.
    pub(super) fn connect_failed(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
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
        let seconds = "portico_cluster_redis_seconds";
        header(
            out,
            seconds,
            "histogram",
            "Redis calls, by how long they took.",
        );
        let mut cum = 0;
        for (b, c) in BUCKETS_US.iter().zip(&self.buckets) {
            cum += g(c);
            let _ = writeln!(out, "{seconds}_bucket{{le=\"{}\"}} {cum}", *b as f64 / 1e6);
        }
        let _ = writeln!(
            out,
            "{seconds}_bucket{{le=\"+Inf\"}} {}\n{seconds}_sum {}\n{seconds}_count {}",
            g(&self.calls),
            g(&self.latency_sum_us) as f64 / 1e6,
            g(&self.calls)
        );
        let families: [(&str, &str, &str, u64); 7] = [
            (
                "portico_cluster_redis_errors_total",
                "counter",
                "Failed Redis work: each failed or timed-out lease and sync, and each sync tick that could not connect.",
                g(&self.errors),
            ),
            (
                "portico_cluster_breaker_open",
                "gauge",
                "1 while the Redis circuit breaker is open (on_failure decides), else 0.",
                u64::from(open),
            ),
            (
                "portico_cluster_breaker_opened_total",
                "counter",
                "Times the Redis circuit breaker opened.",
                g(&self.breaker_opened),
            ),
            (
                "portico_cluster_leases_total",
                "counter",
                "Rate-limit token leases taken from Redis.",
                g(&self.leases),
            ),
            (
                "portico_cluster_leased_tokens_total",
                "counter",
                "Tokens granted by those leases.",
                g(&self.leased_tokens),
            ),
            (
                "portico_cluster_lease_timeouts_total",
                "counter",
                "Leases a worker gave up waiting for.",
                g(&self.lease_timeouts),
            ),
            (
                "portico_cluster_nodes",
                "gauge",
                "Live nodes (heartbeat within 3 s, as last seen).",
                u64::from(nodes),
            ),
        ];
        for (name, kind, help, value) in families {
            header(out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        config_info(out, hash, Some(node));
    }
}

/// `portico_config_info`: the hash of the config this node serves, and its cluster
/// node name when it is in one.
pub fn config_info(out: &mut String, hash: &str, node: Option<&str>) {
    let name = "portico_config_info";
    header(
        out,
        name,
        "gauge",
        "The served config's hash (and node name); always 1.",
    );
    // A node name may hold `"` and `\` (any printable ASCII).
    let node = node.map_or_else(String::new, |n| format!(",node=\"{}\"", escape(n)));
    let _ = writeln!(out, "{name}{{hash=\"{}\"{node}}} 1", escape(hash));
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_family_has_help_then_type() {
        // `portico_config_info` and the `portico_cluster_*` families had TYPE only.
        let mut out = String::new();
        super::Metrics::default().render(&mut out, false, 2, "a\"b", "abc");
        super::config_info(&mut out, "abc", None);
        let lines: Vec<&str> = out.lines().collect();
        let mut families = 0;
        for (i, line) in lines.iter().enumerate() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                let help = i.checked_sub(1).map(|j| lines[j]).unwrap_or_default();
                assert!(help.starts_with(&format!("# HELP {name} ")), "{out}");
                families += 1;
            }
        }
        assert_eq!(families, 10, "{out}");
        assert!(out.contains("portico_config_info{hash=\"abc\",node=\"a\\\"b\"} 1\n"));
        assert!(
            out.ends_with("portico_config_info{hash=\"abc\"} 1\n"),
            "{out}"
        );
    }
}
