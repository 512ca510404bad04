//! The watch on Linux: one inotify instance per cache, one watch per
//! directory, the events read as variable-length records by the `inotify`
//! crate. Each event names the entry of the directory it is about, so a
//! change drops the keys depending on that name alone.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::hash::Hash;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};

/// Registrations are pruned when they pass this, or twice what the last
/// pruning kept, whichever is more.
const PRUNE_FLOOR: usize = 1024;

/// What is watched on each directory.
fn mask() -> WatchMask {
    WatchMask::MODIFY
        | WatchMask::ATTRIB
        | WatchMask::CLOSE_WRITE
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
        | WatchMask::ONLYDIR
}

/// One watched directory, and what depends on the names in it.
struct Watched<K> {
    path: PathBuf,
    names: HashMap<OsString, Dependents<K>>,
}

/// The keys that depend on one name. Most names have one or two (a file, in
/// a coding or two); a directory high in the tree has every entry below it,
/// and finding a key among those must not cost a scan, or filling the cache
/// would cost the square of its size.
enum Dependents<K> {
    Few(Vec<K>),
    Many(HashSet<K>),
}

/// Beyond this many keys, a name's dependents are kept in a set.
const FEW: usize = 8;

impl<K: Hash + Eq> Dependents<K> {
    /// Adds `key`; false if it was there.
    fn insert(&mut self, key: K) -> bool {
        match self {
            Dependents::Few(keys) if keys.contains(&key) => false,
            Dependents::Few(keys) if keys.len() < FEW => {
                keys.push(key);
                true
            }
            Dependents::Few(keys) => {
                let mut set: HashSet<K> = keys.drain(..).collect();
                set.insert(key);
                *self = Dependents::Many(set);
                true
            }
            Dependents::Many(set) => set.insert(key),
        }
    }

    fn len(&self) -> usize {
        match self {
            Dependents::Few(keys) => keys.len(),
            Dependents::Many(set) => set.len(),
        }
    }

    fn retain(&mut self, keep: impl Fn(&K) -> bool) {
        match self {
            Dependents::Few(keys) => keys.retain(keep),
            Dependents::Many(set) => set.retain(keep),
        }
    }

    /// Hands every key to `each`, emptying the set.
    fn drain(self, each: impl FnMut(K)) {
        match self {
            Dependents::Few(keys) => keys.into_iter().for_each(each),
            Dependents::Many(set) => set.into_iter().for_each(each),
        }
    }
}

/// The directories watched for one cache, and the keys depending on them.
pub(in crate::app::statics) struct Watch<K> {
    inotify: Inotify,
    /// The endings of a file's sidecars: a change to `NAME` + one of them is
    /// a change to what depends on `NAME`.
    sidecars: &'static [&'static str],
    by_path: HashMap<PathBuf, WatchDescriptor>,
    dirs: HashMap<WatchDescriptor, Watched<K>>,
    buffer: Vec<u8>,
    /// Keys registered under names, counted once per name.
    registered: usize,
    /// When `registered` passes this, the cache prunes ([`Watch::retain`]).
    prune_at: usize,
}

impl<K: Hash + Eq + Clone> Watch<K> {
    /// A new inotify instance, or `None` (said in the log) where there is none.
    /// Names ending in one of `sidecars` count as the name without it.
    pub(in crate::app::statics) fn new(sidecars: &'static [&'static str]) -> Option<Watch<K>> {
        match Inotify::init() {
            Ok(inotify) => Some(Watch {
                inotify,
                sidecars,
                by_path: HashMap::new(),
                dirs: HashMap::new(),
                buffer: vec![0; 4096],
                registered: 0,
                prune_at: PRUNE_FLOOR,
            }),
            Err(e) => {
                report_short_of_watches(&format!("inotify is not available ({e})"));
                None
            }
        }
    }

    /// The descriptor a driver can wait on.
    pub(in crate::app::statics) fn fd(&self) -> RawFd {
        self.inotify.as_raw_fd()
    }

    /// Records that `key` depends on each (directory, name) of `on`, watching
    /// the directories not watched yet. False if one could not be watched: the
    /// entry must then be revalidated as before.
    pub(in crate::app::statics) fn depend(&mut self, key: &K, on: &[(PathBuf, OsString)]) -> bool {
        let mut all = true;
        for (dir, name) in on {
            let wd = match self.by_path.get(dir) {
                Some(wd) => wd.clone(),
                None => match self.inotify.watches().add(dir, mask()) {
                    Ok(wd) => {
                        self.by_path.insert(dir.clone(), wd.clone());
                        self.dirs.entry(wd.clone()).or_insert_with(|| Watched {
                            path: dir.clone(),
                            names: HashMap::new(),
                        });
                        wd
                    }
                    Err(e) => {
                        if e.raw_os_error() == Some(libc::ENOSPC) {
                            report_short_of_watches(
                                "the inotify watch limit is reached (fs.inotify.max_user_watches)",
                            );
                        } else {
                            log::debug!("cannot watch {}: {e}", dir.display());
                        }
                        all = false;
                        continue;
                    }
                },
            };
            if let Some(watched) = self.dirs.get_mut(&wd) {
                let keys = watched
                    .names
                    .entry(name.clone())
                    .or_insert_with(|| Dependents::Few(Vec::new()));
                if keys.insert(key.clone()) {
                    self.registered += 1;
                }
            }
        }
        all
    }

    /// Reads what happened since the last call and hands every key it made
    /// stale to `stale`; `everything` is told when events were lost (the
    /// queue overflowed) and nothing cached can be trusted.
    pub(in crate::app::statics) fn changes(
        &mut self,
        mut stale: impl FnMut(K),
        mut everything: impl FnMut(),
    ) {
        loop {
            let events = match self.inotify.read_events(&mut self.buffer) {
                Ok(events) => events,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("reading file changes: {e}; trusting nothing cached");
                    return everything();
                }
            };
            let mut lost = false;
            let mut gone = Vec::new();
            let mut read = 0;
            for event in events {
                read += 1;
                if event.mask.contains(EventMask::Q_OVERFLOW) {
                    lost = true;
                    continue;
                }
                let Some(watched) = self.dirs.get_mut(&event.wd) else {
                    continue;
                };
                let about_the_directory = event.mask.intersects(
                    EventMask::DELETE_SELF
                        | EventMask::MOVE_SELF
                        | EventMask::IGNORED
                        | EventMask::UNMOUNT,
                );
                if about_the_directory {
                    for (_, keys) in watched.names.drain() {
                        self.registered -= keys.len();
                        keys.drain(&mut stale);
                    }
                    gone.push(event.wd.clone());
                } else if let Some(name) = event.name {
                    log::trace!("changed: {}", watched.path.join(name).display());
                    let sidecar_of = self.sidecars.iter().filter_map(|ending| {
                        name.as_bytes()
                            .strip_suffix(ending.as_bytes())
                            .map(OsStr::from_bytes)
                    });
                    for affected in std::iter::once(name).chain(sidecar_of) {
                        if let Some(keys) = watched.names.remove(affected) {
                            self.registered -= keys.len();
                            keys.drain(&mut stale);
                        }
                    }
                }
            }
            for wd in gone {
                if let Some(watched) = self.dirs.remove(&wd) {
                    self.by_path.remove(&watched.path);
                }
                let _ = self.inotify.watches().remove(wd);
            }
            if lost {
                log::debug!("file change events were lost: trusting nothing cached");
                everything();
            }
            if read == 0 {
                return;
            }
        }
    }

    /// Whether registrations have piled up: an entry's outlive it when the
    /// cache evicts it, drops it or never stores it (each URL spelling of a
    /// file is a key of its own), so the cache prunes them now and then.
    pub(in crate::app::statics) fn crowded(&self) -> bool {
        self.registered > self.prune_at
    }

    /// Keeps the registrations of the keys `keep` names, and stops watching
    /// the directories nothing depends on any more.
    pub(in crate::app::statics) fn retain(&mut self, keep: impl Fn(&K) -> bool) {
        let mut unwatched = Vec::new();
        self.registered = 0;
        for (wd, watched) in &mut self.dirs {
            watched.names.retain(|_, keys| {
                keys.retain(&keep);
                keys.len() > 0
            });
            // A map keeps its room after a pruning; what piled up must not
            // stay held as empty room.
            if watched.names.capacity() > 4 * watched.names.len().max(FEW) {
                watched.names.shrink_to_fit();
            }
            self.registered += watched.names.values().map(Dependents::len).sum::<usize>();
            if watched.names.is_empty() {
                unwatched.push(wd.clone());
            }
        }
        for wd in unwatched {
            if let Some(watched) = self.dirs.remove(&wd) {
                self.by_path.remove(&watched.path);
            }
            let _ = self.inotify.watches().remove(wd);
        }
        self.prune_at = (2 * self.registered).max(PRUNE_FLOOR);
    }

    /// Keys registered, counted once per name.
    #[cfg(test)]
    pub(in crate::app::statics) fn registrations(&self) -> usize {
        self.registered
    }

    /// Directories watched now.
    #[cfg(test)]
    pub(in crate::app::statics) fn directories(&self) -> usize {
        self.dirs.len()
    }
}

/// Whether the lack of watches has been reported, by any cache of the process.
static SHORT_OF_WATCHES_REPORTED: AtomicBool = AtomicBool::new(false);

fn report_short_of_watches(why: &str) {
    if !SHORT_OF_WATCHES_REPORTED.swap(true, Ordering::Relaxed) {
        log::warn!("{why}: files changed on disk may be served as they were for up to a second");
    }
}

#[cfg(test)]
mod tests {
    use super::super::dependencies;
    use super::*;
    use std::path::Path;

    fn changes(watch: &mut Watch<&'static str>) -> (Vec<&'static str>, bool) {
        let (mut stale, mut all) = (Vec::new(), false);
        watch.changes(|k| stale.push(k), || all = true);
        stale.sort_unstable();
        (stale, all)
    }

    #[test]
    fn a_change_to_a_name_makes_its_keys_stale_and_no_others() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        std::fs::write(base.join("a.txt"), "a").unwrap();
        std::fs::write(base.join("b.txt"), "b").unwrap();
        let mut watch = Watch::new(&[".gz"]).expect("inotify on Linux");
        assert!(watch.depend(&"a", &[(base.clone(), "a.txt".into())]));
        assert!(watch.depend(&"b", &[(base.clone(), "b.txt".into())]));
        assert_eq!(watch.directories(), 1, "one watch per directory");
        assert_eq!(changes(&mut watch), (vec![], false), "nothing yet");
        std::fs::write(base.join("a.txt"), "A").unwrap();
        assert_eq!(changes(&mut watch), (vec!["a"], false));
        // Told once: it must depend again to hear of it again.
        std::fs::write(base.join("a.txt"), "AA").unwrap();
        assert_eq!(changes(&mut watch), (vec![], false));
        std::fs::write(base.join("new.txt"), "n").unwrap();
        std::fs::rename(base.join("new.txt"), base.join("b.txt")).unwrap();
        assert_eq!(
            changes(&mut watch),
            (vec!["b"], false),
            "renamed into place"
        );
        assert!(watch.depend(&"a", &[(base.clone(), "a.txt".into())]));
        std::fs::write(base.join("a.txt.gz"), "gz").unwrap();
        assert_eq!(
            changes(&mut watch),
            (vec!["a"], false),
            "a sidecar appearing is a change to the file it is a sidecar of"
        );
        assert_eq!(watch.registrations(), 0);
    }

    #[test]
    fn a_directory_going_away_makes_everything_under_it_stale() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let sub = base.join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("x"), "x").unwrap();
        let mut watch = Watch::new(&[".gz"]).unwrap();
        assert!(watch.depend(&"x", &[(sub.clone(), "x".into())]));
        std::fs::rename(&sub, base.join("moved")).unwrap();
        assert_eq!(changes(&mut watch), (vec!["x"], false));
        assert_eq!(watch.directories(), 0, "its watch is gone");
    }

    #[test]
    fn dependencies_follow_the_url_path_and_the_real_file() {
        let root = Path::new("/srv/www");
        let on = dependencies(
            root,
            &root.join("docs-link/guide.txt"),
            Path::new("/srv/www/docs/guide.txt"),
        );
        let pairs: Vec<(String, String)> = on
            .into_iter()
            .map(|(d, n)| (d.display().to_string(), n.to_string_lossy().into_owned()))
            .collect();
        let pair = |d: &str, n: &str| (d.to_owned(), n.to_owned());
        assert_eq!(
            pairs,
            [
                pair("/srv/www", "docs-link"),
                pair("/srv/www/docs", "guide.txt"),
                pair("/srv/www/docs-link", "guide.txt"),
            ]
        );
    }
}
