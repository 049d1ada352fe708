//! Clients that connect in a loop while a listener closes under them (stop, reload).
// Test harness threads share counters; no request path here.
#![allow(clippy::disallowed_types)]

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Clients that connect, send one `Connection: close` request and read its answer, in a
/// loop, each until a connect is refused (a stop or a reload closed the listener): what a
/// client sees while a listener closes under it.
pub struct ConnectLoop {
    pub answered: Arc<AtomicUsize>,
    /// Connections reset or closed unanswered after their connect had succeeded.
    pub lost: Arc<AtomicUsize>,
    refused: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl ConnectLoop {
    pub fn start(addr: SocketAddr, clients: usize) -> ConnectLoop {
        let answered = Arc::new(AtomicUsize::new(0));
        let lost = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicBool::new(false));
        let threads = (0..clients)
            .map(|_| {
                let (answered, lost, refused) = (answered.clone(), lost.clone(), refused.clone());
                thread::spawn(move || {
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while Instant::now() < deadline {
                        let Ok(mut s) = TcpStream::connect(addr) else {
                            refused.store(true, Ordering::SeqCst);
                            return;
                        };
                        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
                        let sent =
                            s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
                        let mut buf = [0u8; 64];
                        match (sent, std::io::Read::read(&mut s, &mut buf)) {
                            (Ok(()), Ok(n)) if buf[..n].starts_with(b"HTTP/1.1 ") => {
                                answered.fetch_add(1, Ordering::SeqCst);
                            }
                            // Reset, or closed unanswered: the request is lost.
                            _ => {
                                lost.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                })
            })
            .collect();
        ConnectLoop {
            answered,
            lost,
            refused,
            threads,
        }
    }

    /// Waits (10 s at most) until `n` requests were answered.
    pub fn wait_answered(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.answered.load(Ordering::SeqCst) < n && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for every client to meet a refused connect; (answered, lost, refused).
    pub fn join(self) -> (usize, usize, bool) {
        for t in self.threads {
            t.join().unwrap();
        }
        (
            self.answered.load(Ordering::SeqCst),
            self.lost.load(Ordering::SeqCst),
            self.refused.load(Ordering::SeqCst),
        )
    }
}
