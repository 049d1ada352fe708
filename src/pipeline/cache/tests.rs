//! Shards across workers and config generations: flushes and carry-over on reload.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::config::compile::compile;
use crate::config::load_and_validate_text;

fn entry(tag: u64) -> Entry {
    let now = Instant::now();
    Entry {
        status: 200,
        head: Bytes::from_static(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n"),
        body: Bytes::from_static(b"ok"),
        stored: now,
        expires: now + Duration::from_secs(60),
        initial_age: 0,
        tag,
    }
}

fn put(shard: &Shard, key: &[u8], tag: u64) {
    let inserted = shard
        .store
        .borrow_mut()
        .insert(Rc::from(key), entry(tag), Instant::now());
    assert_eq!(inserted, Inserted::Stored { evicted: 0 });
    shard.publish();
}

fn has(shard: &Shard, key: &[u8], tag: u64) -> bool {
    shard
        .store
        .borrow_mut()
        .get(key, tag, Instant::now(), &[])
        .is_some()
}

#[test]
fn a_flush_empties_the_stage_on_every_worker_and_nothing_else() {
    // Two workers' shards of the same stage, and one of another stage.
    let counter = flush::counter("flush-api", "prod");
    let cells = |w| registry().cache(w, "flush-api", "prod");
    let workers: Vec<Shard> = (0..2)
        .map(|w| {
            let forgotten = (flush::forgotten("flush-api", "prod", 2), w);
            Shard::new(
                "flush-api",
                "prod",
                1 << 20,
                counter.clone(),
                cells(w),
                forgotten,
            )
        })
        .collect();
    let other = Shard::new(
        "flush-api",
        "beta",
        1 << 20,
        flush::counter("flush-api", "beta"),
        registry().cache(0, "flush-api", "beta"),
        (flush::forgotten("flush-api", "beta", 2), 0),
    );
    for shard in workers.iter().chain([&other]) {
        put(shard, b"k1", 1);
        put(shard, b"k2", 1);
        assert_eq!(shard.sync_flush(), shard.flush_seen.get());
    }
    assert_eq!(cells(0).entries.load(Ordering::Relaxed), 2);

    assert!(flush("flush-api", "prod"));
    assert!(!flush("flush-api", "nope"), "no such cached stage");
    // Nothing is sent to the workers: each notices on its own, at its next look.
    assert_eq!(workers[1].len(), 2);
    for (w, shard) in workers.iter().enumerate() {
        shard.sync_flush();
        assert!(shard.is_empty(), "worker {w}");
        assert_eq!(shard.used(), 0);
        assert_eq!(cells(w).bytes.load(Ordering::Relaxed), 0);
        assert!(!has(shard, b"k1", 1));
    }
    other.sync_flush();
    assert_eq!(other.len(), 2, "another stage keeps its entries");
    // A later fill is kept again.
    put(&workers[0], b"k1", 1);
    workers[0].sync_flush();
    assert!(has(&workers[0], b"k1", 1));
}

fn snapshot(capacity: &str, ttl: &str) -> crate::config::compile::Snapshot {
    let yaml = format!(
        r#"upstreams:
  u: {{ targets: ["127.0.0.1:9"] }}
apis:
  reload-api:
    stages:
      prod: {{ cache: {{ capacity: {capacity} }} }}
      plain: {{}}
    routes:
      "GET /a":
        integration: {{ type: http, upstream: u }}
        cache: {{ ttl: 60s }}
      "GET /b":
        integration: {{ type: http, upstream: u }}
        cache: {{ ttl: {ttl} }}
"#
    );
    compile(&load_and_validate_text(&yaml).unwrap_or_else(|e| panic!("{e}")))
}

fn tag(snap: &crate::config::compile::Snapshot, route: usize) -> u64 {
    let stage = snap.apis[0].stages[0].cache.as_ref().unwrap();
    stage.routes[route].as_ref().unwrap().tag
}

#[test]
fn a_reload_keeps_the_shard_and_the_entries_of_unchanged_routes() {
    let prod = StageRef { api: 0, stage: 0 };
    let first = snapshot("2MiB", "60s");
    let caches = Caches::build(&first, 0, 2, None);
    assert!(caches.shard(StageRef { api: 0, stage: 1 }).is_none());
    let shard = caches.shard(prod).unwrap().clone();
    assert_eq!(shard.store.borrow().budget(), 1 << 20, "capacity / workers");
    put(&shard, b"a", tag(&first, 0));
    put(&shard, b"b", tag(&first, 1));

    // Route /b's ttl changes, the capacity too.
    let second = snapshot("4MiB", "30s");
    let next = Caches::build(&second, 0, 2, Some(&caches));
    let kept = next.shard(prod).unwrap();
    assert!(Rc::ptr_eq(kept, &shard), "the same shard is handed on");
    assert_eq!(kept.store.borrow().budget(), 2 << 20);
    assert_eq!(tag(&first, 0), tag(&second, 0));
    assert!(
        has(kept, b"a", tag(&second, 0)),
        "unchanged route: still a hit"
    );
    assert!(!has(kept, b"b", tag(&second, 1)), "changed route: a miss");

    // A stage that loses its cache drops its shard.
    let yaml = "upstreams:\n  u: { targets: [\"127.0.0.1:9\"] }\napis:\n  reload-api:\n    stages: { prod: {} }\n    routes:\n      \"GET /a\": { integration: { type: http, upstream: u } }\n";
    let third = compile(&load_and_validate_text(yaml).unwrap());
    assert!(Caches::build(&third, 0, 2, Some(&next))
        .shard(prod)
        .is_none());
}

#[test]
fn waiters_are_woken_with_the_result() {
    let pending = Rc::new(Pending::default());
    let waker_hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    struct Count(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl std::task::Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let waker = Waker::from(std::sync::Arc::new(Count(waker_hits.clone())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut waits: Vec<_> = (0..3).map(|_| Box::pin(pending.wait())).collect();
    for w in &mut waits {
        assert!(w.as_mut().poll(&mut cx).is_pending());
        assert!(
            w.as_mut().poll(&mut cx).is_pending(),
            "polled twice, listed once"
        );
    }
    assert_eq!(pending.wakers.borrow().len(), 1, "one task, one waker");
    pending.finish(Some(entry(1)));
    assert_eq!(waker_hits.load(Ordering::SeqCst), 1);
    for w in &mut waits {
        assert!(w.as_mut().poll(&mut cx).is_ready());
    }
    assert_eq!(&pending.result.borrow().as_ref().unwrap().body[..], b"ok");
}
