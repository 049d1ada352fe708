//! Graceful stop. The main thread flips one process-wide flag on SIGTERM/SIGINT; each
//! worker notices it on its next tick and begins draining: listeners close, idle
//! keep-alive connections are woken and closed, in-flight requests finish and then close.
//! A second signal cuts the drain short: what is still open closes at once.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

static STOP: AtomicBool = AtomicBool::new(false);
static NOW: AtomicBool = AtomicBool::new(false);

/// Asks every worker to drain (called from the signal thread); asked again, to stop
/// draining and close what is left. True when this was the second request.
pub fn request_stop() -> bool {
    let again = STOP.swap(true, Ordering::SeqCst);
    if again {
        NOW.store(true, Ordering::SeqCst);
    }
    again
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// A second stop signal came: the drain ends now.
pub fn stop_now_requested() -> bool {
    NOW.load(Ordering::Relaxed)
}

/// One worker's drain state: a flag plus the wakers of connections waiting idle.
/// Slots are reused, so a long-lived idle connection costs one slot, not one per wait.
#[derive(Default)]
pub struct Drain {
    closing: Cell<bool>,
    waiters: RefCell<Vec<Option<Waker>>>,
    free: RefCell<Vec<usize>>,
}

impl Drain {
    pub fn closing(&self) -> bool {
        self.closing.get()
    }

    pub fn begin(&self) {
        self.closing.set(true);
        for w in self.waiters.borrow_mut().iter_mut() {
            if let Some(w) = w.take() {
                w.wake();
            }
        }
    }

    /// Resolves when draining begins.
    pub fn wait(&self) -> DrainWait<'_> {
        DrainWait {
            drain: self,
            slot: None,
        }
    }
}

pub struct DrainWait<'a> {
    drain: &'a Drain,
    slot: Option<usize>,
}

impl Future for DrainWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.drain.closing.get() {
            return Poll::Ready(());
        }
        let mut waiters = self.drain.waiters.borrow_mut();
        let slot = match self.slot {
            Some(s) => s,
            None => {
                let s = self.drain.free.borrow_mut().pop().unwrap_or_else(|| {
                    waiters.push(None);
                    waiters.len() - 1
                });
                s
            }
        };
        waiters[slot] = Some(cx.waker().clone());
        drop(waiters);
        self.slot = Some(slot);
        Poll::Pending
    }
}

impl Drop for DrainWait<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.slot {
            if let Some(w) = self.drain.waiters.borrow_mut().get_mut(s) {
                *w = None;
            }
            self.drain.free.borrow_mut().push(s);
        }
    }
}
