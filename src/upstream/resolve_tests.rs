//! The resolver's logic with an injected lookup function: first answers, re-resolution
//! on schedule, last good addresses kept when a name stops resolving, every address of
//! every target published, and handles shared while an upstream stays the same.

#![allow(clippy::disallowed_types)]

use std::sync::Mutex;

use super::*;

fn a(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A DNS the test edits: name → answer.
#[derive(Default)]
struct FakeDns(Mutex<HashMap<String, Result<Vec<SocketAddr>, String>>>);

impl FakeDns {
    fn set(&self, name: &str, answer: Result<&[&str], &str>) {
        let answer = answer
            .map(|addrs| addrs.iter().map(|s| a(s)).collect())
            .map_err(String::from);
        self.0.lock().unwrap().insert(name.to_string(), answer);
    }
}

fn resolver(dns: &Arc<FakeDns>) -> Resolver {
    let dns = dns.clone();
    Resolver::new(Arc::new(move |host: &str, port: u16| {
        let answer = dns.0.lock().unwrap().get(host).cloned();
        answer
            .unwrap_or_else(|| Err("Name or service not known".into()))
            .map(|v| {
                v.into_iter()
                    .map(|mut s| {
                        s.set_port(port);
                        s
                    })
                    .collect()
            })
    }))
}

fn handle(targets: &[(&str, u16)], every: Duration) -> Arc<Addresses> {
    Arc::new(Addresses {
        upstream: "u".into(),
        targets: targets
            .iter()
            .map(|(h, port)| Target {
                host: h.to_string(),
                port: *port,
                addr: h.parse().ok().map(|ip| SocketAddr::new(ip, *port)),
            })
            .collect(),
        check: None,
        every,
        version: AtomicU64::new(0),
        set: ArcSwap::from_pointee(Endpoints::default()),
    })
}

fn addrs(h: &Addresses) -> Vec<(usize, String)> {
    h.load()
        .list
        .iter()
        .map(|e| (e.target, e.addr.to_string()))
        .collect()
}

/// Runs ticks until the lookups started at `now` are all in.
fn settle(r: &Resolver, hs: &[Arc<Addresses>], now: Instant) {
    let started = r.start_due(&wanted(hs), now);
    let mut got = 0;
    while got < started {
        got += r.collect(Duration::from_secs(5));
    }
    for h in hs {
        h.publish(&|host, port| r.known(host, port));
    }
}

#[test]
fn every_address_of_every_target_in_target_order() {
    let dns = Arc::new(FakeDns::default());
    dns.set("users", Ok(&["10.0.0.1:0", "10.0.0.2:0"]));
    let r = resolver(&dns);
    let h = handle(
        &[("users", 8080), ("10.0.0.9", 81)],
        Duration::from_secs(30),
    );
    settle(&r, std::slice::from_ref(&h), Instant::now());
    assert_eq!(
        addrs(&h),
        [
            (0, "10.0.0.1:8080".to_string()),
            (0, "10.0.0.2:8080".to_string()),
            (1, "10.0.0.9:81".to_string())
        ]
    );
    assert_eq!(h.version(), 1);
}

#[test]
fn re_resolves_on_schedule_and_republishes_only_changes() {
    let dns = Arc::new(FakeDns::default());
    dns.set("users", Ok(&["10.0.0.1:0"]));
    let r = resolver(&dns);
    let every = Duration::from_secs(30);
    let h = handle(&[("users", 80)], every);
    let t0 = Instant::now();
    settle(&r, std::slice::from_ref(&h), t0);
    assert_eq!(h.version(), 1);
    // The DNS changes; before `every` nothing is looked up.
    dns.set("users", Ok(&["10.0.0.2:0", "10.0.0.3:0"]));
    assert_eq!(
        r.start_due(&wanted(std::slice::from_ref(&h)), t0 + every / 2),
        0
    );
    assert_eq!(addrs(&h), [(0, "10.0.0.1:80".to_string())]);
    // After it, the new answer is published with a new version.
    settle(&r, std::slice::from_ref(&h), t0 + every);
    assert_eq!(
        addrs(&h),
        [
            (0, "10.0.0.2:80".to_string()),
            (0, "10.0.0.3:80".to_string())
        ]
    );
    assert_eq!(h.version(), 2);
    // The same answer again: no new version, so pools keep their slots.
    settle(&r, std::slice::from_ref(&h), t0 + every * 2);
    assert_eq!(h.version(), 2);
}

#[test]
fn a_name_that_stops_resolving_keeps_its_last_good_addresses() {
    let dns = Arc::new(FakeDns::default());
    dns.set("users", Ok(&["10.0.0.1:0"]));
    let r = resolver(&dns);
    let every = Duration::from_secs(1);
    let h = handle(&[("users", 80)], every);
    let t0 = Instant::now();
    settle(&r, std::slice::from_ref(&h), t0);
    dns.set("users", Err("Name or service not known"));
    settle(&r, std::slice::from_ref(&h), t0 + every);
    assert_eq!(addrs(&h), [(0, "10.0.0.1:80".to_string())]);
    assert_eq!(h.version(), 1);
    assert!(r.table()[&("users".to_string(), 80)].error.is_some());
    // It comes back with another address.
    dns.set("users", Ok(&["10.0.0.7:0"]));
    settle(&r, std::slice::from_ref(&h), t0 + every * 2);
    assert_eq!(addrs(&h), [(0, "10.0.0.7:80".to_string())]);
    assert!(r.table()[&("users".to_string(), 80)].error.is_none());
}

#[test]
fn a_name_that_never_resolved_has_no_endpoints_and_is_retried() {
    let dns = Arc::new(FakeDns::default());
    let r = resolver(&dns);
    let every = Duration::from_secs(5);
    let h = handle(&[("nowhere", 80)], every);
    let t0 = Instant::now();
    settle(&r, std::slice::from_ref(&h), t0);
    assert!(addrs(&h).is_empty());
    dns.set("nowhere", Ok(&["10.0.0.5:0"]));
    settle(&r, std::slice::from_ref(&h), t0 + every);
    assert_eq!(addrs(&h), [(0, "10.0.0.5:80".to_string())]);
}

#[test]
fn one_lookup_per_name_at_the_shortest_interval_asked() {
    let a = handle(&[("users", 80)], Duration::from_secs(30));
    let b = handle(&[("users", 80), ("orders", 80)], Duration::from_secs(5));
    let w = wanted(&[a, b]);
    assert_eq!(
        w,
        [
            (("users".to_string(), 80), Duration::from_secs(5)),
            (("orders".to_string(), 80), Duration::from_secs(5))
        ]
    );
}

#[test]
fn a_new_name_waits_at_load_only_as_long_as_allowed() {
    let r = Resolver::new(Arc::new(|_: &str, _: u16| {
        std::thread::sleep(Duration::from_millis(1500));
        Ok(vec![a("10.0.0.1:80")])
    }));
    let wanted = [(("slow".to_string(), 80), Duration::from_secs(30))];
    let t0 = Instant::now();
    r.resolve_new(&wanted, Duration::from_millis(50));
    // Far below the lookup's 1.5 s, with room for a loaded machine.
    assert!(t0.elapsed() < Duration::from_millis(1000));
    assert!(r.known("slow", 80).is_empty());
    // The answer is recorded once it comes.
    r.collect(Duration::from_secs(5));
    assert_eq!(r.known("slow", 80), [a("10.0.0.1:80")]);
}

#[test]
fn handles_are_shared_while_the_upstream_stays_the_same() {
    let t = |host: &str| Target {
        host: host.into(),
        port: 8080,
        addr: host.parse().ok().map(|ip| SocketAddr::new(ip, 8080)),
    };
    let every = Duration::from_secs(30);
    let one = addresses_for("shared-test", &[t("127.0.0.1")], None, every);
    let again = addresses_for("shared-test", &[t("127.0.0.1")], None, every);
    assert!(Arc::ptr_eq(&one, &again));
    let other = addresses_for("shared-test", &[t("127.0.0.2")], None, every);
    assert!(!Arc::ptr_eq(&one, &other));
    assert_eq!(addrs(&other), [(0, "127.0.0.2:8080".to_string())]);
}

/// The resolver thread reads the answers' channel too: when it records the answer a
/// reload waits for, the reload returns as soon as the name is in, not at its deadline.
#[test]
fn a_new_name_recorded_by_another_thread_ends_the_wait() {
    let dns = Arc::new(FakeDns::default());
    dns.set("fresh", Ok(&["10.0.0.5:0"]));
    let r = Arc::new(resolver(&dns));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A second reader of the channel, as the resolver thread is: it takes every answer.
    let thief = {
        let (r, stop) = (r.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                r.collect(Duration::from_millis(1));
            }
        })
    };
    let started = Instant::now();
    let wanted = [(("fresh".to_string(), 80), Duration::from_secs(30))];
    r.resolve_new(&wanted, Duration::from_secs(5));
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    thief.join().unwrap();
    assert_eq!(r.known("fresh", 80), [a("10.0.0.5:80")]);
    assert!(took < Duration::from_secs(2), "waited {took:?}");
}
