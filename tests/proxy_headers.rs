//! The headers the http integration sends a backend: Host, the forwarded headers it
//! writes (whatever a client claimed in them or their look-alikes), hop-by-hop fields
//! dropped both ways, and a dual-stack listener's IPv4 client forwarded as IPv4.

mod common;

use common::*;

#[test]
fn forwarded_headers_host_and_hop_by_hop() {
    let origin = Origin::start(|_, s| {
        respond(
            s,
            200,
            &[
                ("connection", "keep-alive, x-secret"),
                ("x-secret", "1"),
                ("keep-alive", "timeout=5"),
            ],
            b"k",
        );
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 1), driver);
        let r = p.raw(
            b"GET /h HTTP/1.1\r\nHost: example.org\r\nX-Forwarded-For: 10.0.0.1\r\nConnection: close, x-drop\r\nX-Drop: y\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-Keep: z\r\nForwarded: host=evil.example;proto=https\r\nX-Forwarded-Port: 1337\r\nX-Forwarded-Prefix: /evil\r\nX-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\nX-Forwarded-Ssl: on\r\nX-Host: evil.example\r\nFront-End-Https: on\r\nX-Scheme: https\r\nX-Forwarded-Client-Cert: Hash=1;Subject=\"CN=admin\"\r\nClient-Cert: :MIIB:\r\nX-Amzn-Mtls-Clientcert-Subject: CN=admin\r\nssl_client_cert: x\r\nX-SSL-Client-DN: CN=admin\r\nX-ARR-ClientCert: x\r\nX-SSL-Client-CN: admin\r\nX-Forwarded-Tls-Client-Cert: x\r\nX-Forwarded-Method: GET\r\nSCRIPT_NAME: /evil\r\nScript-Name: /evil\r\nX-Client-Id: kept\r\n\r\n",
        );
        assert_eq!(r.status, 200);
        let seen = origin.last();
        assert_eq!(
            seen.header("host"),
            Some(origin.addr.to_string().as_str()),
            "{driver}"
        );
        assert_eq!(seen.header("x-forwarded-for"), Some("10.0.0.1, 127.0.0.1"));
        assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
        assert_eq!(seen.header("x-forwarded-host"), Some("example.org"));
        assert_eq!(seen.header("x-keep"), Some("z"));
        assert_eq!(seen.header("x-client-id"), Some("kept"), "{driver}");
        // A client's word on the host, port and prefix links are built from is not passed
        // on beside Portico's X-Forwarded-Host (Spring, Rack 3 read these first).
        for gone in [
            "connection",
            "x-drop",
            "keep-alive",
            "te",
            "forwarded",
            "x-forwarded-port",
            "x-forwarded-prefix",
            "x-original-url",
            "x-rewrite-url",
            "x-forwarded-ssl",
            "x-host",
            "front-end-https",
            "x-scheme",
            "x-forwarded-client-cert",
            "client-cert",
            "x-amzn-mtls-clientcert-subject",
            "ssl_client_cert",
            "x-ssl-client-dn",
            "x-arr-clientcert",
            "x-ssl-client-cn",
            "x-forwarded-tls-client-cert",
            "x-forwarded-method",
            "script_name",
            "script-name",
        ] {
            assert_eq!(seen.header(gone), None, "{gone} reached the origin");
        }
        // Several X-Forwarded-For lines are one list (a proxy in front that appends its own
        // line, as haproxy does): all of it goes on, in order, with no empty entry.
        let joined = p.raw(
            b"GET /h HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\nX-Other: 1\r\nx-forwarded-for: 203.0.113.7, 10.1.1.1\r\nX-Forwarded-For:\r\n\r\n",
        );
        assert_eq!(joined.status, 200, "{driver}");
        let seen = origin.last();
        assert_eq!(seen.header("x-other"), Some("1"), "{driver}");
        assert_eq!(
            seen.header("x-forwarded-for"),
            Some("6.6.6.6, 203.0.113.7, 10.1.1.1, 127.0.0.1"),
            "{driver}"
        );
        // And on the way back.
        assert_eq!(r.header("x-secret"), None);
        assert_eq!(r.header("keep-alive"), None);
        assert_eq!(r.header("connection"), Some("close"));
        let id = r
            .header("x-amzn-RequestId")
            .expect("request id")
            .to_string();
        assert_eq!(r.header("apigw-requestid"), Some(id.as_str()));
        p.stop();

        // A `localhost` target is a name: its Host is the name as written, as nginx's
        // `proxy_pass http://localhost:PORT` sends it (it was 127.0.0.1:PORT).
        let local = format!("localhost:{}", origin.addr.port());
        let cfg = proxy_config(origin.addr, 1).replace(&origin.addr.to_string(), &local);
        let p = Portico::start(&cfg, driver);
        assert_eq!(p.get("/h").status, 200, "{driver}");
        assert_eq!(
            origin.last().header("host"),
            Some(local.as_str()),
            "{driver}"
        );
    }
}

/// A client's `X_Forwarded_For` (and the other headers Portico writes, spelled with `_`)
/// does not reach the backend: CGI, WSGI, PHP and Rack read it as the HTTP_X_FORWARDED_FOR
/// Portico writes, and some take the client's. Other names with `_` pass.
#[test]
fn underscore_spellings_of_headers_portico_writes_are_dropped() {
    let origin = Origin::start(|_, s| {
        respond(s, 200, &[], b"k");
        true
    });
    for driver in DRIVERS {
        let p = Portico::start(&proxy_config(origin.addr, 1), driver);
        let r = p.raw(
            b"GET /h HTTP/1.1\r\nHost: example.org\r\nX_Forwarded_For: 6.6.6.6\r\nx_forwarded_host: evil\r\nX_FORWARDED_PROTO: https\r\nX_Amzn_RequestId: forged\r\nX-Amzn_Trace-Id: Root=forged\r\nContent_Length: 50\r\nTransfer_Encoding: chunked\r\nX_Custom: kept\r\n\r\n",
        );
        assert_eq!(r.status, 200, "{driver}");
        let seen = origin.last();
        for gone in [
            "x_forwarded_for",
            "x_forwarded_host",
            "x_forwarded_proto",
            "x_amzn_requestid",
            "x-amzn_trace-id",
            // A backend that read these as framing would frame the request differently.
            "content_length",
            "transfer_encoding",
        ] {
            assert_eq!(
                seen.header(gone),
                None,
                "{driver}: {gone} reached the origin"
            );
        }
        assert_eq!(
            seen.header("x-forwarded-for"),
            Some("127.0.0.1"),
            "{driver}"
        );
        assert_eq!(seen.header("x-forwarded-host"), Some("example.org"));
        assert_eq!(seen.header("x_custom"), Some("kept"));
    }
}

/// An IPv4 client of a dual-stack listener is its IPv4 address to the backend, not
/// ::ffff:127.0.0.1 (API Gateway's sourceIp is the IPv4 address too).
#[test]
fn ipv4_client_of_a_dual_stack_listener_is_forwarded_as_ipv4() {
    if std::net::TcpListener::bind("[::]:0").is_err() {
        eprintln!("no IPv6 on this host; skipped");
        return;
    }
    let origin = Origin::start(|_, s| {
        respond(s, 200, &[], b"k");
        true
    });
    for driver in DRIVERS {
        let config = proxy_config(origin.addr, 1).replace("127.0.0.1:{PORT}", "[::]:{PORT}");
        let p = Portico::start(&config, driver);
        let r = p.get("/v4");
        assert_eq!(r.status, 200, "{driver}");
        let seen = origin.last();
        assert_eq!(
            seen.header("x-forwarded-for"),
            Some("127.0.0.1"),
            "{driver}"
        );
    }
}
