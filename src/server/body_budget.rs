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
    /// A body's share, starting from what an earlier read of it in the same request kept
    /// ([`Held::keep`]; 0: none): a second read whole (validation, then a Lambda event or IAM)
    /// grows that share, not a new one beside it that replaced it when kept.
    pub(super) fn resume(budget: u64, kept_kib: u32) -> Held {
        Held {
            bytes: u64::from(kept_kib) * 1024,
            budget,
        }
    }

    /// Holds `bytes` in all for this body (never less than before; counted in whole KiB,
    /// so that [`Held::keep`] can say it in 32 bits). False, holding no more, when that
    /// would take the sum past the budget.
    pub(super) fn grow_to(&mut self, bytes: u64) -> bool {
        let bytes = bytes.div_ceil(1024).saturating_mul(1024);
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

impl Held {
    /// What this body holds, in KiB, to be given back by [`release`] when its request is
    /// done: four bytes on the connection, whose idle task must stay small
    /// (`server::idle`), where the guard itself would take sixteen.
    pub(super) fn keep(mut self) -> u32 {
        let kib = self.bytes / 1024;
        let kept = u32::try_from(kib).unwrap_or(u32::MAX);
        // Whatever does not fit in 32 bits of KiB (4 TiB) is given back now.
        self.bytes -= u64::from(kept) * 1024;
        kept
    }
}

/// Gives back what [`Held::keep`] kept. Called at every request's end: nothing kept
/// touches no shared cache line (an atomic write per request, shared by every core).
pub(super) fn release(kib: u32) {
    if kib != 0 {
        HELD.fetch_sub(u64::from(kib) * 1024, Ordering::Relaxed);
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.bytes != 0 {
            HELD.fetch_sub(self.bytes, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_share_the_budget_and_give_it_back() {
        // Other tests may hold some meanwhile: judged relative to a budget far above.
        let base = HELD.load(Ordering::Relaxed);
        let budget = base + 1_000_448;
        let mut a = Held::resume(budget, 0);
        assert!(a.grow_to(600_000));
        let mut b = Held::resume(budget, 0);
        assert!(b.grow_to(400_000));
        assert!(!b.grow_to(500_000), "past the budget");
        assert!(a.grow_to(600_000), "no more than it holds");
        drop(a);
        assert!(b.grow_to(1_000_000), "what a gave back");
        let kept = b.keep();
        assert_eq!(kept, 977, "in whole KiB, rounded up");
        let mut c = Held::resume(budget, 0);
        assert!(!c.grow_to(100_000), "kept, still held");
        release(kept);
        assert!(c.grow_to(1_000_000));
    }
}
