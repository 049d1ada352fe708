//! `cluster:`: the Redis several nodes share (see `crate::cluster`).

use super::*;

pub(super) fn cluster(d: &mut Decoder, v: &Value, p: &KeyPath) -> Option<Cluster> {
    let f = d.fields(
        v,
        p,
        &[
            "redis",
            "on_failure",
            "timeout",
            "node",
            "exact_below",
            "prefix",
        ],
    );
    let redis = f.need(d, "redis", Decoder::string)?;
    let rp = p.key("redis");
    if let Some(rest) = redis.strip_prefix("redis://") {
        if rest.is_empty() || rest.starts_with('/') {
            d.error(&rp, format!("expected redis://host:port, got {redis:?}"));
        }
    } else if redis.starts_with("rediss://") || redis.starts_with("unix:") {
        d.error(
            &rp,
            "only redis://host:port is supported (no TLS, no unix sockets)",
        );
    } else {
        d.error(&rp, format!("expected redis://host:port, got {redis:?}"));
    }
    let on_failure = f
        .opt(d, "on_failure", |d, v, p| {
            d.choice(
                v,
                p,
                &[
                    ("local", OnFailure::Local),
                    ("allow", OnFailure::Allow),
                    ("deny", OnFailure::Deny),
                ],
            )
        })
        .unwrap_or(OnFailure::Local);
    let timeout = f
        .opt(d, "timeout", Decoder::duration)
        .unwrap_or(Duration::from_millis(50));
    if timeout.is_zero() || timeout > Duration::from_secs(5) {
        d.error(&p.key("timeout"), "must be between 1ms and 5s");
    }
    let node = f.opt(d, "node", Decoder::string);
    if let Some(n) = &node {
        // `|` ends a key's name in the usage counts Redis keeps per node (`key|node`): a
        // node named a|b had its counts read as those of a key named `key|a`.
        if n.is_empty() || n.len() > 64 || !n.bytes().all(|b| b.is_ascii_graphic() && b != b'|') {
            d.error(
                &p.key("node"),
                "must be 1 to 64 printable ASCII characters other than |",
            );
        }
    }
    let exact_below = f.opt(d, "exact_below", Decoder::u64).unwrap_or(50);
    let prefix = f
        .opt(d, "prefix", Decoder::string)
        .unwrap_or_else(|| "portico".into());
    if prefix.is_empty() || prefix.contains(char::is_whitespace) {
        d.error(&p.key("prefix"), "must be a non-empty word without spaces");
    }
    Some(Cluster {
        redis,
        on_failure,
        timeout,
        node,
        exact_below,
        prefix,
    })
}
