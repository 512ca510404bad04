//! Virtual hosts: which site a request is for, and what that site's rules
//! make of it.
//!
//! A [`SiteSet`] is what one load of the configuration says: every site,
//! its names, its folder, its rules compiled, its error pages. It is built
//! once per load and shared by every loop; a reload swaps it whole
//! ([`Sites`]), and a request in flight keeps the set it started with.
//! What a set does not hold is memory of files: each application (one per
//! loop) keeps its own file cache, shared by its sites and keyed by site,
//! and makes its sites' file servers again when the set changes.
//!
//! One request, in a site:
//! 1. the rules matching its path are merged ([`rules::Effect`]);
//! 2. `auth-file` (the rule's, or the site's) admits it or answers 401;
//! 3. a CORS preflight is answered; a `redirect` answers;
//! 4. `try-files` picks the first candidate that exists, the last one
//!    whatever;
//! 5. the file is served with the options the rules give (listing,
//!    compress, hidden);
//! 6. the rules' `headers` and CORS fields are set on the answer, and an
//!    error is answered with the site's page for it.

mod cors;
mod error_pages;
mod hosts;
mod rules;
mod template;

pub(crate) use hosts::HostPattern;
pub(crate) use rules::RuleSpec;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use super::statics::{self, FileCache, Options, StaticSite};
use super::{Gate, StaticConfig};
use crate::http::{Now, RequestHead, Response, StatusCode};
use crate::stats::{Registry, SiteSlot};
use error_pages::ErrorPages;
use rules::{Candidate, Effect, Rules};
use template::Values;

/// One site as the configuration describes it.
#[derive(Clone, Debug, Default)]
pub(crate) struct SiteConfig {
    /// How the logs and `--check-config` name it: its first host, or
    /// `default`.
    pub(crate) name: String,
    /// The names it answers to; none for the default site.
    pub(crate) hosts: Vec<String>,
    /// Its folder, if it serves files (a site of redirects needs none).
    pub(crate) statics: Option<StaticConfig>,
    /// `404 = "/404.html"`: pages of its folder answering those statuses.
    pub(crate) error_pages: Vec<(u16, String)>,
    pub(crate) rules: Vec<RuleSpec>,
    /// Basic authentication for the whole site.
    pub(crate) auth: Option<Arc<Gate>>,
    /// Which certificate its TLS handshake presents: an index into the
    /// configuration's certificates, `None` for the default one.
    pub(crate) cert: Option<usize>,
    /// Answer a browser's errors with a small HTML page (the sites of a
    /// configuration file do; a bare ROOT keeps its plain answers).
    pub(crate) browser_pages: bool,
    /// `access-log = "path"`: its requests are logged there, not in the
    /// main access log.
    pub(crate) access_log: Option<std::path::PathBuf>,
}

/// A site, checked and compiled.
#[derive(Debug)]
struct SiteSpec {
    name: String,
    hosts: Vec<HostPattern>,
    statics: Option<StaticConfig>,
    rules: Rules,
    error_pages: ErrorPages,
    auth: Option<Arc<Gate>>,
    cert: Option<usize>,
    access_log: Option<std::path::PathBuf>,
}

/// Every site of one load of the configuration.
#[derive(Debug)]
pub(crate) struct SiteSet {
    sites: Vec<SiteSpec>,
    /// The first site without hosts: it answers every host no other names.
    default: Option<usize>,
}

impl SiteSet {
    /// Checks and compiles `configs`; every error, each naming its site.
    pub(crate) fn compile(configs: Vec<SiteConfig>) -> Result<SiteSet, Vec<String>> {
        let mut sites = Vec::with_capacity(configs.len());
        let mut errors = Vec::new();
        for config in configs {
            let name = config.name.clone();
            let mut fail = |e: String| errors.push(format!("site {name}: {e}"));
            let hosts: Vec<HostPattern> = config
                .hosts
                .iter()
                .filter_map(|h| HostPattern::parse(h).map_err(&mut fail).ok())
                .collect();
            let error_pages = ErrorPages::compile(&config.error_pages, config.browser_pages)
                .map_err(&mut fail)
                .ok();
            let rules = Rules::compile(config.rules).map_err(|list| {
                for e in list {
                    fail(e);
                }
            });
            let needs_files = config.statics.is_none()
                && (!config.error_pages.is_empty()
                    || rules.as_ref().is_ok_and(|r| r.needs_files()));
            if needs_files {
                fail("try-files and error-pages need a root".into());
            }
            if let (Some(error_pages), Ok(rules)) = (error_pages, rules) {
                sites.push(SiteSpec {
                    name: config.name,
                    hosts,
                    statics: config.statics,
                    rules,
                    error_pages,
                    auth: config.auth,
                    cert: config.cert,
                    access_log: config.access_log,
                });
            }
        }
        let defaults: Vec<usize> = (0..sites.len())
            .filter(|&i| sites[i].hosts.is_empty())
            .collect();
        if defaults.len() > 1 {
            let names: Vec<&str> = defaults.iter().map(|&i| sites[i].name.as_str()).collect();
            errors.push(format!(
                "sites {} have no hosts: only one site can be the default",
                names.join(" and ")
            ));
        }
        for (i, site) in sites.iter().enumerate() {
            for host in &site.hosts {
                if let Some(other) = sites[..i].iter().find(|s| s.hosts.contains(host)) {
                    errors.push(format!(
                        "host {host} is both site {}'s and site {}'s",
                        other.name, site.name
                    ));
                }
            }
        }
        match errors.is_empty() {
            true => Ok(SiteSet {
                default: defaults.first().copied(),
                sites,
            }),
            false => Err(errors),
        }
    }

    /// The site for `host` (as the request or the TLS handshake named it):
    /// the first that names it exactly, else the first whose wildcard
    /// covers it, else the default site.
    fn site_for(&self, host: Option<&str>) -> Option<usize> {
        let Some(host) = host.map(hosts::normalise) else {
            return self.default;
        };
        let exact = |s: &SiteSpec| {
            s.hosts
                .iter()
                .any(|p| matches!(p, HostPattern::Exact(_)) && p.matches(&host))
        };
        self.sites
            .iter()
            .position(exact)
            .or_else(|| {
                self.sites
                    .iter()
                    .position(|s| s.hosts.iter().any(|p| p.matches(&host)))
            })
            .or(self.default)
    }

    /// The static configuration of each site, for the file cache's budget.
    pub(crate) fn statics(&self) -> impl Iterator<Item = &StaticConfig> {
        self.sites.iter().filter_map(|s| s.statics.as_ref())
    }

    /// What `--check-config` prints of the sites.
    pub(crate) fn describe(&self) -> String {
        let mut out = String::new();
        for (i, site) in self.sites.iter().enumerate() {
            let hosts: Vec<String> = site.hosts.iter().map(|h| h.to_string()).collect();
            let default = if self.default == Some(i) {
                " (the default site)"
            } else {
                ""
            };
            out.push_str(&format!("site {}{default}\n", site.name));
            if !hosts.is_empty() {
                out.push_str(&format!("  hosts: {}\n", hosts.join(", ")));
            }
            match &site.statics {
                Some(s) => out.push_str(&format!("  root: {}\n", s.root.display())),
                None => out.push_str("  root: none\n"),
            }
            if site.auth.is_some() {
                out.push_str("  auth-file: yes\n");
            }
            if let Some(log) = &site.access_log {
                out.push_str(&format!("  access-log: {}\n", log.display()));
            }
            for page in site.error_pages.describe() {
                out.push_str(&format!("  error page {page}\n"));
            }
            for rule in site.rules.describe() {
                out.push_str(&format!("  rule {rule}\n"));
            }
        }
        out
    }

    /// Each site's name and its own access log, for those that have one.
    pub(crate) fn access_logs(&self) -> Vec<(String, std::path::PathBuf)> {
        let sites = self.sites.iter();
        sites
            .filter_map(|s| Some((s.name.clone(), s.access_log.clone()?)))
            .collect()
    }

    /// The password files of the sites and their rules (`auth-file`).
    pub(crate) fn password_files(&self) -> Vec<std::path::PathBuf> {
        let gates = self
            .sites
            .iter()
            .flat_map(|s| s.auth.iter().chain(s.rules.gates()));
        let mut files: Vec<_> = gates.map(|gate| gate.path()).collect();
        files.sort();
        files.dedup();
        files
    }

    /// Each site's name and folder, for those that serve files.
    pub(crate) fn roots(&self) -> Vec<(String, std::path::PathBuf)> {
        let with_files = self
            .sites
            .iter()
            .filter_map(|s| Some((s, s.statics.as_ref()?)));
        with_files
            .map(|(site, statics)| (site.name.clone(), statics.root.clone()))
            .collect()
    }

    /// How many sites it has.
    pub(crate) fn len(&self) -> usize {
        self.sites.len()
    }

    /// The certificate of the site `server_name` (SNI) names.
    pub(crate) fn cert_for(&self, server_name: Option<&str>) -> Option<usize> {
        self.site_for(server_name).and_then(|i| self.sites[i].cert)
    }
}

/// The sites an application serves: the current set (swapped by a reload,
/// shared by every application of the process), and this application's
/// file servers for it.
pub(crate) struct Sites {
    current: Arc<ArcSwap<SiteSet>>,
    built: ArcSwap<Built>,
    /// Held while the file servers are made again for a new set, so that
    /// threads sharing the application make them once.
    rebuilding: Mutex<()>,
    cache: Arc<FileCache>,
    /// Where each site's counters are (its slot, by name).
    registry: Arc<Registry>,
}

/// One application's file servers for one set of sites, and what names
/// each site to the counters and the logs.
struct Built {
    set: Arc<SiteSet>,
    statics: Vec<Option<StaticSite>>,
    tags: Vec<SiteTag>,
}

impl Built {
    fn new(set: Arc<SiteSet>, cache: &Arc<FileCache>, registry: &Registry) -> Built {
        let statics = set
            .sites
            .iter()
            .map(|s| {
                s.statics
                    .clone()
                    .map(|c| StaticSite::new(c, Arc::clone(cache)))
            })
            .collect();
        let tags = set
            .sites
            .iter()
            .map(|s| SiteTag {
                slot: registry.site_slot(&s.name),
                name: Some(Arc::from(s.name.as_str())),
            })
            .collect();
        Built { set, statics, tags }
    }

    fn tag(&self, index: Option<usize>) -> SiteTag {
        index
            .and_then(|i| self.tags.get(i))
            .cloned()
            .unwrap_or_else(SiteTag::other)
    }
}

/// Which site answered a request: the slot of its counters, and its name
/// for the logs (`None`: no site did). Cloning it costs an atomic increment,
/// no allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SiteTag {
    pub(crate) slot: SiteSlot,
    pub(crate) name: Option<Arc<str>>,
}

impl SiteTag {
    /// No site: counted as `other`, logged in the main access log.
    pub(crate) fn other() -> SiteTag {
        SiteTag {
            slot: SiteSlot::OTHER,
            name: None,
        }
    }
}

/// The site a request is for, chosen once: what answers it, and what its
/// counters and log lines are filed under.
pub(crate) struct Chosen {
    built: Arc<Built>,
    index: Option<usize>,
}

impl Chosen {
    pub(crate) fn tag(&self) -> SiteTag {
        self.built.tag(self.index)
    }
}

/// Who is asking, as the connection knows it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer<'a> {
    pub(crate) client: IpAddr,
    /// `Some` over TLS: the name the handshake asked for (SNI), if any.
    pub(crate) tls: Option<Option<&'a str>>,
}

impl Sites {
    /// The sites of `current`, with a file cache counting into
    /// `registry`, as each site's answers do.
    pub(crate) fn new(current: Arc<ArcSwap<SiteSet>>, registry: &Arc<Registry>) -> Sites {
        let set = current.load_full();
        let limits = statics::file_cache_limits(set.statics()).unwrap_or_default();
        let cache = statics::shared_cache(limits, registry.cache());
        Sites {
            built: ArcSwap::from_pointee(Built::new(set, &cache, registry)),
            current,
            rebuilding: Mutex::new(()),
            cache,
            registry: Arc::clone(registry),
        }
    }

    /// The descriptor that turns readable when a cached file changes.
    pub(crate) fn watch_fd(&self) -> Option<std::os::fd::RawFd> {
        self.cache.watch_fd()
    }

    /// Drops what file changes made stale.
    pub(crate) fn files_changed(&self) {
        self.cache.apply_changes();
    }

    /// The file servers for the current set, made again if a reload
    /// changed it.
    fn built(&self) -> Arc<Built> {
        let built = self.built.load_full();
        let current = self.current.load();
        if Arc::ptr_eq(&built.set, &current) {
            return built;
        }
        let _one = self.rebuilding.lock().unwrap_or_else(|p| p.into_inner());
        let again = self.built.load_full();
        if Arc::ptr_eq(&again.set, &self.current.load()) {
            return again; // another thread made them meanwhile
        }
        let fresh = Arc::new(Built::new(
            self.current.load_full(),
            &self.cache,
            &self.registry,
        ));
        self.built.store(Arc::clone(&fresh));
        fresh
    }

    /// The site `request`'s `Host` names (or the default site), chosen once
    /// per request for everything that follows: answering, counting, logging.
    pub(crate) fn choose(&self, request: &RequestHead) -> Chosen {
        let built = self.built();
        let index = built.set.site_for(request.header_str("host"));
        Chosen { built, index }
    }

    /// The site of what had no readable request (a 400, a 408): the default
    /// site, as nginx logs such a request in its default server's log.
    pub(crate) fn default_tag(&self) -> SiteTag {
        let built = self.built();
        built.tag(built.set.default)
    }

    /// Answers `request` with the site `chosen` for it, or 404 when no site
    /// was, or 421 when the TLS handshake was for a site with another
    /// certificate.
    pub(crate) fn answer(
        &self,
        chosen: &Chosen,
        request: &RequestHead,
        peer: Peer<'_>,
        now: Now<'_>,
    ) -> Response {
        let built = &chosen.built;
        let set = &built.set;
        let Some(index) = chosen.index else {
            return Response::error(StatusCode::NOT_FOUND);
        };
        let site = &set.sites[index];
        if let Some(server_name) = peer.tls
            && set.cert_for(server_name) != site.cert
        {
            // The certificate the client checked is not this site's: it
            // must connect again, naming this host (RFC 9110 15.5.20).
            return Response::error(StatusCode::MISDIRECTED_REQUEST);
        }
        let statics = built.statics[index].as_ref();
        Site {
            spec: site,
            statics,
        }
        .answer(request, peer.client, now)
    }
}

/// The path and query as sent, whatever form the request-target had (an
/// absolute-form target names the host too, which `{uri}` does not).
fn origin_form(request: &RequestHead) -> String {
    match request.query() {
        Some(query) => format!("{}?{query}", request.path()),
        None => request.path().to_owned(),
    }
}

/// A site at work on one request.
struct Site<'a> {
    spec: &'a SiteSpec,
    statics: Option<&'a StaticSite>,
}

impl Site<'_> {
    fn answer(&self, request: &RequestHead, client: IpAddr, now: Now<'_>) -> Response {
        let spec = self.spec;
        if spec.rules.is_empty() && spec.error_pages.is_empty() && spec.auth.is_none() {
            // (`is_empty` is false for a site that answers browsers' errors
            // with a page.)
            // As a site without a configuration file is: nothing to merge.
            return match self.statics {
                Some(statics) => statics.serve(request, now),
                None => Response::error(StatusCode::NOT_FOUND),
            };
        }
        // Rules match the path in its one spelling; a path refused on its
        // face matches none, and the files refuse it as they would anyway.
        let visible = crate::app::Visibility {
            hidden: true,
            follow_symlinks: true,
        };
        let normal = statics::normalise(request.path(), visible);
        let effect = match &normal {
            Some(path) => spec.rules.effect(path),
            None => Effect::default(),
        };
        let mut response = self.respond(request, client, normal.as_deref(), &effect, now);
        response.set_headers(&effect.headers);
        if let Some(cors) = effect.cors {
            cors.answer(request, &mut response);
        }
        response
    }

    /// The answer before the rules' fields are set on it.
    fn respond(
        &self,
        request: &RequestHead,
        client: IpAddr,
        normal: Option<&str>,
        effect: &Effect<'_>,
        now: Now<'_>,
    ) -> Response {
        if let Some(gate) = effect.auth.or(self.spec.auth.as_ref())
            && let Err(refusal) = gate.admit(request, client, now.instant)
        {
            return self.error_page(refusal, request);
        }
        if let Some(preflight) = effect.cors.and_then(|cors| cors.preflight(request)) {
            return preflight;
        }
        // Made only for a rule that fills a template.
        let (uri, host) = match effect.redirect.is_some() || effect.try_files.is_some() {
            true => (
                origin_form(request),
                hosts::normalise(request.header_str("host").unwrap_or("")),
            ),
            false => (String::new(), String::new()),
        };
        let values = |rest| Values {
            uri: &uri,
            path: normal.unwrap_or_else(|| request.path()),
            query: request.query().unwrap_or(""),
            host: &host,
            rest,
        };
        if let Some((redirect, rest)) = effect.redirect {
            let location = redirect.to.fill(&values(rest));
            return Response::new(redirect.status)
                .with_header("Location", &location)
                .with_header("Content-Type", "text/plain; charset=utf-8")
                .with_body(format!("{}\n{location}\n", redirect.status).into_bytes());
        }
        let Some(statics) = self.statics else {
            return self.error_page(Response::error(StatusCode::NOT_FOUND), request);
        };
        let base = statics.options();
        let options = Options {
            listing: effect.listing.unwrap_or(base.listing),
            compress: effect.compress.unwrap_or(base.compress),
            visibility: crate::app::Visibility {
                hidden: effect.hidden.unwrap_or(base.visibility.hidden),
                ..base.visibility
            },
        };
        let response = match effect.try_files {
            Some((candidates, rest)) => {
                self.try_files(request, candidates, &values(rest), options, now)
            }
            None => statics.serve_as(request, request.path(), options, now),
        };
        self.error_page(response, request)
    }

    /// The first candidate that exists, or the last whatever it is.
    fn try_files(
        &self,
        request: &RequestHead,
        candidates: &[Candidate],
        values: &Values<'_>,
        options: Options,
        now: Now<'_>,
    ) -> Response {
        let Some(statics) = self.statics else {
            return Response::error(StatusCode::NOT_FOUND);
        };
        let last = candidates.len().saturating_sub(1);
        for (i, candidate) in candidates.iter().enumerate() {
            match candidate {
                Candidate::Status(status) => return Response::error(*status),
                Candidate::Path(template) => {
                    let path = template.fill(values);
                    // A candidate names a file by its path alone: the query
                    // stays the request's.
                    let path = path.split_once('?').map_or(path.as_str(), |(p, _)| p);
                    if i == last || statics.has(path, options) {
                        return statics.serve_as(request, path, options, now);
                    }
                }
            }
        }
        Response::error(StatusCode::NOT_FOUND)
    }

    /// `response`, or the site's page for its status when it has one, or,
    /// for a browser, a small page naming the status.
    fn error_page(&self, response: Response, request: &RequestHead) -> Response {
        let status = response.status();
        if status.as_u16() < 400 {
            return response;
        }
        let root = self.statics.map(|s| s.root());
        self.spec.error_pages.answer(response, request, root)
    }
}
