//! The pass over the body: JSON's grammar as serde_json reads it, each value checked
//! against its subschema as it goes by. A 1 KiB body is ~60 tokens, so what counts is the
//! cost per token: scalars are checked in the loop that finds them (only objects and
//! arrays recurse), a string's end is the next bit of the body's quote index
//! (`quote_index`, for bodies up to 8 KiB without escapes) or else searched sixteen bytes
//! at a time, UTF-8 is checked only in strings that have a non-ASCII byte (outside strings
//! such a byte is not JSON anyway), and a float is read only when it has a bound to keep.

use serde_json::Value;

use super::quote_index::{index_quotes, next_quote, WORDS};
use super::{
    Bound, Member, Node, ANY, ARRAY, BOOLEAN, INTEGER, MAX_DEPTH, NULL, NUMBER, OBJECT, STRING,
};

/// The body is not one this scanner can vouch for: ask the general validator.
pub(super) struct Unsure;

type Verdict = Result<(), Unsure>;

pub(super) fn accepts(root: &Node, body: &[u8]) -> bool {
    let mut words = [0u64; WORDS];
    let used = index_quotes(body, &mut words).unwrap_or(0);
    accepts_with(root, body, &words[..used])
}

/// `accepts` with `quotes` as the body's quote index (empty: none, each string searched).
pub(super) fn accepts_with(root: &Node, body: &[u8], quotes: &[u64]) -> bool {
    let mut scan = Scanner {
        s: body,
        i: 0,
        quotes,
    };
    scan.value(root, 0).is_ok() && {
        scan.skip_space();
        scan.i == body.len()
    }
}

struct Scanner<'b> {
    s: &'b [u8],
    i: usize,
    /// The body's quote bitmap (`quote_index`), or empty.
    quotes: &'b [u64],
}

impl Scanner<'_> {
    #[inline]
    fn peek(&self) -> u8 {
        // 0 past the end: no token starts with it, so every caller's match refuses it.
        self.s.get(self.i).copied().unwrap_or(0)
    }

    #[inline]
    fn skip_space(&mut self) {
        while let b' ' | b'\t' | b'\n' | b'\r' = self.peek() {
            self.i += 1;
        }
    }

    /// A value of any kind; objects and arrays come back here for each member.
    fn value(&mut self, node: &Node, depth: u32) -> Verdict {
        if node.never || depth > MAX_DEPTH {
            return Err(Unsure);
        }
        self.skip_space();
        match self.peek() {
            b'{' => self.object(node, depth),
            b'[' => self.array(node, depth),
            _ => self.scalar(node),
        }
    }

    /// A string, number, `true`, `false` or `null`.
    #[inline]
    fn scalar(&mut self, node: &Node) -> Verdict {
        match self.peek() {
            b'"' => self.string_value(node),
            b'-' | b'0'..=b'9' => self.number(node),
            b't' => self.literal(b"true", BOOLEAN, &Value::Bool(true), node),
            b'f' => self.literal(b"false", BOOLEAN, &Value::Bool(false), node),
            b'n' => self.literal(b"null", NULL, &Value::Null, node),
            _ => Err(Unsure),
        }
    }

    /// A member's or item's value: scalars here, without the call.
    #[inline]
    fn element(&mut self, node: &Node, depth: u32) -> Verdict {
        self.skip_space();
        match self.peek() {
            b'{' | b'[' => self.value(node, depth + 1),
            _ if node.never => Err(Unsure),
            _ => self.scalar(node),
        }
    }

    fn literal(&mut self, word: &[u8], kind: u8, as_value: &Value, node: &Node) -> Verdict {
        if !self.s[self.i..].starts_with(word) || node.types & kind == 0 {
            return Err(Unsure);
        }
        self.i += word.len();
        match &node.one_of_values {
            Some(values) if !values.contains(as_value) => Err(Unsure),
            _ => Ok(()),
        }
    }

    fn object(&mut self, node: &Node, depth: u32) -> Verdict {
        if node.types & OBJECT == 0 || node.one_of_values.is_some() {
            return Err(Unsure);
        }
        self.i += 1;
        let mut seen = 0u64;
        // Bodies tend to list members in the model's order: each search starts after
        // the member found last.
        let mut next = 0;
        let additional = node.additional.as_deref().unwrap_or(&ANY);
        self.skip_space();
        if self.peek() == b'}' {
            self.i += 1;
        } else {
            loop {
                self.skip_space();
                if self.peek() != b'"' {
                    return Err(Unsure);
                }
                self.i += 1;
                let (start, escaped) = self.string_body()?;
                if escaped {
                    return Err(Unsure);
                }
                let name = &self.s[start..self.i - 1];
                self.skip_space();
                if self.peek() != b':' {
                    return Err(Unsure);
                }
                self.i += 1;
                let schema = match find_member(&node.members, name, next) {
                    Some(at) => {
                        seen |= 1 << at;
                        next = at + 1;
                        node.members[at].schema.as_ref().unwrap_or(additional)
                    }
                    None => additional,
                };
                self.element(schema, depth)?;
                self.skip_space();
                match self.peek() {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(Unsure),
                }
            }
        }
        if seen & node.required != node.required {
            return Err(Unsure);
        }
        Ok(())
    }

    fn array(&mut self, node: &Node, depth: u32) -> Verdict {
        if node.types & ARRAY == 0 || node.one_of_values.is_some() {
            return Err(Unsure);
        }
        self.i += 1;
        let items = node.items.as_deref().unwrap_or(&ANY);
        let mut count = 0u64;
        self.skip_space();
        if self.peek() == b']' {
            self.i += 1;
        } else {
            loop {
                self.element(items, depth)?;
                count += 1;
                self.skip_space();
                match self.peek() {
                    b',' => self.i += 1,
                    b']' => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(Unsure),
                }
            }
        }
        if count < node.min_items || count > node.max_items {
            return Err(Unsure);
        }
        Ok(())
    }

    fn string_value(&mut self, node: &Node) -> Verdict {
        if node.types & STRING == 0 {
            return Err(Unsure);
        }
        self.i += 1;
        let (start, escaped) = self.string_body()?;
        if !node.reads_strings {
            return Ok(());
        }
        if escaped {
            return Err(Unsure);
        }
        let text = &self.s[start..self.i - 1];
        // Lengths count code points: between len/4 and len of them.
        let len = text.len() as u64;
        if len < node.min_chars || len / 4 > node.max_chars {
            return Err(Unsure);
        }
        if len / 4 < node.min_chars || len > node.max_chars {
            let chars = text.iter().filter(|&&b| b & 0xc0 != 0x80).count() as u64;
            if chars < node.min_chars || chars > node.max_chars {
                return Err(Unsure);
            }
        }
        if let Some(values) = &node.one_of_values {
            if !values
                .iter()
                .any(|v| v.as_str().map(str::as_bytes) == Some(text))
            {
                return Err(Unsure);
            }
        }
        if let Some(pattern) = &node.pattern {
            // SAFETY: `string_body` checked the text is UTF-8.
            let text = unsafe { std::str::from_utf8_unchecked(text) };
            if !matches_pattern(pattern, text) {
                return Err(Unsure);
            }
        }
        Ok(())
    }

    /// From after an opening quote to after the closing one: where the text starts and
    /// whether it has escapes (each checked; `\u` surrogates are left to the validator).
    /// The text is checked to be UTF-8 when it has a non-ASCII byte. With a quote index
    /// the closing quote is its next bit, all of that known of the whole body already.
    #[inline(always)]
    fn string_body(&mut self) -> Result<(usize, bool), Unsure> {
        let start = self.i;
        if self.quotes.is_empty() {
            return self.string_body_searched();
        }
        // The body has no escapes, no control character in a string, and is UTF-8.
        self.i = next_quote(self.quotes, start).ok_or(Unsure)? + 1;
        Ok((start, false))
    }

    /// `string_body` without an index: the closing quote searched for.
    #[inline(never)]
    fn string_body_searched(&mut self) -> Result<(usize, bool), Unsure> {
        let start = self.i;
        let mut escaped = false;
        let mut high = 0u8;
        loop {
            let (at, seen_high) = special_byte_offset(&self.s[self.i..]).ok_or(Unsure)?;
            high |= seen_high;
            self.i += at;
            match self.s[self.i] {
                b'"' => {
                    self.i += 1;
                    if high & 0x80 != 0 && std::str::from_utf8(&self.s[start..self.i - 1]).is_err()
                    {
                        return Err(Unsure);
                    }
                    return Ok((start, escaped));
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                // A raw control character: not JSON.
                _ => return Err(Unsure),
            }
        }
    }

    #[cold]
    fn escape(&mut self) -> Verdict {
        match self.s.get(self.i + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 2,
            Some(b'u') => {
                let hex = self.s.get(self.i + 2..self.i + 6).ok_or(Unsure)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err(Unsure);
                }
                let unit = hex
                    .iter()
                    .fold(0u32, |n, &h| n * 16 + (h as char).to_digit(16).unwrap_or(0));
                if (0xd800..=0xdfff).contains(&unit) {
                    return Err(Unsure);
                }
                self.i += 6;
            }
            _ => return Err(Unsure),
        }
        Ok(())
    }

    fn number(&mut self, node: &Node) -> Verdict {
        if node.one_of_values.is_some() {
            return Err(Unsure);
        }
        let start = self.i;
        let negative = self.peek() == b'-';
        self.i += negative as usize;
        let mut magnitude = 0u64;
        match self.peek() {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                while let d @ b'0'..=b'9' = self.peek() {
                    magnitude = magnitude.wrapping_mul(10).wrapping_add((d - b'0') as u64);
                    self.i += 1;
                }
            }
            _ => return Err(Unsure),
        }
        let int_digits = self.i - start - negative as usize;
        let mut fraction_digits = 0;
        let mut exponent = false;
        if self.peek() == b'.' {
            self.i += 1;
            let at = self.i;
            while let d @ b'0'..=b'9' = self.peek() {
                magnitude = magnitude.wrapping_mul(10).wrapping_add((d - b'0') as u64);
                self.i += 1;
            }
            fraction_digits = self.i - at;
            if fraction_digits == 0 {
                return Err(Unsure);
            }
        }
        if let b'e' | b'E' = self.peek() {
            self.i += 1;
            exponent = true;
            if let b'+' | b'-' = self.peek() {
                self.i += 1;
            }
            let at = self.i;
            while let b'0'..=b'9' = self.peek() {
                self.i += 1;
            }
            if self.i == at {
                return Err(Unsure);
            }
        }
        // Integers past u64/i64 are floats to serde_json. A bare `-0` is the integer 0,
        // as API Gateway's validator reads it (serde_json's -0.0 is what the general
        // validator is given only after `-0` is rewritten ` 0`).
        if fraction_digits == 0 && !exponent && int_digits <= 15 {
            if node.types & INTEGER == 0 {
                return Err(Unsure);
            }
            let n = magnitude as f64;
            return within(if negative { -n } else { n }, &node.bounds, false);
        }
        // A float: a number only; whether it counts as an integer is the validator's call.
        if node.types & NUMBER == 0 {
            return Err(Unsure);
        }
        if node.bounds.is_empty() && !exponent && int_digits < 300 {
            // Finite for sure (serde_json refuses what is not): nothing to compare.
            return Ok(());
        }
        let digits = int_digits + fraction_digits;
        let f = if !exponent && digits <= 15 && fraction_digits <= 22 {
            // Both exact in an f64, so the quotient is the correctly rounded value.
            magnitude as f64 / POWERS_OF_TEN[fraction_digits]
        } else {
            // SAFETY: the token is ASCII digits, signs, '.', 'e' and 'E'.
            let text = unsafe {
                std::str::from_utf8_unchecked(&self.s[start + negative as usize..self.i])
            };
            text.parse().map_err(|_| Unsure)?
        };
        if !f.is_finite() {
            return Err(Unsure);
        }
        within(if negative { -f } else { f }, &node.bounds, true)
    }
}

const POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The member named `name`, searched from `from` round to `from - 1`.
#[inline]
fn find_member(members: &[Member], name: &[u8], from: usize) -> Option<usize> {
    let key = super::name_key(name);
    let n = members.len();
    let same = |at: usize| {
        let m = &members[at];
        m.key == key && (key.1 <= 8 || m.name[8..] == name[8..])
    };
    (from..n)
        .find(|&at| same(at))
        .or_else(|| (0..from.min(n)).find(|&at| same(at)))
}

/// Whether `n` keeps every bound. A float read here may differ from serde_json's reading
/// in its last bits, so one that close to a bound is left to the validator.
fn within(n: f64, bounds: &[(f64, Bound)], approximate: bool) -> Verdict {
    for &(limit, bound) in bounds {
        if approximate && (n - limit).abs() <= limit.abs().max(1.0) * 1e-9 {
            return Err(Unsure);
        }
        let ok = match bound {
            Bound::Min => n >= limit,
            Bound::ExclusiveMin => n > limit,
            Bound::Max => n <= limit,
            Bound::ExclusiveMax => n < limit,
        };
        if !ok {
            return Err(Unsure);
        }
    }
    Ok(())
}

thread_local! {
    /// The string a pattern is matched against, reused: the validator reads `Value`s.
    static PATTERN_TEXT: std::cell::RefCell<Value> = const { std::cell::RefCell::new(Value::Null) };
}

fn matches_pattern(pattern: &jsonschema::Validator, text: &str) -> bool {
    PATTERN_TEXT.with(|cell| {
        let Ok(mut value) = cell.try_borrow_mut() else {
            return false;
        };
        if !value.is_string() {
            *value = Value::String(String::new());
        }
        let Value::String(s) = &mut *value else {
            return false;
        };
        s.clear();
        s.push_str(text);
        pattern.is_valid(&value)
    })
}

/// Offset of the first `"`, `\` or control character in `s`, and the high bits of the
/// bytes looked at on the way (non-zero: a non-ASCII byte may be among those before the
/// offset). Sixteen bytes at a time with SSE2, which every x86_64 has: a validated body
/// is mostly string text.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(super) fn special_byte_offset(s: &[u8]) -> Option<(usize, u8)> {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // `high` collects `movemask` bits: one per byte whose top bit is set.
    let any_high = |high: i32| (high != 0) as u8 * 0x80;
    let mut at = 0;
    let mut high = 0;
    // SAFETY: SSE2 is in x86_64's baseline target features; each load reads 16 bytes
    // inside `s` (`at + 16 <= s.len()`), unaligned loads being allowed.
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        let last_control = _mm_set1_epi8(0x1f);
        while at + 16 <= s.len() {
            let w = _mm_loadu_si128(s.as_ptr().add(at).cast());
            // A byte at most 0x1f is its own minimum with 0x1f.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(w, last_control), w);
            let special = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(w, quote), _mm_cmpeq_epi8(w, backslash)),
                control,
            );
            high |= _mm_movemask_epi8(w);
            let found = _mm_movemask_epi8(special);
            if found != 0 {
                return Some((at + found.trailing_zeros() as usize, any_high(high)));
            }
            at += 16;
        }
    }
    let (k, rest_high) = special_byte_offset_swar(&s[at..])?;
    Some((at + k, rest_high | any_high(high)))
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) use self::special_byte_offset_swar as special_byte_offset;

/// `special_byte_offset` eight bytes at a time in a `u64` (other architectures, and the
/// last bytes on x86_64).
#[inline]
pub(super) fn special_byte_offset_swar(s: &[u8]) -> Option<(usize, u8)> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    let mut high = 0u64;
    while let Some(chunk) = s.get(at..at + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap());
        high |= w;
        let quote = w ^ (ONES * b'"' as u64);
        let backslash = w ^ (ONES * b'\\' as u64);
        // The lowest flagged byte of each is exact (higher ones may be false alarms).
        let found = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w))
            & HIGHS;
        if found != 0 {
            return Some((at + found.trailing_zeros() as usize / 8, fold_high(high)));
        }
        at += 8;
    }
    for (k, &b) in s[at..].iter().enumerate() {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return Some((at + k, fold_high(high)));
        }
        high |= b as u64;
    }
    None
}

fn fold_high(w: u64) -> u8 {
    (w & 0x8080_8080_8080_8080 != 0) as u8 * 0x80
}
