//! Conditional requests (RFC 9110 section 13): validators and preconditions.
//!
//! Evaluated in the order of section 13.2.2: If-Match, then If-Unmodified-Since
//! (only without If-Match), then If-None-Match, then If-Modified-Since (only for
//! GET and HEAD, only without If-None-Match). If-Range is section 13.1.5.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::http::{Method, RequestHead};

/// What the preconditions decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// Serve the request normally.
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// The validators of one representation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Validators {
    /// An entity tag, quotes included: strong, but for a representation
    /// compressed on the fly (`W/"..."`).
    pub etag: String,
    /// Modification time, truncated to the second (HTTP dates have no more).
    pub last_modified: SystemTime,
    /// `last_modified` as an HTTP date, formatted once (cached files reuse it).
    pub last_modified_text: String,
}

impl Validators {
    pub(crate) fn new(etag: String, modified: SystemTime) -> Validators {
        let last_modified = to_seconds(modified);
        Validators {
            etag,
            last_modified,
            last_modified_text: httpdate::fmt_http_date(last_modified),
        }
    }
}

/// Truncates a time to whole seconds.
pub(super) fn to_seconds(time: SystemTime) -> SystemTime {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + std::time::Duration::from_secs(d.as_secs()),
        Err(_) => UNIX_EPOCH,
    }
}

/// Evaluates the request's preconditions against `current`.
pub(crate) fn evaluate(request: &RequestHead, current: &Validators) -> Precondition {
    let safe = matches!(request.method(), Method::Get | Method::Head);

    if let Some(tags) = joined(request, "if-match") {
        if !tag_list_matches(&tags, &current.etag, Comparison::Strong) {
            return Precondition::Failed;
        }
    } else if let Some(since) = single_date(request, "if-unmodified-since")
        && current.last_modified > since
    {
        return Precondition::Failed;
    }

    if let Some(tags) = joined(request, "if-none-match") {
        if tag_list_matches(&tags, &current.etag, Comparison::Weak) {
            return if safe {
                Precondition::NotModified
            } else {
                Precondition::Failed
            };
        }
    } else if safe
        && let Some(since) = single_date(request, "if-modified-since")
        && current.last_modified <= since
    {
        return Precondition::NotModified;
    }
    Precondition::Proceed
}

/// If-Range: whether the Range header still applies (the representation is the
/// one the client has part of). An entity tag must match strongly; a date must
/// equal Last-Modified exactly.
pub(crate) fn if_range_holds(request: &RequestHead, current: &Validators) -> bool {
    let Some(value) = request.header_str("if-range").map(str::trim) else {
        return true;
    };
    if value.starts_with("W/") {
        // Strong comparison: a weak tag never matches, not even itself
        // (RFC 9110 section 13.1.5).
        return false;
    }
    if value.starts_with('"') {
        return value == current.etag;
    }
    httpdate::parse_http_date(value).is_ok_and(|date| date == current.last_modified)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Strong,
    Weak,
}

/// Every value of a list header, joined with commas (lists may be split across
/// several header lines).
fn joined(request: &RequestHead, name: &str) -> Option<String> {
    let mut values = request.headers(name).peekable();
    values.peek()?;
    let parts: Vec<String> = values
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    Some(parts.join(","))
}

/// A date header with exactly one valid HTTP-date; anything else is ignored, as
/// RFC 9110 requires.
fn single_date(request: &RequestHead, name: &str) -> Option<SystemTime> {
    let mut values = request.headers(name);
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let text = std::str::from_utf8(value).ok()?;
    httpdate::parse_http_date(text.trim()).ok()
}

/// Whether `*` or any entity tag in `list` matches `etag`.
fn tag_list_matches(list: &str, etag: &str, comparison: Comparison) -> bool {
    if list.trim() == "*" {
        return true;
    }
    let (current_weak, current_opaque) = split_weak(etag);
    entity_tags(list).any(|tag| {
        let (weak, opaque) = split_weak(tag);
        opaque == current_opaque && (comparison == Comparison::Weak || (!weak && !current_weak))
    })
}

fn split_weak(tag: &str) -> (bool, &str) {
    match tag.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, tag),
    }
}

/// Splits `"a", W/"b,c"` into its entity tags, quotes included. Commas are legal
/// inside an opaque tag, so this follows the quotes rather than splitting on
/// commas. Every cut is just after an ASCII byte, so text in any script is
/// never cut inside a character.
fn entity_tags(list: &str) -> impl Iterator<Item = &str> {
    let mut rest = list;
    std::iter::from_fn(move || {
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                return None;
            }
            let weak = if rest.starts_with("W/") { 2 } else { 0 };
            let opaque = rest.get(weak..).unwrap_or_default();
            let Some(quoted) = opaque.strip_prefix('"') else {
                // Not an entity tag: skip to the next comma and ignore it.
                rest = rest
                    .find(',')
                    .and_then(|c| rest.get(c..))
                    .unwrap_or_default();
                continue;
            };
            // Up to the closing quote, or to the end if there is none.
            let end = quoted.find('"').map_or(rest.len(), |q| weak + 1 + q + 1);
            let (tag, tail) = rest.split_at_checked(end)?;
            rest = tail;
            return Some(tag);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_head as head;
    use std::time::Duration;

    fn current() -> Validators {
        Validators::new(
            "\"abc\"".into(),
            UNIX_EPOCH + Duration::from_secs(1_000_000_000),
        )
    }

    const LM: &str = "Sun, 09 Sep 2001 01:46:40 GMT";
    const BEFORE: &str = "Sun, 09 Sep 2001 01:46:39 GMT";

    fn eval(method: &str, fields: &str) -> Precondition {
        evaluate(
            &head(&format!("{method} / HTTP/1.1\r\nHost: a\r\n{fields}\r\n")),
            &current(),
        )
    }

    #[test]
    fn if_none_match() {
        assert_eq!(
            eval("GET", "If-None-Match: \"abc\"\r\n"),
            Precondition::NotModified
        );
        assert_eq!(
            eval("GET", "If-None-Match: W/\"abc\"\r\n"),
            Precondition::NotModified
        );
        assert_eq!(
            eval("GET", "If-None-Match: \"x\", \"abc\"\r\n"),
            Precondition::NotModified
        );
        assert_eq!(
            eval("GET", "If-None-Match: \"x\"\r\nIf-None-Match: \"abc\"\r\n"),
            Precondition::NotModified
        );
        assert_eq!(
            eval("GET", "If-None-Match: *\r\n"),
            Precondition::NotModified
        );
        assert_eq!(
            eval("GET", "If-None-Match: \"x\"\r\n"),
            Precondition::Proceed
        );
        assert_eq!(
            eval("POST", "If-None-Match: \"abc\"\r\n"),
            Precondition::Failed
        );
    }

    #[test]
    fn if_modified_since() {
        assert_eq!(
            eval("GET", &format!("If-Modified-Since: {LM}\r\n")),
            Precondition::NotModified
        );
        assert_eq!(
            eval("HEAD", &format!("If-Modified-Since: {LM}\r\n")),
            Precondition::NotModified
        );
        assert_eq!(
            eval("GET", &format!("If-Modified-Since: {BEFORE}\r\n")),
            Precondition::Proceed
        );
        assert_eq!(
            eval("GET", "If-Modified-Since: yesterday\r\n"),
            Precondition::Proceed
        );
        // Ignored when If-None-Match is present.
        let both = format!("If-None-Match: \"x\"\r\nIf-Modified-Since: {LM}\r\n");
        assert_eq!(eval("GET", &both), Precondition::Proceed);
        // The obsolete date formats are still dates.
        assert_eq!(
            eval(
                "GET",
                "If-Modified-Since: Sunday, 09-Sep-01 01:46:40 GMT\r\n"
            ),
            Precondition::NotModified
        );
    }

    #[test]
    fn if_match_and_if_unmodified_since() {
        assert_eq!(eval("GET", "If-Match: \"abc\"\r\n"), Precondition::Proceed);
        assert_eq!(eval("GET", "If-Match: *\r\n"), Precondition::Proceed);
        assert_eq!(eval("GET", "If-Match: W/\"abc\"\r\n"), Precondition::Failed);
        assert_eq!(eval("GET", "If-Match: \"x\"\r\n"), Precondition::Failed);
        assert_eq!(
            eval("GET", &format!("If-Unmodified-Since: {LM}\r\n")),
            Precondition::Proceed
        );
        assert_eq!(
            eval("GET", &format!("If-Unmodified-Since: {BEFORE}\r\n")),
            Precondition::Failed
        );
        assert_eq!(
            eval("GET", "If-Unmodified-Since: garbage\r\n"),
            Precondition::Proceed
        );
        // If-Match wins over If-Unmodified-Since.
        let both = format!("If-Match: \"abc\"\r\nIf-Unmodified-Since: {BEFORE}\r\n");
        assert_eq!(eval("GET", &both), Precondition::Proceed);
    }

    #[test]
    fn entity_tag_lists_follow_quotes() {
        let tags: Vec<&str> = entity_tags("\"a,b\" , W/\"c\",junk,\"d\"").collect();
        assert_eq!(tags, vec!["\"a,b\"", "W/\"c\"", "\"d\""]);
        let tags: Vec<&str> = entity_tags("é, \"é\", W/\"ü, \"open").collect();
        assert_eq!(tags, vec!["\"é\"", "W/\"ü, \""]);
        let unterminated: Vec<&str> = entity_tags("\"a\", \"ope\u{e9}").collect();
        assert_eq!(unterminated, vec!["\"a\"", "\"ope\u{e9}"]);
        assert_eq!(entity_tags("W/").count(), 0);
    }

    #[test]
    fn if_range() {
        let check = |value: &str| {
            if_range_holds(
                &head(&format!(
                    "GET / HTTP/1.1\r\nHost: a\r\nIf-Range: {value}\r\n\r\n"
                )),
                &current(),
            )
        };
        assert!(check("\"abc\""));
        assert!(!check("W/\"abc\""));
        assert!(!check("\"other\""));
        assert!(check(LM));
        assert!(!check(BEFORE));
        assert!(!check("nonsense"));
        let weak = Validators {
            etag: "W/\"abc\"".into(),
            ..current()
        };
        let weak_range = head("GET / HTTP/1.1\r\nHost: a\r\nIf-Range: W/\"abc\"\r\n\r\n");
        assert!(
            !if_range_holds(&weak_range, &weak),
            "a weak tag is never strongly equal, even to itself"
        );
    }
}
