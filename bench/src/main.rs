//! The benchmark harness: every oneloop model, a ceiling, and nginx and
//! lighttpd where installed, under the same wrk workloads, on one machine.
//!
//! `make bench` runs the full plan and rewrites docs/benchmarks.md;
//! `make bench-quick` runs a short one (about 30 seconds of load) and writes
//! its report next to its results. Either way:
//!
//! 1. build oneloop (and the ceiling) in release, prepare the fixture site;
//! 2. start every subject on its own port, pinned to the first CPU (wrk gets
//!    the second), warm each up;
//! 3. for each round, for each workload, for each subject in turn (A B C A B C,
//!    so drift on a shared machine hits every subject alike), run wrk and read
//!    the subject's CPU time and peak memory from /proc;
//! 4. measure the memory idle keep-alive connections cost each subject;
//! 5. write raw results (CSV), medians with their spread, charts, the report.

mod charts;
mod fixture;
mod idle;
mod machine;
mod procs;
mod report;
mod subjects;
mod wrk;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use clap::Parser;

use subjects::{Running, Subject};

#[derive(Parser, Debug)]
#[command(about = "Benchmark oneloop's models against a ceiling, nginx and lighttpd")]
struct Args {
    /// The short plan: one round, one-second runs, fewer workloads.
    #[arg(long)]
    quick: bool,
    /// Seconds per wrk run (default 10, or 1 with --quick).
    #[arg(long)]
    duration: Option<u64>,
    /// Rounds of every workload (default 3, or 1 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// Where results go (a new folder per run is made inside).
    #[arg(long, default_value = "bench/results")]
    results: PathBuf,
    /// Also write the report here (the full run writes docs/benchmarks.md).
    #[arg(long)]
    docs: Option<PathBuf>,
    /// First port; subjects take consecutive ports.
    #[arg(long, default_value_t = 18080)]
    port: u16,
}

/// One workload: what to ask for, with how many connections.
#[derive(Clone, Debug)]
pub struct Cell {
    pub label: String,
    pub path: &'static str,
    pub connections: usize,
    pub pipelined: bool,
    /// Part of the concurrency sweep (charted).
    pub sweep: bool,
}

fn cell(label: &str, path: &'static str, connections: usize) -> Cell {
    Cell {
        label: label.to_string(),
        path,
        connections,
        pipelined: false,
        sweep: false,
    }
}

fn plan(quick: bool) -> (Vec<Cell>, Vec<usize>) {
    let mut cells = vec![
        Cell {
            sweep: true,
            ..cell("13 B file", "/13.txt", 100)
        },
        cell("/echo/x", "/echo/x", 100),
        cell("1 MiB file", "/1m.bin", 10),
        Cell {
            pipelined: true,
            ..cell("13 B file, 16-deep pipelining", "/13.txt", 100)
        },
    ];
    let sweep: &[usize] = if quick { &[10] } else { &[1, 10, 1000, 5000] };
    if !quick {
        cells.insert(2, cell("4 KiB file", "/4k.bin", 100));
        cells.insert(3, cell("100 KiB file", "/100k.bin", 100));
        cells.insert(5, cell("16 MiB file", "/16m.bin", 10));
    }
    for &connections in sweep {
        cells.push(Cell {
            sweep: true,
            ..cell("13 B file", "/13.txt", connections)
        });
    }
    let idle = if quick {
        vec![1000]
    } else {
        vec![1000, 10_000]
    };
    (cells, idle)
}

/// One wrk run against one subject.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub round: usize,
    pub subject: String,
    pub cell: Cell,
    pub wrk: wrk::WrkResult,
    pub cpu: Duration,
    pub peak_rss_kib: u64,
}

fn main() {
    if let Err(message) = run(Args::parse()) {
        eprintln!("oneloop-bench: {message}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    if !machine::on_path("wrk") {
        return Err(
            "wrk is not installed. On Debian or Ubuntu: sudo apt-get install wrk \
                    (or see https://github.com/wg/wrk). Nothing was measured."
                .into(),
        );
    }
    raise_descriptor_limit();
    let duration = args.duration.unwrap_or(if args.quick { 1 } else { 10 });
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 });
    let workspace = std::env::current_dir().map_err(|e| e.to_string())?;

    println!("building oneloop and the ceiling in release...");
    let status = Command::new("cargo")
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "oneloop",
            "-p",
            "oneloop-bench",
        ])
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err("cargo build --release failed".into());
    }
    let binaries = subjects::release_dir(&workspace);

    let stamp = timestamp();
    let run_dir = args
        .results
        .join(format!("{stamp}{}", if args.quick { "-quick" } else { "" }));
    std::fs::create_dir_all(&run_dir).map_err(|e| e.to_string())?;
    let scratch = workspace.join("target/bench-work");
    let site = fixture::prepare(&scratch).map_err(|e| format!("fixture: {e}"))?;
    let script = scratch.join("pipeline.lua");
    std::fs::write(&script, wrk::PIPELINE_SCRIPT).map_err(|e| e.to_string())?;

    let machine = machine::Machine::describe();
    let (server_cpus, wrk_cpus, pair_cpus) = if machine.cores >= 2 {
        ("0", "1", "0,1")
    } else {
        ("0", "0", "0")
    };
    let subjects = subjects::available(server_cpus, pair_cpus);
    let (cells, idle_counts) = plan(args.quick);

    let mut running: Vec<(Subject, Running)> = Vec::new();
    for (i, subject) in subjects.iter().enumerate() {
        let port = args.port + i as u16;
        let started = subject
            .start(port, &site, &scratch.join("servers"), &binaries)
            .map_err(|e| format!("starting {}: {e}", subject.name))?;
        println!("started {} on port {port}", subject.name);
        running.push((subject.clone(), started));
    }
    for (subject, server) in &running {
        let _ = wrk::WrkRun {
            url: &format!("http://127.0.0.1:{}/13.txt", server.port),
            connections: 10,
            duration_secs: 1,
            pipeline_script: None,
            cpus: wrk_cpus,
        }
        .run();
        println!("warmed up {}", subject.name);
    }

    // The sweep stays within the descriptors this process (and so wrk and the
    // servers) may open, with room for the servers' own.
    let descriptors = descriptor_limit();
    let (cells, skipped): (Vec<Cell>, Vec<Cell>) = cells
        .into_iter()
        .partition(|c| c.connections + 256 <= descriptors);
    for cell in &skipped {
        println!(
            "skipping {} with {} connections: the descriptor limit is {descriptors}",
            cell.label, cell.connections
        );
    }

    let mut measurements = Vec::new();
    let mut commands = Vec::new();
    for round in 1..=rounds {
        for cell in &cells {
            for (subject, server) in &running {
                if !subject.serves(cell.path) {
                    continue;
                }
                let url = format!("http://127.0.0.1:{}{}", server.port, cell.path);
                let run = wrk::WrkRun {
                    url: &url,
                    connections: cell.connections,
                    duration_secs: duration,
                    pipeline_script: cell.pipelined.then_some(script.as_path()),
                    cpus: wrk_cpus,
                };
                if round == 1 {
                    commands.push(format!("{}: {}", subject.name, run.command_line()));
                }
                let pids = procs::tree(server.child.id());
                procs::reset_peak(&pids);
                let cpu_before = procs::cpu_time(&pids);
                let result = run
                    .run()
                    .map_err(|e| format!("{} on {}: {e}", cell.label, subject.name))?;
                let pids = procs::tree(server.child.id());
                let measurement = Measurement {
                    round,
                    subject: subject.name.clone(),
                    cell: cell.clone(),
                    wrk: result,
                    cpu: procs::cpu_time(&pids).saturating_sub(cpu_before),
                    peak_rss_kib: procs::peak_rss_kib(&pids),
                };
                println!(
                    "round {round} {:<34} c={:<5} {:<16} {:>10.0} req/s  p99 {:>8.2} ms",
                    cell.label,
                    cell.connections,
                    subject.name,
                    measurement.wrk.requests_per_sec,
                    measurement.wrk.p99.as_secs_f64() * 1e3
                );
                measurements.push(measurement);
                // Let the last run's connections close before the next.
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    }

    let configs: Vec<(String, String)> = running
        .iter()
        .map(|(s, r)| (s.name.clone(), r.described.clone()))
        .collect();
    drop(running);

    // Idle memory is measured on freshly started servers: after the load runs
    // their memory holds whatever the busiest moment left behind.
    let mut idle_results = Vec::new();
    for &count in &idle_counts {
        for (i, subject) in subjects.iter().enumerate() {
            if subject.kind == subjects::Kind::Ceiling {
                continue;
            }
            let port = args.port + 100 + i as u16;
            let server = match subject.start(port, &site, &scratch.join("servers"), &binaries) {
                Ok(server) => server,
                Err(e) => {
                    println!("idle {count} {}: cannot start: {e}", subject.name);
                    continue;
                }
            };
            match idle::measure(server.port, server.child.id(), count) {
                Ok(result) => {
                    println!(
                        "idle {count:>6} {:<16} {:>8} KiB ({:.0} B per connection, {} answered)",
                        subject.name,
                        result.rss_with_idle_kib,
                        result.bytes_per_connection(),
                        result.answered
                    );
                    idle_results.push((subject.name.clone(), result));
                }
                Err(e) => println!("idle {count} {}: {e}", subject.name),
            }
            drop(server);
        }
    }

    let report = report::Report {
        machine,
        stamp,
        quick: args.quick,
        duration,
        rounds,
        commands,
        configs,
        measurements,
        idle: idle_results,
        skipped: skipped
            .iter()
            .map(|c| {
                format!(
                    "{} with {} connections (descriptor limit {descriptors})",
                    c.label, c.connections
                )
            })
            .collect(),
        wrk_cpus: wrk_cpus.to_string(),
        server_cpus: server_cpus.to_string(),
        pair_cpus: pair_cpus.to_string(),
    };
    report.write(&run_dir, args.docs.as_deref())?;
    println!("results in {}", run_dir.display());
    if let Some(docs) = &args.docs {
        println!("report in {}", docs.display());
    }
    Ok(())
}

/// This process's descriptor limit, after `raise_descriptor_limit`.
fn descriptor_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit with a valid, exclusively borrowed struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
    }
}

/// Raises this process's descriptor limit to its hard limit (the servers and
/// wrk inherit it): the sweep opens thousands of connections.
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid, exclusively borrowed struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// `2026-11-21T07-04-05Z`, for folder names (from `date`, as the machine
/// details come from the system's own tools).
fn timestamp() -> String {
    let output = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H-%M-%SZ"])
        .output();
    match output {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => format!(
            "unix-{}",
            SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        ),
    }
}

/// A path relative to `from` (a folder), for links in the report.
pub fn relative(path: &Path, from: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let from = from.canonicalize().unwrap_or_else(|_| from.to_path_buf());
    let common = path
        .components()
        .zip(from.components())
        .take_while(|(a, b)| a == b)
        .count();
    let ups = from.components().count() - common;
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_string(), ups).collect();
    parts.extend(
        path.components()
            .skip(common)
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}
