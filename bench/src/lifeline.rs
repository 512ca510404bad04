//! The subjects live no longer than the harness, however it ends.
//!
//! Stopping a subject in `Drop` covers only a harness that returns or
//! panics: one killed by a timeout, `kill -9` or a closed terminal used to
//! leave nginx, lighttpd and oneloop running and holding their ports. Three
//! ties, each for a way the harness can end:
//!
//! 1. every subject starts in a process group of its own, so that stopping
//!    it stops its children too (nginx's workers);
//! 2. its first process gets `PR_SET_PDEATHSIG`: the kernel kills it the
//!    moment the thread that started it dies;
//! 3. a watchdog, in a session of its own so that it outlives the harness's
//!    terminal, waits for the harness to go and then kills every process
//!    group still listed (nginx's workers outlive their master's SIGKILL).

use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The file the watchdog reads the process groups from.
static GROUPS_FILE: OnceLock<PathBuf> = OnceLock::new();
/// The groups alive now (the file is rewritten from this).
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Starts the watchdog of this harness, with its list of groups at `file`.
pub fn start_watchdog(file: PathBuf) -> io::Result<()> {
    std::fs::write(&file, "")?;
    let script = format!(
        "while kill -0 {harness} 2>/dev/null; do sleep 1; done; \
         while read -r group; do kill -KILL -- -\"$group\" 2>/dev/null; done < '{file}'; \
         rm -f '{file}'",
        harness = std::process::id(),
        file = file.display()
    );
    let mut command = Command::new("sh");
    command
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe, as pre_exec requires.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    command.spawn()?;
    let _ = GROUPS_FILE.set(file);
    Ok(())
}

/// Makes `command` start in a group of its own, killed with the harness.
pub fn tie(command: &mut Command) {
    // SAFETY: setpgid and prctl are async-signal-safe, as pre_exec requires.
    unsafe {
        command.pre_exec(|| {
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// A subject's group, started: the watchdog lists it.
pub fn started(group: i32) {
    let mut groups = GROUPS.lock().unwrap_or_else(|p| p.into_inner());
    groups.push(group);
    write(&groups);
}

/// Stops a subject's whole group: SIGTERM, then SIGKILL for what is left.
pub fn stop(group: i32, signal: i32) {
    // SAFETY: kill(2) on a process group this harness made.
    unsafe { libc::kill(-group, signal) };
}

/// A subject's group is gone: the watchdog forgets it.
pub fn stopped(group: i32) {
    let mut groups = GROUPS.lock().unwrap_or_else(|p| p.into_inner());
    groups.retain(|g| *g != group);
    write(&groups);
}

fn write(groups: &[i32]) {
    if let Some(file) = GROUPS_FILE.get() {
        let text: String = groups.iter().map(|g| format!("{g}\n")).collect();
        let _ = std::fs::write(file, text);
    }
}
