//! The request headers a gateway writes itself, and a client's spellings of them with `_`
//! for `-`, which CGI, WSGI, PHP and Rack read as the same names: the HTTP proxy drops
//! both from what it forwards, Lambda and WebSocket events the `_` spellings.

use crate::http1::same_cgi_name;

/// A client's headers that name the URL's host, port, path or scheme, or the client's
/// certificate: frameworks behind a trusted proxy build links and redirects from the
/// first kind (Spring's ForwardedHeaderFilter; Rack 3 prefers `Forwarded` to the
/// `X-Forwarded-Host` Portico writes, and reads X-Forwarded-Ssl and -Scheme before
/// X-Forwarded-Proto; Jetty reads X-Proxied-Https and Proxy-Ssl-Id as https), or serve
/// the path they name (Symfony's and IIS URL Rewrite's X-Original-URL and X-Rewrite-URL:
/// an open route's request served as `/admin`, past the key or authorizer its route has),
/// and take the second kind as an identity the proxy verified. A client's own would build
/// the links in a password-reset mail, or claim a certificate it does not hold: the
/// proxy's to say, so dropped from proxied requests (AWS writes its own; Portico writes
/// none of the certificate ones: map `$context.identity.clientCert.*` to pass them);
/// functions get them, and the cache keys on them (`cache::key`).
pub const PROXY_CLAIMS: [&[u8]; 39] = [
    b"forwarded",
    b"x-forwarded-port",
    b"x-forwarded-prefix",
    b"x-forwarded-path",
    b"x-forwarded-uri",
    b"x-forwarded-server",
    b"x-forwarded-scheme",
    b"x-forwarded-ssl",
    b"front-end-https",
    b"x-proxied-https",
    b"proxy-ssl-id",
    b"x-url-scheme",
    b"x-host",
    b"x-original-host",
    b"x-original-url",
    b"x-rewrite-url",
    // Tornado's and ingress-nginx's scheme, IIS ARR's https flag, Werkzeug's path prefix.
    b"x-scheme",
    b"x-forwarded-protocol",
    b"x-arr-ssl",
    b"x-script-name",
    // Client certificates as the usual proxies pass them on: Jetty's (also read as
    // https), Envoy's, RFC 9440's, an ALB's mutual TLS ones, Tomcat's SSLValve
    // (`ssl_client_cert`), ingress-nginx's, IIS ARR's, ASP.NET Core's and the common
    // nginx/haproxy recipes'.
    b"proxy-auth-cert",
    b"x-forwarded-client-cert",
    b"client-cert",
    b"client-cert-chain",
    b"x-amzn-mtls-clientcert",
    b"x-amzn-mtls-clientcert-leaf",
    b"x-amzn-mtls-clientcert-subject",
    b"x-amzn-mtls-clientcert-issuer",
    b"x-amzn-mtls-clientcert-serial-number",
    b"x-amzn-mtls-clientcert-validity",
    b"ssl-client-cert",
    b"ssl-client-verify",
    b"ssl-client-subject-dn",
    b"ssl-client-issuer-dn",
    b"x-arr-clientcert",
    b"x-client-cert",
    b"x-ssl-client-cert",
    b"x-ssl-client-dn",
    b"x-ssl-client-verify",
];

/// Headers this proxy writes itself (hop-by-hop ones are `HopByHop`'s), or drops as
/// [`PROXY_CLAIMS`]. The framing is
/// written for the body sent: Content-Length once from the parsed length, so duplicates
/// ("2, 2") are not passed on; Transfer-Encoding from the parsed codings, with the chunked
/// body relayed as sent. A client's spelling with `_` for `-` (`X_Forwarded_For`) is
/// dropped too: CGI, WSGI, PHP and Rack backends read it as the same HTTP_X_FORWARDED_FOR
/// as Portico's, and may take the client's (nginx drops every name with `_`).
pub fn written_by_proxy(name: &[u8]) -> bool {
    const OWN: &[&[u8]] = &[
        b"host",
        b"expect",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"traceparent",
        b"tracestate",
        b"x-amzn-trace-id",
        b"x-amzn-requestid",
        b"content-length",
        b"transfer-encoding",
    ];
    OWN.iter()
        .chain(&PROXY_CLAIMS)
        .any(|own| same_cgi_name(own, name))
}

/// A client's `_` spelling (`X_Forwarded_For`, `Content_Length`) of a header a gateway
/// writes itself or Lambda events add (`x-forwarded-port`): dropped from events, as from
/// proxied requests, so a function's WSGI/CGI adapter cannot mistake it for the real one.
pub fn underscore_spelling_of_own(name: &[u8]) -> bool {
    name.contains(&b'_') && written_by_proxy(name)
}

/// `X-Real-IP`, which the HTTP proxy writes as the client's address (the peer's, the
/// address it appends to X-Forwarded-For), as nginx's usual `proxy_set_header X-Real-IP
/// $remote_addr` does: backends trust it (chi's RealIP, rate limiters, allowlists), so a
/// client's own, or its `X_Real_IP` (the same HTTP_X_REAL_IP to CGI-style backends), is
/// never passed on. Not in [`written_by_proxy`]: functions and WebSocket events get no
/// such header from Portico, and their client's is left as sent there (as API Gateway
/// leaves it). A request mapping of it is the operator's and wins (`request_head`).
pub const REAL_IP: &[u8] = b"x-real-ip";

/// Whether the header lines `lines` (`name: value\r\n` each, as a request mapping writes
/// them) have one named `name` (`_` read as `-`).
pub fn lines_name(lines: &[u8], name: &[u8]) -> bool {
    lines.split(|&b| b == b'\n').any(|line| {
        let end = line.iter().position(|&b| b == b':').unwrap_or(line.len());
        same_cgi_name(&line[..end], name)
    })
}

/// The `x-forwarded-for` a gateway sends on: every value the client's `X-Forwarded-For`
/// lines hold, in order (several lines are one comma-joined list, RFC 9110 §5.3: a proxy
/// in front that added its own line must not lose it), then the peer's address. Empty
/// values are left out.
pub fn forwarded_for<'a>(client: impl Iterator<Item = &'a [u8]>, peer: &[u8], out: &mut Vec<u8>) {
    for value in client.filter(|v| !v.is_empty()) {
        out.extend_from_slice(value);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(peer);
}
