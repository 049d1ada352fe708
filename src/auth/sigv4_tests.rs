//! AWS's published Signature Version 4 test suite (credentials AKIDEXAMPLE, service
//! "service", us-east-1, 2015-08-30T12:36:00Z): each request with its Authorization
//! header must verify, and must stop verifying when one signed byte changes.

use super::canonical::{canonical_paths, canonical_queries};
use super::*;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

/// (name, .req text, Signature from the .authz file)
const VECTORS: &[(&str, &str, &str)] = &[
    ("get-vanilla-query-order-key-case", "GET /?Param2=value2&Param1=value1 HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    ("get-vanilla-query-unreserved", "GET /?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z", "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
    ("get-header-value-trim", "GET / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1: value1\nMy-Header2: \"a   b   c\"\nX-Amz-Date:20150830T123600Z", "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
    ("get-header-key-duplicate", "GET / HTTP/1.1\nHost:example.amazonaws.com\nMy-Header1:value2\nMy-Header1:value2\nMy-Header1:value1\nX-Amz-Date:20150830T123600Z", "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
    ("get-utf8", "GET /\u{1234} HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z", "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
    ("normalize-path/get-slashes", "GET //example// HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z", "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"),
    ("post-x-www-form-urlencoded", "POST / HTTP/1.1\nContent-Type:application/x-www-form-urlencoded\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z\n\nParam1=value1", "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
    ("post-sts-header-before", "POST / HTTP/1.1\nHost:example.amazonaws.com\nX-Amz-Date:20150830T123600Z\nX-Amz-Security-Token:AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==", "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
];

const SIGNED: &[(&str, &str)] = &[
    (
        "get-header-value-trim",
        "host;my-header1;my-header2;x-amz-date",
    ),
    ("get-header-key-duplicate", "host;my-header1;x-amz-date"),
    ("post-x-www-form-urlencoded", "content-type;host;x-amz-date"),
    (
        "post-sts-header-before",
        "host;x-amz-date;x-amz-security-token",
    ),
];

fn principals(token: Option<&str>) -> Principals {
    Principals {
        region: "us-east-1".into(),
        list: vec![PrincipalRt {
            name: "example".into(),
            access_key_id: "AKIDEXAMPLE".into(),
            secret: SECRET.into(),
            session_token: token.map(str::to_string),
            account_id: "000000000000".into(),
            user_arn: "arn:aws:iam::000000000000:user/example".into(),
            user_id: "AKIDEXAMPLE".into(),
            policy: Policy::default(),
        }],
    }
}

/// Verifies `req` (the suite's .req text) with an Authorization header added.
fn check(name: &str, req: &str, signature: &str, token: Option<&str>) -> Result<(), SigError> {
    let (head, body) = req.split_once("\n\n").unwrap_or((req, ""));
    let mut lines = head.lines();
    let line = lines.next().unwrap();
    let mut parts = line.split(' ');
    let method = parts.next().unwrap();
    let target = parts.next().unwrap();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let signed = SIGNED
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("host;x-amz-date", |(_, s)| s);
    let auth = format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signed}, Signature={signature}");
    let mut headers: Vec<(&[u8], &[u8])> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.as_bytes(), v.as_bytes())
        })
        .collect();
    headers.push((b"Authorization", auth.as_bytes()));
    let input = Input {
        method: method.as_bytes(),
        path: path.as_bytes(),
        query: query.as_bytes(),
        headers: &headers,
        payload: Sha256::digest(body.as_bytes()).into(),
    };
    let now = parse_amz_date("20150830T123600Z").unwrap();
    verify(&principals(token), "service", &input, now).map(|_| ())
}

#[test]
fn aws_test_suite_vectors_verify() {
    for (name, req, sig) in VECTORS {
        let token = (*name == "post-sts-header-before").then_some(TOKEN);
        assert_eq!(check(name, req, sig, token), Ok(()), "{name}");
    }
}

#[test]
fn a_changed_byte_or_key_or_token_fails() {
    for (name, req, sig) in VECTORS {
        let token = (*name == "post-sts-header-before").then_some(TOKEN);
        let mut bad = sig.to_string();
        bad.replace_range(0..1, if bad.starts_with('0') { "1" } else { "0" });
        assert_eq!(
            check(name, req, &bad, token),
            Err(SigError::Mismatch),
            "{name}"
        );
        let tampered = req.replacen("example.amazonaws.com", "example.amazonaws.org", 1);
        assert_eq!(
            check(name, &tampered, sig, token),
            Err(SigError::Mismatch),
            "{name}"
        );
    }
    let (name, req, sig) = VECTORS[0];
    assert_eq!(check(name, req, sig, Some("other")), Err(SigError::Token));
    let (name, req, sig) = VECTORS[7];
    assert_eq!(check(name, req, sig, None), Err(SigError::Token));
}

#[test]
fn dates_and_messages() {
    assert_eq!(
        amz_date(parse_amz_date("20150830T123600Z").unwrap()),
        "20150830T123600Z"
    );
    assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
    assert_eq!(amz_date(951_782_400), "20000229T000000Z");
    assert_eq!(parse_amz_date("2015-08-30"), None);
    let m = SigError::Missing;
    assert_eq!(m.message(), "Missing Authentication Token");
    assert_eq!(
        canonical_paths(b"/a%20b/../c/./d//"),
        vec!["/c/d/".to_string(), "/a%20b/../c/./d//".into()]
    );
    assert_eq!(
        canonical_paths(b"/prod/a%20b"),
        vec!["/prod/a%2520b".to_string(), "/prod/a%20b".into()]
    );
    assert_eq!(
        canonical_queries(b"z=1&a=2&a=1&b", false),
        vec!["a=1&a=2&b=&z=1".to_string()]
    );
    // A path as sent with an encoded `%` is the encoded form of another path: only the
    // encoded form of its own counts, or `/a%20b`'s signature would cover `/a%2520b`.
    assert_eq!(
        canonical_paths(b"/files/a%2520b"),
        vec!["/files/a%252520b".to_string()]
    );
    assert!(!canonical_paths(b"/files/a%252Fb").contains(&"/files/a%252Fb".to_string()));
    // Nor one with an encoded `;` (or `=`, `,`…): `/a%3Bb` is botocore's form of `/a;b`.
    assert_eq!(canonical_paths(b"/f/a%3Bb"), vec!["/f/a%253Bb".to_string()]);
    assert_eq!(canonical_paths(b"/f/k%3dv"), vec!["/f/k%253dv".to_string()]);
    assert_eq!(
        canonical_paths(b"/f/a;b"),
        vec!["/f/a%3Bb".to_string(), "/f/a;b".into()]
    );
    // `+` is a space to backends, so it is `%20`, never `%2B` (a real `+` sent `%2B`).
    let plus = canonical_queries(b"to=alice+bob", false);
    assert!(plus.contains(&"to=alice%20bob".to_string()), "{plus:?}");
    assert!(!plus.contains(&"to=alice%2Bbob".to_string()), "{plus:?}");
    assert_eq!(
        canonical_queries(b"to=alice%2Bbob", false),
        vec!["to=alice%2Bbob".to_string()]
    );
    // A `Date` that is no ISO 8601 basic date is named as `Date`, not as X-Amz-Date.
    let rfc1123 = "GET / HTTP/1.1\nHost:example.amazonaws.com\nDate:Sun, 30 Aug 2015 12:36:00 GMT";
    match check("date-rfc1123", rfc1123, "00", None) {
        Err(e) => assert!(
            e.message().starts_with("Date \"Sun, 30 Aug"),
            "{}",
            e.message()
        ),
        Ok(()) => panic!("an RFC 1123 Date verified"),
    }
}

#[test]
fn signed_header_values_are_exact_and_have_no_unsigned_twin() {
    let canonical = |headers: &[(&[u8], &[u8])], signed: &[&str]| {
        let input = Input {
            method: b"GET",
            path: b"/",
            query: b"",
            headers,
            payload: [0; 32],
        };
        super::canonical::canonical_headers(&input, signed)
    };
    let signed = ["host", "x-tenant"];
    assert_eq!(
        canonical(&[(b"Host", b"a"), (b"X-Tenant", b"")], &signed).as_deref(),
        Some("host:a\nx-tenant:\n")
    );
    // Not UTF-8: it was read as empty, so an empty value's signature covered any bytes.
    assert_eq!(
        canonical(&[(b"Host", b"a"), (b"X-Tenant", b"admin\xff")], &signed),
        None
    );
    // An unsigned `_` spelling beside a signed name: one HTTP_X_TENANT to CGI backends.
    let twin: &[(&[u8], &[u8])] = &[(b"Host", b"a"), (b"X-Tenant", b"a"), (b"X_Tenant", b"b")];
    assert_eq!(canonical(twin, &signed), None);
    // The reverse: an unsigned `-` spelling beside a signed `_` one.
    let reverse: &[(&[u8], &[u8])] = &[(b"Host", b"a"), (b"X_Tenant", b"a"), (b"X-Tenant", b"b")];
    assert_eq!(canonical(reverse, &["host", "x_tenant"]), None);
    // Signed too, it is the signer's.
    assert_eq!(
        canonical(twin, &["host", "x-tenant", "x_tenant"]).as_deref(),
        Some("host:a\nx-tenant:a\nx_tenant:b\n")
    );
    // A `_` name no signed name spells otherwise is just unsigned.
    let other: &[(&[u8], &[u8])] = &[(b"Host", b"a"), (b"X-Tenant", b"a"), (b"X_Other", b"b")];
    assert!(canonical(other, &signed).is_some());
}
