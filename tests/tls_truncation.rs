//! A TLS backend's response cut short by a bare TCP close (no close_notify), as a FIN
//! forged on the path would cut it: the client must not get it as complete. A body with
//! its own length (Content-Length, chunked) shows the cut by its framing; a body delimited
//! by the close is complete only after close_notify (RFC 9112 §9.8), so Portico must not
//! end it with a last chunk either.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::tls::*;
use common::ws::*;
use common::*;
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// An HTTPS backend answering by the request path's last segment: `eof` (close-delimited
/// "part one"), `length` (content-length 100, 8 bytes sent), `chunked` (one chunk, no
/// last chunk). A path with `notify` ends with close_notify, else with a bare close.
fn cutting_origin(leaf: &Leaf) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf.chain_der(), leaf.private_key())
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for sock in listener.incoming().flatten() {
            let config = config.clone();
            thread::spawn(move || answer(sock, config));
        }
    });
    port
}

fn answer(sock: TcpStream, config: Arc<ServerConfig>) {
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut s = StreamOwned::new(ServerConnection::new(config).unwrap(), sock);
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let path = text.split(' ').nth(1).unwrap_or("").to_string();
    let out: &[u8] = match path.rsplit('/').next().unwrap_or("") {
        "eof" => b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\npart one",
        "length" => b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\npart one",
        "chunked" => b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n8\r\npart one\r\n",
        _ => b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
    };
    if s.write_all(out).and_then(|()| s.flush()).is_err() {
        return;
    }
    if path.contains("notify") {
        s.conn.send_close_notify();
        let _ = s.flush();
    }
    let _ = s.sock.shutdown(Shutdown::Both);
}

/// Sends `request` on a new plain connection and reads until Portico closes it.
fn exchange(p: &Portico, request: &str) -> String {
    let mut s = p.connect();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out); // a reset after a cut is an end too
    String::from_utf8_lossy(&out).to_string()
}

fn get(p: &Portico, path: &str, extra: &str) -> String {
    exchange(
        p,
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n"),
    )
}

#[test]
fn a_tls_backend_cut_without_close_notify_is_never_relayed_as_complete() {
    let dir = temp_dir("tls-cut");
    let ca = Ca::new("Backend CA");
    let port = cutting_origin(&ca.server_cert(&["backend.internal"]));
    let ca_file = ca.write(&dir, "backend-ca");
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  workers: 1
upstreams:
  cut:
    targets: ["https://127.0.0.1:{port}"]
    tls: {{ ca: "{}", server_name: backend.internal }}
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "ANY /plain/{{p+}}": {{ integration: {{ type: http, upstream: cut }} }}
  zipped:
    compression: {{ min_size: 1 }}
    stages:
      z: {{}}
    routes:
      "ANY /{{p+}}": {{ integration: {{ type: http, upstream: cut }} }}
"#,
        ca_file.display()
    );
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);

        // Close-delimited, ended with close_notify: whole, with its last chunk.
        let r = get(&p, "/plain/notify/eof", "");
        assert!(r.starts_with("HTTP/1.1 200"), "{driver}: {r}");
        assert!(r.contains("transfer-encoding: chunked"), "{driver}: {r}");
        assert!(r.ends_with("8\r\npart one\r\n0\r\n\r\n"), "{driver}: {r:?}");

        // Close-delimited, bare close: what came is relayed, but no last chunk (it was
        // written, so the client took a possibly cut body for the whole one).
        let r = get(&p, "/plain/bare/eof", "");
        assert!(r.starts_with("HTTP/1.1 200"), "{driver}: {r}");
        assert!(r.contains("8\r\npart one\r\n"), "{driver}: {r:?}");
        assert!(
            !r.ends_with("0\r\n\r\n"),
            "{driver}: cut body ended as whole: {r:?}"
        );

        // The same through the compressor, which re-frames the body itself.
        let gz = "Accept-Encoding: gzip\r\n";
        let r = get(&p, "/z/notify/eof", gz);
        assert!(r.contains("content-encoding: gzip"), "{driver}: {r}");
        assert!(r.ends_with("\r\n0\r\n\r\n"), "{driver}: {r:?}");
        let r = get(&p, "/z/bare/eof", gz);
        assert!(r.contains("content-encoding: gzip"), "{driver}: {r}");
        assert!(
            !r.ends_with("0\r\n\r\n"),
            "{driver}: cut gzip body ended: {r:?}"
        );

        // Bodies that carry their length show the cut by it, close_notify or not.
        for how in ["bare", "notify"] {
            let r = get(&p, &format!("/plain/{how}/length"), "");
            assert!(r.contains("content-length: 100\r\n"), "{driver}: {r}");
            assert!(r.ends_with("\r\n\r\npart one"), "{driver} {how}: {r:?}");
            let r = get(&p, &format!("/plain/{how}/chunked"), "");
            assert!(r.ends_with("8\r\npart one\r\n"), "{driver} {how}: {r:?}");
        }

        // Portico goes on serving on the same worker.
        let r = get(&p, "/plain/notify/eof", "");
        assert!(r.ends_with("0\r\n\r\n"), "{driver}: {r:?}");
        drop(p);
    }
}

/// A WebSocket route's answer from such a backend is a message: one cut by a bare close
/// is not sent as if whole (it was: "part one" went out as the route's answer).
#[test]
fn a_websocket_route_answer_cut_without_close_notify_is_not_sent_as_whole() {
    require_websockets();
    let dir = temp_dir("tls-cut-ws");
    let ca = Ca::new("Backend CA");
    let port = cutting_origin(&ca.server_cert(&["backend.internal"]));
    let ca_file = ca.write(&dir, "backend-ca");
    let routes = "      whole: { integration: { type: http, upstream: cut, path: /notify/eof }, route_response: true }\n      cut: { integration: { type: http, upstream: cut, path: /bare/eof }, route_response: true }\n";
    for driver in DRIVERS {
        let mut cfg = ws_api_config(free_port(), &dir, "", routes);
        cfg.push_str(&format!(
            "upstreams:\n  cut:\n    targets: [\"https://127.0.0.1:{port}\"]\n    tls: {{ ca: \"{}\", server_name: backend.internal }}\n",
            ca_file.display()
        ));
        let p = Portico::start(&cfg, driver);
        let mut ws = WsClient::connect(&format!("ws://{}/prod", p.addr), serde_json::json!({}));
        assert!(ws.is_open(), "{driver}: {}", ws.opened);
        assert_eq!(ws.ask(r#"{"action":"whole"}"#), "part one", "{driver}");
        let cut = ws.ask(r#"{"action":"cut"}"#);
        assert_ne!(cut, "part one", "{driver}: a cut answer went out as whole");
        // The connection goes on.
        assert_eq!(ws.ask(r#"{"action":"whole"}"#), "part one", "{driver}");
        p.stop();
    }
}

/// An HTTP/1.0 client over TLS reads a close-delimited body to the close: after a body
/// the backend cut short, the close must come without close_notify, the only sign the
/// client has that the body is short (RFC 8446 §6.1); a whole body ends with one.
#[test]
fn a_cut_body_reaches_an_http10_tls_client_without_close_notify() {
    let dir = temp_dir("tls-cut-10");
    let backend_ca = Ca::new("Backend CA");
    let port = cutting_origin(&backend_ca.server_cert(&["backend.internal"]));
    let backend_ca_file = backend_ca.write(&dir, "backend-ca");
    let front = Ca::new("Front CA");
    let (crt, key) = front.server_cert(&["t.example"]).write(&dir, "t");
    let tls_port = free_port();
    let yaml = format!(
        r#"server:
  listen: ["127.0.0.1:{{PORT}}"]
  tls_listen: ["127.0.0.1:{tls_port}"]
  workers: 1
upstreams:
  cut:
    targets: ["https://127.0.0.1:{port}"]
    tls: {{ ca: "{}", server_name: backend.internal }}
apis:
  app:
    stages:
      $default: {{}}
    routes:
      "ANY /plain/{{p+}}": {{ integration: {{ type: http, upstream: cut }} }}
domains:
  t.example:
    cert: "{}"
    key: "{}"
    mappings: {{ "": app/$default }}
"#,
        backend_ca_file.display(),
        crt.display(),
        key.display()
    );
    let client = TlsClient::trusting(&front).build();
    for driver in DRIVERS {
        let p = Portico::start(&yaml, driver);
        wait_port(tls_port);
        // With a request pipelined behind it too: the close then lingers (for the unread
        // bytes), which must not send close_notify after a cut body either.
        let pipelined = "GET /plain/notify/eof HTTP/1.0\r\nHost: t.example\r\n\r\n";
        for (path, whole, extra) in [
            ("/plain/notify/eof", true, ""),
            ("/plain/bare/eof", false, ""),
            ("/plain/notify/eof", true, pipelined),
            ("/plain/bare/eof", false, pipelined),
        ] {
            let mut c = client.connect(tls_port, "t.example").unwrap();
            c.write(format!("GET {path} HTTP/1.0\r\nHost: t.example\r\n\r\n{extra}").as_bytes())
                .unwrap();
            let end = c.read_to_end();
            if whole {
                let got = end.unwrap_or_else(|e| panic!("{driver} {path}: {e}"));
                assert!(got.ends_with(b"part one"), "{driver} {path}");
            } else {
                let e = end.expect_err("a cut body ended with close_notify");
                assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{driver}: {e}");
            }
        }
        drop(p);
    }
}
