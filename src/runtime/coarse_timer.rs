//! A worker's coarse timers, for the deadlines a connection waits on between requests
//! (keep-alive idle timeout, header timeout, the moment a quiet connection parks its
//! buffers). They fire on the worker's housekeeping tick (every `TICK`), so they are late
//! by at most one tick, which none of those deadlines minds.
//!
//! Why not `monoio::time::sleep`: its future is 640 bytes, and a connection's task is as
//! large as the largest thing it awaits, for as long as the connection is open. A coarse
//! sleep is a slot index and a deadline, so 10,000 idle connections cost a few KiB of
//! timer state instead of 6 MiB. Registering is a `Vec` slot reused from a free list: no
//! allocation once the worker is warm. The tick also keeps a per-thread coarse clock
//! (`coarse_now`), which these deadlines and a request's other timestamps read instead
//! of the system clock.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How often the worker's housekeeping loop calls `fire_due`.
pub const TICK: Duration = Duration::from_millis(50);

thread_local! {
    /// This thread's last `fire_due`: the clock as of the worker's tick.
    static TICKED: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The wall clock at that tick, as time since the Unix epoch.
    static WALL_AT_TICK: Cell<Option<Duration>> = const { Cell::new(None) };
}

/// `at` as time since the Unix epoch, from the wall clock as of the last tick: a
/// request's start for its access-log line without a second clock read (the line is
/// in milliseconds; a step of the wall clock shows from the next tick on). A thread
/// without a tick reads the wall clock.
pub fn unix_time_of(at: Instant) -> Duration {
    let (tick, unix) = match (TICKED.get(), WALL_AT_TICK.get()) {
        (Some(tick), Some(unix)) => (tick, unix),
        _ => {
            let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            (Instant::now(), unix.unwrap_or_default())
        }
    };
    match at.checked_duration_since(tick) {
        Some(after) => unix + after,
        None => unix.saturating_sub(tick - at),
    }
}

/// Now, as of this worker's last tick (at most one `TICK` old), without reading the
/// clock: for deadlines and timestamps that tolerate that (timeouts, idle pools). A
/// thread without a tick reads the clock. (nginx caches its time per event-loop turn for
/// the same reason: a request used to read the clock about ten times.)
pub fn coarse_now() -> Instant {
    TICKED.get().unwrap_or_else(Instant::now)
}

/// A deadline passed before the future it bounded finished.
#[derive(Debug)]
pub struct TimedOut;

/// A point in time on a worker's coarse timers: what a request's upstream exchange must
/// finish by.
#[derive(Clone, Copy)]
pub struct Deadline<'t> {
    pub timers: &'t CoarseTimers,
    pub at: Instant,
}

impl Deadline<'_> {
    /// `fut`, unless the deadline passes first.
    pub async fn bound<F: Future>(self, fut: F) -> Result<F::Output, TimedOut> {
        self.timers.within(self.at, fut).await
    }
}

#[derive(Default)]
pub struct CoarseTimers {
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<usize>>,
}

struct Slot {
    deadline: Instant,
    waker: Option<Waker>,
}

impl CoarseTimers {
    /// Resolves at `deadline` (or up to one `TICK` later).
    pub fn sleep_until(&self, deadline: Instant) -> CoarseSleep<'_> {
        CoarseSleep {
            timers: self,
            deadline,
            slot: None,
        }
    }

    pub fn sleep(&self, d: Duration) -> CoarseSleep<'_> {
        self.sleep_until(coarse_now() + d)
    }

    /// Runs `fut` until it ends or `deadline` passes (up to one `TICK` late). A request's
    /// upstream writes and reads are bounded this way: no clock read and no timer-wheel
    /// entry per call (as `monoio::time::timeout` has), and `fut` is polled first, so a
    /// read that completes at once never registers a timer.
    pub async fn within<F: Future>(
        &self,
        deadline: Instant,
        fut: F,
    ) -> Result<F::Output, TimedOut> {
        let mut fut = std::pin::pin!(fut);
        let mut sleep = self.sleep_until(deadline);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(r));
            }
            Pin::new(&mut sleep).poll(cx).map(|()| Err(TimedOut))
        })
        .await
    }

    /// Wakes every sleeper whose deadline has passed (the worker's tick), and moves this
    /// thread's coarse clock and the codec's `Date` second on.
    pub fn fire_due(&self) {
        let now = Instant::now();
        TICKED.set(Some(now));
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok();
        crate::http1::encode::set_unix_secs(unix.map_or(0, |d| d.as_secs()));
        WALL_AT_TICK.set(unix);
        // Wakers are taken out before waking: a woken task runs later, but waking may
        // still re-enter (a waker of another runtime's task) and must not find the
        // table borrowed.
        let mut due: Vec<Waker> = Vec::new();
        for slot in self.slots.borrow_mut().iter_mut() {
            if slot.deadline <= now {
                if let Some(w) = slot.waker.take() {
                    due.push(w);
                }
            }
        }
        for w in due {
            w.wake();
        }
    }

    /// Sleepers registered now (tests).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.slots.borrow().len() - self.free.borrow().len()
    }
}

pub struct CoarseSleep<'a> {
    timers: &'a CoarseTimers,
    deadline: Instant,
    slot: Option<usize>,
}

impl Future for CoarseSleep<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // The tick that wakes a sleeper moved the coarse clock past its deadline.
        if coarse_now() >= self.deadline {
            return Poll::Ready(());
        }
        let mut slots = self.timers.slots.borrow_mut();
        let slot = match self.slot {
            Some(s) => s,
            None => match self.timers.free.borrow_mut().pop() {
                Some(s) => s,
                None => {
                    slots.push(Slot {
                        deadline: self.deadline,
                        waker: None,
                    });
                    slots.len() - 1
                }
            },
        };
        let entry = &mut slots[slot];
        entry.deadline = self.deadline;
        match &mut entry.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        drop(slots);
        self.slot = Some(slot);
        Poll::Pending
    }
}

impl Drop for CoarseSleep<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.slot {
            // A slot without a waker never fires; reuse sets both again.
            if let Some(entry) = self.timers.slots.borrow_mut().get_mut(s) {
                entry.waker = None;
            }
            self.timers.free.borrow_mut().push(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn unix_time_of_follows_the_wall_clock_with_or_without_a_tick() {
        // Offsets of seconds, a tolerance of half of one: a wrong sign or a lost offset
        // fails, a busy machine does not.
        let near = |a: Duration, b: Duration| a.max(b) - a.min(b) < Duration::from_millis(500);
        let wall = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let secs = Duration::from_secs;
        std::thread::spawn(move || {
            let now = Instant::now();
            let Some(earlier) = now.checked_sub(secs(5)) else {
                return; // a monotonic clock younger than five seconds
            };
            // No tick on this thread yet: the wall clock is read.
            assert!(near(unix_time_of(now + secs(3)), wall() + secs(3)));
            assert!(near(unix_time_of(earlier), wall() - secs(5)));
            CoarseTimers::default().fire_due();
            // After the tick: after it, and before it (a request that began earlier).
            assert!(near(
                unix_time_of(Instant::now() + secs(3)),
                wall() + secs(3)
            ));
            assert!(near(unix_time_of(earlier), wall() - secs(5)));
        })
        .join()
        .unwrap();
    }

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn fires_only_past_the_deadline_and_reuses_slots() {
        let timers = CoarseTimers::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let now = Instant::now();
        let mut soon = Box::pin(timers.sleep_until(now + Duration::from_millis(30)));
        let mut later = Box::pin(timers.sleep_until(now + Duration::from_secs(60)));
        assert!(soon.as_mut().poll(&mut cx).is_pending());
        assert!(later.as_mut().poll(&mut cx).is_pending());
        assert_eq!(timers.waiting(), 2);
        timers.fire_due();
        assert_eq!(count.0.load(Ordering::SeqCst), 0, "nothing due yet");
        std::thread::sleep(Duration::from_millis(40));
        timers.fire_due();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "only the due one woken");
        assert!(soon.as_mut().poll(&mut cx).is_ready());
        drop(soon);
        drop(later);
        assert_eq!(timers.waiting(), 0);
        // Dropped sleepers' slots are reused and never fire for their old deadline.
        let mut again = Box::pin(timers.sleep(Duration::from_secs(60)));
        assert!(again.as_mut().poll(&mut cx).is_pending());
        assert_eq!(timers.slots.borrow().len(), 2);
        timers.fire_due();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_past_deadline_is_ready_at_once() {
        let timers = CoarseTimers::default();
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut s = Box::pin(timers.sleep(Duration::ZERO));
        assert!(s.as_mut().poll(&mut cx).is_ready());
        assert_eq!(timers.waiting(), 0);
    }
}
