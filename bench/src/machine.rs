//! What the numbers were measured on: the report starts with this.

use std::process::Command;

#[derive(Debug, Clone)]
pub struct Machine {
    /// The oneloop commit measured (`-dirty` with uncommitted changes).
    pub commit: String,
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    pub memory: String,
    pub tools: Vec<(String, String)>,
}

impl Machine {
    pub fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map_or_else(
                || "unknown".into(),
                |kib| format!("{:.1} GiB", kib as f64 / 1048576.0),
            );
        let tools = [
            ("wrk", &["--version"][..]),
            ("nginx", &["-v"]),
            ("lighttpd", &["-v"]),
            ("rustc", &["--version"]),
        ]
        .iter()
        .map(|(tool, args)| (tool.to_string(), version_of(tool, args)))
        .collect();
        Machine {
            commit: commit(),
            cpu,
            cores,
            kernel,
            memory,
            tools,
        }
    }
}

/// `git rev-parse --short HEAD`, marked `-dirty` when the tree has changes.
fn commit() -> String {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short", "HEAD"]) {
        Some(hash) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty { format!("{hash}-dirty") } else { hash }
        }
        None => "unknown".into(),
    }
}

/// The first line a tool prints about its version, or "not found".
pub fn version_of(tool: &str, args: &[&str]) -> String {
    match Command::new(tool).args(args).output() {
        Ok(out) => {
            let text = if out.stdout.is_empty() {
                out.stderr
            } else {
                out.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        }
        Err(_) => "not found".into(),
    }
}

/// Whether a program is on PATH.
pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
}

/// How busy the machine's CPUs are (0 to 1), over `window`, from /proc/stat:
/// a run on a machine already busy measures the other load as much as the
/// servers.
pub fn busy_fraction(window: std::time::Duration) -> Option<f64> {
    // The first line: `cpu user nice system idle iowait irq softirq steal ...`.
    let sample = || -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
        Some((idle, fields.iter().sum()))
    };
    let (idle_before, total_before) = sample()?;
    std::thread::sleep(window);
    let (idle_after, total_after) = sample()?;
    let total = total_after.saturating_sub(total_before).max(1) as f64;
    Some(1.0 - idle_after.saturating_sub(idle_before) as f64 / total)
}
