//! The event's maps: headers and multi-value headers, query string parameters, cookies,
//! path parameters and stage variables, each written as a JSON object or list.

use std::ops::Range;

use super::{escape, string, Added};
use crate::http1::percent_decode;
use crate::pipeline::context::RequestView;

/// Header values in one event object: joined with commas (2.0), the last one (1.0
/// `headers`), or all as a list (1.0 `multiValueHeaders`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Multi {
    Joined,
    Last,
    List,
}

/// The headers object. Repeated names (any case) are grouped; a request has at most a
/// hundred headers, so grouping by scanning is cheaper than building a map.
pub(super) fn headers(
    out: &mut Vec<u8>,
    v: &RequestView,
    added: &Added,
    with_cookie: bool,
    multi: Multi,
    dechunked_len: Option<usize>,
) {
    let hs = &v.head.headers;
    let name = |i: usize| v.span(hs[i].name);
    let mut any = false;
    let mut host_line = false;
    out.push(b'{');
    for i in 0..hs.len() {
        let n = name(i);
        host_line |= n.eq_ignore_ascii_case(b"host");
        let skip = (!with_cookie && n.eq_ignore_ascii_case(b"cookie"))
            || super::written_by_gateway(n).is_some()
            || crate::integration::own_headers::underscore_spelling_of_own(n)
            // A SigV4 signature is the gateway's business, not the integration's.
            || (v.state.auth.is_iam() && n.eq_ignore_ascii_case(b"authorization"))
            // The event's body is whole: a `transfer-encoding: chunked` beside it would
            // tell a function rebuilding the request (a web adapter) to de-chunk it again.
            || (dechunked_len.is_some() && n.eq_ignore_ascii_case(b"transfer-encoding"))
            || (0..i).any(|j| name(j).eq_ignore_ascii_case(n));
        if skip {
            continue;
        }
        if any {
            out.push(b',');
        }
        any = true;
        out.push(b'"');
        out.extend(n.iter().map(u8::to_ascii_lowercase));
        out.extend_from_slice(b"\":");
        // An absolute-form target's authority is the request's host, whatever its Host
        // line says (RFC 9112 §3.2.2): it chose the domain, and a function or authorizer
        // building URLs or checking the host from `headers.host` must see that one.
        if let Some(authority) = v.head.authority.filter(|_| n.eq_ignore_ascii_case(b"host")) {
            values_of(out, std::iter::once(v.span(authority)), multi, b",");
            continue;
        }
        let values = (i..hs.len())
            .filter(|&j| name(j).eq_ignore_ascii_case(n))
            .map(|j| v.span(hs[j].value));
        values_of(out, values, multi, b",");
    }
    // An HTTP/1.0 request may give its host only in an absolute-form target.
    if let Some(authority) = v.head.authority.filter(|_| !host_line) {
        if any {
            out.push(b',');
        }
        any = true;
        out.extend_from_slice(br#""host":"#);
        values_of(out, std::iter::once(v.span(authority)), multi, b",");
    }
    // A chunked body read whole has a length, as nginx sends a buffered chunked body on.
    if let Some(len) = dechunked_len {
        if any {
            out.push(b',');
        }
        any = true;
        out.extend_from_slice(br#""content-length":"#);
        let len = len.to_string();
        values_of(out, std::iter::once(len.as_bytes()), multi, b",");
    }
    // As API Gateway does: the client address appended, the scheme and port the client
    // connected to, the trace id for this hop.
    let mut value = Vec::new();
    for name in super::GATEWAY_HEADERS {
        if any {
            out.push(b',');
        }
        any = true;
        string(out, name.as_bytes());
        out.push(b':');
        value.clear();
        super::gateway_header_value(name, v, added, &mut value);
        values_of(out, std::iter::once(&value[..]), multi, b"");
    }
    out.push(b'}');
}

/// `n` in decimal, in `buf`.
pub(super) fn decimal(mut n: u16, buf: &mut [u8; 5]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

fn values_of<'a>(
    out: &mut Vec<u8>,
    values: impl Iterator<Item = &'a [u8]>,
    multi: Multi,
    joiner: &[u8],
) {
    match multi {
        Multi::Joined => {
            out.push(b'"');
            for (k, value) in values.enumerate() {
                if k > 0 {
                    out.extend_from_slice(joiner);
                }
                escape(out, value);
            }
            out.push(b'"');
        }
        Multi::Last => string(out, values.last().unwrap_or_default()),
        Multi::List => {
            out.push(b'[');
            for (k, value) in values.enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                string(out, value);
            }
            out.push(b']');
        }
    }
}

/// 2.0 moves cookies out of the headers: every `cookie` header split at `;`.
pub(super) fn cookies(out: &mut Vec<u8>, v: &RequestView) {
    let mut first = true;
    for h in &v.head.headers {
        if !v.span(h.name).eq_ignore_ascii_case(b"cookie") {
            continue;
        }
        for c in v.span(h.value).split(|&b| b == b';') {
            let c = c.trim_ascii();
            if c.is_empty() {
                continue;
            }
            out.extend_from_slice(if first { br#","cookies":["# } else { b"," });
            first = false;
            string(out, c);
        }
    }
    if !first {
        out.push(b']');
    }
}

pub(super) fn path_parameters(out: &mut Vec<u8>, v: &RequestView) {
    let mut scratch = Vec::new();
    out.push(b'{');
    for (k, (name, span)) in v.route().param_names.iter().zip(v.params).enumerate() {
        if k > 0 {
            out.push(b',');
        }
        string(out, name.as_bytes());
        out.push(b':');
        scratch.clear();
        percent_decode(v.span(*span), false, &mut scratch);
        string(out, &scratch);
    }
    out.push(b'}');
}

pub(super) fn stage_variables(out: &mut Vec<u8>, v: &RequestView) {
    out.push(b'{');
    for (k, (name, value)) in v.stage_vars().iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        string(out, name.as_bytes());
        out.push(b':');
        string(out, value.as_bytes());
    }
    out.push(b'}');
}

/// Query parameters decoded into one buffer, grouped by name.
pub(super) struct QueryPairs {
    buf: Vec<u8>,
    pub(super) items: Vec<(Range<usize>, Range<usize>)>,
}

impl QueryPairs {
    pub(super) fn decode(q: &[u8]) -> QueryPairs {
        let mut p = QueryPairs {
            buf: Vec::with_capacity(q.len()),
            items: Vec::new(),
        };
        for (name, value) in crate::pipeline::template::query_pairs(q) {
            let a = p.buf.len();
            percent_decode(name, false, &mut p.buf);
            // Grouped as the event writes the name: bytes that are not UTF-8 become
            // U+FFFD there, so `%ff` and `%fe` are one name (and one key), not two
            // keys that read the same.
            if std::str::from_utf8(&p.buf[a..]).is_err() {
                let text = String::from_utf8_lossy(&p.buf[a..]).into_owned();
                p.buf.truncate(a);
                p.buf.extend_from_slice(text.as_bytes());
            }
            let b = p.buf.len();
            percent_decode(value, false, &mut p.buf);
            p.items.push((a..b, b..p.buf.len()));
        }
        // Stable, so repeated names keep their order; n log n even for a hostile query.
        let buf = &p.buf;
        p.items
            .sort_by(|x, y| buf[x.0.clone()].cmp(&buf[y.0.clone()]));
        p
    }

    pub(super) fn write(&self, out: &mut Vec<u8>, multi: Multi) {
        out.push(b'{');
        let mut i = 0;
        while i < self.items.len() {
            let name = &self.buf[self.items[i].0.clone()];
            let end = self.items[i..]
                .iter()
                .position(|(n, _)| self.buf[n.clone()] != *name)
                .map_or(self.items.len(), |k| i + k);
            if i > 0 {
                out.push(b',');
            }
            string(out, name);
            out.push(b':');
            let values = self.items[i..end].iter().map(|(_, v)| &self.buf[v.clone()]);
            values_of(out, values, multi, b",");
            i = end;
        }
        out.push(b'}');
    }
}
