//! One gathered write of a response head and the body bytes that came with it.
//!
//! A proxied response's head is built in `wbuf`; the first body bytes sit in `ubuf`, read
//! together with the upstream's head. Copying a 16 KiB body behind the head costs more
//! than the `writev` that sends both where they lie, so plain client sockets get that;
//! small bodies (a copy of under `GATHER_FROM` bytes is cheaper than a second iovec) and
//! TLS streams (rustls copies into its records anyway) get the copy.

use bytes::{Buf, BytesMut};
use monoio::buf::IoVecBuf;
use monoio::io::AsyncWriteRent;

use crate::server::conn::Conn;
use crate::tls::Io;

/// From this many body bytes on, the head and body go out in one `writev`.
const GATHER_FROM: usize = 2048;

/// `head` whole, then `body[..body_len]`, from `sent` bytes on. The iovecs live on the
/// heap: the io_uring op holding this value moves before the kernel reads them.
struct HeadAndBody {
    head: Vec<u8>,
    body: BytesMut,
    body_len: usize,
    sent: usize,
    iov: Box<[libc::iovec; 2]>,
    parts: usize,
}

impl HeadAndBody {
    fn left(&self) -> usize {
        self.head.len() + self.body_len - self.sent
    }

    /// Points the iovecs at what is still unsent.
    fn aim(&mut self) {
        let mut parts = 0;
        let mut piece = |iov: &mut [libc::iovec; 2], bytes: &[u8]| {
            if !bytes.is_empty() {
                iov[parts] = libc::iovec {
                    iov_base: bytes.as_ptr() as *mut libc::c_void,
                    iov_len: bytes.len(),
                };
                parts += 1;
            }
        };
        let head_sent = self.sent.min(self.head.len());
        let body_sent = self.sent - head_sent;
        piece(&mut self.iov, &self.head[head_sent..]);
        piece(&mut self.iov, &self.body[body_sent..self.body_len]);
        self.parts = parts;
    }
}

// SAFETY: the iovecs point into `head` and `body`, whose heap bytes neither move nor
// change while the runtime holds this value (nothing touches them until it is returned),
// and `iov` itself is boxed, so its address is stable across moves of `HeadAndBody`.
unsafe impl IoVecBuf for HeadAndBody {
    fn read_iovec_ptr(&self) -> *const libc::iovec {
        self.iov.as_ptr()
    }

    fn read_iovec_len(&self) -> usize {
        self.parts
    }
}

impl Conn {
    /// Writes `wbuf` and then the first `n` bytes of `ubuf`; leaves `wbuf` empty and
    /// `ubuf` advanced past them.
    pub(crate) async fn write_wbuf_and_upstream_bytes(&mut self, n: usize) -> std::io::Result<()> {
        let tcp = match &mut self.stream {
            Io::Plain(tcp) if n >= GATHER_FROM => tcp,
            _ => return self.copy_and_flush(n).await,
        };
        let (res, head, body) = write_gathered(
            tcp,
            std::mem::take(&mut self.wbuf),
            std::mem::take(&mut self.ubuf),
            n,
        )
        .await;
        self.wbuf = head;
        self.ubuf = body;
        res.map(|_| ())
    }

    async fn copy_and_flush(&mut self, n: usize) -> std::io::Result<()> {
        self.wbuf.extend_from_slice(&self.ubuf[..n]);
        self.ubuf.advance(n);
        self.flush_wbuf().await
    }
}

/// Writes `head` and `body[..n]` with `writev` until all is sent; gives back `head`
/// cleared and `body` advanced by `n`, and how many writes it took.
async fn write_gathered<S: AsyncWriteRent>(
    stream: &mut S,
    head: Vec<u8>,
    body: BytesMut,
    n: usize,
) -> (std::io::Result<usize>, Vec<u8>, BytesMut) {
    let mut out = HeadAndBody {
        head,
        body,
        body_len: n,
        sent: 0,
        iov: Box::new(
            [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; 2],
        ),
        parts: 0,
    };
    let mut writes = 0;
    let mut res = Ok(());
    while out.left() > 0 {
        out.aim();
        let (r, back) = stream.writev(out).await;
        out = back;
        writes += 1;
        match r {
            Ok(0) => {
                res = Err(std::io::ErrorKind::WriteZero.into());
                break;
            }
            Ok(k) => out.sent += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                res = Err(e);
                break;
            }
        }
    }
    let HeadAndBody {
        mut head, mut body, ..
    } = out;
    head.clear();
    body.advance(n.min(body.len()));
    (res.map(|()| writes), head, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Head and body through a socket whose send buffer is small, to a reader who waits
    /// before reading: the kernel takes the bytes a piece at a time, and every piece must
    /// continue exactly where the last one stopped, the head's end and the body's too.
    fn partial_writes_continue_where_they_stopped<D: monoio::Buildable + monoio::Driver>(
        mut rt: monoio::Runtime<D>,
    ) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let head: Vec<u8> = (0..777u32).map(|i| (i % 97) as u8).collect();
        let body: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
        let n = body.len() - 100; // the last 100 bytes are the next response's
        let mut want = head.clone();
        want.extend_from_slice(&body[..n]);
        let len = want.len();
        let reader = std::thread::spawn(move || {
            let mut s = small_window_connect(addr);
            s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
            let mut got = vec![0; len];
            s.read_exact(&mut got).unwrap();
            got
        });
        let (std_stream, _) = listener.accept().unwrap();
        socket2::SockRef::from(&std_stream)
            .set_send_buffer_size(4096)
            .unwrap();
        std_stream.set_nonblocking(true).unwrap(); // as the sockets monoio accepts are
        let (res, head_back, body_back) = rt.block_on(async {
            let mut tcp = monoio::net::TcpStream::from_std(std_stream).unwrap();
            write_gathered(&mut tcp, head, BytesMut::from(&body[..]), n).await
        });
        let writes = res.unwrap();
        assert!(
            writes > 1,
            "one write took it all: the test saw no partial write"
        );
        assert!(head_back.is_empty());
        assert_eq!(&body_back[..], &body[n..]);
        let got = reader.join().unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got == want, "bytes out of order or lost");
    }

    /// A connection whose receive buffer is 4 KiB from before it connects, so the window
    /// it offers stays small.
    fn small_window_connect(addr: std::net::SocketAddr) -> std::net::TcpStream {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_recv_buffer_size(4096).unwrap();
        s.connect(&addr.into()).unwrap();
        s.into()
    }

    #[test]
    fn partial_writes_continue_where_they_stopped_under_io_uring() {
        match monoio::RuntimeBuilder::<monoio::IoUringDriver>::new().build() {
            Ok(rt) => partial_writes_continue_where_they_stopped(rt),
            Err(e) => eprintln!("no io_uring here ({e}): the epoll test still runs"),
        }
    }

    #[test]
    fn partial_writes_continue_where_they_stopped_under_epoll() {
        let rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .unwrap();
        partial_writes_continue_where_they_stopped(rt);
    }
}
