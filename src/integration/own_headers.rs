//! The request headers a gateway writes itself, and a client's spellings of them with `_`
//! for `-`, which CGI, WSGI, PHP and Rack read as the same names: the HTTP proxy drops
//! both from what it forwards, Lambda and WebSocket events the `_` spellings.

use crate::http1::same_cgi_name;

/// A client's headers that name the URL's host, port, path, scheme or method, or the
/// client's certificate: frameworks behind a trusted proxy build links and redirects from
/// the first kind (Spring's ForwardedHeaderFilter; Rack 3 prefers `Forwarded` to the
/// `X-Forwarded-Host` Portico writes, and reads X-Forwarded-Ssl and -Scheme before
/// X-Forwarded-Proto; Jetty reads X-Proxied-Https and Proxy-Ssl-Id as https), serve the
/// path they name (Symfony's and IIS URL Rewrite's X-Original-URL and X-Rewrite-URL: an
/// open route's request served as `/admin`, past the key or authorizer its route has), or
/// judge access by them (forward-auth services read X-Forwarded-Method and -Uri), and take
/// the second kind as an identity the proxy verified. A client's own would build the links
/// in a password-reset mail, or claim a certificate it does not hold: the proxy's to say,
/// so dropped from proxied requests (AWS writes its own; Portico writes none of the
/// certificate ones: map `$context.identity.clientCert.*` to pass them); functions get
/// them, and the cache keys on them (`cache::key`). [`CERT_CLAIM_PREFIXES`] names the
/// certificate families by prefix.
const PROXY_CLAIMS: [&[u8]; 32] = [
    b"forwarded",
    b"x-forwarded-port",
    b"x-forwarded-prefix",
    b"x-forwarded-path",
    b"x-forwarded-uri",
    b"x-forwarded-url",
    b"x-forwarded-method",
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
    b"x-original-uri",
    b"x-original-path",
    b"x-original-method",
    b"x-envoy-original-path",
    b"x-request-uri",
    b"x-rewrite-url",
    // Tornado's and ingress-nginx's scheme, IIS ARR's https flag, Werkzeug's path prefix.
    b"x-scheme",
    b"x-forwarded-protocol",
    b"x-arr-ssl",
    b"x-script-name",
    // gunicorn's `SCRIPT_NAME` header (read with no trust check): the prefix Flask and
    // Django build every link and redirect with.
    b"script-name",
    // Client certificates by single name: Jetty's (also read as https), Envoy's, IIS
    // ARR's, and two common recipes'.
    b"proxy-auth-cert",
    b"x-forwarded-client-cert",
    b"x-arr-clientcert",
    b"x-client-verify",
];

/// Families of client-certificate headers, by prefix (each name it begins, `_` read as
/// `-`): RFC 9440's `Client-Cert`, `Client-Cert-Chain`; nginx's and haproxy's usual
/// `X-SSL-Client-*`, `X-SSL-Issuer`, `X-Ssl-Cert`; ingress-nginx's `ssl-client-*` and
/// Apache's `SSL_CLIENT_*` (Tomcat's SSLValve reads `ssl_client_cert`); an ALB's
/// `X-Amzn-Mtls-Clientcert*`; Google's load balancers' and ASP.NET Core's
/// `X-Client-Cert*`, `X-Client-DN`; Traefik's `X-Forwarded-Tls-Client-Cert*`; Cloudflare's
/// `Cf-Client-Cert-*`.
const CERT_CLAIM_PREFIXES: [&[u8]; 9] = [
    b"client-cert",
    b"x-ssl-",
    b"ssl-client-",
    b"x-amzn-mtls-clientcert",
    b"x-client-cert",
    b"x-client-dn",
    b"x-client-s-dn",
    b"x-forwarded-tls-client-cert",
    b"cf-client-cert",
];

/// Whether `name` is one of [`PROXY_CLAIMS`] or begins one of [`CERT_CLAIM_PREFIXES`]
/// (any case, `_` read as `-`): dropped from proxied requests, keyed in the cache.
pub fn claimed_by_proxy(name: &[u8]) -> bool {
    by_length(name, &claims_by_length()[..])
        || CERT_CLAIM_PREFIXES
            .iter()
            .any(|p| name.len() >= p.len() && same_cgi_name(&name[..p.len()], p))
}

/// Headers this proxy writes itself (hop-by-hop ones are `HopByHop`'s), or drops as
/// [`claimed_by_proxy`]. The framing is
/// written for the body sent: Content-Length once from the parsed length, so duplicates
/// ("2, 2") are not passed on; Transfer-Encoding from the parsed codings, with the chunked
/// body relayed as sent. A client's spelling with `_` for `-` (`X_Forwarded_For`) is
/// dropped too: CGI, WSGI, PHP and Rack backends read it as the same HTTP_X_FORWARDED_FOR
/// as Portico's, and may take the client's (nginx drops every name with `_`).
pub fn written_by_proxy(name: &[u8]) -> bool {
    by_length(name, &own_by_length()[..]) || claimed_by_proxy(name)
}

const OWN: [&[u8]; 11] = [
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

/// Names by their length, so that a header is compared with the few names as long as it
/// (each of a request's headers is looked up once per proxied request).
type ByLength = Box<[Vec<&'static [u8]>]>;

fn by_length(name: &[u8], table: &[Vec<&'static [u8]>]) -> bool {
    table
        .get(name.len())
        .is_some_and(|names| names.iter().any(|n| same_cgi_name(n, name)))
}

fn index(names: &[&'static [u8]]) -> ByLength {
    let longest = names.iter().map(|n| n.len()).max().unwrap_or(0);
    let mut table = vec![Vec::new(); longest + 1];
    for n in names {
        table[n.len()].push(*n);
    }
    table.into_boxed_slice()
}

fn claims_by_length() -> &'static ByLength {
    static TABLE: std::sync::OnceLock<ByLength> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| index(&PROXY_CLAIMS))
}

fn own_by_length() -> &'static ByLength {
    static TABLE: std::sync::OnceLock<ByLength> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| index(&OWN))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_by_name_and_by_family() {
        for name in [
            "Forwarded",
            "X_Forwarded_Port",
            "x-forwarded-method",
            "X-Original-URI",
            "X-Forwarded-Client-Cert",
            "Client-Cert-Chain",
            "X-SSL-Client-CN",
            "X-Ssl-Cert",
            "SSL_CLIENT_S_DN",
            "X-Amzn-Mtls-Clientcert-Subject",
            "X-Client-Cert-Present",
            "X-Client-DN",
            "X-Forwarded-Tls-Client-Cert-Info",
            "Cf-Client-Cert-Sha256",
            "SCRIPT_NAME",
        ] {
            assert!(claimed_by_proxy(name.as_bytes()), "{name}");
            assert!(written_by_proxy(name.as_bytes()), "{name}");
        }
        for name in [
            "X-Client-Id",
            "X-Forwarded",
            "Client",
            "X-SSL",
            "Accept",
            "Cookie",
            "Host",
        ] {
            assert!(!claimed_by_proxy(name.as_bytes()), "{name}");
        }
        for name in ["Host", "X_Forwarded_For", "Content-Length", "traceparent"] {
            assert!(written_by_proxy(name.as_bytes()), "{name}");
        }
        assert!(!written_by_proxy(b"x-real-ip"), "its own rule");
    }
}
