//! Request ids: unique across workers and restarts without coordination. Each worker
//! combines a per-process random seed and its own id with a local counter, mixed through
//! a bijection so ids look random but never repeat. Formatted as a UUID, no allocation.

use std::cell::Cell;

pub struct RequestIds {
    prefix: u64,
    /// `prefix` in hex, formatted once.
    prefix_hex: [u8; 16],
    counter: Cell<u64>,
}

pub const ID_LEN: usize = 36;

impl RequestIds {
    pub fn new(process_seed: u64, worker: usize) -> Self {
        let prefix = splitmix(process_seed ^ ((worker as u64) << 48));
        let mut prefix_hex = [0u8; 16];
        write_hex(&mut prefix_hex, prefix);
        RequestIds {
            prefix,
            prefix_hex,
            counter: Cell::new(0),
        }
    }

    pub fn next(&self) -> [u8; ID_LEN] {
        let n = self.counter.get().wrapping_add(1);
        self.counter.set(n);
        let low = splitmix(n ^ self.prefix.rotate_left(17));
        let mut hex = [0u8; 32];
        hex[..16].copy_from_slice(&self.prefix_hex);
        write_hex(&mut hex[16..], low);
        let mut out = [b'-'; ID_LEN];
        let groups = [(0, 8), (8, 12), (12, 16), (16, 20), (20, 32)];
        let mut at = 0;
        for (from, to) in groups {
            out[at..at + (to - from)].copy_from_slice(&hex[from..to]);
            at += to - from + 1;
        }
        out
    }
}

fn write_hex(out: &mut [u8], v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in out.iter_mut().enumerate() {
        *b = DIGITS[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seed that differs between processes and restarts: the OS random source, else the
/// clock and the process id.
pub fn process_seed() -> u64 {
    if let Ok(seed) = getrandom::u64() {
        return seed;
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    splitmix(t ^ (u64::from(std::process::id()) << 32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_across_workers() {
        let a = RequestIds::new(7, 0);
        let b = RequestIds::new(7, 1);
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(a.next()));
            assert!(seen.insert(b.next()));
        }
        let id = a.next();
        assert_eq!(id[8], b'-');
        assert_eq!(id[13], b'-');
        assert!(id.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-'));
    }
}
