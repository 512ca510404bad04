//! The application: what oneloop answers. It maps a parsed request to a response
//! and knows nothing of sockets, threads or readiness; every driver runs this
//! same code, which is what makes the models comparable.
//!
//! Before routing, the password gate (`--auth-file`) admits the request or
//! answers it `401` (everything it guards: the whole site, or uploads only).
//!
//! Routing precedence, first match wins:
//! 0. the status page, when `--status` names its path;
//! 1. built-in endpoints (unless `--no-builtins`): `/echo/{text}`, `/user-agent`,
//!    and `/files/{name}` when `--directory` is given;
//! 2. the static root, when one is given;
//! 3. `/` answers 200 with an empty body when there is no static root;
//! 4. anything else is 404.

pub(crate) mod auth;
mod builtins;
mod encoding;
#[cfg(feature = "fault-injection")]
mod fault;
mod file_store;
mod lru;
mod methods;
mod open;
mod redirect;
pub(crate) mod statics;
mod status;
mod url;

pub(crate) use auth::{Gate, Scope};
pub(crate) use open::FileIdentity;
pub(crate) use statics::{CacheLimits, DEFAULT_MAX_ENTRIES, StaticConfig, Visibility};
pub(crate) use status::StatusConfig;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::http::{Method, Now, RequestHead, Response, StatusCode};
use crate::stats::Registry;

/// What the application does with a request.
pub(crate) enum Reply {
    /// The answer, now. Any request body is read and dropped by the connection.
    Respond(Response),
    /// The body is wanted: it goes to this sink, which then gives the answer.
    ReadBody(Box<dyn BodySink>),
}

/// Where a request body goes, piece by piece, as it arrives.
///
/// Dropping a sink before [`finish`](BodySink::finish) abandons the request (the
/// client went away, or the body was malformed): it must leave nothing behind.
pub(crate) trait BodySink: Send {
    /// Takes the next piece of the body. An error is the final answer; the rest
    /// of the body is not wanted.
    fn write(&mut self, data: &[u8]) -> Result<(), Response>;
    /// The body is complete: the answer.
    fn finish(self: Box<Self>) -> Response;
}

/// What the application is configured with.
#[derive(Clone, Debug, Default)]
pub struct AppConfig {
    /// Serve `/echo/`, `/user-agent` and (with a directory) `/files/`.
    pub builtins: bool,
    /// The read-write store behind `/files/`.
    pub files_dir: Option<PathBuf>,
    /// The static site served at `/`.
    pub site: Option<statics::StaticConfig>,
    /// The status page.
    pub status: Option<StatusConfig>,
    /// Basic authentication, with the users of `--auth-file` (the gate is
    /// shared by every loop, so a guesser is held off by all of them).
    pub auth: Option<Arc<Gate>>,
}

pub(crate) struct App {
    /// The `--redirect-http` listener's application: everything is a 308 to
    /// HTTPS on this port.
    redirect_to_https: Option<u16>,
    builtins: bool,
    store: Option<file_store::FileStore>,
    site: Option<statics::StaticSite>,
    status: Option<status::StatusPage>,
    auth: Option<Arc<Gate>>,
}

impl App {
    /// The application `config` describes; its file cache counts into
    /// `stats`, and its status page reads from it.
    pub(crate) fn new(config: &AppConfig, stats: &Arc<Registry>) -> App {
        App {
            redirect_to_https: None,
            builtins: config.builtins,
            store: config
                .files_dir
                .as_ref()
                .filter(|_| config.builtins)
                .map(|dir| file_store::FileStore::new(dir.clone())),
            site: config
                .site
                .clone()
                .map(|site| statics::StaticSite::new(site, stats.cache())),
            status: config
                .status
                .clone()
                .map(|page| status::StatusPage::new(page, Arc::clone(stats))),
            auth: config.auth.clone(),
        }
    }

    /// The application of a plaintext listener that sends every request to
    /// HTTPS on `https_port`.
    pub(crate) fn redirect_to_https(https_port: u16) -> App {
        App {
            redirect_to_https: Some(https_port),
            builtins: false,
            store: None,
            site: None,
            status: None,
            auth: None,
        }
    }

    /// The descriptor that becomes readable when a file the application has
    /// cached changes, if it caches any: a driver that waits on it calls
    /// [`files_changed`](Self::files_changed) when it is readable.
    pub(crate) fn watch_fd(&self) -> Option<std::os::fd::RawFd> {
        self.site.as_ref()?.watch_fd()
    }

    /// Takes in the file changes since the last call: what they made stale is
    /// forgotten. The session calls it before the application reads any bytes
    /// received, so a request sent after a change is answered after it.
    pub(crate) fn files_changed(&self) {
        if let Some(site) = &self.site {
            site.files_changed();
        }
    }

    /// Answers a request from `client`, or asks for its body. `now` is the
    /// driver's clock: the application reads no clock of its own.
    pub(crate) fn handle(&self, request: &RequestHead, client: IpAddr, now: Now<'_>) -> Reply {
        if let Some(port) = self.redirect_to_https {
            return Reply::Respond(redirect::to_https(request, port));
        }
        #[cfg(feature = "fault-injection")]
        if let Some(reply) = fault::inject(request) {
            return reply;
        }
        if let Some(gate) = &self.auth
            && self.is_guarded(gate, request)
            && let Err(refusal) = gate.admit(request, client, now.instant)
        {
            return Reply::Respond(refusal);
        }
        if request.method() == Method::Other {
            return Reply::Respond(Response::error(StatusCode::NOT_IMPLEMENTED));
        }
        if request.target() == "*" {
            // Only `OPTIONS *` gets here (the core refuses `*` with other methods):
            // it asks about the server itself.
            return Reply::Respond(methods::options(methods::SERVER));
        }
        let path = request.path();
        if let Some(reply) = self
            .status
            .as_ref()
            .and_then(|page| page.answer(request, path, client, now))
        {
            return reply;
        }
        if self.builtins {
            if let Some(text) = path.strip_prefix("/echo/") {
                return methods::only(request, methods::READ, || builtins::echo(request, text));
            }
            if path == "/user-agent" {
                return methods::only(request, methods::READ, || builtins::user_agent(request));
            }
            if let (Some(store), Some(name)) = (&self.store, path.strip_prefix("/files/")) {
                return store.handle(request, name);
            }
        }
        if let Some(site) = &self.site {
            return Reply::Respond(site.serve(request, now));
        }
        if path == "/" {
            return methods::only(request, methods::READ, || {
                Reply::Respond(Response::new(StatusCode::OK))
            });
        }
        Reply::Respond(Response::error(StatusCode::NOT_FOUND))
    }

    /// Whether `gate` guards this request: every request, or uploads only.
    fn is_guarded(&self, gate: &Gate, request: &RequestHead) -> bool {
        match gate.scope() {
            Scope::Everything => true,
            Scope::Uploads => {
                self.store.is_some()
                    && request.method() == Method::Post
                    && request.path().starts_with("/files/")
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::http::test_head as head;

    /// The response a reply gives, for replies that answer at once.
    pub(crate) fn respond(reply: Reply) -> Response {
        match reply {
            Reply::Respond(response) => response,
            Reply::ReadBody(_) => panic!("expected an immediate response"),
        }
    }

    pub(crate) fn body_bytes(response: &Response) -> Vec<u8> {
        response
            .body()
            .chunks()
            .iter()
            .flat_map(|chunk| match chunk {
                crate::http::Chunk::Bytes(b) => b.clone(),
                crate::http::Chunk::Shared { data, range } => data[range.clone()].to_vec(),
                crate::http::Chunk::File { .. } => panic!("file chunk in a memory test"),
            })
            .collect()
    }

    fn app() -> App {
        App::new(
            &AppConfig {
                builtins: true,
                ..AppConfig::default()
            },
            &Registry::new(),
        )
    }

    /// The client every test request comes from.
    pub(crate) fn client() -> IpAddr {
        IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
    }

    /// The time every test request is answered at.
    pub(crate) fn now() -> Now<'static> {
        Now {
            instant: std::time::Instant::now(),
            wall: std::time::SystemTime::now(),
            date: "Sat, 21 Nov 2026 00:00:00 GMT",
        }
    }

    fn get(app: &App, text: &str) -> Response {
        respond(app.handle(&head(text), client(), now()))
    }

    #[test]
    fn root_is_an_empty_200() {
        let r = get(&app(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.body().is_empty());
    }

    #[test]
    fn unknown_paths_are_404() {
        let r = get(&app(), "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let r = get(&app(), "GET /files/x HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(
            r.status(),
            StatusCode::NOT_FOUND,
            "no store without --directory"
        );
    }

    #[test]
    fn unknown_methods_are_501_and_unsupported_ones_405() {
        let r = get(&app(), "BREW /echo/x HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status(), StatusCode::NOT_IMPLEMENTED);
        let r = get(&app(), "DELETE /echo/x HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
        let r = get(&app(), "POST / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn options_star_lists_the_servers_methods() {
        let r = get(&app(), "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.header("allow"), Some("GET, HEAD, POST"));
        let r = get(&app(), "OPTIONS /user-agent HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn builtins_can_be_switched_off() {
        let app = App::new(&AppConfig::default(), &Registry::new());
        let r = get(&app, "GET /echo/x HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
