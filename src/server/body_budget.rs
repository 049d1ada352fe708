//! What request bodies read whole hold, all connections of all workers together.
//!
//! A route that reads its body whole (validation, a Lambda integration, IAM) keeps it in
//! the connection's read buffer, up to `max_body_bytes` each, for as long as the client
//! takes to send it (`header_timeout` between its bytes): 120 connections each sending
//! all but the last byte of an 8 MB body held 1 GB, and nothing bounded the sum but the
//! descriptor limit. `limits.max_buffered_bodies_bytes` bounds it: a read that would
//! take the buffers of such bodies past it is answered 503 and the connection closed
//! (nginx writes such a body to a temporary file instead). What is counted is the read
//! buffer's capacity as it grows with the bytes that came, not the announced length: a
//! head that announces 10 MB and sends nothing holds nothing.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes held by bodies being read whole, process-wide (one relaxed counter).
static HELD: AtomicU64 = AtomicU64::new(0);

/// One body's share of [`HELD`], given back when dropped.
pub(super) struct Held {
    bytes: u64,
    budget: u64,
}

impl Held {
    pub(super) fn new(budget: u64) -> Held {
        Held { bytes: 0, budget }
    }

    /// Holds `bytes` in all for this body (never less than before). False, holding no
    /// more, when that would take the sum past the budget.
    pub(super) fn grow_to(&mut self, bytes: u64) -> bool {
        let more = bytes.saturating_sub(self.bytes);
        if more == 0 {
            return true;
        }
        let before = HELD.fetch_add(more, Ordering::Relaxed);
        if before.saturating_add(more) > self.budget {
            HELD.fetch_sub(more, Ordering::Relaxed);
            return false;
        }
        self.bytes = bytes;
        true
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        HELD.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_share_the_budget_and_give_it_back() {
        // Other tests may hold some meanwhile: judged relative to a budget far above.
        let base = HELD.load(Ordering::Relaxed);
        let budget = base + 1000;
        let mut a = Held::new(budget);
        assert!(a.grow_to(600));
        let mut b = Held::new(budget);
        assert!(b.grow_to(400));
        assert!(!b.grow_to(401), "past the budget");
        assert!(a.grow_to(600), "no more than it holds");
        drop(a);
        assert!(b.grow_to(1000), "what a gave back");
        drop(b);
        let mut c = Held::new(budget);
        assert!(c.grow_to(1000));
    }
}
