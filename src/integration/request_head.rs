//! The upstream request head of the `http` integration, written from the client's
//! original bytes with the edits a proxy makes: the request line (a mapped or
//! templated path), hop-by-hop headers dropped, mapped headers, Host for the target,
//! X-Forwarded-For/-Proto/-Host and X-Real-IP, the body's framing, trace ids and an
//! allowed upgrade.

use std::ops::Range;

use super::own_headers::REAL_IP;
use super::tunnel::Offered;
use crate::config::compile::{HttpIntegration, PathPart};
use crate::http1::encode;
use crate::http1::hop::{write_transfer_encoding, HopByHop};
use crate::http1::parse::BodyKind;
use crate::pipeline::context::request_view;
use crate::pipeline::params::RequestMap;
use crate::pipeline::trace;
use crate::router::Matched;
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::server::conn::Conn;
use crate::upstream::Lease;

/// Returns which upgrade protocols the head offers (integration::tunnel) and where the Host
/// value is (for a failover); None when a mapped path came out with a dot-segment (400).
pub(super) fn encode_request_head(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    h: &HttpIntegration,
    m: &Matched,
    lease: &Lease,
    dechunked: Option<u64>,
) -> Option<(Offered, Range<usize>)> {
    let buf = &c.rbuf[..];
    let out = &mut c.wbuf;
    // One reservation up front: the edits add well under 512 bytes to the client's head.
    out.reserve(c.head.head_len + 512);
    // Parameter mapping reads the request as the client sent it.
    let map = h.map.as_deref();
    let view = map.map(|_| request_view!(c, &gen.snap, buf));
    out.extend_from_slice(c.head.method_span.get(buf));
    out.push(b' ');
    let start = out.len();
    match &h.path {
        _ if map.is_some_and(RequestMap::maps_path) => {
            if !map.unwrap().write_path(view.as_ref().unwrap(), out) {
                return None;
            }
        }
        None => out.extend_from_slice(m.rest.get(buf)),
        Some(parts) => {
            for part in parts {
                match part {
                    PathPart::Literal(b) => out.extend_from_slice(b),
                    PathPart::Param(i) => {
                        out.extend_from_slice(c.params.get(*i).map_or(&b""[..], |s| s.get(buf)))
                    }
                }
            }
        }
    }
    if out.len() == start || out[start] != b'/' {
        out.insert(start, b'/');
    }
    if let (Some(map), Some(v)) = (map.filter(|m| m.maps_query()), &view) {
        map.write_query(v, out);
    } else if let Some(q) = c.head.query {
        out.push(b'?');
        out.extend_from_slice(q.get(buf));
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");

    let hop = HopByHop::new(&c.head.headers, buf, c.head.connection_names);
    // A field the client's `Connection` names is this hop's only (RFC 9110 §7.6.1), also
    // where Portico writes its own from the client's: its X-Forwarded-For and trace ids
    // are not continued.
    let forwarded_for_named = c.head.names_in_connection(buf, b"x-forwarded-for");
    // Where the client's first X-Forwarded-For line is, if it sent one.
    let mut forwarded_for: Option<usize> = None;
    for (i, hs) in c.head.headers.iter().enumerate() {
        let name = hs.name.get(buf);
        if forwarded_for.is_none()
            && !forwarded_for_named
            && name.eq_ignore_ascii_case(b"x-forwarded-for")
        {
            forwarded_for = Some(i);
        }
        if super::own_headers::written_by_proxy(name)
            || crate::http1::same_cgi_name(name, REAL_IP)
            || hop.drops(name)
            || map.is_some_and(|m| m.drops_header(name))
        {
            continue;
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(hs.value.get(buf));
        out.extend_from_slice(b"\r\n");
    }
    let mapped_from = out.len();
    if let (Some(map), Some(v)) = (map, &view) {
        map.write_headers(v, out);
    }
    // A mapping that sets, appends or removes X-Real-IP is the operator's word on it (as
    // with `forwarded`): Portico's is not written beside or against it.
    let real_ip_mapped = map.is_some_and(|m| m.drops_header(REAL_IP))
        || super::own_headers::lines_name(&out[mapped_from..], REAL_IP);
    out.extend_from_slice(b"host: ");
    let host_start = out.len();
    lease.host(out);
    let host_at = host_start..out.len();
    out.extend_from_slice(b"\r\nx-forwarded-for: ");
    let client = forwarded_for.map_or(&[][..], |i| &c.head.headers[i..]);
    let client = client
        .iter()
        .filter(|hs| hs.name.get(buf).eq_ignore_ascii_case(b"x-forwarded-for"))
        .map(|hs| hs.value.get(buf));
    super::own_headers::forwarded_for(client, c.peer_ip.as_bytes(), out);
    out.extend_from_slice(if c.stream.is_tls() {
        b"\r\nx-forwarded-proto: https\r\n"
    } else {
        b"\r\nx-forwarded-proto: http\r\n"
    });
    if !real_ip_mapped {
        out.extend_from_slice(b"x-real-ip: ");
        out.extend_from_slice(c.peer_ip.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match (c.head.body, dechunked) {
        (BodyKind::Length(n), _) | (BodyKind::Chunked, Some(n)) => {
            out.extend_from_slice(b"content-length: ");
            encode::decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        (BodyKind::Empty, _) if c.head.header(buf, "content-length").is_some() => {
            out.extend_from_slice(b"content-length: 0\r\n");
        }
        (BodyKind::Chunked, None) => write_transfer_encoding(&c.head.headers, buf, out),
        (BodyKind::Empty, _) => {}
    }
    let mut rng = ctx.rng.borrow_mut();
    // Two `traceparent` lines are no trace to continue (W3C Trace Context's own tests).
    let traceparent = c.head.only_header(buf, "traceparent");
    let traceparent = traceparent.filter(|_| !c.head.names_in_connection(buf, b"traceparent"));
    if trace::traceparent(out, traceparent, &mut rng) {
        // A `tracestate` belongs to the trace it came with: passed on when that trace is
        // continued, dropped with it when a new one starts (W3C Trace Context §4.3).
        for value in c.head.continued_values(buf, "tracestate") {
            encode::header(out, b"tracestate", value);
        }
    }
    let now = encode::unix_secs();
    trace::amzn_trace_id(
        out,
        c.head.continued(buf, "x-amzn-trace-id"),
        &c.request_id,
        now,
    );
    encode::header(out, b"x-amzn-requestid", &c.request_id);
    if let Some(host) = c.head.host {
        out.extend_from_slice(b"x-forwarded-host: ");
        out.extend_from_slice(host.get(buf));
        out.extend_from_slice(b"\r\n");
    }
    // Upgrade and Connection are hop-by-hop: an allowed upgrade is offered anew.
    let upgrading = super::tunnel::write_offer(&h.upgrade, &c.head, buf, out);
    out.extend_from_slice(b"\r\n");
    Some((upgrading, host_at))
}

/// Puts the Host header value of `next`'s target where `at` has the failed target's (in
/// the request head not yet sent), for a failover to another configured target.
pub(super) fn replace_host(wbuf: &mut Vec<u8>, at: Range<usize>, next: &Lease) -> Range<usize> {
    let mut host = Vec::new();
    next.host(&mut host);
    let new_at = at.start..at.start + host.len();
    wbuf.splice(at, host);
    new_at
}
