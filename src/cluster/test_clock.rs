//! Unit tests run a node's code with its clock off by some ms (this thread only):
//! `unix_ms` adds [`SKEW_MS`] in test builds.

thread_local! {
    pub static SKEW_MS: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// This thread's node clock is `ms` off until the guard drops (a future polled on a
/// current-thread runtime of this thread meanwhile sees it too).
pub struct Skewed;

pub fn skew(ms: i64) -> Skewed {
    SKEW_MS.with(|s| s.set(ms));
    Skewed
}

impl Drop for Skewed {
    fn drop(&mut self) {
        SKEW_MS.with(|s| s.set(0));
    }
}
