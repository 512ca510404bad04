//! From measurements to files: raw CSV, the medians with their spread, the
//! charts, and the markdown report (docs/benchmarks.md for a full run).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::charts::{self, Series};
use crate::idle::IdleResult;
use crate::machine::Machine;
use crate::{Cell, Measurement};

pub struct Report {
    pub machine: Machine,
    pub stamp: String,
    pub quick: bool,
    pub duration: u64,
    pub rounds: usize,
    pub commands: Vec<String>,
    pub configs: Vec<(String, String)>,
    pub measurements: Vec<Measurement>,
    pub idle: Vec<(String, IdleResult)>,
    /// Workloads left out, and why.
    pub skipped: Vec<String>,
    pub wrk_cpus: String,
    pub server_cpus: String,
    pub pair_cpus: String,
}

/// The rounds of one (subject, workload) summarised.
struct Summary {
    rps: f64,
    rps_min: f64,
    rps_max: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    errors: u64,
    non_2xx: u64,
    cpu_secs: f64,
    requests_per_cpu_sec: f64,
    peak_rss_kib: u64,
}

fn median<T: Copy + PartialOrd>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values[values.len() / 2]
}

fn summarise(runs: &[&Measurement]) -> Summary {
    let rps: Vec<f64> = runs.iter().map(|m| m.wrk.requests_per_sec).collect();
    let cpu: Vec<f64> = runs.iter().map(|m| m.cpu.as_secs_f64()).collect();
    let per_cpu: Vec<f64> = runs
        .iter()
        .map(|m| m.wrk.requests as f64 / m.cpu.as_secs_f64().max(1e-3))
        .collect();
    Summary {
        rps: median(rps.clone()),
        rps_min: rps.iter().copied().fold(f64::MAX, f64::min),
        rps_max: rps.iter().copied().fold(0.0, f64::max),
        p50: median(runs.iter().map(|m| m.wrk.p50).collect()),
        p99: median(runs.iter().map(|m| m.wrk.p99).collect()),
        max: runs.iter().map(|m| m.wrk.max).max().unwrap_or_default(),
        errors: runs.iter().map(|m| m.wrk.socket_errors).sum(),
        non_2xx: runs.iter().map(|m| m.wrk.non_2xx).sum(),
        cpu_secs: median(cpu),
        requests_per_cpu_sec: median(per_cpu),
        peak_rss_kib: runs.iter().map(|m| m.peak_rss_kib).max().unwrap_or(0),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// Which runs belong together: (subject, (workload, connections), pipelined).
type RunKey = (String, (String, usize), bool);

fn cell_key(cell: &Cell) -> (String, usize) {
    (cell.label.clone(), cell.connections)
}

impl Report {
    /// Subjects in the order they were measured.
    fn subjects(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for m in &self.measurements {
            if !names.contains(&m.subject) {
                names.push(m.subject.clone());
            }
        }
        names
    }

    /// Workloads in plan order.
    fn cells(&self) -> Vec<Cell> {
        let mut cells: Vec<Cell> = Vec::new();
        for m in &self.measurements {
            if !cells
                .iter()
                .any(|c| cell_key(c) == cell_key(&m.cell) && c.pipelined == m.cell.pipelined)
            {
                cells.push(m.cell.clone());
            }
        }
        cells
    }

    fn summaries(&self) -> BTreeMap<RunKey, Summary> {
        let mut grouped: BTreeMap<RunKey, Vec<&Measurement>> = BTreeMap::new();
        for m in &self.measurements {
            grouped
                .entry((m.subject.clone(), cell_key(&m.cell), m.cell.pipelined))
                .or_default()
                .push(m);
        }
        grouped
            .into_iter()
            .map(|(k, runs)| (k, summarise(&runs)))
            .collect()
    }

    pub fn write(&self, dir: &Path, docs: Option<&Path>) -> Result<(), String> {
        let io = |e: std::io::Error| e.to_string();
        std::fs::write(dir.join("results.csv"), self.raw_csv()).map_err(io)?;
        std::fs::write(dir.join("summary.csv"), self.summary_csv()).map_err(io)?;
        std::fs::write(dir.join("idle.csv"), self.idle_csv()).map_err(io)?;
        self.charts(dir)?;
        let local = self.markdown("");
        std::fs::write(dir.join("report.md"), &local).map_err(io)?;
        if let Some(docs) = docs {
            let docs_dir = docs.parent().unwrap_or(Path::new("."));
            let prefix = format!("{}/", crate::relative(dir, docs_dir));
            std::fs::write(docs, self.markdown(&prefix)).map_err(io)?;
        }
        Ok(())
    }

    fn raw_csv(&self) -> String {
        let mut out = String::from(
            "round,subject,workload,connections,pipelined,requests_per_sec,requests,p50_ms,p99_ms,max_ms,socket_errors,non_2xx,server_cpu_s,peak_rss_kib\n",
        );
        for m in &self.measurements {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{:.2},{},{},{},{},{},{},{:.3},{}",
                m.round,
                m.subject,
                m.cell.label.replace(',', ";"),
                m.cell.connections,
                m.cell.pipelined,
                m.wrk.requests_per_sec,
                m.wrk.requests,
                ms(m.wrk.p50),
                ms(m.wrk.p99),
                ms(m.wrk.max),
                m.wrk.socket_errors,
                m.wrk.non_2xx,
                m.cpu.as_secs_f64(),
                m.peak_rss_kib
            );
        }
        out
    }

    fn summary_csv(&self) -> String {
        let mut out = String::from(
            "subject,workload,connections,pipelined,median_rps,min_rps,max_rps,p50_ms,p99_ms,max_ms,errors,non_2xx,server_cpu_s,requests_per_cpu_s,peak_rss_kib\n",
        );
        for ((subject, (label, connections), pipelined), s) in self.summaries() {
            let _ = writeln!(
                out,
                "{subject},{},{connections},{pipelined},{:.0},{:.0},{:.0},{},{},{},{},{},{:.3},{:.0},{}",
                label.replace(',', ";"),
                s.rps,
                s.rps_min,
                s.rps_max,
                ms(s.p50),
                ms(s.p99),
                ms(s.max),
                s.errors,
                s.non_2xx,
                s.cpu_secs,
                s.requests_per_cpu_sec,
                s.peak_rss_kib
            );
        }
        out
    }

    fn idle_csv(&self) -> String {
        let mut out = String::from(
            "subject,connections,answered,rss_before_kib,rss_with_idle_kib,bytes_per_connection\n",
        );
        for (subject, r) in &self.idle {
            let _ = writeln!(
                out,
                "{subject},{},{},{},{},{:.0}",
                r.connections,
                r.answered,
                r.rss_before_kib,
                r.rss_with_idle_kib,
                r.bytes_per_connection()
            );
        }
        out
    }

    fn sweep_series(&self, value: impl Fn(&Summary) -> f64) -> Vec<Series> {
        let summaries = self.summaries();
        self.subjects()
            .into_iter()
            .map(|subject| {
                let mut points: Vec<(f64, f64)> = self
                    .cells()
                    .iter()
                    .filter(|c| c.sweep)
                    .filter_map(|c| {
                        summaries
                            .get(&(subject.clone(), cell_key(c), c.pipelined))
                            .map(|s| (c.connections as f64, value(s)))
                    })
                    .collect();
                points.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
                Series {
                    name: subject,
                    points,
                }
            })
            .filter(|s| !s.points.is_empty())
            .collect()
    }

    fn charts(&self, dir: &Path) -> Result<(), String> {
        charts::draw(
            &dir.join("throughput.svg"),
            "13-byte file: requests per second against connections",
            "requests/s (median)",
            &self.sweep_series(|s| s.rps),
            false,
        )?;
        charts::draw(
            &dir.join("p99.svg"),
            "13-byte file: 99th percentile latency against connections",
            "p99 latency, ms (median)",
            &self.sweep_series(|s| s.p99.as_secs_f64() * 1e3),
            true,
        )
    }

    fn markdown(&self, chart_prefix: &str) -> String {
        let summaries = self.summaries();
        let subjects = self.subjects();
        let mut md = String::new();
        let m = &self.machine;
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "Generated by `oneloop-bench{}` (bench/src/main.rs) on {}. Raw results, medians and charts: \
             `bench/results/{}{}/`. These machines are shared and noisy: compare subjects within \
             one run (the ratios), not absolute numbers across runs.\n",
            if self.quick { " --quick" } else { "" },
            self.stamp,
            self.stamp,
            if self.quick { "-quick" } else { "" },
        );
        let _ = writeln!(md, "## Machine\n");
        let _ = writeln!(md, "| | |\n|---|---|");
        let _ = writeln!(md, "| oneloop commit | {} |", m.commit);
        let _ = writeln!(md, "| CPU | {} |", m.cpu);
        let _ = writeln!(md, "| Cores | {} |", m.cores);
        let _ = writeln!(md, "| Memory | {} |", m.memory);
        let _ = writeln!(md, "| Kernel | {} |", m.kernel);
        for (tool, version) in &m.tools {
            let _ = writeln!(md, "| {tool} | {version} |");
        }
        let _ = writeln!(md);
        let _ = writeln!(md, "## Method\n");
        let _ = writeln!(
            md,
            "- Every subject serves the same fixture site (13 B, 4 KiB, 100 KiB, 1 MiB and 16 MiB files) \
             on its own port, started once and kept running.\n\
             - Servers are pinned to CPU {} (`oneloop loop x2`, two loops, to CPUs {}); wrk runs \
             with one thread pinned to CPU {}. With two cores, `oneloop loop x2` shares a core with wrk: \
             it shows what a second loop buys when the load generator competes for the same CPU.\n\
             - Each run lasts {} s; there are {} round(s), and within a round the subjects take turns \
             (A B C, A B C) so that drift on the machine hits all of them alike. Tables show the median \
             of the rounds, with the range of requests/s as the spread.\n\
             - Server CPU time (user + system, all its processes and threads) and peak RSS (VmHWM, reset \
             before each run) come from /proc. Requests per CPU-second = requests / server CPU time.\n\
             - The ceiling is a bare mio loop that answers every request head with a canned 13-byte \
             response, parsing nothing: the most this machine, kernel and wrk allow. Subjects are also \
             shown as a fraction of it.\n\
             - Pipelining sends 16 requests per write (wrk lua script, below); wrk counts each response. \
             Under pipelining wrk times batches, not requests, so read requests/s there, not latency.\n\
             - `oneloop pool` has 64 threads, each holding one connection to its end: with more \
             connections than threads, the others wait unanswered in its queue. wrk does not count \
             them as errors within a run, so at 1000 and 5000 connections the pool's figures describe \
             the 64 connections it serves, not the ones it leaves waiting.\n",
            self.server_cpus, self.pair_cpus, self.wrk_cpus, self.duration, self.rounds
        );

        if !self.skipped.is_empty() {
            let _ = writeln!(md, "Left out on this machine:\n");
            for skipped in &self.skipped {
                let _ = writeln!(md, "- {skipped}");
            }
            let _ = writeln!(md);
        }
        let _ = writeln!(md, "## Results\n");
        for cell in self.cells() {
            let key = cell_key(&cell);
            let ceiling = summaries
                .get(&("ceiling".into(), key.clone(), cell.pipelined))
                .map(|s| s.rps);
            let peer = |name: &str| {
                summaries
                    .get(&(name.into(), key.clone(), cell.pipelined))
                    .map(|s| s.rps)
            };
            let (nginx, lighttpd) = (peer("nginx"), peer("lighttpd"));
            let _ = writeln!(
                md,
                "### {}, {} connections\n\n| subject | req/s (median) | spread | p50 ms | p99 ms | max ms | errors | non-2xx | server CPU s | req per CPU-s | peak RSS MiB | of ceiling | vs nginx | vs lighttpd |\n\
                 |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
                cell.label, cell.connections
            );
            for subject in &subjects {
                let Some(s) = summaries.get(&(subject.clone(), key.clone(), cell.pipelined)) else {
                    continue;
                };
                let ratio = |base: Option<f64>| {
                    base.filter(|b| *b > 0.0)
                        .map_or("".into(), |b| format!("{:.2}", s.rps / b))
                };
                let _ = writeln!(
                    md,
                    "| {subject} | {:.0} | {:.0}–{:.0} | {} | {} | {} | {} | {} | {:.2} | {:.0} | {:.1} | {} | {} | {} |",
                    s.rps,
                    s.rps_min,
                    s.rps_max,
                    ms(s.p50),
                    ms(s.p99),
                    ms(s.max),
                    s.errors,
                    s.non_2xx,
                    s.cpu_secs,
                    s.requests_per_cpu_sec,
                    s.peak_rss_kib as f64 / 1024.0,
                    ratio(ceiling),
                    ratio(nginx),
                    ratio(lighttpd),
                );
            }
            let _ = writeln!(md);
        }

        let _ = writeln!(md, "## Concurrency sweep (13 B file)\n");
        let _ = writeln!(
            md,
            "![requests per second against connections]({chart_prefix}throughput.svg)\n"
        );
        let _ = writeln!(
            md,
            "![p99 latency against connections]({chart_prefix}p99.svg)\n"
        );

        let _ = writeln!(md, "## Idle keep-alive connections\n");
        let _ = writeln!(
            md,
            "Each server is started afresh and answers one request; its resident memory is read from \
             /proc. Then N connections each make one request, read the answer, and stay open, and the \
             memory is read again. A pool of threads answers only as many connections as it has threads \
             (the others wait, accepted, in its queue); lighttpd holds at most `server.max-connections`.\n"
        );
        let _ = writeln!(
            md,
            "| subject | connections | answered | RSS before MiB | RSS with them MiB | bytes per connection |\n|---|---:|---:|---:|---:|---:|"
        );
        for (subject, r) in &self.idle {
            let _ = writeln!(
                md,
                "| {subject} | {} | {} | {:.1} | {:.1} | {:.0} |",
                r.connections,
                r.answered,
                r.rss_before_kib as f64 / 1024.0,
                r.rss_with_idle_kib as f64 / 1024.0,
                r.bytes_per_connection()
            );
        }
        let _ = writeln!(md);

        let _ = writeln!(
            md,
            "## Commands\n\n```sh\nmake bench{}   # cargo run --release -p oneloop-bench --{}\n",
            if self.quick { "-quick" } else { "" },
            if self.quick {
                " --quick"
            } else {
                " --docs docs/benchmarks.md"
            }
        );
        for command in &self.commands {
            let _ = writeln!(md, "{command}");
        }
        let _ = writeln!(
            md,
            "```\n\nThe pipelining script (`pipeline.lua`):\n\n```lua\n{}```\n",
            crate::wrk::PIPELINE_SCRIPT
        );
        let _ = writeln!(md, "## Configurations\n");
        for (name, described) in &self.configs {
            let _ = writeln!(md, "### {name}\n\n```\n{}\n```\n", described.trim_end());
        }
        md
    }
}
