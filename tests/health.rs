//! Active upstream health checks end to end: a target whose health endpoint fails is
//! taken out of balancing after `unhealthy_after` checks and brought back after
//! `healthy_after`; a target that refuses connections is taken out too; when every
//! target is down, requests are still tried rather than refused; and the targets up share
//! a down target's traffic as the balancing policy says.
// Test origins share flags with the test thread; no request path here.
#![allow(clippy::disallowed_types)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// An origin that answers "name" on every path, and 503 on /healthz while `sick`.
fn origin(name: &'static str, sick: Arc<AtomicBool>) -> Origin {
    Origin::start(move |req, s| {
        if req.target == "/healthz" {
            let status = if sick.load(Ordering::SeqCst) {
                503
            } else {
                200
            };
            respond(s, status, &[], b"");
        } else {
            respond(s, 200, &[], name.as_bytes());
        }
        true
    })
}

fn config(targets: &[String]) -> String {
    let targets = targets
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 2
upstreams:
  app:
    targets: [{targets}]
    connect_timeout: 500ms
    health: {{ path: /healthz, interval: 100ms, unhealthy_after: 2, healthy_after: 2 }}
apis:
  shop:
    stages: {{ $default: {{}} }}
    routes:
      "GET /{{proxy+}}": {{ integration: {{ type: http, upstream: app }} }}
"#
    )
}

/// Which origins answer 40 requests, as (a, b) counts.
fn spread(p: &Portico) -> (usize, usize) {
    let mut counts = (0, 0);
    for _ in 0..40 {
        let r = p.get("/x");
        match (r.status, r.text().as_str()) {
            (200, "a") => counts.0 += 1,
            (200, "b") => counts.1 += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    counts
}

#[test]
fn a_failing_target_leaves_balancing_and_comes_back() {
    let a_sick = Arc::new(AtomicBool::new(false));
    let b_sick = Arc::new(AtomicBool::new(false));
    let a = origin("a", a_sick.clone());
    let b = origin("b", b_sick.clone());
    for driver in DRIVERS {
        b_sick.store(false, Ordering::SeqCst);
        let admin_port = free_port();
        let yaml = config(&[a.addr.to_string(), b.addr.to_string()]).replace(
            "upstreams:",
            &format!(
                "admin: {{ listen: \"127.0.0.1:{admin_port}\" }}\nstate_dir: \"{}\"\nupstreams:",
                temp_dir("health-state").display()
            ),
        );
        let p = Portico::start(&yaml, driver);
        let admin_addr = std::net::SocketAddr::from(([127, 0, 0, 1], admin_port));
        let b_gauge = |want: u8| {
            let m = admin(admin_addr, "GET", "/metrics", None, None).text();
            m.contains(&format!(
                "portico_upstream_target_up{{upstream=\"app\",target=\"{}\"}} {want}",
                b.addr
            ))
        };
        let (to_a, to_b) = spread(&p);
        assert!(
            to_a > 0 && to_b > 0,
            "{driver}: both serve at first ({to_a}, {to_b})"
        );

        b_sick.store(true, Ordering::SeqCst);
        assert!(
            eventually(|| spread(&p) == (40, 0)),
            "{driver}: b is never taken out"
        );
        assert!(
            p.log_text().contains("target taken out of balancing"),
            "{driver}: the change is logged"
        );
        assert!(eventually(|| b_gauge(0)), "{driver}: the gauge shows b out");

        b_sick.store(false, Ordering::SeqCst);
        assert!(
            eventually(|| spread(&p).1 > 0),
            "{driver}: b never comes back"
        );
        assert!(p.log_text().contains("target is healthy again"), "{driver}");
        assert!(
            eventually(|| b_gauge(1)),
            "{driver}: the gauge shows b back"
        );
    }
}

#[test]
fn a_refusing_target_is_skipped_and_all_down_still_tries() {
    let a_sick = Arc::new(AtomicBool::new(false));
    let a = origin("a", a_sick.clone());
    // Nothing listens here: connections are refused.
    let dead = format!("127.0.0.1:{}", free_port());
    for driver in DRIVERS {
        a_sick.store(false, Ordering::SeqCst);
        let p = Portico::start(&config(&[a.addr.to_string(), dead.clone()]), driver);
        // Once the dead target is out, no request meets it (no 502).
        assert!(
            eventually(|| (0..20).all(|_| p.get("/x").status == 200)),
            "{driver}: the dead target keeps getting requests"
        );
        // a's health endpoint fails too: both are down, and requests are still tried
        // (a still serves them) rather than refused.
        a_sick.store(true, Ordering::SeqCst);
        assert!(
            eventually(|| p
                .log_text()
                .matches("target taken out of balancing")
                .count()
                >= 2),
            "{driver}: a is never taken out"
        );
        let served = (0..20).filter(|_| p.get("/x").status == 200).count();
        assert!(
            served > 0,
            "{driver}: nothing served with every target down"
        );
    }
}

/// An origin answering "name"; a request other than a health check waits (at most 5 s)
/// until `held` counts `hold` requests across the origins sharing it, so they are all in
/// flight at once.
fn holding_origin(name: &'static str, held: Arc<AtomicUsize>, hold: usize) -> Origin {
    Origin::start(move |req, s| {
        if req.target != "/healthz" {
            held.fetch_add(1, Ordering::SeqCst);
            let until = Instant::now() + Duration::from_secs(5);
            while held.load(Ordering::SeqCst) < hold && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        respond(s, 200, &[], name.as_bytes());
        true
    })
}

#[test]
fn the_targets_up_share_a_down_targets_traffic_evenly() {
    const HOLD: usize = 6;
    let held = Arc::new(AtomicUsize::new(0));
    let b = holding_origin("b", held.clone(), 0);
    let c = holding_origin("c", held.clone(), 0);
    // Refused: taken out by the checks. It comes first, so a pick that lands on it and
    // moves on to the next target up would always land on b.
    let dead = format!("127.0.0.1:{}", free_port());
    let targets = [dead, b.addr.to_string(), c.addr.to_string()];
    for driver in DRIVERS {
        let p = Portico::start(&config(&targets), driver);
        assert!(
            eventually(|| p.log_text().contains("target taken out of balancing")),
            "{driver}: the dead target is never taken out"
        );
        // Round robin: b and c alternate (b took two thirds).
        let (nb, nc) = spread3(&p);
        assert!(
            nb.abs_diff(nc) <= 2,
            "{driver}: round robin gave b {nb}, c {nc}"
        );
    }
    let b = holding_origin("b", held.clone(), HOLD);
    let c = holding_origin("c", held.clone(), HOLD);
    let targets = [targets[0].clone(), b.addr.to_string(), c.addr.to_string()];
    let least_conn = config(&targets).replace(
        "    connect_timeout:",
        "    balance: least_conn\n    connect_timeout:",
    );
    for driver in DRIVERS {
        let p = Portico::start(&least_conn, driver);
        assert!(
            eventually(|| p.log_text().contains("target taken out of balancing")),
            "{driver}: the dead target is never taken out"
        );
        // HOLD requests in flight at once: least-conn splits them between b and c (the
        // down target's idle count won every pick, and all of them went to b).
        held.store(0, Ordering::SeqCst);
        let answers: Vec<String> = std::thread::scope(|s| {
            let calls: Vec<_> = (0..HOLD).map(|_| s.spawn(|| p.get("/x").text())).collect();
            calls.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let nb = answers.iter().filter(|a| *a == "b").count();
        let nc = answers.iter().filter(|a| *a == "c").count();
        assert_eq!(nb + nc, HOLD, "{driver}: answers {answers:?}");
        assert!(
            nb >= 2 && nc >= 2,
            "{driver}: least_conn gave b {nb}, c {nc}"
        );
    }
}

/// Which of b and c answer 40 requests.
fn spread3(p: &Portico) -> (usize, usize) {
    let answers: Vec<String> = (0..40).map(|_| p.get("/x").text()).collect();
    let count = |name: &str| answers.iter().filter(|a| *a == name).count();
    assert_eq!(count("b") + count("c"), 40, "answers {answers:?}");
    (count("b"), count("c"))
}

/// A target the checks pass comes before one they hold down, also when this worker could
/// not connect to the first lately: with both marks counted as one, no target was "up",
/// and requests rotated over both, half to the target the checks had taken out.
#[test]
fn a_target_back_up_wins_over_one_the_checks_hold_down() {
    let b_sick = Arc::new(AtomicBool::new(true));
    let b = origin("b", b_sick);
    for driver in DRIVERS {
        // Nothing listens at a's address yet: refused, by checks and requests alike.
        let a_port = free_port();
        let a_addr = format!("127.0.0.1:{a_port}");
        let p = Portico::start(&config(&[a_addr, b.addr.to_string()]), driver);
        assert!(
            eventually(|| p
                .log_text()
                .matches("target taken out of balancing")
                .count()
                >= 2),
            "{driver}: both are never taken out"
        );
        // Requests meet a's refusal (each worker marks it) and are served by b.
        for _ in 0..8 {
            let _ = p.get("/x");
        }
        let _a = Origin::start_at(a_port, |req, s| {
            let body: &[u8] = if req.target == "/healthz" { b"" } else { b"a" };
            respond(s, 200, &[], body);
            true
        });
        assert!(
            eventually(|| p.log_text().contains("target is healthy again")),
            "{driver}: a never comes back"
        );
        let answers: Vec<String> = (0..10).map(|_| p.get("/x").text()).collect();
        assert!(answers.iter().all(|t| t == "a"), "{driver}: {answers:?}");
    }
}

/// A reload that removes `health:` (or the target) removes the target's gauge: a 0 kept
/// after it kept an alert firing on a target back in balancing, or gone.
#[test]
fn a_reload_without_the_check_removes_the_targets_gauge() {
    let a = origin("a", Arc::new(AtomicBool::new(false)));
    let b = origin("b", Arc::new(AtomicBool::new(true)));
    for driver in DRIVERS {
        let admin_port = free_port();
        let head = format!(
            "admin: {{ listen: \"127.0.0.1:{admin_port}\", token: t }}\nstate_dir: \"{}\"\nupstreams:",
            temp_dir("health-state").display()
        );
        let yaml = config(&[a.addr.to_string(), b.addr.to_string()]).replace("upstreams:", &head);
        let p = Portico::start(&yaml, driver);
        let admin_addr = std::net::SocketAddr::from(([127, 0, 0, 1], admin_port));
        let series = format!(
            "portico_upstream_target_up{{upstream=\"app\",target=\"{}\"}}",
            b.addr
        );
        let m = metrics_when(admin_addr, |m| m.contains(&format!("{series} 0")));
        assert!(m.contains(&format!("{series} 0")), "{driver}: {m}");

        let written = std::fs::read_to_string(&p.config).unwrap();
        let without = written.replace(
            "    health: { path: /healthz, interval: 100ms, unhealthy_after: 2, healthy_after: 2 }\n",
            "",
        );
        assert_ne!(without, written);
        std::fs::write(&p.config, without).unwrap();
        assert_eq!(
            admin(admin_addr, "POST", "/reload", Some("t"), None).status,
            200
        );
        let m = metrics_when(admin_addr, |m| !m.contains(&series));
        assert!(!m.contains(&series), "{driver}: {m}");
        // b is back in balancing.
        assert!(eventually(|| spread(&p).1 > 0), "{driver}");
    }
}
