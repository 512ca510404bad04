//! The password file (`--auth-file`): one `user:hash` line per user, the way
//! Apache's htpasswd, nginx and lighttpd read it, with the hashes that are
//! still good practice: argon2 (`$argon2id$...`, which `oneloop
//! --hash-password` writes) and bcrypt (`$2y$...`, which `htpasswd -B`
//! writes). Blank lines and lines starting with `#` are skipped; anything else
//! that does not parse is refused at start, with its line number.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// One user's stored hash.
#[derive(Clone, Debug)]
pub(super) enum Hash {
    Argon2(Box<PasswordHash>),
    Bcrypt(String),
}

impl Hash {
    fn parse(text: &str) -> Result<Hash, String> {
        if text.starts_with("$argon2") {
            return PasswordHash::new(text)
                .map(|hash| Hash::Argon2(Box::new(hash)))
                .map_err(|e| format!("not an argon2 hash ({e})"));
        }
        let bcrypt = ["$2a$", "$2b$", "$2y$"].iter().any(|p| text.starts_with(p));
        if bcrypt && text.len() == 60 {
            return Ok(Hash::Bcrypt(text.to_owned()));
        }
        Err(
            "the hash is neither argon2 ($argon2id$...) nor bcrypt ($2y$...): make one with \
             `oneloop --hash-password USER`"
                .to_owned(),
        )
    }

    /// Whether `password` is the one hashed. Both comparisons are constant-time.
    pub(super) fn verify(&self, password: &[u8]) -> bool {
        match self {
            Hash::Argon2(hash) => Argon2::default()
                .verify_password(password, hash.as_ref())
                .is_ok(),
            Hash::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
        }
    }

    /// What it is, for the log: `argon2id m=19456 t=2 p=1`, `bcrypt cost 10`.
    pub(super) fn describe(&self) -> String {
        match self {
            Hash::Argon2(hash) => {
                let params: Vec<String> = hash
                    .params
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!("{} {}", hash.algorithm, params.join(" "))
            }
            Hash::Bcrypt(hash) => {
                let cost = hash.get(4..6).unwrap_or("?");
                format!("bcrypt cost {cost}")
            }
        }
    }
}

/// The users of a password file.
#[derive(Clone, Debug)]
pub(super) struct Passwords {
    users: HashMap<String, Hash>,
    /// Checked for a user who does not exist, so that a wrong name costs
    /// as much as a wrong password and names cannot be told apart by time.
    decoy: Hash,
}

impl Passwords {
    pub(super) fn read(path: &Path) -> Result<Passwords, String> {
        // Through the keeper once root is given up, when one runs.
        let text = crate::system::keeper::read_to_string(path)
            .map_err(|e| format!("--auth-file {}: {e}", path.display()))?;
        Passwords::parse(&text).map_err(|e| format!("--auth-file {}: {e}", path.display()))
    }

    fn parse(text: &str) -> Result<Passwords, String> {
        let mut users = HashMap::new();
        let mut first = None;
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| format!("line {number}: expected user:hash"))?;
            check_user_name(user).map_err(|e| format!("line {number}: {e}"))?;
            let hash = Hash::parse(hash).map_err(|e| format!("line {number}: {e}"))?;
            first.get_or_insert_with(|| hash.clone());
            if users.insert(user.to_owned(), hash).is_some() {
                return Err(format!("line {number}: user `{user}` again"));
            }
        }
        let decoy = first.ok_or("no user in it (lines are user:hash)")?;
        Ok(Passwords { users, decoy })
    }

    pub(super) fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether `user` has `password`. An unknown user costs a check too.
    pub(super) fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.users.get(user) {
            Some(hash) => hash.verify(password),
            None => {
                let _ = self.decoy.verify(password);
                false
            }
        }
    }

    /// How long one check of a wrong password takes on this machine, and
    /// with which hash: the time the loop stops for one uncached login.
    pub(super) fn measure_check(&self) -> (Duration, String) {
        let started = Instant::now();
        let _ = self.decoy.verify(b"certainly not the password");
        (started.elapsed(), self.decoy.describe())
    }
}

/// A user name a password file can hold and a Basic credential can carry.
pub(crate) fn check_user_name(user: &str) -> Result<(), String> {
    if user.is_empty() {
        return Err("an empty user name".to_owned());
    }
    if user
        .chars()
        .any(|c| c == ':' || c.is_control() || c.is_whitespace())
    {
        return Err(format!(
            "user name {user:?}: no `:`, spaces or control characters"
        ));
    }
    Ok(())
}

/// The file line for `user` with `password`, hashed with argon2id and the
/// parameters OWASP recommends (19 MiB, 2 passes, 1 lane).
pub(crate) fn hash_line(user: &str, password: &[u8]) -> Result<String, String> {
    check_user_name(user)?;
    if password.is_empty() {
        return Err("an empty password".to_owned());
    }
    let hash = Argon2::default()
        .hash_password(password)
        .map_err(|e| format!("cannot hash the password: {e}"))?;
    Ok(format!("{user}:{hash}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_lines_made_here_verify() {
        let line = hash_line("bob", b"correct horse").unwrap();
        assert!(
            line.starts_with("bob:$argon2id$v=19$m=19456,t=2,p=1$"),
            "{line}"
        );
        let passwords = Passwords::parse(&format!("# users\n\n{line}\n")).unwrap();
        assert_eq!(passwords.len(), 1);
        assert!(passwords.verify("bob", b"correct horse"));
        assert!(!passwords.verify("bob", b"correct horse "));
        assert!(!passwords.verify("eve", b"correct horse"), "no such user");
        assert_eq!(passwords.measure_check().1, "argon2id m=19456 t=2 p=1");
    }

    #[test]
    fn bcrypt_lines_from_htpasswd_verify() {
        // As `htpasswd -nbB -C 4 alice secret` writes it (cost 4: a quick test).
        let hash = bcrypt::hash_with_result("secret", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        let passwords = Passwords::parse(&format!("alice:{hash}\n")).unwrap();
        assert!(passwords.verify("alice", b"secret"));
        assert!(!passwords.verify("alice", b"Secret"));
        assert_eq!(passwords.measure_check().1, "bcrypt cost 04");
    }

    #[test]
    fn bad_files_say_which_line() {
        let good = hash_line("a", b"x").unwrap();
        let cases = [
            ("", "no user"),
            ("# only a comment\n", "no user"),
            ("alice\n", "line 1: expected user:hash"),
            (
                &format!("{good}\nbob:plaintext\n"),
                "line 2: the hash is neither",
            ),
            (&format!("{good}\n{good}\n"), "line 2: user `a` again"),
            (
                &format!("a b:{}\n", good.trim_start_matches("a:")),
                "line 1: user name",
            ),
            ("bob:$argon2id$garbage\n", "line 1: not an argon2 hash"),
            ("bob:$2y$04$short\n", "line 1: the hash is neither"),
        ];
        for (text, needle) in cases {
            let error = Passwords::parse(text).unwrap_err();
            assert!(error.contains(needle), "{text:?}: {error}");
        }
    }

    #[test]
    fn names_and_passwords_that_cannot_be_stored_are_refused() {
        assert!(hash_line("", b"x").is_err());
        assert!(hash_line("a:b", b"x").is_err());
        assert!(hash_line("a\tb", b"x").is_err());
        assert!(hash_line("alice", b"").is_err());
        assert!(
            hash_line("z\u{e9}lie", b"x").is_ok(),
            "UTF-8 names are fine"
        );
    }
}
