//! A `Content-Type` value as browsers read it (Fetch, "extract a MIME type"): the value
//! is split at commas outside quoted strings, and the last item that parses as
//! `type/subtype` (other than `*/*`) is the media type. So `application/json, text/html`
//! is an HTML page to a browser, whatever its first item says: what the gateway writes
//! into a body must be escaped for the type the browser will render.

use super::parse::is_token;

/// The items of a comma-separated value, split outside quoted strings (a `\` in one
/// quotes the next byte) and trimmed of spaces and tabs; empty items are kept.
pub fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let v = rest?;
        let mut quoted = false;
        let mut i = 0;
        while i < v.len() {
            match v[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b',' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        let i = i.min(v.len());
        rest = v.get(i + 1..).filter(|_| i < v.len());
        Some(trim(&v[..i]))
    })
}

fn trim(s: &[u8]) -> &[u8] {
    let ws = |b: &u8| matches!(b, b' ' | b'\t');
    let start = s.iter().position(|b| !ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !ws(b)).map_or(start, |e| e + 1);
    &s[start..end]
}

/// One item as a `(type, subtype)` pair, both tokens (any case, parameters ignored), as
/// Fetch's "parse a MIME type" reads it; None when it is not one.
pub fn parse(item: &[u8]) -> Option<(&[u8], &[u8])> {
    let item = trim(item);
    let slash = item.iter().position(|&b| b == b'/')?;
    let (kind, rest) = (&item[..slash], &item[slash + 1..]);
    let end = rest.iter().position(|&b| b == b';').unwrap_or(rest.len());
    let sub = trim(&rest[..end]);
    (is_token(kind) && is_token(sub)).then_some((kind, sub))
}

/// The media type a browser takes from a whole `Content-Type` value: the last item that
/// parses, `*/*` skipped. None: no item does, and the browser sniffs the body instead.
pub fn browser_media_type(value: &[u8]) -> Option<(&[u8], &[u8])> {
    list_items(value)
        .filter_map(parse)
        .filter(|(t, s)| !(t == b"*" && s == b"*"))
        .last()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_valid_item_of_a_list_is_the_type() {
        let t = |v: &str| browser_media_type(v.as_bytes()).map(|(a, b)| (a.to_vec(), b.to_vec()));
        let pair = |a: &str, b: &str| Some((a.as_bytes().to_vec(), b.as_bytes().to_vec()));
        assert_eq!(t("application/json"), pair("application", "json"));
        assert_eq!(t("application/json, text/html"), pair("text", "html"));
        assert_eq!(t("text/html, nonsense"), pair("text", "html"));
        assert_eq!(t("text/html, */*"), pair("text", "html"));
        assert_eq!(t(" Text/HTML ; charset=utf-8"), pair("Text", "HTML"));
        // A comma inside a quoted parameter does not split the value.
        assert_eq!(
            t(r#"application/json; x="a,text/html", "#),
            pair("application", "json")
        );
        assert_eq!(
            t(r#"application/json; x="a\",text/html""#),
            pair("application", "json")
        );
        assert_eq!(t("json"), None);
        assert_eq!(t(""), None);
        assert_eq!(t("text/"), None);
        assert_eq!(t("te xt/html"), None);
        let items: Vec<&[u8]> = list_items(b"a, b,,c").collect();
        assert_eq!(items, [&b"a"[..], b"b", b"", b"c"]);
    }
}
