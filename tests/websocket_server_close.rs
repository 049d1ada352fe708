//! A close the server decides (here `max_duration`) while the client is still sending:
//! the client must get the close frame, then the end of the stream, never a reset. The
//! socket was closed right after `$disconnect` with the client's messages unread, and
//! the kernel's reset cut the close frame off (a websockets client saw 1006). Now the
//! server reads and drops what still comes until the client closes (RFC 6455 §7.1.1).

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::ws::*;
use common::*;

#[test]
fn a_client_still_sending_gets_the_servers_close_frame() {
    // A `$disconnect` that takes a while: the client's messages pile up unread meanwhile.
    let slow = Origin::start(|_, s| {
        std::thread::sleep(Duration::from_millis(300));
        respond(s, 200, &[], b"");
        true
    });
    for driver in DRIVERS {
        let dir = temp_dir("ws-server-close");
        let routes = format!(
            "{ECHO_ROUTES}      $disconnect: {{ integration: {{ type: http, upstream: slow }} }}\n"
        );
        let yaml = ws_api_config(
            free_port(),
            &dir.join("state"),
            "    limits: { max_duration: 1s }\n",
            &routes,
        );
        let yaml = format!(
            "{yaml}upstreams: {{ slow: {{ targets: [\"{}\"] }} }}\n",
            slow.addr
        );
        let p = Portico::start(&yaml, driver);
        let mut s = p.connect();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = raw_handshake(&mut s, "/prod", "");
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        // A writer that sends 2 KB echo messages without pause until it can't.
        let stop = Arc::new(AtomicBool::new(false));
        let mut w = s.try_clone().unwrap();
        let stopping = stop.clone();
        let writer = std::thread::spawn(move || {
            let body = format!(r#"{{"action":"echo","pad":"{}"}}"#, "x".repeat(2000));
            let frame = masked_text(body.as_bytes());
            while !stopping.load(Ordering::Relaxed) {
                if w.write_all(&frame).is_err() {
                    return;
                }
            }
        });
        // Read every frame until the stream ends: the last one must be the close frame
        // (0x88, code 1001), and the end a FIN, not a reset.
        let mut got = Vec::new();
        // A slow reader: the server's last frames wait in its send queue when it closes.
        let mut buf = vec![0u8; 4096];
        let end = loop {
            match s.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break Err(e),
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        stop.store(true, Ordering::Relaxed);
        let _ = writer.join();
        assert!(end.is_ok(), "{driver}: {end:?} after {} bytes", got.len());
        // Walk the frames (server frames are unmasked).
        let (mut at, mut last) = (0, None);
        while at + 2 <= got.len() {
            let (op, len7) = (got[at], (got[at + 1] & 0x7f) as usize);
            let (len, hdr) = match len7 {
                126 => (u16::from_be_bytes([got[at + 2], got[at + 3]]) as usize, 4),
                127 => panic!("{driver}: a 64-bit frame"),
                n => (n, 2),
            };
            assert!(at + hdr + len <= got.len(), "{driver}: a frame cut short");
            last = Some((op, got[at + hdr..at + hdr + len].to_vec()));
            at += hdr + len;
        }
        let (op, payload) = last.expect("frames");
        assert_eq!(op, 0x88, "{driver}: the last frame is not a close");
        assert_eq!(&payload[..2], &1001u16.to_be_bytes(), "{driver}");
    }
}
