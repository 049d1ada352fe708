//! The cache settings as the workers use them (compiled once per config), and the rules
//! that decide whether a request may use the cache and a response may be stored.

use std::hash::{Hash, Hasher};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use crate::config::auth::{token_source, Authorizer, IdentitySource, TokenSource};
use crate::config::compile::{IntegrationRt, RouteRt};
use crate::config::model::{self, ClientInvalidation};
use crate::http1::parse::{BodyKind, Method};
use crate::http1::RequestHead;

/// API Gateway's item limit: a larger body is relayed but not stored.
pub const MAX_ITEM_BYTES: usize = 1024 * 1024;

/// A stage whose `cache` is set.
#[derive(Debug)]
pub struct StageCacheRt {
    /// Bytes for the whole stage; each worker gets an equal share.
    pub capacity: u64,
    /// Bumped by [`super::flush`]; a worker that sees a new value drops its entries.
    pub flush: Arc<AtomicU64>,
    /// Indexed by route id; None: the route is not cached (no `cache`, or ttl 0).
    pub routes: Vec<Option<RouteCacheRt>>,
    /// The tags of `routes`: an entry made under one of them belongs to a live route and
    /// is never dropped for another route's lookup (`Store::get`).
    pub tags: Box<[u64]>,
}

#[derive(Debug)]
pub struct RouteCacheRt {
    pub ttl: Duration,
    pub key: Vec<KeyPart>,
    pub client_invalidation: ClientInvalidation,
    pub methods: MethodSet,
    pub statuses: StatusSet,
    /// The key accounts for the `Authorization` header: it lists `header.Authorization`,
    /// or the route's authorizer reads the caller from it (and [`Caller`] puts the caller
    /// in the key). Otherwise requests that carry credentials bypass the cache: one
    /// caller's answer must not reach another.
    pub keyed_by_authorization: bool,
    /// Who the route's authorizer says the caller is; part of the key.
    pub caller: Caller,
    /// Request headers (lower case) a backend's `Vary` may name without a stored answer
    /// reaching a request it was not made for: those the key holds, and `authorization`
    /// when the key names the caller by it. Not `origin` on a CORS API, though a hit's
    /// CORS headers are written for its own request: a backend saying `Vary: Origin` may
    /// vary its body by it. `accept-encoding` is judged by the response's
    /// Content-Encoding instead ([`super::Codings`]).
    pub vary_ok: Arc<[Box<str>]>,
    /// A fingerprint of everything that shapes this route's responses in this stage (the
    /// route's config, the stage's variables, and the targets of the upstream its
    /// integration reaches). Entries carry the tag they were stored under, so after a
    /// reload that changed the route or pointed its upstream at other backends its old
    /// entries are misses, while the entries of unchanged routes carry over; stamped with
    /// the epoch of the route's run of unchanged, cached configs (`super::epochs`).
    pub tag: u64,
}

/// How the key names the caller on a route with an authorizer, so that one principal's
/// answer is never served to another. The authorizer runs before the cache, so a request
/// that reaches the lookup has been let in as this caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The route has no authorizer.
    Anyone,
    /// A JWT authorizer: the token, as read from its identity source.
    Jwt(TokenSource),
    /// A Lambda authorizer: its identity-source values (what its verdicts are cached by).
    Lambda,
    /// `authorization: iam`: the access key id the request was signed with.
    Iam,
}

/// One request parameter that splits entries, beside method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// Index into the route's captured parameters.
    Path(usize),
    Query(Box<[u8]>),
    Header(Box<str>),
}

/// Methods as a bit set over [`Method`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MethodSet(u16);

impl MethodSet {
    pub fn contains(self, m: Method) -> bool {
        self.0 & (1 << m as u16) != 0
    }

    fn insert(&mut self, m: Method) {
        self.0 |= 1 << m as u16;
    }
}

/// Statuses 0–639 as a bit set: a copyable value a capture can carry without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusSet([u64; 10]);

impl StatusSet {
    pub fn of(statuses: &[u16]) -> StatusSet {
        let mut set = StatusSet([0; 10]);
        for &s in statuses {
            if let Some(word) = set.0.get_mut(usize::from(s) / 64) {
                *word |= 1 << (s % 64);
            }
        }
        set
    }

    pub fn contains(&self, s: u16) -> bool {
        self.0
            .get(usize::from(s) / 64)
            .is_some_and(|w| w & (1 << (s % 64)) != 0)
    }
}

/// Compiles a stage's cache settings; None when the stage has no `cache`.
/// `integrations` are the stage's, by route; `upstreams` the config's (an http
/// integration's `upstream` indexes them).
pub fn compile_stage(
    api: &model::Api,
    (api_name, stage_name): (&str, &str),
    stage: &model::Stage,
    routes: &[RouteRt],
    integrations: &[IntegrationRt],
    upstreams: &[(String, model::Upstream)],
) -> Option<StageCacheRt> {
    let capacity = stage.cache.as_ref()?.capacity;
    let mut routes = api
        .routes
        .iter()
        .zip(routes)
        .enumerate()
        .map(|(id, ((_, route), rt))| {
            let cache = route.cache.as_ref().filter(|c| !c.ttl.is_zero())?;
            // The backends that answer: the route's config names its upstream, not
            // where that upstream points (a reload may move it to other targets).
            let backend = match integrations.get(id) {
                Some(IntegrationRt::Http(h)) => upstreams
                    .get(h.upstream)
                    .map(|(_, u)| format!("{:?} {} {:?}", u.targets, u.https, u.tls)),
                _ => None,
            };
            compile_route(cache, api, route, rt, stage, backend.as_deref())
        })
        .collect::<Vec<_>>();
    let cached: Vec<(&str, u64)> = (api.routes.iter().zip(&routes))
        .filter_map(|((key, _), r)| Some((key.as_str(), r.as_ref()?.tag)))
        .collect();
    let mut tags = super::epochs::stamp(api_name, stage_name, &cached).into_iter();
    for r in routes.iter_mut().flatten() {
        r.tag = tags.next().expect("one tag per cached route");
    }
    Some(StageCacheRt {
        capacity,
        flush: super::flush::counter(api_name, stage_name),
        tags: routes.iter().flatten().map(|r| r.tag).collect(),
        routes,
    })
}

/// Who the route's authorizer lets in, as the key names them; None when a caller can't
/// be named (a Lambda authorizer without identity sources decides on anything in the
/// request), and the route is then not cached.
fn caller(api: &model::Api, route: &model::Route) -> Option<(Caller, bool)> {
    if route.auth.iam {
        // The signature is in Authorization (or the query); the key names its signer.
        return Some((Caller::Iam, true));
    }
    let Some(name) = &route.auth.authorizer else {
        return Some((Caller::Anyone, false));
    };
    match api
        .authorizers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, a)| a)
    {
        Some(Authorizer::Jwt(j)) => {
            // Validation refuses any other source.
            let source = token_source(&j.identity_source).ok()?;
            let in_authorization = source == TokenSource::Header("authorization".into());
            Some((Caller::Jwt(source), in_authorization))
        }
        Some(Authorizer::Lambda(l)) => {
            let sources: Vec<_> = l
                .identity_source
                .iter()
                .filter_map(|s| IdentitySource::parse(s).ok())
                .collect();
            let in_authorization = sources
                .iter()
                .any(|s| matches!(s, IdentitySource::Header(h) if h == "authorization"));
            (!sources.is_empty()).then_some((Caller::Lambda, in_authorization))
        }
        // An unknown authorizer fails every request before the cache.
        None => None,
    }
}

fn compile_route(
    cache: &model::RouteCache,
    api: &model::Api,
    route: &model::Route,
    rt: &RouteRt,
    stage: &model::Stage,
    backend: Option<&str>,
) -> Option<RouteCacheRt> {
    let (caller, authorization_is_caller) = caller(api, route)?;
    let key = cache
        .key
        .iter()
        .filter_map(|k| match k.split_once('.')? {
            ("path", name) => rt
                .param_names
                .iter()
                .position(|n| n == name)
                .map(KeyPart::Path),
            ("querystring", name) => Some(KeyPart::Query(name.as_bytes().into())),
            ("header", name) => Some(KeyPart::Header(name.to_ascii_lowercase().into())),
            _ => None,
        })
        .collect::<Vec<_>>();
    let mut methods = MethodSet(0);
    if cache.methods.is_empty() {
        methods.insert(Method::Get);
    }
    for m in &cache.methods {
        methods.insert(Method::from_bytes(m.as_bytes()));
    }
    let statuses = if cache.statuses.is_empty() {
        StatusSet::of(&[200])
    } else {
        StatusSet::of(&cache.statuses)
    };
    // DefaultHasher::new() has fixed keys: tags of equal configs are equal across the
    // generations of one process, which is all a tag is compared against.
    let mut h = std::hash::DefaultHasher::new();
    rt.key.hash(&mut h);
    format!("{route:?}").hash(&mut h);
    format!("{:?}", stage.variables).hash(&mut h);
    backend.hash(&mut h);
    let keyed_by_authorization = authorization_is_caller
        || key
            .iter()
            .any(|k| matches!(k, KeyPart::Header(h) if h.as_ref() == "authorization"));
    let vary_ok = key
        .iter()
        .filter_map(|k| match k {
            KeyPart::Header(h) => Some(h.clone()),
            _ => None,
        })
        .chain(keyed_by_authorization.then(|| "authorization".into()))
        .collect();
    Some(RouteCacheRt {
        ttl: cache.ttl,
        vary_ok,
        keyed_by_authorization,
        caller,
        key,
        client_invalidation: cache.client_invalidation,
        methods,
        statuses,
        tag: h.finish(),
    })
}

/// The method an entry is kept under: a HEAD is answered from the GET entry.
pub fn entry_method(m: Method) -> Method {
    match m {
        Method::Head => Method::Get,
        m => m,
    }
}

/// Whether this request's response may fill an entry. A HEAD response has no body to
/// store. A body on a method whose body HTTP gives no meaning (a "fat GET": GET, DELETE,
/// OPTIONS with content) still goes to the backend, which may answer by it while the key
/// leaves it out: one such request filled the entry every plain GET then got (nginx
/// stores it too; Varnish drops the body). It may be answered from the cache; it does
/// not fill it. POST, PUT and PATCH bodies are what those requests are, so a route that
/// lists them in `methods` caches them as configured.
pub fn may_fill(head: &RequestHead) -> bool {
    match head.method {
        Method::Head => false,
        Method::Post | Method::Put | Method::Patch => true,
        _ => head.body == BodyKind::Empty,
    }
}

/// Whether the client asked for a fresh copy (`Cache-Control: max-age=0`) and this route
/// lets it. For `require_api_key`, `valid_key` says whether the request presents a known
/// API key (asked only when it matters).
pub fn client_refresh(
    rules: &RouteCacheRt,
    head: &RequestHead,
    buf: &[u8],
    valid_key: impl FnOnce() -> bool,
) -> bool {
    // Most routes ignore the header: decide that before looking at the headers.
    if rules.client_invalidation == ClientInvalidation::Ignore {
        return false;
    }
    let asked = head.headers.iter().any(|h| {
        h.name.get(buf).eq_ignore_ascii_case(b"cache-control")
            && directives(h.value.get(buf)).any(|(name, value)| {
                // delta-seconds: `00` is 0 too (RFC 9111 §1.2.2).
                name.eq_ignore_ascii_case(b"max-age")
                    && value.is_some_and(|v| !v.is_empty() && v.iter().all(|&b| b == b'0'))
            })
    });
    asked && (rules.client_invalidation == ClientInvalidation::Allow || valid_key())
}

/// Cache-Control directives: `name` or `name=value` (quotes kept off the value).
pub fn directives(v: &[u8]) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
    v.split(|&b| b == b',').filter_map(|d| {
        let d = d.trim_ascii();
        if d.is_empty() {
            return None;
        }
        Some(match d.iter().position(|&b| b == b'=') {
            Some(i) => {
                let value = d[i + 1..].trim_ascii();
                let value = value
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(value);
                (d[..i].trim_ascii(), Some(value))
            }
            None => (d, None),
        })
    })
}

/// Whether a response header rules out storing the response: `set-cookie` or the
/// obsolete `set-cookie2` (RFC 2965; one client's session must never reach another),
/// `Cache-Control: no-store | private | no-cache`, or
/// `Vary: *`. API Gateway stores these; Portico does not.
pub fn forbids_storing(name: &[u8], value: &[u8]) -> bool {
    if name.eq_ignore_ascii_case(b"set-cookie") || name.eq_ignore_ascii_case(b"set-cookie2") {
        return true;
    }
    if name.eq_ignore_ascii_case(b"cache-control") {
        return directives(value).any(|(d, _)| {
            [&b"no-store"[..], b"private", b"no-cache"]
                .iter()
                .any(|n| d.eq_ignore_ascii_case(n))
        });
    }
    name.eq_ignore_ascii_case(b"vary")
        && value.split(|&b| b == b',').any(|v| v.trim_ascii() == b"*")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_and_validate_text;

    #[test]
    fn response_headers_that_forbid_storing() {
        assert!(forbids_storing(b"Set-Cookie", b"a=b"));
        assert!(forbids_storing(b"Set-Cookie2", b"a=b; Version=1"));
        assert!(forbids_storing(b"cache-control", b"public, No-Store"));
        assert!(forbids_storing(
            b"Cache-Control",
            b"private=\"x\", max-age=60"
        ));
        assert!(forbids_storing(b"cache-control", b"no-cache"));
        assert!(forbids_storing(b"vary", b"accept, *"));
        assert!(!forbids_storing(b"cache-control", b"public, max-age=60"));
        assert!(!forbids_storing(b"vary", b"accept-encoding"));
        assert!(!forbids_storing(b"x-private", b"no-store"));
    }

    #[test]
    fn status_and_method_sets() {
        let s = StatusSet::of(&[200, 404, 599]);
        assert!(s.contains(200) && s.contains(404) && s.contains(599));
        assert!(!s.contains(201) && !s.contains(0) && !s.contains(999));
        let mut m = MethodSet(0);
        m.insert(Method::Get);
        assert!(m.contains(Method::Get) && !m.contains(Method::Post));
        assert_eq!(entry_method(Method::Head), Method::Get);
    }

    fn stage_cache(yaml_route_cache: &str) -> StageCacheRt {
        let yaml = format!(
            r#"upstreams:
  u: {{ targets: ["127.0.0.1:9"] }}
apis:
  shop:
    stages:
      prod: {{ cache: {{ capacity: 1MiB }} }}
    routes:
      "GET /items/{{id}}":
        integration: {{ type: http, upstream: u }}
        cache: {yaml_route_cache}
      "GET /other":
        integration: {{ type: http, upstream: u }}
"#
        );
        let cfg = load_and_validate_text(&yaml).unwrap_or_else(|e| panic!("{e}"));
        let mut snap = crate::config::compile::compile(&cfg);
        snap.apis[0].stages[0]
            .cache
            .take()
            .expect("the stage has a cache")
    }

    #[test]
    fn compiles_keys_methods_statuses_and_defaults() {
        let c = stage_cache(
            "{ ttl: 10s, key: [path.id, querystring.lang, header.Accept], client_invalidation: allow, methods: [GET, POST], statuses: [200, 404] }",
        );
        assert_eq!(c.capacity, 1 << 20);
        assert!(c.routes[1].is_none(), "a route without cache settings");
        let r = c.routes[0].as_ref().unwrap();
        assert_eq!(r.ttl, Duration::from_secs(10));
        assert_eq!(
            r.key,
            [
                KeyPart::Path(0),
                KeyPart::Query((*b"lang").into()),
                KeyPart::Header("accept".into())
            ]
        );
        assert_eq!(r.client_invalidation, ClientInvalidation::Allow);
        assert!(r.methods.contains(Method::Post) && !r.methods.contains(Method::Put));
        assert!(r.statuses.contains(404) && !r.statuses.contains(201));

        let d = stage_cache("{}");
        let r = d.routes[0].as_ref().unwrap();
        assert_eq!(r.ttl, Duration::from_secs(300), "API Gateway's default");
        assert!(r.methods.contains(Method::Get) && !r.methods.contains(Method::Post));
        assert!(r.statuses.contains(200) && !r.statuses.contains(404));
        assert_eq!(r.client_invalidation, ClientInvalidation::Ignore);
        assert!(!r.keyed_by_authorization);
        let auth = stage_cache("{ key: [header.Authorization] }");
        assert!(auth.routes[0].as_ref().unwrap().keyed_by_authorization);
        assert!(
            stage_cache("{ ttl: 0s }").routes[0].is_none(),
            "ttl 0 is off"
        );
        assert_eq!(
            stage_cache("{ ttl: 10s }").routes[0].as_ref().unwrap().tag,
            stage_cache("{ ttl: 10s }").routes[0].as_ref().unwrap().tag
        );
        assert_ne!(
            stage_cache("{ ttl: 10s }").routes[0].as_ref().unwrap().tag,
            stage_cache("{ ttl: 11s }").routes[0].as_ref().unwrap().tag
        );
    }

    #[test]
    fn routes_with_an_authorizer_key_on_the_caller() {
        let yaml = r#"upstreams:
  u: { targets: ["127.0.0.1:9"] }
iam:
  principals:
    p: { access_key_id: AKIAP, secret_access_key: s, allow: ["*"] }
apis:
  shop:
    authorizers:
      jwt: { type: jwt, issuer: "https://idp.example", audience: [a] }
      jwt-q: { type: jwt, issuer: "https://idp.example", audience: [a], identity_source: $request.querystring.t }
      fn: { type: lambda, url: "http://127.0.0.1:9/", identity_source: [$request.header.X-Token] }
      fn-auth: { type: lambda, url: "http://127.0.0.1:9/", identity_source: [$request.header.Authorization, $context.identity.sourceIp] }
      fn-none: { type: lambda, url: "http://127.0.0.1:9/" }
    stages:
      prod: { cache: { capacity: 1MiB } }
    routes:
      "GET /open": { integration: { type: http, upstream: u }, cache: {} }
      "GET /jwt": { authorizer: jwt, integration: { type: http, upstream: u }, cache: {} }
      "GET /jwt-q": { authorizer: jwt-q, integration: { type: http, upstream: u }, cache: {} }
      "GET /fn": { authorizer: fn, integration: { type: http, upstream: u }, cache: {} }
      "GET /fn-auth": { authorizer: fn-auth, integration: { type: http, upstream: u }, cache: {} }
      "GET /fn-none": { authorizer: fn-none, integration: { type: http, upstream: u }, cache: {} }
      "GET /iam": { authorization: iam, integration: { type: http, upstream: u }, cache: {} }
"#;
        let cfg = load_and_validate_text(yaml).unwrap_or_else(|e| panic!("{e}"));
        let snap = crate::config::compile::compile(&cfg);
        let routes = &snap.apis[0].stages[0].cache.as_ref().unwrap().routes;
        let got: Vec<_> = routes
            .iter()
            .map(|r| {
                r.as_ref()
                    .map(|r| (r.caller.clone(), r.keyed_by_authorization))
            })
            .collect();
        assert_eq!(
            got,
            [
                Some((Caller::Anyone, false)),
                Some((
                    Caller::Jwt(TokenSource::Header("authorization".into())),
                    true
                )),
                Some((Caller::Jwt(TokenSource::Query("t".into())), false)),
                Some((Caller::Lambda, false)),
                Some((Caller::Lambda, true)),
                None,
                Some((Caller::Iam, true)),
            ]
        );
    }

    #[test]
    fn bad_settings_are_reported_with_their_path() {
        let yaml = r#"apis:
  shop:
    stages: { prod: {} }
    routes:
      "GET /x":
        integration: { type: mock }
        cache: { ttl: 2h, client_invalidation: sometimes, methods: [GET, FETCH], statuses: [200, 100, 304, 70000] }
"#;
        let errors = load_and_validate_text(yaml).unwrap_err().to_string();
        let p = r#"apis.shop.routes."GET /x".cache"#;
        for want in [
            format!("{p}.client_invalidation: expected one of ignore, allow, require_api_key, got \"sometimes\""),
            format!("{p}.statuses[3]: expected an HTTP status, got 70000"),
        ] {
            assert!(errors.contains(&want), "{want}\nin\n{errors}");
        }
        let yaml = yaml
            .replace("client_invalidation: sometimes, ", "")
            .replace(", 70000", "");
        let errors = load_and_validate_text(&yaml).unwrap_err().to_string();
        for want in [
            format!("{p}.ttl: at most 3600s, got 7200s"),
            format!("{p}.methods[1]: expected one of GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, got \"FETCH\""),
            format!("{p}.statuses[1]: must be a final status 200–599, got 100"),
            format!("{p}.statuses[2]: 304 answers one client's range or conditional request and is never cached"),
        ] {
            assert!(errors.contains(&want), "{want}\nin\n{errors}");
        }
    }

    fn parsed(raw: &[u8]) -> RequestHead {
        let mut head = RequestHead::new();
        assert!(crate::http1::parse_request(raw, &Default::default(), &mut head).unwrap());
        head
    }

    #[test]
    fn requests_that_fill_entries() {
        let fills = |raw: &str| may_fill(&parsed(raw.as_bytes()));
        let get = |headers: &str| format!("GET /x HTTP/1.1\r\nHost: a\r\n{headers}\r\n");
        assert!(fills(&get("")));
        assert!(fills(&get("Content-Length: 0\r\n")));
        assert!(!fills("HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n"));
        for fat in [
            get("Content-Length: 4\r\n"),
            get("Transfer-Encoding: chunked\r\n"),
            "DELETE /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n".into(),
        ] {
            assert!(!fills(&fat), "{fat}");
        }
        assert!(fills(
            "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n"
        ));
    }

    #[test]
    fn client_invalidation_modes() {
        let mut rules = stage_cache("{}").routes[0].take().unwrap();
        let fresh = b"GET /x HTTP/1.1\r\nHost: a\r\nCache-Control: no-transform, max-age=0\r\n\r\n";
        let keyed =
            b"GET /x HTTP/1.1\r\nHost: a\r\ncache-control: max-age=0\r\nx-api-key: k1\r\n\r\n";
        let plain = b"GET /x HTTP/1.1\r\nHost: a\r\ncache-control: max-age=10\r\n\r\n";
        let zeros = b"GET /x HTTP/1.1\r\nHost: a\r\ncache-control: max-age=00\r\n\r\n";
        // Here "k1" is the only known key.
        let check = |rules: &RouteCacheRt, raw: &[u8]| {
            let head = parsed(raw);
            client_refresh(rules, &head, raw, || {
                head.header(raw, "x-api-key") == Some(&b"k1"[..])
            })
        };
        assert!(!check(&rules, fresh), "ignore is the default");
        rules.client_invalidation = ClientInvalidation::Allow;
        assert!(check(&rules, fresh) && check(&rules, keyed) && !check(&rules, plain));
        assert!(check(&rules, zeros));
        rules.client_invalidation = ClientInvalidation::RequireApiKey;
        assert!(!check(&rules, fresh) && check(&rules, keyed));
        let unknown =
            b"GET /x HTTP/1.1\r\nHost: a\r\ncache-control: max-age=0\r\nx-api-key: k2\r\n\r\n";
        assert!(!check(&rules, unknown), "an unknown key does not refresh");
    }
}
