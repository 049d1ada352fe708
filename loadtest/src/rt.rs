//! Pinned threads, each with its own monoio runtime (io_uring, else epoll), and a precise
//! timer for the open loop.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::time::{Duration, Instant};

use monoio::time::TimeDriver;
use monoio::{FusionRuntime, IoUringDriver, LegacyDriver, RuntimeBuilder};

pub type Runtime = FusionRuntime<TimeDriver<IoUringDriver>, TimeDriver<LegacyDriver>>;

/// Builds this thread's runtime. `PORTICO_DRIVER=io_uring|epoll` forces a driver, as for
/// Portico itself; otherwise io_uring is tried first and epoll taken where it is refused
/// (old kernel, seccomp, `kernel.io_uring_disabled`).
pub fn runtime() -> io::Result<(Runtime, &'static str)> {
    let uring = || {
        // DEFER_TASKRUN (with SINGLE_ISSUER, which it needs): completions are handed to
        // this thread when it waits for them. On a plain ring, every response or request
        // that arrives while this thread runs makes the *sender's* kernel interrupt it
        // (task-work notification by IPI), and that cost lands on the server under test,
        // on its core (what it came to on one VM: loadtest/README.md, How it works).
        // Kernels before 6.1 refuse it: a plain ring then.
        let mut quiet = io_uring::IoUring::builder();
        quiet.setup_single_issuer().setup_defer_taskrun();
        let build = |urb: Option<io_uring::Builder>| {
            let mut b = RuntimeBuilder::<IoUringDriver>::new().with_entries(4096);
            if let Some(urb) = urb {
                b = b.uring_builder(urb);
            }
            b.enable_timer()
                .build()
                .map(|r| (Runtime::from(r), "io_uring"))
        };
        build(Some(quiet)).or_else(|_| build(None))
    };
    let epoll = || {
        RuntimeBuilder::<LegacyDriver>::new()
            .enable_timer()
            .build()
            .map(|r| (Runtime::from(r), "epoll"))
    };
    match std::env::var("PORTICO_DRIVER").as_deref() {
        Ok("io_uring") => uring(),
        Ok("epoll") => epoll(),
        _ => uring().or_else(|_| epoll()),
    }
}

/// Pins the calling thread to `cpu`; a no-op with a warning when the cpu is not ours.
pub fn pin(cpu: usize) {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        eprintln!("portico-load: warning: could not pin a thread to cpu {cpu}");
    }
    // The default 50µs timer slack would blur open-loop send times.
    // SAFETY: prctl with PR_SET_TIMERSLACK takes a plain integer and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

/// The cpus this process may run on, in order.
pub fn all_cpus() -> Vec<usize> {
    let mut ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if ids.is_empty() {
        ids.push(0);
    }
    ids
}

/// Sleeps until an instant with sub-millisecond precision. monoio's timer wheel rounds up
/// to whole milliseconds, which would add up to 1ms to every open-loop latency (measured
/// from the scheduled send time); a timerfd is exact. It is awaited through monoio's
/// readiness op (io_uring poll or epoll), so the thread still sleeps in the driver.
pub struct Pacer {
    fd: RawFd,
    // Owns the fd; only used to wait for readability.
    waker: monoio::net::UnixStream,
}

impl Pacer {
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns. The std type is only a
        // carrier so that monoio registers the fd with its driver; no socket call is made
        // on it, only readiness waits and `read` below.
        let std = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
        let waker = monoio::net::UnixStream::from_std(std)?;
        Ok(Self {
            fd: waker.as_raw_fd(),
            waker,
        })
    }

    pub async fn sleep_until(&self, at: Instant) -> io::Result<()> {
        let wait = at.saturating_duration_since(Instant::now());
        if wait < Duration::from_micros(2) {
            return Ok(());
        }
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: wait.as_secs() as libc::time_t,
                tv_nsec: wait.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `spec` is a valid itimerspec and `self.fd` a timerfd we own.
        if unsafe { libc::timerfd_settime(self.fd, 0, &spec, std::ptr::null_mut()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            self.waker.readable(false).await?;
            let mut expirations = 0u64;
            // SAFETY: reads 8 bytes into a u64 we own.
            let n = unsafe {
                libc::read(
                    self.fd,
                    (&mut expirations as *mut u64).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
            if n == 8 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::WouldBlock {
                return Err(err);
            }
        }
    }
}
