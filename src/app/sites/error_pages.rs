//! What a site answers an error with: its own page for that status
//! (`error-pages = { 404 = "/404.html" }`), served from its folder with the
//! original status, or, for a browser, a small page naming the status.
//!
//! An error page is read when it is needed, with no conditional or range
//! handling (it stands for a resource that is not there, so validators or
//! ranges of it would mean nothing), and up to [`MAX_PAGE_BYTES`].

use std::io::Read;
use std::path::Path;

use crate::app::statics::{self, resolve_file};
use crate::http::{RequestHead, Response, StatusCode};

/// The largest error page read; a larger one is not served (the plain
/// answer is), and the log says why.
const MAX_PAGE_BYTES: u64 = 256 << 10;

/// Fields of an error answer that still hold when its body is replaced.
const KEPT_FIELDS: [&str; 4] = ["Allow", "WWW-Authenticate", "Retry-After", "Location"];

#[derive(Debug, Default)]
pub(super) struct ErrorPages {
    pages: Vec<(StatusCode, String)>,
    /// Whether a browser's error without a page of its own gets a small one.
    for_browsers: bool,
}

impl ErrorPages {
    pub(super) fn compile(
        pages: &[(u16, String)],
        for_browsers: bool,
    ) -> Result<ErrorPages, String> {
        let mut compiled = Vec::with_capacity(pages.len());
        for (code, path) in pages {
            let status = StatusCode::known(*code)
                .filter(|s| s.as_u16() >= 400)
                .ok_or_else(|| {
                    format!("error-pages: {code} is not an error status oneloop sends")
                })?;
            if !path.starts_with('/') {
                return Err(format!(
                    "error-pages: {code} = \"{path}\": a path in the site's folder, from /"
                ));
            }
            compiled.push((status, path.clone()));
        }
        Ok(ErrorPages {
            pages: compiled,
            for_browsers,
        })
    }

    /// Whether it changes no answer at all.
    pub(super) fn is_empty(&self) -> bool {
        self.pages.is_empty() && !self.for_browsers
    }

    pub(super) fn describe(&self) -> Vec<String> {
        self.pages
            .iter()
            .map(|(status, path)| format!("{}: {path}", status.as_u16()))
            .collect()
    }

    /// `response` (an error), with its body replaced by the site's page for
    /// its status, or by a small HTML page for a browser.
    pub(super) fn answer(
        &self,
        response: Response,
        request: &RequestHead,
        root: Option<&Path>,
    ) -> Response {
        let status = response.status();
        let page = self.pages.iter().find(|(s, _)| *s == status);
        if let (Some((_, path)), Some(root)) = (page, root) {
            match read_page(root, path) {
                Ok((bytes, content_type)) => {
                    return keep_fields(&response, Response::new(status))
                        .with_header("Content-Type", content_type)
                        .with_body(bytes);
                }
                Err(why) => log::warn!("error page {path} for {status}: {why}"),
            }
        }
        let browser = request
            .header_str("accept")
            .is_some_and(|accept| accept.contains("text/html"));
        if !browser || !self.for_browsers {
            return response;
        }
        keep_fields(&response, Response::new(status))
            .with_header("Content-Type", "text/html; charset=utf-8")
            .with_body(html_page(status).into_bytes())
    }
}

/// The page at URL path `path` under `root`, through the same checks as any
/// file the site serves (a symlink leading out of the folder is refused).
fn read_page(root: &Path, path: &str) -> Result<(Vec<u8>, String), String> {
    let file = resolve_file(root, path).ok_or("not a file in the site's folder")?;
    let mut handle = std::fs::File::open(&file).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    handle
        .by_ref()
        .take(MAX_PAGE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_PAGE_BYTES {
        return Err(format!("larger than {} KiB", MAX_PAGE_BYTES >> 10));
    }
    Ok((bytes, statics::content_type(&file)))
}

fn keep_fields(from: &Response, mut to: Response) -> Response {
    for name in KEPT_FIELDS {
        if let Some(value) = from.header(name) {
            to.add_header(name, value);
        }
    }
    to
}

/// A page a person can read: the status, and a way home.
fn html_page(status: StatusCode) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width\">\n<title>{status}</title>\n\
         <h1>{status}</h1>\n<p><a href=\"/\">Go to the home page</a></p>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_head as head;

    #[test]
    fn only_error_statuses_and_site_paths_are_pages() {
        let compile = |code, path: &str| ErrorPages::compile(&[(code, path.into())], true);
        assert!(compile(404, "/404.html").is_ok());
        assert!(compile(200, "/ok.html").is_err());
        assert!(compile(404, "404.html").is_err());
        assert!(compile(499, "/x.html").is_err());
    }

    #[test]
    fn a_site_page_keeps_the_status_and_the_fields_that_matter() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("401.html"), "<p>who are you?</p>").unwrap();
        let pages = ErrorPages::compile(&[(401, "/401.html".into())], true).unwrap();
        let refused = Response::error(StatusCode::UNAUTHORIZED)
            .with_header("WWW-Authenticate", "Basic realm=\"x\"");
        let request = head("GET /private/ HTTP/1.1\r\nHost: a\r\n\r\n");
        let root = dir.path().canonicalize().unwrap();
        let answer = pages.answer(refused, &request, Some(&root));
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(answer.header("WWW-Authenticate"), Some("Basic realm=\"x\""));
        assert_eq!(
            answer.header("Content-Type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(
            crate::app::tests::body_bytes(&answer),
            b"<p>who are you?</p>"
        );
    }

    #[test]
    fn a_browser_gets_a_page_and_a_program_the_plain_answer() {
        let pages = ErrorPages::compile(&[], true).unwrap();
        let browser = head("GET /x HTTP/1.1\r\nHost: a\r\nAccept: text/html,*/*\r\n\r\n");
        let answer = pages.answer(Response::error(StatusCode::NOT_FOUND), &browser, None);
        let body = String::from_utf8(crate::app::tests::body_bytes(&answer)).unwrap();
        assert!(body.contains("<h1>404 Not Found</h1>") && body.contains("href=\"/\""));
        let curl = head("GET /x HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n");
        let answer = pages.answer(Response::error(StatusCode::NOT_FOUND), &curl, None);
        assert_eq!(crate::app::tests::body_bytes(&answer), b"404 Not Found\n");
    }
}
