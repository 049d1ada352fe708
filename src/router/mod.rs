//! Host + base path → API stage; method + path → route. Returns plain data (indices and
//! spans into the request buffer), allocates nothing per request.
//!
//! Addressing follows Amazon API Gateway: on the default endpoint a stage named
//! `$default` is served at the root and any other stage under `/{stage}/…`; a custom
//! domain (matched on the Host header, without port) uses its base-path mappings. The
//! longest matching base path wins; the root mapping, if any, takes the rest.

pub mod key;
pub mod routes;

use crate::http1::{Method, Span};
pub use key::{parse_route_key, RouteKey, Segment};
pub use routes::{RouteId, RouteTable};

/// An API and one of its stages, as indices into the snapshot's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageRef {
    pub api: u32,
    pub stage: u32,
}

/// Base paths of one endpoint (the default one, or a custom domain).
#[derive(Debug, Default)]
pub struct BasePaths {
    root: Option<StageRef>,
    /// Non-empty base paths without slashes at either end, grouped by their first
    /// segment (sorted, found by binary search), each group longest first. One list
    /// walked in full cost a request every stage's comparison, each rescanning its first
    /// segment: 5 ms for an 8 KB segment against 20,000 stages.
    by_first: Vec<(Box<[u8]>, Vec<Based>)>,
}

/// A base path and its stage.
type Based = (Box<[u8]>, StageRef);

impl BasePaths {
    /// `base` is "" for the root; later mappings of the same base replace earlier ones
    /// (validation reports clashes before this is built).
    pub fn insert(&mut self, base: &str, stage: StageRef) {
        let base = base.trim_matches('/');
        let Some(first) = base.split('/').find(|s| !s.is_empty()) else {
            self.root = Some(stage);
            return;
        };
        let at = match (self.by_first).binary_search_by(|(f, _)| (**f).cmp(first.as_bytes())) {
            Ok(at) => at,
            Err(at) => {
                self.by_first
                    .insert(at, (first.as_bytes().into(), Vec::new()));
                at
            }
        };
        let group = &mut self.by_first[at].1;
        group.retain(|(b, _)| **b != *base.as_bytes());
        group.push((base.as_bytes().into(), stage));
        group.sort_by_key(|(b, _)| std::cmp::Reverse(b.len()));
    }

    /// The stage for `path` and how many bytes of the path its base path takes: the
    /// longest base path that matches. Empty segments are skipped as routes skip them:
    /// `//prod/admin` is the `prod` stage's `/admin`, not the root stage's
    /// `//prod/admin`, and `/reports//daily/x` is `reports/daily`'s `/x`, not
    /// `reports`'s `/daily/x` (another API, whose policy may differ).
    fn select(&self, path: &[u8]) -> Option<(StageRef, usize)> {
        let at = skip_empty_segments(path, 0);
        if at < path.len() && !self.by_first.is_empty() {
            // The first segment as written, or without its `;` parameters (`segment_is`).
            let end = segment_end(path, at);
            let seg = &path[at..end];
            let bare = param_start(seg).map(|semi| &seg[..semi]);
            let mut best: Option<(usize, StageRef, usize)> = None;
            for first in std::iter::once(seg).chain(bare) {
                let Some(i) = find_sorted(&self.by_first, first) else {
                    continue;
                };
                let found = self.by_first[i].1.iter().find_map(|(base, stage)| {
                    // A base of one segment is the one just found (a group ends with it).
                    let taken = match base.len() == first.len() {
                        true => Some(end),
                        false => base_len(path, base),
                    };
                    Some((base.len(), *stage, taken?))
                });
                if let Some(found) = found.filter(|f| best.is_none_or(|b| f.0 > b.0)) {
                    best = Some(found);
                }
            }
            if let Some((_, stage, taken)) = best {
                return Some((stage, taken));
            }
        }
        self.root.map(|s| (s, 0))
    }
}

/// Where `key` is in `list`, sorted by its first field: a scan of a short list (most
/// configs have a few stages, a node a few literals: cheaper than a binary search's
/// ordered comparisons), a binary search of a long one.
#[inline]
pub(crate) fn find_sorted<T>(list: &[(Box<[u8]>, T)], key: &[u8]) -> Option<usize> {
    if list.len() <= 8 {
        list.iter().position(|(k, _)| **k == *key)
    } else {
        list.binary_search_by(|(k, _)| (**k).cmp(key)).ok()
    }
}

/// A domain key as requests name it: lower case, without the one trailing dot a key may
/// have (`a.example.` is `a.example`, as a Host's or SNI's dot is dropped). Kept, the
/// key's dot made a domain no request or handshake ever matched, though `check` took it.
pub fn bare_host(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// How many bytes of `path` base path `base` takes, matched segment by segment with
/// empty segments skipped; None when it is not `path`'s base path. An escaped separator
/// ends a segment here as in routes (`/reports%2Fdaily/x` is `reports/daily`'s `/x`),
/// so what is left may start with one (`%2Fx`).
fn base_len(path: &[u8], base: &[u8]) -> Option<usize> {
    let mut at = 0;
    for segment in base.split(|&b| b == b'/').filter(|s| !s.is_empty()) {
        at = skip_empty_segments(path, at);
        let end = segment_end(path, at);
        if !segment_is(&path[at..end], segment) {
            return None;
        }
        at = end;
    }
    Some(at)
}

/// How many bytes the segment separator at `path[i]` takes: 1 for `/`, 3 for `%2F` or
/// `%5C` (either case), 0 when there is none. API Gateway splits the path at an encoded
/// slash, nginx decodes one before matching a location, and WSGI servers, Go's `net/http`
/// and others hand their routers the decoded path; IIS and Undertow read `\` as `/`. Kept
/// inside its segment, `/admin%2Fsecret` missed `/admin/{proxy+}`'s key or authorizer and
/// reached a catch-all, whose backend served its `/admin/secret`. The backend still gets
/// the escape as sent (as it gets a segment's `;` parameters).
#[inline]
pub(crate) fn separator_len(path: &[u8], i: usize) -> usize {
    match path[i..] {
        [b'/', ..] => 1,
        [b'%', b'2', b'F' | b'f', ..] | [b'%', b'5', b'C' | b'c', ..] => 3,
        _ => 0,
    }
}

/// Where the segment starting at `from` ends: at the next separator, or the path's end.
pub(crate) fn segment_end(path: &[u8], from: usize) -> usize {
    memchr::memchr2_iter(b'/', b'%', &path[from..])
        .map(|i| from + i)
        .find(|&i| separator_len(path, i) > 0)
        .unwrap_or(path.len())
}

/// Where the next segment with a name starts, from `pos`: past separators and past
/// segments that are only `;` parameters (Tomcat, Jetty and Spring drop those parameters,
/// and an empty segment with them: `/;x/admin` and `/admin/;` are their `/admin`).
pub(crate) fn skip_empty_segments(path: &[u8], mut pos: usize) -> usize {
    loop {
        while pos < path.len() {
            match separator_len(path, pos) {
                0 => break,
                n => pos += n,
            }
        }
        let rest = &path[pos..];
        let params = rest.first() == Some(&b';')
            || (rest.len() >= 3 && rest[0] == b'%' && rest[1] == b'3' && rest[2] | 0x20 == b'b');
        if !params {
            return pos;
        }
        pos = segment_end(path, pos);
    }
}

/// Whether a request's path segment is the literal segment `lit`: as written, or with
/// its `;` parameters dropped. Tomcat, Jetty and Spring drop them (`/admin;jsessionid=1`
/// is their `/admin`), so routed as the text `admin;x`, such a request missed an
/// `/admin` route's key or authorizer and reached a catch-all that passed it on.
pub(crate) fn segment_is(seg: &[u8], lit: &[u8]) -> bool {
    seg == lit || param_start(seg).is_some_and(|semi| seg[..semi] == *lit)
}

/// Where a segment's `;` parameters begin: at its first `;`, or at its first `%3B`
/// (`%3b`), which a proxy in front that decodes the path (nginx's `proxy_pass` with a URI
/// part) hands on as a `;`: `/admin%3B` is then Tomcat's `/admin`. None: no parameters.
pub(crate) fn param_start(seg: &[u8]) -> Option<usize> {
    memchr::memchr2_iter(b';', b'%', seg).find(|&i| {
        seg[i] == b';'
            || (seg.get(i + 1) == Some(&b'3') && matches!(seg.get(i + 2), Some(b'b' | b'B')))
    })
}

/// The form a path segment is compared with route literals in: every byte but an
/// unreserved character, `;` (parameters, see [`segment_is`]) and an escape's `%`
/// percent-encoded, escapes' hex digits in upper case (as requests' are by then).
/// Backends decode a path before routing it, so `a:b` and `a%3Ab`, `x|y` and `x%7Cy`
/// are one resource to them; compared as sent, a route written with one spelling was
/// stepped around by the other through a less guarded route (a catch-all). A segment
/// already in this form (nearly all) is returned as it is, without a copy.
pub(crate) fn route_form<'a>(seg: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"-._~;%".contains(&b);
    if seg.iter().all(|&b| plain(b)) {
        return seg;
    }
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    scratch.clear();
    for &b in seg {
        if plain(b) {
            scratch.push(b);
        } else {
            scratch.extend_from_slice(&[
                b'%',
                DIGITS[usize::from(b >> 4)],
                DIGITS[usize::from(b & 0xf)],
            ]);
        }
    }
    scratch
}

/// What the router found for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    pub stage: StageRef,
    pub route: RouteId,
    /// The path after the base path, as a span of the request buffer ("" means "/").
    pub rest: Span,
    /// The Host named a custom domain (rather than the default endpoint).
    pub custom_domain: bool,
}

#[derive(Debug, Default)]
pub struct Router {
    default_endpoint: BasePaths,
    /// Custom domains: lower-case host name → its mappings.
    domains: Vec<(Box<[u8]>, BasePaths)>,
    /// Route tables, one per API, indexed like the snapshot's APIs.
    apis: Vec<RouteTable>,
}

impl Router {
    pub fn new(apis: Vec<RouteTable>) -> Self {
        Router {
            apis,
            ..Router::default()
        }
    }

    pub fn default_endpoint_mut(&mut self) -> &mut BasePaths {
        &mut self.default_endpoint
    }

    pub fn add_domain(&mut self, host: &str, paths: BasePaths) {
        self.domains
            .push((bare_host(host).into_bytes().into(), paths));
    }

    /// `path` is the request path as a span of `buf`; `host` the Host header value.
    pub fn route(
        &self,
        buf: &[u8],
        host: Option<&[u8]>,
        method: Method,
        path: Span,
        params: &mut Vec<Span>,
    ) -> Option<Matched> {
        let (stage, rest, custom_domain) = self.select_stage(buf, host, path)?;
        let table = self.apis.get(stage.api as usize)?;
        let route = table.match_path(method, rest.get(buf), rest.start, params)?;
        Some(Matched {
            stage,
            route,
            rest,
            custom_domain,
        })
    }

    /// The stage a request is addressed to, whether or not one of its routes matches
    /// (CORS preflights are answered per API, route or not).
    pub fn stage_for(&self, buf: &[u8], host: Option<&[u8]>, path: Span) -> Option<StageRef> {
        self.select_stage(buf, host, path).map(|(stage, ..)| stage)
    }

    /// The stage a path selects, the path after its base path, and whether the Host
    /// named a custom domain (WebSocket APIs: their stages take every request).
    pub fn select_stage(
        &self,
        buf: &[u8],
        host: Option<&[u8]>,
        path: Span,
    ) -> Option<(StageRef, Span, bool)> {
        let domain = host.and_then(|h| self.domain(h));
        let endpoint = domain.unwrap_or(&self.default_endpoint);
        let bytes = path.get(buf);
        // `OPTIONS *` asks about the server, not a resource: no route answers it.
        if bytes.first().is_some_and(|&b| b != b'/') {
            return None;
        }
        let (stage, taken) = endpoint.select(bytes)?;
        let rest = Span {
            start: path.start + taken as u32,
            end: path.end,
        };
        Some((stage, rest, domain.is_some()))
    }

    fn domain(&self, host: &[u8]) -> Option<&BasePaths> {
        if self.domains.is_empty() {
            return None;
        }
        // `example.com.` is the same name (absolute form), as nginx strips the dot.
        let name = strip_port(host);
        let name = name.strip_suffix(b".").unwrap_or(name);
        let exact = self
            .domains
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(name));
        // A wildcard domain `*.example.com` takes one label in front of example.com, as
        // a wildcard certificate does; an exact name wins over it.
        exact
            .or_else(|| {
                // Never an empty label (`.example.com`), as no certificate takes one.
                let dot = name.iter().position(|&b| b == b'.').filter(|&d| d > 0)?;
                let parent = &name[dot + 1..];
                self.domains.iter().find(|(d, _)| {
                    d.strip_prefix(b"*.")
                        .is_some_and(|p| p.eq_ignore_ascii_case(parent))
                })
            })
            .map(|(_, p)| p)
    }
}

/// The domain name a Host header value gives events and `$context.domainName`: without
/// its port, and without the trailing dot of a fully qualified name (which chose the same
/// domain).
pub fn domain_name(host: &[u8]) -> &[u8] {
    let name = strip_port(host);
    name.strip_suffix(b".").unwrap_or(name)
}

/// The host of a Host header value, without its port (IPv6 literals keep their brackets).
pub fn strip_port(host: &[u8]) -> &[u8] {
    if host.first() == Some(&b'[') {
        // IPv6 literal: keep up to the closing bracket.
        return host
            .iter()
            .position(|&b| b == b']')
            .map_or(host, |i| &host[..=i]);
    }
    host.iter()
        .rposition(|&b| b == b':')
        .map_or(host, |i| &host[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        let mut shop = RouteTable::default();
        shop.insert(&parse_route_key("GET /users/{id}").unwrap(), 0);
        shop.insert(&parse_route_key("$default").unwrap(), 1);
        let mut other = RouteTable::default();
        other.insert(&parse_route_key("ANY /{proxy+}").unwrap(), 0);
        let mut r = Router::new(vec![shop, other]);
        let ep = r.default_endpoint_mut();
        ep.insert("", StageRef { api: 0, stage: 0 });
        ep.insert("prod", StageRef { api: 0, stage: 1 });
        ep.insert("prod/v2", StageRef { api: 1, stage: 0 });
        let mut dom = BasePaths::default();
        dom.insert("v1", StageRef { api: 1, stage: 0 });
        r.add_domain("API.example.com", dom);
        r
    }

    fn go(r: &Router, host: &str, path: &str) -> Option<(StageRef, RouteId, String)> {
        let buf = path.as_bytes();
        let span = Span {
            start: 0,
            end: buf.len() as u32,
        };
        let mut params = Vec::new();
        r.route(buf, Some(host.as_bytes()), Method::Get, span, &mut params)
            .map(|m| {
                (
                    m.stage,
                    m.route,
                    String::from_utf8(m.rest.get(buf).to_vec()).unwrap(),
                )
            })
    }

    /// Past eight first segments (a binary search, not a scan): the same choices.
    #[test]
    fn many_base_paths_choose_as_few_do() {
        let mut ep = BasePaths::default();
        let s = |stage| StageRef { api: 0, stage };
        for i in 0..30 {
            ep.insert(&format!("s{i}"), s(i));
        }
        ep.insert("s7/v2", s(100));
        ep.insert("", s(200));
        for (path, stage, taken) in [
            ("/s13/a", 13, 4),
            ("/s7/a", 7, 3),
            ("/s7;x/v2/a", 100, 8),
            ("//s7/v2", 100, 7),
            ("/s7%2Fv2/a", 100, 8),
            ("/s29;j=1", 29, 8),
            ("/s30/a", 200, 0),
            ("/", 200, 0),
        ] {
            assert_eq!(
                ep.select(path.as_bytes()),
                Some((s(stage), taken)),
                "{path}"
            );
        }
    }

    #[test]
    fn stages_by_base_path_longest_first() {
        let r = router();
        let s = |api, stage| StageRef { api, stage };
        assert_eq!(
            go(&r, "x", "/users/1"),
            Some((s(0, 0), 0, "/users/1".into()))
        );
        assert_eq!(
            go(&r, "x", "/prod/users/1"),
            Some((s(0, 1), 0, "/users/1".into()))
        );
        assert_eq!(go(&r, "x", "/prod"), Some((s(0, 1), 1, "".into())));
        assert_eq!(go(&r, "x", "/prod/v2/a"), Some((s(1, 0), 0, "/a".into())));
        // Empty segments are skipped inside a base path too, as in routes: not prod's
        // /v2/a (another API).
        assert_eq!(go(&r, "x", "/prod//v2/a"), Some((s(1, 0), 0, "/a".into())));
        assert_eq!(
            go(&r, "x", "//prod///v2//a"),
            Some((s(1, 0), 0, "//a".into()))
        );
        assert_eq!(go(&r, "x", "/prod/v2x/a").map(|m| m.0), Some(s(0, 1)));
        // A segment's `;` parameters are dropped, as Tomcat and Jetty drop them.
        assert_eq!(
            go(&r, "x", "/prod;a/v2;b/a"),
            Some((s(1, 0), 0, "/a".into()))
        );
        // And a segment of parameters only is skipped, as an empty one is.
        assert_eq!(
            go(&r, "x", "/;x/prod/;/v2/a"),
            Some((s(1, 0), 0, "/a".into()))
        );
        // An encoded slash or backslash ends a segment here too: what is left starts
        // with it, as sent.
        for (path, rest) in [
            ("/prod%2Fv2/a", "/a"),
            ("/prod%2fv2%2Fa", "%2Fa"),
            ("/prod%5Cv2%5Cb", "%5Cb"),
            ("/%2Fprod%2Fv2/a", "/a"),
        ] {
            assert_eq!(go(&r, "x", path), Some((s(1, 0), 0, rest.into())), "{path}");
        }
        assert_eq!(
            go(&r, "x", "/prod%2Fusers%2F1"),
            Some((s(0, 1), 0, "%2Fusers%2F1".into()))
        );
        // "production" is not under the "prod" base path: the root stage takes it.
        assert_eq!(
            go(&r, "x", "/production/x"),
            Some((s(0, 0), 1, "/production/x".into()))
        );
    }

    #[test]
    fn custom_domain_uses_its_mappings() {
        let r = router();
        let s = StageRef { api: 1, stage: 0 };
        assert_eq!(
            go(&r, "api.example.com:8080", "/v1/a/b"),
            Some((s, 0, "/a/b".into()))
        );
        assert_eq!(go(&r, "api.example.com", "/users/1"), None);
        // A key written with its trailing dot (and in capitals) is the same name.
        let mut r = router();
        let mut paths = BasePaths::default();
        paths.insert("", s);
        r.add_domain("Dot.Example.", paths);
        for host in ["dot.example", "dot.example.", "DOT.example:443"] {
            assert_eq!(go(&r, host, "/x").map(|m| m.0), Some(s), "{host}");
        }
    }

    #[test]
    fn wildcard_domain_takes_one_label_and_exact_names_win() {
        let mut r = router();
        let mut wild = BasePaths::default();
        wild.insert("", StageRef { api: 1, stage: 0 });
        r.add_domain("*.example.com", wild);
        let s = StageRef { api: 1, stage: 0 };
        assert_eq!(
            go(&r, "Tenant.example.com:443", "/x"),
            Some((s, 0, "/x".into()))
        );
        // The exact domain keeps its own mappings.
        assert_eq!(go(&r, "api.example.com", "/x"), None);
        // Two labels deep, or the bare parent: the default endpoint.
        let root = StageRef { api: 0, stage: 0 };
        assert_eq!(
            go(&r, "a.b.example.com", "/x"),
            Some((root, 1, "/x".into()))
        );
        assert_eq!(go(&r, "example.com", "/x"), Some((root, 1, "/x".into())));
        // No empty label: `.example.com` is no name under the wildcard.
        assert_eq!(go(&r, ".example.com", "/x"), Some((root, 1, "/x".into())));
    }
}
