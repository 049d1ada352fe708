//! The checks run on libyaml's tokens before a parse, for what the parser would build in
//! full before anything of Portico's sees it:
//!
//! - Nesting: serde_yaml_ng's loader reads every event before its 128-level limit
//!   applies, and libyaml's scanner takes time that grows with the square of the
//!   nesting: `[[[…]]]` 100,000 deep (200 KB) held check, a reload or `openapi import`
//!   for minutes. Block collections count too, with flow ones: `x:\n  - - - … a` with
//!   8,300,000 `- ` (16.6 MB) took check past 3 GB (the loader holds an event per
//!   level, several hundred bytes each) and a reload with it killed the gateway.
//! - Tags: the parser writes out each `!e!x` in full, with the prefix a `%TAG !e! …`
//!   directive gave its handle, for every use; a 1 MB prefix used 200,000 times (a 2.4 MB
//!   file) is 200 GB of tags, which the loader holds as events before the value is
//!   built (it hit a 4 GB memory limit in 32 s). Aliases are not needed for it, so the
//!   alias budget never saw it.
//!
//! Both are counted on libyaml's own tokens, not on the bytes: whether a `"`, a `[` or a
//! `!` opens anything depends on where it stands (inside a plain scalar such as
//! `k: x "`, on a plain scalar's continuation line, in a block scalar it is text), and a
//! scan that guessed wrong skipped whole stretches of the file. Tokens are taken one at
//! a time and dropped, and the scan stops at the first one past a limit, so it costs no
//! more than the parse that follows.

use std::collections::HashMap;
use std::ffi::{c_char, CStr};
use std::mem::MaybeUninit;

use unsafe_libyaml as unsafe_y;

/// How deep collections may nest, flow (`[`, `{`) and block (`- `, `k: ` on deeper
/// lines) together (README); the parser allows 128 levels in all, so a file between the
/// two is refused by the parser, quickly.
const MAX_DEPTH: usize = 1000;

/// What the scan found: a reason to refuse the text, and the tags in it that name YAML's
/// own types.
#[derive(Debug, Default)]
pub struct Scan {
    pub too_big: Option<TooBig>,
    /// Tags that resolve to `tag:yaml.org,2002:NAME` (`!!float`, `!<tag:yaml.org,2002:
    /// float>`, or through a `%TAG` handle, escapes decoded), but `str` on a scalar, which
    /// the parser reads right; and global tags of no type Portico knows (NAME `?`): where
    /// each is written (byte offsets, end excluded) and its NAME.
    pub core_tags: Vec<CoreTag>,
}

#[derive(Debug)]
pub struct CoreTag {
    pub at: usize,
    pub end: usize,
    pub name: String,
}

/// The prefix YAML's own tags resolve to.
const CORE_PREFIX: &[u8] = b"tag:yaml.org,2002:";

/// What the scan refuses, and where (1-based line and column).
#[derive(Debug, PartialEq, Eq)]
pub enum TooBig {
    /// Collections open more than [`MAX_DEPTH`] deep here.
    Deep { line: usize, column: usize },
    /// The tag here takes the text that `%TAG` prefixes add past the limit.
    Tags { line: usize, column: usize },
}

/// The first place `text` nests too deep, or where the prefixes its `%TAG` directives
/// put in front of its tags add up to more than `tag_bytes` (none also when the text is
/// not YAML: the parse reports that); and the tags of YAML's own types it holds, up to
/// there.
///
/// Only declared prefixes count: the default handles (`!` and `!!`, which is
/// `tag:yaml.org,2002:`) add at most 18 bytes to a tag written in at least 3, so they
/// can't make a file's tags much larger than the file. A handle declared in one document
/// counts for the documents after it too (the scan does not track where they end): that
/// only overcounts, and Portico reads one document.
pub fn pre_scan(text: &str, tag_bytes: usize) -> Scan {
    let mut parser = MaybeUninit::<unsafe_y::yaml_parser_t>::uninit();
    let parser = parser.as_mut_ptr();
    // SAFETY: the parser is initialized before use and deleted once, after its last use;
    // its input is `text`, which outlives it. Each token is zeroed by the scan before it
    // is filled (also when the scan fails) and deleted once, after its fields are read;
    // the strings of a tag or tag directive token are NUL-terminated, non-null (libyaml
    // gives an empty handle as ""), and read before the token is deleted.
    unsafe {
        if unsafe_y::yaml_parser_initialize(parser).fail {
            return Scan::default();
        }
        unsafe_y::yaml_parser_set_input_string(parser, text.as_ptr(), text.len() as u64);
        let mut depth = 0usize;
        // Each declared handle's longest prefix.
        let mut prefixes: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut added = 0usize;
        let mut found = None;
        let mut core_tags = Vec::new();
        // A `str` tag, until the token after it (an anchor aside) says whether it tags a
        // scalar.
        let mut pending_str: Option<CoreTag> = None;
        // What each handle stands for: the defaults, then what `%TAG` directives say.
        let mut resolves: HashMap<Vec<u8>, Vec<u8>> = HashMap::from([
            (b"!".to_vec(), b"!".to_vec()),
            (b"!!".to_vec(), CORE_PREFIX.to_vec()),
        ]);
        let bytes = |p: *const u8| CStr::from_ptr(p as *const c_char).to_bytes();
        loop {
            let mut token = MaybeUninit::<unsafe_y::yaml_token_t>::uninit();
            let failed = unsafe_y::yaml_parser_scan(parser, token.as_mut_ptr()).fail;
            let token = token.as_mut_ptr();
            let (kind, mark) = ((*token).type_, (*token).start_mark);
            let at = (mark.line as usize + 1, mark.column as usize + 1);
            let mut stop = failed;
            // `!!str` on what is no scalar (a map, a list, nothing) is the visitor's to
            // report; on a scalar the parser's to read.
            if kind != unsafe_y::YAML_ANCHOR_TOKEN && kind != unsafe_y::YAML_TAG_TOKEN {
                if let Some(t) = pending_str.take() {
                    if kind != unsafe_y::YAML_SCALAR_TOKEN {
                        core_tags.push(t);
                    }
                }
            }
            match kind {
                _ if failed => {}
                // A block collection's start pairs with a BLOCK_END; a sequence that
                // is not indented under its key (`k:\n- a`) has neither, and can add
                // only one level to the mapping it sits in.
                unsafe_y::YAML_FLOW_SEQUENCE_START_TOKEN
                | unsafe_y::YAML_FLOW_MAPPING_START_TOKEN
                | unsafe_y::YAML_BLOCK_SEQUENCE_START_TOKEN
                | unsafe_y::YAML_BLOCK_MAPPING_START_TOKEN => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        found = Some(TooBig::Deep {
                            line: at.0,
                            column: at.1,
                        });
                        stop = true;
                    }
                }
                unsafe_y::YAML_FLOW_SEQUENCE_END_TOKEN
                | unsafe_y::YAML_FLOW_MAPPING_END_TOKEN
                | unsafe_y::YAML_BLOCK_END_TOKEN => {
                    depth = depth.saturating_sub(1);
                }
                unsafe_y::YAML_TAG_DIRECTIVE_TOKEN => {
                    let d = (*token).data.tag_directive;
                    let len = bytes(d.prefix).len();
                    resolves.insert(bytes(d.handle).to_vec(), bytes(d.prefix).to_vec());
                    let longest = prefixes.entry(bytes(d.handle).to_vec()).or_default();
                    *longest = (*longest).max(len);
                }
                unsafe_y::YAML_TAG_TOKEN => {
                    let handle = bytes((*token).data.tag.handle);
                    let suffix = bytes((*token).data.tag.suffix);
                    // A verbatim tag (`!<…>`) has an empty handle and its whole text in
                    // the suffix (libyaml decodes %-escapes in both).
                    let prefix = match handle {
                        b"" => Some(&b""[..]),
                        _ => resolves.get(handle).map(Vec::as_slice),
                    };
                    let name = prefix.and_then(|p| core_name(p, suffix));
                    let tag = name.map(|name| CoreTag {
                        at: mark.index as usize,
                        end: (*token).end_mark.index as usize,
                        name,
                    });
                    match tag {
                        Some(t) if t.name == "str" => pending_str = Some(t),
                        Some(t) => core_tags.push(t),
                        None => {}
                    }
                    // An empty handle is a verbatim tag (`!<…>`), written in full.
                    if let Some(len) = prefixes.get(handle).filter(|_| !handle.is_empty()) {
                        added = added.saturating_add(*len);
                        if added > tag_bytes {
                            found = Some(TooBig::Tags {
                                line: at.0,
                                column: at.1,
                            });
                            stop = true;
                        }
                    }
                }
                // Also what a scan gives after an error or the end: no token.
                unsafe_y::YAML_STREAM_END_TOKEN | unsafe_y::YAML_NO_TOKEN => stop = true,
                _ => {}
            }
            unsafe_y::yaml_token_delete(token);
            if stop {
                break;
            }
        }
        unsafe_y::yaml_parser_delete(parser);
        Scan {
            too_big: found,
            core_tags,
        }
    }
}

/// The name a tag of `prefix` + `suffix` gives one of YAML's types (`tag:yaml.org,2002:
/// NAME`), or `?` for a global tag of none (`tag:example.com,2000:x`); None for a local
/// tag (`!x`), which the parser hands over as it is.
fn core_name(prefix: &[u8], suffix: &[u8]) -> Option<String> {
    if prefix.first().or(suffix.first()) == Some(&b'!') {
        return None;
    }
    let rest = if prefix.len() >= CORE_PREFIX.len() {
        prefix.strip_prefix(CORE_PREFIX).map(|p| (p, suffix))
    } else {
        let tail = &CORE_PREFIX[prefix.len()..];
        (CORE_PREFIX.starts_with(prefix) && suffix.starts_with(tail))
            .then(|| (&b""[..], &suffix[tail.len()..]))
    };
    let Some((a, b)) = rest else {
        return Some("?".into());
    };
    let word = |s: &[u8]| s.iter().all(u8::is_ascii_alphanumeric);
    Some(match a.len() + b.len() {
        1..=16 if word(a) && word(b) => String::from_utf8_lossy(&[a, b].concat()).into_owned(),
        _ => "?".into(),
    })
}
