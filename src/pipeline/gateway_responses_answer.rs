//! How the gateway writes its own answers on an API: the API's gateway response for the
//! type when it has one, its CORS headers when it has CORS (split from
//! gateway_responses.rs, which was near 600 lines).

use super::*;
use crate::pipeline::cors::CorsRt;

/// Whether the API serving this request customises the gateway's answer `status`
/// `message`, or adds its CORS headers to it; the caller then answers through
/// [`answer_as`].
pub fn applies(gen: &Generation, c: &Conn) -> bool {
    c.out.served_by.is_some_and(|(s, _)| {
        let api = &gen.snap.apis[s.api as usize];
        api.gateway_responses.is_some() || api.cors.is_some()
    })
}

/// The gateway answers with `message` as response type `t` (its default status), or as
/// the API's gateway response for it. `detail` is `$context.error.validationErrorString`.
pub async fn answer(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    t: ResponseType,
    message: &str,
    detail: &str,
) -> bool {
    let log: &'static str = match t {
        ResponseType::BadRequestBody => "Invalid request body",
        ResponseType::BadRequestParameters => "Missing required request parameters",
        _ => "",
    };
    // API Gateway's REST APIs (whose feature validation is) name the error's type, as
    // on their key and throttle refusals; AWS SDKs read it.
    let bad_request = [("x-amzn-ErrorType", &b"BadRequestException"[..])];
    let extra: &[_] = match t {
        ResponseType::BadRequestBody | ResponseType::BadRequestParameters => &bad_request,
        _ => &[],
    };
    answer_as(
        ctx,
        gen,
        c,
        t,
        t.default_status(),
        message,
        log,
        detail,
        extra,
    )
    .await
}

/// A request addressed to an API (its host and base path) that none of its routes
/// matches: HTTP APIs' 404 `{"message":"Not Found"}`, of type
/// MISSING_AUTHENTICATION_TOKEN as API Gateway logs it, customised by that API's gateway
/// responses when it has them (so a REST-style 403 "Missing Authentication Token" can be
/// configured). Returns None when the API customises nothing (the caller answers).
pub async fn answer_unrouted(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    stage: crate::router::StageRef,
) -> Option<bool> {
    let t = ResponseType::MissingAuthenticationToken;
    let api = &gen.snap.apis[stage.api as usize];
    let custom = api
        .gateway_responses
        .as_deref()
        .and_then(|g| g.find(t, 404));
    // A CORS API's 404 is one of its answers too: its CORS headers (a gateway response's
    // own access-control-* give way to them) and `vary: origin`, as on routed answers.
    let cors = api.cors.as_deref();
    if custom.is_none() && cors.is_none() {
        return None;
    }
    if let Some(cors) = cors {
        c.req.cors = cors.match_origin(c.head.header(&c.rbuf, "origin"));
    }
    // `$context.stage` and `.apiId` name the API the request was addressed to.
    c.req.api = stage.api;
    c.req.stage = stage.stage;
    c.req.canary = false;
    let message = "Not Found";
    Some(
        write(
            ctx,
            gen,
            c,
            (custom, cors),
            (t, false),
            404,
            message,
            message,
            "",
            &[],
        )
        .await,
    )
}

/// Writes the answer (customised when the serving API has a response for `t`), then
/// consumes the request body; returns whether the connection goes on.
#[allow(clippy::too_many_arguments)]
pub async fn answer_as(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    t: ResponseType,
    status: u16,
    message: &str,
    log: &'static str,
    detail: &str,
    extra: &[(&str, &[u8])],
) -> bool {
    let snap = &*gen.snap;
    let custom = c.out.served_by.and_then(|(s, _)| {
        snap.apis[s.api as usize]
            .gateway_responses
            .as_deref()?
            .find(t, status)
    });
    let routed = c.out.served_by.is_some();
    let cors = c
        .out
        .served_by
        .and_then(|(s, _)| snap.apis[s.api as usize].cors.as_deref());
    write(
        ctx,
        gen,
        c,
        (custom, cors),
        (t, routed),
        status,
        message,
        log,
        detail,
        extra,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn write(
    ctx: &WorkerCtx,
    gen: &Generation,
    c: &mut Conn,
    (custom, cors): (Option<&Custom>, Option<&CorsRt>),
    (t, routed): (ResponseType, bool),
    status: u16,
    message: &str,
    log: &'static str,
    detail: &str,
    extra: &[(&str, &[u8])],
) -> bool {
    let snap = &*gen.snap;
    let keep = c.can_keep_alive(ctx);
    let status = custom.and_then(|g| g.status).unwrap_or(status);
    c.out.status = status;
    c.out.error_message = log;
    c.out.error_type = t.name();
    if message != log {
        c.out.texts().message.push_str(message);
    }
    if !detail.is_empty() {
        c.out.texts().validation.push_str(detail);
    }
    let mut head = Vec::with_capacity(256);
    let mut body = Vec::with_capacity(64);
    let mut varied = false;
    let origin: Option<Vec<u8>>;
    let info = ErrorInfo {
        routed,
        rtype: t,
        message,
        detail,
    };
    {
        // After an integration consumed the request, its head is kept apart.
        let buf = c.req.saved_head.as_deref().unwrap_or(&c.rbuf);
        let view = request_view!(c, snap, buf);
        // The Origin is read here, from the head where it is now: after an integration
        // consumed the request, `rbuf` holds the next one's bytes (or fewer), and reading
        // it there panicked the worker, or echoed another request's origin.
        origin = cors.and(view.header(b"origin")).map(<[u8]>::to_vec);
        let mut value = Vec::new();
        match custom.and_then(|g| Some((g, g.body.as_ref()?))) {
            Some((g, b)) => {
                // Quoted for the media type the client will read, from the content-type
                // value as it goes out (a variable in it is known only now).
                if let Some(i) = g.content_type {
                    g.headers[i].1.eval(&view, &info, Escape::None, &mut value);
                    encode::sanitize_value(&mut value);
                }
                let ct = g.content_type.map(|_| &value[..]);
                b.eval(&view, &info, Escape::for_content_type(ct), &mut body);
            }
            None => {
                body.extend_from_slice(br#"{"message":""#);
                encode::json_escape(&mut body, message.as_bytes());
                body.extend_from_slice(br#""}"#);
            }
        }
        encode::status_line(&mut head, status);
        if custom.is_none_or(|g| g.content_type.is_none()) {
            encode::header(&mut head, b"content-type", b"application/json");
        }
        head.extend_from_slice(b"content-length: ");
        encode::decimal(&mut head, body.len() as u64);
        head.extend_from_slice(b"\r\n");
        for (name, v) in custom.map_or(&[][..], |g| &g.headers[..]) {
            // On a CORS API the config is the one source of CORS headers, as for backends.
            if cors.is_some() && is_cors_header(name) {
                continue;
            }
            value.clear();
            v.eval(&view, &info, Escape::None, &mut value);
            varied |= name.eq_ignore_ascii_case(b"vary") && vary_covers_origin(&value);
            encode::header(&mut head, name, &value);
        }
    }
    // The gateway's own headers (a 429's retry-after, a 401's www-authenticate) give way
    // to the gateway response's header of that name: two retry-after lines say two things.
    let configured = custom.map_or(&[][..], |g| &g.headers[..]);
    for (name, value) in extra {
        if !configured
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        {
            encode::header(&mut head, name.as_bytes(), value);
        }
    }
    // A request on a CORS API gets its CORS headers on the gateway's own answers
    // too (an authorizer's 401, a throttle's 429), as HTTP APIs send them: without them
    // a browser hides the answer from the page, which can't tell an expired token (to
    // sign in again) from a network error, and a shared cache could hand one origin's
    // answer to another (no `vary: origin`).
    if let Some(cors) = cors {
        cors.write_actual(c.req.cors, origin.as_deref(), varied, &mut head);
    }
    encode::own_head_end(&mut head, &c.request_id, keep, c.head.minor_version == 0);
    c.wbuf.clear();
    c.wbuf.extend_from_slice(&head);
    if c.head.method != Method::Head {
        c.wbuf.extend_from_slice(&body);
        c.out.body_sent = body.len() as u64;
    }
    if c.send_answer(gen, keep, None).await.is_err() {
        return false;
    }
    keep && c.discard_body(gen).await
}
