//! A listening socket's set-up: proving its address free before listening on it (at
//! start and on reload), and the options its connections inherit.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Whether `addr` can be listened on: bound as a listener would be (SO_REUSEADDR, no
/// SO_REUSEPORT, so a stale process listening there makes it fail) but never put in the
/// listening state. A listening probe would complete the handshakes of clients that
/// connect in that instant, then reset them when it closes: a client polling for the port
/// at start-up got "connection reset" on its first request.
pub fn address_is_free(addr: SocketAddr) -> std::io::Result<()> {
    use socket2::{Domain, Socket, Type};
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    probe.set_reuse_address(true)?;
    probe.bind(&addr.into())
}

/// [`address_is_free`], asked again for up to half a second while the address is in use:
/// the listeners of a process that just died under io_uring (`kill -9`, an OOM kill) stay
/// bound for tens of milliseconds after it was reaped, while the kernel tears its ring
/// down, and a supervisor restarting at once was told another process listened there.
pub fn free_soon(addr: SocketAddr) -> std::io::Result<()> {
    let until = std::time::Instant::now() + std::time::Duration::from_millis(500);
    loop {
        match address_is_free(addr) {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && std::time::Instant::now() < until =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            done => return done,
        }
    }
}

/// Sets TCP_NODELAY and TCP_USER_TIMEOUT on a listener. Linux creates each accepted
/// socket as a copy of its listener, options included, so every connection has them
/// without a setsockopt of its own: system calls fewer per connection (a request per
/// connection pays them whole).
///
/// TCP_USER_TIMEOUT (`limits.send_timeout`): how long a client may leave what we sent
/// unacknowledged, or keep its receive window shut, before the kernel drops the
/// connection, so a client that stops reading a response can't hold it, its buffers and
/// an upstream connection forever (as nginx's `send_timeout`). Zero: the kernel default.
pub fn set_options_for_connections(
    listener: &impl AsRawFd,
    send_timeout: std::time::Duration,
) -> std::io::Result<()> {
    // SAFETY: the descriptor belongs to `listener`, borrowed for this call only.
    let fd = unsafe { BorrowedFd::borrow_raw(listener.as_raw_fd()) };
    socket2::SockRef::from(&fd).set_nodelay(true)?;
    // By hand: socket2 has TCP_USER_TIMEOUT only behind its "all" feature.
    // Linux refuses values past INT_MAX ms (~24.8 days) with EINVAL: clamp, don't fail.
    let ms = send_timeout.as_millis().min(i32::MAX as u128) as libc::c_uint;
    // SAFETY: a valid descriptor, and a c_uint option value of the size given.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            (&ms as *const libc::c_uint).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Takes the socket out of the LISTEN state at once. Closing alone is not enough under
/// io_uring: the cancelled accept keeps the socket alive until the ring is torn down,
/// which the kernel finishes a few milliseconds after the process exits, so an
/// immediate restart would find the port still taken.
pub fn stop_listening(listener: &impl AsRawFd) {
    // SAFETY: shutdown(2) on a descriptor this listener owns and keeps open for the
    // duration of the call; it touches no memory.
    unsafe {
        libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR);
    }
}

/// Makes the kernel drop every new SYN addressed to `listener` from now on (a socket
/// filter), so no new handshake starts while the worker empties the accept queue and
/// closes it. Everything else still passes, the last ACK of a handshake already under way
/// among it, so those complete and join the queue, where the accept loop or
/// [`take_queued`] takes them (a drop-all filter lost them: their clients thought they
/// were connected, and the listener never was). Without any filter, a connection that
/// joined between the last accept and the close (a wide gap when the worker is preempted
/// there) was reset with the listener, its request sent; now its client retries the SYN
/// a second later and finds the port closed: refused, which it can tell from a request
/// lost. Connections accepted after this inherit the filter, which no established
/// connection minds (it never receives a SYN without an ACK). Best effort: false if the
/// kernel refused the filter.
pub fn refuse_new_handshakes(listener: &impl AsRawFd) -> bool {
    // linux/asm-generic/socket.h (libc names it for Android only).
    const SO_ATTACH_FILTER: libc::c_int = 26;
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    // A TCP socket's filter sees the packet from its TCP header on: byte 13 holds the
    // flags (SYN 0x02, ACK 0x10). A SYN alone is dropped (0 bytes kept), any other
    // packet kept whole.
    let mut syn_only = [
        op(libc::BPF_LD | libc::BPF_B | libc::BPF_ABS, 0, 0, 13),
        op(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, 0, 0, 0x12),
        op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 1, 0x02),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, 0),
        op(libc::BPF_RET | libc::BPF_K, 0, 0, u32::MAX),
    ];
    let program = libc::sock_fprog {
        len: syn_only.len() as u16,
        filter: syn_only.as_mut_ptr(),
    };
    // SAFETY: the kernel copies the program during the call; `program` and the array it
    // points to outlive it.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_ATTACH_FILTER,
            (&program as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    rc == 0
}

/// At most this many queued connections are taken at a stop (the backlog's size), so a
/// flood of new ones can't keep a worker taking them instead of draining.
const TAKE_AT_STOP: usize = 4096;

/// The connections whose handshake the kernel has completed on `listener` and that no
/// accept has taken yet. Taken at a stop, just before the listener closes: closing it
/// resets them, and their clients, which connected before the stop and have often sent
/// their request already, can't tell that reset from a request taken and lost.
/// `nonblocking`: how the driver wants its sockets (epoll; io_uring takes blocking ones).
pub fn take_queued(listener: &impl AsRawFd, nonblocking: bool) -> Vec<std::net::TcpStream> {
    use std::os::fd::FromRawFd;
    let fd = listener.as_raw_fd();
    let mut taken = Vec::new();
    // SAFETY: fcntl on the listener's own descriptor; non-blocking, so that an accept
    // below returns at once when the queue is empty (the listener closes right after).
    let nonblocking_listener = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
    };
    if !nonblocking_listener {
        return taken;
    }
    let mut flags = libc::SOCK_CLOEXEC;
    if nonblocking {
        flags |= libc::SOCK_NONBLOCK;
    }
    while taken.len() < TAKE_AT_STOP {
        // SAFETY: accept4 without an address buffer; the descriptor it returns is owned
        // by the stream made from it below and by nothing else.
        let conn = unsafe { libc::accept4(fd, std::ptr::null_mut(), std::ptr::null_mut(), flags) };
        if conn < 0 {
            // EAGAIN: the queue is empty. Any other error ends the taking too.
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        // SAFETY: see above.
        taken.push(unsafe { std::net::TcpStream::from_raw_fd(conn) });
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::{address_is_free, free_soon, set_options_for_connections};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    fn free_addr() -> SocketAddr {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }

    #[test]
    fn queued_connections_are_taken_with_their_bytes_and_then_the_listener_refuses() {
        use std::io::{Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Handshakes the kernel completes with nobody accepting: the accept queue.
        let mut clients: Vec<TcpStream> =
            (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        for (i, c) in clients.iter_mut().enumerate() {
            c.write_all(format!("request {i}").as_bytes()).unwrap();
        }
        let taken = super::take_queued(&listener, false);
        assert_eq!(taken.len(), 3);
        for (i, mut s) in taken.into_iter().enumerate() {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = [0u8; 9];
            s.read_exact(&mut got).unwrap();
            assert_eq!(got, *format!("request {i}").as_bytes());
        }
        // An empty queue returns at once (the listener was made non-blocking).
        assert!(super::take_queued(&listener, false).is_empty());
        super::stop_listening(&listener);
        assert!(TcpStream::connect(addr).is_err());
    }

    #[test]
    fn after_refusing_new_handshakes_only_the_queued_connections_are_taken() {
        use std::io::{Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut queued = TcpStream::connect(addr).unwrap();
        queued.write_all(b"before").unwrap();
        assert!(super::refuse_new_handshakes(&listener));
        // Its SYN is dropped: no handshake, no place in the queue (the kernel would
        // retry it a second later).
        let late = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
        assert!(late.is_err(), "a handshake completed after the filter");
        let taken = super::take_queued(&listener, false);
        assert_eq!(taken.len(), 1);
        let mut got = [0u8; 6];
        let mut s = &taken[0];
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"before", "the queued connection still receives");
    }

    #[test]
    fn the_filter_drops_syns_and_lets_every_other_packet_through() {
        use std::io::{Read, Write};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        // On a connection, as on one accepted after the filter (it inherits it): data
        // and ACKs pass, as the last ACK of a handshake under way does on the listener.
        assert!(super::refuse_new_handshakes(&accepted));
        assert!(super::refuse_new_handshakes(&listener));
        client.write_all(b"after the filter").unwrap();
        accepted
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut got = [0u8; 16];
        accepted.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"after the filter");
        accepted.write_all(b"back").unwrap();
        let mut back = [0u8; 4];
        client.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"back");
        let late = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
        assert!(late.is_err(), "a SYN went through the filter");
    }

    #[test]
    fn a_listening_address_is_not_free_and_a_closed_one_is() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        let e = address_is_free(addr).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
        drop(held);
        address_is_free(addr).unwrap();
    }

    /// A listener going away within half a second (a killed process's, torn down after
    /// it) leaves the address free for the start; one that stays is in use.
    #[test]
    fn an_address_freed_soon_is_free() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(held);
        });
        free_soon(addr).unwrap();
        release.join().unwrap();
        let kept = TcpListener::bind(addr).unwrap();
        assert_eq!(
            free_soon(addr).unwrap_err().kind(),
            std::io::ErrorKind::AddrInUse
        );
        drop(kept);
    }

    #[test]
    fn no_client_ever_connects_to_the_probe() {
        let addr = free_addr();
        let done = Arc::new(AtomicBool::new(false));
        let probing = {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut probes = 0u32;
                while !done.load(Ordering::Relaxed) {
                    address_is_free(addr).unwrap();
                    probes += 1;
                }
                probes
            })
        };
        // A listening probe lets some of these through (each then reset); a bound one
        // lets none.
        let mut connected = 0;
        for _ in 0..3_000 {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                connected += 1;
            }
        }
        done.store(true, Ordering::Relaxed);
        let probes = probing.join().unwrap();
        assert!(probes > 100, "only {probes} probes ran");
        assert_eq!(connected, 0, "clients connected to the probe");
    }

    #[test]
    fn accepted_connections_inherit_their_listeners_options() {
        use socket2::SockRef;
        for set in [false, true] {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            if set {
                set_options_for_connections(&listener, Duration::from_secs(7)).unwrap();
            }
            let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (accepted, _) = listener.accept().unwrap();
            assert_eq!(SockRef::from(&accepted).nodelay().unwrap(), set);
            let mut ms: libc::c_uint = 0;
            let mut len = std::mem::size_of::<libc::c_uint>() as libc::socklen_t;
            // SAFETY: a valid descriptor and an out-value of the size given.
            let rc = unsafe {
                libc::getsockopt(
                    std::os::fd::AsRawFd::as_raw_fd(&accepted),
                    libc::IPPROTO_TCP,
                    libc::TCP_USER_TIMEOUT,
                    (&mut ms as *mut libc::c_uint).cast(),
                    &mut len,
                )
            };
            assert_eq!(rc, 0);
            assert_eq!(ms, if set { 7000 } else { 0 });
        }
        // Past what the kernel takes (INT_MAX ms): clamped, not an error.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        set_options_for_connections(&listener, Duration::from_secs(30 * 86_400)).unwrap();
    }
}
