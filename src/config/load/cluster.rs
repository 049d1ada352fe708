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
    // Not `?`: when it does not decode, its siblings' errors are reported beside its own.
    let redis = f.need(d, "redis", Decoder::string);
    if let Some(url) = redis.as_deref() {
        check_redis_url(d, &p.key("redis"), url);
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
        redis: redis?,
        on_failure,
        timeout,
        node,
        exact_below,
        prefix,
    })
}

/// `cluster.redis`: a `redis://host:port` address redis-rs can use.
fn check_redis_url(d: &mut Decoder, rp: &KeyPath, url: &str) {
    if let Some(rest) = url.strip_prefix("redis://") {
        if rest.is_empty() || rest.starts_with('/') {
            d.error(rp, unlike_redis_url(url));
        } else if let Err(e) = redis_url(url) {
            d.error(rp, e);
        }
    } else if url.starts_with("rediss://") || url.starts_with("unix:") {
        d.error(
            rp,
            "only redis://host:port is supported (no TLS, no unix sockets)",
        );
    } else {
        d.error(rp, unlike_redis_url(url));
    }
}

/// What is wrong with an address that is not `redis://host…`, without quoting it: a
/// typo in the scheme (`redis:/:PW@host`, `Redis://`, a leading space) leaves the
/// password in place, and `check` and `run` print their errors.
fn unlike_redis_url(url: &str) -> String {
    let why = if url.trim() != url {
        " (the address has a space or a line break at an end)"
    } else if url.to_ascii_lowercase().starts_with("redis://") {
        " (the scheme is written in lower case: redis://)"
    } else {
        ""
    };
    format!("expected redis://host:port{why}; the address is not shown, as it may hold a password")
}

/// Whether the address parses as the nodes will use it (redis-rs): a port it cannot
/// parse, a database that is not a number, an unencoded `/` or `@` in the password
/// passed `check`, and the node ran with Redis "down" for good, logging an error at
/// each tick. The message leaves the address out (it may hold a password).
fn redis_url(url: &str) -> Result<(), String> {
    let hint = "redis://[[user]:password@]host[:port][/db], with / @ # ? % in the user or password percent-encoded (%2F %40 %23 %3F %25)";
    // redis-rs takes the last `@` as the end of the password: `u:p@ss@host` worked, as
    // `p@ss`, where the README says such an address is refused; one spelling only.
    let rest = &url["redis://".len()..];
    let authority = rest.split(['/', '?', '#']).next();
    if authority.is_some_and(|a| a.matches('@').count() > 1) {
        return Err(format!(
            "an @ in the user or password is not percent-encoded: expected {hint}"
        ));
    }
    // `u:2024#Secret@host`: the address ends at the `#`, so the node went to the host
    // `u` (port 2024), another Redis than the log named.
    if rest
        .rfind('@')
        .is_some_and(|at| rest[..at].contains(['/', '?', '#']))
    {
        return Err(format!(
            "a / # or ? in the user or password is not percent-encoded: expected {hint}"
        ));
    }
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

#[cfg(test)]
mod tests {
    use super::unlike_redis_url;

    /// A mistyped scheme left the password in the error that `check` and `run` print.
    #[test]
    fn a_mistyped_address_is_refused_without_printing_its_password() {
        for url in [
            "redis:/:SECRETPW@127.0.0.1:43379",
            "Redis://:SECRETPW@127.0.0.1:43379",
            " redis://:SECRETPW@127.0.0.1:43379",
            "redis:///:SECRETPW@127.0.0.1:43379",
            "redis://",
        ] {
            let yaml = format!("cluster: {{ redis: {url:?} }}\n");
            let errors: Vec<String> =
                crate::config::check_text_in(&yaml, std::path::Path::new("."))
                    .errors
                    .iter()
                    .map(ToString::to_string)
                    .collect();
            let redis: Vec<&String> = errors
                .iter()
                .filter(|e| e.starts_with("cluster.redis: "))
                .collect();
            assert_eq!(redis.len(), 1, "{url}: {errors:?}");
            assert!(
                redis[0].contains("expected redis://host:port"),
                "{url}: {errors:?}"
            );
            assert!(
                !errors.iter().any(|e| e.contains("SECRETPW")),
                "{url}: {errors:?}"
            );
        }
        assert!(unlike_redis_url("Redis://x").contains("lower case"));
        assert!(unlike_redis_url(" redis://x").contains("at an end"));
    }
}
