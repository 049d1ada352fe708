//! `upstreams.NAME`: targets (addresses, `localhost`, host names to resolve, http/https),
//! TLS to them, health checks.

use super::*;
use crate::config::decode::shown;

pub(super) fn upstream(d: &mut Decoder, v: &Value, p: &KeyPath) -> Upstream {
    let f = d.fields(
        v,
        p,
        &[
            "targets",
            "balance",
            "connect_timeout",
            "pool",
            "health",
            "tls",
            "resolve_every",
        ],
    );
    let targets = f
        .need(d, "targets", |d, v, p| Some(d.list_of(v, p, target)))
        .unwrap_or_default();
    let https = targets.iter().any(|t| t.1);
    if https && targets.iter().any(|t| !t.1) {
        d.error(
            &p.key("targets"),
            "mixes https:// and plain targets; use one scheme per upstream",
        );
    }
    let mut u = Upstream {
        targets: targets.into_iter().map(|t| t.0).collect(),
        resolve_every: DEFAULT_RESOLVE_EVERY,
        https,
        tls: f
            .opt(d, "tls", |d, v, p| Some(upstream_tls(d, v, p)))
            .unwrap_or_default(),
        balance: Balance::RoundRobin,
        connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        pool: Pool::default(),
        health: f.opt(d, "health", |d, v, p| Some(health(d, v, p))),
    };
    f.set(d, "balance", &mut u.balance, |d, v, p| {
        use Balance::*;
        d.choice(
            v,
            p,
            &[
                ("round_robin", RoundRobin),
                ("least_conn", LeastConn),
                ("random", Random),
            ],
        )
    });
    f.set(
        d,
        "connect_timeout",
        &mut u.connect_timeout,
        Decoder::duration,
    );
    f.set(d, "resolve_every", &mut u.resolve_every, Decoder::duration);
    if let Some((v, p)) = f.get("pool") {
        let f = d.fields(v, &p, &["max_idle_per_worker", "idle_timeout"]);
        f.set(
            d,
            "max_idle_per_worker",
            &mut u.pool.max_idle_per_worker,
            Decoder::usize,
        );
        f.set(
            d,
            "idle_timeout",
            &mut u.pool.idle_timeout,
            Decoder::duration,
        );
    }
    u
}

/// One upstream target: `host:port`, `http://host:port` or `https://host[:port]`, as
/// (target, https). The host is an IP address, `localhost` or a host name.
fn target(d: &mut Decoder, v: &Value, p: &KeyPath) -> Option<(Target, bool)> {
    let text = d.parsed_text(v, p)?;
    let (https, rest) = if let Some(rest) = text.strip_prefix("https://") {
        (true, rest)
    } else {
        (false, text.strip_prefix("http://").unwrap_or(&text))
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if let Some(at) = rest.rfind('@') {
        // The userinfo stays out of the message, which `check` prints and the log keeps.
        let host = &rest[at + 1..];
        d.error(
            p,
            format!("\"…@{host}\" has user:password@ in it: upstream targets take no credentials (send them with a parameter mapping: overwrite:header.authorization)"),
        );
        return None;
    }
    let with_port = match rest.rsplit_once(':') {
        Some((_, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            rest.to_string()
        }
        _ if rest.starts_with('[') && !rest.ends_with(']') => rest.to_string(),
        _ => format!("{rest}:{}", if https { 443 } else { 80 }),
    };
    let addr = crate::config::decode::parse_socket_addr(&with_port);
    let parsed = with_port
        .rsplit_once(':')
        .and_then(|(h, port)| Some((h, port.parse::<u16>().ok()?)));
    let (host, port) = match (addr, parsed) {
        (Some(a), Some((h, _))) => (h.trim_start_matches('[').trim_end_matches(']'), a.port()),
        (None, Some((h, port))) if is_host_name(h) => (h, port),
        _ => {
            d.error(
                p,
                format!("expected an address like 127.0.0.1:8080, users:8080, http://users.internal:8080 or https://api.example.com, got {}", shown(&text)),
            );
            return None;
        }
    };
    if port == 0 {
        // Nothing can be reached there: every request would be a 502.
        d.error(
            p,
            format!(
                "port 0 is no port a backend listens on, got {}",
                shown(&text)
            ),
        );
        return None;
    }
    Some((
        Target {
            host: host.to_string(),
            port,
            addr,
        },
        https,
    ))
}

/// A DNS name (letters, digits, `-`, `_` in dot-separated labels; a final dot allowed),
/// not an IP address gone wrong.
fn is_host_name(h: &str) -> bool {
    let h = h.strip_suffix('.').unwrap_or(h);
    !h.is_empty()
        && h.len() <= 253
        && !h.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn upstream_tls(d: &mut Decoder, v: &Value, p: &KeyPath) -> UpstreamTls {
    let f = d.fields(v, p, &["ca", "server_name", "verify"]);
    let mut t = UpstreamTls {
        ca: f.opt(d, "ca", |d, v, p| d.string(v, p).map(PathBuf::from)),
        server_name: f.opt(d, "server_name", Decoder::string),
        given: true,
        ..UpstreamTls::default()
    };
    f.set(d, "verify", &mut t.verify, Decoder::bool);
    t
}

fn health(d: &mut Decoder, v: &Value, p: &KeyPath) -> Health {
    let f = d.fields(
        v,
        p,
        &["path", "interval", "unhealthy_after", "healthy_after"],
    );
    let mut h = Health {
        path: "/".to_string(),
        interval: DEFAULT_HEALTH_INTERVAL,
        unhealthy_after: 3,
        healthy_after: 2,
    };
    f.set(d, "path", &mut h.path, Decoder::string);
    f.set(d, "interval", &mut h.interval, Decoder::duration);
    // Shorter, checks still ran every 100 ms, each waiting the interval for its answer:
    // `1ms` took every backend slower than that for down.
    if h.interval < std::time::Duration::from_millis(100) {
        d.error(
            &p.key("interval"),
            format!("at least 100ms (the checker runs every 100 ms, and a check waits at most the interval for its answer), got {}ms", h.interval.as_millis()),
        );
    }
    f.set(d, "unhealthy_after", &mut h.unhealthy_after, count);
    f.set(d, "healthy_after", &mut h.healthy_after, count);
    h
}

fn count(d: &mut Decoder, v: &Value, p: &KeyPath) -> Option<u32> {
    let n = d.u64(v, p)?;
    let got = u32::try_from(n).ok();
    if got.is_none() {
        d.error(p, format!("expected a count up to {}, got {n}", u32::MAX));
    }
    got
}
