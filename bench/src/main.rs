//! The benchmark harness: every oneloop model, a ceiling, and nginx, lighttpd,
//! h2o and Caddy where installed, under the same wrk workloads, over HTTP and
//! HTTPS, on one machine.
//!
//! `make bench` runs the full plan and rewrites docs/benchmarks.md;
//! `make bench-quick` runs a short one (about 30 seconds of load) and writes
//! its report next to its results. Either way:
//!
//! 1. build oneloop (and the ceiling) in release, prepare the fixture site;
//! 2. start every subject on a free port, pinned to the first CPU (wrk gets
//!    the second), check that its own process holds the port, warm it up;
//! 3. for each round, for each workload, for each subject in turn (A B C A B C,
//!    so drift on a shared machine hits every subject alike), run wrk and read
//!    the subject's CPU time and peak memory from /proc; a subject that died,
//!    lost its port or reads 0 bytes of memory stops the run;
//! 4. measure the memory idle keep-alive connections cost each subject;
//! 5. write raw results (CSV), medians with their spread, charts, the report.

mod abuse;
mod charts;
mod fixture;
mod idle;
mod lifeline;
mod limits;
mod machine;
mod ports;
mod procs;
mod profiles;
mod report;
mod rules;
mod scaling;
mod subjects;
mod wrk;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use clap::Parser;

use subjects::{Running, Subject};

#[derive(Parser, Debug)]
#[command(about = "Benchmark oneloop's models against a ceiling, nginx, lighttpd, h2o and Caddy")]
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
    /// Instead: how `--workers N` scales with cores (docs/benchmarks.md,
    /// "Scaling"); needs 4 cores or more to show anything.
    #[arg(long)]
    scaling: bool,
    /// Instead: every model under attack beside nginx with the same limits
    /// (docs/benchmarks.md, "Under attack"); --duration is per scenario.
    #[arg(long)]
    abuse: bool,
    /// Instead: what twenty rules of a configuration file cost a request,
    /// against none (docs/benchmarks.md, "The cost of a site's rules").
    #[arg(long)]
    rules: bool,
    /// Instead: the stripped binary's size per target, and what each
    /// release-profile setting does to size and requests per CPU-second
    /// (docs/benchmarks.md, "Small hosts").
    #[arg(long)]
    profiles: bool,
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
    /// Over HTTPS.
    pub tls: bool,
    /// Every request on a new connection (`Connection: close`): over HTTPS,
    /// one full handshake per request.
    pub close: bool,
    /// A large file, where nginx's `tcp_nopush` is worth trying.
    pub large: bool,
}

fn cell(label: &str, path: &'static str, connections: usize) -> Cell {
    Cell {
        label: label.to_string(),
        path,
        connections,
        pipelined: false,
        sweep: false,
        tls: false,
        close: false,
        large: false,
    }
}

fn large(label: &str, path: &'static str, connections: usize) -> Cell {
    Cell {
        large: true,
        ..cell(label, path, connections)
    }
}

fn https(cell: Cell) -> Cell {
    Cell { tls: true, ..cell }
}

fn plan(quick: bool) -> (Vec<Cell>, Vec<usize>) {
    let mut cells = vec![
        Cell {
            sweep: true,
            ..cell("13 B file", "/13.txt", 100)
        },
        cell("/echo/x", "/echo/x", 100),
        large("1 MiB file", "/1m.bin", 10),
        Cell {
            pipelined: true,
            ..cell("13 B file, 16-deep pipelining", "/13.txt", 100)
        },
        https(Cell {
            close: true,
            ..cell("HTTPS handshakes (13 B, Connection: close)", "/13.txt", 50)
        }),
        https(cell("HTTPS 13 B file", "/13.txt", 100)),
        https(large("HTTPS 1 MiB file", "/1m.bin", 10)),
    ];
    let sweep: &[usize] = if quick { &[10] } else { &[1, 10, 1000, 5000] };
    if !quick {
        cells.insert(2, cell("4 KiB file", "/4k.bin", 100));
        cells.insert(3, large("100 KiB file", "/100k.bin", 100));
        cells.insert(5, large("16 MiB file", "/16m.bin", 10));
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

/// Builds oneloop and the harness (the ceiling) in release: where the
/// binaries are.
fn build(workspace: &Path) -> Result<PathBuf, String> {
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
    Ok(subjects::release_dir(workspace))
}

/// Writes a bench's own report to its run folder and, with `--docs`, into
/// its section of the docs (the rest of the file left as it is).
fn write_section(
    run_dir: &Path,
    docs: Option<&Path>,
    section: &str,
    report: &str,
) -> Result<(), String> {
    std::fs::write(run_dir.join("report.md"), report).map_err(|e| e.to_string())?;
    if let Some(docs) = docs {
        let text = std::fs::read_to_string(docs).unwrap_or_default();
        let updated = abuse::replace_section(&text, section, report);
        std::fs::write(docs, updated).map_err(|e| e.to_string())?;
    }
    println!("{report}\nresults in {}", run_dir.display());
    Ok(())
}

/// `--abuse`: every subject under every attack (src/abuse.rs).
fn run_abuse(args: &Args, workspace: &Path, scratch: &Path) -> Result<(), String> {
    raise_descriptor_limit();
    if let Some(busy) = machine::busy_fraction(Duration::from_secs(2))
        && busy > 0.15
    {
        return Err(format!(
            "the machine's CPUs are {:.0}% busy before anything started. Nothing was measured.",
            busy * 100.0
        ));
    }
    let duration = Duration::from_secs(args.duration.unwrap_or(5));
    let binaries = build(workspace)?;
    let stamp = timestamp();
    let run_dir = abuse::results_dir(&args.results, &stamp);
    std::fs::create_dir_all(&run_dir).map_err(|e| e.to_string())?;
    let fixture = fixture::prepare(scratch).map_err(|e| format!("fixture: {e}"))?;
    let machine = machine::Machine::describe();
    let (cpus, pair) = if machine.cores >= 2 {
        ("0", "0,1")
    } else {
        ("0", "0")
    };
    let servers_dir = scratch.join("servers-abuse");
    let mut outcomes = Vec::new();
    let mut configs = Vec::new();
    for subject in abuse::subjects(cpus, pair) {
        let mut server = subject
            .start(&fixture, &servers_dir, &binaries)
            .map_err(|e| format!("starting {}: {e}", subject.name))?;
        println!("started {} on port {}", subject.name, server.port);
        configs.push((subject.name.clone(), server.described.clone()));
        outcomes.extend(abuse::measure(&subject, &mut server, duration)?);
        drop(server);
    }
    let markdown = abuse::markdown(&outcomes, duration, &stamp, &machine.commit, &configs);
    let io = |e: std::io::Error| e.to_string();
    std::fs::write(run_dir.join("report.md"), &markdown).map_err(io)?;
    std::fs::write(run_dir.join("rss.csv"), abuse::rss_csv(&outcomes)).map_err(io)?;
    if let Some(docs) = &args.docs {
        let text = std::fs::read_to_string(docs).unwrap_or_default();
        let body = format!(
            "{markdown}
Raw RSS samples: `{}/rss.csv`.
",
            relative(&run_dir, docs.parent().unwrap_or(Path::new(".")))
        );
        std::fs::write(docs, abuse::replace_section(&text, abuse::SECTION, &body)).map_err(io)?;
        println!("report in {}", docs.display());
    }
    println!("results in {}", run_dir.display());
    Ok(())
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

impl Measurement {
    /// Requests per second of server CPU time: what a request costs the
    /// server, whatever wrk managed to send.
    pub fn requests_per_cpu_sec(&self) -> f64 {
        self.wrk.requests as f64 / self.cpu.as_secs_f64().max(1e-3)
    }
}

fn main() {
    if let Err(message) = run(Args::parse()) {
        eprintln!("oneloop-bench: {message}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    let workspace = std::env::current_dir().map_err(|e| e.to_string())?;
    let scratch = workspace.join("target/bench-work");
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    lifeline::start_watchdog(scratch.join("subjects.groups"))
        .map_err(|e| format!("the watchdog: {e}"))?;
    if args.abuse {
        return run_abuse(&args, &workspace, &scratch);
    }
    if !machine::on_path("wrk") {
        return Err(
            "wrk is not installed. On Debian or Ubuntu: sudo apt-get install wrk \
                    (or see https://github.com/wg/wrk). Nothing was measured."
                .into(),
        );
    }
    raise_descriptor_limit();
    if let Some(busy) = machine::busy_fraction(Duration::from_secs(2))
        && busy > 0.15
    {
        return Err(format!(
            "the machine's CPUs are {:.0}% busy before anything started: something else is \
             running, and would be measured with the servers. Nothing was measured.",
            busy * 100.0
        ));
    }
    let duration = args.duration.unwrap_or(if args.quick { 1 } else { 10 });
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 });
    let binaries = build(&workspace)?;

    let stamp = timestamp();
    let kind = if args.scaling {
        "-scaling"
    } else if args.rules {
        "-rules"
    } else if args.profiles {
        "-profiles"
    } else if args.quick {
        "-quick"
    } else {
        ""
    };
    let run_dir = args.results.join(format!("{stamp}{kind}"));
    std::fs::create_dir_all(&run_dir).map_err(|e| e.to_string())?;
    let fixture = fixture::prepare(&scratch).map_err(|e| format!("fixture: {e}"))?;
    let script = scratch.join("pipeline.lua");
    std::fs::write(&script, wrk::PIPELINE_SCRIPT).map_err(|e| e.to_string())?;
    let machine = machine::Machine::describe();
    let servers_dir = scratch.join("servers");

    if args.rules {
        let report = rules::run(&rules::Setup {
            machine,
            stamp,
            duration,
            rounds,
            fixture: &fixture,
            servers_dir: &servers_dir,
            binaries: &binaries,
        })?;
        return write_section(&run_dir, args.docs.as_deref(), rules::SECTION, &report);
    }
    if args.profiles {
        let report = profiles::run(&profiles::Setup {
            machine,
            stamp,
            duration,
            rounds,
            fixture: &fixture,
            servers_dir: &servers_dir,
            workspace: &workspace,
        })?;
        return write_section(&run_dir, args.docs.as_deref(), profiles::SECTION, &report);
    }
    if args.scaling {
        let report = scaling::run(&scaling::Setup {
            machine,
            stamp,
            duration,
            rounds,
            fixture: &fixture,
            servers_dir: &servers_dir,
            binaries: &binaries,
        })?;
        std::fs::write(run_dir.join("report.md"), &report).map_err(|e| e.to_string())?;
        println!("{report}\nresults in {}", run_dir.display());
        return Ok(());
    }

    let (server_cpus, wrk_cpus, pair_cpus) = if machine.cores >= 2 {
        ("0", "1", "0,1")
    } else {
        ("0", "0", "0")
    };
    let subjects = subjects::available(server_cpus, pair_cpus);
    let (cells, idle_counts) = plan(args.quick);

    let mut running: Vec<(Subject, Running)> = Vec::new();
    for subject in &subjects {
        let started = subject
            .start(&fixture, &servers_dir, &binaries)
            .map_err(|e| format!("starting {}: {e}", subject.title()))?;
        println!("started {} on port {}", subject.title(), started.port);
        running.push((subject.clone(), started));
    }
    for (subject, server) in &running {
        let _ = wrk::WrkRun {
            url: &server.url("/13.txt", subject.tls),
            connections: 10,
            duration_secs: 1,
            pipeline_script: None,
            close: false,
            cpus: wrk_cpus,
            threads: 1,
        }
        .run();
        println!("warmed up {}", subject.title());
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

    // Each subject's processes, to check that only the one measured works.
    let bystanders: Vec<(String, u32)> = running
        .iter()
        .map(|(s, r)| (s.title(), r.child.id()))
        .collect();
    let mut measurements = Vec::new();
    let mut commands = Vec::new();
    for round in 1..=rounds {
        for cell in &cells {
            for (subject, server) in &mut running {
                if !subject.serves(cell) {
                    continue;
                }
                let url = server.url(cell.path, cell.tls);
                let run = wrk::WrkRun {
                    url: &url,
                    connections: cell.connections,
                    duration_secs: duration,
                    pipeline_script: cell.pipelined.then_some(script.as_path()),
                    close: cell.close,
                    cpus: wrk_cpus,
                    threads: 1,
                };
                if round == 1 {
                    commands.push(format!("{}: {}", subject.title(), run.command_line()));
                }
                let checked = |server: &mut Running| {
                    server
                        .verified()
                        .map_err(|e| format!("{} on {}: {e}", cell.label, subject.title()))
                };
                let pids = checked(server)?;
                procs::reset_peak(&pids);
                let cpu_before = procs::cpu_time(&pids);
                let others_before = others_cpu(&bystanders);
                let result = run
                    .run()
                    .map_err(|e| format!("{} on {}: {e}", cell.label, subject.title()))?;
                let pids = checked(server)?;
                // Every other subject sat idle meanwhile, or it took part of
                // the shared core from this one (a server spinning on its own
                // once did, for two rounds of a run).
                for ((name, busy_before), (_, busy_after)) in
                    others_before.iter().zip(others_cpu(&bystanders))
                {
                    let busy = busy_after.saturating_sub(*busy_before);
                    if name != &subject.title() && busy > Duration::from_secs(duration) / 4 {
                        return Err(format!(
                            "{name} used {busy:?} of CPU while {} ran {}: it is busy on its own",
                            subject.title(),
                            cell.label
                        ));
                    }
                }
                let measurement = Measurement {
                    round,
                    subject: subject.name.clone(),
                    cell: cell.clone(),
                    wrk: result,
                    cpu: procs::cpu_time(&pids).saturating_sub(cpu_before),
                    peak_rss_kib: procs::peak_rss_kib(&pids),
                };
                println!(
                    "round {round} {:<44} c={:<5} {:<18} {:>10.0} req/s {:>10.0} req/CPU-s  p99 {:>8.2} ms",
                    cell.label,
                    cell.connections,
                    subject.name,
                    measurement.wrk.requests_per_sec,
                    measurement.requests_per_cpu_sec(),
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
        .map(|(s, r)| (s.title(), r.described.clone()))
        .collect();
    drop(running);

    // Idle memory is measured on freshly started servers: after the load runs
    // their memory holds whatever the busiest moment left behind.
    let mut idle_results = Vec::new();
    for &count in &idle_counts {
        for subject in &subjects {
            if subject.kind == subjects::Kind::Ceiling
                || subject.tls
                || subject.kind == (subjects::Kind::Nginx { nopush: true })
            {
                continue;
            }
            let mut server = subject
                .start(&fixture, &servers_dir, &binaries)
                .map_err(|e| format!("idle {count}: starting {}: {e}", subject.name))?;
            let result = idle::measure(&mut server, count)
                .map_err(|e| format!("idle {count} on {}: {e}", subject.name))?;
            println!(
                "idle {count:>6} {:<18} {:>8} KiB ({:.0} B per connection, {} answered)",
                subject.name,
                result.rss_with_idle_kib,
                result.bytes_per_connection(),
                result.answered
            );
            idle_results.push((subject.name.clone(), result));
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
        // Written by hand after reading a run's profiles; absent, nothing.
        notes: std::fs::read_to_string(workspace.join("bench/notes.md")).unwrap_or_default(),
    };
    report.write(&run_dir, args.docs.as_deref())?;
    println!("results in {}", run_dir.display());
    if let Some(docs) = &args.docs {
        println!("report in {}", docs.display());
    }
    Ok(())
}

/// The CPU time each subject has used so far.
fn others_cpu(subjects: &[(String, u32)]) -> Vec<(String, Duration)> {
    subjects
        .iter()
        .map(|(name, pid)| (name.clone(), procs::cpu_time(&procs::tree(*pid))))
        .collect()
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
