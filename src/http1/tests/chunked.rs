use crate::http1::{BodyError, ChunkedDecoder, LengthDecoder, Scan, LAST_CHUNK};

const NEXT: &[u8] = b"GET /next HTTP/1.1\r\n\r\n";

#[derive(Debug, PartialEq)]
struct Fed {
    consumed: usize,
    done: bool,
    payload: Vec<u8>,
}

/// Feeds `wire` cut at `cuts` (ascending), stopping at the end of the body as a connection
/// would, and collects the payload ranges the decoder reports.
fn feed(wire: &[u8], cuts: &[usize], max: u64) -> Result<Fed, BodyError> {
    feed_into(ChunkedDecoder::new(max), wire, cuts)
}

/// `feed` into `d`: a request's decoder, or a backend answer's.
fn feed_into(mut d: ChunkedDecoder, wire: &[u8], cuts: &[usize]) -> Result<Fed, BodyError> {
    let mut fed = Fed {
        consumed: 0,
        done: false,
        payload: Vec::new(),
    };
    let mut start = 0;
    for end in cuts.iter().copied().chain([wire.len()]) {
        let piece = &wire[start..end];
        let scan = d.scan(piece, |r| fed.payload.extend_from_slice(&piece[r]))?;
        fed.consumed += scan.consumed;
        if scan.done {
            fed.done = true;
            assert!(d.is_done());
            assert_eq!(d.payload_len(), fed.payload.len() as u64);
            // A finished body takes nothing more.
            assert_eq!(
                d.scan(NEXT, |_| panic!("data after end")),
                Ok(Scan {
                    consumed: 0,
                    done: true
                })
            );
            return Ok(fed);
        }
        assert_eq!(
            scan.consumed,
            piece.len(),
            "an unfinished body takes the whole piece"
        );
        start = end;
    }
    Ok(fed)
}

/// Every way of cutting `body + NEXT` into two or three pieces finds the same end and payload.
fn check_ok(body: &[u8], payload: &[u8]) {
    let wire = [body, NEXT].concat();
    let want = Fed {
        consumed: body.len(),
        done: true,
        payload: payload.to_vec(),
    };
    let n = wire.len();
    let exhaustive = n <= 300;
    for i in 0..=n {
        assert_eq!(
            feed(&wire, &[i], u64::MAX).as_ref(),
            Ok(&want),
            "cut at {i}"
        );
        if exhaustive {
            for j in i..=n {
                assert_eq!(
                    feed(&wire, &[i, j], u64::MAX).as_ref(),
                    Ok(&want),
                    "cuts at {i},{j}"
                );
            }
        }
    }
    let every_byte: Vec<usize> = (1..n).collect();
    assert_eq!(feed(&wire, &every_byte, u64::MAX), Ok(want));
}

fn check_err(body: &[u8], max: u64, want: BodyError) {
    let n = body.len();
    for i in 0..=n {
        assert_eq!(feed(body, &[i], max), Err(want), "cut at {i}");
        if n <= 100 {
            for j in i..=n {
                assert_eq!(feed(body, &[i, j], max), Err(want), "cuts at {i},{j}");
            }
        }
    }
}

fn bad(detail: &'static str) -> BodyError {
    BodyError::BadChunk(detail)
}

#[test]
fn simple_bodies() {
    check_ok(b"5\r\nhello\r\n0\r\n\r\n", b"hello");
    check_ok(b"0\r\n\r\n", b"");
    check_ok(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world");
    check_ok(
        b"A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n",
        b"0123456789abcdefghij",
    );
    // Payload that looks like framing is still payload.
    check_ok(b"4\r\n\r\n\r\n\r\n0\r\n\r\n", b"\r\n\r\n");
    check_ok(b"0000000000000003\r\nabc\r\n0\r\n\r\n", b"abc");
}

#[test]
fn extensions_and_trailers() {
    check_ok(
        b"5;name=val\r\nhello\r\n1;a;b=\"q\"\r\n!\r\n0;last\r\n\r\n",
        b"hello!",
    );
    check_ok(
        b"3\r\nabc\r\n0\r\nExpires: never\r\nX-Sum:1 2\t3\r\nX-Empty:\r\n\r\n",
        b"abc",
    );
    // RFC 9112 §7.1.1: blanks around ';' and '=', quoted-strings with blanks and
    // escapes, an empty quoted-string: in a backend's answer. A request's size lines go
    // to its backend as they came, and llhttp and gunicorn refuse blanks there: 400.
    let bws = b"5 ;a=b\r\nhello\r\n1\t; a = \"x y\\\"z\" ;c\r\n!\r\n1;d=\"\"\r\n.\r\n0\r\n\r\n";
    for i in 0..=bws.len() {
        let fed = feed_into(ChunkedDecoder::for_response(), bws, &[i]).unwrap();
        assert_eq!(
            (fed.done, &fed.payload[..]),
            (true, &b"hello!."[..]),
            "cut at {i}"
        );
    }
    check_err(bws, u64::MAX, bad("blank in a chunk size line"));
    check_ok(b"1;d=\"a b\"\r\n.\r\n0\r\n\r\n", b".");
    let ext_at_limit = [b"1;".as_slice(), &[b'e'; 4096], b"\r\nx\r\n0\r\n\r\n"].concat();
    check_ok(&ext_at_limit, b"x");
    // 8192 trailer bytes in all: "X: " + value + CRLF.
    let trailer_at_limit = [b"0\r\nX: ".as_slice(), &[b'v'; 8192 - 5], b"\r\n\r\n"].concat();
    check_ok(&trailer_at_limit, b"");
}

#[test]
fn size_line_errors() {
    check_err(
        b"12345678901234567\r\n",
        u64::MAX,
        bad("chunk size too large"),
    );
    // Leading zeros are padding (nginx takes any number), up to 64 digits in all.
    check_ok(b"00000000000000001\r\nx\r\n0\r\n\r\n", b"x");
    let padded = [&[b'0'; 63][..], b"1\r\nx\r\n0\r\n\r\n"].concat();
    check_ok(&padded, b"x");
    let too_long = [&[b'0'; 64][..], b"1\r\nx\r\n0\r\n\r\n"].concat();
    check_err(&too_long, u64::MAX, bad("chunk size too long"));
    // 2^63 - 1 with a digit more: refused before the shift could wrap it.
    check_err(
        b"7fffffffffffffff0\r\n",
        u64::MAX,
        bad("chunk size too large"),
    );
    // Past 2^63 - 1, as a Content-Length: a peer that holds sizes in a signed 64-bit
    // number frames it otherwise (nginx refuses it too).
    check_err(
        b"8000000000000000\r\nx\r\n0\r\n\r\n",
        u64::MAX,
        bad("chunk size too large"),
    );
    check_err(
        b"ffffffffffffffff\r\n",
        u64::MAX,
        bad("chunk size too large"),
    );
    let mut d = ChunkedDecoder::new(u64::MAX);
    let most = d.scan(b"7fffffffffffffff\r\n", |_| {});
    assert_eq!(most.map(|s| s.done), Ok(false));
    check_err(b"\r\n\r\n", u64::MAX, bad("missing chunk size"));
    check_err(b";ext\r\n", u64::MAX, bad("missing chunk size"));
    // Blanks before the size: no digit at all made a last chunk of `\t;a=b`.
    check_err(b" ;a\r\n\r\n", u64::MAX, bad("missing chunk size"));
    check_err(b"\t;a=b\r\n\r\n", u64::MAX, bad("missing chunk size"));
    check_err(
        b" 3\r\nabc\r\n0\r\n\r\n",
        u64::MAX,
        bad("missing chunk size"),
    );
    check_err(b"g\r\n", u64::MAX, bad("invalid chunk size"));
    check_err(
        b"3 \r\nabc\r\n0\r\n\r\n",
        u64::MAX,
        bad("blank in a chunk size line"),
    );
    check_err(b"-3\r\nabc\r\n", u64::MAX, bad("invalid chunk size"));
    check_err(b"0x3\r\nabc\r\n", u64::MAX, bad("invalid chunk size"));
    check_err(b"3\nabc\r\n0\r\n\r\n", u64::MAX, bad("invalid chunk size"));
    check_err(
        b"3\r\rabc\r\n",
        u64::MAX,
        bad("expected LF after chunk size"),
    );
    check_err(
        b"3;a b\r\nabc\r\n",
        u64::MAX,
        bad("blank in a chunk size line"),
    );
    check_err(b"3;a\nabc\r\n", u64::MAX, bad("invalid chunk extension"));
    // A quote left open: a backend reading quoted-strings would go on past the CRLF.
    check_err(
        b"3;a=\"xy\r\nabc\r\n",
        u64::MAX,
        bad("unterminated quoted-string in chunk extension"),
    );
    for bad_ext in [
        &b"3;a=\"x\ny\"\r\nabc\r\n"[..],
        b"3;a=\"x\x01\"\r\nabc\r\n",
        b"3;a=x\"y\"\r\nabc\r\n",
        b"3;a=\"x\"y\r\nabc\r\n",
        b"3;=x\r\nabc\r\n",
        b"3;a==x\r\nabc\r\n",
        b"3;a=\xff\r\nabc\r\n",
        // Empty names and values: tokens are one character or more.
        b"3;\r\nabc\r\n",
        b"3;a=\r\nabc\r\n",
        b"3;a;\r\nabc\r\n",
        b"3;a=b;\r\nabc\r\n",
    ] {
        check_err(bad_ext, u64::MAX, bad("invalid chunk extension"));
    }
    // Blanks after a size, and after the last chunk's: a backend's answer is taken as
    // nginx takes it (it was a 502), a request's refused.
    for line in [&b"3 \r\nabc\r\n0\r\n\r\n"[..], b"3\t\r\nabc\r\n0 \r\n\r\n"] {
        check_err(line, u64::MAX, bad("blank in a chunk size line"));
        let fed = feed_into(ChunkedDecoder::for_response(), line, &[]).unwrap();
        assert_eq!((fed.done, &fed.payload[..]), (true, &b"abc"[..]));
    }
    // With blanks: refused as such in a request; as bad grammar in a backend's answer.
    for (line, grammar) in [
        (&b"3 ; \r\nabc\r\n"[..], "invalid chunk extension"),
        (b"3;a b\r\nabc\r\n", "invalid chunk extension"),
        (b"3 x\r\nabc\r\n", "invalid chunk size"),
    ] {
        check_err(line, u64::MAX, bad("blank in a chunk size line"));
        let got = feed_into(ChunkedDecoder::for_response(), line, &[]);
        assert_eq!(got, Err(bad(grammar)), "{}", String::from_utf8_lossy(line));
    }
    let ext_over = [b"1;".as_slice(), &[b'e'; 4097], b"\r\nx\r\n0\r\n\r\n"].concat();
    check_err(&ext_over, u64::MAX, bad("chunk extension too long"));
    // Extensions count for the whole body too: 4 x 4000 bytes pass, a fifth does not.
    let chunk = [b"1;".as_slice(), &[b'e'; 4000], b"\r\nx\r\n"].concat();
    let under = [chunk.repeat(4).as_slice(), b"0\r\n\r\n"].concat();
    check_ok(&under, b"xxxx");
    let over = [chunk.repeat(5).as_slice(), b"0\r\n\r\n"].concat();
    check_err(&over, u64::MAX, bad("chunk extensions too long in all"));
    // Not in a backend's answer, which no body limit bounds (nginx relays it); each
    // line's own limit stays.
    let mut response = ChunkedDecoder::for_response();
    let scan = response.scan(&over, |_| {}).unwrap();
    assert!(scan.done && scan.consumed == over.len());
    let mut response = ChunkedDecoder::for_response();
    assert_eq!(
        response.scan(&ext_over, |_| {}).map(|_| ()),
        Err(bad("chunk extension too long"))
    );
}

#[test]
fn data_framing_errors() {
    check_err(
        b"3\r\nabc\n0\r\n\r\n",
        u64::MAX,
        bad("expected CRLF after chunk data"),
    );
    check_err(
        b"3\r\nabcd\r\n0\r\n\r\n",
        u64::MAX,
        bad("expected CRLF after chunk data"),
    );
    check_err(
        b"3\r\nabc\r0\r\n\r\n",
        u64::MAX,
        bad("expected CRLF after chunk data"),
    );
    check_err(b"0\r\n\r\r", u64::MAX, bad("expected LF after last chunk"));
    check_err(b"0\r\n\n", u64::MAX, bad("invalid trailer name"));
}

#[test]
fn trailer_errors() {
    check_err(b"0\r\nbad\r\n\r\n", u64::MAX, bad("invalid trailer name"));
    check_err(b"0\r\n: v\r\n\r\n", u64::MAX, bad("invalid trailer name"));
    check_err(b"0\r\nX : v\r\n\r\n", u64::MAX, bad("invalid trailer name"));
    check_err(
        b"0\r\n folded: v\r\n\r\n",
        u64::MAX,
        bad("invalid trailer name"),
    );
    check_err(
        b"0\r\nX: a\0b\r\n\r\n",
        u64::MAX,
        bad("invalid trailer value"),
    );
    check_err(
        b"0\r\nX: a\nY: b\r\n\r\n",
        u64::MAX,
        bad("invalid trailer value"),
    );
    check_err(
        b"0\r\nX: a\r\r\n",
        u64::MAX,
        bad("expected LF after trailer"),
    );
    let over = [b"0\r\nX: ".as_slice(), &[b'v'; 8192 - 4], b"\r\n\r\n"].concat();
    check_err(&over, u64::MAX, bad("trailers too long"));
    // A backend's answer may have trailers as large as its head (10 lines of 1,000 bytes
    // were a 502), and no more.
    let ten: Vec<u8> = (0..10)
        .flat_map(|i| {
            [
                format!("X-T{i}: ").into_bytes(),
                vec![b'a'; 1000],
                b"\r\n".to_vec(),
            ]
            .concat()
        })
        .collect();
    let body = [b"3\r\nabc\r\n0\r\n".as_slice(), &ten, b"\r\n"].concat();
    let scan = ChunkedDecoder::for_response().scan(&body, |_| {}).unwrap();
    assert!(scan.done && scan.consumed == body.len());
    let huge = [b"0\r\nX: ".as_slice(), &[b'v'; 64 * 1024], b"\r\n\r\n"].concat();
    assert_eq!(
        ChunkedDecoder::for_response().scan(&huge, |_| {}),
        Err(bad("trailers too long"))
    );
}

#[test]
fn payload_limit() {
    let body = b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
    check_err(body, 5, BodyError::TooLarge);
    assert_eq!(feed(body, &[], 6).unwrap().payload, b"abcdef");
    // The limit is checked on the size line, before any oversized data is passed on.
    let mut d = ChunkedDecoder::new(10);
    assert_eq!(
        d.scan(b"b\r\n", |_| panic!("no data")),
        Err(BodyError::TooLarge)
    );
}

/// The sizes add up to at most 2^63 - 1 too (their data is passed over unseen here).
#[test]
fn chunk_sizes_add_up_to_at_most_2_63_minus_1() {
    let mut d = ChunkedDecoder::new(u64::MAX);
    d.scan(b"7fffffffffffffff\r\n", |_| {}).unwrap();
    d.skip_data();
    assert_eq!(
        d.scan(b"\r\n1\r\n", |_| {}),
        Err(bad("chunk sizes add up past 2^63 - 1"))
    );
    // Under a lower limit, the sum is only too large.
    let mut d = ChunkedDecoder::new(1 << 20);
    assert_eq!(
        d.scan(b"7fffffffffffffff\r\n", |_| {}),
        Err(BodyError::TooLarge)
    );
    let mut d = ChunkedDecoder::new(u64::MAX);
    d.scan(b"7ffffffffffffffe\r\n", |_| {}).unwrap();
    d.skip_data();
    assert_eq!(d.scan(b"\r\n1\r\n", |_| {}).map(|s| s.done), Ok(false));
}

#[test]
fn errors_are_sticky() {
    let mut d = ChunkedDecoder::new(u64::MAX);
    assert_eq!(d.scan(b"z", |_| {}), Err(bad("invalid chunk size")));
    assert_eq!(d.scan(b"0\r\n\r\n", |_| {}), Err(bad("invalid chunk size")));
}

#[test]
fn data_ranges_are_relative_to_each_buffer() {
    let mut d = ChunkedDecoder::new(u64::MAX);
    let mut ranges = Vec::new();
    let s = d.scan(b"5\r\nhel", |r| ranges.push(r)).unwrap();
    assert_eq!(
        s,
        Scan {
            consumed: 6,
            done: false
        }
    );
    let s = d.scan(b"lo\r\n0\r\n\r\nrest", |r| ranges.push(r)).unwrap();
    assert_eq!(
        s,
        Scan {
            consumed: 9,
            done: true
        }
    );
    assert_eq!(ranges, vec![3..6, 0..2]);
    assert_eq!(d.payload_len(), 5);
}

#[test]
fn length_decoder() {
    let mut d = LengthDecoder::new(5);
    assert_eq!(
        d.scan(b"he"),
        Scan {
            consumed: 2,
            done: false
        }
    );
    assert_eq!(d.remaining(), 3);
    assert_eq!(
        d.scan(b"lloGET"),
        Scan {
            consumed: 3,
            done: true
        }
    );
    assert_eq!(
        d.scan(b"GET"),
        Scan {
            consumed: 0,
            done: true
        }
    );
    assert_eq!(
        LengthDecoder::new(0).scan(b"x"),
        Scan {
            consumed: 0,
            done: true
        }
    );
}

/// What a relay sends of `wire` cut at `cuts`, one entry a piece (`relay::with_last_chunk`:
/// the held bytes lead the next buffer, the final section goes as `0\r\n\r\n`), the payload
/// the data ranges point at, and what follows the body (None: it did not end).
type Relayed = (Vec<Vec<u8>>, Vec<u8>, Option<Vec<u8>>);

fn relay(wire: &[u8], cuts: &[usize]) -> Relayed {
    let mut d = ChunkedDecoder::new(1 << 20);
    let (mut sent, mut payload) = (Vec::new(), Vec::new());
    let mut buf = Vec::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([wire.len()]) {
        buf.extend_from_slice(&wire[start..end]);
        start = end;
        let r = d
            .relay_scan(&buf, |range| payload.extend_from_slice(&buf[range]))
            .unwrap();
        assert!(r.send <= r.consumed && r.consumed <= buf.len(), "{r:?}");
        let mut out = buf[..r.send].to_vec();
        if r.done {
            out.extend_from_slice(LAST_CHUNK);
            sent.push(out);
            let next = [&buf[r.consumed..], &wire[start..]].concat();
            return (sent, payload, Some(next));
        }
        assert_eq!(r.consumed, buf.len(), "an unfinished body takes all");
        sent.push(out);
        buf.drain(..r.send);
    }
    (sent, payload, None)
}

/// Whether what a relay sent so far could be cut there: a fresh decoder holds none of it
/// back (no size line unfinished, nothing of a final section) and sees no end.
fn settled(sent: &[u8]) -> bool {
    let r = ChunkedDecoder::new(1 << 20).relay_scan(sent, |_| {});
    r.is_ok_and(|r| !r.done && r.send == sent.len())
}

/// Cut anywhere, a relay sends the same chunks, extensions and all, then `0\r\n\r\n`
/// (no trailer field, no last-chunk extension), and nothing before the whole final
/// section is in; a size line goes only whole, so `…\r\n0` is held (`01a` follows).
#[test]
fn a_relay_sends_no_unfinished_size_line_and_a_last_chunk_only_at_the_end() {
    let wire: &[u8] = b"5;a=b\r\nhello\r\n01a;x=\"q\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0;last\r\nX-Api-Key: k\r\nContent-Length: 50\r\n\r\nGET / HTTP/1.1";
    let want: &[u8] = b"5;a=b\r\nhello\r\n01a;x=\"q\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
    for i in 0..=wire.len() {
        for j in i..=wire.len() {
            let (sent, payload, next) = relay(wire, &[i, j]);
            assert_eq!(sent.concat(), want, "cut at {i},{j}");
            assert_eq!(
                payload, b"helloabcdefghijklmnopqrstuvwxyz",
                "cut at {i},{j}"
            );
            assert_eq!(
                next.as_deref(),
                Some(&b"GET / HTTP/1.1"[..]),
                "cut at {i},{j}"
            );
            for k in 1..sent.len() {
                assert!(settled(&sent[..k].concat()), "cut at {i},{j}: {sent:?}");
            }
        }
    }
    // The read that ends in the size line's first digit sends the data before it only.
    let zero = wire.windows(3).position(|w| w == b"01a").unwrap() + 1;
    let (sent, _, _) = relay(wire, &[zero]);
    assert!(sent[0].ends_with(b"hello\r\n"), "{sent:?}");
}

/// A body cut inside its final section (a close after `0\r\n`, after a trailer line, or
/// before the empty line's LF) never sent a byte of it: the client sees no last chunk.
#[test]
fn a_body_cut_in_its_final_section_sent_none_of_it() {
    for wire in [
        &b"2\r\nok\r\n0"[..],
        b"2\r\nok\r\n0\r\n",
        b"2\r\nok\r\n0;e=1\r\n",
        b"2\r\nok\r\n0\r\nX-T: 1\r\n",
        b"2\r\nok\r\n0\r\n\r",
        b"2\r\nok\r\n00\r\nX-T: 1\r\n\r",
    ] {
        for i in 0..=wire.len() {
            let (sent, payload, next) = relay(wire, &[i]);
            assert_eq!(next, None, "{wire:?} cut at {i}");
            assert_eq!(sent.concat(), b"2\r\nok\r\n", "{wire:?} cut at {i}");
            assert_eq!(payload, b"ok");
        }
    }
}

/// Held bytes are not scanned again: a size line at the extension limit, split anywhere,
/// passes (counted twice, it went past the limit).
#[test]
fn held_bytes_are_scanned_once() {
    let wire = [b"1;".as_slice(), &[b'e'; 4096], b"\r\nx\r\n0\r\n\r\n"].concat();
    for i in (0..=wire.len()).step_by(7).chain([1, 2, 4097, 4098, 4099]) {
        let (sent, payload, next) = relay(&wire, &[i]);
        assert_eq!(sent.concat(), wire, "cut at {i}");
        assert_eq!((payload, next), (b"x".to_vec(), Some(Vec::new())));
    }
}
