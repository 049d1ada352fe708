//! How a connection ends: its last response and its FIN in one segment, and the
//! lingering close of one whose client may still be sending.
//!
//! When a connection closes after a response (its client asked to, an HTTP/1.0 client,
//! a drain), a plain socket sent the response, then a segment of its own for the FIN at
//! the close, and the client acknowledged the response alone before sending its own FIN:
//! twelve segments on the wire for a one-request connection where ten do. Here the
//! response's bytes are handed to the kernel with `MSG_MORE`, which holds a last partial
//! segment back, and writing is shut down at once: Linux sets the FIN on the queued
//! segment and sends it, and the client acknowledges data and FIN with its own FIN. On
//! loopback, 1-2 µs less of the server's CPU per such connection (`loadtest/compare
//! --new-conn`: 0.92-0.95x nginx's CPU per connection, 1.00-1.01x before), and fewer
//! packets on any network.
//!
//! These are system calls of their own, not io_uring operations: monoio's send takes no
//! flags. The socket is non-blocking, so nothing waits here; a send the kernel can't take
//! whole (a full send buffer) is finished by the regular write, and the FIN then goes at
//! the close as before. Only plain sockets: TLS writes its close_notify after the response.

use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use bytes::Buf;
use monoio::io::AsyncWriteRent;

use crate::runtime::socket_now::counted;
use crate::runtime::WorkerCtx;
use crate::server::conn::{Conn, LINGER_QUIET, LINGER_TOTAL};
use crate::tls::Io;

impl Conn {
    /// Writes `wbuf` whole and clears it: the rest of a response. When `keep` is false the
    /// connection closes after it, and its FIN goes with the response's last bytes.
    pub(crate) async fn flush_response(&mut self, keep: bool) -> std::io::Result<()> {
        if !keep {
            self.send_with_fin(0);
            if self.wbuf.is_empty() {
                return Ok(());
            }
        }
        self.flush_wbuf().await
    }

    /// `write_wbuf_and_upstream_bytes`, for bytes that end a response; when `keep` is false
    /// the FIN goes with them.
    pub(crate) async fn finish_with_upstream_bytes(
        &mut self,
        n: usize,
        keep: bool,
    ) -> std::io::Result<()> {
        let n = if keep { n } else { self.send_with_fin(n) };
        if n == 0 && self.wbuf.is_empty() {
            return Ok(());
        }
        self.write_wbuf_and_upstream_bytes(n).await
    }

    /// Closes a connection whose client may still be sending, as nginx's lingering close:
    /// FIN (after close_notify on TLS), then what comes is read and dropped until the
    /// client closes, goes quiet for `LINGER_QUIET`, `LINGER_TOTAL` has passed or the
    /// worker drains. Closing a socket with unread bytes in it sends a reset, and a reset
    /// can reach the client before it has read the answer: an upload answered 413 or 401
    /// early, or a backend's early answer, was seen as "connection reset" instead.
    pub(super) async fn linger(&mut self, ctx: &WorkerCtx) {
        // Bounded: a TLS client that reads nothing can't hold the close_notify.
        if !matches!(
            monoio::time::timeout(Duration::from_secs(1), self.stream.shutdown()).await,
            Ok(Ok(()))
        ) {
            return;
        }
        let end = Instant::now() + LINGER_TOTAL;
        while !ctx.drain.closing() {
            self.rbuf.clear();
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let read = monoio::select! {
                r = self.read_client() => r,
                _ = ctx.timers.sleep(LINGER_QUIET.min(left)) => return,
                _ = ctx.drain.wait() => return,
            };
            if !matches!(read, Ok(n) if n > 0) {
                return;
            }
        }
    }

    /// Sends what it can of `wbuf` and then `ubuf[..n]` at once; when all of it went, shuts
    /// writing down. Takes what was sent off `wbuf` and `ubuf`; returns how many of the `n`
    /// body bytes are still to write (the regular write sends them, and any error).
    fn send_with_fin(&mut self, n: usize) -> usize {
        let Io::Plain(tcp) = &self.stream else {
            return n;
        };
        let Ok(sent) = send_then_fin(tcp.as_raw_fd(), &self.wbuf, &self.ubuf[..n]) else {
            return n;
        };
        let from_head = sent.min(self.wbuf.len());
        self.wbuf.drain(..from_head);
        self.ubuf.advance(sent - from_head);
        n - (sent - from_head)
    }
}

/// Queues `head` and then `body` on the non-blocking socket `fd` with `MSG_MORE`; if the
/// kernel took every byte, shuts writing down so that the FIN leaves with the last of
/// them. Returns how many bytes it took (an error: none, e.g. `WouldBlock`).
fn send_then_fin(fd: RawFd, head: &[u8], body: &[u8]) -> std::io::Result<usize> {
    let mut iov = [
        libc::iovec {
            iov_base: head.as_ptr() as *mut libc::c_void,
            iov_len: head.len(),
        },
        libc::iovec {
            iov_base: body.as_ptr() as *mut libc::c_void,
            iov_len: body.len(),
        },
    ];
    // SAFETY: an all-zero msghdr is a valid empty one; it points at `iov`, which points
    // into `head` and `body`, all alive across the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = if body.is_empty() { 1 } else { 2 };
    let flags = libc::MSG_MORE | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    // SAFETY: `msg` is valid for the call (see above).
    let sent = counted(unsafe { libc::sendmsg(fd, &msg, flags) })?;
    if sent == head.len() + body.len() {
        // A failure (the peer reset, say) leaves the bytes queued: the close still sends
        // them with its FIN, or the reset has made them moot.
        // SAFETY: a plain system call on a descriptor we own.
        unsafe { libc::shutdown(fd, libc::SHUT_WR) };
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::socket_now::tests::pair;
    use std::io::Read;
    use std::net::TcpStream;

    /// Segments the socket has received.
    fn segments_in(s: &TcpStream) -> u32 {
        crate::integration::tcp_info(s.as_raw_fd())
            .expect("TCP_INFO")
            .tcpi_segs_in
    }

    /// `send_then_fin` of `head` and `body` to a client that reads to the end: what it
    /// read, and the segments that came.
    fn sent_with_fin(head: &[u8], body: &[u8]) -> (Vec<u8>, u32) {
        let (mut client, server) = pair();
        let sent = send_then_fin(server.as_raw_fd(), head, body).unwrap();
        assert_eq!(sent, head.len() + body.len());
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        (got, segments_in(&client))
    }

    /// The client gets head, body and end of stream, and data and FIN came in one
    /// segment: after the handshake's SYN-ACK, exactly one more.
    #[test]
    fn the_fin_rides_with_the_response() {
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\n";
        let (got, segments) = sent_with_fin(head, b"hello");
        assert_eq!(&got[..head.len()], head);
        assert_eq!(&got[head.len()..], b"hello");
        assert_eq!(segments, 2, "SYN-ACK, then data with the FIN");
    }

    /// The same without `send_then_fin`, to show the count above can tell: data, then
    /// the FIN on its own.
    #[test]
    fn a_plain_write_and_close_take_a_segment_more() {
        use std::io::Write;
        let (mut client, mut server) = pair();
        server.set_nonblocking(false).unwrap();
        server
            .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
            .unwrap();
        // Let the data leave before the close, as it does when the close comes later.
        let mut first = [0u8; 4];
        client.read_exact(&mut first).unwrap();
        drop(server);
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert_eq!(segments_in(&client), 3, "SYN-ACK, data, FIN");
    }

    /// A head alone (an empty body) goes the same way.
    #[test]
    fn a_head_alone_gets_its_fin_too() {
        let head = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        let (got, segments) = sent_with_fin(head, b"");
        assert_eq!(&got[..], head);
        assert_eq!(segments, 2);
    }

    /// More than the send buffer takes: what the kernel took is reported, the socket is
    /// not shut down, and the rest can follow (the regular write's part), then the close.
    #[test]
    fn a_send_the_kernel_cannot_take_whole_is_continued() {
        use std::io::Write;
        let (mut client, mut server) = pair();
        socket2::SockRef::from(&server)
            .set_send_buffer_size(4096)
            .unwrap();
        let body: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let sent = send_then_fin(server.as_raw_fd(), b"HEAD\r\n", &body).unwrap();
        assert!(
            sent < 6 + body.len(),
            "the kernel took it all: no partial send"
        );
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            client.read_to_end(&mut got).unwrap();
            got
        });
        server.set_nonblocking(false).unwrap();
        let mut all = b"HEAD\r\n".to_vec();
        all.extend_from_slice(&body);
        server.write_all(&all[sent..]).unwrap();
        drop(server);
        let got = reader.join().unwrap();
        assert!(got == all, "bytes lost or out of order");
    }
}
