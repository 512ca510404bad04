//! CPU time and memory of a server's processes, from /proc.
//!
//! A server is its process and every descendant (nginx's master and worker);
//! threads are already counted in their process's figures.

use std::time::Duration;

/// `root` and all its descendants.
pub fn tree(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Some(ppid) = stat_fields(pid).and_then(|f| f.get(1).and_then(|p| p.parse().ok()))
            {
                parents.push((pid, ppid));
            }
        }
    }
    let mut family = vec![root];
    let mut i = 0;
    while i < family.len() {
        let parent = family[i];
        family.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    family
}

/// The fields of /proc/PID/stat after the command name: state, ppid, ...
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.get(stat.rfind(')')? + 2..)?;
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// User plus system CPU time of all the processes.
pub fn cpu_time(pids: &[u32]) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let total: u64 = pids
        .iter()
        .filter_map(|&pid| stat_fields(pid))
        .map(|f| {
            let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            field(11) + field(12) // utime, stime
        })
        .sum();
    Duration::from_millis(total * 1000 / ticks)
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Resident memory now, summed.
pub fn rss_kib(pids: &[u32]) -> u64 {
    pids.iter().map(|&p| status_kib(p, "VmRSS:")).sum()
}

/// Peak resident memory since the last `reset_peak`, summed.
pub fn peak_rss_kib(pids: &[u32]) -> u64 {
    pids.iter().map(|&p| status_kib(p, "VmHWM:")).sum()
}

/// Resets each process's peak RSS to its current RSS (clear_refs value 5).
pub fn reset_peak(pids: &[u32]) {
    for pid in pids {
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    }
}
