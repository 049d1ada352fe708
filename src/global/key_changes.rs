//! Admin key changes in progress, so that a read of the cluster's keys that raced one is
//! not taken as the truth.
//!
//! In a cluster the side thread makes this node's created keys exactly what Redis holds
//! (`Keys::apply_cluster`). An admin create makes the key live here, then writes it to
//! Redis: a read of Redis made before that write landed, applied after the key went live
//! here, removed it again (the node answered 403 for the key its own 201 had just created,
//! and `DELETE` answered 404, for up to a sync). Each admin change now counts itself in
//! and out; a read is applied only when no change was in progress at any time between
//! its start and its application, else it is made again at the next sync.

use std::sync::atomic::{AtomicU64, Ordering};

/// How many admin key changes have begun and ended (`started`, `ended`); a change is in
/// progress while they differ.
#[derive(Default)]
pub struct KeyChanges {
    started: AtomicU64,
    ended: AtomicU64,
}

/// One admin key change in progress, until dropped.
pub struct Changing<'a>(&'a KeyChanges);

impl Drop for Changing<'_> {
    fn drop(&mut self) {
        self.0.ended.fetch_add(1, Ordering::SeqCst);
    }
}

impl KeyChanges {
    /// Marks an admin key change in progress until the guard is dropped.
    pub fn begin(&self) -> Changing<'_> {
        self.started.fetch_add(1, Ordering::SeqCst);
        Changing(self)
    }

    /// Taken before a read of the shared keys: the changes begun so far.
    pub fn mark(&self) -> u64 {
        self.started.load(Ordering::SeqCst)
    }

    /// Whether no change began since `mark` and none is in progress: a read made since
    /// `mark` can be applied.
    pub fn quiet_since(&self, mark: u64) -> bool {
        let ended = self.ended.load(Ordering::SeqCst);
        let started = self.started.load(Ordering::SeqCst);
        started == mark && ended == started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_is_applied_only_when_no_change_overlapped_it() {
        let k = KeyChanges::default();
        let mark = k.mark();
        assert!(k.quiet_since(mark));
        // A change in progress when the read started (begun before the mark).
        let g = k.begin();
        let mark = k.mark();
        assert!(!k.quiet_since(mark), "a change in progress");
        drop(g);
        assert!(k.quiet_since(mark), "it ended, none began since");
        // A change that began and ended during the read.
        let mark = k.mark();
        drop(k.begin());
        assert!(!k.quiet_since(mark));
    }
}
