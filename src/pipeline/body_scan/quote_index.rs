//! Where a body's strings end, found for the whole body in one pass before the scan.
//!
//! Searching each string for its closing quote as the scanner reaches it costs a loop per
//! string whose exit the CPU mispredicts about once a string: on the 1 KiB order of
//! `benches/validate.rs` (~50 strings, names included) that search was over a third of
//! the scan. Here the body's quotes become a bitmap, 64 bytes at a time, and a string's end
//! is the next set bit.
//!
//! The bitmap is exact only when the body has no backslash (no quote is escaped), so a
//! body with one gets no index and the scanner searches as before; so does one with a raw
//! control character inside a string (not JSON) and one that is not UTF-8. Which bytes
//! are inside strings is read off the quotes alone: in a body the scanner accepts, every
//! quote opens or closes a string, in order, so the running parity of the quotes is
//! exact there (and a body it refuses is refused whatever the index says).

/// Bodies up to this many bytes get an index (held on the stack, 1 KiB); larger ones are
/// searched string by string, where a string's search is a smaller share of the work.
pub(super) const MAX_INDEXED: usize = WORDS * 64;
pub(super) const WORDS: usize = 128;

/// Fills `words` with `body`'s quote bitmap (bit i of word i / 64: byte i is `"`) and
/// returns the words used; None when the bitmap would not be exact (see the module
/// comment) or the body is over `MAX_INDEXED` bytes.
pub(super) fn index_quotes(body: &[u8], words: &mut [u64; WORDS]) -> Option<usize> {
    if body.len() > MAX_INDEXED {
        return None;
    }
    let mut state = Pass { inside: 0, high: 0 };
    let mut used = 0;
    let mut blocks = body.chunks_exact(64);
    for block in &mut blocks {
        words[used] = state.block(block.try_into().unwrap())?;
        used += 1;
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        // Padded with spaces: no quote, no control character, ASCII.
        let mut last = [b' '; 64];
        last[..rest.len()].copy_from_slice(rest);
        words[used] = state.block(&last)?;
        used += 1;
    }
    if state.high != 0 && std::str::from_utf8(body).is_err() {
        return None;
    }
    Some(used)
}

/// The first quote at or after `from` in an index of `index_quotes`.
#[inline]
pub(super) fn next_quote(words: &[u64], from: usize) -> Option<usize> {
    let mut at = from / 64;
    let mut bits = words.get(at)? & (u64::MAX << (from % 64));
    while bits == 0 {
        at += 1;
        bits = *words.get(at)?;
    }
    Some(at * 64 + bits.trailing_zeros() as usize)
}

struct Pass {
    /// All ones when the previous block ended inside a string.
    inside: u64,
    /// Non-zero once a byte with its top bit set was seen.
    high: u64,
}

impl Pass {
    /// One 64-byte block: its quote bits, or None for a backslash or a control character
    /// inside a string.
    #[inline]
    fn block(&mut self, block: &[u8; 64]) -> Option<u64> {
        let m = masks(block);
        if m.backslash != 0 {
            return None;
        }
        // Bit i: an odd number of quotes up to and including byte i, so the opening
        // quote and the string's text, not its closing quote.
        let inside = prefix_xor(m.quote) ^ self.inside;
        if m.control & inside != 0 {
            return None;
        }
        self.inside = 0u64.wrapping_sub(inside >> 63);
        self.high |= m.high;
        Some(m.quote)
    }
}

/// Each bit the parity of the bits up to and including it.
#[inline]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// A block's bytes of each kind, one bit per byte.
struct Masks {
    quote: u64,
    backslash: u64,
    /// Bytes 0x00-0x1f.
    control: u64,
    /// Bytes 0x80-0xff.
    high: u64,
}

/// Sixteen bytes at a time with SSE2, which every x86_64 has.
#[cfg(target_arch = "x86_64")]
#[inline]
fn masks(block: &[u8; 64]) -> Masks {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let mut m = Masks {
        quote: 0,
        backslash: 0,
        control: 0,
        high: 0,
    };
    // SAFETY: SSE2 is in x86_64's baseline target features; each load reads 16 bytes
    // inside the 64-byte block, unaligned loads being allowed.
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        let last_control = _mm_set1_epi8(0x1f);
        for k in 0..4 {
            let w = _mm_loadu_si128(block.as_ptr().add(16 * k).cast());
            let bits = |v| (_mm_movemask_epi8(v) as u16 as u64) << (16 * k);
            m.quote |= bits(_mm_cmpeq_epi8(w, quote));
            m.backslash |= bits(_mm_cmpeq_epi8(w, backslash));
            // A byte at most 0x1f is its own minimum with 0x1f.
            m.control |= bits(_mm_cmpeq_epi8(_mm_min_epu8(w, last_control), w));
            m.high |= bits(w);
        }
    }
    m
}

/// One byte at a time (architectures without the SSE2 path; and the reference the tests
/// hold that path to).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn masks_bytewise(block: &[u8; 64]) -> Masks {
    let mut m = Masks {
        quote: 0,
        backslash: 0,
        control: 0,
        high: 0,
    };
    for (i, &b) in block.iter().enumerate() {
        let bit = 1u64 << i;
        m.quote |= bit * (b == b'"') as u64;
        m.backslash |= bit * (b == b'\\') as u64;
        m.control |= bit * (b < 0x20) as u64;
        m.high |= bit * (b >= 0x80) as u64;
    }
    m
}

#[cfg(not(target_arch = "x86_64"))]
use self::masks_bytewise as masks;

#[cfg(test)]
mod tests {
    use super::*;

    fn index(body: &[u8]) -> Option<Vec<u64>> {
        let mut words = [0u64; WORDS];
        index_quotes(body, &mut words).map(|n| words[..n].to_vec())
    }

    /// Every quote, found one after another, is where a byte-at-a-time search finds it.
    #[test]
    fn quotes_are_found_where_they_are() {
        let mut body = br#"{"a":"x","bb":[1,"yy"],"c":null}"#.repeat(9);
        body.extend_from_slice(br#"{"tail":"z"}"#);
        let words = index(&body).expect("an index");
        let mut from = 0;
        let mut found = Vec::new();
        while let Some(at) = next_quote(&words, from) {
            found.push(at);
            from = at + 1;
        }
        let expected: Vec<usize> = (0..body.len()).filter(|&i| body[i] == b'"').collect();
        assert_eq!(found, expected);
        assert_eq!(next_quote(&words, body.len()), None);
    }

    #[test]
    fn bodies_it_cannot_index_exactly_get_none() {
        assert!(index(br#"{"a":"x\"y"}"#).is_none(), "a backslash");
        assert!(
            index(b"{\"a\":\"x\ty\"}").is_none(),
            "a tab inside a string"
        );
        assert!(index(b"{\"a\":\"x\xffy\"}").is_none(), "not UTF-8");
        assert!(index(&vec![b' '; MAX_INDEXED + 1]).is_none(), "too large");
        // Whitespace between tokens is fine, and so is UTF-8 text.
        assert!(index(b"{\n\t\"a\" :\r\n \"caf\xc3\xa9\"\n}").is_some());
    }

    /// A string that runs across blocks carries its inside-ness: a tab in its second
    /// block is caught, one after it closes is not.
    #[test]
    fn a_string_across_blocks_is_still_inside() {
        let mut body = vec![b' '; 200];
        body[60] = b'"';
        body[150] = b'"';
        body[100] = b'\t';
        assert!(index(&body).is_none());
        body[100] = b' ';
        body[180] = b'\t';
        assert!(index(&body).is_some());
        body[20] = b'\n';
        assert!(index(&body).is_some());
    }

    #[test]
    fn the_sse2_masks_are_the_bytewise_ones() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = b"ab\"\\\x00\x1f\x20\x7f\x80\xff\x21\x5b\x5d\xc3\t\n";
        for _ in 0..5_000 {
            let mut block = [0u8; 64];
            for b in block.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = alphabet[(seed % alphabet.len() as u64) as usize];
            }
            let (a, b) = (masks(&block), masks_bytewise(&block));
            assert_eq!(
                (a.quote, a.backslash, a.control, a.high),
                (b.quote, b.backslash, b.control, b.high),
                "{block:?}"
            );
        }
    }
}
