//! A close the server decides (here `max_duration`) while the client is still sending:
//! the client must get the close frame, then the end of the stream, never a reset. The
//! socket was closed right after `$disconnect` with the client's messages unread, and
//! the kernel's reset cut the close frame off (a websockets client saw 1006). Now the
//! server reads and drops what still comes until the client closes (RFC 6455 §7.1.1).
//! Nor does a message read after a DeleteConnection reach an integration.

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

/// A message the client sends after a DeleteConnection, while the server's writer waits
/// on a client that reads nothing (so the close frame is not out yet, and reading is not
/// paused), is read and dropped: one still reached the integration, for a connection
/// that `@connections` already answered 410 for.
#[test]
fn a_message_after_a_delete_connection_reaches_no_integration() {
    use std::os::fd::AsRawFd;
    let counted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = counted.clone();
    let counter = Origin::start(move |_, s| {
        seen.fetch_add(1, Ordering::SeqCst);
        respond(s, 200, &[], b"");
        true
    });
    for driver in DRIVERS {
        let dir = temp_dir("ws-delete-drops");
        let admin = free_port();
        let routes = format!(
            "{ECHO_ROUTES}      count: {{ integration: {{ type: http, upstream: counter }} }}\n"
        );
        let yaml = ws_api_config(admin, &dir.join("state"), "", &routes);
        let yaml = format!(
            "{yaml}upstreams: {{ counter: {{ targets: [\"{}\"] }} }}\n",
            counter.addr
        );
        let p = Portico::start(&yaml, driver);
        let (mut s, id) = open_learning_id(&p);
        // A small receive buffer: the server's writer blocks after little.
        let small: libc::c_int = 4096;
        // SAFETY: a valid socket and option of the size given.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&small as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        let enc = id
            .replace('=', "%3D")
            .replace('/', "%2F")
            .replace('+', "%2B");
        let a = std::net::SocketAddr::from(([127, 0, 0, 1], admin));
        let client = s.local_addr().unwrap();
        // Posts until the kernel holds no more of them (the server's send queue stops
        // growing): the writer then waits, with a post or two queued behind it, less
        // than the 64 KiB past which the client is not read.
        let post = format!(
            "POST /@connections/{enc} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer secret\r\nContent-Length: 16384\r\nConnection: close\r\n\r\n{}",
            "p".repeat(16384)
        );
        let (mut last, mut same) = (0, 0);
        for _ in 0..3000 {
            assert_eq!(send_to(a, post.as_bytes()).status, 200, "{driver}");
            std::thread::sleep(Duration::from_millis(3));
            let queued = send_queue(p.addr, client);
            same = if queued == last { same + 1 } else { 0 };
            last = queued;
            if same == 2 {
                break;
            }
        }
        assert_eq!(same, 2, "{driver}: the send queue kept growing");
        let delete = format!("DELETE /@connections/{enc} HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer secret\r\nConnection: close\r\n\r\n");
        assert_eq!(send_to(a, delete.as_bytes()).status, 204, "{driver}");
        s.write_all(&masked_text(br#"{"action":"count"}"#)).unwrap();
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(
            counted.load(Ordering::SeqCst),
            0,
            "{driver}: a message after the delete reached the integration"
        );
    }
}

/// The bytes Portico's side of the connection to `client` has not had acknowledged.
fn send_queue(portico: std::net::SocketAddr, client: std::net::SocketAddr) -> u64 {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port_of = |field: &str| u16::from_str_radix(field.rsplit(':').next().unwrap(), 16).unwrap();
    let line = table.lines().skip(1).find(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        port_of(f[1]) == portico.port() && port_of(f[2]) == client.port()
    });
    let queues = line
        .expect("the connection")
        .split_whitespace()
        .nth(4)
        .unwrap();
    u64::from_str_radix(queues.split(':').next().unwrap(), 16).unwrap()
}
