//! Ports that are free, and proof that the process answering on one is the
//! subject the harness started.
//!
//! Something answering on a port proves nothing: a server left over from an
//! earlier run, or anyone else's, answers just as well, and the harness would
//! measure it under the subject's name (and read the memory of a process that
//! holds no connection: 0 KiB per idle connection). So a port is chosen by
//! binding it, and a subject counts as started only when one of its own
//! processes holds the socket listening there: the socket's inode, from
//! /proc/net/tcp{,6}, is among the descriptors in /proc/PID/fd.

use std::collections::HashSet;
use std::net::TcpListener;

/// A port nothing listens on now: the kernel picks it, the probe lets it go.
/// (Another process could take it before the subject does; the ownership
/// check after the start catches that.)
pub fn free() -> Result<u16, String> {
    let probe = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("probe-bind: {e}"))?;
    probe
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("probe-bind: {e}"))
}

/// Inodes of the sockets listening on `port`, on any address.
pub fn listening_inodes(port: u16) -> HashSet<u64> {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        inodes.extend(text.lines().skip(1).filter_map(|line| listener(line, port)));
    }
    inodes
}

/// The inode of a /proc/net/tcp line if it is a socket listening on `port`:
/// `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode`,
/// addresses as `HEXADDR:HEXPORT`, state 0A for LISTEN.
fn listener(line: &str, port: u16) -> Option<u64> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let local = fields.get(1)?;
    let state = fields.get(3)?;
    let inode = fields.get(9)?;
    let local_port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
    (local_port == port && *state == "0A")
        .then(|| inode.parse().ok())
        .flatten()
}

/// Whether one of `pids` holds a socket listening on `port`.
pub fn held_by(port: u16, pids: &[u32]) -> bool {
    let inodes = listening_inodes(port);
    !inodes.is_empty()
        && pids.iter().any(|pid| {
            let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                return false;
            };
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|target| {
                    target
                        .to_str()
                        .and_then(|t| t.strip_prefix("socket:["))
                        .and_then(|t| t.strip_suffix(']'))
                        .and_then(|t| t.parse::<u64>().ok())
                        .is_some_and(|inode| inodes.contains(&inode))
                })
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_listening_sockets_from_proc_lines() {
        let listen = "   0: 0100007F:4E20 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 100 0 0 10 0";
        let established = "   1: 0100007F:4E20 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 123457 1 0000000000000000 20 4 30 10 -1";
        assert_eq!(listener(listen, 20000), Some(123_456));
        assert_eq!(listener(listen, 20001), None);
        assert_eq!(listener(established, 20000), None);
        assert_eq!(listener("garbage", 20000), None);
    }

    #[test]
    fn a_listener_of_this_process_is_found_and_a_free_port_is_not() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = std::process::id();
        assert!(held_by(port, &[me]));
        // Held, but not by a process that does not exist.
        assert!(!held_by(port, &[u32::MAX]));
        drop(listener);
        let free = free().unwrap();
        assert!(!held_by(free, &[me]));
    }
}
