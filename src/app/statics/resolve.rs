//! From a URL path to a file under ROOT, or a refusal.
//!
//! The rules, in the order they apply:
//!
//! 1. The path is split on `/` and each segment percent-decoded on its own, so an
//!    encoded `%2F` can never become a separator (raw UTF-8 stands for itself,
//!    so `/résumé.txt` and `/r%C3%A9sum%C3%A9.txt` name the same file; a `%` not
//!    followed by two hex digits is **400**). Empty segments (`//`) and `.`
//!    are skipped; a segment that is `..`, or holds `/`, `\` or NUL once decoded,
//!    is refused with **403**: the request is trying to leave ROOT.
//! 2. A segment starting with `.` is a hidden file: **404** unless `--hidden`.
//! 3. The path is resolved with `realpath(3)`. If it lands outside ROOT (a
//!    symlink pointing out), it is **404** unless `--follow-symlinks`; so is a
//!    symlink that lands on a hidden name inside ROOT.
//! 4. Only regular files and directories are served; anything else is 404.
//!
//! 404 (rather than 403) for hidden files and outward symlinks does not confirm
//! that they exist. A local user who can rename things inside ROOT between our
//! `realpath` and `open` could still swap a component for a symlink; ROOT is
//! assumed to be written only by people trusted to publish.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::app::{denied, url};

/// The path `url_path` names under `root` before any symlink is followed (for
/// the cache, which watches every directory on the way), if it names one.
pub(super) fn literal(root: &Path, url_path: &str, visibility: Visibility) -> Option<PathBuf> {
    decode(url_path, visibility)
        .ok()
        .map(|(relative, _)| root.join(relative))
}

/// The one spelling of every path that names what `url_path` names:
/// segments decoded and encoded again (unreserved bytes as they are,
/// everything else as an upper-case escape), empty and `.` segments dropped,
/// the trailing slash kept. `None` when the path is refused on its face
/// (a stray `%`, `..`, an encoded separator, a hidden name).
///
/// Two paths with the same spelling resolve alike ([`resolve`] looks only at
/// the decoded segments and the trailing slash), which is what lets the
/// cache key its entries by it. A path already in that spelling, as nearly
/// every path is, is taken as it is, without decoding.
pub(super) fn normalise(url_path: &str, visibility: Visibility) -> Option<String> {
    if is_normal(url_path) {
        return Some(url_path.to_owned());
    }
    let (_, segments) = decode(url_path, visibility).ok()?;
    let mut normal = String::with_capacity(url_path.len());
    for segment in &segments {
        normal.push('/');
        normal.push_str(segment);
    }
    if segments.is_empty() || url_path.ends_with('/') {
        normal.push('/');
    }
    Some(normal)
}

/// Whether `url_path` is already as [`normalise`] would write it: only
/// unreserved bytes and single slashes, no segment starting with a dot
/// (`.`, `..` and hidden names go the long way, through [`decode`]).
pub(super) fn is_normal(url_path: &str) -> bool {
    let Some(rest) = url_path.strip_prefix('/') else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    let body = rest.strip_suffix('/').unwrap_or(rest);
    body.split('/').all(|segment| {
        !segment.is_empty() && !segment.starts_with('.') && segment.bytes().all(unreserved)
    })
}

/// The URL path's segments, decoded and checked: as a path relative to ROOT,
/// and re-encoded (for redirects). Refusals come back as what they resolve to.
fn decode(url_path: &str, visibility: Visibility) -> Result<(PathBuf, Vec<String>), Resolved> {
    let mut relative = PathBuf::new();
    let mut encoded_segments = Vec::new();
    for raw in url_path.split('/') {
        if raw.is_empty() || raw == "." {
            continue;
        }
        let Ok(decoded) = url::decode(raw) else {
            return Err(Resolved::Malformed);
        };
        if decoded == b"." {
            continue;
        }
        if decoded == b".." || decoded.iter().any(|&b| b == b'/' || b == b'\\' || b == 0) {
            return Err(Resolved::Forbidden);
        }
        if decoded.starts_with(b".") && !visibility.hidden {
            return Err(Resolved::NotFound);
        }
        relative.push(OsStr::from_bytes(&decoded));
        encoded_segments.push(url::encode_segment(&decoded));
    }
    Ok((relative, encoded_segments))
}

/// What a URL path resolves to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Resolved {
    /// A regular file, by its real path.
    File(PathBuf),
    /// A directory, asked for with a trailing slash: its real path, and its
    /// URL path rebuilt from the decoded segments (`/a/b/`, re-encoded).
    Directory { real: PathBuf, url: String },
    /// A directory asked for without its trailing slash: redirect to this path.
    AddSlash(String),
    /// Refused on its face (`..`, encoded separators, NUL): 403.
    Forbidden,
    /// A segment that cannot be decoded (a stray `%`): 400.
    Malformed,
    /// Missing, hidden, outside ROOT, or not a file or directory: 404.
    NotFound,
}

/// Who may see what under ROOT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Visibility {
    /// Serve names starting with a dot.
    pub hidden: bool,
    /// Serve symlinks that resolve outside ROOT.
    pub follow_symlinks: bool,
}

/// Resolves `url_path` (percent-encoded, no query) under `root`, which must be
/// canonical.
pub(super) fn resolve(root: &Path, url_path: &str, visibility: Visibility) -> Resolved {
    let (relative, encoded_segments) = match decode(url_path, visibility) {
        Ok(decoded) => decoded,
        Err(refusal) => return refusal,
    };

    // A folder on the way that the server may not search is a 404 to the
    // client, like anything missing, and a warning to the operator.
    let literal = root.join(&relative);
    let real = match literal.canonicalize() {
        Ok(real) => real,
        Err(error) => {
            denied::note(&literal, &error);
            return Resolved::NotFound;
        }
    };
    if !visible(root, &real, visibility) {
        return Resolved::NotFound;
    }
    let metadata = match std::fs::metadata(&real) {
        Ok(metadata) => metadata,
        Err(error) => {
            denied::note(&real, &error);
            return Resolved::NotFound;
        }
    };
    let asked_for_directory = url_path.ends_with('/') || encoded_segments.is_empty();
    if metadata.is_dir() {
        // Rebuilt from the decoded segments, re-encoded: `//evil.example/` can
        // never come back as a protocol-relative redirect to another host, and
        // no raw byte can reach a header or a page.
        let canonical = match encoded_segments.is_empty() {
            true => "/".to_owned(),
            false => format!("/{}/", encoded_segments.join("/")),
        };
        if asked_for_directory {
            Resolved::Directory {
                real,
                url: canonical,
            }
        } else {
            Resolved::AddSlash(canonical)
        }
    } else if metadata.is_file() && !asked_for_directory {
        Resolved::File(real)
    } else {
        Resolved::NotFound
    }
}

/// Whether a resolved path may be served: inside ROOT (unless symlinks may lead
/// out) and, inside ROOT, not hidden (unless hidden files are served).
pub(super) fn visible(root: &Path, real: &Path, visibility: Visibility) -> bool {
    match real.strip_prefix(root) {
        Ok(inside) => {
            visibility.hidden
                || !inside.components().any(|c| match c {
                    Component::Normal(name) => name.as_bytes().starts_with(b"."),
                    _ => false,
                })
        }
        Err(_) => visibility.follow_symlinks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Site {
        _dir: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    fn site() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(root.join("docs/deep")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("index.html"), "home").unwrap();
        std::fs::write(root.join("docs/a b.txt"), "spaced").unwrap();
        std::fs::write(root.join("docs/café.txt"), "utf8").unwrap();
        std::fs::write(root.join(".env"), "SECRET").unwrap();
        std::fs::write(outside.join("secret.txt"), "SECRET").unwrap();
        symlink(outside.join("secret.txt"), root.join("out-link")).unwrap();
        symlink(root.join("docs/a b.txt"), root.join("in-link")).unwrap();
        symlink(root.join(".env"), root.join("to-hidden")).unwrap();
        Site {
            _dir: dir,
            root,
            outside,
        }
    }

    fn get(site: &Site, path: &str) -> Resolved {
        resolve(&site.root, path, Visibility::default())
    }

    #[test]
    fn files_and_directories() {
        let s = site();
        assert_eq!(
            get(&s, "/index.html"),
            Resolved::File(s.root.join("index.html"))
        );
        assert_eq!(
            get(&s, "/docs/a%20b.txt"),
            Resolved::File(s.root.join("docs/a b.txt"))
        );
        assert_eq!(
            get(&s, "/docs/caf%C3%A9.txt"),
            Resolved::File(s.root.join("docs/café.txt"))
        );
        let directory = |real: PathBuf, url: &str| Resolved::Directory {
            real,
            url: url.to_owned(),
        };
        assert_eq!(get(&s, "/"), directory(s.root.clone(), "/"));
        assert_eq!(get(&s, "/docs/"), directory(s.root.join("docs"), "/docs/"));
        assert_eq!(
            get(&s, "//docs//./deep/"),
            directory(s.root.join("docs/deep"), "/docs/deep/")
        );
        assert_eq!(
            get(&s, "/docs/caf\u{e9}.txt"),
            Resolved::File(s.root.join("docs/café.txt")),
            "raw UTF-8 names the same file as its escapes"
        );
        assert_eq!(get(&s, "/docs/100%.txt"), Resolved::Malformed);
        assert_eq!(get(&s, "/%zz"), Resolved::Malformed);
        assert_eq!(get(&s, "/index.html/"), Resolved::NotFound);
        assert_eq!(get(&s, "/missing"), Resolved::NotFound);
    }

    #[test]
    fn every_spelling_of_a_path_normalises_to_one() {
        let hidden = Visibility::default();
        let normal = |path: &str| normalise(path, hidden);
        for spelling in [
            "/docs/a%20b.txt",
            "//docs/a%20b.txt",
            "/./docs/./a%20b.txt",
            "/%2E/docs/%2e/a%20b.txt",
            "/%64ocs/a%20b.txt",
            "/docs//a b.txt",
            "/docs/a%20%62.txt",
            "/d%6Fcs/a%20b.txt",
            "/d%6fcs/a%20b.txt",
        ] {
            assert_eq!(
                normal(spelling).as_deref(),
                Some("/docs/a%20b.txt"),
                "{spelling}"
            );
        }
        assert_eq!(
            normal("/docs/caf\u{e9}").as_deref(),
            Some("/docs/caf%C3%A9")
        );
        assert_eq!(
            normal("/docs/caf%c3%a9").as_deref(),
            Some("/docs/caf%C3%A9")
        );
        assert_eq!(normal("/a+b").as_deref(), Some("/a%2Bb"));
        assert_eq!(normal("/a%2Bb").as_deref(), Some("/a%2Bb"));
        // The trailing slash is part of what a path means.
        assert_eq!(normal("/docs/").as_deref(), Some("/docs/"));
        assert_eq!(normal("/docs/./").as_deref(), Some("/docs/"));
        assert_eq!(normal("/docs//").as_deref(), Some("/docs/"));
        assert_eq!(normal("/docs").as_deref(), Some("/docs"));
        assert_eq!(normal("/docs/.").as_deref(), Some("/docs"));
        assert_eq!(normal("/").as_deref(), Some("/"));
        assert_eq!(normal("//./").as_deref(), Some("/"));
        assert_eq!(normal("/.").as_deref(), Some("/"));
        // Refused on their face: not cached at all.
        for refused in ["/../x", "/%2e%2e/x", "/a%2Fb", "/100%", "/.env", "/a%00"] {
            assert_eq!(normal(refused), None, "{refused}");
        }
        let shown = Visibility {
            hidden: true,
            ..Visibility::default()
        };
        assert_eq!(normalise("/%2eenv", shown).as_deref(), Some("/.env"));
    }

    #[test]
    fn a_normal_spelling_resolves_as_the_path_it_came_from() {
        let s = site();
        for path in [
            "/index.html",
            "//docs//a%20b.txt",
            "/docs/./deep/",
            "/%64ocs",
            "/docs/caf\u{e9}.txt",
            "/docs/.",
            "/",
            "/missing",
        ] {
            let normal = normalise(path, Visibility::default()).unwrap();
            assert_eq!(get(&s, &normal), get(&s, path), "{path} as {normal}");
        }
    }

    #[test]
    fn directories_without_a_slash_redirect_to_a_local_path() {
        let s = site();
        assert_eq!(get(&s, "/docs"), Resolved::AddSlash("/docs/".into()));
        assert_eq!(
            get(&s, "//docs/deep"),
            Resolved::AddSlash("/docs/deep/".into())
        );
    }

    #[test]
    fn escapes_are_forbidden() {
        let s = site();
        for path in [
            "/../outside/secret.txt",
            "/docs/../../outside/secret.txt",
            "/%2e%2e/outside/secret.txt",
            "/%2E%2E%2Foutside%2Fsecret.txt",
            "/docs%2F..%2F..%2Foutside",
            "/..%5C..%5Coutside",
            "/docs/a%00b",
        ] {
            assert_eq!(get(&s, path), Resolved::Forbidden, "{path}");
        }
    }

    #[test]
    fn hidden_files_are_not_found_unless_allowed() {
        let s = site();
        assert_eq!(get(&s, "/.env"), Resolved::NotFound);
        assert_eq!(get(&s, "/%2eenv"), Resolved::NotFound);
        assert_eq!(get(&s, "/to-hidden"), Resolved::NotFound);
        let shown = Visibility {
            hidden: true,
            ..Visibility::default()
        };
        assert_eq!(
            resolve(&s.root, "/.env", shown),
            Resolved::File(s.root.join(".env"))
        );
    }

    #[test]
    fn symlinks_may_not_lead_outside_unless_allowed() {
        let s = site();
        assert_eq!(get(&s, "/out-link"), Resolved::NotFound);
        assert_eq!(
            get(&s, "/in-link"),
            Resolved::File(s.root.join("docs/a b.txt"))
        );
        let follow = Visibility {
            follow_symlinks: true,
            ..Visibility::default()
        };
        assert_eq!(
            resolve(&s.root, "/out-link", follow),
            Resolved::File(s.outside.join("secret.txt"))
        );
    }
}
