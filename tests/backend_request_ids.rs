//! A backend's own request ids never reach the client beside Portico's: every answer
//! carries one `x-amzn-RequestId` and one `apigw-requestid`, the same id (README,
//! "Request ids"). Function answers and stored ones dropped a backend's already; proxied
//! answers passed them on, two ids for a client to pick from. Under both drivers.

mod common;

use std::io::Write;

use common::*;

/// Forged ids in any case, on a content-length answer and on a chunked one.
fn forging_origin() -> Origin {
    Origin::start(|req, s| {
        let forged = [
            ("X-Amzn-RequestId", "forged-1"),
            ("APIGW-REQUESTID", "forged-2"),
            ("x-amzn-requestid", "forged-3"),
        ];
        if req.target == "/chunked" {
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nx-amzn-RequestId: forged-1\r\napigw-requestid: forged-2\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            );
        } else {
            respond(s, 200, &forged, b"ok");
        }
        true
    })
}

#[test]
fn a_backends_request_ids_are_not_relayed_beside_the_gateways() {
    let origin = forging_origin();
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 1), driver);
        for (request, body) in [
            ("GET /length HTTP/1.1", "ok"),
            ("GET /chunked HTTP/1.1", "ok"),
            ("HEAD /length HTTP/1.1", ""),
            // De-chunked for an HTTP/1.0 client.
            ("GET /chunked HTTP/1.0", "ok"),
        ] {
            let mut s = p.connect();
            s.write_all(format!("{request}\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
                .unwrap();
            let head = request.starts_with("HEAD");
            let r = read_response(&mut std::io::BufReader::new(s), head).unwrap();
            assert_eq!(r.status, 200, "{driver} {request}");
            assert_eq!(r.text(), body, "{driver} {request}");
            let ids = |name: &str| -> Vec<String> {
                (r.headers.iter())
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
                    .collect()
            };
            let id = ids("x-amzn-requestid");
            assert_eq!(id.len(), 1, "{driver} {request}: {:?}", r.headers);
            assert!(!id[0].starts_with("forged"), "{driver} {request}: {id:?}");
            assert_eq!(ids("apigw-requestid"), id, "{driver} {request}");
        }
    }
}
