//! Quota counters in Redis that are no count (changed by hand or by another program
//! sharing the Redis): text, another type, a negative number. One such counter failed
//! every lease of its key (three failures open the breaker, for every limit and key)
//! and every sync (the admissions made meanwhile could not be added back, so the breaker
//! never closed); a negative one granted past the limit. Now a bad counter refuses its
//! own key's requests and nothing else.

mod common;

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use common::redis::Redis;
use common::*;

const KEYS: [(&str, &str); 6] = [
    ("text", "text-key-0123456789abcdefghij"),
    ("hash", "hash-key-0123456789abcdefghij"),
    ("neg", "neg-key-0123456789abcdefghijk"),
    // Numbers to Lua's `tonumber`, not to INCRBY: the lease failed as Redis's error.
    ("float", "float-key-0123456789abcdefghi"),
    ("hex", "hex-key-0123456789abcdefghijk"),
    ("good", "good-key-0123456789abcdefghij"),
];

fn config(redis: &str, on_failure: &str, admin: u16) -> String {
    let keys: String = KEYS
        .iter()
        .map(|(n, v)| format!("  - {{ name: {n}, value: \"{v}\", plan: small }}\n"))
        .collect();
    let options = format!("on_failure: {on_failure}, timeout: 200ms, node: n1");
    let head = common::redis::node_head(redis, admin, None, &options);
    format!(
        r#"{head}apis:
  app:
    stages:
      $default: {{}}
    routes:
      "GET /q":
        integration: {{ type: mock, status: 200, body: "ok" }}
        api_key_required: true
usage_plans:
  small: {{ quota: {{ limit: 30, period: day }} }}
api_keys:
{keys}"#
    )
}

fn status(addr: SocketAddr, key: &str) -> u16 {
    get_with_key(addr, "/q", Some(key)).status
}

#[test]
fn a_counter_that_is_no_count_refuses_its_key_and_nothing_else() {
    for (on_failure, driver) in [("local", "io_uring"), ("allow", "epoll")] {
        let redis = Redis::start();
        let day = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 86_400;
        let counter = |name: &str| format!("portico:q:small:{name}:{day}");
        redis.cmd(&["SET", &counter("text"), "abc"]);
        redis.cmd(&["HSET", &counter("hash"), "a", "b"]);
        redis.cmd(&["SET", &counter("neg"), "-1000"]);
        redis.cmd(&["SET", &counter("float"), "5.0"]);
        redis.cmd(&["SET", &counter("hex"), "0x1"]);
        let admin = free_port();
        let p = Portico::start(&config(&redis.url(), on_failure, admin), driver);
        let admin = SocketAddr::from(([127, 0, 0, 1], admin));
        let health = || common::admin(admin, "GET", "/health", None, None).text();
        assert!(
            eventually(|| health().contains(r#""redis":"up""#)),
            "{}",
            p.log_text()
        );
        let mut refused = [0; 5];
        for _ in 0..40 {
            for (i, (_, value)) in KEYS[..5].iter().enumerate() {
                refused[i] += u32::from(status(p.addr, value) == 429);
            }
        }
        // Each bad counter's key is refused, the negative one included (it granted
        // past the limit: 40 of a quota of 30).
        assert_eq!(refused, [40; 5], "{on_failure}: {}", p.log_text());
        // The good key has its quota, exactly: no breaker opened, no fallback.
        let good = KEYS[5].1;
        let admitted = (0..40).filter(|_| status(p.addr, good) == 200).count();
        assert_eq!(admitted, 30, "{on_failure}: {}", p.log_text());
        assert!(
            health().contains(r#""redis":"up""#),
            "{on_failure}: {}",
            health()
        );
        assert!(
            !p.log_text().contains("breaker open"),
            "{on_failure}: {}",
            p.log_text()
        );
        assert!(p.log_text().contains("is not a count"), "{}", p.log_text());
        // Deleted, the counter counts again from nothing: the key was refused for the
        // rest of the day, its window taken for spent.
        redis.cmd(&["DEL", &counter("text")]);
        assert_eq!(
            status(p.addr, KEYS[0].1),
            200,
            "{on_failure}: {}",
            p.log_text()
        );
        p.stop();
    }
}
