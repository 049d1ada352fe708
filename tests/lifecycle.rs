//! The gateway's lifecycle as an operator drives it: reloads through the admin API and
//! signals while clients are connected, and the stop.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// A mock route on the given plain listeners, with the admin API on `admin_port`.
fn listeners_config(listen: &[u16], admin_port: u16) -> String {
    let listen: Vec<String> = listen
        .iter()
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    format!(
        r#"state_dir: "{state}"
server:
  listen: [{listen}]
  workers: 2
admin: {{ listen: "127.0.0.1:{admin_port}", token: t0ken }}
apis:
  app:
    stages: {{ $default: {{}} }}
    routes:
      "GET /a": {{ integration: {{ type: mock, status: 200, body: a }} }}
"#,
        state = temp_dir("state").display(),
        listen = listen.join(", ")
    )
}

/// `POST /reload` answers once the reload is in effect on every worker: an address it
/// adds accepts at once and one it removes refuses at once. Workers used to apply
/// listener changes on their next tick, after the answer: a deploy script that reloaded
/// then called the new address was refused, and the removed one still served.
#[test]
fn an_admin_reload_answers_once_listeners_follow_it() {
    for driver in DRIVERS {
        let (first, second, admin_port) = (free_port(), free_port(), free_port());
        let one = listeners_config(&[first], admin_port);
        let both = listeners_config(&[first, second], admin_port);
        let p = Portico::start_at(&one, driver, first);
        let admin_addr = ([127, 0, 0, 1], admin_port).into();
        let get = |port: u16| {
            TcpStream::connect(("127.0.0.1", port)).map(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                std::io::Write::write_all(
                    &mut s,
                    b"GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                )
                .unwrap();
                read_response(&mut std::io::BufReader::new(s), false).map(|r| r.status)
            })
        };
        for round in 0..5 {
            std::fs::write(&p.config, &both).unwrap();
            let r = admin(admin_addr, "POST", "/reload", Some("t0ken"), None);
            assert_eq!(r.status, 200, "{driver}: {}", r.text());
            match get(second) {
                Ok(Ok(200)) => {}
                other => panic!("{driver} round {round}: the added address: {other:?}"),
            }
            std::fs::write(&p.config, &one).unwrap();
            let r = admin(admin_addr, "POST", "/reload", Some("t0ken"), None);
            assert_eq!(r.status, 200, "{driver}: {}", r.text());
            assert!(
                get(second).is_err(),
                "{driver} round {round}: the removed address still accepts"
            );
            assert!(matches!(get(first), Ok(Ok(200))), "{driver}: the kept one");
        }
    }
}

/// A reload that removes a listener is answered once its sockets are closed: a client
/// connecting then is refused at once, and the next reload can add the address back.
/// The answer came while the socket still dropped SYNs for its handshake grace, so that
/// client waited for its SYN's retry (a second), and a reload right after, putting the
/// address back, was refused "Address already in use" (this process held it).
#[test]
fn a_listener_removed_by_a_reload_can_be_added_back_by_the_next() {
    for driver in DRIVERS {
        let (first, second, admin_port) = (free_port(), free_port(), free_port());
        let one = listeners_config(&[first], admin_port);
        let both = listeners_config(&[first, second], admin_port);
        let p = Portico::start_at(&both, driver, first);
        let admin_addr = ([127, 0, 0, 1], admin_port).into();
        let removed: std::net::SocketAddr = ([127, 0, 0, 1], second).into();
        let reload = |yaml: &str, round: usize| {
            std::fs::write(&p.config, yaml).unwrap();
            let r = admin(admin_addr, "POST", "/reload", Some("t0ken"), None);
            assert_eq!(r.status, 200, "{driver} round {round}: {}", r.text());
        };
        for round in 0..3 {
            // Removed and put back at once.
            reload(&one, round);
            reload(&both, round);
            let get = send_to(
                removed,
                b"GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            );
            assert_eq!(get.status, 200, "{driver} round {round}");
            // Removed: refused, not left waiting (a dropped SYN is retried after a second).
            reload(&one, round);
            let e = TcpStream::connect_timeout(&removed, Duration::from_millis(900))
                .expect_err("the removed address still accepts");
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused,
                "{driver} round {round}: {e}"
            );
            reload(&both, round);
        }
    }
}

/// A reload that removes a listener serves the connections the kernel had queued on it
/// (their clients connected before the reload) instead of resetting them as it closes it:
/// clients connecting in a loop to the removed address see answers, then refused
/// connects. A connection still in its handshake at that instant can still be reset.
#[test]
fn a_reload_that_removes_a_listener_serves_what_was_queued_on_it() {
    for driver in DRIVERS {
        let (first, second, admin_port) = (free_port(), free_port(), free_port());
        let p = Portico::start_at(
            &listeners_config(&[first, second], admin_port),
            driver,
            first,
        );
        let clients = ConnectLoop::start(([127, 0, 0, 1], second).into(), 16);
        clients.wait_answered(500);
        std::fs::write(&p.config, listeners_config(&[first], admin_port)).unwrap();
        let r = admin(
            ([127, 0, 0, 1], admin_port).into(),
            "POST",
            "/reload",
            Some("t0ken"),
            None,
        );
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        let (answered, lost, refused) = clients.join();
        assert!(refused, "{driver}: the removed address refuses");
        assert!(
            lost <= 5,
            "{driver}: {lost} connections reset or closed unanswered after their connect succeeded ({answered} answered)"
        );
    }
}

/// Whether `addr` refuses a connection now: its listener is closed. (A stopping worker
/// first drops new SYNs for a moment: such a connect times out here, and is not taken for
/// a closed listener.)
fn refuses_connections(addr: std::net::SocketAddr) -> bool {
    let tried = TcpStream::connect_timeout(&addr, Duration::from_millis(100));
    matches!(tried, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// A connection accepted before SIGTERM whose request is still on its way (a client one
/// round trip behind its handshake) is served, with `connection: close`, not cut: its
/// client can't tell it from a request the gateway took and lost. Portico used to close
/// every connection that had not sent a byte yet the moment the drain began. One that
/// stays silent closes soon after, without holding the stop for `drain_timeout`.
#[test]
fn sigterm_serves_a_request_that_was_on_its_way() {
    let origin = Origin::fixed(b"served");
    for driver in DRIVERS {
        let yaml = proxy_config(origin.addr, 2).replace("drain_timeout: 5s", "drain_timeout: 30s");
        let mut p = Portico::start(&yaml, driver);
        let mut late = p.connect();
        let silent = p.connect();
        // Both accepted: a request on a third connection is answered.
        assert_eq!(p.get("/warm").status, 200, "{driver}");
        std::thread::sleep(Duration::from_millis(200));
        let stopping = std::time::Instant::now();
        p.signal(15);
        assert!(
            eventually(|| refuses_connections(p.addr)),
            "{driver}: still accepting after SIGTERM"
        );
        std::io::Write::write_all(&mut late, b"GET /late HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let r = read_response(&mut std::io::BufReader::new(late), false)
            .unwrap_or_else(|e| panic!("{driver}: the request on its way was cut: {e}"));
        assert_eq!((r.status, r.text().as_str()), (200, "served"), "{driver}");
        assert_eq!(r.header("connection"), Some("close"), "{driver}");
        let status = p.wait_exit(Duration::from_secs(15));
        assert_eq!(status.code(), Some(0), "{driver}");
        assert!(
            stopping.elapsed() < Duration::from_secs(10),
            "{driver}: a silent connection held the stop for {:?}",
            stopping.elapsed()
        );
        drop(silent);
    }
}

/// The same on a TLS listener: a connection accepted before SIGTERM still gets its
/// handshake and its request answered.
#[test]
fn sigterm_serves_a_tls_request_that_was_on_its_way() {
    use common::tls::{Ca, TlsClient};
    let dir = temp_dir("lifecycle-tls");
    let ca = Ca::new("Test CA");
    let (cert, key) = ca.server_cert(&["a.example"]).write(&dir, "a");
    for driver in DRIVERS {
        let tls_port = free_port();
        let yaml = format!(
            r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  tls_listen: ["127.0.0.1:{tls_port}"]
  workers: 2
  limits: {{ drain_timeout: 30s }}
domains:
  a.example: {{ cert: "{}", key: "{}", mappings: {{ "": app/$default }} }}
apis:
  app:
    stages: {{ $default: {{}} }}
    routes:
      "GET /a": {{ integration: {{ type: mock, status: 200, body: a }} }}
"#,
            cert.display(),
            key.display()
        );
        let mut p = Portico::start(&yaml, driver);
        common::tls::wait_port(tls_port);
        let client = TlsClient::trusting(&ca).build();
        assert_eq!(
            client
                .try_get(tls_port, "a.example", "a.example", "/a")
                .map(|r| r.status),
            Ok(200),
            "{driver}"
        );
        let late = TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        p.signal(15);
        assert!(
            eventually(|| refuses_connections(([127, 0, 0, 1], tls_port).into())),
            "{driver}: still accepting after SIGTERM"
        );
        let mut conn = client
            .handshake(late, "a.example")
            .unwrap_or_else(|e| panic!("{driver}: the handshake on its way was cut: {e}"));
        let r = conn
            .get("/a", "a.example")
            .unwrap_or_else(|e| panic!("{driver}: the request on its way was cut: {e}"));
        assert_eq!((r.status, r.text().as_str()), (200, "a"), "{driver}");
        assert_eq!(r.header("connection"), Some("close"), "{driver}");
        assert_eq!(
            p.wait_exit(Duration::from_secs(15)).code(),
            Some(0),
            "{driver}"
        );
    }
}

/// With `watch: true`, a config written in place in two writes, the second 0.6 s after
/// the first, is applied whole: the first half is a valid config too (without route
/// `GET /b`), and the watcher used to apply whatever its once-a-second poll found, so
/// `/b` answered 404 until the next poll.
#[test]
fn watch_never_applies_a_file_caught_half_written() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    for driver in DRIVERS {
        let port = free_port();
        let full = |v: u32| {
            format!(
                r#"watch: true
server:
  listen: ["127.0.0.1:{port}"]
  workers: 2
apis:
  app:
    stages: {{ $default: {{}} }}
    routes:
      "GET /a": {{ integration: {{ type: mock, status: 200, body: a{v} }} }}
      "GET /b": {{ integration: {{ type: mock, status: 200, body: b{v} }} }}
"#
            )
        };
        let p = Portico::start_at(&full(0), driver, port);
        let (stop, missed) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let asker = {
            let (stop, missed, addr) = (stop.clone(), missed.clone(), p.addr);
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                while !stop.load(Ordering::Relaxed) {
                    if c.get("/b", "t").status != 200 {
                        missed.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        for v in 1..=3 {
            // The watcher polls once a second, and the last version was seen applied just
            // after a poll: 0.4 s from here, the next poll falls within the 0.6 s the
            // file is half-written.
            std::thread::sleep(Duration::from_millis(400));
            let text = full(v);
            let cut = text.find("      \"GET /b\"").unwrap();
            let mut f = std::fs::File::create(&p.config).unwrap();
            std::io::Write::write_all(&mut f, &text.as_bytes()[..cut]).unwrap();
            std::thread::sleep(Duration::from_millis(600));
            std::io::Write::write_all(&mut f, &text.as_bytes()[cut..]).unwrap();
            drop(f);
            let want = format!("a{v}");
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while p.get("/a").text() != want {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{driver}: version {v} not applied: {}",
                    p.log_text()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        stop.store(true, Ordering::Relaxed);
        asker.join().unwrap();
        assert_eq!(
            missed.load(Ordering::Relaxed),
            0,
            "{driver}: /b was dropped by a half-written file: {}",
            p.log_text()
        );
        // The log line follows the workers' switch.
        let reloads = || p.log_text().matches("config reloaded").count();
        assert!(eventually(|| reloads() >= 3), "{driver}: {}", p.log_text());
        assert_eq!(reloads(), 3, "{driver}: {}", p.log_text());
    }
}

/// A second SIGTERM or SIGINT during the drain ends it: a request that would hold the
/// stop for `drain_timeout` is cut at once and the process exits 0 (after writing its
/// last log lines and usage). The second signal used to be ignored, leaving SIGKILL,
/// which writes nothing, as the only way to stop sooner.
#[test]
fn a_second_signal_ends_the_drain_at_once() {
    let origin = Origin::start(|_, s| {
        std::thread::sleep(Duration::from_secs(10));
        respond(s, 200, &[], b"late");
        true
    });
    for (driver, second) in DRIVERS.into_iter().zip([2, 15]) {
        let yaml = proxy_config(origin.addr, 2)
            .replace("drain_timeout: 5s", "drain_timeout: 30s")
            .replace("timeout: 2s }", "timeout: 29s }");
        let mut p = Portico::start(&yaml, driver);
        let slow = stop_with_a_request_under_way(&p, &origin);
        std::thread::sleep(Duration::from_millis(300));
        p.signal(second);
        let status = p.wait_exit(Duration::from_secs(5));
        assert_eq!(status.code(), Some(0), "{driver}");
        assert!(
            read_response(&mut std::io::BufReader::new(slow), false).is_err(),
            "{driver}: the cut request has no answer"
        );
    }
}

/// A reload that changes what only a restart applies says so in its answer, with the
/// key path: `POST /reload` used to answer a bare "Reloaded" to `workers: 2` → `1`
/// while two workers went on serving (only the log, without a key path, said it).
#[test]
fn an_admin_reload_names_the_keys_that_wait_for_a_restart() {
    // The admin API and the reload run on their own threads: the driver plays no part.
    let driver = DRIVERS[0];
    let (port, admin_port) = (free_port(), free_port());
    let yaml = listeners_config(&[port], admin_port);
    let p = Portico::start_at(&yaml, driver, port);
    let admin_addr = ([127, 0, 0, 1], admin_port).into();
    let reload = || {
        let r = admin(admin_addr, "POST", "/reload", Some("t0ken"), None);
        assert_eq!(r.status, 200, "{}", r.text());
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()
    };
    assert_eq!(reload()["warnings"], serde_json::json!([]));
    std::fs::write(&p.config, yaml.replace("workers: 2", "workers: 1")).unwrap();
    let answer = reload();
    let warnings = answer["warnings"].as_array().expect("a list of warnings");
    assert!(
        warnings.iter().any(|w| w["path"] == "server.workers"
            && w["message"].as_str().unwrap().contains("next restart")),
        "{answer}"
    );
    let health = admin(admin_addr, "GET", "/health", None, None);
    assert!(health.text().contains("\"workers\":2"), "{}", health.text());
    assert!(p.log_text().contains("server.workers"), "{}", p.log_text());
    // Again with `workers: 1`: still waiting. Put back to what runs: nothing waits.
    let answer = reload();
    assert_eq!(
        answer["warnings"].as_array().map(Vec::len),
        Some(1),
        "{answer}"
    );
    std::fs::write(&p.config, &yaml).unwrap();
    assert_eq!(reload()["warnings"], serde_json::json!([]));
}

/// `GET /config` is the running config: after a reload that changes keys that wait for
/// a restart, it shows the values still running, not the file's. It served the new
/// file whole: `workers: 1` beside `/health`'s two workers, and an `admin.listen` on a
/// port the admin API was not answering on.
#[test]
fn get_config_after_a_reload_shows_the_running_restart_only_values() {
    // The admin API and the reload run on their own threads: the driver plays no part.
    let driver = DRIVERS[0];
    let (port, admin_port, other_port) = (free_port(), free_port(), free_port());
    let yaml = listeners_config(&[port], admin_port);
    let p = Portico::start_at(&yaml, driver, port);
    let admin_addr = ([127, 0, 0, 1], admin_port).into();
    let config = || {
        let r = admin(admin_addr, "GET", "/config", Some("t0ken"), None);
        assert_eq!(r.status, 200, "{}", r.text());
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()
    };
    let before = config();
    // Another state_dir too (listeners_config makes a new one), and a change that applies.
    let changed = listeners_config(&[port], other_port)
        .replace("workers: 2", "workers: 1")
        .replace("body: a", "body: b");
    std::fs::write(&p.config, &changed).unwrap();
    let r = admin(admin_addr, "POST", "/reload", Some("t0ken"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let after = config();
    for key in ["/server/workers", "/admin", "/state_dir"] {
        assert_eq!(after.pointer(key), before.pointer(key), "{key}: {after}");
    }
    assert_eq!(after["server"]["workers"], 2, "{after}");
    let integration = "/apis/app/routes/GET ~1a/integration/body";
    assert_eq!(
        after.pointer(integration),
        Some(&serde_json::json!("b")),
        "{after}"
    );
}

/// A reload warns what `check` warns: an upstream host name that does not resolve is
/// named at its key path in `POST /reload`'s answer too. Only `check` looked names up,
/// so the reload answered no warnings for a file `check` warned about.
#[test]
fn an_admin_reload_warns_of_a_host_name_that_does_not_resolve() {
    // The admin API and the reload run on their own threads: the driver plays no part.
    let driver = DRIVERS[0];
    let (port, admin_port) = (free_port(), free_port());
    let yaml = listeners_config(&[port], admin_port);
    let p = Portico::start_at(&yaml, driver, port);
    // `.invalid` never resolves (RFC 2606).
    let ghost =
        format!("{yaml}upstreams:\n  ghost: {{ targets: [\"no-such-host.invalid:80\"] }}\n");
    let (code, out) = check(&ghost);
    assert_eq!(code, 0, "{out}");
    let want = r#"upstreams.ghost.targets[0]: "no-such-host.invalid" does not resolve"#;
    assert!(out.contains(want), "{out}");
    std::fs::write(&p.config, &ghost).unwrap();
    let admin_addr = ([127, 0, 0, 1], admin_port).into();
    let r = admin(admin_addr, "POST", "/reload", Some("t0ken"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let answer: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let warnings = answer["warnings"].as_array().expect("a list of warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w["path"] == "upstreams.ghost.targets[0]"
                && w["message"].as_str().unwrap().contains("does not resolve")),
        "{answer}"
    );
}

/// `check` and `run` agree on a listener on port 0: both refuse it at its key path. Each
/// worker binds its own SO_REUSEPORT socket, so `run` used to serve on as many random
/// ports as it had workers, none of them logged, after `check` had said "ok".
#[test]
fn check_and_run_refuse_a_listener_on_port_0() {
    let yaml = "server: { listen: [\"127.0.0.1:0\"], workers: 2 }\napis:\n  app:\n    stages: { $default: {} }\n    routes:\n      \"GET /a\": { integration: { type: mock, status: 200, body: a } }\n";
    let want = "server.listen[0]: 127.0.0.1:0: port 0 is no fixed port";
    let (code, out) = check(yaml);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(want), "{out}");
    let dir = temp_dir("port0");
    let (config, log) = (dir.join("portico.yaml"), dir.join("stderr"));
    std::fs::write(&config, yaml).unwrap();
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["run", "-c"])
        .arg(&config)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            run.kill().unwrap();
            let _ = run.wait();
            panic!("run served a config check refuses");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains(want), "{err}");
}

/// A reload that adds an address another process holds is refused at that address's
/// key path (it said `server.listen`, not which entry), the running config keeps
/// serving, and the next good reload works.
#[test]
fn a_reload_onto_a_taken_address_names_it_and_the_next_one_works() {
    for driver in DRIVERS {
        let taken = listen_on_free_port();
        let taken_port = taken.local_addr().unwrap().port();
        let (port, admin_port) = (free_port(), free_port());
        let one = listeners_config(&[port], admin_port);
        let p = Portico::start_at(&one, driver, port);
        let admin_addr = ([127, 0, 0, 1], admin_port).into();
        std::fs::write(&p.config, listeners_config(&[port, taken_port], admin_port)).unwrap();
        let r = admin(admin_addr, "POST", "/reload", Some("t0ken"), None);
        assert_eq!(r.status, 400, "{}", r.text());
        let errors: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(errors["errors"][0]["path"], "server.listen[1]", "{errors}");
        assert!(
            p.log_text().contains("server.listen[1]: cannot listen on"),
            "{}",
            p.log_text()
        );
        assert_eq!(p.get("/a").status, 200, "{driver}");
        drop(taken);
        let r = admin(admin_addr, "POST", "/reload", Some("t0ken"), None);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            send_to(
                ([127, 0, 0, 1], taken_port).into(),
                b"GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            )
            .status,
            200
        );
    }
}

/// A reload asked for during a stop is refused, not answered "Reloaded" for a config
/// whose new addresses never listen (the stop closes the workers that would apply it):
/// `POST /reload` gets a 503, a SIGHUP a log line. nginx's master ignores a reload once
/// a quit began.
#[test]
fn a_reload_during_a_stop_is_refused() {
    let origin = Origin::start(|_, s| {
        std::thread::sleep(Duration::from_secs(3));
        respond(s, 200, &[], b"late");
        true
    });
    for driver in DRIVERS {
        let admin_port = free_port();
        let admin_addr: std::net::SocketAddr = ([127, 0, 0, 1], admin_port).into();
        let yaml = proxy_config(origin.addr, 2)
            .replace("drain_timeout: 5s", "drain_timeout: 10s")
            .replace("timeout: 2s }", "timeout: 10s }")
            .replace(
                "upstreams:",
                &format!("admin: {{ listen: \"{admin_addr}\", token: t0ken }}\nupstreams:"),
            );
        let mut p = Portico::start(&yaml, driver);
        let slow = stop_with_a_request_under_way(&p, &origin);
        let r = admin(admin_addr, "POST", "/reload", Some("t0ken"), None);
        assert_eq!(r.status, 503, "{driver}: {}", r.text());
        assert!(r.text().contains("stopping"), "{driver}: {}", r.text());
        p.signal(1);
        assert!(
            eventually(|| p.log_text().contains("reload refused: Portico is stopping")),
            "{driver}: {}",
            p.log_text()
        );
        assert!(!p.log_text().contains("config reloaded"), "{driver}");
        // The request under way is still served, then the process ends.
        let r = read_response(&mut std::io::BufReader::new(slow), false).unwrap();
        assert_eq!(r.status, 200, "{driver}");
        assert_eq!(
            p.wait_exit(Duration::from_secs(10)).code(),
            Some(0),
            "{driver}"
        );
    }
}

/// Sends `GET /slow` to the slow `origin` through `p`, then, once the origin has it,
/// SIGTERM, and waits for the drain to begin: the connection of the request under way.
fn stop_with_a_request_under_way(p: &Portico, origin: &Origin) -> TcpStream {
    let mut slow = p.connect();
    let before = origin.requests.load(std::sync::atomic::Ordering::SeqCst);
    std::io::Write::write_all(&mut slow, b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert!(eventually(|| origin
        .requests
        .load(std::sync::atomic::Ordering::SeqCst)
        > before));
    p.signal(15);
    assert!(
        eventually(|| p.log_text().contains("draining")),
        "{}",
        p.log_text()
    );
    slow
}
