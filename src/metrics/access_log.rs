//! Access logs. Each worker formats lines into its own buffer; a full buffer (or any
//! buffer on the worker's 50 ms tick) is handed to one writer thread through a bounded
//! lock-free queue, and empty buffers come back through another, so steady logging
//! allocates nothing. When the disk can't keep up the queue fills, and lines are dropped
//! and counted (`portico_access_log_dropped_total`) instead of piling up or blocking a
//! worker. SIGUSR1 and every reload make the writer reopen the file (log rotation), and
//! a file that could not be opened (its directory not there yet) is tried again once a
//! second while lines come; lines that could not be written are counted as dropped.

// Cold path: the writer's target path is read by the writer thread after a reopen signal, never by a worker.
#![allow(clippy::disallowed_types)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use tracing::{info, warn};

use crate::config::model::LogPath;

/// A worker hands its buffer over once it holds this much. Each hand-off wakes the
/// writer, usually on the worker's own core: at 32 KiB (about 130 lines of the default
/// format) the switches to it and back were a third of what logging cost a request.
pub const FLUSH_AT: usize = 128 * 1024;
/// Buffers in flight to the writer; 16 × 128 KiB bounds the backlog at about 2 MiB.
const QUEUE: usize = 16;

struct Sink {
    full: ArrayQueue<Vec<u8>>,
    free: ArrayQueue<Vec<u8>>,
    writer: Thread,
    reopen: AtomicBool,
    /// Buffers handed over and buffers written, so a stop can wait for the last lines.
    queued: AtomicU64,
    written: AtomicU64,
    /// Where the writer writes; changed by a reload (read by the writer thread only
    /// after `reopen` is raised, so the lock is never contended on the hot path).
    target: Mutex<LogPath>,
    /// Lines the writer had but could not write (no file open, a failed write); added
    /// to `portico_access_log_dropped_total`.
    lost: AtomicU64,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Starts the writer thread (once), or points it at the path of a reloaded config and
/// reopens the file even when the path is the same: a reload (`systemctl reload`, as a
/// logrotate postrotate often runs) reopens logs as nginx's does; writing on into the
/// rotated-away or deleted file lost every line until a restart.
pub fn configure(path: &LogPath) {
    if let Some(sink) = SINK.get() {
        let mut target = sink.target.lock().unwrap_or_else(|e| e.into_inner());
        *target = path.clone();
        sink.reopen.store(true, Ordering::Release);
        sink.writer.unpark();
        return;
    }
    if *path == LogPath::Off {
        return;
    }
    let path = path.clone();
    let handle = std::thread::Builder::new()
        .name("portico-log".into())
        .spawn(writer_loop)
        .expect("spawning the access log writer");
    let _ = SINK.set(Sink {
        full: ArrayQueue::new(QUEUE),
        free: ArrayQueue::new(QUEUE),
        writer: handle.thread().clone(),
        reopen: AtomicBool::new(true),
        queued: AtomicU64::new(0),
        written: AtomicU64::new(0),
        target: Mutex::new(path),
        lost: AtomicU64::new(0),
    });
    handle.thread().unpark();
}

/// Asks the writer to reopen its file (SIGUSR1, after the file was rotated away).
pub fn reopen() {
    if let Some(sink) = SINK.get() {
        sink.reopen.store(true, Ordering::Release);
        sink.writer.unpark();
    }
}

/// Hands `buf` to the writer and returns an empty buffer to keep filling. Returns
/// the number of lines dropped because the writer is behind (0 normally).
pub fn hand_off(buf: &mut Vec<u8>, lines: u64) -> u64 {
    let Some(sink) = SINK.get() else {
        buf.clear();
        return 0;
    };
    let spare = sink
        .free
        .pop()
        .unwrap_or_else(|| Vec::with_capacity(FLUSH_AT * 2));
    let full = std::mem::replace(buf, spare);
    match sink.full.push(full) {
        Ok(()) => {
            sink.queued.fetch_add(1, Ordering::Release);
            sink.writer.unpark();
            0
        }
        Err(mut full) => {
            // Writer behind: drop these lines, keep the memory.
            full.clear();
            *buf = full;
            lines
        }
    }
}

/// Lines the writer could not write (added to the workers' dropped count when scraped).
pub fn lost_lines() -> u64 {
    SINK.get().map_or(0, |s| s.lost.load(Ordering::Relaxed))
}

/// Waits (up to `limit`) until the writer has written every buffer handed to it: called
/// once the workers have stopped, so a clean stop loses no line.
pub fn finish(limit: Duration) {
    let Some(sink) = SINK.get() else {
        return;
    };
    let deadline = std::time::Instant::now() + limit;
    while sink.written.load(Ordering::Acquire) < sink.queued.load(Ordering::Acquire)
        && std::time::Instant::now() < deadline
    {
        sink.writer.unpark();
        std::thread::sleep(Duration::from_millis(2));
    }
}

enum Out {
    Stdout,
    File(File),
    Off,
    /// The file could not be opened: tried again at `retry` if lines come.
    Failed {
        retry: Instant,
    },
}

/// How often a file that could not be opened is tried again (while lines come).
const RETRY_OPEN: Duration = Duration::from_secs(1);

/// Opens `path`; `quiet` leaves a failure unlogged (a retry of one already logged).
fn open(path: &LogPath, quiet: bool) -> Out {
    match path {
        LogPath::Stdout => Out::Stdout,
        LogPath::Off => Out::Off,
        LogPath::File(p) => match OpenOptions::new().create(true).append(true).open(p) {
            Ok(f) => {
                if quiet {
                    info!(path = %p.display(), "access log opened");
                }
                Out::File(f)
            }
            Err(e) => {
                if !quiet {
                    warn!(path = %p.display(), error = %e, "cannot open the access log; lines are dropped (and counted) until it can be, tried again once a second");
                }
                Out::Failed {
                    retry: Instant::now() + RETRY_OPEN,
                }
            }
        },
    }
}

fn writer_loop() {
    let sink = loop {
        match SINK.get() {
            Some(s) => break s,
            None => std::thread::park(),
        }
    };
    let target = || {
        sink.target
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    };
    let mut out = Out::Off;
    // A failed write is logged once, not once per buffer, until a write succeeds.
    let mut failing = false;
    loop {
        if sink.reopen.swap(false, Ordering::AcqRel) {
            out = open(&target(), false);
        } else if let Out::Failed { retry } = out {
            if !sink.full.is_empty() && Instant::now() >= retry {
                out = open(&target(), true);
            }
        }
        let mut wrote = 0;
        while let Some(mut buf) = sink.full.pop() {
            let all_lost = |e| (e, memchr::memchr_iter(b'\n', &buf).count() as u64);
            let res = match &mut out {
                Out::Stdout => std::io::stdout().lock().write_all(&buf).map_err(all_lost),
                Out::File(f) => write_lines(f, &buf),
                Out::Off => Ok(()),
                Out::Failed { .. } => Err(all_lost(std::io::ErrorKind::NotFound.into())),
            };
            match res {
                Ok(()) => failing = false,
                Err((e, lines)) => {
                    sink.lost.fetch_add(lines, Ordering::Relaxed);
                    if !failing && !matches!(out, Out::Failed { .. }) {
                        warn!(error = %e, "writing the access log failed; lines are dropped (and counted)");
                    }
                    failing = true;
                }
            }
            buf.clear();
            let _ = sink.free.push(buf);
            wrote += 1;
        }
        if wrote > 0 {
            if let Out::Stdout = out {
                let _ = std::io::stdout().flush();
            }
            sink.written.fetch_add(wrote, Ordering::Release);
        }
        std::thread::park_timeout(Duration::from_millis(200));
    }
}

/// A file the writer can cut back: the access log, or a test's stand-in.
trait Appended: Write {
    fn cut_back(&mut self, bytes: u64);
}

impl Appended for std::fs::File {
    fn cut_back(&mut self, bytes: u64) {
        if let Ok(m) = self.metadata() {
            let _ = self.set_len(m.len().saturating_sub(bytes));
        }
    }
}

/// Writes `buf` (whole lines) to the end of `f`. A write that fails part way (a full
/// disk) leaves the file cut back to the last whole line it wrote, and the error comes
/// with the lines that were not written: the torn line had the next line glued onto it
/// (no longer JSON), and every line of the buffer was counted as dropped, written or not.
fn write_lines(f: &mut impl Appended, buf: &[u8]) -> Result<(), (std::io::Error, u64)> {
    let mut done = 0;
    let failure = loop {
        if done == buf.len() {
            return Ok(());
        }
        match f.write(&buf[done..]) {
            Ok(0) => break std::io::ErrorKind::WriteZero.into(),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break e,
        }
    };
    let whole = memchr::memrchr(b'\n', &buf[..done]).map_or(0, |i| i + 1);
    if done > whole {
        f.cut_back((done - whole) as u64);
    }
    let lost = memchr::memchr_iter(b'\n', &buf[whole..]).count() as u64;
    Err((failure, lost))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    /// A file on a disk with `room` bytes left.
    struct Disk {
        data: Vec<u8>,
        room: usize,
    }

    impl Write for Disk {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            // Short writes, as the kernel's when space runs out mid-buffer.
            let n = buf.len().min(self.room).min(7);
            if n == 0 {
                return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
            }
            self.data.extend_from_slice(&buf[..n]);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl super::Appended for Disk {
        fn cut_back(&mut self, bytes: u64) {
            let keep = self.data.len().saturating_sub(bytes as usize);
            self.room += self.data.len() - keep;
            self.data.truncate(keep);
        }
    }

    #[test]
    fn a_write_cut_short_leaves_whole_lines_and_counts_the_rest() {
        let lines = b"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n";
        // Room for the first line and part of the second.
        let mut disk = Disk {
            data: Vec::new(),
            room: 12,
        };
        let (e, lost) = super::write_lines(&mut disk, lines).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(disk.data, b"{\"a\":1}\n");
        assert_eq!(lost, 2);
        // Space again: the next lines follow a whole line.
        disk.room = 100;
        super::write_lines(&mut disk, b"{\"a\":4}\n").unwrap();
        assert_eq!(disk.data, b"{\"a\":1}\n{\"a\":4}\n");
        let mut fits = Disk {
            data: Vec::new(),
            room: 100,
        };
        super::write_lines(&mut fits, lines).unwrap();
        assert_eq!(fits.data, lines);
    }
}
