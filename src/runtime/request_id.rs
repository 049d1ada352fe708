//! Request ids: random version-4 UUIDs, as API Gateway's, from the OS random source.
//! A counter mixed through a bijection (what this was) never repeated, but it could be
//! inverted: from one id a client read how many requests its worker had served and
//! predicted the ids of other clients' requests (and the X-Ray root derived from them).
//! Random bytes are drawn 4 KiB at a time (one system call per 256 ids); formatted
//! without allocation.

use std::cell::{Cell, RefCell};

pub const ID_LEN: usize = 36;

/// Bytes of randomness drawn per system call: 256 ids' worth.
const POOL: usize = 4096;

pub struct RequestIds {
    pool: RefCell<[u8; POOL]>,
    /// How much of `pool` is used.
    taken: Cell<usize>,
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds {
            pool: RefCell::new([0; POOL]),
            taken: Cell::new(POOL),
        }
    }
}

impl RequestIds {
    pub fn next(&self) -> [u8; ID_LEN] {
        let mut pool = self.pool.borrow_mut();
        if self.taken.get() == POOL {
            getrandom::fill(&mut pool[..]).expect("the OS random source");
            self.taken.set(0);
        }
        let at = self.taken.get();
        self.taken.set(at + 16);
        let mut b = [0u8; 16];
        b.copy_from_slice(&pool[at..at + 16]);
        // RFC 9562 §5.4: version 4, variant 10.
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        format(&b)
    }
}

fn format(b: &[u8; 16]) -> [u8; ID_LEN] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'-'; ID_LEN];
    let mut at = 0;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        out[at] = DIGITS[usize::from(byte >> 4)];
        out[at + 1] = DIGITS[usize::from(byte & 0xf)];
        at += 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_random_version_4_uuids() {
        let (a, b) = (RequestIds::default(), RequestIds::default());
        let mut seen = HashSet::new();
        // Past a pool's end, so refills are covered.
        for _ in 0..1_000 {
            assert!(seen.insert(a.next()));
            assert!(seen.insert(b.next()));
        }
        for id in seen.iter().take(50) {
            for dash in [8, 13, 18, 23] {
                assert_eq!(id[dash], b'-');
            }
            assert_eq!(id[14], b'4', "{}", String::from_utf8_lossy(id));
            assert!(b"89ab".contains(&id[19]));
            assert!(id
                .iter()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f' | b'-')));
        }
        // Not a counter: consecutive ids share no fixed part (the old ones kept their
        // first half per worker).
        let (x, y) = (a.next(), a.next());
        assert_ne!(x[..8], y[..8]);
    }
}
