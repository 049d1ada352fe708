//! One system call on a non-blocking socket, where it beats an io_uring operation or
//! where none would do (`peek`: what is waiting, left there).
//!
//! When a socket is known to be readable (a readiness wait just ended), or a write will
//! most likely fit its send buffer, a plain `recv` or `send` finishes at once, and costs
//! less than an operation's way through the ring and monoio's bookkeeping for it: in a
//! WebSocket passthrough at peak, 4-11 % less CPU per message (binaries alternated by
//! hand; `loadtest/compare --websocket`: 1.02-1.04x nginx's CPU per message, 1.09-1.13x
//! before). Neither waits: a `WouldBlock` sends the caller back to the runtime's own
//! operation, which does.
//!
//! Only under io_uring: monoio's epoll driver already starts each operation with the system
//! call, and keeps readiness state that a recv behind its back would leave stale.

use std::io;
use std::os::fd::RawFd;

use bytes::BytesMut;

/// Receives into `buf`'s spare capacity, which must not be empty (Ok(0) is the end of
/// the stream).
pub(crate) fn recv_now(fd: RawFd, buf: &mut BytesMut) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    debug_assert!(!spare.is_empty(), "no room to receive into");
    // SAFETY: the kernel writes at most `spare.len()` bytes into `spare`, which is
    // writable (uninitialised) memory of `buf`.
    let n = unsafe {
        libc::recv(
            fd,
            spare.as_mut_ptr().cast(),
            spare.len(),
            libc::MSG_DONTWAIT,
        )
    };
    let n = counted(n)?;
    // SAFETY: the kernel initialised the first `n` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Sends what the socket takes of `bytes` now; how many it took.
pub(crate) fn send_now(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: `bytes` is readable for its length across the call.
    let n = unsafe {
        libc::send(
            fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    counted(n)
}

/// Copies what is waiting on `fd` into `buf` and leaves it there.
pub(crate) fn peek(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for its length of writes for the duration of the call.
    let n = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    counted(n)
}

/// Whether bytes are waiting on `fd` to be read. The end of the stream alone, an error or
/// nothing yet are not.
pub(crate) fn bytes_waiting(fd: RawFd) -> bool {
    matches!(peek(fd, &mut [0u8; 1]), Ok(n) if n > 0)
}

/// A byte count from a system call that returns -1 on failure.
pub(crate) fn counted(n: isize) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    /// A connected pair: the first end's reads give up after 10 s, the second end is
    /// non-blocking, as the sockets monoio accepts are.
    pub(crate) fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        a.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let (b, _) = listener.accept().unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    #[test]
    fn recv_appends_what_is_there_and_never_waits() {
        let (mut a, b) = pair();
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(b"kept ");
        let e = recv_now(b.as_raw_fd(), &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        a.write_all(b"then more").unwrap();
        let mut n = 0;
        for _ in 0..1000 {
            match recv_now(b.as_raw_fd(), &mut buf) {
                Ok(k) => {
                    n += k;
                    if n == 9 {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(&buf[..], b"kept then more");
        drop(a);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(
            recv_now(b.as_raw_fd(), &mut buf).unwrap(),
            0,
            "end of stream"
        );
    }

    #[test]
    fn bytes_waiting_counts_bytes_not_the_end_of_the_stream() {
        let (mut a, b) = pair();
        assert!(!bytes_waiting(b.as_raw_fd()), "nothing sent yet");
        a.write_all(b"x").unwrap();
        a.shutdown(std::net::Shutdown::Write).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(bytes_waiting(b.as_raw_fd()), "a byte before the FIN");
        assert_eq!(
            recv_now(b.as_raw_fd(), &mut BytesMut::with_capacity(8)).unwrap(),
            1
        );
        assert!(
            !bytes_waiting(b.as_raw_fd()),
            "only the end of the stream is left"
        );
    }

    #[test]
    fn send_takes_what_fits_and_never_waits() {
        let (mut a, b) = pair();
        socket2::SockRef::from(&b)
            .set_send_buffer_size(4096)
            .unwrap();
        let big = vec![7u8; 1 << 20];
        // The reader reads nothing: the socket fills, and then a send takes nothing.
        let mut took = 0;
        let full = (0..1000).any(|_| match send_now(b.as_raw_fd(), &big[took..]) {
            Ok(k) => {
                took += k;
                false
            }
            Err(e) => {
                assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                true
            }
        });
        assert!(full && took > 0 && took < big.len(), "took {took}");
        let mut got = vec![0u8; took];
        a.read_exact(&mut got).unwrap();
        assert!(got.iter().all(|&x| x == 7));
    }
}
