//! The cache through the admin API: a flush empties every worker, and the metrics show it.

use super::*;

pub(super) const TOKEN: &str = "cache-admin-token";

/// `config` with the admin listener on `admin_port`.
pub(super) fn config_with_admin(origin: SocketAddr, workers: usize, admin_port: u16) -> String {
    config(origin, workers).replacen(
        "upstreams:",
        &format!("admin: {{ listen: \"127.0.0.1:{admin_port}\", token: \"{TOKEN}\" }}\nupstreams:"),
        1,
    )
}

/// The value of one metric line (labels written as Portico renders them).
fn metric(admin_addr: SocketAddr, line_start: &str) -> Option<u64> {
    let text = admin(admin_addr, "GET", "/metrics", None, None).text();
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
}

#[test]
fn a_flush_empties_every_worker() {
    for driver in DRIVERS {
        let origin = origin();
        let admin_port = free_port();
        let admin_addr = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let p = Portico::start(&config_with_admin(origin.addr, 2, admin_port), driver);
        // 40 connections spread over both workers (the kernel hashes each one to a
        // worker; all 40 on one has odds of 2^-39): each worker fetches once.
        let fill = || {
            for _ in 0..40 {
                assert_eq!(get(&p, "/items/f").status, 200);
            }
        };
        fill();
        assert_eq!(
            fetched(&origin, "/items/f"),
            2,
            "{driver}: one fetch per worker"
        );
        let stage = r#"api="app",stage="$default""#;
        assert_eq!(
            metric(
                admin_addr,
                &format!("portico_cache_misses_total{{{stage}}}")
            ),
            Some(2)
        );
        assert_eq!(
            metric(admin_addr, &format!("portico_cache_hits_total{{{stage}}}")),
            Some(38)
        );
        for w in 0..2 {
            let bytes = metric(
                admin_addr,
                &format!("portico_cache_bytes{{{stage},worker=\"{w}\"}}"),
            );
            assert!(
                bytes.is_some_and(|b| b > 0),
                "{driver}: worker {w} holds the entry"
            );
        }

        let flush = |query: &str, token: Option<&str>| {
            admin(
                admin_addr,
                "POST",
                &format!("/cache/flush{query}"),
                token,
                None,
            )
        };
        assert_eq!(flush("?api=app&stage=%24default", None).status, 401);
        assert_eq!(flush("?api=app", Some(TOKEN)).status, 400);
        // A repeated parameter names no one stage: refused, and nothing is flushed (the
        // first value was taken and the rest dropped unsaid).
        for (query, name) in [
            ("?api=app&stage=%24default&stage=tiny", "stage"),
            ("?api=app&stage=%24default&api=small", "api"),
        ] {
            let r = flush(query, Some(TOKEN));
            assert_eq!(r.status, 400, "{driver}: {query}");
            assert_eq!(
                r.json_message(),
                format!("{name} is given more than once; give it once")
            );
        }
        assert_eq!(flush("?api=app&stage=nope", Some(TOKEN)).status, 404);
        // Another stage's flush leaves this one alone.
        assert_eq!(flush("?api=small&stage=tiny", Some(TOKEN)).status, 202);
        fill();
        assert_eq!(
            fetched(&origin, "/items/f"),
            2,
            "{driver}: another stage's flush"
        );

        let r = flush("?api=app&stage=%24default", Some(TOKEN));
        assert_eq!(r.status, 202, "{driver}: {}", r.text());
        // Idle workers drop their entries on their 50 ms tick.
        thread::sleep(Duration::from_millis(150));
        for w in 0..2 {
            let bytes = metric(
                admin_addr,
                &format!("portico_cache_bytes{{{stage},worker=\"{w}\"}}"),
            );
            assert_eq!(bytes, Some(0), "{driver}: worker {w} after the flush");
        }
        fill();
        assert_eq!(
            fetched(&origin, "/items/f"),
            4,
            "{driver}: both workers fetched again"
        );
    }
}
