//! Unit tests of `lambda_event.rs`.

use super::maps::decimal;
use super::*;
use crate::http1::percent_decode;

#[test]
fn escapes_and_replaces_invalid_utf8() {
    let mut out = Vec::new();
    string(&mut out, b"a\"b\\c\nd\x01\xffe\xc3\xa9");
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "\"a\\\"b\\\\c\\nd\\u0001\u{fffd}e\u{e9}\""
    );
}

#[test]
fn percent_decoding() {
    let mut out = Vec::new();
    percent_decode(b"a%20b%2x%4", false, &mut out);
    assert_eq!(out, b"a b%2x%4");
    out.clear();
    percent_decode(b"%C3%A9+", false, &mut out);
    assert_eq!(out, "é+".as_bytes());
}

#[test]
fn query_pairs_group_in_order() {
    let p = QueryPairs::decode(b"b=2&a=1&b=3&c&&a%20x=%41");
    let mut out = Vec::new();
    p.write(&mut out, Multi::Joined);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"a":"1","a x":"A","b":"2,3","c":""}"#
    );
    let mut out = Vec::new();
    p.write(&mut out, Multi::List);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"a":["1"],"a x":["A"],"b":["2","3"],"c":[""]}"#
    );
}

#[test]
fn names_that_read_the_same_in_the_event_are_one_key() {
    // `%ff` and `%fe` are both U+FFFD in JSON: two keys of one text would lose one.
    let p = QueryPairs::decode(b"%ff=1&%fe=2&tag=a");
    let mut out = Vec::new();
    p.write(&mut out, Multi::List);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"tag\":[\"a\"],\"\u{fffd}\":[\"1\",\"2\"]}"
    );
}

#[test]
fn text_or_binary() {
    assert!(is_text(None, b"hello"));
    assert!(is_text(Some(b"application/json; charset=utf-8"), b"{}"));
    assert!(is_text(Some(b"application/vnd.api+json"), b"{}"));
    assert!(!is_text(Some(b"application/octet-stream"), b"abc"));
    assert!(!is_text(Some(b"text/plain"), b"\xff\xfe"));
}

#[test]
fn ports_in_decimal() {
    let mut buf = [0u8; 5];
    for (n, text) in [(0, "0"), (7, "7"), (443, "443"), (65535, "65535")] {
        assert_eq!(decimal(n, &mut buf), text.as_bytes());
    }
}
