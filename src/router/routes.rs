//! Route matching inside one API: a segment trie searched most-specific first.
//!
//! Precedence, as Amazon API Gateway documents it for HTTP APIs: a route that matches the
//! whole path (literals and `{param}`s) beats any greedy `{proxy+}` route; among each, a
//! literal segment beats `{param}`, left to right, and a greedy route that starts deeper
//! beats one that starts higher; at equal path specificity an explicit method beats
//! `ANY`; `$default` only when nothing else matches. A path that matches but has no route
//! for the method backtracks to the next less specific path. A `HEAD` goes to a `HEAD`
//! route if one matches, else wherever a `GET` would.

use super::key::{RouteKey, Segment};
use crate::http1::{Method, Span};

/// Index of a route in its API's route table.
pub type RouteId = u32;

#[derive(Debug, Default)]
struct Node {
    /// Sorted by the literal, found by binary search: walked one by one, each compared
    /// with a scan of the request's segment, 20,000 literal routes cost a request with
    /// an 8 KB segment 1.5 ms.
    literals: Vec<(Box<[u8]>, usize)>,
    param: Option<usize>,
    /// Routes whose greedy segment starts here.
    greedy: Methods,
    /// Routes ending exactly at this node.
    exact: Methods,
}

impl Node {
    /// Where `lit` is among the literals (`Err`: where it would go).
    fn literal(&self, lit: &[u8]) -> Result<usize, usize> {
        self.literals.binary_search_by(|(l, _)| (**l).cmp(lit))
    }
}

#[derive(Debug, Default)]
struct Methods {
    by_method: Vec<(Method, RouteId)>,
    any: Option<RouteId>,
}

/// What one search of the trie takes (`RouteTable::match_path` runs up to four).
#[derive(Clone, Copy)]
struct Pass {
    method: Method,
    /// `ANY` routes too.
    any: bool,
    /// Greedy routes too.
    greedy: bool,
}

impl Methods {
    fn pick(&self, pass: Pass) -> Option<RouteId> {
        self.by_method
            .iter()
            .find(|(k, _)| *k == pass.method)
            .map(|(_, r)| *r)
            .or(if pass.any { self.any } else { None })
    }

    fn add(&mut self, method: &str, id: RouteId) {
        match method {
            "ANY" => self.any = Some(id),
            m => self.by_method.push((Method::from_bytes(m.as_bytes()), id)),
        }
    }
}

/// The routes of one API.
#[derive(Debug)]
pub struct RouteTable {
    nodes: Vec<Node>,
    default: Option<RouteId>,
}

impl Default for RouteTable {
    fn default() -> Self {
        RouteTable {
            nodes: vec![Node::default()],
            default: None,
        }
    }
}

impl RouteTable {
    /// Adds a parsed route key (validation has already refused malformed ones).
    pub fn insert(&mut self, key: &RouteKey, id: RouteId) {
        let (method, segments) = match key {
            RouteKey::Default => {
                self.default = Some(id);
                return;
            }
            RouteKey::Route { method, segments } => (method.as_str(), segments),
        };
        let mut at = 0;
        for seg in segments {
            at = match seg {
                Segment::Literal(lit) => match self.nodes[at].literal(lit.as_bytes()) {
                    Ok(i) => self.nodes[at].literals[i].1,
                    Err(i) => {
                        let next = self.push();
                        (self.nodes[at].literals).insert(i, (lit.as_bytes().into(), next));
                        next
                    }
                },
                Segment::Param(_) => match self.nodes[at].param {
                    Some(next) => next,
                    None => {
                        let next = self.push();
                        self.nodes[at].param = Some(next);
                        next
                    }
                },
                Segment::Greedy(_) => {
                    self.nodes[at].greedy.add(method, id);
                    return;
                }
            };
        }
        self.nodes[at].exact.add(method, id);
    }

    fn push(&mut self) -> usize {
        self.nodes.push(Node::default());
        self.nodes.len() - 1
    }

    /// Matches `path` (starting at `base`, an offset into the request buffer, so the
    /// captured spans index the same buffer). Captured values land in `params` in key
    /// order; no allocation once `params` has capacity.
    pub fn match_path(
        &self,
        method: Method,
        path: &[u8],
        base: u32,
        params: &mut Vec<Span>,
    ) -> Option<RouteId> {
        let start = usize::from(path.first() == Some(&b'/'));
        // A HEAD route first; then HEAD goes where GET would (as nginx and most frameworks
        // do; the codec strips the body).
        let methods: &[(Method, bool)] = match method {
            Method::Head => &[(Method::Head, false), (Method::Get, true)],
            _ => &[(method, true)],
        };
        for &(method, any) in methods {
            // Whole-path matches before greedy ones: `GET /{kind}/dog/{id}` answers
            // `/pets/dog/1` before `GET /pets/{proxy+}` does.
            for greedy in [false, true] {
                params.clear();
                let pass = Pass {
                    method,
                    any,
                    greedy,
                };
                if let Some(id) = self.walk(0, pass, path, start, base, params) {
                    return Some(id);
                }
            }
        }
        params.clear();
        self.default
    }

    fn walk(
        &self,
        node: usize,
        pass: Pass,
        path: &[u8],
        pos: usize,
        base: u32,
        params: &mut Vec<Span>,
    ) -> Option<RouteId> {
        let n = &self.nodes[node];
        // Skip empty segments ("//" or a trailing "/") as API Gateway does, and segments
        // that are only `;` parameters, which are empty to Tomcat, Jetty and Spring
        // (`/;x/admin` is their `/admin`). `%2F` and `%5C` separate segments as `/` does
        // (`super::separator_len`).
        let pos = super::skip_empty_segments(path, pos);
        if pos >= path.len() {
            return n.exact.pick(pass);
        }
        let end = super::segment_end(path, pos);
        let mut scratch = Vec::new();
        let seg = super::route_form(&path[pos..end], &mut scratch);
        // The literal the segment is, as written or without its `;` parameters
        // (`super::segment_is`): two lookups, whatever the number of literals.
        if !n.literals.is_empty() {
            let bare = || super::param_start(seg).map(|semi| &seg[..semi]);
            for lit in std::iter::once(Some(seg)).chain(std::iter::once_with(bare)) {
                let Some(i) = lit.and_then(|lit| super::find_sorted(&n.literals, lit)) else {
                    continue;
                };
                if let Some(id) = self.walk(n.literals[i].1, pass, path, end, base, params) {
                    return Some(id);
                }
            }
        }
        if let Some(next) = n.param {
            let mark = params.len();
            params.push(span(base, pos, end));
            if let Some(id) = self.walk(next, pass, path, end, base, params) {
                return Some(id);
            }
            params.truncate(mark);
        }
        if let Some(id) = n.greedy.pick(pass).filter(|_| pass.greedy) {
            params.push(span(base, pos, path.len()));
            return Some(id);
        }
        None
    }
}

fn span(base: u32, from: usize, to: usize) -> Span {
    Span {
        start: base + from as u32,
        end: base + to as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::key::parse_route_key;

    fn table(keys: &[&str]) -> RouteTable {
        let mut t = RouteTable::default();
        for (i, k) in keys.iter().enumerate() {
            t.insert(&parse_route_key(k).unwrap(), i as RouteId);
        }
        t
    }

    fn m(t: &RouteTable, method: Method, path: &str) -> (Option<RouteId>, Vec<String>) {
        let mut params = Vec::new();
        let id = t.match_path(method, path.as_bytes(), 0, &mut params);
        let vals = params
            .iter()
            .map(|s| String::from_utf8(s.get(path.as_bytes()).to_vec()).unwrap())
            .collect();
        (id, vals)
    }

    #[test]
    fn most_specific_wins_regardless_of_order() {
        let t = table(&[
            "ANY /{proxy+}",
            "GET /pets/{proxy+}",
            "GET /pets/dog/{id}",
            "GET /pets/dog/1",
            "$default",
        ]);
        assert_eq!(m(&t, Method::Get, "/pets/dog/1"), (Some(3), vec![]));
        assert_eq!(
            m(&t, Method::Get, "/pets/dog/2"),
            (Some(2), vec!["2".into()])
        );
        assert_eq!(
            m(&t, Method::Get, "/pets/cat/2"),
            (Some(1), vec!["cat/2".into()])
        );
        assert_eq!(
            m(&t, Method::Post, "/pets/dog/1"),
            (Some(0), vec!["pets/dog/1".into()])
        );
        assert_eq!(m(&t, Method::Get, "/"), (Some(4), vec![]));
    }

    #[test]
    fn method_beats_any_and_backtracks() {
        let t = table(&["ANY /a/b", "GET /a/b", "POST /a/{x}"]);
        assert_eq!(m(&t, Method::Get, "/a/b").0, Some(1));
        assert_eq!(m(&t, Method::Put, "/a/b").0, Some(0));
        let t = table(&["GET /a/b", "POST /a/{x}"]);
        assert_eq!(m(&t, Method::Post, "/a/b"), (Some(1), vec!["b".into()]));
        assert_eq!(m(&t, Method::Delete, "/a/b").0, None);
    }

    #[test]
    fn head_falls_back_to_get() {
        let t = table(&["GET /x"]);
        assert_eq!(m(&t, Method::Head, "/x").0, Some(0));
        assert_eq!(m(&t, Method::Post, "/x").0, None);
        // A HEAD route that matches is taken before any GET route, however specific.
        let t = table(&[
            "HEAD /files/{name}",
            "GET /files/readme",
            "ANY /any/x",
            "GET /any/{p}",
        ]);
        assert_eq!(m(&t, Method::Head, "/files/readme").0, Some(0));
        assert_eq!(m(&t, Method::Get, "/files/readme").0, Some(1));
        // Without one, HEAD goes where GET goes (the literal `ANY` route here).
        assert_eq!(m(&t, Method::Head, "/any/x").0, Some(2));
        assert_eq!(m(&t, Method::Get, "/any/x").0, Some(2));
    }

    /// API Gateway: a full match of the path beats a greedy one, whatever literal the
    /// greedy route's path begins with.
    #[test]
    fn a_whole_path_match_beats_a_greedy_one() {
        let t = table(&[
            "GET /pets/{proxy+}",
            "GET /{kind}/dog/{id}",
            "GET /a/b/{proxy+}",
            "ANY /a/{x}/c",
            "DELETE /g/h/{proxy+}",
            "ANY /g/{x}/i",
            "GET /{p+}",
        ]);
        assert_eq!(
            m(&t, Method::Get, "/pets/dog/1"),
            (Some(1), vec!["pets".into(), "1".into()])
        );
        assert_eq!(m(&t, Method::Get, "/pets/cat/1").0, Some(0));
        assert_eq!(m(&t, Method::Get, "/a/b/c").0, Some(3));
        assert_eq!(m(&t, Method::Get, "/a/b/d").0, Some(2));
        assert_eq!(m(&t, Method::Delete, "/g/h/i").0, Some(5));
        assert_eq!(m(&t, Method::Delete, "/g/h/j").0, Some(4));
        // The deeper greedy route beats the shallower.
        assert_eq!(m(&t, Method::Get, "/pets/x/y/z").0, Some(0));
        assert_eq!(
            m(&t, Method::Get, "/other/x"),
            (Some(6), vec!["other/x".into()])
        );
    }

    #[test]
    fn params_and_greedy_capture_raw_spans() {
        let t = table(&["GET /users/{id}/orders/{order}", "GET /files/{path+}"]);
        assert_eq!(
            m(&t, Method::Get, "/users/a%20b/orders/7"),
            (Some(0), vec!["a%20b".into(), "7".into()])
        );
        assert_eq!(
            m(&t, Method::Get, "/files/a/b/c.txt"),
            (Some(1), vec!["a/b/c.txt".into()])
        );
        // A greedy segment needs at least one segment.
        assert_eq!(m(&t, Method::Get, "/files").0, None);
        assert_eq!(m(&t, Method::Get, "/files/").0, None);
    }

    /// Past eight literals at a node (a binary search, not a scan): the same matches.
    #[test]
    fn many_literals_match_as_few_do() {
        let mut keys: Vec<String> = (0..30).map(|i| format!("GET /l{i}")).collect();
        keys.push("GET /l7/{id}".into());
        keys.push("ANY /{proxy+}".into());
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let t = table(&keys);
        assert_eq!(m(&t, Method::Get, "/l13").0, Some(13));
        assert_eq!(m(&t, Method::Get, "/l29;jsessionid=1").0, Some(29));
        assert_eq!(m(&t, Method::Get, "/l7;x/9"), (Some(30), vec!["9".into()]));
        assert_eq!(m(&t, Method::Get, "/l30").0, Some(31));
    }

    /// Tomcat, Jetty and Spring read `/admin;jsessionid=1` as `/admin`: so does routing,
    /// or the request would miss `/admin`'s guard and reach a catch-all.
    #[test]
    fn a_segment_with_parameters_matches_its_literal_too() {
        let t = table(&["GET /admin", "GET /admin/{p+}", "ANY /{proxy+}", "GET /a;b"]);
        assert_eq!(m(&t, Method::Get, "/admin;jsessionid=1").0, Some(0));
        assert_eq!(
            m(&t, Method::Get, "/admin;x/secret"),
            (Some(1), vec!["secret".into()])
        );
        assert_eq!(m(&t, Method::Get, "/admins;x").0, Some(2));
        // A literal written with its `;` is still itself.
        assert_eq!(m(&t, Method::Get, "/a;b").0, Some(3));
        assert_eq!(m(&t, Method::Get, "/a;c").0, Some(2));
        // A segment of parameters only is empty to those backends, so it is skipped
        // as `//` is.
        for path in ["/;x/admin", "/;/admin", "/admin/;", "//;a;b//admin/;c/"] {
            assert_eq!(m(&t, Method::Get, path).0, Some(0), "{path}");
        }
        assert_eq!(
            m(&t, Method::Get, "/admin/;x/secret"),
            (Some(1), vec!["secret".into()])
        );
        // `%3B` alike: a proxy in front that decodes the path (nginx) hands it on as `;`.
        for path in ["/admin%3B", "/admin%3bx", "/%3Bx//admin"] {
            assert_eq!(m(&t, Method::Get, path).0, Some(0), "{path}");
        }
        assert_eq!(
            m(&t, Method::Get, "/admin%3B/secret"),
            (Some(1), vec!["secret".into()])
        );
        // A parameter captures the segment as sent.
        let p = table(&["GET /files/{name}"]);
        assert_eq!(
            m(&p, Method::Get, "/files/a%3Bb"),
            (Some(0), vec!["a%3Bb".into()])
        );
    }

    /// Backends decode a path before routing it: a literal written with `:`, `|` or `^`
    /// is matched in either spelling (`m` gives paths as the codec leaves them: escapes'
    /// digits in upper case), or the other one reached the catch-all past its guard.
    #[test]
    fn a_reserved_character_and_its_escape_are_one_literal() {
        let t = table(&[
            "GET /a:b",
            "GET /reports%7Cdaily",
            "GET /t^x/{id}",
            "ANY /{proxy+}",
        ]);
        for (path, route) in [
            ("/a:b", 0),
            ("/a%3Ab", 0),
            ("/reports%7Cdaily", 1),
            ("/reports|daily", 1),
            ("/reports|daily;x", 1),
            ("/t^x/1", 2),
            ("/t%5Ex/1", 2),
            ("/a%3Ac", 3),
            ("/reports%7C", 3),
        ] {
            assert_eq!(m(&t, Method::Get, path).0, Some(route), "{path}");
        }
        // A parameter keeps the bytes as sent.
        assert_eq!(m(&t, Method::Get, "/t%5Ex/a|b").1, vec!["a|b".to_string()]);
    }

    /// API Gateway splits the path at `%2F`, and WSGI, Go and nginx decode it before
    /// routing (IIS and Undertow read `%5C` as `/` too): routed as one segment,
    /// `/admin%2Fsecret` missed `/admin/{p+}`'s guard and reached the catch-all.
    #[test]
    fn an_encoded_slash_or_backslash_separates_segments() {
        let t = table(&["GET /admin/{p+}", "ANY /{proxy+}", "GET /u/{id}", "GET /x"]);
        for path in [
            "/admin%2Fsecret",
            "/admin%2fsecret",
            "/admin%5Csecret",
            "/admin%5csecret",
            "%2Fadmin/secret",
            "/admin%2F%2Fsecret",
            "/admin;x%2Fsecret",
            "/admin/%2F;y%5Csecret",
        ] {
            assert_eq!(
                m(&t, Method::Get, path),
                (Some(0), vec!["secret".into()]),
                "{path}"
            );
        }
        // The greedy value is the rest as sent, escapes and all.
        assert_eq!(
            m(&t, Method::Get, "/admin/a%2Fb%5Cc"),
            (Some(0), vec!["a%2Fb%5Cc".into()])
        );
        // `{id}` is one segment: `a%2Fb` is two.
        assert_eq!(m(&t, Method::Get, "/u/a%2Fb").0, Some(1));
        assert_eq!(
            m(&t, Method::Get, "/u/a%20b"),
            (Some(2), vec!["a%20b".into()])
        );
        // Trailing and leading separators are empty segments; other escapes are not
        // separators.
        for path in ["/x%2F", "%5C/x", "/x%2F%5C"] {
            assert_eq!(m(&t, Method::Get, path).0, Some(3), "{path}");
        }
        assert_eq!(m(&t, Method::Get, "/x%2E").0, Some(1));
        assert_eq!(m(&t, Method::Get, "/x%2").0, Some(1));
    }

    #[test]
    fn trailing_slash_and_root() {
        let t = table(&["GET /", "GET /a"]);
        assert_eq!(m(&t, Method::Get, "/").0, Some(0));
        assert_eq!(m(&t, Method::Get, "").0, Some(0));
        assert_eq!(m(&t, Method::Get, "/a/").0, Some(1));
        assert_eq!(m(&t, Method::Get, "/b").0, None);
    }
}
