//! The descriptor limit (`ulimit -n`): raised at start, and checked against
//! what `--max-connections` needs.
//!
//! Shells and many service managers start processes with a soft limit of 1024
//! and a hard limit far above it. The soft limit is the one that bites, and
//! the process may raise it to the hard limit by itself, as nginx does with
//! `worker_rlimit_nofile`; so it does, and warns in words when even the hard
//! limit is too low, rather than letting `accept` fail with EMFILE later.

use std::io;

/// Descriptors one connection may hold: its socket, and the file it is
/// sending.
const PER_CONNECTION: u64 = 2;

/// Descriptors the process holds besides its connections: standard streams,
/// listeners, a poll and a signal pipe per loop, logs.
const RESERVE: u64 = 64;

/// What the server's configuration may need at its busiest.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Needs {
    pub max_connections: usize,
    /// Descriptors each loop's file cache may keep open.
    pub cached_files_per_loop: usize,
    pub loops: usize,
}

impl Needs {
    fn descriptors(&self) -> u64 {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        count(self.max_connections)
            .saturating_mul(PER_CONNECTION)
            .saturating_add(count(self.cached_files_per_loop).saturating_mul(count(self.loops)))
            .saturating_add(RESERVE)
    }
}

/// Raises the soft limit to the hard one, and warns if it is still below
/// what `needs` may take.
pub(crate) fn raise_limit(needs: Needs) {
    let (soft, hard) = match get() {
        Ok(limits) => limits,
        Err(e) => return log::warn!("cannot read the descriptor limit: {e}"),
    };
    let mut limit = soft;
    let target = ceiling(hard);
    if soft < target {
        match set(target, hard) {
            Ok(()) => {
                log::debug!("descriptor limit raised from {soft} to {target}");
                limit = target;
            }
            Err(e) => log::debug!("cannot raise the descriptor limit from {soft} to {target}: {e}"),
        }
    }
    let wanted = needs.descriptors();
    if limit < wanted {
        let room = limit.saturating_sub(RESERVE) / PER_CONNECTION;
        log::warn!(
            "the descriptor limit is {limit}, below the {wanted} that --max-connections {} may \
             need: beyond about {room} connections, new ones will wait. Raise the hard limit \
             (LimitNOFILE= under systemd, `ulimit -Hn` as root) or lower --max-connections",
            needs.max_connections,
        );
    }
}

fn get() -> io::Result<(u64, u64)> {
    let mut limits = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limits) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((from_rlim(limits.rlim_cur), from_rlim(limits.rlim_max)))
}

fn set(soft: u64, hard: u64) -> io::Result<()> {
    let limits = libc::rlimit {
        rlim_cur: to_rlim(soft),
        rlim_max: to_rlim(hard),
    };
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limits) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The most a soft limit may be raised to. macOS refuses (EINVAL) a soft
/// limit above `OPEN_MAX` for this call even when the hard limit is
/// "unlimited", as it usually is there; Go's runtime caps it the same way.
#[cfg(target_os = "macos")]
fn ceiling(hard: u64) -> u64 {
    const OPEN_MAX: u64 = 10240;
    hard.min(OPEN_MAX)
}

#[cfg(not(target_os = "macos"))]
fn ceiling(hard: u64) -> u64 {
    hard
}

// `rlim_t` is the platform's: u64 on 64-bit Linux and macOS, u32 on 32-bit
// glibc, i64 on FreeBSD; "unlimited" is its RLIM_INFINITY. The conversions
// are fallible on some targets and not on others, hence the allowances.

/// A limit as a count, unlimited as `u64::MAX`.
#[allow(clippy::unnecessary_fallible_conversions, clippy::useless_conversion)]
fn from_rlim(value: libc::rlim_t) -> u64 {
    if value == libc::RLIM_INFINITY {
        return u64::MAX;
    }
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// A count as a limit; beyond what the type holds is unlimited.
#[allow(clippy::unnecessary_fallible_conversions, clippy::useless_conversion)]
fn to_rlim(value: u64) -> libc::rlim_t {
    if value == u64::MAX {
        return libc::RLIM_INFINITY;
    }
    libc::rlim_t::try_from(value).unwrap_or(libc::RLIM_INFINITY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_count_two_per_connection_and_every_loops_cache() {
        let needs = Needs {
            max_connections: 1024,
            cached_files_per_loop: 128,
            loops: 2,
        };
        assert_eq!(needs.descriptors(), 2048 + 256 + RESERVE);
        let absurd = Needs {
            max_connections: usize::MAX,
            cached_files_per_loop: usize::MAX,
            loops: usize::MAX,
        };
        assert_eq!(absurd.descriptors(), u64::MAX, "saturates");
    }
}
