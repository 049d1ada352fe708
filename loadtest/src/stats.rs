//! Counters and latency histograms: one set per thread, merged once at the end.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies are recorded in nanoseconds, up to one minute, with 3 significant digits.
const MAX_NS: u64 = 60_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Could not connect.
    Connect,
    /// The connection failed or closed while sending or receiving, or the response was
    /// malformed.
    Read,
    /// No complete response within `--timeout`.
    Timeout,
    Status4xx,
    Status5xx,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Errors {
    pub connect: u64,
    pub read: u64,
    pub timeout: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.connect + self.read + self.timeout + self.status_4xx + self.status_5xx
    }

    fn add(&mut self, o: &Errors) {
        self.connect += o.connect;
        self.read += o.read;
        self.timeout += o.timeout;
        self.status_4xx += o.status_4xx;
        self.status_5xx += o.status_5xx;
    }
}

/// Completed TLS handshakes and how long they took (counted apart from requests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Handshakes {
    pub count: u64,
    pub total_ns: u64,
    pub max_ns: u64,
}

impl Handshakes {
    fn add(&mut self, o: &Handshakes) {
        self.count += o.count;
        self.total_ns += o.total_ns;
        self.max_ns = self.max_ns.max(o.max_ns);
    }
}

/// What a TLS handshake agreed on (from the first one; all use the same config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    pub version: String,
    pub cipher_suite: String,
    pub alpn: Option<String>,
}

/// Per-thread state, shared by that thread's connection tasks only.
pub struct ThreadStats {
    requests: Cell<u64>,
    errors: Cell<Errors>,
    latency: RefCell<Histogram<u64>>,
    handshakes: Cell<Handshakes>,
    tls: RefCell<Option<TlsInfo>>,
}

impl ThreadStats {
    pub fn new() -> Self {
        Self {
            requests: Cell::new(0),
            errors: Cell::new(Errors::default()),
            latency: RefCell::new(new_histogram()),
            handshakes: Cell::new(Handshakes::default()),
            tls: RefCell::new(None),
        }
    }

    /// A completed TLS handshake; `info` is asked for once per thread.
    pub fn handshake(&self, took: Duration, info: impl FnOnce() -> TlsInfo) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let mut h = self.handshakes.get();
        h.count += 1;
        h.total_ns = h.total_ns.saturating_add(ns);
        h.max_ns = h.max_ns.max(ns);
        self.handshakes.set(h);
        let mut tls = self.tls.borrow_mut();
        if tls.is_none() {
            *tls = Some(info());
        }
    }

    /// A complete response (whatever its status) and how long it took.
    pub fn response(&self, latency: Duration) {
        self.requests.set(self.requests.get() + 1);
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.latency
            .borrow_mut()
            .saturating_record(ns.clamp(1, MAX_NS));
    }

    pub fn error(&self, kind: ErrorKind) {
        let mut e = self.errors.get();
        match kind {
            ErrorKind::Connect => e.connect += 1,
            ErrorKind::Read => e.read += 1,
            ErrorKind::Timeout => e.timeout += 1,
            ErrorKind::Status4xx => e.status_4xx += 1,
            ErrorKind::Status5xx => e.status_5xx += 1,
        }
        self.errors.set(e);
    }

    pub fn into_summary(self) -> Summary {
        Summary {
            requests: self.requests.get(),
            errors: self.errors.get(),
            latency: self.latency.into_inner(),
            handshakes: self.handshakes.get(),
            tls: self.tls.into_inner(),
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds")
}

/// What a thread hands back; summaries merge into one.
#[derive(Clone)]
pub struct Summary {
    pub requests: u64,
    pub errors: Errors,
    pub latency: Histogram<u64>,
    pub handshakes: Handshakes,
    pub tls: Option<TlsInfo>,
}

impl Default for Summary {
    fn default() -> Self {
        Self {
            requests: 0,
            errors: Errors::default(),
            latency: new_histogram(),
            handshakes: Handshakes::default(),
            tls: None,
        }
    }
}

impl Summary {
    pub fn merge(&mut self, other: &Summary) {
        self.requests += other.requests;
        self.errors.add(&other.errors);
        self.latency
            .add(&other.latency)
            .expect("histograms share bounds");
        self.handshakes.add(&other.handshakes);
        if self.tls.is_none() {
            self.tls.clone_from(&other.tls);
        }
    }

    fn quantile_us(&self, q: f64) -> f64 {
        if self.latency.is_empty() {
            return 0.0;
        }
        round1(self.latency.value_at_quantile(q) as f64 / 1000.0)
    }

    pub fn report(&self, elapsed: Duration) -> Report {
        let secs = elapsed.as_secs_f64();
        Report {
            rps: if secs > 0.0 {
                round1(self.requests as f64 / secs)
            } else {
                0.0
            },
            requests: self.requests,
            errors: self.errors,
            p50_us: self.quantile_us(0.5),
            p90_us: self.quantile_us(0.9),
            p99_us: self.quantile_us(0.99),
            p999_us: self.quantile_us(0.999),
            max_us: if self.latency.is_empty() {
                0.0
            } else {
                round1(self.latency.max() as f64 / 1000.0)
            },
            tls: self.tls.clone().map(|info| {
                let h = &self.handshakes;
                TlsReport {
                    info,
                    handshakes: h.count,
                    handshake_mean_us: if h.count > 0 {
                        round1(h.total_ns as f64 / h.count as f64 / 1000.0)
                    } else {
                        0.0
                    },
                    handshake_max_us: round1(h.max_ns as f64 / 1000.0),
                }
            }),
        }
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The figures printed at the end, as text or as one JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub rps: f64,
    pub requests: u64,
    pub errors: Errors,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// Only when the load ran over TLS.
    pub tls: Option<TlsReport>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TlsReport {
    pub info: TlsInfo,
    /// Handshakes completed: the connections opened before the run and any re-opened in it.
    pub handshakes: u64,
    pub handshake_mean_us: f64,
    pub handshake_max_us: f64,
}

impl Report {
    pub fn json(&self) -> serde_json::Value {
        let e = &self.errors;
        let mut j = serde_json::json!({
            "rps": self.rps,
            "requests": self.requests,
            "errors": {
                "connect": e.connect,
                "read": e.read,
                "timeout": e.timeout,
                "status_4xx": e.status_4xx,
                "status_5xx": e.status_5xx,
                "total": e.total(),
            },
            "p50_us": self.p50_us,
            "p90_us": self.p90_us,
            "p99_us": self.p99_us,
            "p999_us": self.p999_us,
            "max_us": self.max_us,
        });
        if let Some(t) = &self.tls {
            j["tls"] = serde_json::json!({
                "version": t.info.version,
                "cipher_suite": t.info.cipher_suite,
                "alpn": t.info.alpn,
                "handshakes": t.handshakes,
                "handshake_mean_us": t.handshake_mean_us,
                "handshake_max_us": t.handshake_max_us,
            });
        }
        j
    }

    pub fn text(&self) -> String {
        let e = &self.errors;
        let mut out = format!(
            "  requests  {} ({:.1} req/s)\n  errors    {} (connect {}, read {}, timeout {}, 4xx {}, 5xx {})\n  latency   p50 {}  p90 {}  p99 {}  p99.9 {}  max {}\n",
            self.requests,
            self.rps,
            e.total(),
            e.connect,
            e.read,
            e.timeout,
            e.status_4xx,
            e.status_5xx,
            us(self.p50_us),
            us(self.p90_us),
            us(self.p99_us),
            us(self.p999_us),
            us(self.max_us),
        );
        if let Some(t) = &self.tls {
            out.push_str(&format!(
                "  tls       {} {}, ALPN {}; {} handshakes, mean {}, max {}\n",
                t.info.version,
                t.info.cipher_suite,
                t.info.alpn.as_deref().unwrap_or("none"),
                t.handshakes,
                us(t.handshake_mean_us),
                us(t.handshake_max_us),
            ));
        }
        out
    }
}

fn us(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.2}ms", v / 1000.0)
    } else {
        format!("{v:.1}µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_percentiles_cover_all_threads() {
        // Thread a saw 900 fast responses, thread b 100 slow ones: the merged p50 is fast,
        // p99 slow, and the counts add up.
        let a = ThreadStats::new();
        for _ in 0..900 {
            a.response(Duration::from_micros(50));
        }
        a.error(ErrorKind::Timeout);
        let b = ThreadStats::new();
        for i in 0..100 {
            b.response(Duration::from_micros(1000 + i));
        }
        b.error(ErrorKind::Status5xx);
        b.error(ErrorKind::Connect);

        let mut total = Summary::default();
        total.merge(&a.into_summary());
        total.merge(&b.into_summary());
        let r = total.report(Duration::from_secs(2));

        assert_eq!(r.requests, 1000);
        assert_eq!(r.rps, 500.0);
        assert_eq!(r.errors.total(), 3);
        assert_eq!(
            (r.errors.timeout, r.errors.status_5xx, r.errors.connect),
            (1, 1, 1)
        );
        assert!((r.p50_us - 50.0).abs() < 0.1, "p50 {}", r.p50_us);
        assert!(r.p90_us < 51.0, "p90 {}", r.p90_us);
        assert!((1000.0..1100.0).contains(&r.p99_us), "p99 {}", r.p99_us);
        assert!((r.max_us - 1099.0).abs() < 1.0, "max {}", r.max_us);

        let j = r.json();
        for key in [
            "rps", "requests", "errors", "p50_us", "p90_us", "p99_us", "p999_us", "max_us",
        ] {
            assert!(j.get(key).is_some(), "{key}");
        }
        assert_eq!(j["errors"]["status_5xx"], 1);
        assert!(j.get("tls").is_none(), "tls only when TLS ran");
    }

    #[test]
    fn handshakes_are_reported_apart() {
        let info = || TlsInfo {
            version: "TLSv1_3".into(),
            cipher_suite: "TLS13_AES_128_GCM_SHA256".into(),
            alpn: Some("http/1.1".into()),
        };
        let a = ThreadStats::new();
        a.handshake(Duration::from_micros(1000), info);
        a.response(Duration::from_micros(50));
        let b = ThreadStats::new();
        b.handshake(Duration::from_micros(3000), info);
        let mut total = Summary::default();
        total.merge(&a.into_summary());
        total.merge(&b.into_summary());
        let r = total.report(Duration::from_secs(1));
        assert_eq!(r.requests, 1);
        let j = r.json();
        assert_eq!(j["tls"]["handshakes"], 2);
        assert_eq!(j["tls"]["handshake_mean_us"], 2000.0);
        assert_eq!(j["tls"]["handshake_max_us"], 3000.0);
        assert_eq!(j["tls"]["alpn"], "http/1.1");
        assert!(
            r.text().contains("2 handshakes, mean 2000.0µs"),
            "{}",
            r.text()
        );
    }

    #[test]
    fn empty_report_is_zero() {
        let r = Summary::default().report(Duration::from_secs(1));
        assert_eq!((r.requests, r.p99_us, r.max_us), (0, 0.0, 0.0));
    }
}
