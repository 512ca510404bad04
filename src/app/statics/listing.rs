//! The HTML index of a directory (with `--listing`).
//!
//! Two costs are bounded here, because a directory can hold anything:
//!
//! - **Time.** A listing shows at most `max_entries` entries (the first ones
//!   in its order: directories, then names), and says how many it left out.
//!   Names are read with `readdir` and kept in a bounded heap, so a folder of a
//!   million files costs a million cheap names, not a million `stat`s; only
//!   the entries shown are `stat`ed, and only symlinks are resolved (a plain
//!   entry of a directory inside ROOT is inside ROOT).
//! - **Memory.** A page is rendered once per version of its directory and
//!   shared: every client gets the same bytes (`Arc<[u8]>`), so ten clients
//!   that never read a 1.5 MB listing hold 1.5 MB, not 15. A page is
//!   rendered again when the directory itself changes (an entry added,
//!   removed or renamed); a file edited in place keeps its old size and date
//!   on the page until then.
//!
//! File times are coarse (a clock tick, or a whole second on some file
//! systems): two changes within one tick leave the directory looking the
//! same. So, as git does with "racily clean" entries, a page rendered less
//! than [`RACY_WINDOW`] after its directory last changed is trusted for at
//! most a second; once the directory has been still that long, a new rendering
//! is trusted until it changes.
//!
//! A file name is data from whoever can write to ROOT, so it is never trusted:
//! every name is HTML-escaped where it is shown and percent-encoded where it is
//! linked, and the page is sent with a Content-Security-Policy that forbids
//! scripts, so even a bug here could not become an XSS.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::ffi::OsStr;
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::resolve::{Visibility, visible};
use crate::app::lru::{Lru, lock};
use crate::app::open::FileIdentity;
use crate::app::url;
use crate::http::Now;
use crate::timefmt::Civil;

/// The policy sent with every listing: styles inline, nothing else, no scripts.
pub(super) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'";

/// Most entries a listing shows unless `--listing-max-entries` says otherwise.
pub(crate) const DEFAULT_MAX_ENTRIES: usize = 10_000;

/// Rendered pages, by the canonical URL path they were rendered for.
///
/// `index` knows every rendering still alive anywhere, through a weak
/// reference: one that any client still has in flight is shared, however large
/// it is. `kept` holds strong references to the most recent ones, within a
/// byte budget, so that a page outlives its last client while it fits.
pub(super) struct Listings {
    max_entries: usize,
    index: Mutex<Index>,
    kept: Mutex<Lru<String, Arc<[u8]>>>,
}

/// The renderings alive anywhere, by URL path.
struct Index {
    pages: HashMap<String, Page>,
    /// When `pages` passes this, the dead are forgotten: twice what the last
    /// pruning kept, so that pruning costs a constant per rendering.
    prune_at: usize,
}

/// The index is pruned from this size on.
const PRUNE_FLOOR: usize = 64;

/// What a kept page costs besides its bytes and its name: its slot in the
/// map and in the recency order.
const PAGE_OVERHEAD: usize = 128;

/// One rendering of one version of a directory.
struct Page {
    real: PathBuf,
    identity: FileIdentity,
    /// Rendered so soon after the directory changed that the identity alone
    /// cannot be trusted.
    racy: bool,
    rendered: Instant,
    html: Weak<[u8]>,
}

/// How long after a directory's last change its identity may still hide a
/// further change (coarser than any file system's timestamps).
pub(super) const RACY_WINDOW: Duration = Duration::from_secs(2);

/// How long a page rendered within the racy window is trusted.
const RACY_TRUST: Duration = Duration::from_secs(1);

impl Listings {
    /// Listings of at most `max_entries` entries, kept alive in up to
    /// `cache_bytes` when no client holds them.
    pub(super) fn new(max_entries: usize, cache_bytes: usize) -> Listings {
        Listings {
            max_entries,
            index: Mutex::new(Index {
                pages: HashMap::new(),
                prune_at: PRUNE_FLOOR,
            }),
            kept: Mutex::new(Lru::new(cache_bytes)),
        }
    }

    /// The page for `dir` (under `root`), shown at `url_path` (canonical, ending
    /// in `/`): the one rendered before if the directory has not changed since
    /// and someone still holds it, else a new rendering.
    pub(super) fn page(
        &self,
        root: &Path,
        dir: &Path,
        url_path: &str,
        visibility: Visibility,
        now: Now<'_>,
    ) -> io::Result<Arc<[u8]>> {
        // Taken before reading: a change during the rendering makes the next
        // request render again.
        let identity = FileIdentity::of(&std::fs::metadata(dir)?);
        if let Some(html) = self.rendered(url_path, dir, identity, now.instant) {
            return Ok(html);
        }
        let html: Arc<[u8]> = render(root, dir, url_path, visibility, self.max_entries)?
            .into_bytes()
            .into();
        log::debug!(
            "listing {url_path} rendered: {} bytes in {:.1} ms",
            html.len(),
            now.instant.elapsed().as_secs_f64() * 1e3
        );
        let page = Page {
            real: dir.to_path_buf(),
            identity,
            racy: changed_recently(&identity, now.wall),
            rendered: now.instant,
            html: Arc::downgrade(&html),
        };
        {
            let mut index = lock(&self.index);
            // Forget renderings nobody holds any more, so the index stays as
            // small as what is alive.
            if index.pages.len() >= index.prune_at {
                index.pages.retain(|_, page| page.html.strong_count() > 0);
                index.prune_at = (2 * index.pages.len()).max(PRUNE_FLOOR);
            }
            index.pages.insert(url_path.to_owned(), page);
        }
        let weight = html.len() + url_path.len() + PAGE_OVERHEAD;
        lock(&self.kept).insert(url_path.to_owned(), Arc::clone(&html), weight, now.instant);
        Ok(html)
    }

    /// A rendering of this version of `dir` that is still alive and trusted.
    fn rendered(
        &self,
        url_path: &str,
        dir: &Path,
        identity: FileIdentity,
        now: Instant,
    ) -> Option<Arc<[u8]>> {
        let index = lock(&self.index);
        let page = index.pages.get(url_path)?;
        let trusted = page.identity == identity
            && page.real == dir
            && (!page.racy || now.duration_since(page.rendered) < RACY_TRUST);
        let html = page.html.upgrade().filter(|_| trusted)?;
        drop(index);
        // Seen again: the most recently used to keep.
        let _ = lock(&self.kept).touch(url_path);
        Some(html)
    }
}

/// Whether the last change recorded in `identity` is within [`RACY_WINDOW`]
/// of `now` (or in the future, which a clock step can make it).
fn changed_recently(identity: &FileIdentity, now: SystemTime) -> bool {
    let last_change = identity.modified_ns.max(identity.changed_ns);
    let now_ns = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX));
    now_ns - last_change < RACY_WINDOW.as_nanos() as i128
}

/// An entry as `readdir` gave it: its name and, from the directory entry's
/// type, whether it is a directory or a symlink (no `stat` yet).
#[derive(PartialEq, Eq)]
struct Candidate {
    is_dir: bool,
    is_symlink: bool,
    name: Vec<u8>,
}

impl Ord for Candidate {
    /// The listing's order: directories first, then by name.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .is_dir
            .cmp(&self.is_dir)
            .then_with(|| self.name.cmp(&other.name))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One row of the page.
struct Entry {
    name: Vec<u8>,
    is_dir: bool,
    metadata: Metadata,
}

/// Reads the first `max_entries` visible names of `dir`, in listing order,
/// and how many more there were.
fn first_entries(
    dir: &Path,
    visibility: Visibility,
    max_entries: usize,
) -> io::Result<(Vec<Candidate>, usize)> {
    // A max-heap of the best `max_entries` so far: the worst kept is on top,
    // ready to be pushed out by a better one.
    let mut kept = BinaryHeap::with_capacity(max_entries.min(4096) + 1);
    let mut left_out = 0;
    for item in std::fs::read_dir(dir)? {
        let Ok(item) = item else { continue };
        let name = item.file_name().into_vec();
        if name.starts_with(b".") && !visibility.hidden {
            continue;
        }
        // From the directory entry itself on most file systems (no stat).
        let Ok(kind) = item.file_type() else { continue };
        kept.push(Candidate {
            is_dir: kind.is_dir(),
            is_symlink: kind.is_symlink(),
            name,
        });
        if kept.len() > max_entries {
            kept.pop();
            left_out += 1;
        }
    }
    Ok((kept.into_sorted_vec(), left_out))
}

/// Looks a candidate up: its metadata if it may be listed (a regular file or
/// a directory; a symlink only if it leads somewhere we would serve).
fn describe(
    root: &Path,
    dir: &Path,
    candidate: Candidate,
    visibility: Visibility,
) -> Option<Entry> {
    let path = dir.join(OsStr::from_bytes(&candidate.name));
    let metadata = if candidate.is_symlink {
        let real = path.canonicalize().ok()?;
        if !visible(root, &real, visibility) {
            return None;
        }
        std::fs::metadata(&real).ok()?
    } else {
        std::fs::symlink_metadata(&path).ok()?
    };
    (metadata.is_dir() || metadata.is_file()).then(|| Entry {
        name: candidate.name,
        is_dir: metadata.is_dir(),
        metadata,
    })
}

/// Renders the listing of `dir` (under `root`), shown at `url_path` (canonical,
/// percent-encoded, ending in `/`).
pub(super) fn render(
    root: &Path,
    dir: &Path,
    url_path: &str,
    visibility: Visibility,
    max_entries: usize,
) -> io::Result<String> {
    let (candidates, left_out) = first_entries(dir, visibility, max_entries)?;
    let mut entries: Vec<Entry> = candidates
        .into_iter()
        .filter_map(|candidate| describe(root, dir, candidate, visibility))
        .collect();
    // A symlink to a directory sorts with the directories once it is known.
    entries.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));

    let shown_path = url::decode(url_path).map_or_else(
        |_| url_path.to_owned(),
        |bytes| String::from_utf8_lossy(&bytes).into_owned(),
    );
    let title = format!("Index of {}", escape_html(&shown_path));

    let mut rows = String::new();
    if url_path != "/" {
        rows.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for entry in &entries {
        let display = String::from_utf8_lossy(&entry.name);
        let mut href = url::encode_segment(&entry.name);
        let (suffix, size) = if entry.is_dir {
            href.push('/');
            ("/", "-".to_string())
        } else {
            ("", human_size(entry.metadata.len()))
        };
        let modified = entry
            .metadata
            .modified()
            .map(|t| Civil::from_system_time(t).short())
            .unwrap_or_default();
        rows.push_str(&format!(
            "<tr><td><a href=\"{}\">{}{suffix}</a></td><td>{size}</td><td>{modified}</td></tr>\n",
            escape_html(&href),
            escape_html(&display)
        ));
    }
    let cut = match left_out {
        0 => String::new(),
        n => format!(
            "<p class=\"cut\">This listing is cut: {} entries are shown, {n} more are not \
             (the limit is --listing-max-entries {max_entries}).</p>\n",
            entries.len()
        ),
    };

    Ok(format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n\
         {cut}<table>\n<thead><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr></thead>\n\
         <tbody>\n{rows}</tbody>\n</table>\n</body>\n</html>\n"
    ))
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;margin:1rem auto;max-width:52rem;padding:0 1rem}\n\
h1{font-size:1.3rem;word-break:break-all}\n\
.cut{padding:.5rem;background:#fff4d6;border:1px solid #e0c36e}\n\
table{border-collapse:collapse;width:100%}\n\
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #ddd}\n\
td:first-child{word-break:break-all}\n\
td:nth-child(2),th:nth-child(2){text-align:right;white-space:nowrap}\n\
@media (max-width:32rem){td:nth-child(3),th:nth-child(3){display:none}}\n";

/// Escapes the five characters that matter in HTML text and attributes.
pub(super) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match UNITS.get(unit) {
        Some(name) if unit > 0 => format!("{value:.1} {name}"),
        _ => format!("{bytes} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_all(root: &Path, dir: &Path, url_path: &str) -> String {
        render(
            root,
            dir,
            url_path,
            Visibility::default(),
            DEFAULT_MAX_ENTRIES,
        )
        .unwrap()
    }

    #[test]
    fn hostile_names_are_escaped_and_encoded() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let hostile = "<img src=x onerror=alert('x')>&\"";
        std::fs::write(root.join(hostile), b"x").unwrap();
        std::fs::write(root.join("a b.txt"), b"hello").unwrap();
        std::fs::create_dir(root.join("zdir")).unwrap();
        std::fs::write(root.join(".hidden"), b"x").unwrap();
        let html = render_all(&root, &root, "/");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains(">&lt;img src=x onerror=alert(&#39;x&#39;)&gt;&amp;&quot;</a>"));
        assert!(html.contains("href=\"%3Cimg%20src%3Dx%20onerror%3Dalert%28%27x%27%29%3E%26%22\""));
        assert!(html.contains("href=\"a%20b.txt\">a b.txt</a></td><td>5 B</td>"));
        assert!(!html.contains(".hidden"));
        assert!(!html.contains("href=\"../\""), "no parent link at the root");
        let zdir = html.find("zdir/").unwrap();
        let afile = html.find("a b.txt").unwrap();
        assert!(zdir < afile, "directories come first");
        assert!(!html.contains("listing is cut"));
    }

    #[test]
    fn subdirectories_link_to_their_parent() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        let html = render_all(&root, &root.join("sub"), "/sub/");
        assert!(html.contains("<a href=\"../\">../</a>"));
        assert!(html.contains("<title>Index of /sub/</title>"));
    }

    #[test]
    fn symlinks_are_listed_only_where_they_could_be_served() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("root");
        std::fs::create_dir_all(root.join("real-dir")).unwrap();
        std::fs::write(base.join("secret"), b"x").unwrap();
        std::os::unix::fs::symlink(base.join("secret"), root.join("leak")).unwrap();
        std::os::unix::fs::symlink(root.join("real-dir"), root.join("a-dir-link")).unwrap();
        let html = render_all(&root, &root, "/");
        assert!(!html.contains("leak"), "{html}");
        assert!(html.contains("href=\"a-dir-link/\""), "{html}");
        let dirs = html.find("a-dir-link/").unwrap();
        assert!(
            dirs < html.find("real-dir/").unwrap(),
            "sorted with directories"
        );
    }

    #[test]
    fn a_long_listing_is_cut_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for i in 0..25 {
            std::fs::write(root.join(format!("f{i:02}")), b"x").unwrap();
        }
        std::fs::create_dir(root.join("zz-dir")).unwrap();
        let html = render(&root, &root, "/", Visibility::default(), 10).unwrap();
        assert_eq!(html.matches("<tr><td><a href=").count(), 10);
        assert!(html.contains("zz-dir/"), "directories are kept first");
        assert!(
            html.contains("f08") && !html.contains("f09"),
            "then by name"
        );
        assert!(
            html.contains("10 entries are shown, 16 more are not"),
            "{html}"
        );
    }

    /// Moves a directory's modification time back, so that the next change
    /// is sure to show in its identity whatever the clock's granularity.
    fn age(dir: &Path, by: Duration) {
        let handle = std::fs::File::open(dir).unwrap();
        handle.set_modified(SystemTime::now() - by).unwrap();
    }

    #[test]
    fn pages_are_shared_until_the_directory_changes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("one"), b"x").unwrap();
        age(&root, Duration::from_secs(60));
        let listings = Listings::new(DEFAULT_MAX_ENTRIES, 1 << 20);
        let page = |listings: &Listings| {
            listings
                .page(
                    &root,
                    &root,
                    "/",
                    Visibility::default(),
                    crate::app::tests::now(),
                )
                .unwrap()
        };
        let first = page(&listings);
        let again = page(&listings);
        assert!(Arc::ptr_eq(&first, &again), "one rendering, shared");
        std::fs::write(root.join("two"), b"x").unwrap();
        let changed = page(&listings);
        assert!(!Arc::ptr_eq(&first, &changed));
        assert!(String::from_utf8_lossy(&changed).contains("two"));
    }

    #[test]
    fn many_directories_keep_within_the_budget_and_the_index_within_what_lives() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let budget = 16 << 10;
        let listings = Listings::new(DEFAULT_MAX_ENTRIES, budget);
        let mut held = Vec::new();
        for n in 0..400 {
            let sub = root.join(format!("d{n}"));
            std::fs::create_dir(&sub).unwrap();
            std::fs::write(sub.join("file"), b"x").unwrap();
            let url = format!("/d{n}/");
            let html = listings
                .page(
                    &root,
                    &sub,
                    &url,
                    Visibility::default(),
                    crate::app::tests::now(),
                )
                .unwrap();
            // A client holds every tenth page a while (in flight).
            if n % 10 == 0 {
                held.push(html);
            }
            assert!(lock(&listings.kept).used().bytes <= budget);
            let index = lock(&listings.index);
            let alive = index
                .pages
                .values()
                .filter(|page| page.html.strong_count() > 0)
                .count();
            assert!(
                index.pages.len() <= (2 * alive).max(PRUNE_FLOOR) + 1,
                "{} pages indexed, {alive} alive",
                index.pages.len()
            );
        }
        assert!(lock(&listings.kept).len() > 10, "and the budget is used");
    }

    #[test]
    fn a_page_too_large_to_keep_is_still_shared_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("one"), b"x").unwrap();
        age(&root, Duration::from_secs(60));
        let listings = Listings::new(DEFAULT_MAX_ENTRIES, 0);
        let page = || {
            listings
                .page(
                    &root,
                    &root,
                    "/",
                    Visibility::default(),
                    crate::app::tests::now(),
                )
                .unwrap()
        };
        let held = page();
        assert!(
            Arc::ptr_eq(&held, &page()),
            "shared while a client holds it"
        );
    }

    #[test]
    fn a_page_rendered_right_after_a_change_is_trusted_only_briefly() {
        let now = SystemTime::now();
        let identity_at = |t: SystemTime| {
            let ns = t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as i128;
            FileIdentity {
                device: 1,
                inode: 2,
                len: 3,
                modified_ns: ns,
                changed_ns: ns,
            }
        };
        assert!(changed_recently(&identity_at(now), now));
        assert!(changed_recently(
            &identity_at(now + Duration::from_secs(5)),
            now
        ));
        assert!(!changed_recently(&identity_at(now - RACY_WINDOW), now));
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 << 30), "5.0 GiB");
    }
}
