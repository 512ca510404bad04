//! A real temporary site and the real application over it.

use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::app::{
    App, AppConfig, CacheLimits, Gate, LoadedSites, RuleSpec, Scope, SiteConfig, StaticConfig,
    StatusConfig, Visibility,
};
use crate::http::Settings;
use crate::session::Service;
use crate::stats::{DriverKind, Registry};

/// The one user of the fixture's password file, who may upload
/// (`--auth-uploads-only`: reading stays open, so the rest of the site is
/// fuzzed as the public sees it).
pub(super) const AUTH_USER: &str = "fixture";
pub(super) const AUTH_PASSWORD: &str = "open sesame";

/// Where the fixture's status page is. The conversations' client is not on
/// loopback (`wire::CLIENT`), so it is refused: the page's routing and access
/// control are fuzzed, and its numbers (which change between runs, and so
/// between the splits a property compares) are not shown.
pub(super) const STATUS_PATH: &str = "/.status";

/// Files kept in memory are at most this big here, so `big.bin` goes out as a
/// file range, as large files do in production.
pub(super) const CACHE_FILE_BYTES: usize = 4096;

/// Listings here show at most this many entries, so `listed/` is cut.
pub(super) const LISTING_MAX_ENTRIES: usize = 4;

/// The site's home page: text of more than the 512 bytes from which a file
/// is gzipped on the fly, so requests for it go through that (the property
/// tests check that some do).
const HOME_PAGE: &str = "<!doctype html><h1>home</h1>\n\
    <p>A page long enough to be worth compressing: it says the same thing twice \
    and then once more, because repetition is what gzip finds and removes.</p>\n\
    <p>A page long enough to be worth compressing: it says the same thing twice \
    and then once more, because repetition is what gzip finds and removes.</p>\n\
    <p>A page long enough to be worth compressing: it says the same thing twice \
    and then once more, because repetition is what gzip finds and removes.</p>\n\
    <p>A page long enough to be worth compressing: it says the same thing twice \
    and then once more, because repetition is what gzip finds and removes.</p>\n";

/// The contents of the store when a conversation begins.
const STORED: &[(&str, &[u8])] = &[("stored.txt", b"stored bytes\n")];

/// The sites of [`FixtureSite::with_sites`].
fn fixture_sites(statics: &StaticConfig, gate: &Arc<Gate>) -> Result<LoadedSites, String> {
    let rule = |path: &str| RuleSpec {
        path: path.into(),
        ..RuleSpec::default()
    };
    let header = |name: &str, value: &str| vec![(name.to_owned(), value.to_owned())];
    let default = SiteConfig {
        name: "default".into(),
        statics: Some(statics.clone()),
        error_pages: vec![(404, "/docs/index.html".into())],
        rules: vec![
            RuleSpec {
                headers: header("X-Content-Type-Options", "nosniff"),
                ..rule("/*")
            },
            RuleSpec {
                headers: header("Cache-Control", "public, max-age=60"),
                compress: Some(false),
                ..rule("/docs/*")
            },
            RuleSpec {
                try_files: Some(vec!["{path}".into(), "/docs/index.html".into()]),
                ..rule("/docs/*")
            },
            RuleSpec {
                redirect: Some("/docs/{query}".into()),
                status: Some(307),
                ..rule("/old")
            },
            RuleSpec {
                cors_origins: Some(vec!["https://app.example".into()]),
                hidden: Some(true),
                headers: header("X-Content-Type-Options", ""),
                ..rule("/listed/*")
            },
            RuleSpec {
                auth: Some(Arc::clone(gate)),
                ..rule("/empty/*")
            },
        ],
        browser_pages: true,
        ..SiteConfig::default()
    };
    let redirects = SiteConfig {
        name: "a.example".into(),
        hosts: vec!["a.example".into()],
        rules: vec![RuleSpec {
            redirect: Some("https://example.org{uri}".into()),
            ..rule("/*")
        }],
        ..SiteConfig::default()
    };
    LoadedSites::compile(vec![default, redirects]).map_err(|e| e.join("; "))
}

/// A temporary ROOT, a folder outside it, and a `/files/` store, with the
/// application that serves them.
pub struct FixtureSite {
    // Removed when the site is dropped.
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub store: PathBuf,
    /// The real application over the site, as a driver's sessions share it.
    pub(crate) service: Arc<Service>,
    /// Its password gate, which remembers logins between conversations.
    gate: Arc<Gate>,
}

impl FixtureSite {
    /// Sends `input` to a new session over the site's application, cut at
    /// `cuts` (taken modulo its length), then closes the client's side;
    /// returns what came back.
    pub fn converse(&self, input: &[u8], cuts: &[usize]) -> super::Transcript {
        super::wire::converse(&self.service, input, cuts)
    }

    pub fn new() -> io::Result<FixtureSite> {
        FixtureSite::build(false)
    }

    /// The same site as the default site of a configuration file, with
    /// rules of every kind on its paths (headers on all, a redirect, an
    /// SPA-style fallback, CORS, per-path options, an error page) and a
    /// second site, of redirects, for `a.example`.
    pub fn with_sites() -> io::Result<FixtureSite> {
        FixtureSite::build(true)
    }

    fn build(with_sites: bool) -> io::Result<FixtureSite> {
        let dir = tempfile::Builder::new().prefix("oneloop-site-").tempdir()?;
        let base = dir.path().canonicalize()?;
        let root = base.join("root");
        let store = base.join("store");
        let outside = base.join("outside");
        for folder in [
            &root.join("docs"),
            &root.join("empty"),
            &root.join("listed/sub"),
            &store,
            &outside,
        ] {
            std::fs::create_dir_all(folder)?;
        }
        let files: &[(&str, &[u8])] = &[
            // Long enough to be gzipped on the fly for clients that accept it.
            ("index.html", HOME_PAGE.as_bytes()),
            (
                "r\u{e9}sum\u{e9}.txt",
                "UTF-8 name: r\u{e9}sum\u{e9}\n".as_bytes(),
            ),
            ("a b.txt", b"a name with a space\n"),
            ("style.css", b"body { color: #222; background: #fafafa }\n"),
            // The sidecars only need to exist and differ from the original.
            ("style.css.gz", b"\x1f\x8b pretend gzip"),
            ("style.css.br", b"pretend brotli"),
            ("docs/index.html", b"<h1>docs</h1>\n"),
            ("docs/guide.txt", b"a guide\n"),
            ("listed/one.txt", b"1"),
            ("listed/two.txt", b"22"),
            ("listed/\u{e9}t\u{e9}.txt", b"333"),
            ("listed/<b>&\"'.txt", b"4444"),
            ("listed/five.txt", b"55555"),
            (".env", b"SECRET=dotfile\n"),
        ];
        for (name, bytes) in files {
            std::fs::write(root.join(name), bytes)?;
        }
        // Above the cache's per-file limit: served as a file range.
        let big: Vec<u8> = (0..CACHE_FILE_BYTES * 2 + 7)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(root.join("big.bin"), big)?;
        std::fs::write(outside.join("secret.txt"), b"outside ROOT\n")?;
        symlink(root.join("style.css"), root.join("in-link.css"))?;
        symlink(outside.join("secret.txt"), root.join("out-link.txt"))?;
        symlink(root.join("docs"), root.join("docs-link"))?;

        // bcrypt at cost 4: a real hash, quick enough for a fuzzer.
        let users = base.join("users");
        let hash = bcrypt::hash(AUTH_PASSWORD, 4).map_err(io::Error::other)?;
        std::fs::write(&users, format!("{AUTH_USER}:{hash}\n"))?;
        let gate = Gate::load(&users, "fixture", Scope::Uploads).map_err(io::Error::other)?;
        let gate = Arc::new(gate);
        let stats = Registry::new();
        let status = StatusConfig {
            path: STATUS_PATH.to_owned(),
            allow: Vec::new(),
        };
        let statics = StaticConfig {
            root: root.clone(),
            listing: true,
            listing_max_entries: LISTING_MAX_ENTRIES,
            visibility: Visibility::default(),
            cache: CacheLimits {
                total_bytes: 64 * 1024,
                file_bytes: CACHE_FILE_BYTES,
                open_files: 4,
            },
            compress: true,
        };
        let sites = match with_sites {
            true => Some(fixture_sites(&statics, &gate).map_err(io::Error::other)?),
            false => None,
        };
        let app = App::new(
            &AppConfig {
                status: Some(status),
                auth: Some(Arc::clone(&gate)),
                builtins: true,
                files_dir: Some(store.clone()),
                sites,
                site: Some(statics),
            },
            &stats,
        );
        let driver = stats.driver(DriverKind::Loop);
        let site = FixtureSite {
            _dir: dir,
            root,
            store,
            // With an access log, so that what a client sends reaches its
            // lines too (`wire` checks each).
            service: Service::new(app, Settings::default(), true, driver),
            gate,
        };
        site.reset()?;
        Ok(site)
    }

    /// Puts the site back as it was, so that every conversation starts from
    /// the same files whatever the one before it uploaded, and from a clean
    /// slate of failed logins.
    pub fn reset(&self) -> io::Result<()> {
        self.gate.forget();
        for entry in std::fs::read_dir(&self.store)? {
            let path = entry?.path();
            remove(&path)?;
        }
        for (name, bytes) in STORED {
            std::fs::write(self.store.join(name), bytes)?;
        }
        Ok(())
    }
}

fn remove(path: &Path) -> io::Result<()> {
    if path.symlink_metadata()?.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}
