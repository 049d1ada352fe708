use super::*;

const LIMITS: Limits = Limits {
    frame: 1024,
    message: 4096,
};

/// A client frame: masked with a fixed key.
fn client(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    let mut p = payload.to_vec();
    unmask(&mut p, mask);
    out.extend_from_slice(&p);
    out
}

/// Every event from `input` fed whole, and fed split at every byte boundary: both must
/// give the same events and the same outcome.
fn decode_all(input: &[u8]) -> (Vec<Event>, Option<Violation>) {
    let run = |parts: &[&[u8]]| {
        let mut d = Decoder::new(LIMITS);
        let mut buf = BytesMut::new();
        let mut events = Vec::new();
        for part in parts {
            buf.extend_from_slice(part);
            loop {
                match d.next(&mut buf) {
                    Ok(Some(e)) => events.push(e),
                    Ok(None) => break,
                    Err(v) => return (events, Some(v)),
                }
            }
        }
        (events, None)
    };
    let whole = run(&[input]);
    for cut in 1..input.len() {
        let split = run(&[&input[..cut], &input[cut..]]);
        assert_eq!(split, whole, "split at {cut}");
    }
    whole
}

fn text(s: &str) -> Event {
    Event::Message {
        text: true,
        data: s.as_bytes().to_vec(),
    }
}

#[test]
fn text_binary_and_control_frames() {
    let mut input = client(true, OP_TEXT, b"hello");
    input.extend(client(true, OP_BINARY, &[0, 1, 2]));
    input.extend(client(true, OP_PING, b"p"));
    input.extend(client(true, OP_PONG, b""));
    input.extend(client(true, OP_CLOSE, &[0x03, 0xe8, b'o', b'k']));
    let (events, err) = decode_all(&input);
    assert_eq!(err, None);
    assert_eq!(
        events,
        vec![
            text("hello"),
            Event::Message {
                text: false,
                data: vec![0, 1, 2]
            },
            Event::Ping(b"p".to_vec()),
            Event::Pong(Vec::new()),
            Event::Close {
                code: Some(1000),
                reason: "ok".into()
            },
        ]
    );
}

#[test]
fn lengths_of_16_and_64_bits() {
    let mid = vec![b'a'; 300];
    let mut input = client(true, OP_TEXT, &mid);
    let (events, err) = decode_all(&input);
    assert_eq!((events.len(), err), (1, None));
    // A 64-bit length is legal for small payloads too.
    input = vec![
        0x81,
        0x80 | 127,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        2,
        0,
        0,
        0,
        0,
        b'h',
        b'i',
    ];
    assert_eq!(decode_all(&input), (vec![text("hi")], None));
}

#[test]
fn fragments_reassemble_around_control_frames() {
    let mut input = client(false, OP_TEXT, "héllo ".as_bytes());
    input.extend(client(true, OP_PING, b"in between"));
    input.extend(client(false, OP_CONTINUATION, b"wor"));
    input.extend(client(true, OP_CONTINUATION, b"ld"));
    let (events, err) = decode_all(&input);
    assert_eq!(err, None);
    assert_eq!(
        events,
        vec![Event::Ping(b"in between".to_vec()), text("héllo world")]
    );
    // A UTF-8 sequence split across fragments is fine: text is checked whole.
    let euro = "€".as_bytes();
    let mut input = client(false, OP_TEXT, &euro[..1]);
    input.extend(client(true, OP_CONTINUATION, &euro[1..]));
    assert_eq!(decode_all(&input), (vec![text("€")], None));
}

fn refused(input: &[u8]) -> u16 {
    let (_, err) = decode_all(input);
    err.expect("refused").code
}

#[test]
fn protocol_violations_close_with_1002() {
    let mut unmasked = client(true, OP_TEXT, b"x");
    unmasked[1] &= 0x7F;
    unmasked.drain(2..6);
    assert_eq!(refused(&unmasked), CLOSE_PROTOCOL);
    let mut rsv = client(true, OP_TEXT, b"x");
    rsv[0] |= 0x40;
    assert_eq!(refused(&rsv), CLOSE_PROTOCOL);
    for op in [3, 7, 0xB, 0xF] {
        assert_eq!(
            refused(&client(true, op, b"")),
            CLOSE_PROTOCOL,
            "opcode {op}"
        );
    }
    assert_eq!(refused(&client(false, OP_PING, b"")), CLOSE_PROTOCOL);
    assert_eq!(refused(&client(true, OP_PING, &[0; 126])), CLOSE_PROTOCOL);
    assert_eq!(
        refused(&client(true, OP_CONTINUATION, b"x")),
        CLOSE_PROTOCOL
    );
    let mut nested = client(false, OP_TEXT, b"a");
    nested.extend(client(true, OP_TEXT, b"b"));
    assert_eq!(refused(&nested), CLOSE_PROTOCOL);
    assert_eq!(refused(&client(true, OP_CLOSE, &[3])), CLOSE_PROTOCOL);
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        let frame = client(true, OP_CLOSE, &code.to_be_bytes());
        assert_eq!(refused(&frame), CLOSE_PROTOCOL, "close code {code}");
    }
    // IANA's later codes are a peer's to send (Python's `websockets` sends them).
    for code in [1012u16, 1013, 1014, 3000, 4999] {
        let (events, err) = decode_all(&client(true, OP_CLOSE, &code.to_be_bytes()));
        assert_eq!(err, None, "close code {code}");
        let reason = String::new();
        assert_eq!(
            events,
            [Event::Close {
                code: Some(code),
                reason
            }]
        );
    }
    let huge = [0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1];
    assert_eq!(refused(&huge), CLOSE_PROTOCOL);
}

#[test]
fn bad_utf8_closes_with_1007() {
    assert_eq!(
        refused(&client(true, OP_TEXT, &[0xce, 0xba, 0xff])),
        CLOSE_BAD_DATA
    );
    let mut bad_reason = vec![0x03, 0xe8];
    bad_reason.push(0xff);
    assert_eq!(
        refused(&client(true, OP_CLOSE, &bad_reason)),
        CLOSE_BAD_DATA
    );
    // Binary is never checked.
    let (events, err) = decode_all(&client(true, OP_BINARY, &[0xff]));
    assert_eq!((events.len(), err), (1, None));
}

#[test]
fn bad_utf8_fails_fast_mid_fragment_and_mid_frame() {
    // The first fragment already holds an invalid byte: refused before the rest.
    let mut d = Decoder::new(LIMITS);
    let mut buf = BytesMut::from(&client(false, OP_TEXT, &[b'a', 0xff])[..]);
    assert_eq!(d.next(&mut buf).unwrap_err().code, CLOSE_BAD_DATA);
    // Half a frame whose arrived part is invalid: refused without the other half.
    let frame = client(true, OP_TEXT, &[b'o', b'k', 0xc0, 0xaf, b'x', b'y']);
    let mut d = Decoder::new(LIMITS);
    let mut buf = BytesMut::from(&frame[..10]);
    assert_eq!(d.next(&mut buf).unwrap_err().code, CLOSE_BAD_DATA);
    // A sequence left open at the end of the message.
    assert_eq!(
        refused(&client(true, OP_TEXT, &[b'a', 0xe2, 0x82])),
        CLOSE_BAD_DATA
    );
    let mut open_end = client(false, OP_TEXT, &[0xe2]);
    open_end.extend(client(true, OP_CONTINUATION, &[0x82]));
    assert_eq!(refused(&open_end), CLOSE_BAD_DATA);
    // Valid text cut at every byte keeps decoding (decode_all splits everywhere).
    let text = "añ€😀".repeat(5);
    let mut input = client(false, OP_TEXT, &text.as_bytes()[..7]);
    input.extend(client(true, OP_CONTINUATION, &text.as_bytes()[7..]));
    assert_eq!(
        decode_all(&input),
        (
            vec![super::Event::Message {
                text: true,
                data: text.into_bytes()
            }],
            None
        )
    );
}

#[test]
fn limits_close_with_1009_before_the_payload_arrives() {
    // Only the header of a 2 KiB frame: refused already.
    let frame = client(true, OP_TEXT, &[b'a'; 2048]);
    let mut d = Decoder::new(LIMITS);
    let mut buf = BytesMut::from(&frame[..8]);
    assert_eq!(d.next(&mut buf).unwrap_err().code, CLOSE_TOO_BIG);
    // Frames within the limit, a message past it.
    let mut input = client(false, OP_TEXT, &[b'a'; 1024]);
    for _ in 0..3 {
        input.extend(client(false, OP_CONTINUATION, &[b'a'; 1024]));
    }
    input.extend(client(true, OP_CONTINUATION, b"!"));
    assert_eq!(refused(&input), CLOSE_TOO_BIG);
    // Exactly at the limits is fine.
    let mut input = client(false, OP_TEXT, &[b'a'; 1024]);
    for _ in 0..2 {
        input.extend(client(false, OP_CONTINUATION, &[b'a'; 1024]));
    }
    input.extend(client(true, OP_CONTINUATION, &[b'a'; 1024]));
    assert_eq!(decode_all(&input).0.len(), 1);
}

#[test]
fn server_frames() {
    let mut out = Vec::new();
    encode(&mut out, OP_TEXT, b"hi");
    assert_eq!(out, [0x81, 2, b'h', b'i']);
    out.clear();
    encode(&mut out, OP_BINARY, &[7; 300]);
    assert_eq!(&out[..4], &[0x82, 126, 1, 44]);
    assert_eq!(out.len(), 304);
    out.clear();
    encode(&mut out, OP_TEXT, &vec![0; 70_000]);
    assert_eq!(&out[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    out.clear();
    encode_close(&mut out, 1009, &"é".repeat(100));
    assert_eq!(out[0], 0x88);
    assert!(out[1] <= 125);
    assert!(
        std::str::from_utf8(&out[4..]).is_ok(),
        "cut on a char boundary"
    );
}

/// Random bytes never panic the decoder, and whatever it accepts it accepts the same way
/// however the bytes are split (a small stand-in for the fuzz targets of the HTTP codec).
#[test]
fn random_input_never_panics() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..300 {
        let n = (next() % 64) as usize;
        let mut input: Vec<u8> = (0..n).map(|_| next() as u8).collect();
        // Bias towards well-formed heads so the deeper paths are reached.
        if let Some(b) = input.get_mut(1) {
            *b |= 0x80;
            *b &= 0xBF;
        }
        let _ = decode_all(&input);
    }
}
