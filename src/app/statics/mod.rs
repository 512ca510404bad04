//! Static files from ROOT, the way users of nginx, lighttpd or darkhttpd expect.
//!
//! One request goes through these steps, each in its own module:
//!
//! 1. [`resolve`]: the URL path becomes a file or directory under ROOT, or a
//!    refusal (403 escape, 404 hidden or missing, 301 for a missing slash);
//! 2. a directory becomes its `index.html`, or a [`listing`] with `--listing`;
//! 3. negotiation picks the representation: a precompressed `FILE.br` or
//!    `FILE.gz` sidecar when the client accepts it, else the file itself,
//!    which a small text file may be [`compress`]ed from once, as it is cached;
//! 4. [`conditional`] requests are answered 304 or 412 from the validators;
//! 5. [`range`] requests get 206 (one range, or multipart), 416, or the whole file;
//! 6. the bytes come from memory (small files) or leave by sendfile from an open
//!    descriptor (larger ones), both remembered by the [`cache`] until
//!    [`watch`] hears that their file changed.

mod cache;
mod compress;
mod conditional;
mod listing;
mod range;
mod resolve;
mod watch;

pub(crate) use cache::CacheLimits;
pub(crate) use listing::DEFAULT_MAX_ENTRIES;
pub(crate) use resolve::Visibility;

// What the `validators` fuzz target feeds directly (through
// `crate::testkit::parsers`).
pub(crate) use conditional::Validators;
#[cfg(any(test, feature = "harness"))]
pub(crate) use conditional::{Precondition, evaluate, if_range_holds};
pub(crate) use range::RangeAnswer;
#[cfg(any(test, feature = "harness"))]
pub(crate) use range::{MAX_RANGES, answer as range_answer};

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::encoding::{Coding, Codings};
use super::methods::{self, READ};
use super::open::{FileIdentity, open_regular, refused};
use super::url;
use crate::http::{Chunk, Fields, Method, Now, RequestHead, Response, StatusCode};
use crate::stats::CacheStats;
pub(crate) use cache::FileCache;
use cache::{Cached, Content, Key, Lookup};
#[cfg(not(any(test, feature = "harness")))]
use conditional::Precondition;
use listing::Listings;
use resolve::Resolved;

/// How the static site is configured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaticConfig {
    /// The folder served; canonical.
    pub root: PathBuf,
    /// Answer directories without an index with an HTML listing.
    pub listing: bool,
    /// Most entries one listing shows.
    pub listing_max_entries: usize,
    pub visibility: Visibility,
    pub cache: CacheLimits,
    /// Gzip small text files for the clients that accept it ([`compress`]).
    pub compress: bool,
}

/// With `--listing`, the share of `--cache-bytes` kept for rendered pages
/// (one part in this many), beside the file cache's budget.
const LISTING_SHARE: usize = 4;

/// The memory a site keeps for rendered listings: none without `listing`.
fn listing_bytes(config: &StaticConfig) -> usize {
    match config.listing {
        true => config.cache.total_bytes / LISTING_SHARE,
        false => 0,
    }
}

/// The budget of the file cache of an application whose sites are
/// `configs`: `--cache-bytes`, less the listings' share when one lists.
pub(crate) fn file_cache_limits<'a>(
    mut configs: impl Iterator<Item = &'a StaticConfig>,
) -> Option<CacheLimits> {
    let first = configs.next()?;
    let listing = first.listing || configs.any(|c| c.listing);
    let listings = if listing {
        first.cache.total_bytes / LISTING_SHARE
    } else {
        0
    };
    Some(CacheLimits {
        total_bytes: first.cache.total_bytes - listings,
        ..first.cache
    })
}

/// A file found for a request, and how to serve it.
struct Found<'a> {
    file: &'a Path,
    url_path: &'a str,
    options: Options,
}

/// The extensions of the precompressed sidecars a file may have.
const SIDECARS: &[&str] = &[".br", ".gz"];

/// One file as it will be sent: which file on disk, and what describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Representation {
    /// The file whose bytes are sent (the sidecar, when one was chosen).
    pub path: PathBuf,
    pub len: u64,
    /// Changes whenever the file does.
    pub identity: FileIdentity,
    pub validators: Validators,
    /// The type of the file asked for (a sidecar keeps its original's type).
    pub content_type: String,
    /// The coding of a precompressed sidecar, or of the bytes compressed here.
    pub coding: Option<Coding>,
    /// Compressed here rather than read from a file: a weak entity tag, and no
    /// ranges ([`compress`] says why).
    pub compressed_here: bool,
    /// Whether other encodings of this file exist (so caches must vary on
    /// Accept-Encoding).
    pub vary: bool,
    /// What it answers with, serialized once ([`Representation::finished`]).
    pub fields: AnswerFields,
}

/// A representation's header fields, written when it is made so that a
/// cache hit appends them rather than writing each again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AnswerFields {
    /// ETag, Last-Modified and Vary: a 304's fields.
    validators: Fields,
    /// Those, then Accept-Ranges and Content-Encoding: what precedes a
    /// multipart answer's own type.
    described: Fields,
    /// Those, then Content-Type: a 200's (and a single range's) fields.
    full: Fields,
}

impl Representation {
    /// The representation with its fields written, from what it says now:
    /// called last, once everything else is set.
    fn finished(mut self) -> Representation {
        let mut validators = Fields::default();
        validators.add("ETag", &self.validators.etag);
        validators.add("Last-Modified", &self.validators.last_modified_text);
        if self.vary {
            validators.add("Vary", "Accept-Encoding");
        }
        let mut described = validators.clone();
        if !self.compressed_here {
            described.add("Accept-Ranges", "bytes");
        }
        if let Some(coding) = self.coding {
            described.add("Content-Encoding", coding.name());
        }
        let mut full = described.clone();
        full.add("Content-Type", &self.content_type);
        self.fields = AnswerFields {
            validators,
            described,
            full,
        };
        self
    }

    /// Whether `self`, cached, was made from the file as `fresh` finds it now:
    /// the same file, unchanged, named and negotiated the same way. (A
    /// representation compressed here differs from `fresh` in its length,
    /// coding and tag, but not in these.)
    fn made_from(&self, fresh: &Representation) -> bool {
        self.path == fresh.path
            && self.identity == fresh.identity
            && self.content_type == fresh.content_type
            && self.vary == fresh.vary
    }

    /// This representation (of the file itself) gzipped here into `len` bytes.
    fn compressed_to(self, len: usize) -> Representation {
        Representation {
            len: len as u64,
            validators: Validators {
                etag: format!("W/{}", entity_tag(&self.identity, Some(Coding::Gzip))),
                ..self.validators
            },
            coding: Some(Coding::Gzip),
            compressed_here: true,
            ..self
        }
        .finished()
    }
}

impl Content {
    /// The body chunk for `len` bytes from `first`: shared bytes, or a file
    /// range for sendfile.
    fn slice(&self, first: u64, len: u64) -> Chunk {
        match self {
            Content::Open(file) => Chunk::File {
                file: Arc::clone(file),
                offset: first,
                len,
            },
            Content::Bytes(bytes) => Chunk::Shared {
                data: Arc::clone(bytes),
                range: first as usize..(first + len) as usize,
            },
        }
    }
}

/// The representation negotiation picked.
struct Negotiated {
    /// The file to send: the original, or a precompressed sidecar.
    path: PathBuf,
    /// The sidecar's coding.
    coding: Option<Coding>,
    /// Whether any sidecar exists, so that caches must vary on Accept-Encoding.
    vary: bool,
}

pub(crate) struct StaticSite {
    config: StaticConfig,
    /// Which site this is, in the keys of the cache it shares with the
    /// other sites of its application.
    id: u64,
    cache: Arc<FileCache>,
    listings: Listings,
}

/// What a path's rules may change of how a site serves it; the site's
/// configuration gives the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) listing: bool,
    pub(crate) compress: bool,
    pub(crate) visibility: Visibility,
}

impl Options {
    /// The bits that tell these options apart in a cache key: the same file
    /// served with and without `compress` is two different answers.
    fn bits(self) -> u8 {
        u8::from(self.listing)
            | u8::from(self.compress) << 1
            | u8::from(self.visibility.hidden) << 2
            | u8::from(self.visibility.follow_symlinks) << 3
    }
}

/// A file cache for the sites of one application, with `limits` and
/// counting into `stats`.
pub(crate) fn shared_cache(limits: CacheLimits, stats: Arc<CacheStats>) -> Arc<FileCache> {
    Arc::new(FileCache::new(limits, stats))
}

impl StaticSite {
    /// The site `config` describes, keeping its files in `cache` (which
    /// other sites of the same application may share: keys tell them apart).
    pub(crate) fn new(config: StaticConfig, cache: Arc<FileCache>) -> StaticSite {
        /// Every site ever made has its own number, so that a site made
        /// again by a reload never finds the old one's entries.
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        StaticSite {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            listings: Listings::new(config.listing_max_entries, listing_bytes(&config)),
            cache,
            config,
        }
    }

    /// The options its configuration gives every path.
    pub(crate) fn options(&self) -> Options {
        Options {
            listing: self.config.listing,
            compress: self.config.compress,
            visibility: self.config.visibility,
        }
    }

    /// Whether `url_path` names something here that `serve_as` would answer
    /// with more than a 404 (a file, a directory, a redirect to one): what
    /// `try-files` asks of each candidate.
    pub(crate) fn has(&self, url_path: &str, options: Options) -> bool {
        !matches!(
            resolve::resolve(&self.config.root, url_path, options.visibility),
            Resolved::NotFound | Resolved::Forbidden | Resolved::Malformed
        )
    }

    /// The folder it serves.
    pub(crate) fn root(&self) -> &Path {
        &self.config.root
    }

    /// Answers `request` with what its path names, as the site's
    /// configuration says.
    pub(crate) fn serve(&self, request: &RequestHead, now: Now<'_>) -> Response {
        self.serve_as(request, request.path(), self.options(), now)
    }

    /// Answers `request` with what `path` names (its own path, or the one
    /// `try-files` chose), with `options` (the site's, or its rules').
    pub(crate) fn serve_as(
        &self,
        request: &RequestHead,
        path: &str,
        options: Options,
        now: Now<'_>,
    ) -> Response {
        if !READ.contains(request.method()) {
            return methods::not_allowed(READ);
        }
        let accepted = Codings::accepted_by(request);
        // One key for every spelling of the path; none for a path refused
        // whatever it names, whose answer is not worth remembering.
        let scope = self.id << 8 | u64::from(options.bits());
        let key = Key::for_path(scope, path, accepted, options.visibility).map(Arc::new);
        let stale = match key
            .as_deref()
            .map(|key| self.cache.lookup(key, now.instant))
        {
            Some(Lookup::Fresh(hit)) => {
                return answer(request, &hit.representation, &hit.content);
            }
            Some(Lookup::Stale(old)) => Some(old),
            Some(Lookup::Miss) | None => None,
        };

        match self.find_file(request, path, options, now) {
            Ok((file, url_path)) => {
                let to_cache = key.map(|key| (key, stale));
                let found = Found {
                    file: &file,
                    url_path: &url_path,
                    options,
                };
                self.serve_file(request, accepted, to_cache, found, now.instant)
            }
            Err(response) => {
                if let (Some(key), Some(_)) = (&key, &stale) {
                    // What was cached here is gone (or hidden now).
                    self.cache.remove(key);
                }
                response
            }
        }
    }

    /// The file a URL path names (a directory's `index.html` included), with
    /// the URL path that named it, or the response that says why there is none.
    fn find_file(
        &self,
        request: &RequestHead,
        path: &str,
        options: Options,
        now: Now<'_>,
    ) -> Result<(PathBuf, String), Response> {
        let visibility = options.visibility;
        match resolve::resolve(&self.config.root, path, visibility) {
            Resolved::File(file) => Ok((file, path.to_owned())),
            Resolved::Directory { real, url } => {
                // The index goes through the same rules as any file (it could be
                // a symlink leading out of ROOT).
                let index = format!("{url}index.html");
                match resolve::resolve(&self.config.root, &index, visibility) {
                    Resolved::File(file) => Ok((file, index)),
                    _ if options.listing => Err(self.listing(&real, &url, visibility, now)),
                    _ => Err(Response::error(StatusCode::NOT_FOUND)),
                }
            }
            Resolved::AddSlash(location) => Err(redirect(&location, request.query())),
            Resolved::Forbidden => Err(Response::error(StatusCode::FORBIDDEN)),
            Resolved::Malformed => Err(Response::error(StatusCode::BAD_REQUEST)),
            Resolved::NotFound => Err(Response::error(StatusCode::NOT_FOUND)),
        }
    }

    /// Answers with the file found, for a client accepting `accepted`;
    /// remembers the answer under its key (with the entry that was there,
    /// due for revalidation), if it has one.
    fn serve_file(
        &self,
        request: &RequestHead,
        accepted: Codings,
        to_cache: Option<(Arc<Key>, Option<Cached>)>,
        found: Found<'_>,
        now: Instant,
    ) -> Response {
        let Found {
            file,
            url_path,
            options,
        } = found;
        // What the entry depends on is watched before anything is read or
        // chosen, so that a change from here on is heard of.
        let root = &self.config.root;
        let literal = resolve::literal(root, url_path, options.visibility);
        let mut on = watch::dependencies(root, literal.as_deref().unwrap_or(file), file);
        let (key, stale) = to_cache.unzip();
        let stale = stale.flatten();
        let mut dependency = key.as_ref().map(|key| self.cache.depend(key, &on));
        let negotiated = self.negotiate(file, accepted, options.visibility);
        if let (Some(dir), Some(name)) = (negotiated.path.parent(), negotiated.path.file_name()) {
            // A sidecar may be a symlink to somewhere else.
            on.push((dir.to_path_buf(), name.to_owned()));
            if let Some(key) = &key {
                let more = self.cache.depend(key, &on);
                if let Some(first) = dependency.as_mut() {
                    first.registered_more(more);
                }
            }
        }
        let (handle, metadata) = match open_regular(&negotiated.path) {
            Ok(opened) => opened,
            Err(error) => return Response::error(refused(&negotiated.path, &error)),
        };
        let identity = FileIdentity::of(&metadata);
        let content_type = content_type(file);
        // Whether this file is gzipped here for the clients that accept it
        // (whether this one does or not: either way caches must vary).
        let compressible = options.compress
            && negotiated.coding.is_none()
            && compress::worth_trying(
                &content_type,
                metadata.len(),
                self.cache.holds_in_memory(metadata.len()),
            );
        let representation = Representation {
            len: metadata.len(),
            identity,
            validators: Validators::new(
                entity_tag(&identity, negotiated.coding),
                metadata.modified().unwrap_or(std::time::UNIX_EPOCH),
            ),
            content_type,
            coding: negotiated.coding,
            compressed_here: false,
            vary: negotiated.vary || compressible,
            path: negotiated.path,
            fields: AnswerFields::default(),
        }
        .finished();

        if let Some(Cached {
            representation: old,
            content: content @ Content::Bytes(_),
        }) = stale
            && old.made_from(&representation)
        {
            // Unchanged since it was cached: keep it (and the work of
            // compressing it) another second.
            if let (Some(key), Some(dependency)) = (key, dependency) {
                let kept = Cached {
                    representation: Arc::clone(&old),
                    content: content.clone(),
                };
                self.cache.insert(key, kept, dependency, now);
            }
            return answer(request, &old, &content);
        }
        let (representation, content) = if self.cache.holds_in_memory(representation.len) {
            let Some(bytes) = read_exactly(&handle, representation.len) else {
                // It is changing under us: send from the file, cache nothing.
                return answer(request, &representation, &Content::Open(Arc::new(handle)));
            };
            let compressed = (compressible && accepted.contains(Coding::Gzip))
                .then(|| compress::smaller(&bytes))
                .flatten();
            match compressed {
                Some(gzipped) => (
                    representation.compressed_to(gzipped.len()),
                    Content::Bytes(Arc::from(gzipped)),
                ),
                None => (representation, Content::Bytes(bytes)),
            }
        } else {
            (representation, Content::Open(Arc::new(handle)))
        };
        let representation = Arc::new(representation);
        if let (Some(key), Some(dependency)) = (key, dependency) {
            let cached = Cached {
                representation: Arc::clone(&representation),
                content: content.clone(),
            };
            self.cache.insert(key, cached, dependency, now);
        }
        answer(request, &representation, &content)
    }

    /// Picks the file to send: a precompressed sidecar the client accepts (br
    /// before gzip: it is the smaller), or the file itself.
    fn negotiate(&self, file: &Path, accepted: Codings, visibility: Visibility) -> Negotiated {
        let sidecar = |coding: Coding| {
            let mut name = file.as_os_str().to_owned();
            name.push(coding.extension());
            let real = PathBuf::from(name).canonicalize().ok()?;
            let usable = resolve::visible(&self.config.root, &real, visibility)
                && std::fs::metadata(&real).is_ok_and(|m| m.is_file());
            usable.then_some((coding, real))
        };
        let sidecars = [sidecar(Coding::Brotli), sidecar(Coding::Gzip)];
        let vary = sidecars.iter().any(Option::is_some);
        let chosen = sidecars
            .into_iter()
            .flatten()
            .find(|(coding, _)| accepted.contains(*coding));
        match chosen {
            Some((coding, path)) => Negotiated {
                path,
                coding: Some(coding),
                vary,
            },
            None => Negotiated {
                path: file.to_path_buf(),
                coding: None,
                vary,
            },
        }
    }

    fn listing(
        &self,
        dir: &Path,
        url_path: &str,
        visibility: Visibility,
        now: Now<'_>,
    ) -> Response {
        let page = self
            .listings
            .page(&self.config.root, dir, url_path, visibility, now);
        match page {
            Ok(html) => Response::new(StatusCode::OK)
                .with_header("Content-Type", "text/html; charset=utf-8")
                .with_header("Content-Security-Policy", listing::CONTENT_SECURITY_POLICY)
                .with_body(Chunk::Shared {
                    range: 0..html.len(),
                    data: html,
                }),
            Err(error) => Response::error(refused(dir, &error)),
        }
    }
}

/// Answers a request for one representation: preconditions, then ranges.
fn answer(request: &RequestHead, representation: &Representation, content: &Content) -> Response {
    let validators = &representation.validators;
    let fields = &representation.fields;
    match conditional::evaluate(request, validators) {
        Precondition::NotModified => {
            return Response::new(StatusCode::NOT_MODIFIED).with_fields(&fields.validators);
        }
        Precondition::Failed => return Response::error(StatusCode::PRECONDITION_FAILED),
        Precondition::Proceed => {}
    }

    let len = representation.len;
    let range = if matches!(request.method(), Method::Get | Method::Head)
        && !representation.compressed_here
        && conditional::if_range_holds(request, validators)
    {
        range::answer(request.header("range"), len)
    } else {
        RangeAnswer::Full
    };
    match range {
        RangeAnswer::Full => Response::new(StatusCode::OK)
            .with_fields(&fields.full)
            .with_body(content.slice(0, len)),
        RangeAnswer::Partial(ranges) => match ranges.as_slice() {
            [only] => Response::new(StatusCode::PARTIAL_CONTENT)
                .with_fields(&fields.full)
                .with_header("Content-Range", only.content_range(len))
                .with_body(content.slice(only.first, only.len())),
            _ => {
                let parts = range::multipart(&ranges, len, &representation.content_type, |r| {
                    content.slice(r.first, r.len())
                });
                Response::new(StatusCode::PARTIAL_CONTENT)
                    .with_fields(&fields.described)
                    .with_header("Content-Type", parts.content_type)
                    .with_body(parts.body)
            }
        },
        RangeAnswer::Unsatisfiable => Response::error(StatusCode::RANGE_NOT_SATISFIABLE)
            .with_header("Content-Range", format!("bytes */{len}")),
    }
}

fn redirect(location: &str, query: Option<&str>) -> Response {
    let location = match query {
        // Kept as sent, but for raw UTF-8, which goes out percent-encoded.
        Some(query) => format!("{location}?{}", url::for_header(query)),
        None => location.to_owned(),
    };
    Response::error(StatusCode::MOVED_PERMANENTLY).with_header("Location", location)
}

/// A strong validator from the file's inode, size and modification time (to the
/// nanosecond): any edit changes it, and two files never share it. A sidecar's
/// tag is marked with its encoding, since it is a different representation.
fn entity_tag(identity: &FileIdentity, coding: Option<Coding>) -> String {
    let suffix = coding.map(|c| format!("-{}", c.name())).unwrap_or_default();
    format!(
        "\"{:x}-{:x}-{:x}{suffix}\"",
        identity.inode, identity.len, identity.modified_ns
    )
}

/// `url_path` in the one spelling every spelling of it has (`None` when it
/// is refused on its face): what a site's rules are matched on.
pub(crate) fn normalise(
    url_path: &str,
    visibility: Visibility,
) -> Option<std::borrow::Cow<'_, str>> {
    // Nearly every path is in its one spelling already: no copy then.
    if resolve::is_normal(url_path) {
        return Some(std::borrow::Cow::Borrowed(url_path));
    }
    resolve::normalise(url_path, visibility).map(std::borrow::Cow::Owned)
}

/// The regular file `url_path` names under `root`, through the checks any
/// file served goes through (an error page is read this way).
pub(crate) fn resolve_file(root: &Path, url_path: &str) -> Option<PathBuf> {
    match resolve::resolve(root, url_path, Visibility::default()) {
        Resolved::File(file) => Some(file),
        _ => None,
    }
}

/// The Content-Type for a file name; text gets `charset=utf-8`.
pub(crate) fn content_type(path: &Path) -> String {
    let Some(mime) = mime_guess::from_path(path).first() else {
        return "application/octet-stream".to_owned();
    };
    let textual = mime.type_() == mime_guess::mime::TEXT
        || compress::TEXTUAL_TYPES.contains(&mime.essence_str());
    if textual {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.essence_str().to_owned()
    }
}

/// Reads a whole file that should be `len` bytes long; `None` if it is not.
fn read_exactly(file: &File, len: u64) -> Option<Arc<[u8]>> {
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(len + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 == len).then(|| Arc::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let ty = |name: &str| content_type(Path::new(name));
        assert_eq!(ty("index.html"), "text/html; charset=utf-8");
        assert_eq!(ty("style.css"), "text/css; charset=utf-8");
        assert_eq!(ty("logo.svg"), "image/svg+xml; charset=utf-8");
        assert_eq!(ty("data.json"), "application/json; charset=utf-8");
        assert_eq!(ty("photo.JPG"), "image/jpeg");
        assert_eq!(ty("movie.mp4"), "video/mp4");
        assert_eq!(ty("README"), "application/octet-stream");
        assert_eq!(ty("x.unknownext"), "application/octet-stream");
        assert!(
            ty("app.js").ends_with("javascript; charset=utf-8"),
            "{}",
            ty("app.js")
        );
    }
}
