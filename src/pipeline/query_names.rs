//! A query parameter's name as different backends read it, one reading at a time: the
//! cache key files an answer under each reading that differs (parameter cloaking).
//! (`template::query_name_is` asks whether any of them reads a name.)

use crate::pipeline::template::query_decoded;

/// How a backend compares a pair's name with the one it looks for.
#[derive(Clone, Copy)]
pub enum Reading {
    Exact,
    /// Without case (ASP.NET).
    Folded,
    /// As PHP files it in `$_GET`: leading spaces skipped, the name ended by a NUL or by
    /// `[` (`a[]=x` is the array `a`), spaces and dots read as `_` (both sides), and a
    /// `[` that no `]` follows read as `_` too (`user[id=x` is `user_id`).
    Php,
    /// As Rack (and Node's `qs`) file it: leading `[` and `]` skipped, the name ended by
    /// the next `[` or `]` (`[a]`, `]a` and `a[k]` are all `a`).
    Rack,
}

/// Whether the (encoded) pair name `n` is `name` in `reading`.
pub fn is_name(n: &[u8], name: &[u8], reading: Reading) -> bool {
    let lower = |b: u8| b.to_ascii_lowercase();
    let php = |b: u8| if b == b' ' || b == b'.' { b'_' } else { b };
    match reading {
        Reading::Exact => query_decoded(n).eq(name.iter().copied()),
        Reading::Folded => query_decoded(n)
            .map(lower)
            .eq(name.iter().copied().map(lower)),
        Reading::Rack => {
            let bracket = |b: &u8| *b == b'[' || *b == b']';
            query_decoded(n)
                .skip_while(bracket)
                .take_while(|b| !bracket(b))
                .eq(name.iter().copied())
        }
        Reading::Php => {
            let decoded = || {
                query_decoded(n)
                    .skip_while(|&b| b == b' ')
                    .take_while(|&b| b != 0)
            };
            // A `[` with a `]` after it starts the index (`a[x]` is `a`); one without is
            // `_`, and what follows it is taken as it is (`user[id` is `user_id`).
            let open = decoded().position(|b| b == b'[');
            let index = open.filter(|&o| decoded().skip(o + 1).any(|b| b == b']'));
            let read = decoded()
                .enumerate()
                .take_while(|&(i, _)| index.is_none_or(|o| i < o))
                .map(|(i, b)| match open {
                    Some(o) if i == o => b'_',
                    Some(o) if i > o => b,
                    _ => php(b),
                });
            read.eq(name.iter().copied().map(php))
        }
    }
}
