//! Answers the gateway writes itself from config: mock integrations whose response is
//! edited per request (response mapping, CORS headers) and CORS preflights. Plain mocks
//! are written from their pre-encoded bytes by the connection (server/conn.rs).

use crate::config::compile::MockResponse;
use crate::http1::encode;
use crate::http1::parse::Method;
use crate::pipeline::compress::compress_whole;
use crate::pipeline::context::request_view;
use crate::pipeline::cors::CorsRt;
use crate::pipeline::response::Edits;
use crate::runtime::workers::Generation;
use crate::runtime::WorkerCtx;
use crate::server::conn::Conn;

impl Conn {
    /// A mock integration's answer: its encoded head and body as compiled, unless a
    /// response mapping or compression has to edit them (`answer_mock_edited`).
    pub(crate) async fn answer_mock(
        &mut self,
        ctx: &WorkerCtx,
        gen: &Generation,
        mock: &MockResponse,
    ) -> bool {
        // A HEAD too: it gets the headers its GET would (RFC 9110 §9.3.2), no body.
        if let Some(rt) = crate::pipeline::compress::setting(gen, self) {
            let headers = mock.headers.iter().map(|(n, v)| (&n[..], &v[..]));
            let len = mock.body.len() as u64;
            self.compress.decide(rt, mock.status, Some(len), headers);
        }
        let edits = Edits::find(&gen.snap, &self.req, mock.status);
        if edits.is_some() || self.compress.vary || self.compress.coding.is_some() {
            return self.answer_mock_edited(ctx, gen, mock, edits).await;
        }
        let keep = self.can_keep_alive(ctx);
        self.out.status = mock.status;
        self.wbuf.clear();
        self.wbuf.extend_from_slice(&mock.head);
        encode::own_head_end(
            &mut self.wbuf,
            &self.request_id,
            keep,
            self.head.minor_version == 0,
        );
        if self.head.method != Method::Head {
            self.wbuf.extend_from_slice(&mock.body);
            self.out.body_sent = mock.body.len() as u64;
        }
        if self.send_answer(gen, keep, None).await.is_err() {
            return false;
        }
        keep && self.discard_body(gen).await
    }

    /// The gateway's 204 to a CORS preflight; the integration is never called.
    pub(crate) async fn answer_preflight(
        &mut self,
        ctx: &WorkerCtx,
        gen: &Generation,
        cors: &CorsRt,
    ) -> bool {
        let keep = self.can_keep_alive(ctx);
        self.out.status = 204;
        let origin = self.head.header(&self.rbuf, "origin");
        let matched = cors.match_origin(origin);
        self.wbuf.clear();
        cors.write_preflight(matched, origin, &mut self.wbuf);
        self.end_own_head(keep);
        if self.send_answer(gen, keep, None).await.is_err() {
            return false;
        }
        keep && self.discard_body(gen).await
    }

    /// A mock response with response mapping or CORS headers applied, or compressed
    /// (as `self.compress` decided).
    pub(crate) async fn answer_mock_edited(
        &mut self,
        ctx: &WorkerCtx,
        gen: &Generation,
        mock: &MockResponse,
        edits: Option<Edits<'_>>,
    ) -> bool {
        let keep = self.can_keep_alive(ctx);
        let view = request_view!(self, &gen.snap, &self.rbuf);
        let resp = |name: &[u8], out: &mut Vec<u8>| {
            let mut first = true;
            for (n, v) in &mock.headers {
                if n.eq_ignore_ascii_case(name) {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    out.extend_from_slice(v);
                }
            }
        };
        let plan = self.compress;
        let compresses = crate::pipeline::compress::setting(gen, self).is_some();
        let compressed = plan.coding.map(|c| compress_whole(c, &mock.body));
        let body = compressed.as_deref().unwrap_or(&mock.body);
        let out = &mut self.wbuf;
        out.clear();
        let status = match &edits {
            Some(e) => e.status(mock.status, &view, &resp, out),
            None => mock.status,
        };
        self.out.status = status;
        encode::status_line(out, status);
        let mut etag = None;
        for (name, value) in &mock.headers {
            let mapped = edits.as_ref().is_some_and(|e| e.drops(name));
            // A mapped (or removed) ETag is not joined by the mock's, weakened.
            if name.eq_ignore_ascii_case(b"etag") && !mapped {
                etag = Some(&value[..]);
            }
            if !mapped && !plan.drops(name) {
                encode::header(out, name, value);
            }
        }
        if let Some(e) = &edits {
            e.write_headers(&view, &resp, out);
        }
        plan.write_headers(etag, out);
        crate::pipeline::compress::restore_vary(
            compresses,
            edits.as_ref().is_some_and(|e| e.drops(b"vary")),
            mock.headers.iter().map(|(n, v)| (&n[..], &v[..])),
            out,
        );
        // A 205 has no content (RFC 9110 §15.3.6); unlike a 204 it is framed, length 0.
        let body: &[u8] = if status == 205 { &[] } else { body };
        let bodiless = matches!(status, 100..=199 | 204 | 304);
        if !bodiless {
            out.extend_from_slice(b"content-length: ");
            encode::decimal(out, body.len() as u64);
            out.extend_from_slice(b"\r\n");
        }
        self.end_own_head(keep);
        if !bodiless && self.head.method != Method::Head {
            self.wbuf.extend_from_slice(body);
            self.out.body_sent = body.len() as u64;
        }
        if self.send_answer(gen, keep, None).await.is_err() {
            return false;
        }
        keep && self.discard_body(gen).await
    }

    /// Request ids, the connection header and the end of the head.
    fn end_own_head(&mut self, keep: bool) {
        let out = &mut self.wbuf;
        encode::own_head_end(out, &self.request_id, keep, self.head.minor_version == 0);
    }
}
