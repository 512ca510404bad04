//! The application: what oneloop answers. It maps a parsed request to a response
//! and knows nothing of sockets, threads or readiness; every driver runs this
//! same code, which is what makes the models comparable.
//!
//! Before routing, the password gate (`--auth-file`) admits the request or
//! answers it `401` (everything it guards: the whole site, or uploads only).
//!
//! Routing precedence, first match wins:
//! 0. the status page, when `--status` names its path;
//! 1. `/files/{name}` when `--directory` is given (whatever `--no-builtins`
//!    says: the store is what that flag asks for, and it is for nothing else);
//! 2. the challenge's demo endpoints (unless `--no-builtins`): `/echo/{text}`
//!    and `/user-agent`;
//! 3. the sites (`sites/`): the one `Host` names, with its rules, or the
//!    static root when there is no configuration file;
//! 4. `/` answers 200 with an empty body when there is no static root (the
//!    challenge's first stage, so a demo endpoint too: not with `--no-builtins`);
//! 5. anything else is 404.

pub(crate) mod auth;
mod builtins;
mod denied;
mod encoding;
#[cfg(feature = "fault-injection")]
mod fault;
mod file_store;
mod lru;
mod methods;
mod open;
mod redirect;
pub(crate) mod sites;
pub(crate) mod statics;
mod status;
mod url;

pub(crate) use auth::{Gate, Scope};
pub(crate) use open::FileIdentity;
pub(crate) use sites::{Peer, SiteTag};
pub(crate) use sites::{RuleSpec, SiteConfig};
pub(crate) use statics::{CacheLimits, DEFAULT_MAX_ENTRIES, StaticConfig, Visibility};
pub(crate) use status::StatusConfig;

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;

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
    /// Serve the demo endpoints: `/echo/`, `/user-agent`, and an empty 200
    /// at `/` when there is no static root. Not `/files/`: `files_dir` alone
    /// says whether that is served.
    pub builtins: bool,
    /// The read-write store behind `/files/`, served whenever it is given.
    pub files_dir: Option<PathBuf>,
    /// The static site served at `/` (without a configuration file).
    pub site: Option<statics::StaticConfig>,
    /// The sites of a configuration file, chosen by `Host`; when there are
    /// some, `site` is among them (the default site).
    pub sites: Option<LoadedSites>,
    /// The status page.
    pub status: Option<StatusConfig>,
    /// Basic authentication, with the users of `--auth-file` (the gate is
    /// shared by every loop, so a guesser is held off by all of them).
    pub auth: Option<Arc<Gate>>,
}

/// The sites one load of the configuration made, shared by every
/// application of the process; a reload swaps what it holds.
#[derive(Clone, Debug)]
pub struct LoadedSites(Arc<ArcSwap<sites::SiteSet>>);

impl LoadedSites {
    /// Checks and compiles `configs`: every error, each naming its site
    /// and rule.
    pub(crate) fn compile(configs: Vec<SiteConfig>) -> Result<LoadedSites, Vec<String>> {
        let set = sites::SiteSet::compile(configs)?;
        Ok(LoadedSites(Arc::new(ArcSwap::from_pointee(set))))
    }

    /// From now on, new requests go to the sites of `other` (a reload):
    /// requests in flight finish with the sites they began with.
    pub(crate) fn replace_with(&self, other: &LoadedSites) {
        self.0.store(other.0.load_full());
    }

    /// What `--check-config` prints of them.
    pub(crate) fn describe(&self) -> String {
        self.0.load().describe()
    }

    /// How many sites there are.
    pub(crate) fn len(&self) -> usize {
        self.0.load().len()
    }

    /// Each site's name and its own access log, for those that have one.
    pub(crate) fn access_logs(&self) -> Vec<(String, PathBuf)> {
        self.0.load().access_logs()
    }

    /// Each site's name and folder, for those that serve files.
    pub(crate) fn roots(&self) -> Vec<(String, PathBuf)> {
        self.0.load().roots()
    }

    /// The password files of the sites and their rules (`auth-file`).
    pub(crate) fn password_files(&self) -> Vec<PathBuf> {
        self.0.load().password_files()
    }

    /// The certificate a TLS handshake for `server_name` presents: an
    /// index into the configuration's certificates, or `None` for the
    /// default one.
    pub(crate) fn cert_for(&self, server_name: Option<&str>) -> Option<usize> {
        self.0.load().cert_for(server_name)
    }
}

pub(crate) struct App {
    /// The `--redirect-http` listener's application: everything is a 308 to
    /// HTTPS on this port.
    redirect_to_https: Option<u16>,
    builtins: bool,
    store: Option<file_store::FileStore>,
    sites: Option<sites::Sites>,
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
                .map(|dir| file_store::FileStore::new(dir.clone())),
            sites: Self::sites(config).map(|set| sites::Sites::new(set, stats)),
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
            sites: None,
            status: None,
            auth: None,
        }
    }

    /// The sites `config` names: those of its configuration file, or the
    /// static root alone as the one default site.
    fn sites(config: &AppConfig) -> Option<Arc<ArcSwap<sites::SiteSet>>> {
        if let Some(loaded) = &config.sites {
            return Some(Arc::clone(&loaded.0));
        }
        let root = config.site.clone()?;
        let only = SiteConfig {
            name: "default".into(),
            statics: Some(root),
            ..SiteConfig::default()
        };
        // A site with nothing but a folder cannot fail to compile.
        let set = sites::SiteSet::compile(vec![only]).ok()?;
        Some(Arc::new(ArcSwap::from_pointee(set)))
    }

    /// The descriptor that becomes readable when a file the application has
    /// cached changes, if it caches any: a driver that waits on it calls
    /// [`files_changed`](Self::files_changed) when it is readable.
    pub(crate) fn watch_fd(&self) -> Option<std::os::fd::RawFd> {
        self.sites.as_ref()?.watch_fd()
    }

    /// Takes in the file changes since the last call: what they made stale is
    /// forgotten. The session calls it before the application reads any bytes
    /// received, so a request sent after a change is answered after it.
    pub(crate) fn files_changed(&self) {
        if let Some(sites) = &self.sites {
            sites.files_changed();
        }
    }

    /// Answers a request from `client`, or asks for its body; and says
    /// which site it is for (the one its `Host` names, whatever part of the
    /// application answers: the counters and the logs file it there). `now`
    /// is the driver's clock: the application reads no clock of its own.
    pub(crate) fn handle(
        &self,
        request: &RequestHead,
        peer: Peer<'_>,
        now: Now<'_>,
    ) -> (Reply, SiteTag) {
        if let Some(port) = self.redirect_to_https {
            return (
                Reply::Respond(redirect::to_https(request, port)),
                SiteTag::other(),
            );
        }
        let chosen = self.sites.as_ref().map(|sites| sites.choose(request));
        let tag = chosen
            .as_ref()
            .map_or_else(SiteTag::other, sites::Chosen::tag);
        (self.reply(request, peer, chosen.as_ref(), now), tag)
    }

    /// The site of what had no readable request (see
    /// [`sites::Sites::default_tag`]).
    pub(crate) fn default_site(&self) -> SiteTag {
        self.sites
            .as_ref()
            .map_or_else(SiteTag::other, sites::Sites::default_tag)
    }

    fn reply(
        &self,
        request: &RequestHead,
        peer: Peer<'_>,
        chosen: Option<&sites::Chosen>,
        now: Now<'_>,
    ) -> Reply {
        let client = peer.client;
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
        if let (Some(store), Some(name)) = (&self.store, path.strip_prefix("/files/")) {
            return store.handle(request, name);
        }
        if self.builtins {
            if let Some(text) = path.strip_prefix("/echo/") {
                return methods::only(request, methods::READ, || builtins::echo(request, text));
            }
            if path == "/user-agent" {
                return methods::only(request, methods::READ, || builtins::user_agent(request));
            }
        }
        if let (Some(sites), Some(chosen)) = (&self.sites, chosen) {
            return Reply::Respond(sites.answer(chosen, request, peer, now));
        }
        if self.builtins && path == "/" {
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
    pub(crate) fn client() -> std::net::IpAddr {
        std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
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
        let peer = Peer {
            client: client(),
            tls: None,
        };
        respond(app.handle(&head(text), peer, now()).0)
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
        for path in ["/echo/x", "/user-agent", "/"] {
            let r = get(&app, &format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n"));
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        }
    }

    #[test]
    fn the_store_does_not_depend_on_builtins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x"), "stored").unwrap();
        let config = AppConfig {
            builtins: false,
            files_dir: Some(dir.path().to_owned()),
            ..AppConfig::default()
        };
        let app = App::new(&config, &Registry::new());
        let r = get(&app, "GET /files/x HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status(), StatusCode::OK, "the store is served");
        let r = get(&app, "GET /echo/x HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
