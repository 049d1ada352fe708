//! SHA-1, only for the handshake's `Sec-WebSocket-Accept` (RFC 6455 §4.2.2), where the
//! protocol fixes the hash (it protects nothing here): `ring`'s, which the server links
//! for TLS and JWT signatures anyway.

use base64::Engine;

/// The GUID RFC 6455 appends to the client's key.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `base64(sha1(key + GUID))`: 28 characters.
pub fn accept_key(key: &[u8]) -> String {
    let mut input = Vec::with_capacity(key.len() + GUID.len());
    input.extend_from_slice(key);
    input.extend_from_slice(GUID);
    base64::engine::general_purpose::STANDARD.encode(sha1(&input))
}

pub fn sha1(data: &[u8]) -> [u8; 20] {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    let mut out = [0u8; 20];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
