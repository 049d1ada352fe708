//! Request ids: random version-4 UUIDs, as API Gateway's, from the OS random source
//! (`os_random`). A counter mixed through a bijection (what this was) never repeated, but
//! it could be inverted: from one id a client read how many requests its worker had
//! served and predicted the ids of other clients' requests (and the X-Ray root derived
//! from them). Formatted without allocation.

pub const ID_LEN: usize = 36;

/// A new request id.
pub fn next() -> [u8; ID_LEN] {
    let mut b = [0u8; 16];
    super::os_random::fill(&mut b);
    // RFC 9562 §5.4: version 4, variant 10.
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    format(&b)
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
        let mut seen = HashSet::new();
        // Past a pool's end (256 ids), so refills are covered.
        for _ in 0..2_000 {
            assert!(seen.insert(next()));
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
        let (x, y) = (next(), next());
        assert_ne!(x[..8], y[..8]);
    }
}
