//! The cache on the request path: lookup, coalescing and hits before the integration
//! ([`before`]), storing what the relay captured after it ([`after`]).

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use super::conditional;
use super::key::{self, KeyInput};
use super::rules::{
    client_refresh, entry_method, may_fill, Caller, KeyPart, RouteCacheRt, StageCacheRt,
};
use super::{Capture, Codings, Entry, Inserted, Pending, Shard, Waiting};
use crate::auth::lambda::LambdaAuthRt;
use crate::auth::{AuthorizerKind, Identity, RouteAuthRt};
use crate::config::compile::IntegrationRt;
use crate::config::model::Coding;
use crate::http1::encode;
use crate::http1::hop::HopByHop;
use crate::http1::parse::Method;
use crate::http1::response::{parse_response, ResponseBody};
use crate::integration::relay::{self, Framing};
use crate::metrics::cells::bump;
use crate::pipeline::auth;
use crate::pipeline::auth_lambda::write_identity;
use crate::pipeline::context::request_view;
use crate::pipeline::response::Edits;
use crate::router::Matched;
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::server::conn::Conn;

/// Bodies up to this size are copied behind the head into one write; larger ones go out
/// as a second write straight from the stored `Bytes`, which costs a syscall but no copy.
const INLINE_BODY: usize = 64 * 1024;

pub enum Lookup {
    /// Answered from the cache; whether the connection goes on.
    Answered(bool),
    /// Go to the integration. With a `Fill`, this request fetches the entry for the
    /// others: `c.capture` is set, and [`after`] must be called once the integration ran.
    Miss(Option<Fill>),
}

/// This request is fetching `key`. Dropping it (however the request ended) wakes the
/// requests waiting for the key; [`after`] hands them the response first.
pub struct Fill {
    waiting: Waiting,
    flush_gen: u64,
    ttl: std::time::Duration,
    tag: u64,
}

impl Drop for Fill {
    fn drop(&mut self) {
        self.waiting.release();
    }
}

/// The route's cache rules for this request, if it may use the cache at all, with the
/// stage's and this worker's shard of it.
fn rules_for<'g>(
    gen: &'g Generation,
    c: &Conn,
    m: &Matched,
    integration: &IntegrationRt,
) -> Option<(&'g RouteCacheRt, &'g StageCacheRt, &'g Rc<Shard>)> {
    // Only proxied responses are cached. Canary requests are served by another
    // deployment, so they neither read nor fill the stage's cache; an upgrade request
    // wants the backend's 101, never a stored answer.
    if !matches!(integration, IntegrationRt::Http(_)) || c.out.canary || c.head.upgrade {
        return None;
    }
    let stage = &gen.snap.apis[m.stage.api as usize].stages[m.stage.stage as usize];
    let cached = stage.cache.as_ref()?;
    let rules = cached.routes.get(m.route as usize)?.as_ref()?;
    // A request with credentials the key does not hold neither reads nor fills: the
    // answer may be made for them (RFC 9111 §3.5). `Proxy-Authorization` (or its CGI
    // spelling, `Proxy_Authorization`) is passed on, and a backend can authenticate by
    // it as well.
    let keyed = |name: &str| {
        rules
            .key
            .iter()
            .any(|k| matches!(k, KeyPart::Header(h) if &**h == name))
    };
    // Preconditions a stored answer would ignore (`If-Match`, `If-Unmodified-Since`:
    // the backend's 412 became the stored 200) go to the backend, as RFC 9111 §4.3.2
    // allows a cache that does not evaluate them; its answer is not stored.
    let preconditioned = |name: &str| c.head.header(&c.rbuf, name).is_some();
    if !rules.methods.contains(entry_method(c.head.method))
        || preconditioned("if-match")
        || preconditioned("if-unmodified-since")
        || (!rules.keyed_by_authorization && c.head.header(&c.rbuf, "authorization").is_some())
        || (c
            .head
            .headers
            .iter()
            .any(|h| crate::http1::same_cgi_name(h.name.get(&c.rbuf), b"proxy-authorization"))
            && !keyed("proxy-authorization"))
    {
        return None;
    }
    Some((rules, cached, gen.caches.shard(m.stage)?))
}

/// What names the caller in the key (see `rules::Caller`).
enum Named<'c> {
    Bytes(std::borrow::Cow<'c, [u8]>),
    /// The identity-source values, read again from the request.
    Lambda(&'c LambdaAuthRt),
}

/// The caller as the key names it: `Some(None)` on a route without an authorizer, None
/// when what the route's authorizer should have left is not there. Borrowed from the
/// request and the authorizer's verdict: nothing is allocated.
fn caller<'c>(gen: &'c Generation, rules: &RouteCacheRt, c: &'c Conn) -> Option<Option<Named<'c>>> {
    let identity = c.req.auth.identity.as_ref();
    Some(Some(match (&rules.caller, identity) {
        (Caller::Anyone, _) => return Some(None),
        (Caller::Jwt(source), Some(Identity::Jwt(_))) => {
            Named::Bytes(auth::token(c, source).ok().flatten()?)
        }
        (Caller::Iam, Some(Identity::Iam(who))) => Named::Bytes(who.access_key.as_bytes().into()),
        (Caller::Lambda, Some(Identity::Lambda(_))) => Named::Lambda(lambda_authorizer(gen, c)?),
        _ => return None,
    }))
}

/// The Lambda authorizer of the request's route.
fn lambda_authorizer<'g>(gen: &'g Generation, c: &Conn) -> Option<&'g LambdaAuthRt> {
    let auth = &gen.snap.apis[c.req.api as usize].auth;
    match auth.routes.get(c.req.route as usize)? {
        RouteAuthRt::Lambda { authorizer } => match &auth.authorizers.get(*authorizer)?.kind {
            AuthorizerKind::Lambda(rt) => Some(rt),
            _ => None,
        },
        _ => None,
    }
}

/// Writes this request's key into `key`; false when the caller it should name is unknown.
fn build_key(
    gen: &Generation,
    rules: &RouteCacheRt,
    c: &Conn,
    m: &Matched,
    integration: &IntegrationRt,
    key: &mut Vec<u8>,
) -> bool {
    let Some(named) = caller(gen, rules, c) else {
        return false;
    };
    let write_caller = |out: &mut Vec<u8>| match &named {
        Some(Named::Bytes(b)) => out.extend_from_slice(b),
        Some(Named::Lambda(rt)) => {
            let view = request_view!(c, &gen.snap, &c.rbuf);
            write_identity(rt, &view, c, out)
        }
        None => {}
    };
    let map = match integration {
        IntegrationRt::Http(h) => h.map.as_deref(),
        _ => None,
    };
    let write_mapped = |out: &mut Vec<u8>| {
        if let Some(map) = map {
            map.write_key(&request_view!(c, &gen.snap, &c.rbuf), out);
        }
    };
    let input = KeyInput {
        method: entry_method(c.head.method),
        buf: &c.rbuf,
        head: &c.head,
        params: &c.params,
        rest: m.rest,
        tls: c.stream.is_tls(),
        caller: named.is_some().then_some(&write_caller),
        mapped: map.is_some().then_some(&write_mapped),
        // As `integration::http` drops them from what it forwards.
        hop: matches!(integration, IntegrationRt::Http(_))
            .then(|| HopByHop::new(&c.head.headers, &c.rbuf, c.head.connection_names)),
    };
    key::build(key, rules, &input);
    true
}

/// Runs before the integration of a matched route.
pub async fn before(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    m: &Matched,
    integration: &IntegrationRt,
) -> Lookup {
    c.capture = None;
    let Some((rules, stage, shard)) = rules_for(gen, c, m, integration) else {
        return Lookup::Miss(None);
    };
    let flush_gen = shard.sync_flush();
    // The scratch buffer is taken out of its cell: nothing may hold a borrow across the
    // awaits below.
    let mut key = std::mem::take(&mut *shard.scratch.borrow_mut());
    if !build_key(gen, rules, c, m, integration, &mut key) {
        *shard.scratch.borrow_mut() = key;
        // Let in without the identity the key names (can't happen after a successful
        // authorizer step; if it ever did, the cache stays out of it).
        return Lookup::Miss(None);
    }
    let compresses = gen.snap.apis[m.stage.api as usize].compression.is_some();
    if compresses {
        // Each negotiated encoding is an entry of its own, stored as it was served.
        key.push(match c.compress.accepted {
            None => b'i',
            Some(Coding::Gzip) => b'g',
            Some(Coding::Br) => b'b',
        });
    }
    let now = Instant::now();
    let refresh = client_refresh(rules, &c.head, &c.rbuf, || {
        // Validated already on routes that require a key.
        let stage = &gen.snap.traffic.stages[m.stage.api as usize][m.stage.stage as usize];
        c.out.api_key.is_some() || ctx.traffic.knows_key(&c.head, &c.rbuf, stage)
    });
    let mut found = if refresh {
        let inflight = shard.inflight.borrow();
        forget(
            &mut shard.store.borrow_mut(),
            &inflight,
            &mut key,
            compresses,
        );
        let (forgotten, me) = &shard.forgotten;
        forgotten.tell_others(*me, &key, compresses);
        None
    } else {
        shard
            .store
            .borrow_mut()
            .get(&key, rules.tag, now, &stage.tags)
            .cloned()
    };
    // The hit's head is made before anything is sent: an entry it can't be made from is
    // dropped, and the request goes to the backend as a miss.
    let hit = found.as_ref().and_then(|e| hit_head(ctx, gen, c, e, now));
    if hit.is_none() && found.take().is_some() {
        shard.store.borrow_mut().remove(&key);
        shard.publish();
    }
    // Only a fetch by this route (as configured now) answers it: a `HEAD` route's
    // request waiting on its `GET` route's fetch was answered from another integration.
    // Nor one begun before a flush or a client's refresh: its answer may be older than
    // either (a refresh itself always goes to the backend).
    let waiting = match found {
        Some(_) => None,
        None if refresh => None,
        None => shard
            .inflight
            .borrow()
            .get(&key[..])
            .filter(|p| p.tag == rules.tag && p.flush_gen == flush_gen && !p.stale.get())
            .cloned(),
    };
    let fill_key = (found.is_none() && waiting.is_none() && may_fill(&c.head))
        .then(|| Rc::<[u8]>::from(&key[..]));
    *shard.scratch.borrow_mut() = key;

    if let (Some(entry), Some(hit)) = (found, hit) {
        bump(&shard.cells.hits, 1);
        return Lookup::Answered(send_hit(gen, c, &entry, hit).await);
    }
    if let Some(pending) = waiting {
        let timeout = match integration {
            IntegrationRt::Http(h) => h.timeout,
            _ => unreachable!("rules_for admits http integrations only"),
        };
        let _ = monoio::time::timeout(timeout, pending.wait()).await;
        let result = pending.result.borrow().clone();
        let hit = result.and_then(|e| Some((hit_head(ctx, gen, c, &e, Instant::now())?, e)));
        return match hit {
            Some((hit, entry)) => {
                bump(&shard.cells.hits, 1);
                Lookup::Answered(send_hit(gen, c, &entry, hit).await)
            }
            None => {
                bump(&shard.cells.misses, 1);
                Lookup::Miss(None)
            }
        };
    }
    bump(&shard.cells.misses, 1);
    // A HEAD or a fat GET goes to the backend without filling (`rules::may_fill`).
    let Some(key) = fill_key else {
        return Lookup::Miss(None);
    };
    let pending = Rc::new(Pending {
        tag: rules.tag,
        flush_gen,
        ..Pending::default()
    });
    shard
        .inflight
        .borrow_mut()
        .insert(key.clone(), pending.clone());
    // The codings a stored body may carry: what every request of this key accepts.
    let codings = if rules
        .vary_ok
        .iter()
        .any(|h| h.as_ref() == "accept-encoding")
    {
        Codings::Any
    } else {
        match (compresses, c.compress.accepted) {
            (true, Some(coding)) => Codings::Only(coding),
            _ => Codings::Identity,
        }
    };
    let waiting = Waiting {
        shard: shard.clone(),
        key,
        pending,
    };
    let mut capture = Box::new(Capture::new(rules.statuses, codings, rules.vary_ok.clone()));
    capture.set_waiting(waiting.clone());
    c.capture = Some(capture);
    Lookup::Miss(Some(Fill {
        waiting,
        flush_gen,
        ttl: rules.ttl,
        tag: rules.tag,
    }))
}

/// A client's refresh (`Cache-Control: max-age=0`) drops the entry before fetching: the
/// fresh answer replaces it if it can be stored, and otherwise (an error, `no-store`, a
/// `Set-Cookie`) the old one must not go on being served. On a compressing route it drops
/// the copies stored for every encoding (the key's last byte), not only the one it
/// negotiated: they hold the old answer too. A fetch of the key in flight is marked
/// stale: its answer may predate the refresh.
pub(super) fn forget(
    store: &mut super::Store,
    inflight: &HashMap<Rc<[u8]>, Rc<Pending>>,
    key: &mut [u8],
    compresses: bool,
) {
    let mut forget_one = |key: &[u8]| {
        store.remove(key);
        if let Some(pending) = inflight.get(key) {
            pending.stale.set(true);
        }
    };
    let Some(&own) = key.last().filter(|_| compresses) else {
        forget_one(key);
        return;
    };
    let last = key.len() - 1;
    for coding in [b'i', b'g', b'b'] {
        key[last] = coding;
        forget_one(key);
    }
    key[last] = own;
}

/// Runs after the integration of a request that was fetching an entry: stores the
/// captured response if it is complete and storable, and answers the waiters with it.
pub fn after(fill: Fill, c: &mut Conn) {
    let Some(captured) = c.capture.take().and_then(|cap| cap.finish()) else {
        return; // dropping the fill sends the waiters to the backend
    };
    let now = Instant::now();
    let entry = Entry {
        status: captured.status,
        head: captured.head,
        body: captured.body,
        stored: now,
        expires: now + fill.ttl,
        initial_age: captured.initial_age,
        tag: fill.tag,
    };
    let Waiting {
        shard,
        key,
        pending,
    } = &fill.waiting;
    // A flush or a client's refresh while this was being fetched: the response may
    // predate it, so it is not kept (the waiters, who asked before, still get it).
    if shard.sync_flush() == fill.flush_gen && !pending.stale.get() {
        let inserted = shard
            .store
            .borrow_mut()
            .insert(key.clone(), entry.clone(), now);
        if let Inserted::Stored { evicted } = inserted {
            bump(&shard.cells.evictions, u64::from(evicted));
        }
        shard.publish();
    }
    pending.finish(Some(entry));
}

/// A hit whose head is in `c.wbuf`, for [`send_hit`].
struct Hit {
    keep: bool,
    not_modified: bool,
}

/// Writes a stored response's head into `c.wbuf`: the stored head, `age`, this request's
/// ids; or a 304's when the request's validators match it (`conditional`). None when the
/// head can't be made from the stored one (nothing is written then).
fn hit_head(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    e: &Entry,
    now: Instant,
) -> Option<Hit> {
    let keep = c.can_keep_alive(ctx);
    let mut not_modified = conditional::not_modified(&c.head, &c.rbuf, e.status, &e.head);
    // The edits are those of the stored status (a 304 the cache makes is that answer,
    // revalidated: it carries the headers the 200 would, RFC 9110 §15.4.5); looked up by
    // 304, a header a `"200"` mapping removes went out on every conditional hit. A
    // mapping that sets the status decides it per request, and preconditions apply to a
    // 2xx only (§13.2.1): such a route answers in full.
    let edits = Edits::find(&gen.snap, &c.req, e.status);
    if edits.as_ref().is_some_and(|x| x.maps_status()) {
        not_modified = false;
    }
    let status = if not_modified { 304 } else { e.status };
    if edits.is_some() {
        if !edited_head(gen, c, e, now, keep, not_modified) {
            return None;
        }
    } else {
        // The common case: the stored bytes as they are.
        c.out.status = status;
        c.wbuf.clear();
        if not_modified {
            c.wbuf.extend_from_slice(conditional::STATUS_LINE);
            c.wbuf.extend_from_slice(conditional::header_lines(&e.head));
        } else {
            c.wbuf.extend_from_slice(&e.head);
        }
        age(&mut c.wbuf, e, now);
        encode::own_head_end(&mut c.wbuf, &c.request_id, keep, c.head.minor_version == 0);
    }
    Some(Hit { keep, not_modified })
}

/// Sends the hit whose head [`hit_head`] wrote, then its body (none for HEAD or a 304).
async fn send_hit(gen: &Generation, c: &mut Conn, e: &Entry, hit: Hit) -> bool {
    let body = if c.head.method == Method::Head || hit.not_modified {
        &b""[..]
    } else {
        &e.body[..]
    };
    c.out.body_sent = body.len() as u64;
    let tail = if body.len() <= INLINE_BODY {
        c.wbuf.extend_from_slice(body);
        None
    } else {
        Some(e.body.clone())
    };
    if c.send_answer(gen, hit.keep, tail).await.is_err() {
        return false;
    }
    c.req.saved_head = None;
    hit.keep && c.discard_body(gen).await
}

fn age(out: &mut Vec<u8>, e: &Entry, now: Instant) {
    out.extend_from_slice(b"age: ");
    encode::decimal(out, e.age(now));
    out.extend_from_slice(b"\r\n");
}

/// A hit on a route with CORS or response parameter mapping: these depend on the request
/// (its Origin, `$context` values), so the stored backend head goes through the relay's
/// head writer exactly as a fresh backend response would. False when the stored head
/// does not parse again (nothing is written then).
fn edited_head(
    gen: &Generation,
    c: &mut Conn,
    e: &Entry,
    now: Instant,
    keep: bool,
    not_modified: bool,
) -> bool {
    c.wbuf.clear();
    age(&mut c.wbuf, e, now);
    c.ubuf.clear();
    // The stored head whole, a 304 too: its edits are the stored status's, and its
    // status line is made a 304's once they are written.
    c.ubuf.extend_from_slice(&e.head);
    c.ubuf.extend_from_slice(&c.wbuf);
    c.ubuf.extend_from_slice(b"\r\n");
    // `Capture::start` stores only heads that parse again with what a hit adds (the
    // parser has 256 slots); written from a failed parse, a hit went out as `HTTP/1.1 0`
    // with no headers and no framing.
    if !matches!(
        parse_response(&c.ubuf, Method::Get, usize::MAX, &mut c.rhead),
        Ok(true)
    ) {
        tracing::warn!(
            status = e.status,
            "a stored response head does not parse again; the entry is dropped"
        );
        c.ubuf.clear();
        c.wbuf.clear();
        return false;
    }
    if Edits::route_maps_responses(&gen.snap, &c.req) {
        // Mappings read request values from the saved head (as after a proxied body).
        let head_len = c.head.head_len;
        c.req.saved_head = Some(c.rbuf.split_to(head_len));
        c.head.head_len = 0; // the body, if any, now starts rbuf
    }
    let framing = match c.rhead.body {
        ResponseBody::Length(n) if c.head.method != Method::Head && !not_modified => {
            Framing::Length(n)
        }
        _ => Framing::None,
    };
    relay::write_response_head(gen, c, framing, keep);
    if not_modified {
        let line = memchr::memmem::find(&c.wbuf, b"\r\n").map_or(0, |i| i + 2);
        c.wbuf
            .splice(..line, conditional::STATUS_LINE.iter().copied());
        c.out.status = 304;
    }
    c.ubuf.clear();
    true
}
