//! A request's `Content-Type` as validation reads it: one `type/subtype` with well-formed
//! `;` parameters, or none that names a model (refused, as a backend that searches the
//! header for a media type would read another).

/// `type/subtype`, both tokens (RFC 9110 §8.3.1).
pub(super) fn is_media_type(t: &[u8]) -> bool {
    let token = crate::http1::parse::is_token;
    match t.iter().position(|&b| b == b'/') {
        Some(i) => token(&t[..i]) && token(&t[i + 1..]),
        None => false,
    }
}

/// The `;` parameters after a media type: each empty or `name=value`, the value a
/// quoted-string or a token (RFC 9110 §5.6.6; leniently, with the `/ : = ? ( )` of
/// unquoted multipart boundaries). `text/plain;application/json` is not one: a backend
/// that looks for `application/json` anywhere in the header reads JSON.
pub(super) fn parameters_well_formed(mut rest: &[u8]) -> bool {
    use crate::http1::parse::is_tchar;
    loop {
        rest = rest.trim_ascii_start();
        match rest {
            [] => return true,
            [b';', more @ ..] => {
                rest = more;
                continue;
            }
            _ => {}
        }
        let name = rest.iter().take_while(|&&b| is_tchar(b)).count();
        if name == 0 || rest.get(name) != Some(&b'=') {
            return false;
        }
        rest = &rest[name + 1..];
        let value = if let [b'"', quoted @ ..] = rest {
            let mut i = 0;
            loop {
                match quoted.get(i) {
                    None => return false,
                    Some(b'\\') => i += 2,
                    Some(b'"') => break i + 2,
                    Some(_) => i += 1,
                }
            }
        } else {
            // A `,` makes a list (`charset=utf-8,application/json`), a blank two words:
            // not one value.
            let unquoted = |b: u8| is_tchar(b) || b"/:=?()".contains(&b);
            match rest.iter().take_while(|&&b| unquoted(b)).count() {
                0 => return false,
                n => n,
            }
        };
        rest = rest[value..].trim_ascii_start();
        if !(rest.is_empty() || rest[0] == b';') {
            return false;
        }
    }
}
