//! Unit tests of jwks.rs: key set parsing, generations and chunked bodies.

use super::*;
use crate::auth::jwks_http::dechunk;

#[test]
fn parses_rsa_ec_and_okp_keys_and_skips_others() {
    let json = br#"{"keys":[
        {"kty":"RSA","kid":"r1","alg":"RS256","n":"AQAB","e":"AQAB"},
        {"kty":"EC","kid":"e1","crv":"P-256","x":"AQ","y":"Ag"},
        {"kty":"OKP","kid":"o1","crv":"Ed25519","x":"AQ"},
        {"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"},
        {"kty":"oct","kid":"h","k":"c2VjcmV0"}
    ]}"#;
    let set = KeySet::parse(json).unwrap();
    let kids: Vec<_> = set.keys.iter().map(|k| k.kid.as_deref().unwrap()).collect();
    assert_eq!(kids, ["r1", "e1", "o1"]);
    assert_eq!(
        set.keys[1].key,
        KeyMaterial::Ec {
            curve: Curve::P256,
            point: [&[4][..], &[0; 31], &[1], &[0; 31], &[2]].concat().into()
        }
    );
    assert!(KeySet::parse(b"{}").is_err());
    // A coordinate longer than its curve's field: not a key of that curve.
    let long = br#"{"keys":[{"kty":"EC","kid":"l","crv":"P-256","x":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB","y":"Ag"}]}"#;
    assert!(KeySet::parse(long).unwrap().keys.is_empty());
}

#[test]
fn dechunks() {
    assert_eq!(
        dechunk(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").unwrap(),
        b"abcde"
    );
    assert!(dechunk(b"5\r\nab").is_err());
    // Sizes near usize::MAX wrapped the length check and panicked the fetch thread.
    for size in ["ffffffffffffffff", "fffffffffffffffe", "fffffffffffffff0"] {
        let body = format!("{size}\r\n{{\"keys\":[]}}\r\n0\r\n\r\n");
        assert!(dechunk(body.as_bytes()).is_err(), "{size}");
    }
}

#[test]
fn integers_are_read_as_unsigned_numbers() {
    // n with the zero octet Java's BigInteger puts before a modulus with its top bit set.
    let set =
        KeySet::parse(br#"{"keys":[{"kty":"RSA","kid":"r","n":"AIAB","e":"AAEAAQ"}]}"#).unwrap();
    assert_eq!(
        set.keys[0].key,
        KeyMaterial::Rsa {
            n: vec![0x80, 1].into(),
            e: vec![1, 0, 1].into()
        }
    );
}

#[test]
fn a_removed_or_changed_key_moves_the_generation_on_an_added_one_does_not() {
    let set = |json: &str| KeySet::parse(json.as_bytes()).unwrap();
    let a = r#"{"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB"}"#;
    let b = r#"{"kty":"RSA","kid":"b","n":"AQAC","e":"AQAB"}"#;
    let a_changed = r#"{"kty":"RSA","kid":"a","n":"AQAD","e":"AQAB"}"#;
    let mut first = set(&format!(r#"{{"keys":[{a}]}}"#));
    first.generation = generation_after(None, &first);
    let mut added = set(&format!(r#"{{"keys":[{b},{a}]}}"#));
    added.generation = generation_after(Some(&first), &added);
    assert_eq!(added.generation, first.generation, "a key added");
    let mut removed = set(&format!(r#"{{"keys":[{b}]}}"#));
    removed.generation = generation_after(Some(&added), &removed);
    assert_ne!(removed.generation, added.generation, "a key removed");
    let changed = set(&format!(r#"{{"keys":[{a_changed}]}}"#));
    assert_ne!(generation_after(Some(&first), &changed), first.generation);
    // Never a generation an earlier set had (of any issuer): no stale verdict matches.
    let again = set(&format!(r#"{{"keys":[{a}]}}"#));
    let g = generation_after(Some(&removed), &again);
    assert!(g != first.generation && g != removed.generation);
}

/// A source no running config holds any more (a reload removed its authorizer) leaves the
/// registry at the fetch loop's next tick: it was refetched for ever. One still held
/// stays.
#[test]
fn a_source_no_config_holds_is_dropped() {
    let kept = source(
        "http://127.0.0.1:9/kept",
        Some("http://127.0.0.1:9/kept/jwks"),
    );
    let gone = source(
        "http://127.0.0.1:9/gone",
        Some("http://127.0.0.1:9/gone/jwks"),
    );
    drop(gone);
    let listed = |issuer: &str| sources().iter().any(|s| &*s.issuer == issuer);
    let started = std::time::Instant::now();
    while listed("http://127.0.0.1:9/gone") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still fetched for"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(listed("http://127.0.0.1:9/kept"));
    drop(kept);
}
