//! Basic authentication (RFC 7617): who may use the site, or only upload to
//! it (`--auth-uploads-only`), with the users of a password file.
//!
//! A request the gate guards needs an `Authorization: Basic` header naming a
//! user of the file and their password; without one it is answered `401` with
//! `WWW-Authenticate: Basic realm="..."`, which makes a browser ask. What it
//! costs, and how that cost is kept in bounds:
//!
//! - checking a password means hashing it (argon2 or bcrypt: deliberately
//!   slow), on the loop's thread, so every other client waits meanwhile. The
//!   start-up log says how long one check takes with the file's hash
//!   ([`Gate::measure_check`]);
//! - a credential once verified is remembered for five minutes
//!   ([`remembered`]): a browser repeating its header costs one check;
//! - a client that keeps failing is held off ([`throttle`]), its attempts
//!   answered `429` unchecked, so guessing costs no hashing; and all checks
//!   together have a budget per second, beyond which logins get `503`;
//! - a user name that does not exist costs a check like a wrong password, and
//!   hashes are compared in constant time, so nothing is learnt from timing.
//!
//! Failures are logged with the client's address. SIGHUP reads the file again.

mod passwords;
mod remembered;
mod throttle;

pub(crate) use passwords::{check_user_name, hash_line};

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::http::{RequestHead, Response, StatusCode};
use passwords::Passwords;
use remembered::Remembered;
use throttle::{Budget, CHECKS_PER_SECOND, Throttle};

/// What the gate guards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every request.
    Everything,
    /// Only uploads (`POST /files/...`); reading stays open.
    Uploads,
}

/// The users, and what they guard, shared by every loop of the process.
pub struct Gate {
    path: Mutex<PathBuf>,
    realm: String,
    scope: Scope,
    passwords: RwLock<Arc<Passwords>>,
    remembered: Remembered,
    throttle: Throttle,
    budget: Budget,
}

impl fmt::Debug for Gate {
    // The hashes stay out of logs and panics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("realm", &self.realm)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A password check slower than this is worth a warning: every client of the
/// loop waits that long for each uncached login.
const SLOW_PASSWORD_CHECK: Duration = Duration::from_millis(100);

impl Gate {
    /// Reads the password file at `path`; its mistakes are reported with
    /// their line.
    pub fn load(path: &Path, realm: &str, scope: Scope) -> Result<Gate, String> {
        Ok(Gate {
            passwords: RwLock::new(Arc::new(Passwords::read(path)?)),
            path: Mutex::new(path.to_path_buf()),
            realm: realm.to_owned(),
            scope,
            remembered: Remembered::new()?,
            throttle: Throttle::default(),
            budget: Budget::default(),
        })
    }

    pub fn scope(&self) -> Scope {
        self.scope
    }

    pub fn users(&self) -> usize {
        self.current().len()
    }

    /// How long one password check takes here, and with which hash.
    pub fn measure_check(&self) -> (Duration, String) {
        self.current().measure_check()
    }

    /// Says at start what the gate guards and what a password check costs
    /// the loop here; warns when a check is slow enough to stall the loop,
    /// and when passwords would cross the network in clear (no `tls`, a
    /// `public` listener).
    pub(crate) fn describe(&self, tls: bool, public: bool) {
        let guarded = match self.scope {
            Scope::Everything => "every request",
            Scope::Uploads => "uploads",
        };
        let (cost, hash) = self.measure_check();
        log::info!(
            "Basic authentication for {guarded}: {} users; one password check takes {:.1} ms \
             here ({hash}), and verified credentials are remembered for 5 minutes",
            self.users(),
            cost.as_secs_f64() * 1000.0
        );
        if cost > SLOW_PASSWORD_CHECK {
            log::warn!(
                "a password check stalls the loop for {:.0} ms; hashes made by --hash-password \
                 take about 20",
                cost.as_secs_f64() * 1000.0
            );
        }
        if public && !tls {
            log::warn!(
                "Basic authentication over plain HTTP beyond loopback: passwords cross the \
                 network in clear; serve HTTPS (--tls-cert), or keep oneloop behind a proxy that \
                 does"
            );
        }
    }

    /// The password file's path.
    pub fn path(&self) -> PathBuf {
        self.path.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// From now on, reload from `path` (its name inside a `--chroot`).
    pub fn rename(&self, path: PathBuf) {
        *self.path.lock().unwrap_or_else(|p| p.into_inner()) = path;
    }

    /// SIGHUP: reads the file again (a broken file is reported and the old
    /// users kept), and forgets the credentials it had verified.
    pub fn reload(&self) {
        let path = self.path();
        match Passwords::read(&path) {
            Ok(passwords) => {
                let users = passwords.len();
                *self.passwords.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(passwords);
                self.remembered.forget_all();
                log::info!("password file reloaded: {users} users");
            }
            Err(e) => log::error!("{e}; keeping the users read before"),
        }
    }

    /// Forgets every client's failed logins, the credentials verified and the
    /// checks spent: the harness starts each conversation from a clean slate,
    /// so that its answers depend on nothing before it.
    #[cfg(any(test, feature = "harness"))]
    pub fn forget(&self) {
        self.throttle.forget_all();
        self.remembered.forget_all();
        self.budget.reset();
    }

    /// Lets the request through (`Ok`), or gives the answer that refuses it.
    pub(crate) fn admit(
        &self,
        request: &RequestHead,
        client: IpAddr,
        now: Instant,
    ) -> Result<(), Response> {
        let Some(header) = request.header("authorization") else {
            return Err(self.challenge());
        };
        if let Some(wait) = self.throttle.held_off(client, now) {
            log::debug!("auth: {client} is held off for {wait:?}");
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(Response::error(StatusCode::TOO_MANY_REQUESTS)
                .with_header("Retry-After", seconds.max(1).to_string()));
        }
        if self.remembered.recall(header, now).is_some() {
            return Ok(());
        }
        let Some((user, password)) = basic_credentials(header) else {
            self.failed(client, None, now);
            return Err(self.challenge());
        };
        if !self.budget.take(now) {
            log::debug!("auth: over {CHECKS_PER_SECOND} checks a second; {client} must retry");
            return Err(
                Response::error(StatusCode::SERVICE_UNAVAILABLE).with_header("Retry-After", "1")
            );
        }
        let passwords = self.current();
        if !passwords.verify(&user, &password) {
            self.failed(client, Some(&user), now);
            return Err(self.challenge());
        }
        self.throttle.succeeded(client);
        self.remembered.remember(header, &user, now);
        Ok(())
    }

    fn current(&self) -> Arc<Passwords> {
        Arc::clone(&self.passwords.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn failed(&self, client: IpAddr, user: Option<&str>, now: Instant) {
        let count = self.throttle.failed(client, now);
        let held = match count > throttle::FREE_FAILURES {
            true => "; held off",
            false => "",
        };
        match user {
            // Debug formatting escapes whatever the client put in the name.
            Some(user) => log::warn!(
                "auth: wrong password for user {user:?} from {client} ({count} in a row{held})"
            ),
            None => {
                log::warn!("auth: unreadable credentials from {client} ({count} in a row{held})")
            }
        }
    }

    /// `401` with what makes a browser ask for a user and password.
    fn challenge(&self) -> Response {
        Response::error(StatusCode::UNAUTHORIZED).with_header(
            "WWW-Authenticate",
            format!("Basic realm=\"{}\", charset=\"UTF-8\"", self.realm),
        )
    }
}

/// `Basic dXNlcjpwYXNz` → (`user`, `pass`). The scheme is case-insensitive;
/// the user is UTF-8 and the first `:` ends it (RFC 7617 section 2).
fn basic_credentials(header: &[u8]) -> Option<(String, Vec<u8>)> {
    let scheme = header.get(..6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let token = header.get(6..)?.trim_ascii();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = std::str::from_utf8(decoded.get(..colon)?).ok()?;
    let password = decoded.get(colon + 1..)?.to_vec();
    Some((user.to_owned(), password))
}

/// The user named by an `Authorization: Basic` header, whether or not its
/// password is right: the access log's remote user, as nginx's `$remote_user`
/// is. The password goes no further than this function.
pub(crate) fn claimed_user(header: &[u8]) -> Option<String> {
    basic_credentials(header)
        .map(|(user, _)| user)
        .filter(|user| !user.is_empty())
}

/// Whether a realm can go inside the challenge's quoted string as it is.
pub(crate) fn check_realm(realm: &str) -> Result<(), String> {
    let plain = !realm.is_empty()
        && realm.len() <= 100
        && realm
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    match plain {
        true => Ok(()),
        false => Err(format!(
            "--auth-realm {realm:?}: printable ASCII without quotes or backslashes, at most 100"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_head as head;

    fn gate(scope: Scope) -> (Gate, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        // Cost 4: quick checks for tests.
        let hash = bcrypt::hash("open sesame", 4).unwrap();
        std::fs::write(&path, format!("ali:{hash}\n")).unwrap();
        (Gate::load(&path, "the cave", scope).unwrap(), dir)
    }

    fn request(credentials: Option<&str>) -> RequestHead {
        let header = credentials
            .map(|c| {
                let token = base64::engine::general_purpose::STANDARD.encode(c);
                format!("Authorization: Basic {token}\r\n")
            })
            .unwrap_or_default();
        head(&format!("GET / HTTP/1.1\r\nHost: a\r\n{header}\r\n"))
    }

    fn client(last: u8) -> IpAddr {
        IpAddr::from([198, 51, 100, last])
    }

    #[test]
    fn the_right_password_passes_and_others_are_challenged() {
        let (gate, _dir) = gate(Scope::Everything);
        let now = Instant::now();
        assert!(
            gate.admit(&request(Some("ali:open sesame")), client(1), now)
                .is_ok()
        );
        for wrong in [
            None,
            Some("ali:open sesamE"),
            Some("bob:open sesame"),
            Some("ali"),
        ] {
            let refused = gate.admit(&request(wrong), client(2), now).unwrap_err();
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{wrong:?}");
            assert_eq!(
                refused.header("www-authenticate"),
                Some("Basic realm=\"the cave\", charset=\"UTF-8\"")
            );
        }
    }

    #[test]
    fn guessing_gets_a_client_held_off_unchecked() {
        let (gate, _dir) = gate(Scope::Everything);
        let now = Instant::now();
        let guess = request(Some("ali:guess"));
        for _ in 0..=throttle::FREE_FAILURES {
            // Within the budget of checks: one a second.
            let refused = gate.admit(&guess, client(3), now).unwrap_err();
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
            gate.budget.reset();
        }
        let held = gate.admit(&request(Some("ali:open sesame")), client(3), now);
        let held = held.unwrap_err();
        assert_eq!(
            held.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "even the right one, unchecked"
        );
        assert_eq!(held.header("retry-after"), Some("1"));
        assert!(
            gate.admit(&request(Some("ali:open sesame")), client(4), now)
                .is_ok(),
            "another client is not held off"
        );
        let later = now + Duration::from_secs(2);
        assert!(
            gate.admit(&request(Some("ali:open sesame")), client(3), later)
                .is_ok()
        );
    }

    #[test]
    fn checks_beyond_the_budget_wait_and_remembered_ones_need_none() {
        let (gate, _dir) = gate(Scope::Everything);
        let now = Instant::now();
        let right = request(Some("ali:open sesame"));
        assert!(gate.admit(&right, client(1), now).is_ok());
        // Guesses from many addresses, one each: the budget runs out.
        let mut statuses = Vec::new();
        for n in 10..20 {
            let refused = gate.admit(&request(Some("ali:guess")), client(n), now);
            statuses.push(refused.unwrap_err().status().as_u16());
        }
        let checked = CHECKS_PER_SECOND as usize - 1;
        assert!(
            statuses[..checked].iter().all(|&s| s == 401),
            "{statuses:?}"
        );
        assert!(
            statuses[checked..].iter().all(|&s| s == 503),
            "{statuses:?}"
        );
        assert!(
            gate.admit(&right, client(1), now).is_ok(),
            "remembered: no check"
        );
        let other = request(Some("ali:open sesame "));
        let busy = gate.admit(&other, client(2), now).unwrap_err();
        assert_eq!(busy.header("retry-after"), Some("1"));
    }

    #[test]
    fn verified_credentials_are_remembered_until_a_reload() {
        let (gate, dir) = gate(Scope::Everything);
        let now = Instant::now();
        let right = request(Some("ali:open sesame"));
        assert!(gate.admit(&right, client(1), now).is_ok());
        // The file changes: until the reload, the remembered credential holds.
        let hash = bcrypt::hash("new password", 4).unwrap();
        std::fs::write(dir.path().join("users"), format!("ali:{hash}\n")).unwrap();
        assert!(gate.admit(&right, client(1), now).is_ok());
        gate.reload();
        assert!(gate.admit(&right, client(1), now).is_err());
        assert!(
            gate.admit(&request(Some("ali:new password")), client(1), now)
                .is_ok()
        );
    }

    #[test]
    fn a_broken_file_on_reload_keeps_the_old_users() {
        let (gate, dir) = gate(Scope::Everything);
        std::fs::write(dir.path().join("users"), "garbage\n").unwrap();
        gate.reload();
        assert_eq!(gate.users(), 1);
        let now = Instant::now();
        assert!(
            gate.admit(&request(Some("ali:open sesame")), client(1), now)
                .is_ok()
        );
    }

    #[test]
    fn credentials_are_read_as_rfc_7617_says() {
        let token = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        let header = |text: String| basic_credentials(text.as_bytes());
        assert_eq!(
            header(format!("Basic {}", token("ali:pass:with:colons"))),
            Some(("ali".into(), b"pass:with:colons".to_vec()))
        );
        assert_eq!(
            header(format!("bAsIc   {} ", token("z\u{e9}:x"))),
            Some(("z\u{e9}".into(), b"x".to_vec()))
        );
        assert_eq!(
            header(format!("Basic {}", token("a:"))),
            Some(("a".into(), Vec::new()))
        );
        for bad in [
            "Bearer abc".to_owned(),
            "Basic".to_owned(),
            "Basic !!!".to_owned(),
            format!("Basic {}", token("no colon")),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode([0xff, b':'])
            ),
        ] {
            assert_eq!(header(bad.clone()), None, "{bad}");
        }
    }

    #[test]
    fn the_claimed_user_is_the_name_alone() {
        let token = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        let claimed = |text: String| claimed_user(text.as_bytes());
        assert_eq!(
            claimed(format!("Basic {}", token("alice:secret"))).as_deref(),
            Some("alice")
        );
        assert_eq!(claimed(format!("Basic {}", token(":secret"))), None);
        assert_eq!(claimed("Bearer abc".to_owned()), None);
    }

    #[test]
    fn realms_must_fit_a_quoted_string() {
        assert!(check_realm("oneloop").is_ok());
        for bad in ["", "a\"b", "a\\b", "tab\there", "\u{e9}"] {
            assert!(check_realm(bad).is_err(), "{bad:?}");
        }
    }
}
