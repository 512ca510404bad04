//! Giving up root: `--user`, `--group` and `--chroot`.
//!
//! Port 80 and 443 need root (or `CAP_NET_BIND_SERVICE`); serving files does
//! not. So the server starts as root, binds its listeners, opens its logs and
//! reads its certificate, and then, before it reads a single request, becomes
//! someone else, the way nginx's `user`, lighttpd's `server.username` and
//! darkhttpd's `--uid` do:
//!
//! 1. `chroot(DIR)` and `chdir("/")`, if asked: the files outside DIR are gone
//!    for good, so the static root and the `/files/` store must be inside it;
//! 2. `setgroups` to the user's supplementary groups (read before the chroot,
//!    from the system's group database), `setgid`, then `setuid`: in that
//!    order, because each step needs the rights the next one gives up;
//! 3. a check that root is really gone (`setuid(0)` must fail): if anything
//!    went wrong the server refuses to go on, rather than serve as root.
//!
//! Names are looked up when the command line is read, so a typo fails at start.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Who the server becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    /// Supplementary groups: the user's, from the group database.
    pub groups: Vec<libc::gid_t>,
}

impl Account {
    /// `user`, with `group` as its group if given (else the user's own).
    pub fn look_up(user: &str, group: Option<&str>) -> Result<Account, String> {
        let (uid, primary) =
            user_ids(user)?.ok_or_else(|| format!("--user: there is no user named `{user}`"))?;
        let gid = match group {
            Some(name) => group_id(name)?
                .ok_or_else(|| format!("--group: there is no group named `{name}`"))?,
            None => primary,
        };
        let mut groups = supplementary_groups(user, gid)?;
        groups.retain(|&g| g != gid);
        groups.insert(0, gid);
        Ok(Account {
            user: user.to_owned(),
            uid,
            gid,
            groups,
        })
    }
}

/// A `--chroot` folder, and what the server's paths are called from inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jail {
    /// Canonical.
    dir: PathBuf,
}

impl Jail {
    pub fn new(dir: &Path) -> Result<Jail, String> {
        let dir = dir
            .canonicalize()
            .map_err(|e| format!("--chroot {}: {e}", dir.display()))?;
        if !dir.is_dir() {
            return Err(format!("--chroot {}: not a directory", dir.display()));
        }
        Ok(Jail { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What `path` (a file that may not exist yet, in a folder that does) is
    /// called inside the jail, if it is inside.
    pub fn inside(&self, path: &Path) -> Option<PathBuf> {
        // Its folder resolved, its own name kept: a file that is a symlink
        // (certbot's `live/` files) is followed each time it is read, not
        // frozen to where it led at start.
        let named = match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => {
                let parent = if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                };
                parent.canonicalize().ok()?.join(name)
            }
            _ => path.canonicalize().ok()?,
        };
        let rest = named.strip_prefix(&self.dir).ok()?;
        Some(Path::new("/").join(rest))
    }
}

/// What the server gives up once it is ready to serve.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Privileges {
    pub account: Option<Account>,
    pub jail: Option<Jail>,
}

impl Privileges {
    /// Checks, at start, that this process can become what is asked.
    pub fn check(&self) -> Result<(), String> {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        if euid == 0 {
            return Ok(());
        }
        if self.jail.is_some() {
            return Err("--chroot needs the server to start as root".into());
        }
        match &self.account {
            Some(account) if account.uid != euid => Err(format!(
                "--user {}: only root can become another user (this is uid {euid}); start as \
                 root, or give the binary CAP_NET_BIND_SERVICE and run it as {0} directly",
                account.user
            )),
            _ => Ok(()),
        }
    }

    /// Enters the jail and becomes the account; an error means the process
    /// must not go on. `public` says whether the server listens beyond
    /// loopback, where running as root deserves a warning.
    pub fn give_up(&self, public: bool) -> Result<(), String> {
        // SAFETY: getuid and geteuid have no preconditions.
        let running_as_root = unsafe { libc::geteuid() == 0 };
        if let Some(jail) = &self.jail {
            enter(jail).map_err(|e| format!("--chroot {}: {e}", jail.dir.display()))?;
        }
        match &self.account {
            Some(account) if running_as_root => {
                become_account(account).map_err(|e| format!("--user {}: {e}", account.user))?;
                log::info!(
                    "running as {} (uid {}, gid {}){}",
                    account.user,
                    account.uid,
                    account.gid,
                    self.jail
                        .as_ref()
                        .map(|j| format!(", inside {}", j.dir.display()))
                        .unwrap_or_default()
                );
            }
            Some(_) => {} // already that user: checked at start
            None if running_as_root && public => log::warn!(
                "running as root: any flaw in the server would be a flaw with root's rights; \
                 --user NAME gives them up once the listeners are bound"
            ),
            None => {}
        }
        Ok(())
    }
}

fn enter(jail: &Jail) -> io::Result<()> {
    let dir = c_path(&jail.dir)?;
    // SAFETY: chroot and chdir read the NUL-terminated strings we own.
    if unsafe { libc::chroot(dir.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above, a static NUL-terminated string.
    if unsafe { libc::chdir(c"/".as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The part of a group list `setgroups` accepts. macOS refuses (EINVAL) more
/// than its NGROUPS_MAX of 16, though getgrouplist lists an account's every
/// group; the primary group comes first there, so it is kept. Elsewhere the
/// limit is far above any list.
fn settable_groups(groups: &[libc::gid_t]) -> &[libc::gid_t] {
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    const SETTABLE: usize = 16;
    #[cfg(not(any(target_os = "macos", target_os = "ios")))]
    const SETTABLE: usize = MOST_GROUPS_LISTED;
    if groups.len() > SETTABLE {
        log::warn!(
            "the account is in {} groups; this system sets at most {SETTABLE}, so the \
             server runs in the first {SETTABLE} only",
            groups.len()
        );
    }
    &groups[..groups.len().min(SETTABLE)]
}

fn become_account(account: &Account) -> Result<(), String> {
    let fail = |what: &str| format!("{what}: {}", io::Error::last_os_error());
    let groups = settable_groups(&account.groups);
    // The count is a size_t on Linux and an int on the BSDs and macOS; a
    // group list is far shorter than either holds (NGROUPS_MAX).
    let count = groups.len() as _;
    // SAFETY: setgroups reads `count` ids from the vector we own.
    if unsafe { libc::setgroups(count, groups.as_ptr()) } != 0 {
        return Err(fail("setgroups"));
    }
    // SAFETY: plain system calls on ids.
    if unsafe { libc::setgid(account.gid) } != 0 {
        return Err(fail("setgid"));
    }
    // SAFETY: as above.
    if unsafe { libc::setuid(account.uid) } != 0 {
        return Err(fail("setuid"));
    }
    // Trust, but verify: every id is the account's, and root cannot be had back.
    // SAFETY: plain system calls on ids.
    let (uid, euid, gid, egid) = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    // SAFETY: as above; it must fail.
    let root_regained = account.uid != 0 && unsafe { libc::setuid(0) } == 0;
    if (uid, euid, gid, egid) != (account.uid, account.uid, account.gid, account.gid)
        || root_regained
    {
        return Err("the switch did not take; refusing to run with root's rights".into());
    }
    Ok(())
}

/// The user's uid and primary gid, if the user exists.
fn user_ids(name: &str) -> Result<Option<(libc::uid_t, libc::gid_t)>, String> {
    let c_name = c_name(name, "--user")?;
    let mut buffer = vec![0u8; 1024];
    loop {
        // SAFETY: an all-zero passwd is a valid value for getpwnam_r to fill.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is to memory we own, `buffer.len()` long.
        let status = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &mut entry,
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                &mut found,
            )
        };
        match status {
            0 if found.is_null() => return Ok(None),
            0 => return Ok(Some((entry.pw_uid, entry.pw_gid))),
            libc::ERANGE if buffer.len() < 1 << 20 => buffer.resize(buffer.len() * 2, 0),
            error => {
                let error = io::Error::from_raw_os_error(error);
                return Err(format!("--user {name}: cannot look it up: {error}"));
            }
        }
    }
}

/// The group's gid, if it exists.
fn group_id(name: &str) -> Result<Option<libc::gid_t>, String> {
    let c_name = c_name(name, "--group")?;
    let mut buffer = vec![0u8; 1024];
    loop {
        // SAFETY: an all-zero group is a valid value for getgrnam_r to fill.
        let mut entry: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is to memory we own, `buffer.len()` long.
        let status = unsafe {
            libc::getgrnam_r(
                c_name.as_ptr(),
                &mut entry,
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                &mut found,
            )
        };
        match status {
            0 if found.is_null() => return Ok(None),
            0 => return Ok(Some(entry.gr_gid)),
            libc::ERANGE if buffer.len() < 1 << 20 => buffer.resize(buffer.len() * 2, 0),
            error => {
                let error = io::Error::from_raw_os_error(error);
                return Err(format!("--group {name}: cannot look it up: {error}"));
            }
        }
    }
}

/// A group id as getgrouplist(3) speaks it: macOS's takes `int`s where the
/// others take `gid_t`s.
#[cfg(any(target_os = "macos", target_os = "ios"))]
type ListedGroup = libc::c_int;
#[cfg(not(any(target_os = "macos", target_os = "ios")))]
type ListedGroup = libc::gid_t;

/// The longest group list believed: no system allows more (Linux's
/// NGROUPS_MAX is 65536).
const MOST_GROUPS_LISTED: usize = 65536;

/// The groups `user` belongs to, `gid` among them.
fn supplementary_groups(user: &str, gid: libc::gid_t) -> Result<Vec<libc::gid_t>, String> {
    let c_user = c_name(user, "--user")?;
    let mut groups: Vec<ListedGroup> = vec![0; 32];
    loop {
        let mut count = libc::c_int::try_from(groups.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `groups` holds `count` ids; getgrouplist writes at most that
        // many and says how many there are.
        let status = unsafe {
            libc::getgrouplist(c_user.as_ptr(), gid as _, groups.as_mut_ptr(), &mut count)
        };
        let count = usize::try_from(count).unwrap_or(0);
        if status >= 0 {
            groups.truncate(count);
            // The same bits either way: ids are below 2^31 in practice, and
            // macOS stores them as the ints it listed.
            return Ok(groups.into_iter().map(|g| g as libc::gid_t).collect());
        }
        // Too small a buffer: glibc says how many there are, the BSDs and
        // macOS say only how many they stored, so grow to the larger of
        // that count and twice the buffer.
        let wanted = count.max(groups.len() * 2);
        if wanted > MOST_GROUPS_LISTED {
            return Err(format!("--user {user}: cannot list its groups"));
        }
        groups.resize(wanted, 0);
    }
}

fn c_name(name: &str, flag: &str) -> Result<CString, String> {
    CString::new(name).map_err(|_| format!("{flag}: a name cannot hold a NUL byte"))
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the path"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_and_nonsense_is_not() {
        let root = Account::look_up("root", None).unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(root.groups.first(), Some(&0), "the primary group first");
        let error = Account::look_up("no-such-user-here", None).unwrap_err();
        assert!(
            error.contains("no user named `no-such-user-here`"),
            "{error}"
        );
        let error = Account::look_up("root", Some("no-such-group-here")).unwrap_err();
        assert!(error.contains("no group named"), "{error}");
        assert!(Account::look_up("a\0b", None).is_err());
    }

    #[test]
    fn a_jail_names_paths_from_inside() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("srv/site");
        std::fs::create_dir_all(&site).unwrap();
        let jail = Jail::new(dir.path()).unwrap();
        assert_eq!(jail.inside(&site), Some(PathBuf::from("/srv/site")));
        assert_eq!(jail.inside(dir.path()), Some(PathBuf::from("/")));
        assert_eq!(
            jail.inside(&dir.path().join("srv/not-yet.log")),
            Some(PathBuf::from("/srv/not-yet.log")),
            "a log file that does not exist yet"
        );
        // certbot's links keep their names, to be followed when read.
        let live = dir.path().join("live");
        std::fs::create_dir(&live).unwrap();
        std::os::unix::fs::symlink("../srv/site", live.join("cert.pem")).unwrap();
        assert_eq!(
            jail.inside(&live.join("cert.pem")),
            Some(PathBuf::from("/live/cert.pem"))
        );
        assert_eq!(jail.inside(Path::new("/etc/passwd")), None);
        let elsewhere = tempfile::tempdir().unwrap();
        assert_eq!(jail.inside(elsewhere.path()), None);
        assert!(Jail::new(Path::new("/no/such/dir")).is_err());
    }
}
