//! Trace headers to the backend: `traceparent` (and the `tracestate` that belongs to it),
//! `X-Amzn-Trace-Id` and `x-amzn-requestid`, continued or started anew.

mod common;

use common::*;

fn hex(s: &str) -> bool {
    s.bytes().all(|c| c.is_ascii_hexdigit())
}

#[test]
fn trace_headers_reach_the_backend() {
    let origin = Origin::fixed(b"ok");
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 1), driver);
        // No trace headers: new ones are made.
        let r = p.get("/a");
        let seen = origin.last();
        let tp = seen
            .header("traceparent")
            .expect("traceparent sent")
            .to_string();
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts.len(), 4, "{tp}");
        assert_eq!(
            (parts[0], parts[1].len(), parts[2].len()),
            ("00", 32, 16),
            "{tp}"
        );
        assert!(hex(parts[1]) && hex(parts[2]), "{tp}");
        let xray = seen
            .header("x-amzn-trace-id")
            .expect("x-amzn-trace-id sent")
            .to_string();
        assert!(
            xray.starts_with("Root=1-") && xray.contains(";Parent="),
            "{xray}"
        );
        assert_eq!(
            seen.header("x-amzn-requestid"),
            r.header("x-amzn-RequestId"),
            "{driver}"
        );

        // Incoming ones are continued: same trace, new span.
        p.raw(
            b"GET /b HTTP/1.1\r\nHost: t\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nX-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1\r\nx-amzn-requestid: spoofed\r\nConnection: close\r\n\r\n",
        );
        let seen = origin.last();
        let tp = seen.header("traceparent").unwrap();
        assert!(
            tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{tp}"
        );
        assert!(!tp.contains("00f067aa0ba902b7"), "{tp}");
        assert!(tp.ends_with("-01"));
        let xray = seen.header("x-amzn-trace-id").unwrap();
        assert!(
            xray.starts_with("Root=1-5759e988-bd862e3fe1be46a994272793;Parent="),
            "{xray}"
        );
        assert_ne!(seen.header("x-amzn-requestid"), Some("spoofed"));
        assert_eq!(
            seen.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("traceparent"))
                .count(),
            1
        );

        // Two traceparent lines are no trace to continue: a new one starts.
        p.raw(
            b"GET /b HTTP/1.1\r\nHost: t\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\ntraceparent: 00-12345678901234567890123456789012-1234567890123456-01\r\nConnection: close\r\n\r\n",
        );
        let tp = origin.last().header("traceparent").unwrap().to_string();
        assert!(
            !tp.contains("4bf92f3577b34da6a3ce929d0e0e4736")
                && !tp.contains("12345678901234567890123456789012"),
            "{driver}: {tp}"
        );
        assert_eq!(tp.len(), 55, "{tp}");

        // Fields the client's Connection names are this hop's only (RFC 9110 §7.6.1):
        // neither its X-Forwarded-For nor its trace ids go on.
        p.raw(
            b"GET /b HTTP/1.1\r\nHost: t\r\nConnection: x-forwarded-for, traceparent\r\nConnection: X-Amzn-Trace-Id\r\nX-Forwarded-For: 6.6.6.6\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nX-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1\r\nConnection: close\r\n\r\n",
        );
        let seen = origin.last();
        assert_eq!(
            seen.header("x-forwarded-for"),
            Some("127.0.0.1"),
            "{driver}"
        );
        let tp = seen.header("traceparent").unwrap();
        assert!(
            !tp.contains("4bf92f3577b34da6a3ce929d0e0e4736"),
            "{driver}: {tp}"
        );
        let xray = seen.header("x-amzn-trace-id").unwrap();
        assert!(!xray.contains("5759e988"), "{driver}: {xray}");
    }
}

#[test]
fn tracestate_goes_on_only_with_the_trace_it_belongs_to() {
    let origin = Origin::fixed(b"ok");
    const PARENT: &str = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n";
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 1), driver);
        let states = |head: &str| {
            p.raw(
                format!("GET /a HTTP/1.1\r\nHost: t\r\n{head}Connection: close\r\n\r\n").as_bytes(),
            );
            let seen = origin.last();
            let tp = seen.header("traceparent").unwrap().to_string();
            let states: Vec<String> = (seen.headers.iter())
                .filter(|(n, _)| n.eq_ignore_ascii_case("tracestate"))
                .map(|(_, v)| v.clone())
                .collect();
            (tp.contains("4bf92f3577b34da6a3ce929d0e0e4736"), states)
        };
        // Continued: every tracestate line goes on as sent.
        assert_eq!(
            states(&format!(
                "{PARENT}tracestate: a=1,b=2\r\ntracestate: c=3\r\n"
            )),
            (true, vec!["a=1,b=2".to_string(), "c=3".to_string()]),
            "{driver}"
        );
        // A new trace (none sent, an invalid one, two of them) starts with no state.
        for head in [
            "tracestate: vendor=secret\r\n".to_string(),
            "traceparent: 00-00000000000000000000000000000000-00f067aa0ba902b7-01\r\ntracestate: vendor=secret\r\n".to_string(),
            format!("{PARENT}{PARENT}tracestate: vendor=secret\r\n"),
        ] {
            assert_eq!(states(&head), (false, vec![]), "{driver}: {head:?}");
        }
        // Named by the client's Connection, it is this hop's only.
        assert_eq!(
            states(&format!(
                "{PARENT}Connection: tracestate\r\ntracestate: a=1\r\n"
            )),
            (true, vec![]),
            "{driver}"
        );
    }
}
