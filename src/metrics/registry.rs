//! The one place that knows every worker's cells. Workers ask it for their cells when a
//! config generation is built (never per request); the admin listener asks it to render
//! the Prometheus text format. Cells are kept for the life of the process, so counters of
//! a route removed by a reload stay put instead of going backwards. Gauges are not
//! counters: a gauge of something a reload removed (a health-checked target, a cache) is
//! shown only while a live generation still holds it, so its last value does not stay
//! forever (a target's 0 kept an alert firing after the target was removed).

// Cold path: locked when a config generation is built and when /metrics is scraped, never per request.
#![allow(clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::cells::{
    read, slot_label, CacheCells, RouteCells, UpstreamCells, WorkerCells, BUCKETS, STATUS_SLOTS,
};
use super::names;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteLabels {
    pub api: String,
    pub stage: String,
    pub route: String,
}

#[derive(Default)]
struct Inner {
    driver: &'static str,
    workers: Vec<Arc<WorkerCells>>,
    routes: BTreeMap<RouteLabels, Vec<Option<Arc<RouteCells>>>>,
    upstreams: BTreeMap<String, Vec<Option<Arc<UpstreamCells>>>>,
    /// (api, stage) → per-worker cells of its response cache.
    caches: BTreeMap<(String, String), Vec<Option<Arc<CacheCells>>>>,
    /// (api, stage) → per-worker open connections of a WebSocket API's stage.
    ws_stages: BTreeMap<(String, String), Vec<Option<Arc<AtomicU64>>>>,
    /// (upstream, target) → 1 while its health checks pass, 0 while it is out; held by
    /// the target's probe, so it goes with the probe (target or `health:` removed).
    target_up: BTreeMap<(String, String), Weak<AtomicU64>>,
}

#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

fn slot<T: Default>(per_worker: &mut Vec<Option<Arc<T>>>, worker: usize) -> Arc<T> {
    if per_worker.len() <= worker {
        per_worker.resize_with(worker + 1, || None);
    }
    per_worker[worker]
        .get_or_insert_with(Default::default)
        .clone()
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_driver(&self, driver: &'static str) {
        self.lock().driver = driver;
    }

    pub fn worker(&self, worker: usize) -> Arc<WorkerCells> {
        let mut inner = self.lock();
        while inner.workers.len() <= worker {
            inner.workers.push(Arc::default());
        }
        inner.workers[worker].clone()
    }

    pub fn route(&self, worker: usize, labels: RouteLabels) -> Arc<RouteCells> {
        slot(self.lock().routes.entry(labels).or_default(), worker)
    }

    pub fn upstream(&self, worker: usize, name: &str) -> Arc<UpstreamCells> {
        slot(
            self.lock().upstreams.entry(name.to_string()).or_default(),
            worker,
        )
    }

    /// The gauge of one health-checked target (1 = up), written by the health checker.
    pub fn target_up(&self, upstream: &str, target: &str) -> Arc<AtomicU64> {
        let mut inner = self.lock();
        inner.target_up.retain(|_, w| w.strong_count() > 0);
        let w = inner
            .target_up
            .entry((upstream.to_string(), target.to_string()))
            .or_default();
        w.upgrade().unwrap_or_else(|| {
            let up = Arc::new(AtomicU64::new(1));
            *w = Arc::downgrade(&up);
            up
        })
    }

    pub fn cache(&self, worker: usize, api: &str, stage: &str) -> Arc<CacheCells> {
        let key = (api.to_string(), stage.to_string());
        slot(self.lock().caches.entry(key).or_default(), worker)
    }

    /// This worker's count of open connections of a WebSocket API's stage (the same cell
    /// for every generation, so a connection that outlives a reload is counted down on it).
    pub fn ws_stage(&self, worker: usize, api: &str, stage: &str) -> Arc<AtomicU64> {
        let key = (api.to_string(), stage.to_string());
        slot(self.lock().ws_stages.entry(key).or_default(), worker)
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::with_capacity(4096);
        render_requests(&mut out, &inner);
        render_histogram(
            &mut out,
            &inner,
            names::REQUEST_DURATION,
            "Time from the request head to the last response byte.",
            |c| &c.duration,
        );
        render_histogram(
            &mut out,
            &inner,
            names::INTEGRATION_DURATION,
            "Time spent waiting for the integration (upstream or function).",
            |c| &c.integration,
        );
        render_throttled(&mut out, &inner);
        render_upstreams(&mut out, &inner);
        render_caches(&mut out, &inner);
        crate::auth::metrics::render(&mut out);
        header(
            &mut out,
            names::CONNECTIONS_ACTIVE,
            "gauge",
            "Open client connections per worker.",
        );
        for (i, w) in inner.workers.iter().enumerate() {
            let _ = writeln!(
                out,
                "{}{{worker=\"{i}\"}} {}",
                names::CONNECTIONS_ACTIVE,
                read(&w.connections_active)
            );
        }
        header(
            &mut out,
            names::WORKERS,
            "gauge",
            "Worker threads, by IO driver.",
        );
        let _ = writeln!(
            out,
            "{}{{driver=\"{}\"}} {}",
            names::WORKERS,
            inner.driver,
            inner.workers.len()
        );
        header(
            &mut out,
            names::ACCESS_LOG_DROPPED_TOTAL,
            "counter",
            "Access-log lines dropped: the writer fell behind, or could not open or write the file.",
        );
        let dropped: u64 = inner
            .workers
            .iter()
            .map(|w| read(&w.access_log_dropped))
            .sum::<u64>()
            + super::access_log::lost_lines();
        let _ = writeln!(out, "{} {dropped}", names::ACCESS_LOG_DROPPED_TOTAL);
        header(
            &mut out,
            names::TLS_HANDSHAKE_FAILURES_TOTAL,
            "counter",
            "TLS handshakes that failed or timed out.",
        );
        let failed: u64 = inner
            .workers
            .iter()
            .map(|w| read(&w.tls_handshake_failures))
            .sum();
        let _ = writeln!(out, "{} {failed}", names::TLS_HANDSHAKE_FAILURES_TOTAL);
        render_tunnels(&mut out, &inner);
        render_websockets(&mut out, &inner);
        out
    }
}

fn render_tunnels(out: &mut String, inner: &Inner) {
    let total = |f: fn(&WorkerCells) -> &AtomicU64| -> u64 {
        inner.workers.iter().map(|w| read(f(w))).sum()
    };
    header(
        out,
        names::TUNNELS_ACTIVE,
        "gauge",
        "Upgraded (101) connections carrying bytes between a client and a backend.",
    );
    let _ = writeln!(
        out,
        "{} {}",
        names::TUNNELS_ACTIVE,
        total(|w| &w.tunnels_active)
    );
    header(
        out,
        names::TUNNEL_BYTES_TOTAL,
        "counter",
        "Bytes carried by upgraded connections, by direction.",
    );
    for (direction, n) in [
        ("to_upstream", total(|w| &w.tunnel_bytes_up)),
        ("to_client", total(|w| &w.tunnel_bytes_down)),
    ] {
        let _ = writeln!(
            out,
            "{}{{direction=\"{direction}\"}} {n}",
            names::TUNNEL_BYTES_TOTAL
        );
    }
}

fn render_websockets(out: &mut String, inner: &Inner) {
    use super::cells::{WS_CLOSE_CODES, WS_MANAGEMENT_RESULTS};
    let total = |f: &dyn Fn(&WorkerCells) -> &AtomicU64| -> u64 {
        inner.workers.iter().map(|w| read(f(w))).sum()
    };
    header(
        out,
        names::WEBSOCKET_CONNECTIONS_ACTIVE,
        "gauge",
        "Open connections of WebSocket APIs.",
    );
    let open = total(&|w| &w.ws_connections_active);
    let _ = writeln!(out, "{} {open}", names::WEBSOCKET_CONNECTIONS_ACTIVE);
    header(
        out,
        names::WEBSOCKET_CONNECTIONS,
        "gauge",
        "Open connections of WebSocket APIs, by API and stage.",
    );
    for ((api, stage), cells) in &inner.ws_stages {
        let n: u64 = cells.iter().flatten().map(|c| read(c)).sum();
        let _ = writeln!(
            out,
            "{}{{api=\"{}\",stage=\"{}\"}} {n}",
            names::WEBSOCKET_CONNECTIONS,
            escape(api),
            escape(stage)
        );
    }
    header(
        out,
        names::WEBSOCKET_MESSAGES_TOTAL,
        "counter",
        "Data messages of WebSocket APIs, from clients (in) and to them (out).",
    );
    let inn = total(&|w| &w.ws_messages_in);
    let outn = total(&|w| &w.ws_messages_out);
    let name = names::WEBSOCKET_MESSAGES_TOTAL;
    let _ = writeln!(
        out,
        "{name}{{direction=\"in\"}} {inn}\n{name}{{direction=\"out\"}} {outn}"
    );
    header(
        out,
        names::WEBSOCKET_CLOSES_TOTAL,
        "counter",
        "Closed WebSocket API connections by close code (1006: no close frame).",
    );
    for slot in 0..=WS_CLOSE_CODES.len() {
        let label = WS_CLOSE_CODES
            .get(slot)
            .map_or("other".to_string(), u16::to_string);
        let n = total(&|w| &w.ws_closes[slot]);
        let _ = writeln!(
            out,
            "{}{{code=\"{label}\"}} {n}",
            names::WEBSOCKET_CLOSES_TOTAL
        );
    }
    header(
        out,
        names::WEBSOCKET_MANAGEMENT_TOTAL,
        "counter",
        "@connections calls on stage endpoints, by result.",
    );
    for (slot, (_, label)) in WS_MANAGEMENT_RESULTS.iter().enumerate() {
        let n = total(&|w| &w.ws_management[slot]);
        let _ = writeln!(
            out,
            "{}{{result=\"{label}\"}} {n}",
            names::WEBSOCKET_MANAGEMENT_TOTAL
        );
    }
}

/// A family's `# HELP` and `# TYPE` lines (every family has both).
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value in the Prometheus text format: `\`, `"` and newline escaped. Every
/// label built from config or a request (API, stage, route, upstream, authorizer, issuer,
/// cluster node) goes through it; an unescaped `"` ends the value and the scrape fails.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn route_labels(l: &RouteLabels) -> String {
    format!(
        "api=\"{}\",stage=\"{}\",route=\"{}\"",
        escape(&l.api),
        escape(&l.stage),
        escape(&l.route)
    )
}

fn sum(cells: &[Option<Arc<RouteCells>>], f: impl Fn(&RouteCells) -> u64) -> u64 {
    cells.iter().flatten().map(|c| f(c)).sum()
}

fn render_requests(out: &mut String, inner: &Inner) {
    header(
        out,
        names::REQUESTS_TOTAL,
        "counter",
        "Requests answered, by route and status.",
    );
    for (labels, cells) in &inner.routes {
        let l = route_labels(labels);
        for s in 0..STATUS_SLOTS {
            let n = sum(cells, |c| read(&c.requests[s]));
            if n > 0 {
                let _ = writeln!(
                    out,
                    "{}{{{l},status=\"{}\"}} {n}",
                    names::REQUESTS_TOTAL,
                    slot_label(s)
                );
            }
        }
    }
}

fn render_histogram(
    out: &mut String,
    inner: &Inner,
    name: &str,
    help: &str,
    pick: impl Fn(&RouteCells) -> &super::Histogram,
) {
    header(out, name, "histogram", help);
    for (labels, cells) in &inner.routes {
        let counts: Vec<u64> = (0..=BUCKETS.len())
            .map(|i| sum(cells, |c| read(&pick(c).counts[i])))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            continue;
        }
        let l = route_labels(labels);
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += counts[i];
            let _ = writeln!(out, "{name}_bucket{{{l},le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{l},le=\"+Inf\"}} {total}");
        let micros = sum(cells, |c| read(&pick(c).sum_micros));
        let _ = writeln!(out, "{name}_sum{{{l}}} {}", micros as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{{{l}}} {total}");
    }
}

fn render_throttled(out: &mut String, inner: &Inner) {
    header(
        out,
        names::THROTTLED_TOTAL,
        "counter",
        "Requests refused by a throttle or a quota.",
    );
    for (labels, cells) in &inner.routes {
        let l = route_labels(labels);
        for (reason, n) in [
            ("throttle", sum(cells, |c| read(&c.throttled))),
            ("quota", sum(cells, |c| read(&c.quota_rejected))),
        ] {
            if n > 0 {
                let _ = writeln!(
                    out,
                    "{}{{{l},reason=\"{reason}\"}} {n}",
                    names::THROTTLED_TOTAL
                );
            }
        }
    }
}

fn render_upstreams(out: &mut String, inner: &Inner) {
    header(
        out,
        names::UPSTREAM_REQUESTS_TOTAL,
        "counter",
        "Upstream requests by connection outcome.",
    );
    for (name, cells) in &inner.upstreams {
        let total = |f: fn(&UpstreamCells) -> &std::sync::atomic::AtomicU64| -> u64 {
            cells.iter().flatten().map(|c| read(f(c))).sum()
        };
        for (outcome, n) in [
            ("reused", total(|c| &c.reused)),
            ("new", total(|c| &c.new)),
            ("error", total(|c| &c.error)),
            ("timeout", total(|c| &c.timeout)),
        ] {
            let _ = writeln!(
                out,
                "{}{{upstream=\"{}\",outcome=\"{outcome}\"}} {n}",
                names::UPSTREAM_REQUESTS_TOTAL,
                escape(name)
            );
        }
    }
    let live: Vec<_> = inner
        .target_up
        .iter()
        .filter_map(|(k, w)| Some((k, w.upgrade()?)))
        .collect();
    if live.is_empty() {
        return;
    }
    header(
        out,
        names::UPSTREAM_TARGET_UP,
        "gauge",
        "1 while a health-checked target passes its checks, 0 while it is out of balancing.",
    );
    for ((upstream, target), up) in live {
        let _ = writeln!(
            out,
            "{}{{upstream=\"{}\",target=\"{}\"}} {}",
            names::UPSTREAM_TARGET_UP,
            escape(upstream),
            escape(target),
            read(&up)
        );
    }
}

fn render_caches(out: &mut String, inner: &Inner) {
    type Pick = fn(&CacheCells) -> &std::sync::atomic::AtomicU64;
    let totals: [(&str, &str, Pick); 3] = [
        (
            names::CACHE_HITS_TOTAL,
            "Requests answered from the response cache.",
            |c| &c.hits,
        ),
        (
            names::CACHE_MISSES_TOTAL,
            "Cacheable requests that went to the backend.",
            |c| &c.misses,
        ),
        (
            names::CACHE_EVICTIONS_TOTAL,
            "Live entries pushed out of the cache to make room.",
            |c| &c.evictions,
        ),
    ];
    for (name, help, pick) in totals {
        header(out, name, "counter", help);
        for ((api, stage), cells) in &inner.caches {
            let n: u64 = cells.iter().flatten().map(|c| read(pick(c))).sum();
            let _ = writeln!(
                out,
                "{name}{{api=\"{}\",stage=\"{}\"}} {n}",
                escape(api),
                escape(stage)
            );
        }
    }
    // Per worker: each worker has its own share of the stage's capacity.
    let gauges: [(&str, &str, Pick); 2] = [
        (
            names::CACHE_BYTES,
            "Bytes of the response cache in use (keys, heads and bodies), per worker.",
            |c| &c.bytes,
        ),
        (
            names::CACHE_ENTRIES,
            "Entries in the response cache, per worker.",
            |c| &c.entries,
        ),
    ];
    for (name, help, pick) in gauges {
        header(out, name, "gauge", help);
        for ((api, stage), cells) in &inner.caches {
            for (w, c) in cells.iter().enumerate() {
                // Only a worker's live shard holds its cells besides this registry: a
                // cache a reload removed has no size (its hit counters stay above).
                if let Some(c) = c.as_ref().filter(|c| Arc::strong_count(c) > 1) {
                    let _ = writeln!(
                        out,
                        "{name}{{api=\"{}\",stage=\"{}\",worker=\"{w}\"}} {}",
                        escape(api),
                        escape(stage),
                        read(pick(c))
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
