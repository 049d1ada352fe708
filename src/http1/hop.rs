//! Which header fields a proxy drops when it forwards a message, and which it must write
//! itself (RFC 9110 §7.6.1, RFC 9112 §6 and §9.6; the rules are listed in
//! docs/HTTP-FRAMING.md).
//!
//! Hop-by-hop fields are the fixed list below plus every field the message's `Connection`
//! header names. The framing fields, `Content-Length` and `Transfer-Encoding`, are never
//! hop-by-hop, whatever `Connection` says: they describe the body that follows, so the
//! proxy writes them for the body it actually sends. Honouring `Connection:
//! transfer-encoding` would forward a chunked body with no framing header, and the next
//! hop would read the chunks as a new message (request smuggling, or a response that runs
//! into the next one).

use super::parse::HeaderSpan;

/// Fields that only ever describe one connection. `check` refuses them in a mapping, a
/// mock's or a gateway response's headers (`config::validate::reserved_header`).
pub const ALWAYS: [&[u8]; 7] = [
    b"connection",
    // h2c's upgrade offer (RFC 7540 §3.2.1); written anew with an allowed h2c upgrade.
    b"http2-settings",
    b"keep-alive",
    b"proxy-connection",
    b"te",
    b"trailer",
    b"upgrade",
];

/// Whether `name` is in the fixed hop-by-hop list (without what `Connection` names).
/// Answers Portico builds from a function's or a `$connect` integration's headers drop
/// these by the same list as the relay.
pub fn is_always(name: &[u8]) -> bool {
    ALWAYS.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Whether the `Connection` value `value` (a comma list) names the field `name`.
/// Framing fields and Host are never named away (see the module comment).
pub fn connection_names(value: &[u8], name: &[u8]) -> bool {
    !is_framing(name)
        && !name.eq_ignore_ascii_case(b"host")
        && value
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(name))
}

/// `Content-Length` or `Transfer-Encoding`: where the body ends.
pub fn is_framing(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"transfer-encoding")
}

/// The hop-by-hop fields of one message.
#[derive(Clone, Copy)]
pub struct HopByHop<'a> {
    /// The message's headers and buffer, when its `Connection` header names any field
    /// beyond close/keep-alive/upgrade (most messages: none, so nothing is scanned).
    named: Option<(&'a [HeaderSpan], &'a [u8])>,
}

impl<'a> HopByHop<'a> {
    /// `connection_names`: the parser's flag that some `Connection` field names other
    /// fields (`RequestHead::connection_names`, `ResponseHead::connection_names`).
    pub fn new(headers: &'a [HeaderSpan], buf: &'a [u8], connection_names: bool) -> Self {
        HopByHop {
            named: connection_names.then_some((headers, buf)),
        }
    }

    /// Whether a proxy must not forward the field `name`. Never true for framing fields.
    pub fn drops(&self, name: &[u8]) -> bool {
        if is_always(name) {
            return true;
        }
        let Some((headers, buf)) = self.named else {
            return false;
        };
        // Every Connection field counts, not only the first.
        headers
            .iter()
            .filter(|h| h.name.get(buf).eq_ignore_ascii_case(b"connection"))
            .any(|h| connection_names(h.value.get(buf), name))
    }

    /// [`drops`](Self::drops) for a response with `status`, less what [`response_keeps`]
    /// keeps.
    pub fn drops_response(&self, status: u16, name: &[u8]) -> bool {
        !response_keeps(status, name) && self.drops(name)
    }
}

/// Whether a response with `status` keeps its hop-by-hop field `name`: a 426's
/// `Upgrade`, which RFC 9110 §15.5.22 requires it to carry (the protocols the client must
/// switch to), as nginx passes it. Its `Connection: upgrade` still goes: the upgrade
/// would be the client's with the backend, through no tunnel of Portico's.
pub fn response_keeps(status: u16, name: &[u8]) -> bool {
    status == 426 && name.eq_ignore_ascii_case(b"upgrade")
}

/// Writes the Transfer-Encoding of a chunked message being relayed as it was sent: the
/// other codings in the order sent, then `chunked` spelled as every recipient reads it
/// (the parser accepted any case, and `chunked` only once and last). Repeated fields are
/// one list.
pub fn write_transfer_encoding(headers: &[HeaderSpan], buf: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"transfer-encoding: ");
    let values = headers
        .iter()
        .filter(|h| h.name.get(buf).eq_ignore_ascii_case(b"transfer-encoding"));
    for coding in values.flat_map(|h| h.value.get(buf).split(|&b| b == b',')) {
        let coding = coding.trim_ascii();
        if !coding.is_empty() && !coding.eq_ignore_ascii_case(b"chunked") {
            out.extend_from_slice(coding);
            out.extend_from_slice(b", ");
        }
    }
    out.extend_from_slice(b"chunked\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::parse::Span;

    fn head(raw: &[u8]) -> Vec<HeaderSpan> {
        let mut out = Vec::new();
        let mut pos = 0;
        for line in raw.split(|&b| b == b'\n') {
            let colon = line.iter().position(|&b| b == b':').unwrap();
            let end = line.len();
            let start_v = colon + 1 + line[colon + 1..].iter().take_while(|&&b| b == b' ').count();
            out.push(HeaderSpan {
                name: Span::new(pos, pos + colon),
                value: Span::new(pos + start_v, pos + end),
            });
            pos += line.len() + 1;
        }
        out
    }

    #[test]
    fn framing_fields_are_never_hop_by_hop() {
        let raw = b"Connection: keep-alive, Transfer-Encoding, content-length, host\nTransfer-Encoding: chunked";
        let h = head(raw);
        let hop = HopByHop::new(&h, raw, true);
        assert!(!hop.drops(b"transfer-encoding"));
        assert!(!hop.drops(b"Content-Length"));
        assert!(!hop.drops(b"Host"));
        assert!(hop.drops(b"keep-alive"));
        assert!(hop.drops(b"Connection"));
    }

    #[test]
    fn every_connection_field_names_fields() {
        let raw = b"Connection: keep-alive\nConnection: X-Secret , x-other\nX-Secret: 1";
        let h = head(raw);
        let hop = HopByHop::new(&h, raw, true);
        assert!(hop.drops(b"x-secret"));
        assert!(hop.drops(b"X-Other"));
        assert!(!hop.drops(b"x-kept"));
        // Without the parser's flag nothing beyond the fixed list is dropped.
        assert!(!HopByHop::new(&h, raw, false).drops(b"x-secret"));
    }

    #[test]
    fn only_a_426_keeps_its_upgrade() {
        assert!(response_keeps(426, b"Upgrade"));
        assert!(!response_keeps(426, b"connection"));
        assert!(!response_keeps(200, b"upgrade"));
        assert!(!response_keeps(101, b"upgrade"));
        // Even where its Connection names it.
        let raw = b"Connection: upgrade\nUpgrade: h2c";
        let h = head(raw);
        let hop = HopByHop::new(&h, raw, true);
        assert!(!hop.drops_response(426, b"upgrade"));
        assert!(hop.drops_response(426, b"connection"));
        assert!(hop.drops_response(200, b"upgrade"));
    }

    #[test]
    fn transfer_encoding_keeps_every_coding_and_ends_in_chunked() {
        let raw = b"Transfer-Encoding: gzip\nTransfer-Encoding: br ,ChUnKeD";
        let h = head(raw);
        let mut out = Vec::new();
        write_transfer_encoding(&h, raw, &mut out);
        assert_eq!(out, b"transfer-encoding: gzip, br, chunked\r\n");
        let raw = b"Transfer-Encoding: CHUNKED";
        out.clear();
        write_transfer_encoding(&head(raw), raw, &mut out);
        assert_eq!(out, b"transfer-encoding: chunked\r\n");
    }
}
