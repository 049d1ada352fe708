//! A connection's peer address as text, formatted once per connection (the
//! `X-Forwarded-For` value, `$context.identity.sourceIp`, access logs).

/// An IP address as text in a fixed buffer (the longest IPv6 form is 45 bytes; 47 keeps the struct at 48).
pub struct PeerIp {
    buf: [u8; 47],
    len: u8,
}

impl PeerIp {
    pub(super) fn new(ip: std::net::IpAddr) -> Self {
        use std::io::Write;
        let mut buf = [0u8; 47];
        if let std::net::IpAddr::V4(v4) = ip {
            // By hand: `write!` costs a few hundred instructions on every new connection.
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    buf[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    buf[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                buf[len] = b'0' + octet % 10;
                len += 1;
            }
            return PeerIp {
                buf,
                len: len as u8,
            };
        }
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        let _ = write!(cursor, "{ip}");
        let len = cursor.position() as u8;
        PeerIp { buf, len }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

#[cfg(test)]
mod tests {
    use super::PeerIp;
    use std::net::IpAddr;

    #[test]
    fn formats_as_the_standard_library_does() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.200.3.45",
            "255.255.255.255",
            "1.20.100.9",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:192.0.2.128",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
            "0:0:0:0:0:ffff:255.255.255.255",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(PeerIp::new(ip).as_bytes(), ip.to_string().as_bytes());
        }
    }
}
