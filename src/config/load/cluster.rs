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
        } else if let Err(e) = redis_url(&redis) {
            d.error(&rp, e);
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

/// Whether the address parses as the nodes will use it (redis-rs): a port it cannot
/// parse, a database that is not a number, an unencoded `/` or `@` in the password
/// passed `check`, and the node ran with Redis "down" for good, logging an error at
/// each tick. The message leaves the address out (it may hold a password).
fn redis_url(url: &str) -> Result<(), String> {
    let hint = "redis://[[user]:password@]host[:port][/db], with / @ # ? % in the user or password percent-encoded (%2F %40 %23 %3F %25)";
    let client = redis::Client::open(url).map_err(|e| {
        // "Redis URL did not parse- InvalidClientConfig": the description only.
        let text = e.to_string();
        let why = text.split("- ").next().unwrap_or_default();
        format!("not a Redis address Portico can use ({why}): expected {hint}")
    })?;
    match &client.get_connection_info().addr {
        redis::ConnectionAddr::Tcp(_, 0) => Err("port 0: no Redis listens there".into()),
        _ => Ok(()),
    }
}
