//! Mapping values as HTTP APIs write them: literals mixed with `$request.header.NAME`,
//! `$request.querystring.NAME`, `$request.path`, `$request.path.NAME`, `$context.VAR`,
//! `$stageVariables.NAME` and (in response mappings) `$response.header.NAME`, each also
//! written `${...}` when the text after it would otherwise run into the name.
//!
//! [`parse`] is used twice: by validation, to report every bad reference with its key path,
//! and by compilation, which resolves stage variables and path parameter names so that a
//! [`Template`] is evaluated per request without any lookup by name.

use super::context::{self, RequestView, Var};

/// One reference, as written in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ref<'s> {
    Lit(&'s str),
    Header(&'s str),
    Query(&'s str),
    /// `$request.path`: the request path without the stage's base path.
    Path,
    PathParam(&'s str),
    Context(&'s str),
    Stage(&'s str),
    RespHeader(&'s str),
}

/// Characters of an unbraced name: header names are tokens, and `.` would swallow the
/// literal text after `$request.path.id.json`, so names stop there.
fn name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')
}

/// Context variable names have dots (`identity.sourceIp`); API Gateway allows `.` and `_`.
fn context_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.')
}

fn var_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn run(s: &str, ok: fn(u8) -> bool) -> usize {
    s.bytes().position(|b| !ok(b)).unwrap_or(s.len())
}

/// Splits a mapping value into literals and references.
pub fn parse(s: &str) -> Result<Vec<Ref<'_>>, String> {
    let mut out = Vec::new();
    let mut lit = 0;
    let mut i = 0;
    while let Some(off) = s[i..].find('$') {
        let at = i + off;
        let found = if s[at + 1..].starts_with('{') {
            let inner_start = at + 2;
            let close = s[inner_start..]
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
            let inner = &s[inner_start..inner_start + close];
            Some((braced(inner)?, inner_start + close + 1))
        } else {
            unbraced(&s[at + 1..])?.map(|(r, len)| (r, at + 1 + len))
        };
        match found {
            Some((r, next)) => {
                if lit < at {
                    out.push(Ref::Lit(&s[lit..at]));
                }
                out.push(r);
                i = next;
                lit = next;
            }
            // A `$` that starts no reference is literal text.
            None => i = at + 1,
        }
    }
    if lit < s.len() {
        out.push(Ref::Lit(&s[lit..]));
    }
    Ok(out)
}

fn braced(inner: &str) -> Result<Ref<'_>, String> {
    let nonempty = |name: &'_ str, what: &str| {
        if name.is_empty() {
            Err(format!("${{{inner}}} names no {what}"))
        } else {
            Ok(())
        }
    };
    if let Some(name) = inner.strip_prefix("request.header.") {
        nonempty(name, "header")?;
        Ok(Ref::Header(name))
    } else if let Some(name) = inner.strip_prefix("request.querystring.") {
        nonempty(name, "query string parameter")?;
        Ok(Ref::Query(name))
    } else if inner == "request.path" {
        Ok(Ref::Path)
    } else if let Some(name) = inner.strip_prefix("request.path.") {
        nonempty(name, "path parameter")?;
        Ok(Ref::PathParam(name))
    } else if let Some(name) = inner.strip_prefix("context.") {
        Ok(Ref::Context(name))
    } else if let Some(name) = inner.strip_prefix("stageVariables.") {
        nonempty(name, "stage variable")?;
        Ok(Ref::Stage(name))
    } else if let Some(name) = inner.strip_prefix("response.header.") {
        nonempty(name, "header")?;
        Ok(Ref::RespHeader(name))
    } else {
        Err(unknown(inner))
    }
}

/// A reference without braces; Ok(None) when the `$` starts none (a literal dollar).
fn unbraced<'s>(s: &'s str) -> Result<Option<(Ref<'s>, usize)>, String> {
    /// A prefix, the characters its name may have, and the reference it makes.
    type Named<'s> = (&'static str, fn(u8) -> bool, fn(&'s str) -> Ref<'s>);
    let named: [Named<'s>; 6] = [
        ("request.header.", name_char, Ref::Header),
        ("request.querystring.", name_char, Ref::Query),
        ("request.path.", name_char, Ref::PathParam),
        ("context.", context_char, Ref::Context),
        ("stageVariables.", var_char, Ref::Stage),
        ("response.header.", name_char, Ref::RespHeader),
    ];
    for (prefix, ok, make) in named {
        if let Some(rest) = s.strip_prefix(prefix) {
            let mut n = run(rest, ok);
            // A sentence may end right after a context variable: "… $context.stage."
            while n > 0 && rest.as_bytes()[n - 1] == b'.' {
                n -= 1;
            }
            if n > 0 {
                claim_with_colon(prefix, &rest[..n], &rest[n..])?;
                return Ok(Some((make(&rest[..n]), prefix.len() + n)));
            }
        }
    }
    if s.starts_with("request.path") {
        return Ok(Some((Ref::Path, "request.path".len())));
    }
    for prefix in ["request.", "response.", "context.", "stageVariables."] {
        if s.starts_with(prefix) {
            let n = run(s, context_char);
            return Err(unknown(&s[..n]));
        }
    }
    // A word and a dot is a reference misspelt (`$Request.header.x`, `$stagevariables.v`,
    // REST's `$method.request.header.x`), which went out as written: an error, as it is
    // braced. A `$` before anything else is literal (`$5`, `US$`, `$HOME`).
    let word = run(s, var_char);
    if word > 0 && s.as_bytes()[0].is_ascii_alphabetic() && s[word..].starts_with('.') {
        let n = word + run(&s[word..], |b| context_char(b) || b == b'-');
        return Err(unknown(&s[..n]));
    }
    Ok(None)
}

/// `$context.authorizer.claims.cognito:groups` unbraced: the name ends at the `:`, so the
/// value would be claim `cognito` (absent) and the text ":groups" — a header the backend
/// reads as a group. Refused as API Gateway refuses it, pointing to the braced form
/// (`${context.authorizer.claims.cognito:groups}`), which takes the whole name. Also a
/// namespaced claim (`https://example.com/roles`).
fn claim_with_colon(prefix: &str, name: &str, after: &str) -> Result<(), String> {
    let tail = after.strip_prefix(':').unwrap_or("");
    if prefix != "context." || !name.starts_with("authorizer.") || tail.is_empty() {
        return Ok(());
    }
    let more = run(tail, |b| context_char(b) || matches!(b, b':' | b'/' | b'-'));
    if more == 0 || !(tail.as_bytes()[0].is_ascii_alphanumeric() || tail.starts_with("//")) {
        return Ok(());
    }
    let whole = format!("context.{name}:{}", &tail[..more]);
    Err(format!(
        "${whole}: unbraced, the name ends at the ':'; write ${{{whole}}} for a name with ':'"
    ))
}

fn unknown(what: &str) -> String {
    if what.starts_with("request.body") || what.starts_with("response.body") {
        format!("${what} is not supported (bodies are not mapped)")
    } else {
        format!("${what} is not a mapping value (expected $request.header.NAME, $request.querystring.NAME, $request.path, $request.path.NAME, $context.VAR, $stageVariables.NAME or $response.header.NAME)")
    }
}

/// A compiled mapping value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(Box<[u8]>),
    /// A lower-case header name; every value, joined with commas.
    Header(Box<[u8]>),
    Query(Box<[u8]>),
    Path,
    /// Index into the route's captured parameters.
    PathParam(usize),
    Context(Var),
    RespHeader(Box<[u8]>),
    /// `$context.authorizer.NAME` (`claims.sub`, a Lambda context key, `principalId`).
    Authorizer(Box<str>),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template(Box<[Piece]>);

/// Appends the joined values of one response header (`$response.header.NAME`).
pub type ResponseHeaders<'r> = &'r dyn Fn(&[u8], &mut Vec<u8>);

impl Template {
    /// Resolves stage variables and names. Errors only for what validation reports, so
    /// after a clean `check` this fails only on a per-stage problem.
    pub fn compile(
        s: &str,
        vars: &[(String, String)],
        params: &[String],
    ) -> Result<Template, String> {
        let mut pieces: Vec<Piece> = Vec::new();
        let push_lit = |pieces: &mut Vec<Piece>, text: &str| {
            if text.is_empty() {
                return;
            }
            if let Some(Piece::Lit(prev)) = pieces.last_mut() {
                let mut joined = prev.to_vec();
                joined.extend_from_slice(text.as_bytes());
                *prev = joined.into();
            } else {
                pieces.push(Piece::Lit(text.as_bytes().into()));
            }
        };
        for r in parse(s)? {
            let lower = |n: &str| n.to_ascii_lowercase().into_bytes().into_boxed_slice();
            match r {
                Ref::Lit(t) => push_lit(&mut pieces, t),
                Ref::Stage(name) => {
                    let value = vars
                        .iter()
                        .find(|(n, _)| n == name)
                        .ok_or_else(|| format!("no stage variable {name:?}"))?;
                    push_lit(&mut pieces, &value.1);
                }
                Ref::Header(n) => pieces.push(Piece::Header(lower(n))),
                Ref::RespHeader(n) => pieces.push(Piece::RespHeader(lower(n))),
                Ref::Query(n) => pieces.push(Piece::Query(n.as_bytes().into())),
                Ref::Path => pieces.push(Piece::Path),
                Ref::PathParam(n) => {
                    let i = params
                        .iter()
                        .position(|p| p == n)
                        .ok_or_else(|| format!("{{{n}}} is not a parameter of the route key"))?;
                    pieces.push(Piece::PathParam(i));
                }
                Ref::Context(n) if n.starts_with("authorizer.") => {
                    let name = &n["authorizer.".len()..];
                    pieces.push(Piece::Authorizer(name.into()));
                }
                Ref::Context(n) => {
                    let var =
                        Var::parse(n).ok_or_else(|| format!("$context.{n} is not a variable"))?;
                    pieces.push(Piece::Context(var));
                }
            }
        }
        Ok(Template(pieces.into()))
    }

    /// The value when it needs no request: a literal (or nothing).
    pub fn as_static(&self) -> Option<&[u8]> {
        match &*self.0 {
            [] => Some(b""),
            [Piece::Lit(b)] => Some(b),
            _ => None,
        }
    }

    pub fn pieces(&self) -> &[Piece] {
        &self.0
    }

    /// Appends the value for one request. `resp` answers `$response.header.NAME`.
    pub fn eval(&self, v: &RequestView, resp: Option<ResponseHeaders>, out: &mut Vec<u8>) {
        for piece in self.0.iter() {
            piece.eval(v, resp, out);
        }
    }

    /// Appends the value for one request as part of a URL (a path, or a query value),
    /// each piece percent-encoded where `keep` refuses a byte. A client's query value is
    /// form-encoded, its `+` a space: it is written as one (`%20`), as it was meant;
    /// written as it is, `q=new+york` copied into a query reached the backend as
    /// `new%2Byork` (a plus), and into a path as `new+york`. Piece by piece, so a `%` in
    /// one piece and hex digits in the next never make an escape together. A value (a
    /// header, a query value, a path parameter, a claim) is held to `keep_value`, the
    /// template's own text and a whole `$request.path` to `keep`.
    pub fn eval_url_part(
        &self,
        v: &RequestView,
        out: &mut Vec<u8>,
        keep: fn(u8) -> bool,
        keep_value: fn(u8) -> bool,
    ) {
        for piece in self.0.iter() {
            let at = out.len();
            piece.eval(v, None, out);
            if matches!(piece, Piece::Query(_)) {
                for b in &mut out[at..] {
                    if *b == b'+' {
                        *b = b' ';
                    }
                }
            }
            let own = matches!(piece, Piece::Lit(_) | Piece::Path);
            encode_tail(out, at, if own { keep } else { keep_value });
        }
    }

    /// The request values this template reads, each length-prefixed, for a cache key
    /// (`RequestMap::write_key`). Literals, and values each request has its own of (its
    /// id, its time), are left out: they tell no caller from another, and keyed they
    /// would make every request a miss.
    pub fn write_inputs(&self, v: &RequestView, out: &mut Vec<u8>) {
        for piece in self.0.iter() {
            let unique = matches!(
                piece,
                Piece::Context(
                    Var::RequestId
                        | Var::ExtendedRequestId
                        | Var::RequestTime
                        | Var::RequestTimeEpoch
                )
            );
            if unique || matches!(piece, Piece::Lit(_) | Piece::RespHeader(_)) {
                continue;
            }
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            piece.eval(v, None, out);
            let len = (out.len() - at - 4) as u32;
            out[at..at + 4].copy_from_slice(&len.to_le_bytes());
        }
    }
}

impl Piece {
    fn eval(&self, v: &RequestView, resp: Option<ResponseHeaders>, out: &mut Vec<u8>) {
        match self {
            Piece::Lit(b) => out.extend_from_slice(b),
            Piece::Header(name) => {
                let mut first = true;
                for h in &v.head.headers {
                    if v.span(h.name).eq_ignore_ascii_case(name) {
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        out.extend_from_slice(v.span(h.value));
                    }
                }
            }
            Piece::Query(name) => {
                let mut first = true;
                for (n, value) in query_pairs(v.query()) {
                    if n == &name[..] {
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        out.extend_from_slice(value);
                    }
                }
            }
            Piece::Path => {
                // `%2Fx` (after a base path ended by an escaped separator) as a path.
                let rest = v.rest_path();
                if rest[0] != b'/' {
                    out.push(b'/');
                }
                out.extend_from_slice(rest);
            }
            Piece::PathParam(i) => {
                if let Some(s) = v.params.get(*i) {
                    out.extend_from_slice(v.span(*s));
                }
            }
            Piece::Context(var) => context::resolve(*var, v).write(out),
            Piece::Authorizer(name) => {
                if let Some(val) = v.state.auth.value(name) {
                    out.extend_from_slice(val.as_bytes());
                }
            }
            Piece::RespHeader(name) => {
                if let Some(resp) = resp {
                    resp(name, out);
                }
            }
        }
    }
}

/// The bytes a backend's query parser reads from one name or value: `%XX` decoded, `+`
/// a space (form encoding, as Python's `parse_qs`, Go's `ParseQuery`, PHP and Node
/// read a query). A `%` without two hex digits after it stays as it is, as those
/// parsers that accept it leave it.
pub fn query_decoded(raw: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    std::iter::from_fn(move || {
        let b = *raw.get(i)?;
        i += 1;
        Some(match b {
            b'+' => b' ',
            b'%' => match (
                raw.get(i).and_then(|&h| hex(h)),
                raw.get(i + 1).and_then(|&l| hex(l)),
            ) {
                (Some(h), Some(l)) => {
                    i += 2;
                    h << 4 | l
                }
                _ => b'%',
            },
            b => b,
        })
    })
}

/// Whether the raw (still encoded) query parameter name `raw` is `name` to some common
/// backend's parser, which a mapping that removes or overwrites `name` must catch. After
/// decoding ([`query_decoded`]):
/// - PHP skips leading spaces (`+debug`, `%20debug`), ends the name at a NUL
///   (`debug%00x`), files `debug[]` and `debug[k]` under `debug`, and reads a space, `.`
///   or an unclosed `[` as `_` (`user.id` and `user[id` are `user_id`);
/// - Rack skips leading `[` and `]` and ends the name at the first `[` or `]` (`[debug]`,
///   `]debug`, `debug]` and `debug[k]` are all `debug`);
/// - ASP.NET reads names in any letter case (`DEBUG`, `Debug`).
///
/// Decodes into a buffer: called only for routes whose mapping drops query names.
pub fn query_name_is(raw: &[u8], name: &[u8]) -> bool {
    let decoded: Vec<u8> = query_decoded(raw).collect();
    php_name_is(&decoded, name)
        || rack_name_is(&decoded, name)
        || decoded.eq_ignore_ascii_case(name)
}

fn php_name_is(decoded: &[u8], name: &[u8]) -> bool {
    let php = |b: u8| match b {
        b' ' | b'.' | b'[' => b'_',
        b => b,
    };
    let start = decoded
        .iter()
        .position(|&b| b != b' ')
        .unwrap_or(decoded.len());
    let end = decoded
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(decoded.len());
    let d = &decoded[start.min(end)..end];
    // The name ends at a `[` that a `]` closes later (an index); an unclosed one is `_`.
    let d = match d.iter().position(|&b| b == b'[') {
        Some(i) if d[i..].contains(&b']') => &d[..i],
        _ => d,
    };
    d.len() == name.len() && d.iter().zip(name).all(|(&a, &b)| php(a) == php(b))
}

fn rack_name_is(decoded: &[u8], name: &[u8]) -> bool {
    let bracket = |b: &u8| *b == b'[' || *b == b']';
    let start = decoded
        .iter()
        .position(|b| !bracket(b))
        .unwrap_or(decoded.len());
    let d = &decoded[start..];
    let end = d.iter().position(bracket).unwrap_or(d.len());
    &d[..end] == name
}

/// `name=value` pairs of a raw query string, still percent-encoded; empty pairs skipped.
pub fn query_pairs(q: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    q.split(|&b| b == b'&').filter(|p| !p.is_empty()).map(|p| {
        match p.iter().position(|&b| b == b'=') {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => (p, &b""[..]),
        }
    })
}

/// Percent-encodes the bytes of `out[start..]` that `keep` refuses, and a `%` that does
/// not start an escape (two hex digits): written as it is, `%%36%31dmin` from a header
/// made the path a backend decodes to `/%61dmin`, then `/admin`, the very path a client
/// sending it is refused for (400). Values are written in place first; the tail is only
/// copied in the rare case that something needs encoding.
pub fn encode_tail(out: &mut Vec<u8>, start: usize, keep: fn(u8) -> bool) {
    // Byte `i` of `t` goes as it is: `keep` takes it, and a `%` starts an escape.
    let kept = |t: &[u8], i: usize| {
        keep(t[i])
            && (t[i] != b'%'
                || t.get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)))
    };
    let tail = &out[start..];
    if (0..tail.len()).all(|i| kept(tail, i)) {
        return;
    }
    let tail = out.split_off(start);
    for (i, &b) in tail.iter().enumerate() {
        if kept(&tail, i) {
            out.push(b);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
    }
}

/// Bytes allowed as they are in a query value: unreserved, `%` (keeps escapes) and the
/// sub-delimiters that split no pairs. Not `;`: Rack 2, Python before 3.10 and other
/// parsers split pairs on it as on `&`, so a mapped `x;admin=1` would add a parameter.
pub fn query_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$'()*,:@/?%".contains(&b)
}

/// Bytes allowed as they are in a path.
pub fn path_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b)
}

/// Bytes allowed as they are in a value copied into a path: not `;`, which starts a
/// segment's parameters there (Tomcat, Jetty and Spring read `/x/admin;x` as `/x/admin`):
/// a client's `a=admin;x` and `a=admin%3Bx` are one value and reach the backend alike.
pub fn path_value_safe(b: u8) -> bool {
    b != b';' && path_safe(b)
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
