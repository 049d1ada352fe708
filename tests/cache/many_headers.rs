//! A backend answer with nearly as many header fields as Portico relays (256), stored and
//! then hit on a CORS API, where a hit's head is parsed again to be edited: the stored
//! head gains a `content-length` and the hit an `age`, which took it past the parser's
//! slots, and the hit went out as `HTTP/1.1 0` with no headers and no framing.

use super::*;

/// Answers `/many/{n}` with `content-type`, n `x-h*` fields and a chunked body that
/// names the origin's sequence number.
fn many_origin() -> Origin {
    let seq = Arc::new(AtomicUsize::new(0));
    Origin::start(move |req, s| {
        let n = seq.fetch_add(1, Ordering::SeqCst) + 1;
        let fields: usize = req.target.rsplit('/').next().unwrap().parse().unwrap();
        let body = format!("hello {n}");
        let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n".to_vec();
        for i in 0..fields {
            out.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "transfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        let _ = s.write_all(&out);
        true
    })
}

fn many_config(origin: SocketAddr) -> String {
    let head = one_origin_head(origin);
    format!(
        r#"{head}apis:
  app:
    cors: {{ allow_origins: ["https://a.example"] }}
    stages:
      $default: {{ cache: {{ capacity: 4MiB }} }}
    routes:
      "GET /many/{{n}}":
        integration: {{ type: http, upstream: origin, timeout: 2s }}
        cache: {{ ttl: 60s }}
"#
    )
}

#[test]
fn a_hit_of_an_answer_with_many_header_fields_keeps_its_head() {
    for driver in DRIVERS {
        let origin = many_origin();
        let p = Portico::start(&many_config(origin.addr), driver);
        // One keep-alive connection: each answer's framing must line up with the next.
        let s = p.connect();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut get = |path: &str, origin_header: &str| {
            w.write_all(
                format!("GET {path} HTTP/1.1\r\nHost: t\r\n{origin_header}\r\n").as_bytes(),
            )
            .unwrap();
            read_response(&mut r, false).unwrap()
        };
        let cors = "Origin: https://a.example\r\n";
        // 254 fields and transfer-encoding: relayed (256 is the limit), but stored with
        // a content-length and hit with an age, 257: not stored, each request fetches.
        for (n, headers) in [(1, cors), (2, ""), (3, cors)] {
            let a = get("/many/254", headers);
            assert_eq!(
                (a.status, a.text()),
                (200, format!("hello {n}")),
                "{driver}"
            );
            assert_eq!(a.header("x-h253"), Some("v"), "{driver}");
            let cors_header = a.header("access-control-allow-origin");
            assert_eq!(cors_header.is_some(), !headers.is_empty(), "{driver}");
        }
        // One field fewer fits: stored, and its hits carry every field and a length.
        let miss = get("/many/253", cors);
        assert_eq!(miss.text(), "hello 4", "{driver}");
        for headers in [cors, ""] {
            let hit = get("/many/253", headers);
            assert_eq!((hit.status, hit.text()), (200, miss.text()), "{driver}");
            assert_eq!(hit.header("x-h252"), Some("v"), "{driver}");
            assert_eq!(hit.header("content-length"), Some("7"), "{driver}");
            assert!(hit.header("age").is_some(), "{driver}");
        }
        assert_eq!(origin.requests.load(Ordering::SeqCst), 4, "{driver}");
    }
}
