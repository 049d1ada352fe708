//! A reload with a file that would take far more memory than its size (aliases that
//! copy a long string, a `%TAG` prefix repeated in every tag, stages × routes past what a
//! config may compile to, text written out in every stage) is refused before the memory
//! is taken, and the running config keeps serving. Such a file used to abort the gateway
//! ("memory allocation failed"). A mock body the same in every stage is shared by them.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn config(extra: &str) -> String {
    format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
apis:
  app:
    stages: {{ $default: {{}} }}
    routes:
      "GET /x": {{ integration: {{ type: mock, status: 200, body: kept }} }}
{extra}"#
    )
}

/// The gateway's peak resident memory, in KiB.
fn peak_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Sends SIGHUP and waits for the refusal; the log after it.
fn refused_reload(p: &Portico, says: &str) {
    let before = p.log_text().matches("reload refused").count();
    p.signal(1);
    // The refusal's count line comes first and its errors after it, one line each (301
    // of them for the route count): wait for the one expected, not only the first line.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = p.log_text();
        if log.matches("reload refused").count() > before && log.contains(says) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no refusal saying {says:?} logged:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `bomb(port)` over a running gateway's config and reloads: the reload is
/// refused with `says` in the log, the old config keeps answering, and the refusal came
/// before the memory (peak RSS under 300 MiB). Under both drivers.
fn refused_without_the_memory(bomb: impl Fn(u16) -> String, says: &str) {
    for driver in DRIVERS {
        let p = Portico::start(&config(""), driver);
        assert_eq!(p.get("/x").text(), "kept");
        std::fs::write(&p.config, bomb(p.addr.port())).unwrap();
        refused_reload(&p, says);
        assert_eq!(p.get("/x").text(), "kept", "{driver}");
        let peak = peak_kib(p.pid());
        assert!(peak < 300 * 1024, "{driver}: peak RSS {peak} KiB");
        assert!(p.stop().success());
    }
}

#[test]
fn a_reload_whose_aliases_copy_a_long_string_is_refused_without_the_memory() {
    // 1 MB of text that expands to 1 GB: a string and a thousand aliases of it.
    let long = "x".repeat(1_000_000);
    let aliases = vec!["*b"; 1000].join(", ");
    refused_without_the_memory(
        |port| {
            config(&format!("x-big: &b \"{long}\"\nx-many: [{aliases}]\n"))
                .replace("{PORT}", &port.to_string())
        },
        "bytes of text through its aliases",
    );
}

#[test]
fn a_reload_whose_tag_directive_repeats_a_long_prefix_is_refused_without_the_memory() {
    // No alias: 1 MB of prefix that the parser writes into each of 400 tags (400 MB, all
    // built before Portico's code saw the first; 200,000 took 4 GB in 32 s).
    let prefix = "p".repeat(1_000_000);
    let tags = vec!["!e!x a"; 400].join(", ");
    refused_without_the_memory(
        |port| {
            format!("%TAG !e! !{prefix}\n---\n")
                + &config(&format!("x-tags: [{tags}]\n")).replace("{PORT}", &port.to_string())
        },
        "the prefixes that %TAG directives give the document's tags",
    );
}

#[test]
fn a_reload_into_too_many_compiled_routes_is_refused_before_they_are_built() {
    let p = Portico::start(&config(""), DRIVERS[0]);
    // 400 stages × 301 routes: 120,400 routes to build, each with its stage's variable.
    let stages: String = (0..400)
        .map(|i| format!("s{i}: {{ variables: {{ v: \"{i}\" }} }}, "))
        .collect();
    let routes: String = (0..300)
        .map(|i| format!("      \"GET /r{i}\": {{ integration: {{ type: mock, body: \"${{stageVariables.v}}\" }} }}\n"))
        .collect();
    let big = config("")
        .replace("$default: {}", &format!("$default: {{}}, {stages}"))
        .replace("{PORT}", &p.addr.port().to_string())
        + &routes;
    std::fs::write(&p.config, big).unwrap();
    refused_reload(&p, "401 stages × 301 routes = 120701 compiled routes");
    assert_eq!(p.get("/x").text(), "kept");
    assert!(p.stop().success());
}

/// An API with `stages` stages and one mock route whose body is `body`.
fn big_api(stages: usize, body: &str) -> String {
    let stages: String = (0..stages)
        .map(|i| format!("s{i}: {{ variables: {{ v: \"{i}\" }} }}, "))
        .collect();
    format!(
        "  big:\n    stages: {{ {stages} }}\n    routes:\n      \"GET /p\": {{ integration: {{ type: mock, status: 200, body: \"{body}\" }} }}\n"
    )
}

#[test]
fn a_mock_body_is_shared_by_the_stages_not_copied_into_each() {
    for driver in DRIVERS {
        let p = Portico::start(&config(""), driver);
        assert_eq!(p.get("/x").text(), "kept");
        // 1 MB in 600 stages: each stage had its own copy (600 MB; 1,500 stages aborted
        // a gateway under a 1 GB limit).
        let body = "x".repeat(1_000_000);
        let big = config("").replace("{PORT}", &p.addr.port().to_string()) + &big_api(600, &body);
        std::fs::write(&p.config, big).unwrap();
        let before = p.log_text().matches("config reloaded").count();
        p.signal(1);
        let deadline = Instant::now() + Duration::from_secs(20);
        while p.log_text().matches("config reloaded").count() == before {
            assert!(Instant::now() < deadline, "{driver}: {}", p.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(p.get("/s599/p").text(), body, "{driver}");
        assert_eq!(p.get("/x").text(), "kept", "{driver}");
        let peak = peak_kib(p.pid());
        assert!(peak < 200 * 1024, "{driver}: peak RSS {peak} KiB");
        assert!(p.stop().success());
    }
}

#[test]
fn a_reload_whose_stages_copy_too_much_text_is_refused_before_it_is_built() {
    let p = Portico::start(&config(""), DRIVERS[0]);
    // A body that names a stage variable is written out per stage: 1 MB × 300 stages.
    let body = format!("{}${{stageVariables.v}}", "x".repeat(1_000_000));
    let big = config("").replace("{PORT}", &p.addr.port().to_string()) + &big_api(300, &body);
    std::fs::write(&p.config, big).unwrap();
    refused_reload(
        &p,
        "apis.big: its routes compile to 300005700 bytes of text in 300 stages",
    );
    assert_eq!(p.get("/x").text(), "kept");
    let peak = peak_kib(p.pid());
    assert!(peak < 200 * 1024, "peak RSS {peak} KiB");
    assert!(p.stop().success());
}
