use std::io::Read;

use super::*;

fn rt(algorithms: &[Coding]) -> CompressRt {
    CompressRt::compile(&model::Compression {
        min_size: 100,
        types: vec!["application/json".into(), "text/*".into()],
        algorithms: algorithms.to_vec(),
        max_streams: 64,
    })
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn unbrotli(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(b, 4096)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn negotiation_follows_q_values() {
    let both = rt(&[Coding::Br, Coding::Gzip]);
    let n = |h: &str| both.negotiate(Some(h.as_bytes()));
    assert_eq!(both.negotiate(None), None);
    assert_eq!(n("gzip"), Some(Coding::Gzip));
    assert_eq!(n("x-gzip"), Some(Coding::Gzip));
    assert_eq!(n("gzip, deflate, br"), Some(Coding::Br)); // equal q: config order
    assert_eq!(n("br;q=0.5, gzip"), Some(Coding::Gzip));
    assert_eq!(n("GZIP;Q=0.2, BR;q=0.1"), Some(Coding::Gzip));
    assert_eq!(n("gzip;q=0"), None);
    assert_eq!(n("gzip;q=0, br;q=0"), None);
    assert_eq!(n("*"), Some(Coding::Br));
    assert_eq!(n("*;q=0"), None);
    assert_eq!(n("br;q=0, *"), Some(Coding::Gzip));
    assert_eq!(n("identity"), None);
    assert_eq!(n("identity, gzip;q=0.5"), None); // identity preferred
    assert_eq!(n("identity;q=0.5, gzip"), Some(Coding::Gzip));
    assert_eq!(n("deflate, compress"), None);
    assert_eq!(n("gzip;q=2"), None); // malformed q: refused, not guessed
    assert_eq!(n(""), None);
    // Repeated lines are one list.
    let lines = |l: &[&str]| both.negotiate_lines(l.iter().map(|s| s.as_bytes()));
    assert_eq!(lines(&["gzip", "br"]), Some(Coding::Br));
    assert_eq!(lines(&["br;q=0.1", "gzip"]), Some(Coding::Gzip));
    assert_eq!(lines(&["gzip", "identity;q=0, *;q=0"]), Some(Coding::Gzip));
    assert_eq!(lines(&[]), None);
    let gzip_only = rt(&[Coding::Gzip]);
    assert_eq!(gzip_only.negotiate(Some(b"br")), None);
    assert_eq!(
        gzip_only.negotiate(Some(b"br, gzip;q=0.1")),
        Some(Coding::Gzip)
    );
}

#[test]
fn q_values() {
    assert_eq!(qvalue(b"1"), Some(1000));
    assert_eq!(qvalue(b"1.000"), Some(1000));
    assert_eq!(qvalue(b"0.5"), Some(500));
    assert_eq!(qvalue(b"0.001"), Some(1));
    assert_eq!(qvalue(b"0"), Some(0));
    assert_eq!(qvalue(b"1.5"), None);
    assert_eq!(qvalue(b"0.0001"), None);
    assert_eq!(qvalue(b"x"), None);
}

fn decide(
    accepted: Option<Coding>,
    status: u16,
    len: Option<u64>,
    headers: &[(&str, &str)],
) -> Plan {
    let mut p = Plan {
        accepted,
        ..Plan::NONE
    };
    let h = headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
    p.decide(&rt(&[Coding::Gzip]), status, len, h);
    p
}

#[test]
fn eligibility() {
    let json = [("Content-Type", "application/json; charset=utf-8")];
    let yes = decide(Some(Coding::Gzip), 200, Some(1000), &json);
    assert_eq!((yes.coding, yes.vary), (Some(Coding::Gzip), true));
    // Eligible but not accepted: identity, still Vary.
    let no = decide(None, 200, Some(1000), &json);
    assert_eq!((no.coding, no.vary), (None, true));
    // Unknown length (chunked, close-delimited) is compressed.
    assert!(decide(Some(Coding::Gzip), 200, None, &json)
        .coding
        .is_some());
    assert!(decide(Some(Coding::Gzip), 404, None, &json)
        .coding
        .is_some());
    for (status, len, headers) in [
        (200, Some(99), &json[..]),
        (204, None, &json[..]),
        (205, None, &json[..]),
        (205, Some(1000), &json[..]),
        (304, None, &json[..]),
        (206, None, &json[..]),
        (200, None, &[][..]),
        (200, None, &[("content-type", "image/png")][..]),
        (200, None, &[("content-type", "textual/plain")][..]),
    ] {
        let p = decide(Some(Coding::Gzip), status, len, headers);
        assert_eq!(
            p,
            Plan {
                accepted: Some(Coding::Gzip),
                ..Plan::NONE
            },
            "{status} {headers:?}"
        );
    }
    for extra in [
        ("Content-Encoding", "br"),
        ("cache-control", "public, no-transform"),
        ("content-range", "bytes 0-1/2"),
        (
            "Content-Digest",
            "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:",
        ),
        (
            "repr-digest",
            "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:",
        ),
        (
            "digest",
            "SHA-256=RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=",
        ),
        ("Content-MD5", "Q2hlY2sgSW50ZWdyaXR5IQ=="),
    ] {
        let p = decide(Some(Coding::Gzip), 200, None, &[json[0], extra]);
        assert_eq!(p.coding, None, "{extra:?}");
        assert!(!p.vary, "{extra:?}");
    }
    assert!(decide(
        Some(Coding::Gzip),
        200,
        None,
        &[("content-type", "text/html")]
    )
    .coding
    .is_some());
    let varied = decide(
        Some(Coding::Gzip),
        200,
        None,
        &[json[0], ("vary", "Origin, accept-encoding")],
    );
    assert!(varied.coding.is_some() && !varied.vary);
}

#[test]
fn head_edits() {
    let p = decide(
        Some(Coding::Gzip),
        200,
        None,
        &[("content-type", "text/plain"), ("etag", "\"v1\"")],
    );
    assert!(p.rewrite_etag && p.drops(b"ETag") && p.drops(b"Content-Length"));
    assert!(
        p.drops(b"Accept-Ranges"),
        "ranges would count the identity body"
    );
    assert!(!p.drops(b"content-type"));
    let mut out = Vec::new();
    p.write_headers(Some(b"\"v1\""), &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "content-encoding: gzip\r\netag: W/\"v1\"\r\nvary: Accept-Encoding\r\n"
    );
    // A weak ETag stays as it is; an unquoted one is left out; a second line goes
    // (two lines, the first weak, made `W/W/"a"`; the last strong one was kept whole).
    let weak = decide(
        Some(Coding::Gzip),
        200,
        None,
        &[
            ("content-type", "text/plain"),
            ("etag", "W/\"a\""),
            ("etag", "\"b\""),
        ],
    );
    assert!(weak.rewrite_etag && weak.drops(b"etag"));
    let etag_written = |etag: &[u8]| {
        let mut out = Vec::new();
        weak.write_headers(Some(etag), &mut out);
        String::from_utf8(out).unwrap()
    };
    let written = |etag: &str| format!("content-encoding: gzip\r\n{etag}vary: Accept-Encoding\r\n");
    assert_eq!(etag_written(b"W/\"a\""), written("etag: W/\"a\"\r\n"));
    assert_eq!(etag_written(b" \"b\" "), written("etag: W/\"b\"\r\n"));
    for malformed in [&b"abc"[..], b"W/abc", b"\"", b"W/\"x"] {
        assert_eq!(etag_written(malformed), written(""), "{malformed:?}");
    }
    // Identity: nothing dropped.
    let none = decide(
        None,
        200,
        None,
        &[("content-type", "text/plain"), ("etag", "\"v1\"")],
    );
    assert!(!none.drops(b"etag") && !none.drops(b"content-length"));
}

fn sample(n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    let mut i = 0u64;
    while v.len() < n {
        v.extend_from_slice(
            format!("{{\"id\":{i},\"name\":\"user {}\"}},", i * 7919 % 1000).as_bytes(),
        );
        i += 1;
    }
    v.truncate(n);
    v
}

#[test]
fn whole_bodies_round_trip() {
    for n in [0, 1, 100, 8 * 1024, 300 * 1024] {
        let body = sample(n);
        let gz = compress_whole(Coding::Gzip, &body);
        assert_eq!(gunzip(&gz), body, "gzip {n}");
        let br = compress_whole(Coding::Br, &body);
        assert_eq!(unbrotli(&br), body, "br {n}");
        if n >= 8 * 1024 {
            assert!(
                gz.len() < n / 2 && br.len() < n / 2,
                "{n}: {} {}",
                gz.len(),
                br.len()
            );
        }
    }
}

#[test]
fn streaming_with_flushes_round_trips() {
    let body = sample(200 * 1024);
    for coding in [Coding::Gzip, Coding::Br] {
        // Twice: the second gzip encoder comes from the pool, reset.
        for _ in 0..2 {
            let mut enc = Encoder::new(coding);
            let mut out = Vec::new();
            let mut flushed = 0;
            for piece in body.chunks(7001) {
                assert!(enc.write(piece, &mut out));
                assert!(enc.flush(&mut out));
                // Each flush brings out something, so a streamed body is never held back.
                assert!(out.len() > flushed);
                flushed = out.len();
            }
            assert!(enc.finish(&mut out));
            let back = match coding {
                Coding::Gzip => gunzip(&out),
                Coding::Br => unbrotli(&out),
            };
            assert_eq!(back, body);
        }
    }
}

#[test]
fn chunk_sizes_are_eight_hex_digits() {
    assert_eq!(&format_hex8(0x1f), b"0000001f");
    assert_eq!(&format_hex8(0xabcdef12), b"abcdef12");
}

#[test]
fn config_keys_decode_with_their_paths() {
    use crate::config::load::load_str;
    let base = "server:\n  listen: [\"127.0.0.1:8080\"]\n";
    let api = "apis:\n  a:\n    compression: off\n    stages: { $default: {} }\n    routes:\n      \"$default\": { integration: { type: mock } }\n  b:\n    compression: { algorithms: [gzip] }\n    stages: { b: {} }\n    routes:\n      \"$default\": { integration: { type: mock } }\n";
    let cfg = load_str(&format!("{base}  compression: {{}}\n{api}")).unwrap();
    assert_eq!(cfg.server.compression, Some(model::Compression::default()));
    assert_eq!(cfg.apis[0].1.compression, Some(None));
    let b = cfg.apis[1].1.compression.clone().unwrap().unwrap();
    assert_eq!((b.min_size, b.algorithms), (1024, vec![Coding::Gzip]));
    assert_eq!(
        load_str(&format!("{base}  compression: off\n"))
            .unwrap()
            .server
            .compression,
        None
    );

    let bad = format!(
        "{base}  compression: {{ min_size: lots, types: [json, 'text/*', '*/*'], algorithms: [zstd, gzip, gzip], level: 9 }}\n"
    );
    let errors: Vec<String> = load_str(&bad)
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        [
            r#"server.compression: unknown key "level" (expected one of: min_size, types, algorithms, max_streams)"#,
            r#"server.compression.min_size: expected a size like 10485760, 512KB or 64MiB, got "lots""#,
            r#"server.compression.types[0]: expected a media type like application/json or text/*, got "json""#,
            r#"server.compression.types[2]: expected a media type like application/json or text/*, got "*/*""#,
            r#"server.compression.algorithms[0]: expected one of gzip, br, got "zstd""#,
            r#"server.compression.algorithms: lists gzip twice"#,
        ]
    );
    let errors = load_str(&format!("{base}  compression: yes please\n")).unwrap_err();
    assert_eq!(
        errors.0[0].to_string(),
        "server.compression: expected off or a map (min_size, types, algorithms, max_streams)"
    );
}

/// Text outside ASCII and bytes that do not compress: gzip never makes them much larger,
/// and CJK text shrinks as it does with nginx's level 1 (zlib-rs's level 1, fixed
/// Huffman codes only, made both 5–7 % larger than they were).
#[test]
fn gzip_does_not_grow_what_it_cannot_shrink() {
    let mut seed: u64 = 7;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut cjk = String::from("{\"t\":\"");
    while cjk.len() < 100_000 {
        cjk.push(char::from_u32(0x4e00 + (next() % 20_000) as u32).unwrap());
    }
    cjk.push_str("\"}");
    let random: Vec<u8> = (0..100_000).map(|_| next() as u8).collect();
    for (what, body, most) in [("cjk", cjk.as_bytes(), 0.8), ("random", &random[..], 1.01)] {
        let whole = compress_whole(Coding::Gzip, body);
        assert_eq!(gunzip(&whole), body, "{what}");
        let ratio = whole.len() as f64 / body.len() as f64;
        assert!(ratio < most, "{what}: {ratio}");
        // Streamed in 16 KiB reads with a flush after each, as a proxied body is.
        let mut enc = Encoder::new(Coding::Gzip);
        let mut out = Vec::new();
        for part in body.chunks(16 << 10) {
            assert!(enc.write(part, &mut out) && enc.flush(&mut out));
        }
        assert!(enc.finish(&mut out));
        assert_eq!(gunzip(&out), body, "{what}");
        let ratio = out.len() as f64 / body.len() as f64;
        assert!(ratio < most + 0.01, "{what} streamed: {ratio}");
    }
}

/// An encoder dropped mid-block (a backend's bad chunk after some body, a cut) left its
/// deflate state, reset, in the worker's pool with level 1's block still marked open:
/// the next response's stream began by closing a block it never opened, and every gzip
/// client of it (and of the cache entry it made) got an undecodable body.
#[test]
fn an_encoder_dropped_mid_stream_leaves_the_next_one_sound() {
    let json: Vec<u8> = (0..40)
        .flat_map(|i| format!("{{\"id\":{i},\"name\":\"item {i}\",\"ok\":true}},").into_bytes())
        .collect();
    for _ in 0..3 {
        let mut aborted = encoder::Encoder::new(Coding::Gzip);
        let mut out = Vec::new();
        assert!(aborted.write(&json, &mut out));
        drop(aborted);
        let mut next = encoder::Encoder::new(Coding::Gzip);
        let mut out = Vec::new();
        assert!(next.write(&json, &mut out) && next.flush(&mut out));
        assert!(next.write(b"the end", &mut out) && next.finish(&mut out));
        let mut want = json.clone();
        want.extend_from_slice(b"the end");
        assert_eq!(gunzip(&out), want);
    }
}
