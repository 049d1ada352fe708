//! Rate limits for warnings that a failing dependency can repeat thousands of times a
//! second (an upstream target that refuses connections): at most one line per key per
//! second across all workers, and that line says how many were held back since the last.
//!
//! Lock-free and allocation-free: a fixed table of slots, a key hashed to one. Two keys
//! that share a slot share its budget (rare with 256 slots; a held-back line is counted
//! in the next line of either).

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const SLOTS: usize = 256;

struct Slot {
    /// The second (since the epoch) of the last line let through, plus one (0: never).
    last: AtomicU64,
    held_back: AtomicU64,
}

static TABLE: [Slot; SLOTS] = [const {
    Slot {
        last: AtomicU64::new(0),
        held_back: AtomicU64::new(0),
    }
}; SLOTS];

/// Whether a line about `key` may be logged now: Some(lines held back since the last
/// one), or None (this one is counted and held back).
pub fn allow(key: impl Hash) -> Option<u64> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 1;
    allow_at(key, now)
}

fn allow_at(key: impl Hash, now: u64) -> Option<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let slot = &TABLE[h.finish() as usize % SLOTS];
    let last = slot.last.load(Ordering::Relaxed);
    if last != now
        && slot
            .last
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        return Some(slot.held_back.swap(0, Ordering::AcqRel));
    }
    slot.held_back.fetch_add(1, Ordering::AcqRel);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_second_with_a_count() {
        let key = "127.0.0.1:1 test";
        assert_eq!(allow_at(key, 100), Some(0));
        assert_eq!(allow_at(key, 100), None);
        assert_eq!(allow_at(key, 100), None);
        assert_eq!(allow_at(key, 101), Some(2));
        assert_eq!(allow_at(key, 101), None);
        assert_eq!(allow_at(key, 105), Some(1));
    }
}
