//! WebSocket connections across the nodes of a cluster when Redis fails: a connection
//! stays reachable from every node after Redis lost its data or was away when it
//! opened, and a node that cannot ask Redis answers 503, not 410 GoneException (which
//! tells a backend to forget a connection that is open). Two real nodes, a real
//! `redis-server`, both drivers.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::redis::{DelayProxy, Redis};
use common::ws::*;
use common::*;

/// Generous: the machine may be loaded.
fn within(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

fn redis_is(admin: SocketAddr, state: &str) -> bool {
    common::admin(admin, "GET", "/health", None, None)
        .text()
        .contains(&format!(r#""redis":"{state}""#))
}

fn post(admin: SocketAddr, id: &str, body: &str) -> Response {
    let id = id
        .replace('=', "%3D")
        .replace('/', "%2F")
        .replace('+', "%2B");
    common::admin(
        admin,
        "POST",
        &format!("/@connections/{id}"),
        Some("secret"),
        Some(body),
    )
}

/// Posts through `admin` until one is taken (200), asserting that none is answered
/// 410 meanwhile: the connection is open all along.
fn post_until_taken(admin: SocketAddr, id: &str, body: &str, what: &str) {
    let mut seen = Vec::new();
    let taken = within(30, || {
        let r = post(admin, id, body);
        assert_ne!(
            r.status,
            410,
            "{what}: an open connection answered Gone ({})",
            r.text()
        );
        seen.push(r.status);
        r.status == 200
    });
    seen.dedup();
    assert!(taken, "{what}: never delivered; statuses {seen:?}");
}

#[test]
fn a_connection_stays_reachable_from_other_nodes_after_redis_lost_its_data() {
    for driver in DRIVERS {
        let mut redis = Redis::start();
        let (a, _) = cluster_node(&redis, "a", driver);
        let (_b, b_admin) = cluster_node(&redis, "b", driver);
        let (mut client, id) = ready_clients(&a, b_admin, 1, driver).remove(0);

        // Restarted without persistence: the registry is gone with the rest.
        redis.restart();
        post_until_taken(b_admin, &id, "after", &format!("{driver}, Redis emptied"));
        assert_eq!(
            read_small_frame(&mut client),
            (1, b"after".to_vec()),
            "{driver}"
        );
    }
}

/// After Redis lost its data, a node that was live before and has not come back yet
/// (frozen here: on a loaded host, slow to reconnect) may own an id no node finds:
/// 503, not 410, however long it takes (the loss used to be forgotten 4 s after this
/// node saw it), and the post is taken once the owner is back.
#[test]
fn an_owner_slow_to_come_back_after_redis_lost_its_data_is_waited_for() {
    for driver in DRIVERS {
        let mut redis = Redis::start();
        let (a, _) = cluster_node(&redis, "a", driver);
        let (_b, b_admin) = cluster_node(&redis, "b", driver);
        let (mut client, id) = ready_clients(&a, b_admin, 1, driver).remove(0);

        a.signal(19); // SIGSTOP
        redis.restart();
        assert!(within(30, || redis_is(b_admin, "up")), "{driver}");
        thread::sleep(Duration::from_secs(6));
        let r = post(b_admin, &id, "meanwhile");
        a.signal(18); // SIGCONT
        assert_eq!(r.status, 503, "{driver}: {}", r.text());
        post_until_taken(b_admin, &id, "back", &format!("{driver}, owner back"));
        assert_eq!(read_small_frame(&mut client), (1, b"back".to_vec()));
    }
}

/// An owner that is live but does not answer (frozen here; on a loaded host, slow) is
/// 503, not 410 (the post was answered Gone after 2 s); once it answers, the post is
/// taken.
#[test]
fn an_owner_that_does_not_answer_in_time_is_not_called_gone() {
    for driver in DRIVERS {
        let redis = Redis::start();
        let (a, _) = cluster_node(&redis, "a", driver);
        let (_b, b_admin) = cluster_node(&redis, "b", driver);
        let (mut client, id) = ready_clients(&a, b_admin, 1, driver).remove(0);

        a.signal(19); // SIGSTOP
        let r = post(b_admin, &id, "frozen");
        a.signal(18); // SIGCONT
        assert_eq!(r.status, 503, "{driver}: {}", r.text());
        assert!(r.text().contains("did not answer in time"), "{}", r.text());
        post_until_taken(b_admin, &id, "back", &format!("{driver}, owner back"));
        // The frozen post may have been delivered late: read until "back".
        while read_small_frame(&mut client) != (1, b"back".to_vec()) {}
    }
}

/// Right after Redis stalled (SIGSTOP) for longer than the heartbeat TTL, every node's
/// heartbeat is stale until its next sync: a call through another node in that moment
/// answered 410 GoneException for an open connection. Here the owner is frozen too,
/// so its heartbeat stays stale: 503 while the node asked has had Redis for less than
/// the TTL, 410 after (an owner silent that long is taken for gone), and the post is
/// taken once the owner is back.
#[test]
fn a_stale_owner_right_after_redis_stalled_is_not_called_gone() {
    for driver in DRIVERS {
        let redis = Redis::start();
        let (a, _) = cluster_node(&redis, "a", driver);
        let (_b, b_admin) = cluster_node(&redis, "b", driver);
        let (mut client, id) = ready_clients(&a, b_admin, 1, driver).remove(0);

        a.signal(19); // SIGSTOP
        redis.signal(19);
        thread::sleep(Duration::from_millis(3500));
        redis.signal(18); // SIGCONT
        let t0 = Instant::now();
        let mut seen = Vec::new();
        while t0.elapsed() < Duration::from_secs(2) {
            let r = post(b_admin, &id, "stalled");
            if r.status == 410 {
                a.signal(18);
            }
            assert_ne!(
                r.status,
                410,
                "{driver}: {:?} after Redis came back, statuses {seen:?}: {}",
                t0.elapsed(),
                r.text()
            );
            seen.push(r.status);
            thread::sleep(Duration::from_millis(20));
        }
        seen.dedup();
        assert_eq!(seen.last(), Some(&503), "{driver}: {seen:?}");
        // b has had Redis for the TTL since: the owner, still silent, is gone.
        let gone = within(10, || post(b_admin, &id, "gone").status == 410);
        a.signal(18);
        assert!(gone, "{driver}: a silent owner never answered Gone");
        thread::sleep(Duration::from_secs(1));
        post_until_taken(b_admin, &id, "back", &format!("{driver}, owner back"));
        assert_eq!(read_small_frame(&mut client), (1, b"back".to_vec()));
    }
}

/// After Redis restarted, a node whose own listener has not subscribed again yet cannot
/// hear the owner's reply: it answers 503 and sends nothing (the reply was lost and the
/// post answered 410 after 2 s). Here b's subscription reaches the new Redis 3 s late.
#[test]
fn a_node_not_listening_yet_after_redis_restarted_does_not_answer_gone() {
    for driver in DRIVERS {
        let mut redis = Redis::start();
        let proxy = DelayProxy::start(redis.addr());
        let (a, _) = cluster_node(&redis, "a", driver);
        let (_b, b_admin) = cluster_node_on(&proxy.url(), "1s", "b", driver);
        let (mut client, id) = ready_clients(&a, b_admin, 1, driver).remove(0);

        proxy.hold("SUBSCRIBE", 1, Duration::from_secs(3));
        redis.restart();
        post_until_taken(b_admin, &id, "after", &format!("{driver}, b resubscribing"));
        assert_eq!(read_small_frame(&mut client), (1, b"after".to_vec()));
    }
}

/// A connection's id is known to other nodes before its client can use it: the
/// registry write used to follow the 101, so a backend told the id by the client could
/// post through another node before the write landed and be answered 410 for an open
/// connection. Here the write reaches Redis 600 ms late, well after the client has its
/// id.
#[test]
fn a_connection_is_reachable_from_other_nodes_as_soon_as_its_client_has_its_id() {
    for driver in DRIVERS {
        let redis = Redis::start();
        let proxy = DelayProxy::start(redis.addr());
        let (a, _) = cluster_node_on(&proxy.url(), "2s", "a", driver);
        let (_b, b_admin) = cluster_node(&redis, "b", driver);
        proxy.hold("SETEX", 1, DelayProxy::DELAY);
        let (mut client, id) = open_learning_id(&a);
        let r = post(b_admin, &id, "at once");
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        assert_eq!(read_small_frame(&mut client), (1, b"at once".to_vec()));
    }
}

#[test]
fn a_connection_opened_while_redis_was_away_is_reachable_once_it_is_back() {
    for driver in DRIVERS {
        let mut redis = Redis::start();
        let (a, a_admin) = cluster_node(&redis, "a", driver);
        let (_b, b_admin) = cluster_node(&redis, "b", driver);
        redis.kill();
        assert!(within(30, || redis_is(a_admin, "down")), "{driver}");
        assert!(within(30, || redis_is(b_admin, "down")), "{driver}");
        let (mut client, id) = open_learning_id(&a);

        // b cannot ask Redis where it is: 503 (boto3 retries it), not Gone.
        let r = post(b_admin, &id, "meanwhile");
        assert_eq!(r.status, 503, "{driver}: {}", r.text());
        assert_eq!(r.header("x-amzn-ErrorType"), Some("ServiceUnavailable"));
        // a still reaches it itself.
        let r = post(a_admin, &id, "local");
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        assert_eq!(read_small_frame(&mut client), (1, b"local".to_vec()));

        redis.restart();
        post_until_taken(b_admin, &id, "back", &format!("{driver}, Redis back"));
        assert_eq!(
            read_small_frame(&mut client),
            (1, b"back".to_vec()),
            "{driver}"
        );
        // Closed: every node says Gone again.
        drop(client);
        assert!(
            within(30, || post(b_admin, &id, "late").status == 410),
            "{driver}: a closed connection must be gone"
        );
    }
}

fn stage_post(addr: SocketAddr, id: &str, body: &str) -> Response {
    let id = id
        .replace('=', "%3D")
        .replace('/', "%2F")
        .replace('+', "%2B");
    send_to(
        addr,
        format!(
            "POST /prod/@connections/{id} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

fn try_frame(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).ok()?;
    let mut payload = vec![0u8; usize::from(h[1] & 0x7F)];
    s.read_exact(&mut payload).ok()?;
    Some((h[0] & 0x0F, payload))
}

/// `n` connections to `a`, each shown reachable through `b_admin` (a post taken and
/// read), so a burst starts with every route in place.
fn ready_clients(
    a: &Portico,
    b_admin: SocketAddr,
    n: usize,
    driver: &str,
) -> Vec<(TcpStream, String)> {
    let mut clients: Vec<(TcpStream, String)> = (0..n).map(|_| open_learning_id(a)).collect();
    for (c, id) in &mut clients {
        post_until_taken(b_admin, id, "ready", driver);
        assert_eq!(read_small_frame(c), (1, b"ready".to_vec()));
    }
    clients
}

/// Many posts at once from another node (its stage endpoint: the admin listener caps
/// the calls it answers at once): each answered 200 is delivered once, and nothing
/// unanswered arrives. Each Redis call of a post used to
/// have only `timeout` (200 ms here), so a burst made some 503 though Redis answered.
#[test]
fn many_posts_at_once_from_another_node_are_each_delivered_once() {
    const CONNS: usize = 4;
    const THREADS: usize = 200;
    const EACH: usize = 2;
    for driver in DRIVERS {
        let redis = Redis::start();
        let (a, _) = cluster_node(&redis, "a", driver);
        let (b, b_admin) = cluster_node(&redis, "b", driver);
        let b_addr = b.addr;
        let mut clients = ready_clients(&a, b_admin, CONNS, driver);
        let ids: Vec<String> = clients.iter().map(|(_, id)| id.clone()).collect();
        let start = std::sync::Arc::new(std::sync::Barrier::new(THREADS));
        let posters: Vec<_> = (0..THREADS)
            .map(|t| {
                let (ids, start) = (ids.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    (0..EACH)
                        .map(|n| {
                            let (conn, body) = (t % CONNS, format!("m{t}.{n}"));
                            (
                                conn,
                                body.clone(),
                                stage_post(b_addr, &ids[conn], &body).status,
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let answers: Vec<(usize, String, u16)> = posters
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect();
        let bad: Vec<_> = answers.iter().filter(|a| a.2 != 200).collect();
        assert!(
            bad.is_empty(),
            "{driver}: {} not 200: {:?}",
            bad.len(),
            &bad[..bad.len().min(5)]
        );
        for (i, (c, _)) in clients.iter_mut().enumerate() {
            let mut want: Vec<String> = answers
                .iter()
                .filter(|a| a.0 == i)
                .map(|a| a.1.clone())
                .collect();
            let mut got = Vec::new();
            c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            while got.len() < want.len() {
                let (op, p) = try_frame(c).expect("a posted message");
                assert_eq!(op, 1, "{driver}");
                got.push(String::from_utf8(p).unwrap());
            }
            c.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            assert!(try_frame(c).is_none(), "{driver}: more than was posted");
            want.sort();
            got.sort();
            assert_eq!(got, want, "{driver}: connection {i}");
        }
    }
}

/// One unmasked server frame of any length: (opcode, payload).
fn read_frame(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).ok()?;
    let len = match h[1] & 0x7F {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).ok()?;
            usize::from(u16::from_be_bytes(l))
        }
        127 => {
            let mut l = [0u8; 8];
            s.read_exact(&mut l).ok()?;
            u64::from_be_bytes(l) as usize
        }
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).ok()?;
    Some((h[0] & 0x0F, payload))
}

fn metric(admin: SocketAddr, name: &str) -> Option<f64> {
    let text = common::admin(admin, "GET", "/metrics", None, None).text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// A burst of 128 KiB posts from another node went through the Redis connection the
/// node's syncs and leases share: they waited behind it past `timeout`, the breaker
/// opened (the whole node on `on_failure`), and posts Redis had delivered were
/// answered 503. Now that node's breaker stays closed, every post answered 200 arrives
/// once, and none answered 429 (the client's 1 MiB send buffer is full) arrives. (On a
/// loaded machine the owning node may still be slow to answer: 503 "did not answer in
/// time" after 2 s, which the owner may have delivered, so those are not counted either
/// way.)
#[test]
fn a_burst_of_large_posts_through_another_node_leaves_its_breaker_closed() {
    const CONNS: usize = 4;
    const THREADS: usize = 120;
    for driver in DRIVERS {
        let redis = Redis::start();
        let (a, _) = cluster_node(&redis, "a", driver);
        let (b, b_admin) = cluster_node(&redis, "b", driver);
        let b_addr = b.addr;
        let mut clients = ready_clients(&a, b_admin, CONNS, driver);
        let ids: Vec<String> = clients.iter().map(|(_, id)| id.clone()).collect();
        let start = std::sync::Arc::new(std::sync::Barrier::new(THREADS));
        let posters: Vec<_> = (0..THREADS)
            .map(|t| {
                let (ids, start) = (ids.clone(), start.clone());
                thread::spawn(move || {
                    let body = format!("{t:06}").repeat(128 * 1024 / 6);
                    start.wait();
                    let r = stage_post(b_addr, &ids[t % CONNS], &body);
                    let late = r.status == 503 && r.text().contains("did not answer in time");
                    (t % CONNS, if late { 0 } else { r.status })
                })
            })
            .collect();
        // Status 0: no answer from the owner in time.
        let answers: Vec<(usize, u16)> = posters.into_iter().map(|p| p.join().unwrap()).collect();
        assert_eq!(
            metric(b_admin, "portico_cluster_breaker_opened_total"),
            Some(0.0),
            "{driver}: the breaker opened; answers {answers:?}"
        );
        let unavailable = answers.iter().filter(|a| a.1 == 503).count();
        assert_eq!(unavailable, 0, "{driver}: {answers:?}");
        for (i, (c, _)) in clients.iter_mut().enumerate() {
            let taken = answers.iter().filter(|a| a.0 == i && a.1 == 200).count();
            let late = answers.iter().filter(|a| a.0 == i && a.1 == 0).count();
            c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut got = 0;
            while let Some((op, p)) = read_frame(c) {
                assert_eq!((op, p.len()), (1, 128 * 1024 / 6 * 6), "{driver}");
                got += 1;
            }
            assert!(
                (taken..=taken + late).contains(&got),
                "{driver}: connection {i}: {got} arrived, {taken} taken, {late} late"
            );
        }
    }
}

/// Redis refusing a call's PUBLISH (an ACL without it) is a 503, said once at error in
/// the calling node's log: it said nothing, and `/health` showed Redis up.
#[test]
fn a_call_redis_refuses_to_pass_on_is_503_and_said() {
    for driver in DRIVERS {
        let redis = Redis::start();
        let (a, _) = cluster_node(&redis, "a", driver);
        let (b, b_admin) = cluster_node(&redis, "b", driver);
        let (_client, id) = ready_clients(&a, b_admin, 1, driver).remove(0);
        redis.cmd(&["ACL", "SETUSER", "default", "-publish"]);
        for _ in 0..3 {
            let r = post(b_admin, &id, "refused");
            assert_eq!(r.status, 503, "{driver}: {}", r.text());
        }
        let said = "Redis refused to pass an @connections call";
        assert!(
            within(5, || b.log_text().contains(said)),
            "{driver}: {}",
            b.log_text()
        );
        assert_eq!(b.log_text().matches(said).count(), 1, "{driver}");
    }
}

/// Redis refusing a node's SUBSCRIBE (an ACL change takes its channels away, and Redis
/// drops the subscribed connection) is said at error: the node retried unsaid, its calls
/// answering 503 and other nodes' cache flushes not reaching it, with `/health` up. Once
/// Redis takes the SUBSCRIBE again the node listens again.
#[test]
fn a_subscribe_redis_refuses_is_said_and_retried() {
    for driver in DRIVERS {
        let redis = Redis::start();
        let (a, _) = cluster_node(&redis, "a", driver);
        let (b, b_admin) = cluster_node(&redis, "b", driver);
        let (_client, id) = ready_clients(&a, b_admin, 1, driver).remove(0);
        redis.cmd(&["ACL", "SETUSER", "default", "resetchannels"]);
        let said = "Redis refuses this node's SUBSCRIBE";
        assert!(
            within(10, || b.log_text().contains(said)),
            "{driver}: {}",
            b.log_text()
        );
        assert_eq!(post(b_admin, &id, "refused").status, 503, "{driver}");
        thread::sleep(Duration::from_secs(2));
        assert_eq!(
            b.log_text().matches(said).count(),
            1,
            "{driver}: once a minute"
        );
        redis.cmd(&["ACL", "SETUSER", "default", "allchannels"]);
        post_until_taken(b_admin, &id, "after the ACL", driver);
        assert!(
            within(5, || b
                .log_text()
                .contains("takes this node's SUBSCRIBE again")),
            "{driver}: {}",
            b.log_text()
        );
        // SUBSCRIBE and PUBSUB refused, subscribers dropped: the refusal's NOPERM
        // leaves a connection Redis never closes, which the node now notices (by a
        // message it publishes to itself).
        redis.cmd(&["ACL", "SETUSER", "default", "-subscribe", "-pubsub"]);
        redis.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]);
        assert!(
            within(15, || post(b_admin, &id, "refused").status == 503),
            "{driver}"
        );
        redis.cmd(&["ACL", "SETUSER", "default", "+subscribe", "+pubsub"]);
        post_until_taken(b_admin, &id, "after the second ACL", driver);
        // No channels and no PUBSUB: neither NUMSUB nor the node's own PUBLISH can be
        // asked, and the refused PUBLISH is said (it was taken for a subscription).
        let before = b.log_text().matches(said).count();
        redis.cmd(&["ACL", "SETUSER", "default", "resetchannels", "-pubsub"]);
        assert!(
            within(15, || b.log_text().matches(said).count() > before),
            "{driver}: {}",
            b.log_text()
        );
        assert_eq!(post(b_admin, &id, "refused").status, 503, "{driver}");
        redis.cmd(&["ACL", "SETUSER", "default", "allchannels", "+pubsub"]);
        post_until_taken(b_admin, &id, "after the third ACL", driver);
    }
}
