use super::*;
use crate::cluster::test_clock::skew;
use crate::cluster::test_redis::TestRedis;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn beat(m: &mut MultiplexedConnection, node: &str) -> Beat {
    heartbeat(m, "t:nodes", "t:instances", node, &format!("id-{node}"))
        .await
        .unwrap()
}

async fn live_seen(m: &mut MultiplexedConnection) -> Vec<String> {
    let (_, mut live, _, _) = where_is(m, "t:conn:x", "t:nodes", "t:complete", "t:epoch")
        .await
        .unwrap();
    live.sort();
    live
}

/// Node clocks 5 s apart (a node's NTP broken) took each other for dead: the heartbeat
/// of one 5 s ahead trimmed every other node's as expired, and a call on it read them
/// as not live (410 for their open connections); one 5 s behind looked dead to the
/// others. Liveness is Redis's clock now, whatever the nodes' clocks say.
#[test]
fn nodes_whose_clocks_are_off_neither_evict_others_nor_look_dead() {
    let redis = TestRedis::start();
    rt().block_on(async {
        let mut m = redis.connect().await;
        beat(&mut m, "b").await;
        // `a` runs 5 s ahead, `c` 5 s behind: b's heartbeat stays, and so do theirs.
        let clock = skew(5000);
        let mut live = beat(&mut m, "a").await.live;
        drop(clock);
        live.sort();
        assert_eq!(live, ["a", "b"]);
        let clock = skew(-5000);
        let mut live = beat(&mut m, "c").await.live;
        drop(clock);
        live.sort();
        assert_eq!(live, ["a", "b", "c"]);
        // Scored by Redis's clock, not a's.
        let (secs, _): (u64, u64) = redis::cmd("TIME").query_async(&mut m).await.unwrap();
        let score: f64 = redis::cmd("ZSCORE")
            .arg("t:nodes")
            .arg("a")
            .query_async(&mut m)
            .await
            .unwrap();
        assert!(
            (secs as f64 * 1000.0 - score).abs() < 2000.0,
            "{secs} {score}"
        );
        // Every node sees every other live, whatever its clock.
        for ms in [5000, -5000, 0] {
            let _clock = skew(ms);
            assert_eq!(live_seen(&mut m).await, ["a", "b", "c"], "skew {ms}");
        }
    });
}

/// Redis's clock still ages heartbeats out: one older than the TTL is not live, and the
/// next heartbeat trims it.
#[test]
fn a_heartbeat_older_than_the_ttl_by_redis_clock_is_not_live() {
    let redis = TestRedis::start();
    rt().block_on(async {
        let mut m = redis.connect().await;
        beat(&mut m, "old").await;
        let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut m).await.unwrap();
        let stale = secs * 1000 + micros / 1000 - NODE_TTL_MS - 500;
        let _: () = redis::cmd("ZADD")
            .arg("t:nodes")
            .arg(stale)
            .arg("old")
            .query_async(&mut m)
            .await
            .unwrap();
        // A node whose clock runs 10 s behind does not bring it back to life.
        let clock = skew(-10_000);
        assert!(live_seen(&mut m).await.is_empty());
        drop(clock);
        let beat = beat(&mut m, "new").await;
        assert_eq!(beat.live, ["new"]);
        assert!(beat.now >= stale + NODE_TTL_MS);
    });
}

/// Right after Redis was away or stalled every heartbeat is stale, live owners' too:
/// a stale heartbeat means a gone node only once this node's syncs have gone through
/// for a TTL, none more than `GAP_MS` after the last, the latest one recent.
#[test]
fn a_stale_heartbeat_means_a_gone_node_only_after_a_ttl_of_redis() {
    let run = Run::default();
    let ttl = NODE_TTL_MS;
    assert!(!run.stale_means_gone(10 * ttl), "no sync yet");
    // Good syncs every 200 ms from t = 1000.
    let mut t = 1000;
    while t < 1000 + ttl {
        run.sync_ok(t, t + 5);
        assert!(!run.stale_means_gone(t + 5), "{t}");
        t += 200;
    }
    run.sync_ok(t, t + 5);
    assert!(run.stale_means_gone(t + 5));
    // Nothing heard from Redis for longer than the gap (a sync hangs): not any more.
    assert!(!run.stale_means_gone(t + 5 + GAP_MS + 1));
    // A sync that hung through a 3.5 s stall and then went through starts a new run.
    let (start, end) = (t + 200, t + 3700);
    run.sync_ok(start, end);
    assert!(!run.stale_means_gone(end));
    assert!(!run.stale_means_gone(end + 100));
    // So does one after a long gap between syncs (the loop held up).
    let mut t = end;
    while t < end + ttl {
        t += 200;
        run.sync_ok(t, t + 5);
    }
    assert!(run.stale_means_gone(t + 5));
    run.sync_ok(t + 5 + GAP_MS + 1, t + 10 + GAP_MS + 1);
    assert!(!run.stale_means_gone(t + 10 + GAP_MS + 1));
    // A failed sync ends the run.
    let run = Run::default();
    run.sync_ok(1000, 1005);
    let mut t = 1005;
    while t < 1005 + ttl + 200 {
        t += 200;
        run.sync_ok(t, t + 5);
    }
    assert!(run.stale_means_gone(t + 5));
    run.sync_failed();
    assert!(!run.stale_means_gone(t + 5));
    run.sync_ok(t + 200, t + 205);
    assert!(!run.stale_means_gone(t + 205));
}
