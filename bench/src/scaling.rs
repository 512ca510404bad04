//! `make bench-scaling`: what `--workers N` buys on a machine with more cores.
//!
//! The method: half the cores go to the server, the other half to wrk (one
//! wrk thread per core, 100 connections per thread), so that the load
//! generator is never the server's competitor. oneloop runs with `--workers N`
//! for N = 1, 2, 4, ... up to its half, pinned to the first N cores; each N
//! is measured on the 13 B and 4 KiB files, rounds interleaved. Loops share
//! nothing on the request path (each has its own listener through
//! SO_REUSEPORT, connections and cache), so the expected result is requests/s
//! growing close to N times one worker's, with requests per CPU-second flat,
//! until wrk's cores saturate: then the ratio flattens, and the wrk column
//! (its CPU-seconds per second of run) says so.
//!
//! On fewer than 4 cores there is no half for each: the report says what it
//! cannot show, and measures what it can, one worker against two loops on
//! the same core (the cost of a loop without a core of its own).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::machine::Machine;
use crate::subjects::{Fixture, Kind, Subject};
use crate::{procs, wrk};

pub struct Setup<'a> {
    pub machine: Machine,
    pub stamp: String,
    pub duration: u64,
    pub rounds: usize,
    pub fixture: &'a Fixture,
    pub servers_dir: &'a Path,
    pub binaries: &'a Path,
}

/// One configuration: N loops on these cores, wrk on those.
struct Shape {
    workers: usize,
    server_cpus: String,
    wrk_cpus: String,
    wrk_threads: usize,
}

struct Row {
    workers: usize,
    server_cpus: String,
    path: &'static str,
    rps: Vec<f64>,
    per_cpu: Vec<f64>,
    wrk_busy: Vec<f64>,
}

fn cpu_list(first: usize, count: usize) -> String {
    if count == 1 {
        first.to_string()
    } else {
        format!("{first}-{}", first + count - 1)
    }
}

fn shapes(cores: usize) -> Vec<Shape> {
    if cores < 4 {
        let wrk_cpus = cpu_list(1.min(cores - 1), 1);
        return [1, 2]
            .into_iter()
            .map(|workers| Shape {
                workers,
                server_cpus: "0".into(),
                wrk_cpus: wrk_cpus.clone(),
                wrk_threads: 1,
            })
            .collect();
    }
    let half = cores / 2;
    std::iter::successors(Some(1), |n| Some(n * 2))
        .take_while(|&n| n <= half)
        .map(|workers| Shape {
            workers,
            server_cpus: cpu_list(0, workers),
            wrk_cpus: cpu_list(half, cores - half),
            wrk_threads: cores - half,
        })
        .collect()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// Runs the plan and returns its report (markdown).
pub fn run(setup: &Setup<'_>) -> Result<String, String> {
    let cores = setup.machine.cores.max(1);
    let shapes = shapes(cores);
    let paths = ["/13.txt", "/4k.bin"];
    let mut rows: Vec<Row> = Vec::new();
    for round in 1..=setup.rounds {
        for shape in &shapes {
            let subject = Subject {
                name: format!("oneloop --workers {}", shape.workers),
                kind: Kind::Oneloop(vec!["--workers".into(), shape.workers.to_string()]),
                cpus: shape.server_cpus.clone(),
                tls: false,
            };
            let mut server = subject
                .start(setup.fixture, setup.servers_dir, setup.binaries)
                .map_err(|e| format!("starting {}: {e}", subject.name))?;
            for path in paths {
                let run = wrk::WrkRun {
                    url: &server.url(path, false),
                    connections: 100 * shape.wrk_threads,
                    duration_secs: setup.duration,
                    pipeline_script: None,
                    close: false,
                    cpus: &shape.wrk_cpus,
                    threads: shape.wrk_threads,
                };
                let pids = server.verified().map_err(|e| e.to_string())?;
                let before = procs::cpu_time(&pids);
                let (result, wrk_cpu, wall) = timed(&run)?;
                let pids = server.verified().map_err(|e| e.to_string())?;
                let cpu = procs::cpu_time(&pids).saturating_sub(before);
                println!(
                    "round {round} workers {} on CPUs {} {path}: {:.0} req/s",
                    shape.workers, shape.server_cpus, result.requests_per_sec
                );
                let row = match rows
                    .iter_mut()
                    .position(|r| r.workers == shape.workers && r.path == path)
                {
                    Some(i) => &mut rows[i],
                    None => {
                        rows.push(Row {
                            workers: shape.workers,
                            server_cpus: shape.server_cpus.clone(),
                            path,
                            rps: Vec::new(),
                            per_cpu: Vec::new(),
                            wrk_busy: Vec::new(),
                        });
                        let last = rows.len() - 1;
                        &mut rows[last]
                    }
                };
                row.rps.push(result.requests_per_sec);
                row.per_cpu
                    .push(result.requests as f64 / cpu.as_secs_f64().max(1e-3));
                row.wrk_busy
                    .push(wrk_cpu.as_secs_f64() / wall.as_secs_f64().max(1e-3));
            }
        }
    }
    Ok(report(setup, &shapes, &rows))
}

/// Runs wrk and returns its result with the CPU time it used (its own
/// rusage, as a child) and the wall time.
fn timed(run: &wrk::WrkRun<'_>) -> Result<(wrk::WrkResult, Duration, Duration), String> {
    let children_cpu = || {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage fills the struct it is given.
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
        // SAFETY: zero-initialised, then filled by getrusage.
        let usage = unsafe { usage.assume_init() };
        let time = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        time(usage.ru_utime) + time(usage.ru_stime)
    };
    let (cpu_before, started) = (children_cpu(), Instant::now());
    let result = run.run().map_err(|e| format!("wrk: {e}"))?;
    Ok((
        result,
        children_cpu().saturating_sub(cpu_before),
        started.elapsed(),
    ))
}

fn report(setup: &Setup<'_>, shapes: &[Shape], rows: &[Row]) -> String {
    let m = &setup.machine;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Scaling of --workers\n\nGenerated by `oneloop-bench --scaling` on {} ({}, {} cores, kernel {}, commit {}); \
         {} round(s) of {} s, medians.\n",
        setup.stamp, m.cpu, m.cores, m.kernel, m.commit, setup.rounds, setup.duration
    );
    if m.cores < 4 {
        let _ = writeln!(
            md,
            "**This machine has {} cores, and scaling needs at least 4**: the loops need cores of their \
             own and wrk needs as many again, or the load generator competes with the server and the \
             ratio measures the competition. What can be measured here is below: one loop, and two \
             loops sharing core 0 (the cost of a second loop without a second core, which should be \
             a ratio close to 1). Run `make bench-scaling` on a machine with 4 or more cores to see \
             the ratio to one worker.\n",
            m.cores
        );
    }
    let _ = writeln!(
        md,
        "| workers | server CPUs | wrk CPUs (threads) | file | req/s | vs 1 worker | req per CPU-s | wrk CPU busy |\n\
         |---:|---|---|---|---:|---:|---:|---:|"
    );
    for row in rows {
        let Some(shape) = shapes.iter().find(|s| s.workers == row.workers) else {
            continue;
        };
        let one = rows
            .iter()
            .find(|r| r.workers == 1 && r.path == row.path)
            .map_or(0.0, |r| median(&r.rps));
        let rps = median(&row.rps);
        let _ = writeln!(
            md,
            "| {} | {} | {} ({}) | {} | {:.0} | {:.2} | {:.0} | {:.0}% |",
            row.workers,
            row.server_cpus,
            shape.wrk_cpus,
            shape.wrk_threads,
            row.path,
            rps,
            if one > 0.0 { rps / one } else { 0.0 },
            median(&row.per_cpu),
            median(&row.wrk_busy) * 100.0 / shape.wrk_threads as f64,
        );
    }
    let _ = writeln!(
        md,
        "\nExpected: with a core per loop, requests/s close to N times one worker's and requests per \
         CPU-second flat, as long as wrk's CPUs are below saturation (the last column near 100% means \
         the load generator, not the server, set the number)."
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_the_cores_and_doubles_the_loops() {
        let shapes = shapes(8);
        let workers: Vec<usize> = shapes.iter().map(|s| s.workers).collect();
        assert_eq!(workers, [1, 2, 4]);
        assert_eq!(shapes[2].server_cpus, "0-3");
        assert!(
            shapes
                .iter()
                .all(|s| s.wrk_cpus == "4-7" && s.wrk_threads == 4)
        );
    }

    #[test]
    fn two_cores_measure_one_loop_against_two_on_one_core() {
        let shapes = shapes(2);
        assert_eq!(shapes.len(), 2);
        assert!(
            shapes
                .iter()
                .all(|s| s.server_cpus == "0" && s.wrk_cpus == "1")
        );
    }
}
