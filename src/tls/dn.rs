//! Distinguished names of an X.509 certificate as RFC 4514 text ("CN=client,O=Example"),
//! the form nginx's `$ssl_client_s_dn` and most TLS stacks print: the relative names in
//! the reverse of their DER order, `,` between them, `+` inside a multi-valued one.
//!
//! Only the few DER shapes a certificate's tbsCertificate needs are read; anything
//! unexpected gives `None` rather than a guess.

/// What API Gateway tells integrations about a client certificate
/// (`requestContext.authentication.clientCert`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertInfo {
    pub subject_dn: String,
    pub issuer_dn: String,
    /// Lowercase hex bytes joined by `:`.
    pub serial_number: String,
    /// "May 28 12:30:02 2019 GMT", as openssl prints it.
    pub not_before: String,
    pub not_after: String,
    /// The same two times in seconds since the Unix epoch.
    pub valid_from: i64,
    pub valid_until: i64,
}

/// A DER certificate's tbsCertificate fields up to its subject, each as its DER content:
/// (serial, issuer, validity, subject).
fn head_fields(cert: &[u8]) -> Option<[&[u8]; 4]> {
    let (cert_body, _) = expect(cert, SEQUENCE)?;
    let (tbs, _) = expect(cert_body, SEQUENCE)?;
    let mut rest = tbs;
    // version [0] EXPLICIT, optional
    if rest.first() == Some(&0xa0) {
        rest = element(rest)?.2;
    }
    let (serial, rest) = expect(rest, INTEGER)?;
    let (_signature, rest) = expect(rest, SEQUENCE)?;
    let (issuer, rest) = expect(rest, SEQUENCE)?;
    let (validity, rest) = expect(rest, SEQUENCE)?;
    let (subject, _) = expect(rest, SEQUENCE)?;
    Some([serial, issuer, validity, subject])
}

/// A DER certificate's issuer and subject names as encoded, to be compared byte for byte
/// (as webpki chains them).
pub(super) fn issuer_and_subject(cert: &[u8]) -> Option<(&[u8], &[u8])> {
    let [_, issuer, _, subject] = head_fields(cert)?;
    Some((issuer, subject))
}

/// Names, serial and validity of a DER certificate.
pub fn describe(cert: &[u8]) -> Option<CertInfo> {
    let [serial, issuer, validity, subject] = head_fields(cert)?;
    let (t1, not_before, after) = element(validity)?;
    let (t2, not_after, _) = element(after)?;
    // A DER INTEGER whose first byte has the high bit set is preceded by a 00 that only
    // says "positive"; the serial is the number (openssl, nginx and Java print it without).
    let serial = match serial {
        [0, rest @ ..] if rest.first().is_some_and(|&b| b >= 0x80) => rest,
        s => s,
    };
    let serial_number = serial
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let (from, until) = (time(t1, not_before)?, time(t2, not_after)?);
    Some(CertInfo {
        subject_dn: name(subject)?,
        issuer_dn: name(issuer)?,
        serial_number,
        not_before: from.text(),
        not_after: until.text(),
        valid_from: from.unix(),
        valid_until: until.unix(),
    })
}

/// A certificate time, in UTC.
struct Time {
    year: i64,
    /// 1–12.
    month: u32,
    day: u32,
    hms: [u32; 3],
}

/// UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ).
fn time(tag: u8, v: &[u8]) -> Option<Time> {
    let text = std::str::from_utf8(v).ok()?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            // RFC 5280: 50–99 are 19xx.
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let num = |r: std::ops::Range<usize>| rest.get(r)?.parse::<u32>().ok();
    let month = num(0..2).filter(|m| (1..=12).contains(m))?;
    Some(Time {
        year,
        month,
        day: num(2..4)?,
        hms: [num(4..6)?, num(6..8)?, num(8..10)?],
    })
}

impl Time {
    /// As openssl prints it: "May 28 12:30:02 2019 GMT".
    fn text(&self) -> String {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let [h, m, s] = self.hms;
        let month = MONTHS[self.month as usize - 1];
        format!(
            "{month} {:>2} {h:02}:{m:02}:{s:02} {} GMT",
            self.day, self.year
        )
    }

    /// Seconds since the Unix epoch (days from the civil date, Howard Hinnant's way).
    fn unix(&self) -> i64 {
        let (m, d) = (i64::from(self.month), i64::from(self.day));
        let y = if m <= 2 { self.year - 1 } else { self.year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let [h, mi, s] = self.hms.map(i64::from);
        days * 86_400 + h * 3600 + mi * 60 + s
    }
}

pub(super) const INTEGER: u8 = 0x02;
pub(super) const OID: u8 = 0x06;
pub(super) const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;

/// One DER element: (tag, contents, what follows).
pub(super) fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *der.first()?;
    let first = *der.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for &b in der.get(2..2 + n)? {
            len = (len << 8) | usize::from(b);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((tag, der.get(header..end)?, &der[end..]))
}

pub(super) fn expect(der: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, contents, rest) = element(der)?;
    (t == tag).then_some((contents, rest))
}

/// A Name (SEQUENCE OF RelativeDistinguishedName) as RFC 4514 text.
fn name(mut seq: &[u8]) -> Option<String> {
    let mut rdns = Vec::new();
    while !seq.is_empty() {
        let (set, rest) = expect(seq, SET)?;
        seq = rest;
        let mut parts = Vec::new();
        let mut set = set;
        while !set.is_empty() {
            let (atv, rest) = expect(set, SEQUENCE)?;
            set = rest;
            let (oid, value) = expect(atv, OID)?;
            let (vtag, vbytes, after) = element(value)?;
            let mut text = attribute_name(oid);
            text.push('=');
            match decode_string(vtag, vbytes) {
                Some(v) => escape_value(&v, &mut text),
                // Not a string (an OCTET STRING, a BIT STRING unique identifier): RFC 4514
                // §2.4 writes '#' and the hex of its encoding. Dropping the whole name
                // would lose a verified client's identity from events and logs.
                None => {
                    text.push('#');
                    for b in &value[..value.len() - after.len()] {
                        text.push_str(&format!("{b:02x}"));
                    }
                }
            }
            parts.push(text);
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// RFC 4514's short names, else the dotted OID.
fn attribute_name(oid: &[u8]) -> String {
    const NAMES: &[(&[u8], &str)] = &[
        (&[0x55, 0x04, 0x03], "CN"),
        (&[0x55, 0x04, 0x05], "serialNumber"),
        (&[0x55, 0x04, 0x06], "C"),
        (&[0x55, 0x04, 0x07], "L"),
        (&[0x55, 0x04, 0x08], "ST"),
        (&[0x55, 0x04, 0x09], "STREET"),
        (&[0x55, 0x04, 0x0a], "O"),
        (&[0x55, 0x04, 0x0b], "OU"),
        (
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01],
            "emailAddress",
        ),
        (
            &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19],
            "DC",
        ),
        (
            &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01],
            "UID",
        ),
    ];
    if let Some((_, n)) = NAMES.iter().find(|(o, _)| *o == oid) {
        return (*n).to_string();
    }
    dotted(oid)
}

/// An OID's contents in dotted form ("1.3.132.0.35").
pub(super) fn dotted(oid: &[u8]) -> String {
    let mut out = String::new();
    let mut arc: u64 = 0;
    for &b in oid {
        arc = (arc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if out.is_empty() {
                let (first, second) = if arc < 80 {
                    (arc / 40, arc % 40)
                } else {
                    (2, arc - 80)
                };
                out = format!("{first}.{second}");
            } else {
                out.push_str(&format!(".{arc}"));
            }
            arc = 0;
        }
    }
    out
}

/// The directory string types certificates use.
fn decode_string(tag: u8, bytes: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, NumericString, VisibleString
        0x0c | 0x13 | 0x16 | 0x12 | 0x1a => Some(String::from_utf8_lossy(bytes).into_owned()),
        // TeletexString: Latin-1 in practice
        0x14 => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE
        0x1e => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        // UniversalString: UTF-32BE
        0x1c => Some(
            bytes
                .chunks_exact(4)
                .map(|c| {
                    char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                        .unwrap_or('\u{fffd}')
                })
                .collect(),
        ),
        _ => None,
    }
}

/// RFC 4514 §2.4: escape `"+,;<>\` anywhere, `#` or a space at the start, a space at the
/// end, and control characters as `\XX`.
fn escape_value(v: &str, out: &mut String) {
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\{:02X}", c as u32)),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    fn subject_and_issuer(cert: &[u8]) -> Option<(String, String)> {
        describe(cert).map(|c| (c.subject_dn, c.issuer_dn))
    }

    fn cert(dn: DistinguishedName) -> Vec<u8> {
        let mut params = CertificateParams::new(vec!["client.test".to_string()]).unwrap();
        params.distinguished_name = dn;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn most_specific_first() {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "DE");
        dn.push(DnType::OrganizationName, "Example Org");
        dn.push(DnType::CommonName, "client one");
        let (subject, issuer) = subject_and_issuer(&cert(dn)).unwrap();
        assert_eq!(subject, "CN=client one,O=Example Org,C=DE");
        // Self-signed: the issuer is the subject.
        assert_eq!(issuer, subject);
    }

    #[test]
    fn special_characters_are_escaped() {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Smith, Jones + Co");
        dn.push(DnType::CommonName, " #lead");
        let (subject, _) = subject_and_issuer(&cert(dn)).unwrap();
        assert_eq!(subject, r"CN=\ #lead,O=Smith\, Jones \+ Co");
    }

    #[test]
    fn unknown_attributes_print_their_oid() {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CustomDnType(vec![1, 3, 6, 1, 4, 1, 99999, 1]), "x");
        let (subject, _) = subject_and_issuer(&cert(dn)).unwrap();
        assert_eq!(subject, "1.3.6.1.4.1.99999.1=x");
    }

    #[test]
    fn serial_and_validity() {
        let mut params = CertificateParams::new(vec!["client.test".to_string()]).unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x0a, 0xb1, 0xff]));
        params.not_before = rcgen::date_time_ymd(2019, 5, 8);
        params.not_after = rcgen::date_time_ymd(2051, 8, 25);
        let key = KeyPair::generate().unwrap();
        let der = params.clone().self_signed(&key).unwrap().der().to_vec();
        let info = describe(&der).unwrap();
        assert_eq!(info.serial_number, "0a:b1:ff");
        // DER writes 00 before a serial whose first byte is 0x80 or more: not part of it.
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x9c, 0x01, 0xff]));
        let der = params.self_signed(&key).unwrap().der().to_vec();
        assert!(der
            .windows(6)
            .any(|w| w == [0x02, 0x04, 0x00, 0x9c, 0x01, 0xff]));
        assert_eq!(describe(&der).unwrap().serial_number, "9c:01:ff");
        // rcgen writes UTCTime up to 2049 and GeneralizedTime after.
        assert_eq!(info.not_before, "May  8 00:00:00 2019 GMT");
        assert_eq!(info.not_after, "Aug 25 00:00:00 2051 GMT");
        assert_eq!(info.valid_from, 1_557_273_600); // date -u -d 2019-05-08 +%s
        assert_eq!(info.valid_until, 2_576_534_400); // date -u -d 2051-08-25 +%s
    }

    #[test]
    fn values_that_are_not_strings_are_written_in_hex() {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Org");
        dn.push(DnType::CommonName, "abc");
        let mut der = cert(dn);
        // The CN's UTF8String (0c 03 "abc") becomes an OCTET STRING (04 03 "abc"), which a
        // directory may hold; names are read, not verified, here.
        // Self-signed: the issuer has it too.
        while let Some(at) = der.windows(5).position(|w| w == b"\x0c\x03abc") {
            der[at] = 0x04;
        }
        let (subject, issuer) = subject_and_issuer(&der).unwrap();
        assert_eq!(subject, "CN=#0403616263,O=Org");
        assert_eq!(issuer, subject);
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(subject_and_issuer(b""), None);
        assert_eq!(subject_and_issuer(&[0x30, 0x82, 0xff]), None);
        let mut good = cert(DistinguishedName::new());
        good.truncate(good.len() / 2);
        assert_eq!(subject_and_issuer(&good), None);
    }
}
