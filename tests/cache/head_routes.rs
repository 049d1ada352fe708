//! A `HEAD` route of its own beside a cached `GET` route: its requests look up the key the
//! `GET` route's entries are kept under (a HEAD is answered from GET entries), and each
//! one evicted the `GET` route's entry (another route's tag read as a stale config).

use super::*;

/// Says which route's integration answered (`/hh/…` is the HEAD routes'); a GET body
/// names the origin's sequence number. `…/slow` answers after 300 ms.
fn head_origin() -> Origin {
    let seq = Arc::new(AtomicUsize::new(0));
    Origin::start(move |req, s| {
        let n = seq.fetch_add(1, Ordering::SeqCst) + 1;
        if req.target.ends_with("slow") {
            thread::sleep(Duration::from_millis(300));
        }
        let from = if req.target.starts_with("/hh") {
            "head-route"
        } else {
            "get-route"
        };
        let body = format!("{} {} #{n}", req.method, req.target);
        if req.method == "HEAD" {
            let head = format!(
                "HTTP/1.1 200 OK\r\nx-from: {from}\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
        } else {
            respond(s, 200, &[("x-from", from)], body.as_bytes());
        }
        true
    })
}

fn head_config(origin: SocketAddr, get_path: &str) -> String {
    let head = one_origin_head(origin);
    let http = "type: http, upstream: origin, timeout: 2s";
    format!(
        r#"{head}apis:
  app:
    stages:
      $default: {{ cache: {{ capacity: 1MiB }} }}
    routes:
      "GET /h":
        integration: {{ {http}, path: {get_path} }}
        cache: {{ ttl: 60s }}
      "HEAD /h":
        integration: {{ {http}, path: /hh }}
        cache: {{ ttl: 60s }}
      "GET /slow":
        integration: {{ {http} }}
        cache: {{ ttl: 60s }}
      "HEAD /slow":
        integration: {{ {http}, path: /hh/slow }}
        cache: {{ ttl: 60s }}
"#
    )
}

/// Rewrites the config and waits for the reload to be applied.
fn reload(p: &Portico, yaml: &str) {
    let before = p.log_text().matches("config reloaded").count();
    std::fs::write(
        &p.config,
        yaml.replace("{PORT}", &p.addr.port().to_string()),
    )
    .unwrap();
    p.signal(1);
    assert!(
        eventually(|| p.log_text().matches("config reloaded").count() > before),
        "no reload: {}",
        p.log_text()
    );
    thread::sleep(Duration::from_millis(100));
}

#[test]
fn a_head_route_neither_evicts_nor_reads_the_get_routes_entries() {
    for driver in DRIVERS {
        let origin = head_origin();
        let p = Portico::start(&head_config(origin.addr, "/h"), driver);
        let first = get(&p, "/h");
        assert_eq!(first.text(), "GET /h #1", "{driver}");
        for _ in 0..2 {
            let head = send(&p, "HEAD", "/h", "");
            assert_eq!(head.header("x-from"), Some("head-route"), "{driver}");
            assert_eq!(get(&p, "/h").text(), first.text(), "{driver}: evicted");
        }
        assert_eq!(fetched(&origin, "/h"), 1, "{driver}");
        assert_eq!(fetched(&origin, "/hh"), 2, "{driver}");

        // Nor is a HEAD answered from the GET route's fetch under way.
        let addr = p.addr;
        let slow = thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                .unwrap();
            read_response(&mut BufReader::new(s), false).unwrap()
        });
        thread::sleep(Duration::from_millis(100));
        let head = send(&p, "HEAD", "/slow", "");
        assert_eq!(head.header("x-from"), Some("head-route"), "{driver}");
        let filled = slow.join().unwrap();
        assert_eq!(filled.header("x-from"), Some("get-route"), "{driver}");
        assert_eq!(get(&p, "/slow").text(), filled.text(), "{driver}");
        assert_eq!(fetched(&origin, "/slow"), 1, "{driver}");

        // A reload that changes the GET route still drops its entries.
        reload(&p, &head_config(origin.addr, "/h"));
        assert_eq!(get(&p, "/h").text(), first.text(), "{driver}: kept");
        reload(&p, &head_config(origin.addr, "/h2"));
        let moved = get(&p, "/h");
        assert!(
            moved.text().starts_with("GET /h2 #"),
            "{driver}: {}",
            moved.text()
        );
        assert_eq!(get(&p, "/h").text(), moved.text(), "{driver}");
    }
}
