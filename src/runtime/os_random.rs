//! Bytes from the OS random source for the ids clients see (request ids, WebSocket
//! connection and message ids): none can be worked out from another. Drawn 4 KiB at a
//! time per thread, so a worker makes one system call per 256 request ids.

use std::cell::RefCell;

const POOL: usize = 4096;

thread_local! {
    /// The bytes drawn, and how many of them are used.
    static DRAWN: RefCell<([u8; POOL], usize)> = const { RefCell::new(([0; POOL], POOL)) };
}

/// Fills `out` (at most 4 KiB) with random bytes.
pub fn fill(out: &mut [u8]) {
    DRAWN.with(|d| {
        let (bytes, taken) = &mut *d.borrow_mut();
        if POOL - *taken < out.len() {
            getrandom::fill(bytes).expect("the OS random source");
            *taken = 0;
        }
        out.copy_from_slice(&bytes[*taken..*taken + out.len()]);
        *taken += out.len();
    });
}
