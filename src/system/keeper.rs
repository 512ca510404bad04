//! The keeper: what only root can read, read again after root is given up.
//!
//! certbot writes keys that only root may read (`privkey.pem` is 0600 in a
//! 0700 folder), and a renewal ends with a `SIGHUP` to a server that gave
//! root up long before. So, when a server started as root gives it up
//! (`--user`, `--chroot`) and has files to read again on a reload (a
//! certificate and key, `--config`, `--auth-file`), it first forks a keeper:
//! a child that stays root, outside any chroot, and does nothing but read
//! those files for the server, over a socketpair, on request. OpenSSH's
//! privilege separation and nginx's master process keep root the same way;
//! here the roles are the other way round, so that the server stays the
//! process that systemd, the pid file and `kill` know: the keeper is its
//! child, and leaves as soon as the server's end of the pair closes (the
//! server exits, or is killed: the kernel closes the descriptor).
//!
//! The keeper is no general file reader for the server: it reads only the
//! files it was told at start, and those that the configuration file names
//! when the keeper itself, as root, reads it again (when asked for it, or
//! for a file it does not know, and only a configuration root's alone). A
//! server taken over by an attacker can make it read a certificate again,
//! not `/etc/shadow`.
//!
//! The protocol, one request at a time: the server sends a path (u32 length,
//! big-endian, then its bytes); the keeper answers with one byte, 0 for the
//! file's contents or an `io::ErrorKind` code for an error, then a u32
//! length and the contents or the error's words.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The most a file read through the keeper may be: a certificate chain, a
/// key, a configuration file or a password file is far smaller.
const MAX_FILE: u32 = 8 << 20;

/// The longest path a request may name.
const MAX_PATH: u32 = 4096;

/// How long the server waits for an answer before it gives up on a reload.
const PATIENCE: Duration = Duration::from_secs(10);

/// The server's end of the pair, once a keeper runs.
static KEEPER: OnceLock<Mutex<Link>> = OnceLock::new();

/// What the keeper may read: the files known at start, and a way to learn
/// those a configuration file names now.
pub(crate) struct Allowed {
    /// Every file a reload reads, as the start-up configuration names them.
    pub files: Vec<PathBuf>,
    /// The configuration file, if any: reading it makes the keeper ask
    /// `named_by_config` (as root) which files it names now.
    pub config: Option<PathBuf>,
    /// The files the configuration file names when read again; `None` if
    /// it does not read (the keeper then allows what it allowed before).
    pub named_by_config: Box<dyn Fn() -> Option<Vec<PathBuf>> + Send>,
    /// With a chroot, where the paths named at start no longer lead to
    /// these files: the names inside the jail of those that are inside it,
    /// which the server reads itself when it may.
    pub jail_names: Option<HashMap<PathBuf, PathBuf>>,
}

/// Forks the keeper. In the server, returns the keeper's process id; the
/// child never returns from here. Call it while the process is still root
/// and has one thread, before privileges are given up.
pub(crate) fn start(allowed: Allowed) -> io::Result<u32> {
    let (server_end, keeper_end) = UnixStream::pair()?;
    // SAFETY: the process has one thread (no driver has started), so the
    // child can run ordinary code: no lock is held by a thread it lacks.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(server_end);
            become_keeper(&keeper_end);
            // A panic must not unwind into the server's code (its pid file's
            // and logs' destructors) in this process: it ends the keeper.
            let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                serve(keeper_end, allowed)
            }));
            let code = match served {
                Ok(Ok(())) => 0,
                Ok(Err(e)) => {
                    log::error!("the keeper of root's files stops: {e}");
                    1
                }
                Err(_) => 101,
            };
            // SAFETY: leaves without running the server's exit path (its
            // pid file, its destructors): they are the server's, not ours.
            unsafe { libc::_exit(code) }
        }
        child => {
            drop(keeper_end);
            server_end.set_read_timeout(Some(PATIENCE))?;
            server_end.set_write_timeout(Some(PATIENCE))?;
            let _ = KEEPER.set(Mutex::new(Link {
                stream: Some(server_end),
                pid: child,
                jail_names: allowed.jail_names,
            }));
            Ok(child as u32)
        }
    }
}

/// Whether a keeper reads root's files for this process.
pub(crate) fn running() -> bool {
    KEEPER.get().is_some()
}

/// Reads the file at `path` (as named at start): directly, and through the
/// keeper (as root, outside any chroot) when that fails and a keeper runs;
/// in a chroot, directly only a file inside it (`Link::read`).
pub(crate) fn read(path: &Path) -> io::Result<Vec<u8>> {
    match KEEPER.get() {
        Some(link) => link.lock().unwrap_or_else(|p| p.into_inner()).read(path),
        None => std::fs::read(path),
    }
}

/// [`read`], as text.
pub(crate) fn read_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read(path)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// What an error says when the keeper did not answer at all.
const NO_ANSWER: &str = "the keeper of root's files does not answer";

/// The server's side of the pair.
struct Link {
    /// `None` once an exchange failed half-way (the keeper died, or took
    /// longer than [`PATIENCE`]): a late answer must never be taken for the
    /// answer to the next request, so the pair is closed instead, which
    /// also tells a keeper that still lives to leave.
    stream: Option<UnixStream>,
    pid: libc::pid_t,
    /// In a chroot, the names inside it of the files that are inside it,
    /// by the names they had at start; `None` without a chroot.
    jail_names: Option<HashMap<PathBuf, PathBuf>>,
}

impl Link {
    /// Where the file at `path` (as named at start) is read from: directly
    /// if this user may, else by the keeper. In a chroot, the direct read
    /// is of the name the file has inside the jail, and only for a file
    /// that is inside it: there, a path named at start leads to another
    /// file or to none, and only the keeper sees the one it named.
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        if self.stream.is_none() {
            // A keeper let go of may have left since: collect it.
            self.reap();
        }
        let own = match &self.jail_names {
            Some(names) => names.get(path).map(PathBuf::as_path),
            None => Some(path),
        };
        let direct = match own {
            Some(own) => std::fs::read(own),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        };
        direct.or_else(|_| self.ask(path)?)
    }

    /// One request and its answer, or the reason there is none.
    fn ask(&mut self, path: &Path) -> io::Result<io::Result<Vec<u8>>> {
        let answered = match self.stream.as_mut() {
            Some(stream) => exchange(stream, path),
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "it stopped after an earlier failure",
            )),
        };
        answered.map_err(|e| {
            self.stream = None;
            self.reap();
            io::Error::new(e.kind(), format!("{NO_ANSWER} ({e}); a restart reads them"))
        })
    }

    /// Collects a keeper that has left, so it is not left a zombie. It is
    /// root's and cannot be killed from here: one still busy leaves when
    /// it finds the pair closed, and a later call collects it.
    fn reap(&self) {
        // Never a pid of 0 or below: waitpid would take any child.
        if self.pid > 0 {
            // SAFETY: waitpid on our own child, without blocking.
            unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), libc::WNOHANG) };
        }
    }
}

/// Sends one request and reads its answer. The outer error is the pair's
/// (nothing or only part came back); the inner one is the keeper's answer.
fn exchange(stream: &mut (impl Read + Write), path: &Path) -> io::Result<io::Result<Vec<u8>>> {
    let bytes = path.as_os_str().as_bytes();
    let Some(length) = u32::try_from(bytes.len()).ok().filter(|&n| n <= MAX_PATH) else {
        return Ok(Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path too long",
        )));
    };
    stream.write_all(&length.to_be_bytes())?;
    stream.write_all(bytes)?;
    let mut kind = [0u8; 1];
    stream.read_exact(&mut kind)?;
    let body = read_framed(stream, MAX_FILE)?;
    Ok(match kind[0] {
        0 => Ok(body),
        code => Err(io::Error::new(
            kind_of(code),
            String::from_utf8_lossy(&body).into_owned(),
        )),
    })
}

/// A u32 length, then that many bytes, at most `max`.
fn read_framed(stream: &mut impl Read, max: u32) -> io::Result<Vec<u8>> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length)?;
    let length = u32::from_be_bytes(length);
    if length > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "answer too long",
        ));
    }
    let mut body = vec![0; length as usize];
    stream.read_exact(&mut body)?;
    Ok(body)
}

/// The child's first steps: nothing of the server's stays open but the
/// pair (not its listeners, not its logs), and the signals a terminal or an
/// operator aims at the server's process group do not stop it. It stays in
/// the folder it was started in: relative paths mean what they meant at start.
fn become_keeper(keep: &UnixStream) {
    close_all_but(keep.as_raw_fd());
    // The server logs what a reload does; the keeper, reading the same
    // configuration, would only say it twice. Its own failures still show.
    log::set_max_level(log::LevelFilter::Error);
    // SAFETY: setting dispositions to SIG_IGN runs none of our code.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGUSR1, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Closes every descriptor above standard error but `keep`, as listed in
/// /dev/fd (Linux, macOS; FreeBSD lists only 0 to 2 there without
/// fdescfs, and then up to the first 1024 are closed one by one).
fn close_all_but(keep: i32) {
    let listed: Vec<i32> = std::fs::read_dir("/dev/fd")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let open = if listed.len() > 3 {
        listed
    } else {
        (3..1024).collect()
    };
    for fd in open.into_iter().filter(|&fd| fd > 2 && fd != keep) {
        // SAFETY: closing a descriptor we do not use again; one that is not
        // open (the listing's own) fails with EBADF, harmlessly.
        unsafe { libc::close(fd) };
    }
}

/// Answers requests until the server's end closes.
fn serve(mut stream: UnixStream, allowed: Allowed) -> io::Result<()> {
    let mut may_read: HashSet<PathBuf> = allowed.files.iter().cloned().collect();
    may_read.extend(allowed.config.clone());
    loop {
        let path = match read_framed(&mut stream, MAX_PATH) {
            Ok(bytes) => PathBuf::from(OsStr::from_bytes(&bytes)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        if !may_read.contains(&path)
            && let Some(config) = &allowed.config
            && root_alone(config).is_ok()
            && let Some(named) = (allowed.named_by_config)()
        {
            // The server may have read the configuration itself (one it may
            // read), and a certificate it names now is asked for: what the
            // file names is looked at again, as root, if only root could
            // have written it.
            may_read = named.into_iter().chain(allowed.config.clone()).collect();
        }
        let answer = if !may_read.contains(&path) {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "not a file this server reloads (the keeper reads only those)",
            ))
        } else {
            read_limited(&path)
        };
        if answer.is_ok() && allowed.config.as_deref() == Some(path.as_path()) {
            // What the file names now may be read next.
            if let Some(named) = (allowed.named_by_config)() {
                may_read = named.into_iter().chain(allowed.config.clone()).collect();
            }
        }
        match answer {
            Ok(contents) => send(&mut stream, 0, &contents)?,
            Err(e) => send(&mut stream, code_of(e.kind()), e.to_string().as_bytes())?,
        }
    }
}

fn read_limited(path: &Path) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let real = root_alone(path)?;
    // The checked file itself: its real path, no link followed at the last
    // step (every folder on the way is root's alone, so nothing could have
    // been swapped in since the check but by root).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&real)?;
    let mut contents = Vec::new();
    file.take(u64::from(MAX_FILE) + 1)
        .read_to_end(&mut contents)?;
    if contents.len() > MAX_FILE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "larger than the 8 MiB a reloaded file may be",
        ));
    }
    Ok(contents)
}

/// Whether only root could have put the file at `path` there, as sshd's
/// StrictModes asks of its keys; its real path (symlinks resolved) if so.
/// Two chains are checked: the path as named, each step of it (a symlink
/// included) root's and each folder writable by no one else; and the real
/// path, the same. Without the first, a server taken over could put a
/// symlink to /etc/shadow, whose real path is all root's, in place of a
/// file of a folder it may write (a password file in the site, say), under
/// a name the keeper allows; without the second, a root-owned symlink could
/// lead into a folder anyone may write. certbot's `live/` links into
/// `archive/`, root's all the way, and pass. A file the server may write is
/// one it can read itself: [`read`] tries that first.
fn root_alone(path: &Path) -> io::Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    // The keeper's own uid: root's, but for the unit tests'.
    // SAFETY: geteuid has no preconditions.
    let keeper = unsafe { libc::geteuid() };
    let named = std::env::current_dir()?.join(path);
    let real = std::fs::canonicalize(path)?;
    for step in named.ancestors().chain(real.ancestors()) {
        let meta = std::fs::symlink_metadata(step)?;
        // A symlink's own mode means nothing (0777 on Linux): its owner does.
        let writable_by_others = !meta.file_type().is_symlink() && meta.mode() & 0o022 != 0;
        if meta.uid() != keeper || writable_by_others {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is not root's alone (owner uid {}, mode {:o}): the keeper reads only those",
                    step.display(),
                    meta.uid(),
                    meta.mode() & 0o7777
                ),
            ));
        }
    }
    Ok(real)
}

fn send(stream: &mut impl Write, kind: u8, body: &[u8]) -> io::Result<()> {
    let length = u32::try_from(body.len()).unwrap_or(u32::MAX);
    stream.write_all(&[kind])?;
    stream.write_all(&length.to_be_bytes())?;
    stream.write_all(body)
}

/// The error kinds an answer may carry; anything else is `Other`.
const KINDS: [io::ErrorKind; 4] = [
    io::ErrorKind::NotFound,
    io::ErrorKind::PermissionDenied,
    io::ErrorKind::InvalidData,
    io::ErrorKind::Other,
];

fn code_of(kind: io::ErrorKind) -> u8 {
    let index = KINDS
        .iter()
        .position(|&k| k == kind)
        .unwrap_or(KINDS.len() - 1);
    index as u8 + 1
}

fn kind_of(code: u8) -> io::ErrorKind {
    KINDS
        .get(usize::from(code).wrapping_sub(1))
        .copied()
        .unwrap_or(io::ErrorKind::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One request and the keeper's answer, over a pair that works.
    fn ask(stream: &mut (impl Read + Write), path: &Path) -> io::Result<Vec<u8>> {
        exchange(stream, path)?
    }

    /// A keeper serving `rules` on a thread, and the server's end of its pair.
    fn keeper_serving(rules: Allowed) -> (UnixStream, std::thread::JoinHandle<io::Result<()>>) {
        let (server, keeper) = UnixStream::pair().unwrap();
        (server, std::thread::spawn(move || serve(keeper, rules)))
    }

    /// A link to a keeper serving `rules` on a thread, for a server in a
    /// chroot (with these names inside it) or not.
    fn link_to(
        rules: Allowed,
        jail_names: Option<HashMap<PathBuf, PathBuf>>,
    ) -> (Link, std::thread::JoinHandle<io::Result<()>>) {
        let (server, serving) = keeper_serving(rules);
        let link = Link {
            stream: Some(server),
            pid: -1,
            jail_names,
        };
        (link, serving)
    }

    #[test]
    fn a_jailed_server_reads_its_own_files_by_their_names_inside_and_the_rest_by_the_keeper() {
        let dir = scratch();
        let outside = dir.path().join("outside.pem");
        // A file inside the jail: named at start by its path from outside
        // (`named`, which in the jail leads nowhere), read by its name inside.
        let (named, inside) = (dir.path().join("jail/own.pem"), dir.path().join("own.pem"));
        std::fs::write(&outside, "OUTSIDE").unwrap();
        std::fs::write(&inside, "OWN").unwrap();
        let names = HashMap::from([(named.clone(), inside.clone())]);
        let rules = allowing(vec![outside.clone(), named.clone()]);
        let (mut link, serving) = link_to(rules, Some(names));
        assert_eq!(link.read(&named).unwrap(), b"OWN");
        assert_eq!(link.read(&outside).unwrap(), b"OUTSIDE");
        // A file outside that the keeper cannot read is the keeper's error:
        // no direct read is tried for it (the black-box test with a decoy in
        // the jail, tests/privileges.rs, shows what that protects from).
        std::fs::remove_file(&outside).unwrap();
        let gone = link.read(&outside).unwrap_err();
        assert_eq!(gone.kind(), io::ErrorKind::NotFound);
        drop(link);
        serving.join().unwrap().unwrap();
    }

    #[test]
    fn a_free_server_reads_directly_first() {
        let dir = scratch();
        let own = dir.path().join("own.pem");
        std::fs::write(&own, "OWN").unwrap();
        // The keeper lists nothing: a direct read never asks it.
        let (mut link, serving) = link_to(allowing(Vec::new()), None);
        assert_eq!(link.read(&own).unwrap(), b"OWN");
        let missing = link.read(&dir.path().join("missing")).unwrap_err();
        assert!(missing.to_string().contains("reloads"), "{missing}");
        drop(link);
        serving.join().unwrap().unwrap();
    }

    #[test]
    #[expect(
        clippy::zombie_processes,
        reason = "the link collects the child, as it collects the keeper"
    )]
    fn a_late_answer_is_never_taken_for_the_next_one() {
        let (server, mut keeper) = UnixStream::pair().unwrap();
        server
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        // A stand-in for the keeper's process: a child of ours to collect.
        let child = std::process::Command::new("sleep")
            .arg("0")
            .spawn()
            .unwrap();
        let mut link = Link {
            stream: Some(server),
            pid: child.id() as libc::pid_t,
            jail_names: None,
        };
        // A keeper slower than the server's patience.
        let slow = std::thread::spawn(move || {
            let request = read_framed(&mut keeper, MAX_PATH).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            let _ = send(&mut keeper, 0, b"the first file");
            let closed = read_framed(&mut keeper, MAX_PATH);
            (request, closed.map(|_| ()))
        });
        let first = link.ask(Path::new("/first")).unwrap_err();
        assert!(first.to_string().contains(NO_ANSWER), "{first}");
        let second = link.ask(Path::new("/second")).unwrap_err();
        assert!(second.to_string().contains("earlier failure"), "{second}");
        let (request, closed) = slow.join().unwrap();
        assert_eq!(request, b"/first");
        assert_eq!(
            closed.unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof,
            "the keeper is told to leave, and never sees the second request"
        );
        // The child was collected: no zombie stays behind.
        std::thread::sleep(Duration::from_millis(50));
        link.reap();
        // SAFETY: kill with signal 0 only asks whether the pid exists.
        assert_ne!(unsafe { libc::kill(link.pid, 0) }, 0);
    }

    /// A folder on a path only this user may write (not /tmp, which anyone
    /// may, and which the keeper would refuse).
    fn scratch() -> tempfile::TempDir {
        tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap()
    }

    #[test]
    fn a_symlink_to_a_file_in_a_folder_others_may_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(open.join("secret"), "SECRET").unwrap();
        let allowed_name = dir.path().join("key.pem");
        std::os::unix::fs::symlink(open.join("secret"), &allowed_name).unwrap();
        let (mut server, serving) = keeper_serving(allowing(vec![allowed_name.clone()]));
        let refused = ask(&mut server, &allowed_name).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
        assert!(
            refused.to_string().contains("not root's alone"),
            "{refused}"
        );
        drop(server);
        serving.join().unwrap().unwrap();
    }

    #[test]
    fn a_symlink_in_a_folder_others_may_write_is_refused_whatever_it_leads_to() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch();
        // A file only root may read, and a folder anyone may write.
        let closed = dir.path().join("closed");
        std::fs::create_dir(&closed).unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(closed.join("shadow"), "SECRET").unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let planted = open.join("passwords");
        std::os::unix::fs::symlink(closed.join("shadow"), &planted).unwrap();
        let refused = read_limited(&planted).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
        assert!(refused.to_string().contains("open"), "{refused}");
        // certbot's layout: live/ links into archive/, root's all the way.
        let (live, archive) = (dir.path().join("live"), dir.path().join("archive"));
        std::fs::create_dir(&live).unwrap();
        std::fs::create_dir(&archive).unwrap();
        std::fs::write(archive.join("privkey1.pem"), "KEY").unwrap();
        std::os::unix::fs::symlink("../archive/privkey1.pem", live.join("privkey.pem")).unwrap();
        assert_eq!(read_limited(&live.join("privkey.pem")).unwrap(), b"KEY");
    }

    fn allowing(files: Vec<PathBuf>) -> Allowed {
        Allowed {
            files,
            config: None,
            named_by_config: Box::new(|| None),
            jail_names: None,
        }
    }

    #[test]
    fn reads_what_it_was_told_and_nothing_else() {
        let dir = scratch();
        let allowed_file = dir.path().join("key.pem");
        let other = dir.path().join("shadow");
        std::fs::write(&allowed_file, "KEY").unwrap();
        std::fs::write(&other, "SECRET").unwrap();
        let rules = allowing(vec![allowed_file.clone(), dir.path().join("missing")]);
        let (mut server, serving) = keeper_serving(rules);
        assert_eq!(ask(&mut server, &allowed_file).unwrap(), b"KEY");
        let refused = ask(&mut server, &other).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
        assert!(refused.to_string().contains("reloads"), "{refused}");
        let missing = ask(&mut server, &dir.path().join("missing")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        drop(server);
        assert!(
            serving.join().unwrap().is_ok(),
            "stops when the server goes"
        );
    }

    #[test]
    fn a_configuration_read_again_decides_what_may_be_read_next() {
        let dir = scratch();
        let config = dir.path().join("oneloop.toml");
        let (old, new) = (dir.path().join("old.pem"), dir.path().join("new.pem"));
        for (path, text) in [(&config, "old.pem"), (&old, "old"), (&new, "new")] {
            std::fs::write(path, text).unwrap();
        }
        // As the real one does: what the file names when it is read.
        let (file, base) = (config.clone(), dir.path().to_path_buf());
        let rules = Allowed {
            files: vec![old.clone()],
            config: Some(config.clone()),
            named_by_config: Box::new(move || {
                let text = std::fs::read_to_string(&file).ok()?;
                Some(text.lines().map(|name| base.join(name)).collect())
            }),
            jail_names: None,
        };
        let (mut server, serving) = keeper_serving(rules);
        assert_eq!(ask(&mut server, &old).unwrap(), b"old");
        assert!(ask(&mut server, &new).is_err(), "not named yet");
        // The configuration now names the new file; the server read it
        // itself, and asks for what it names.
        std::fs::write(&config, "new.pem").unwrap();
        assert_eq!(ask(&mut server, &new).unwrap(), b"new");
        assert!(ask(&mut server, &old).is_err(), "no longer named");
        // Read through the keeper, the same.
        std::fs::write(&config, "old.pem").unwrap();
        assert_eq!(ask(&mut server, &config).unwrap(), b"old.pem");
        assert_eq!(ask(&mut server, &old).unwrap(), b"old");
        assert!(ask(&mut server, &new).is_err(), "named no longer");
        drop(server);
        serving.join().unwrap().unwrap();
    }

    #[test]
    fn a_configuration_others_may_write_names_nothing_more() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch();
        let config = dir.path().join("oneloop.toml");
        let secret = dir.path().join("secret");
        std::fs::write(&config, "secret").unwrap();
        std::fs::write(&secret, "SECRET").unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).unwrap();
        let named = secret.clone();
        let rules = Allowed {
            files: Vec::new(),
            config: Some(config),
            named_by_config: Box::new(move || Some(vec![named.clone()])),
            jail_names: None,
        };
        let (mut server, serving) = keeper_serving(rules);
        let refused = ask(&mut server, &secret).unwrap_err();
        assert!(refused.to_string().contains("reloads"), "{refused}");
        drop(server);
        serving.join().unwrap().unwrap();
    }

    #[test]
    fn error_kinds_survive_the_trip() {
        for kind in KINDS {
            assert_eq!(kind_of(code_of(kind)), kind);
        }
        assert_eq!(
            code_of(io::ErrorKind::TimedOut),
            code_of(io::ErrorKind::Other)
        );
        assert_eq!(kind_of(0xff), io::ErrorKind::Other);
    }

    #[test]
    fn an_answer_longer_than_allowed_is_refused_not_allocated() {
        let mut answer = Vec::new();
        answer.extend_from_slice(&(MAX_FILE + 1).to_be_bytes());
        let error = read_framed(&mut answer.as_slice(), MAX_FILE).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
