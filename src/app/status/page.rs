//! The status page as HTML: a page that draws the JSON view it carries, then
//! fetches the JSON again every second and draws it anew (`page.js`), with no
//! reload, no framework and nothing from elsewhere. The JSON it starts from
//! is in the page itself, so the first drawing needs no second request.
//!
//! The page allows itself its one script and its one style sheet, by their
//! SHA-256 (`Content-Security-Policy`), and may fetch from its own origin
//! only: nothing else can run in it, whatever a connection's client address
//! or a counter could hold.

use std::sync::OnceLock;

use base64::Engine as _;

use crate::http::{Response, StatusCode};

const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");

/// The page, carrying `json` (the JSON view, as the same request would get it).
pub(super) fn html(json: &str) -> Response {
    // `</` cannot end the data block early: JSON escapes `/` as it likes.
    let json = json.replace("</", "<\\/");
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>oneloop status</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>oneloop status</h1>\n<p id=\"updated\"></p>\n\
         <noscript><p>This page draws itself with a script. The same figures are \
         here as JSON (<code>Accept: application/json</code>) and in the \
         Prometheus format at <code>metrics</code> under this path.</p></noscript>\n\
         <div id=\"summary\"></div>\n<h2>The state machine, live</h2>\n\
         <div id=\"diagram\"></div>\n<h2>The loops, live</h2>\n<div id=\"loops\"></div>\n\
         <p>Also as JSON (<code>Accept: application/json</code>) and in the Prometheus \
         format at <code>metrics</code> under this path.</p>\n\
         <script type=\"application/json\" id=\"snapshot\">{json}</script>\n\
         <script>{SCRIPT}</script>\n</body>\n</html>\n"
    );
    Response::new(StatusCode::OK)
        .with_header("Content-Type", "text/html; charset=utf-8")
        .with_header("Content-Security-Policy", policy())
        .with_body(body.into_bytes())
}

/// The policy: the page's own script and style by hash, fetches to itself.
fn policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        format!(
            "default-src 'none'; script-src '{}'; style-src '{}'; connect-src 'self'; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            sha256(SCRIPT),
            sha256(STYLE)
        )
    })
}

/// A CSP source for `text`: `sha256-` and its digest in base64.
fn sha256(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_carries_its_json_and_allows_its_own_script_only() {
        let page = html("{\"x\":\"</script><script>alert(1)</script>\"}");
        let text = String::from_utf8(crate::app::tests::body_bytes(&page)).unwrap();
        assert!(text.contains("<script type=\"application/json\" id=\"snapshot\">"));
        assert!(
            !text.contains("</script><script>alert"),
            "a value cannot close the data block"
        );
        let policy = page.header("content-security-policy").unwrap();
        assert!(policy.contains(&sha256(SCRIPT)), "{policy}");
        assert!(policy.contains("connect-src 'self'"), "{policy}");
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        // The hash is of the script exactly as the page carries it.
        assert!(text.contains(&format!("<script>{SCRIPT}</script>")));
        assert!(text.contains(&format!("<style>{STYLE}</style>")));
    }

    #[test]
    fn hashes_are_the_ones_browsers_compute() {
        // echo -n 'alert(1)' | openssl dgst -sha256 -binary | base64
        assert_eq!(
            sha256("alert(1)"),
            "sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI="
        );
    }
}
