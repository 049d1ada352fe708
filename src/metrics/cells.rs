//! Counter cells. Each cell has one writer (its worker), so increments are a relaxed load
//! and store rather than a locked read-modify-write; readers (the scraper) see a value at
//! most one increment old. Cells of different workers are separate allocations, so
//! workers never write to the same cache line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Adds to a cell that only the calling worker writes.
#[inline]
pub fn bump(cell: &AtomicU64, n: u64) {
    cell.store(
        cell.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

#[inline]
pub fn read(cell: &AtomicU64) -> u64 {
    cell.load(Ordering::Relaxed)
}

/// Status codes with their own label value; anything else is counted by its class
/// ("1xx" … "5xx"), or as "other" outside 100–599 (a backend may answer 600–999), so
/// label cardinality stays fixed.
pub const STATUSES: [u16; 31] = [
    101, 200, 201, 202, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405, 408, 409,
    413, 414, 415, 422, 429, 431, 499, 500, 501, 502, 503, 504,
];
/// Slots: the listed statuses, then one per class 1xx–5xx, then "other".
pub const STATUS_SLOTS: usize = STATUSES.len() + 6;

#[inline]
pub fn status_slot(status: u16) -> usize {
    match STATUSES.iter().position(|&s| s == status) {
        Some(i) => i,
        // A status past 599 is no server error: counted as one, a backend's 700 set off
        // 5xx alerts.
        None => match status {
            100..=599 => STATUSES.len() + usize::from(status / 100) - 1,
            _ => STATUS_SLOTS - 1,
        },
    }
}

pub fn slot_label(slot: usize) -> String {
    match STATUSES.get(slot) {
        Some(s) => s.to_string(),
        None if slot == STATUS_SLOTS - 1 => "other".to_string(),
        None => format!("{}xx", slot - STATUSES.len() + 1),
    }
}

/// Upper bounds in seconds; fixed so that scrapes from every worker add up.
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
pub struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    pub counts: [AtomicU64; BUCKETS.len() + 1],
    pub sum_micros: AtomicU64,
}

impl Histogram {
    #[inline]
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        bump(&self.counts[i], 1);
        bump(&self.sum_micros, d.as_micros() as u64);
    }
}

/// Per (api, stage, route) and worker.
pub struct RouteCells {
    pub requests: [AtomicU64; STATUS_SLOTS],
    pub duration: Histogram,
    pub integration: Histogram,
    pub throttled: AtomicU64,
    pub quota_rejected: AtomicU64,
}

impl Default for RouteCells {
    fn default() -> Self {
        RouteCells {
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            duration: Histogram::default(),
            integration: Histogram::default(),
            throttled: AtomicU64::new(0),
            quota_rejected: AtomicU64::new(0),
        }
    }
}

impl RouteCells {
    #[inline]
    pub fn count(&self, status: u16) {
        bump(&self.requests[status_slot(status)], 1);
    }
}

/// Per upstream and worker.
#[derive(Default)]
pub struct UpstreamCells {
    pub reused: AtomicU64,
    pub new: AtomicU64,
    pub error: AtomicU64,
    pub timeout: AtomicU64,
}

/// Per worker.
#[derive(Default)]
pub struct WorkerCells {
    pub connections_active: AtomicU64,
    pub access_log_dropped: AtomicU64,
    /// TLS handshakes that failed or timed out (bad certificates, scanners, stalls).
    pub tls_handshake_failures: AtomicU64,
    /// Upgraded connections (integration::tunnel) open now, and bytes they carried
    /// client → upstream and upstream → client.
    pub tunnels_active: AtomicU64,
    pub tunnel_bytes_up: AtomicU64,
    pub tunnel_bytes_down: AtomicU64,
    /// WebSocket API connections open now, data messages each way, closes by code
    /// (`WS_CLOSE_CODES`, then other), stage-endpoint `@connections` calls by result
    /// (`WS_MANAGEMENT_RESULTS`).
    pub ws_connections_active: AtomicU64,
    pub ws_messages_in: AtomicU64,
    pub ws_messages_out: AtomicU64,
    pub ws_closes: [AtomicU64; WS_CLOSE_CODES.len() + 1],
    pub ws_management: [AtomicU64; WS_MANAGEMENT_RESULTS.len()],
}

/// Close codes counted on their own in `portico_websocket_closes_total`.
pub const WS_CLOSE_CODES: [u16; 8] = [1000, 1001, 1002, 1003, 1005, 1006, 1007, 1009];

#[inline]
pub fn ws_close_slot(code: u16) -> usize {
    WS_CLOSE_CODES
        .iter()
        .position(|&c| c == code)
        .unwrap_or(WS_CLOSE_CODES.len())
}

/// Results of `@connections` calls, by the status answered.
pub const WS_MANAGEMENT_RESULTS: [(u16, &str); 7] = [
    (200, "ok"),
    (204, "deleted"),
    (403, "forbidden"),
    (410, "gone"),
    (413, "too_large"),
    (429, "limited"),
    (0, "other"),
];

#[inline]
pub fn ws_management_slot(status: u16) -> usize {
    WS_MANAGEMENT_RESULTS
        .iter()
        .position(|&(s, _)| s == status)
        .unwrap_or(WS_MANAGEMENT_RESULTS.len() - 1)
}

/// Per cached (api, stage) and worker. `bytes` and `entries` are gauges: the worker's
/// share of the stage's cache in use.
#[derive(Default)]
pub struct CacheCells {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub evictions: AtomicU64,
    pub bytes: AtomicU64,
    pub entries: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_fixed_slots() {
        assert_eq!(slot_label(status_slot(200)), "200");
        assert_eq!(slot_label(status_slot(504)), "504");
        assert_eq!(slot_label(status_slot(418)), "4xx");
        assert_eq!(slot_label(status_slot(299)), "2xx");
        assert_eq!(slot_label(status_slot(103)), "1xx");
        assert_eq!(slot_label(status_slot(599)), "5xx");
        assert_eq!(slot_label(status_slot(600)), "other");
        assert_eq!(slot_label(status_slot(999)), "other");
        // A WebSocket handshake and a client that left are told apart.
        assert_eq!(slot_label(status_slot(101)), "101");
        assert_eq!(slot_label(status_slot(499)), "499");
    }

    #[test]
    fn histogram_buckets() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(7));
        h.observe(Duration::from_secs(60));
        assert_eq!(read(&h.counts[0]), 1);
        assert_eq!(read(&h.counts[4]), 1);
        assert_eq!(read(&h.counts[BUCKETS.len()]), 1);
        assert_eq!(read(&h.sum_micros), 60_007_300);
    }
}
