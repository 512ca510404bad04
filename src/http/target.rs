//! The request-target (RFC 9112 section 3.2) and the Host it names: split into
//! path and query once, when the head is parsed, and checked there.
//!
//! Everything here works on bytes and returns byte ranges, so no character
//! boundary is ever guessed at: a target full of UTF-8 is sliced only at the
//! ASCII delimiters (`/`, `?`, `:`) it was split on.
//!
//! What is refused, with 400:
//! - a `%` in the path that is not followed by two hex digits (`/100%.txt`,
//!   `/%zz`), as nginx refuses it: the path cannot be decoded, so it names
//!   nothing;
//! - an absolute-form target whose authority is not a valid `uri-host [":" port]`;
//! - a Host field that is not a valid `uri-host [":" port]` (RFC 3986 section 3.2).
//!
//! What is accepted although RFC 3986 would not have it: raw UTF-8 in the path
//! and query, which browsers percent-encode but crawlers and scripts often do
//! not. It means what its percent-encoded form means, as in nginx and lighttpd.
//! (Bytes that are not UTF-8 never get here: httparse refuses them.)

use std::net::Ipv6Addr;
use std::ops::Range;

use super::error::ProtocolError;

/// Where the parts of a target sit, as ranges of the target's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TargetParts {
    /// The path, still percent-encoded; for absolute-form without a path, empty
    /// (which [`RequestHead::path`](super::RequestHead::path) reads as `/`).
    pub path: Range<usize>,
    /// After the `?`, if there is one.
    pub query: Option<Range<usize>>,
}

/// Splits and checks a request-target. `*` and authority-form (for CONNECT)
/// come back as a "path" that is the whole target; the router never mistakes
/// either for a file, since neither starts with `/`.
pub(crate) fn split(target: &[u8]) -> Result<TargetParts, ProtocolError> {
    let after_authority = match absolute_form_rest(target) {
        Some((authority, rest)) => {
            check_authority(authority)
                .map_err(|_| ProtocolError::Malformed("invalid authority in the target"))?;
            // RFC 9110 section 4.2.1: an http(s) URI with an empty host
            // "MUST" be rejected as invalid.
            if authority.is_empty() || authority.starts_with(b":") {
                return Err(ProtocolError::Malformed("an empty host in the target"));
            }
            rest
        }
        None => 0,
    };
    let rest = target.get(after_authority..).unwrap_or_default();
    let (path_len, query) = match rest.iter().position(|&b| b == b'?') {
        Some(q) => (q, Some(after_authority + q + 1..target.len())),
        None => (rest.len(), None),
    };
    let path = after_authority..after_authority + path_len;
    if !valid_percent_escapes(target.get(path.clone()).unwrap_or_default()) {
        return Err(ProtocolError::Malformed(
            "invalid percent-encoding in the path",
        ));
    }
    Ok(TargetParts { path, query })
}

/// For `http://host:80/a?b` (scheme case-insensitive), the authority and the
/// offset where the path begins; `None` for every other form.
fn absolute_form_rest(target: &[u8]) -> Option<(&[u8], usize)> {
    let scheme_len = ["http://", "https://"].iter().find_map(|scheme| {
        let prefix = target.get(..scheme.len())?;
        prefix
            .eq_ignore_ascii_case(scheme.as_bytes())
            .then_some(scheme.len())
    })?;
    let rest = target.get(scheme_len..)?;
    let authority_len = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    Some((rest.get(..authority_len)?, scheme_len + authority_len))
}

/// Whether every `%` is followed by two hex digits.
fn valid_percent_escapes(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while let Some(at) = rest.iter().position(|&b| b == b'%') {
        match rest.get(at + 1..at + 3) {
            Some([high, low]) if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                rest = rest.get(at + 3..).unwrap_or_default();
            }
            _ => return false,
        }
    }
    true
}

/// A Host value or an absolute-form authority is not `uri-host [":" port]`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct InvalidHost;

/// Checks `uri-host [":" port]` (RFC 3986 section 3.2.2): an IP literal in
/// brackets, or a reg-name (which covers IPv4 addresses), then an optional
/// port of at most five digits. Userinfo (`user@host`) is not allowed in HTTP.
/// An empty value is valid: RFC 9110 section 7.2 has clients send one when the
/// target has no authority.
pub(crate) fn check_authority(value: &[u8]) -> Result<(), InvalidHost> {
    let (host, port) = if value.first() == Some(&b'[') {
        let close = value.iter().position(|&b| b == b']').ok_or(InvalidHost)?;
        let literal = value.get(1..close).ok_or(InvalidHost)?;
        if !valid_ip_literal(literal) {
            return Err(InvalidHost);
        }
        match value.get(close + 1..).unwrap_or_default() {
            [] => (b"".as_slice(), None),
            [b':', port @ ..] => (b"".as_slice(), Some(port)),
            _ => return Err(InvalidHost),
        }
    } else {
        match value.iter().rposition(|&b| b == b':') {
            Some(colon) => (
                value.get(..colon).unwrap_or_default(),
                value.get(colon + 1..),
            ),
            None => (value, None),
        }
    };
    if !valid_reg_name(host) {
        return Err(InvalidHost);
    }
    match port {
        Some(digits) if digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) => {
            Err(InvalidHost)
        }
        _ => Ok(()),
    }
}

/// The bytes a reg-name may hold: unreserved, sub-delims and `%` (whose
/// escapes are checked apart). A table, because every request's Host goes
/// through it.
const REG_NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] = byte.is_ascii_alphanumeric();
        b += 1;
    }
    let others = b"-._~!$&'()*+,;=%";
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = true;
        i += 1;
    }
    table
};

/// `reg-name = *( unreserved / pct-encoded / sub-delims )`.
fn valid_reg_name(host: &[u8]) -> bool {
    host.iter().all(|&b| REG_NAME_BYTES[usize::from(b)]) && valid_percent_escapes(host)
}

/// `IP-literal = "[" ( IPv6address / IPvFuture ) "]"`, without the brackets.
fn valid_ip_literal(literal: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = literal {
        // IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
        let Some(dot) = rest.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (version, tail) = rest.split_at(dot);
        let tail = tail.get(1..).unwrap_or_default();
        let allowed = |b: &u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:".contains(b);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !tail.is_empty()
            && tail.iter().all(allowed);
    }
    std::str::from_utf8(literal).is_ok_and(|text| text.parse::<Ipv6Addr>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(target: &str) -> Result<(String, Option<String>), ProtocolError> {
        let bytes = target.as_bytes();
        split(bytes).map(|p| {
            let text = |r: Range<usize>| String::from_utf8(bytes[r].to_vec()).unwrap();
            (text(p.path), p.query.map(text))
        })
    }

    fn ok(path: &str, query: Option<&str>) -> Result<(String, Option<String>), ProtocolError> {
        Ok((path.to_owned(), query.map(str::to_owned)))
    }

    #[test]
    fn origin_form_splits_at_the_first_question_mark() {
        assert_eq!(parts("/a/b"), ok("/a/b", None));
        assert_eq!(parts("/a?x=1?y"), ok("/a", Some("x=1?y")));
        assert_eq!(parts("/a?"), ok("/a", Some("")));
        assert_eq!(parts("/"), ok("/", None));
    }

    #[test]
    fn absolute_form_drops_scheme_and_authority() {
        assert_eq!(parts("http://h:8/a/b?c"), ok("/a/b", Some("c")));
        assert_eq!(parts("HTTPS://h"), ok("", None));
        assert_eq!(parts("http://h?q"), ok("", Some("q")));
        assert_eq!(parts("http://[::1]:80/x"), ok("/x", None));
        assert!(parts("http://us er@h/").is_err());
        assert!(parts("http://h:port/").is_err());
        assert!(parts("http:///a").is_err());
        assert!(parts("https://:443/a").is_err());
    }

    #[test]
    fn utf8_anywhere_is_sliced_only_at_ascii_delimiters() {
        // The crash that started issue 8: a multi-byte character at the offset
        // where "http://" would end.
        assert_eq!(parts("/résumé.pdf"), ok("/résumé.pdf", None));
        assert_eq!(parts("/ab\u{e9}cd"), ok("/ab\u{e9}cd", None));
        assert_eq!(parts("/h\u{e9}?q=\u{e9}"), ok("/h\u{e9}", Some("q=\u{e9}")));
        for offset in 0..16 {
            let target = format!("/{}é{}", "x".repeat(offset), "y".repeat(16));
            assert!(parts(&target).is_ok(), "{target}");
        }
    }

    #[test]
    fn malformed_percent_escapes_in_the_path_are_refused() {
        for bad in ["/100%.txt", "/%zz", "/%", "/%4", "/a%g1", "/%\u{e9}9"] {
            assert!(
                matches!(parts(bad), Err(ProtocolError::Malformed(_))),
                "{bad}"
            );
        }
        assert_eq!(parts("/%41%2f%C3%A9"), ok("/%41%2f%C3%A9", None));
        // The query is the application's business.
        assert_eq!(parts("/a?100%"), ok("/a", Some("100%")));
    }

    #[test]
    fn hosts() {
        for good in [
            "example.org",
            "example.org:8080",
            "EXAMPLE.org:",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:4221",
            "[2001:db8::7]",
            "[v1.fe80::a+en1]",
            "xn--rsum-bpad.example",
            "a%2Db",
            "",
        ] {
            assert_eq!(check_authority(good.as_bytes()), Ok(()), "{good:?}");
        }
        for bad in [
            "exa mple.org",
            "example.org/path",
            "user@example.org",
            "example.org:80:80",
            "example.org:123456",
            "example.org:8o",
            "[::1",
            "[::1]x",
            "[not-v6]",
            "[v.x]",
            "résumé.example",
            "a%zz",
            "a\\b",
        ] {
            assert_eq!(check_authority(bad.as_bytes()), Err(InvalidHost), "{bad:?}");
        }
    }
}
