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
    /// What the profiles showed, written by hand (bench/notes.md), placed
    /// after the goals.
    pub notes: String,
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
    let per_cpu: Vec<f64> = runs.iter().map(|m| m.requests_per_cpu_sec()).collect();
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
/// Workload labels name the protocol, so an HTTPS subject, which has the
/// name of its plain twin, never shares a key with it.
type RunKey = (String, (String, usize), bool);

fn cell_key(cell: &Cell) -> (String, usize) {
    (cell.label.clone(), cell.connections)
}

/// The peers each oneloop row is compared with, per CPU-second.
const PEERS: [&str; 4] = ["nginx", "lighttpd", "h2o", "caddy"];

/// Sections of docs/benchmarks.md that no run of this harness writes, kept
/// as they are when the full run rewrites the rest: the reading of the
/// profiles, and HTTP/2's rows, which come from
/// `bench/scripts/h2load-rows.sh` (`make bench-http2`), since this harness
/// drives wrk only.
const WRITTEN_BY_HAND: &[&str] = &[
    "## Which build ships, and why",
    "## HTTP/2: h2load on cleartext and over TLS",
];

/// A server counts as saturated when it was busy this much of the run: its
/// requests/s is then its own limit, and requests per CPU-second the fair
/// comparison. Below it, wrk or the network set the pace.
const SATURATED: f64 = 0.85;

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
            let mut markdown = self.markdown(&prefix);
            // The abuse, rules and profiles benches' sections are their own:
            // kept as the last `make bench-abuse`, `make bench-rules` and
            // `make bench-profiles` wrote them.
            for heading in [
                crate::abuse::SECTION,
                crate::rules::SECTION,
                crate::profiles::SECTION,
            ]
            .iter()
            .chain(WRITTEN_BY_HAND)
            {
                if let Some(section) = crate::abuse::existing_section(docs, heading) {
                    markdown = format!(
                        "{}

{section}
",
                        markdown.trim_end()
                    );
                }
            }
            std::fs::write(docs, markdown).map_err(io)?;
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

    /// The goals set for oneloop, each checked against this run.
    fn goals(&self, md: &mut String, summaries: &BTreeMap<RunKey, Summary>) {
        let get = |subject: &str, label: &str, connections: usize, pipelined: bool| {
            summaries.get(&(subject.into(), (label.into(), connections), pipelined))
        };
        let mut rows: Vec<(String, Option<f64>, String, f64)> = Vec::new();
        let idle = |name: &str| {
            self.idle
                .iter()
                .filter(|(subject, r)| subject == name && r.connections == 10_000)
                .map(|(_, r)| r.bytes_per_connection())
                .next()
        };
        let nginx_idle = idle("nginx").map_or(String::new(), |b| format!(" (nginx: {b:.0} B)"));
        rows.push((
            format!("idle keep-alive connection, 10,000 of them, bytes{nginx_idle}"),
            idle("oneloop loop"),
            "at most 400".into(),
            -400.0,
        ));
        let pipelined = "13 B file, 16-deep pipelining";
        rows.push((
            "16-deep pipelining, req/s of the ceiling".into(),
            get("oneloop loop", pipelined, 100, true)
                .zip(get("ceiling", pipelined, 100, true))
                .map(|(o, c)| o.rps / c.rps),
            "at least 0.60".into(),
            0.60,
        ));
        for label in ["13 B file", "4 KiB file"] {
            for (peer, target) in [("lighttpd", 1.15), ("h2o", 1.15), ("nginx", 2.0)] {
                rows.push((
                    format!("{label}, 100 connections: req per CPU-s vs {peer}"),
                    get("oneloop loop", label, 100, false)
                        .zip(get(peer, label, 100, false))
                        .map(|(o, p)| o.requests_per_cpu_sec / p.requests_per_cpu_sec),
                    format!("at least {target:.2}"),
                    target,
                ));
            }
        }
        let _ = writeln!(
            md,
            "## Goals\n\nEach measured in this run, against this run's peers.\n\n| goal | measured | target | met |\n|---|---:|---|---|"
        );
        for (goal, measured, target, bound) in rows {
            // A negative bound is an upper one.
            let (shown, met) = match measured {
                Some(v) if bound < 0.0 => {
                    (format!("{v:.0}"), if v <= -bound { "yes" } else { "no" })
                }
                Some(v) => (format!("{v:.2}"), if v >= bound { "yes" } else { "no" }),
                None => ("not measured".into(), "-"),
            };
            let _ = writeln!(md, "| {goal} | {shown} | {target} | {met} |");
        }
        let _ = writeln!(md);
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
             on a port of its own, started once and kept running. A port is chosen by binding it, and \
             a subject counts as started only when one of its own processes holds the listening socket \
             (its inode in /proc/net/tcp is among the process's descriptors). Before and after every \
             run the harness checks again that the subject is alive, holds its port and has resident \
             memory; any failure stops the run with an error instead of becoming a row.\n\
             - Each peer runs its best documented configuration for the workload (all printed below): \
             nginx with one worker, `open_file_cache`, and `tcp_nopush off` (on, it stalls small and \
             pipelined responses); `nginx tcp_nopush` is the same nginx with it on, measured on the \
             large files only, where nginx's documentation recommends it, so both rows show which \
             is faster. lighttpd with its stat cache (default) and sendfile; h2o (Debian's) with \
             `num-threads: 1` and `file.dir`; Caddy with `GOMAXPROCS=1` and `file_server`. Only nginx \
             and oneloop can echo a path segment, so only they (and the ceiling) run /echo/x.\n\
             - HTTPS: the same servers with the same ECDSA P-256 certificate (rcgen), TLS as each \
             negotiates it with wrk (OpenSSL) by default. Handshakes are measured with \
             `Connection: close`, a new connection and a full handshake per request.\n\
             - Servers are pinned to CPU {} (`oneloop loop x2`, two loops, to CPUs {}); wrk runs \
             with one thread pinned to CPU {}. With two cores, `oneloop loop x2` shares a core with wrk: \
             it shows what a second loop buys when the load generator competes for the same CPU \
             (`make bench-scaling` is the method for more cores).\n\
             - Each run lasts {} s; there are {} round(s), and within a round the subjects take turns \
             (A B C, A B C) so that drift on the machine hits all of them alike. Tables show the median \
             of the rounds, with the range of requests/s as the spread.\n\
             - Server CPU time (user + system, all its processes and threads) and peak RSS (VmHWM, reset \
             before each run) come from /proc. Requests per CPU-second = requests / server CPU time: \
             what a request costs the server whatever wrk managed to send. Where a server was busy \
             85% of the run or more it saturated its core, its requests/s is partly wrk's limit (wrk \
             has one core too), and that table leads with requests per CPU-second; comparisons with \
             peers are made on it in every table.\n\
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
            let get = |name: &str| summaries.get(&(name.into(), key.clone(), cell.pipelined));
            let ceiling = get("ceiling").map(|s| s.rps);
            let peers: Vec<(&str, f64)> = PEERS
                .iter()
                .filter_map(|p| get(p).map(|s| (*p, s.requests_per_cpu_sec)))
                .collect();
            let saturated = subjects
                .iter()
                .filter_map(|name| get(name))
                .any(|s| s.cpu_secs >= SATURATED * self.duration as f64);
            let _ = writeln!(md, "### {}, {} connections\n", cell.label, cell.connections);
            if saturated {
                let _ = writeln!(
                    md,
                    "The servers saturate their core here: requests per server CPU-second leads, and \
                     the comparisons use it.\n"
                );
            }
            let (first, second) = if saturated {
                ("req per CPU-s", "req/s (median)")
            } else {
                ("req/s (median)", "req per CPU-s")
            };
            let mut header = format!(
                "| subject | {first} | {second} | req/s spread | server CPU busy | p50 ms | p99 ms | max ms | errors | non-2xx | peak RSS MiB | req/s of ceiling |"
            );
            let mut rule =
                String::from("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            for (peer, _) in &peers {
                let _ = write!(header, " per CPU-s vs {peer} |");
                rule.push_str("---:|");
            }
            let _ = writeln!(md, "{header}\n{rule}");
            for subject in &subjects {
                let Some(s) = get(subject) else {
                    continue;
                };
                let (lead, follow) = if saturated {
                    (s.requests_per_cpu_sec, s.rps)
                } else {
                    (s.rps, s.requests_per_cpu_sec)
                };
                let _ = write!(
                    md,
                    "| {subject} | {lead:.0} | {follow:.0} | {:.0}–{:.0} | {:.0}% | {} | {} | {} | {} | {} | {:.1} | {} |",
                    s.rps_min,
                    s.rps_max,
                    s.cpu_secs * 100.0 / self.duration.max(1) as f64,
                    ms(s.p50),
                    ms(s.p99),
                    ms(s.max),
                    s.errors,
                    s.non_2xx,
                    s.peak_rss_kib as f64 / 1024.0,
                    ceiling
                        .filter(|c| *c > 0.0)
                        .map_or(String::new(), |c| format!("{:.2}", s.rps / c)),
                );
                for (_, base) in &peers {
                    let _ = write!(md, " {:.2} |", s.requests_per_cpu_sec / base.max(1e-9));
                }
                let _ = writeln!(md);
            }
            let _ = writeln!(md);
        }

        self.goals(&mut md, &summaries);
        if !self.notes.trim().is_empty() {
            let _ = writeln!(md, "{}\n", self.notes.trim_end());
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
            "## Commands\n\n```sh\nmake bench{}   # cargo run --release -p oneloop-bench --{} --duration {} --rounds {}\n",
            if self.quick { "-quick" } else { "" },
            if self.quick {
                " --quick"
            } else {
                " --docs docs/benchmarks.md"
            },
            self.duration,
            self.rounds,
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
