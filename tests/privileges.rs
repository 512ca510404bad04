//! Giving up root: `--user`, `--group` and `--chroot` on the real binary.
//!
//! Changing user needs root; these tests run as root (CI does) and skip, with
//! a printed reason, elsewhere.

mod common;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{Server, eventually};

const NOBODY: u32 = 65534;

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether the test can run here; if not, says why.
fn can_switch_users() -> bool {
    if !running_as_root() {
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        common::skip(&format!(
            "changing user needs root, and this runs as uid {uid}"
        ));
        return false;
    }
    if std::process::Command::new("getent")
        .args(["passwd", "nobody"])
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        common::skip("this machine has no user `nobody`");
        return false;
    }
    true
}

/// A folder others may enter (tempfile makes them 0700).
fn open_to_all(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn chown_to_nobody(path: &Path) {
    std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).unwrap();
}

/// `Uid:`, `Gid:` and `Groups:` of the server, from /proc.
fn ids(server: &Server) -> (String, String, String) {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    (field("Uid:"), field("Gid:"), field("Groups:"))
}

/// A port below 1024 that nobody uses on 127.0.0.1, if one can be found.
fn free_privileged_port() -> Option<u16> {
    (900..1024).find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
}

#[test]
fn root_binds_a_privileged_port_then_serves_as_nobody() {
    if !can_switch_users() {
        return;
    }
    let site = tempfile::tempdir().unwrap();
    open_to_all(site.path());
    std::fs::write(site.path().join("index.html"), "hello").unwrap();
    let port = free_privileged_port()
        .expect("a free port below 1024")
        .to_string();
    let server = Server::start(&[
        "--port",
        &port,
        "--user",
        "nobody",
        site.path().to_str().unwrap(),
    ]);
    assert_eq!(server.addr.port().to_string(), port);
    assert_eq!(
        ids(&server),
        (
            "65534 65534 65534 65534".into(),
            "65534 65534 65534 65534".into(),
            "65534".into()
        ),
        "every id is nobody's, and no supplementary group of root's is left"
    );
    assert!(
        server
            .log()
            .contains("running as nobody (uid 65534, gid 65534)")
    );
    assert_eq!(server.get("/").body, b"hello");
}

#[test]
fn logs_opened_as_root_are_handed_to_the_user_and_reopen() {
    if !can_switch_users() {
        return;
    }
    // As the README sets it up: a log folder of the user's own.
    let logs = tempfile::tempdir().unwrap();
    open_to_all(logs.path());
    chown_to_nobody(logs.path());
    let access = logs.path().join("access.log");
    let server_log = logs.path().join("oneloop.log");
    let server = Server::start(&[
        "--user",
        "nobody",
        "--access-log",
        access.to_str().unwrap(),
        "--log-file",
        server_log.to_str().unwrap(),
    ]);
    for log in [&access, &server_log] {
        assert!(eventually(Duration::from_secs(5), || log.exists()));
        assert_eq!(log.metadata().unwrap().uid(), NOBODY, "{}", log.display());
        assert_eq!(log.metadata().unwrap().gid(), 0, "the group is left alone");
    }
    // A SIGHUP with no rotation (a certificate renewal, say) reopens them as
    // nobody: this failed while root owned them.
    server.signal(libc::SIGHUP);
    let text = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        eventually(Duration::from_secs(5), || text(&server_log)
            .contains("log file reopened")),
        "{}",
        text(&server_log)
    );
    assert_eq!(server.get("/echo/after").status, 200);
    assert!(eventually(Duration::from_secs(5), || text(&access)
        .contains("/echo/after")));
    assert!(
        !text(&server_log).contains("still writing to the old"),
        "{}",
        text(&server_log)
    );
}

#[test]
fn group_replaces_the_users_own() {
    if !can_switch_users() {
        return;
    }
    let server = Server::start(&["--user", "nobody", "--group", "root"]);
    let (uid, gid, _) = ids(&server);
    assert_eq!(uid, "65534 65534 65534 65534");
    assert_eq!(gid, "0 0 0 0");
    assert_eq!(server.get("/echo/g").body, b"g");
}

#[test]
fn a_chroot_serves_from_inside_and_reopens_its_logs_there() {
    if !can_switch_users() {
        return;
    }
    let jail = tempfile::tempdir().unwrap();
    open_to_all(jail.path());
    let site = jail.path().join("site");
    let store = jail.path().join("store");
    let logs = jail.path().join("logs");
    for dir in [&site, &store, &logs] {
        std::fs::create_dir(dir).unwrap();
        open_to_all(dir);
    }
    // What the server writes to, after it has become nobody.
    chown_to_nobody(&store);
    chown_to_nobody(&logs);
    std::fs::write(site.join("index.html"), "inside").unwrap();
    let access = logs.join("access.log");
    // In a folder nobody may write, so that nobody can remove it at exit,
    // by its name inside the chroot.
    let pid_file = logs.join("oneloop.pid");
    // The server's own log stays outside: it is written, but cannot be reopened.
    let elsewhere = tempfile::tempdir().unwrap();
    let server_log = elsewhere.path().join("oneloop.log");
    let mut server = Server::start(&[
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--log-file",
        server_log.to_str().unwrap(),
        "--chroot",
        jail.path().to_str().unwrap(),
        "--user",
        "nobody",
        "--directory",
        store.to_str().unwrap(),
        "--access-log",
        access.to_str().unwrap(),
        site.to_str().unwrap(),
    ]);
    let root = std::fs::read_link(format!("/proc/{}/root", server.pid())).unwrap();
    assert_eq!(root, jail.path().canonicalize().unwrap());
    assert_eq!(server.get("/").body, b"inside");
    assert!(
        server.log().contains("is outside --chroot") && server.log().contains("cannot be reopened"),
        "{}",
        server.log()
    );

    let mut client = server.connect();
    client
        .write_all(b"POST /files/note HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        .unwrap();
    assert_eq!(common::read_response(&mut client, false).status, 201);
    let written = store.join("note");
    assert_eq!(std::fs::read(&written).unwrap(), b"hi");
    assert_eq!(
        written.metadata().unwrap().uid(),
        NOBODY,
        "written as nobody"
    );

    // logrotate renames the access log; the server reopens it by its name
    // inside the chroot, as nobody.
    std::fs::rename(&access, logs.join("access.log.1")).unwrap();
    server.signal(libc::SIGUSR1);
    assert!(eventually(Duration::from_secs(5), || access.exists()));
    assert_eq!(server.get("/").status, 200);
    assert!(eventually(Duration::from_secs(5), || {
        std::fs::read_to_string(&access).is_ok_and(|log| log.contains("\"GET / HTTP/1.1\" 200"))
    }));
    assert_eq!(access.metadata().unwrap().uid(), NOBODY);

    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(pid, format!("{}\n", server.pid()));
    assert!(server.signal_and_wait(libc::SIGTERM).success());
    assert!(
        !pid_file.exists(),
        "removed by nobody, inside the chroot: {}",
        std::fs::read_to_string(&server_log).unwrap_or_default()
    );
}

/// Runs oneloop with `args`, as `uid` if given (which takes root to
/// arrange). Another user may not reach the binary where cargo built it: a
/// clone under a 0700 home (`/root/oneloop`, as on a fresh VPS) keeps it out
/// of reach. So that user runs a copy, in a folder every user may enter.
fn oneloop_as(uid: Option<u32>, args: &[&str]) -> Output {
    let copy = uid.map(|_| binary_for_everyone());
    let program = match &copy {
        Some((_, path)) => path.clone(),
        None => env!("CARGO_BIN_EXE_oneloop").into(),
    };
    let mut command = Command::new(program);
    command.args(["--port", "0"]).args(args);
    if let Some(uid) = uid {
        // SAFETY: setgid and setuid are async-signal-safe, as pre_exec requires.
        unsafe {
            command.pre_exec(move || {
                if libc::setgid(uid) != 0 || libc::setuid(uid) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    // A copy just written may still be open for writing in a child another
    // test thread forked meanwhile (until that child execs): exec then says
    // ETXTBSY. It passes within milliseconds.
    for _ in 0..100 {
        match command.output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result.unwrap(),
        }
    }
    command.output().unwrap()
}

/// A copy of the binary that any user may run, and the folder that holds it
/// (removed when dropped).
fn binary_for_everyone() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    open_to_all(dir.path());
    let path = dir.path().join("oneloop");
    std::fs::copy(env!("CARGO_BIN_EXE_oneloop"), &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, path)
}

fn refused(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
}

#[test]
fn served_folders_outside_the_chroot_are_refused_at_start() {
    if !can_switch_users() {
        return;
    }
    let jail = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let jail_dir = jail.path().to_str().unwrap();
    let outside_dir = outside.path().to_str().unwrap();
    let chroot = ["--chroot", jail_dir, "--user", "nobody"];
    refused(
        &oneloop_as(None, &[&chroot[..], &[outside_dir]].concat()),
        "is outside --chroot",
    );
    refused(
        &oneloop_as(None, &[&chroot[..], &["--directory", outside_dir]].concat()),
        "--directory",
    );
}

#[test]
fn only_root_can_become_someone_else() {
    // Run as nobody (which needs root to arrange), or as whoever runs the test.
    let (uid, who) = match running_as_root() {
        true => (Some(NOBODY), "root"),
        false => (None, "root"),
    };
    if running_as_root() && !can_switch_users() {
        return;
    }
    refused(
        &oneloop_as(uid, &["--user", who]),
        "only root can become another user",
    );
    let dir = tempfile::tempdir().unwrap();
    open_to_all(dir.path());
    refused(
        &oneloop_as(
            uid,
            &["--chroot", dir.path().to_str().unwrap(), "--user", who],
        ),
        "--chroot needs the server to start as root",
    );
}

#[test]
fn unknown_names_are_refused_at_start() {
    refused(
        &oneloop_as(None, &["--user", "no-such-user-here"]),
        "--user: there is no user named `no-such-user-here`",
    );
    refused(
        &oneloop_as(None, &["--user", "root", "--group", "no-such-group-here"]),
        "--group: there is no group named `no-such-group-here`",
    );
    let output = oneloop_as(None, &["--group", "root"]);
    assert!(!output.status.success(), "--group without --user");
    let output = oneloop_as(None, &["--chroot", "/"]);
    assert!(!output.status.success(), "--chroot without --user");
}

#[test]
fn root_without_user_is_warned_when_it_serves_the_network() {
    if !running_as_root() {
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        common::skip(&format!(
            "the warning is for root, and this runs as uid {uid}"
        ));
        return;
    }
    let public = Server::start(&["--bind", "0.0.0.0"]);
    assert!(public.log().contains("running as root"), "{}", public.log());
    let local = Server::start(&[]);
    assert!(!local.log().contains("running as root"), "{}", local.log());
}

// ----- certificates renewed after root is given up ---------------------------

/// Sends SIGHUP and waits (up to 10 s) for the log to say `said`.
fn sighup_until(server: &Server, said: &str) {
    server.signal(libc::SIGHUP);
    assert!(
        eventually(Duration::from_secs(10), || server.log().contains(said)),
        "{}",
        server.log()
    );
}

/// The keeper's process id, as the server's log says it at start.
fn keeper_pid(server: &Server) -> i32 {
    let log = server.log();
    log.split("keeper process that stays root for that alone (pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("the keeper's pid in {log}"))
}

/// A folder as certbot leaves `/etc/letsencrypt/live/NAME`: root's, 0700.
fn roots_only_folder(parent: &Path, name: &str) -> std::path::PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// Puts `identity` at `cert` and `key` as certbot renews: new files renamed
/// into place, the key 0600.
fn renew(identity: &common::tls::Identity, cert: &Path, key: &Path) {
    for (from, to, mode) in [(&identity.cert, cert, 0o644), (&identity.key, key, 0o600)] {
        let fresh = to.with_extension("new");
        std::fs::copy(from, &fresh).unwrap();
        std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(mode)).unwrap();
        std::fs::rename(&fresh, to).unwrap();
    }
}

/// A server as certbot's users run it: a certificate and a 0600 key in a
/// 0700 root folder, `--user nobody`; and the certificate a renewal brings.
struct Renewal {
    first: common::tls::Identity,
    second: common::tls::Identity,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    server: Server,
    _base: tempfile::TempDir,
}

impl Renewal {
    fn start(name: &str) -> Renewal {
        Renewal::start_with(name, &[])
    }

    /// As [`Renewal::start`], with `more` flags.
    fn start_with(name: &str, more: &[&str]) -> Renewal {
        let first = common::tls::make_identity(&format!("{name}-first"));
        let second = common::tls::make_identity(&format!("{name}-second"));
        // Not under /tmp: the keeper reads only what no one but root may write.
        let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let live = roots_only_folder(base.path(), "live");
        let (cert, key) = (live.join("fullchain.pem"), live.join("privkey.pem"));
        renew(&first, &cert, &key);
        let flags = [
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--user",
            "nobody",
        ];
        let server = Server::start(&[&flags[..], more].concat());
        Renewal {
            first,
            second,
            cert,
            key,
            server,
            _base: base,
        }
    }
}

/// The status of one request on a new TLS connection that trusts only
/// `identity`'s certificate; an error if the handshake fails.
fn served_with(server: &Server, identity: &common::tls::Identity) -> std::io::Result<u16> {
    let tcp = std::net::TcpStream::connect(server.addr)?;
    tcp.set_read_timeout(Some(common::IO_TIMEOUT))?;
    let config = common::tls::client_config(&[&identity.cert]);
    let mut client = common::Client::with_config(tcp, config);
    client.write_all(b"GET /echo/x HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    Ok(common::read_response(&mut client, false).status)
}

/// An open connection that trusts `identity`, one request already answered.
fn keep_open(server: &Server, identity: &common::tls::Identity) -> common::Client {
    let tcp = std::net::TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    let mut client =
        common::Client::with_config(tcp, common::tls::client_config(&[&identity.cert]));
    client
        .write_all(b"GET /echo/before HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert_eq!(common::read_response(&mut client, false).body, b"before");
    client
}

fn still_served(client: &mut common::Client) {
    client
        .write_all(b"GET /echo/after HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert_eq!(
        common::read_response(client, false).body,
        b"after",
        "the connection open across the reload is served still"
    );
}

#[test]
fn a_renewed_root_only_key_is_served_after_sighup_as_nobody() {
    if !can_switch_users() {
        return;
    }
    let renewal = Renewal::start("renewal");
    let (first, second, server) = (&renewal.first, &renewal.second, &renewal.server);
    let (cert, key) = (&renewal.cert, &renewal.key);
    assert_eq!(ids(server).0, "65534 65534 65534 65534", "serves as nobody");
    assert!(server.log().contains("keeper"), "{}", server.log());
    assert_eq!(served_with(server, first).ok(), Some(200));
    let mut open = keep_open(server, first);

    renew(second, cert, key);
    sighup_until(server, "TLS certificate reloaded");
    assert_eq!(
        served_with(server, second).ok(),
        Some(200),
        "new connections get the renewed certificate"
    );
    assert!(served_with(server, first).is_err(), "the old one is gone");
    still_served(&mut open);
    assert!(
        !server.log().contains("Permission denied"),
        "{}",
        server.log()
    );

    // The keeper leaves with the server: nothing of root's outlives it.
    let keeper = keeper_pid(server);
    // SAFETY: kill(2) with signal 0 only asks whether the process exists.
    assert_eq!(unsafe { libc::kill(keeper, 0) }, 0, "the keeper runs");
    drop(open);
    let mut renewal = renewal;
    renewal.server.signal_and_wait(libc::SIGTERM);
    assert!(
        eventually(Duration::from_secs(5), || unsafe { libc::kill(keeper, 0) }
            != 0),
        "the keeper is gone once the server is"
    );
}

#[test]
fn a_chrooted_server_reloads_a_certificate_from_outside_its_jail() {
    if !can_switch_users() {
        return;
    }
    let jail = tempfile::tempdir().unwrap();
    std::fs::set_permissions(jail.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let renewal = Renewal::start_with("jailed", &["--chroot", jail.path().to_str().unwrap()]);
    let (second, server) = (&renewal.second, &renewal.server);
    // A decoy inside the jail at the path the certificate had outside it,
    // readable by nobody: the path now leads there, and must not be taken.
    for (from, to) in [
        (&renewal.first.cert, &renewal.cert),
        (&renewal.first.key, &renewal.key),
    ] {
        let decoy = jail.path().join(to.strip_prefix("/").unwrap());
        std::fs::create_dir_all(decoy.parent().unwrap()).unwrap();
        std::fs::copy(from, &decoy).unwrap();
        std::fs::set_permissions(&decoy, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    assert_eq!(served_with(server, &renewal.first).ok(), Some(200));
    assert!(
        !server.log().contains("cannot be reloaded"),
        "no warning that proves untrue: {}",
        server.log()
    );
    renew(second, &renewal.cert, &renewal.key);
    sighup_until(server, "TLS certificate reloaded");
    assert_eq!(
        served_with(server, second).ok(),
        Some(200),
        "the renewed certificate, read from outside the jail, not the decoy inside: {}",
        server.log()
    );
}

#[test]
fn a_chrooted_server_reloads_a_certificate_inside_its_jail() {
    if !can_switch_users() {
        return;
    }
    let jail = tempfile::tempdir().unwrap();
    std::fs::set_permissions(jail.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // certbot's layout, inside the jail: live/ links to the current files
    // of archive/, and a renewal adds files there and moves the links.
    let (live, archive) = (jail.path().join("live"), jail.path().join("archive"));
    std::fs::create_dir(&live).unwrap();
    std::fs::create_dir(&archive).unwrap();
    let (cert, key) = (live.join("fullchain.pem"), live.join("privkey.pem"));
    // The server's own files, in its jail: nobody reads them itself.
    let place = |identity: &common::tls::Identity, n: u32| {
        let (new_cert, new_key) = (
            archive.join(format!("fullchain{n}.pem")),
            archive.join(format!("privkey{n}.pem")),
        );
        std::fs::copy(&identity.cert, &new_cert).unwrap();
        std::fs::copy(&identity.key, &new_key).unwrap();
        std::os::unix::fs::chown(&new_key, Some(NOBODY), Some(NOBODY)).unwrap();
        std::fs::set_permissions(&new_key, std::fs::Permissions::from_mode(0o600)).unwrap();
        for (target, link) in [(&new_cert, &cert), (&new_key, &key)] {
            let fresh = link.with_extension("new");
            let relative = Path::new("../archive").join(target.file_name().unwrap());
            std::os::unix::fs::symlink(relative, &fresh).unwrap();
            std::fs::rename(&fresh, link).unwrap();
        }
    };
    let (first, second) = (
        common::tls::make_identity("inside-first"),
        common::tls::make_identity("inside-second"),
    );
    place(&first, 1);
    let server = Server::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--user",
        "nobody",
        "--chroot",
        jail.path().to_str().unwrap(),
    ]);
    assert_eq!(served_with(&server, &first).ok(), Some(200));
    place(&second, 2);
    sighup_until(&server, "TLS certificate reloaded");
    assert_eq!(
        served_with(&server, &second).ok(),
        Some(200),
        "the renewed certificate, read inside the jail: {}",
        server.log()
    );
}

#[test]
fn a_root_only_configuration_and_the_new_keys_it_names_reload_as_nobody() {
    if !can_switch_users() {
        return;
    }
    let (first, second) = (
        common::tls::make_identity("config-first"),
        common::tls::make_identity("config-second"),
    );
    // Not under /tmp: the keeper reads only what no one but root may write.
    let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let site = base.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    open_to_all(base.path());
    open_to_all(&site);
    let secret = roots_only_folder(base.path(), "etc");
    let (cert1, key1) = (secret.join("one.crt"), secret.join("one.key"));
    let (cert2, key2) = (secret.join("two.crt"), secret.join("two.key"));
    renew(&first, &cert1, &key1);
    renew(&second, &cert2, &key2);
    let config = secret.join("oneloop.toml");
    // A site's own password file, root's alone too: the reload reads it
    // again through the keeper.
    let passwords = secret.join("passwords");
    std::fs::write(&passwords, common::hash_line("alice", "one") + "\n").unwrap();
    std::fs::set_permissions(&passwords, std::fs::Permissions::from_mode(0o600)).unwrap();
    let write_config = |cert: &Path, key: &Path| {
        let text = format!(
            "tls-cert = \"{}\"\ntls-key = \"{}\"\nuser = \"nobody\"\n\n[[site]]\n\
             hosts = [\"localhost\", \"127.0.0.1\"]\nroot = \"{}\"\n\n\
             [[site.rule]]\npath = \"/private/*\"\nauth-file = \"{}\"\n",
            cert.display(),
            key.display(),
            site.display(),
            passwords.display()
        );
        std::fs::write(&config, text).unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    write_config(&cert1, &key1);
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    assert_eq!(ids(&server).0, "65534 65534 65534 65534");
    assert_eq!(served_with(&server, &first).ok(), Some(200));
    let mut open = keep_open(&server, &first);

    // The configuration now names other files, which the keeper may read
    // only because the configuration, read again as root, names them.
    write_config(&cert2, &key2);
    sighup_until(&server, "configuration reloaded");
    assert_eq!(served_with(&server, &second).ok(), Some(200));
    assert!(served_with(&server, &first).is_err());
    still_served(&mut open);
}

#[test]
fn a_keeper_that_died_costs_the_reload_not_the_server() {
    if !can_switch_users() {
        return;
    }
    let renewal = Renewal::start("orphan");
    let (first, second, server) = (&renewal.first, &renewal.second, &renewal.server);
    let (cert, key) = (&renewal.cert, &renewal.key);
    let keeper = keeper_pid(server);
    // SAFETY: kill(2) on the server's child, which this test started.
    unsafe { libc::kill(keeper, libc::SIGKILL) };
    renew(second, cert, key);
    sighup_until(server, "does not answer");
    assert!(
        server.log().contains("keeping the old one"),
        "{}",
        server.log()
    );
    assert_eq!(
        served_with(server, first).ok(),
        Some(200),
        "the certificate it had is served on"
    );
}

/// A file the server may not read (0600, root's) answers 403, one in a
/// folder it may not enter (0700, root's) 404: either way the operator is
/// told once per path, with the path and the system's words, however often
/// it is asked for.
#[test]
fn permission_errors_are_logged_once_per_path() {
    if !can_switch_users() {
        return;
    }
    let site = tempfile::tempdir().unwrap();
    open_to_all(site.path());
    std::fs::write(site.path().join("index.html"), "hello").unwrap();
    let secret = site.path().join("secret.txt");
    std::fs::write(&secret, "root's").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let private = site.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(private.join("inside.txt"), "root's").unwrap();
    let server = Server::start(&["--user", "nobody", site.path().to_str().unwrap()]);
    for _ in 0..2 {
        assert_eq!(server.get("/secret.txt").status, 403);
        assert_eq!(server.get("/private/inside.txt").status, 404);
        assert_eq!(server.get("/missing.txt").status, 404);
        assert_eq!(server.get("/").status, 200);
    }
    let log = server.log();
    let warnings = |name: &str| {
        log.lines()
            .filter(|l| l.contains(name) && l.contains("Permission denied"))
            .count()
    };
    assert_eq!(warnings("secret.txt"), 1, "{log}");
    assert_eq!(warnings("private/inside.txt"), 1, "{log}");
    assert!(
        !log.contains("missing.txt"),
        "a missing file is no warning: {log}"
    );
}

/// What `--user` will not be able to use is said at start, flag, path, user
/// and consequence: a ROOT only root may enter, an upload folder, a log's
/// and the pid file's folder it may not write. A setup it can use is not
/// warned about.
#[test]
fn folders_the_user_cannot_use_are_warned_about_at_start() {
    if !can_switch_users() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let store = tempfile::tempdir().unwrap();
    open_to_all(store.path()); // 0755, root's: nobody cannot write it
    let logs = tempfile::tempdir().unwrap();
    open_to_all(logs.path());
    let access = logs.path().join("access.log");
    let pid = logs.path().join("oneloop.pid");
    let args = |root: &Path| {
        vec![
            "--user".to_owned(),
            "nobody".to_owned(),
            "--directory".to_owned(),
            store.path().to_str().unwrap().to_owned(),
            "--access-log".to_owned(),
            access.to_str().unwrap().to_owned(),
            "--pid-file".to_owned(),
            pid.to_str().unwrap().to_owned(),
            root.to_str().unwrap().to_owned(),
        ]
    };
    let start =
        |args: &[String]| Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let server = start(&args(root.path()));
    let log = server.log();
    let said = |text: &str| log.lines().any(|l| l.contains("WARN") && l.contains(text));
    let root_text = format!(
        "ROOT {} is not readable by nobody: Permission denied; every request",
        root.path().display()
    );
    assert!(said(&root_text), "{log}");
    let store_text = format!(
        "--directory {} is not writable by nobody: Permission denied; uploads",
        store.path().display()
    );
    assert!(said(&store_text), "{log}");
    let folder = logs.path().display().to_string();
    assert!(
        said(&format!("--access-log's folder {folder} is not writable")),
        "{log}"
    );
    assert!(
        said(&format!("--pid-file's folder {folder} is not writable")),
        "{log}"
    );
    drop(server);

    open_to_all(root.path());
    chown_to_nobody(store.path());
    chown_to_nobody(logs.path());
    let _ = std::fs::remove_file(&pid);
    let server = start(&args(root.path()));
    assert!(
        !server.log().contains("is not readable"),
        "{}",
        server.log()
    );
    assert!(
        !server.log().contains("is not writable"),
        "{}",
        server.log()
    );
}
