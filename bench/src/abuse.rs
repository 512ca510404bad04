//! `make bench-abuse`: every model under attack while one well-behaved client
//! measures what it costs him, beside nginx under `limit_conn`/`limit_req` at
//! the same settings.
//!
//! For each subject, each scenario runs for the same time:
//!
//! - the well-behaved client (from 127.0.0.2) asks for the 4 KiB file on one
//!   keep-alive connection every 5 ms and times each answer;
//! - the attacker (from 127.0.0.3, one address, as the limits count clients)
//!   does one thing as fast as it can: pipelines distinct spellings of one
//!   file, unique query strings, or missing files over four connections;
//!   opens connections and holds them (a flood); or asks for the 1 MiB file
//!   on every connection it may hold and never reads (slow readers);
//! - the server's resident memory is sampled every 250 ms, and its CPU time
//!   read before and after.
//!
//! The scenario "none" is the well-behaved client alone: its latency beside
//! the others' is what each attack costs him. The report goes to
//! `bench/results/<time>-abuse/`, and its tables into docs/benchmarks.md,
//! "Under attack" (the full bench keeps that section as it finds it).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::subjects::{Kind, Running, Subject};
use crate::{machine, procs};

pub use crate::limits::{CONNECTIONS_PER_IP, RATE_BURST, RATE_PER_IP};

/// The well-behaved client's address, and the attacker's.
const GOOD: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// How often the well-behaved client asks, and how long it waits at most.
const GOOD_INTERVAL: Duration = Duration::from_millis(5);
const GOOD_TIMEOUT: Duration = Duration::from_secs(5);

/// How often memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attack {
    None,
    Spellings,
    Queries,
    Missing,
    ConnectionFlood,
    SlowReaders,
}

impl Attack {
    pub const ALL: [Attack; 6] = [
        Attack::None,
        Attack::Spellings,
        Attack::Queries,
        Attack::Missing,
        Attack::ConnectionFlood,
        Attack::SlowReaders,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Attack::None => "none",
            Attack::Spellings => "distinct spellings",
            Attack::Queries => "unique queries",
            Attack::Missing => "missing files",
            Attack::ConnectionFlood => "connection flood",
            Attack::SlowReaders => "slow readers",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Attack::None => "the well-behaved client alone",
            Attack::Spellings => {
                "4 connections pipelining 32 requests at a time for /13.txt spelt a new way each \
                 time (`//`, `/./`, `/%2E/`, `%31`)"
            }
            Attack::Queries => "the same with `/13.txt?v=N`",
            Attack::Missing => "the same with `/missing-N.txt`",
            Attack::ConnectionFlood => {
                "one thread opening connections as fast as it can and holding up to 4,000, \
                 sending nothing"
            }
            Attack::SlowReaders => {
                "64 connections, each pipelining 16 requests for /1m.bin and never reading"
            }
        }
    }
}

/// What one scenario on one subject measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub subject: String,
    pub attack: Attack,
    /// The well-behaved client's latencies, sorted.
    pub latencies: Vec<Duration>,
    /// Its requests that failed (closed, timed out, not a 200).
    pub good_failures: u64,
    /// The attacker's answered requests (or accepted connections), by kind.
    pub attacker: AttackerCounts,
    /// Resident memory over the run, in KiB, one sample per 250 ms.
    pub rss_kib: Vec<u64>,
    pub cpu: Duration,
}

#[derive(Clone, Debug, Default)]
pub struct AttackerCounts {
    pub ok: u64,
    pub not_found: u64,
    pub limited: u64,
    pub refused: u64,
    pub other: u64,
    pub connections: u64,
}

impl Outcome {
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        let index = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies.get(index).copied()
    }

    pub fn rss_start(&self) -> u64 {
        self.rss_kib.first().copied().unwrap_or(0)
    }

    pub fn rss_peak(&self) -> u64 {
        self.rss_kib.iter().copied().max().unwrap_or(0)
    }
}

/// The subjects of the abuse bench: every oneloop model with the limits,
/// the loop without a rate limit (what the application alone bounds), and
/// nginx with the same limits where it is installed.
pub fn subjects(cpus: &str, pair: &str) -> Vec<Subject> {
    let limits = [
        "--max-connections-per-ip".to_string(),
        CONNECTIONS_PER_IP.to_string(),
        "--rate-per-ip".into(),
        RATE_PER_IP.to_string(),
        "--rate-burst".into(),
        RATE_BURST.to_string(),
    ];
    let oneloop = |name: &str, model: &[&str], limited: bool, cpus: &str| {
        let mut args: Vec<String> = model.iter().map(|a| a.to_string()).collect();
        if limited {
            args.extend(limits.iter().cloned());
        } else {
            args.extend([
                "--max-connections-per-ip".to_string(),
                CONNECTIONS_PER_IP.to_string(),
            ]);
        }
        Subject {
            name: name.to_string(),
            kind: Kind::Oneloop(args),
            cpus: cpus.to_string(),
            tls: false,
        }
    };
    let mut subjects = vec![
        oneloop("oneloop loop", &[], true, cpus),
        oneloop("oneloop threads", &["--model", "threads"], true, cpus),
        oneloop(
            "oneloop pool",
            &["--model", "pool", "--threads", "64"],
            true,
            cpus,
        ),
        oneloop("oneloop loop x2", &["--workers", "2"], true, pair),
        oneloop("oneloop loop, no rate", &[], false, cpus),
    ];
    if machine::on_path("nginx") {
        subjects.push(Subject {
            name: "nginx".into(),
            kind: Kind::NginxLimited,
            cpus: cpus.to_string(),
            tls: false,
        });
    }
    subjects
}

/// Runs every scenario on one started subject.
pub fn measure(
    subject: &Subject,
    server: &mut Running,
    duration: Duration,
) -> Result<Vec<Outcome>, String> {
    let address = SocketAddr::from(([127, 0, 0, 1], server.port));
    let mut outcomes = Vec::new();
    for attack in Attack::ALL {
        let pids = server
            .verified()
            .map_err(|e| format!("{} before {}: {e}", subject.name, attack.name()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let cpu_before = procs::cpu_time(&pids);
        let sampler = {
            let (stop, pids) = (Arc::clone(&stop), pids.clone());
            std::thread::spawn(move || {
                let mut samples = vec![procs::rss_kib(&pids)];
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(SAMPLE_EVERY);
                    samples.push(procs::rss_kib(&pids));
                }
                samples
            })
        };
        let attacker = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || attack_with(attack, address, &stop))
        };
        // Let the attack take hold before the well-behaved client measures.
        std::thread::sleep(Duration::from_millis(300));
        let good = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || well_behaved(address, &stop))
        };
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        let (mut latencies, good_failures) = good.join().map_err(|_| "the good client panicked")?;
        let attacker = attacker.join().map_err(|_| "the attacker panicked")?;
        let rss_kib = sampler.join().map_err(|_| "the sampler panicked")?;
        let pids = server
            .verified()
            .map_err(|e| format!("{} after {}: {e}", subject.name, attack.name()))?;
        latencies.sort();
        let outcome = Outcome {
            subject: subject.name.clone(),
            attack,
            latencies,
            good_failures,
            attacker,
            rss_kib,
            cpu: procs::cpu_time(&pids).saturating_sub(cpu_before),
        };
        println!(
            "{:<24} {:<20} good p50 {:>7.2} ms p99 {:>7.2} ms, {} failed; RSS {} -> peak {} KiB",
            subject.name,
            attack.name(),
            ms(outcome.percentile(0.5)),
            ms(outcome.percentile(0.99)),
            outcome.good_failures,
            outcome.rss_start(),
            outcome.rss_peak()
        );
        outcomes.push(outcome);
        // What the attack left (connections closing, lingering) goes first.
        std::thread::sleep(Duration::from_millis(1500));
    }
    Ok(outcomes)
}

pub fn ms(duration: Option<Duration>) -> f64 {
    duration.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

/// A connection from `source` to `address`.
fn connect_from(source: Ipv4Addr, address: SocketAddr) -> io::Result<TcpStream> {
    // SAFETY: plain socket calls on a descriptor we own; errors are checked.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let stream = <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd);
        let bind = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(source).to_be(),
            },
            sin_zero: [0; 8],
        };
        let size = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, (&raw const bind).cast(), size) != 0 {
            return Err(io::Error::last_os_error());
        }
        let SocketAddr::V4(v4) = address else {
            return Err(io::Error::other("an IPv4 address"));
        };
        let to = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        if libc::connect(fd, (&raw const to).cast(), size) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stream)
    }
}

/// One request every [`GOOD_INTERVAL`] on a kept connection (a new one when
/// the server closes it), each timed; failures counted.
fn well_behaved(address: SocketAddr, stop: &AtomicBool) -> (Vec<Duration>, u64) {
    let request = b"GET /4k.bin HTTP/1.1\r\nHost: bench\r\n\r\n";
    let mut latencies = Vec::new();
    let mut failures = 0;
    let mut stream: Option<TcpStream> = None;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let answered = (|| -> io::Result<u16> {
            if stream.is_none() {
                let fresh = connect_from(GOOD, address)?;
                fresh.set_read_timeout(Some(GOOD_TIMEOUT))?;
                fresh.set_nodelay(true)?;
                stream = Some(fresh);
            }
            let conn = stream
                .as_mut()
                .ok_or_else(|| io::Error::other("no connection"))?;
            conn.write_all(request)?;
            read_one(conn)
        })();
        match answered {
            Ok(200) => latencies.push(started.elapsed()),
            Ok(_) | Err(_) => {
                failures += 1;
                stream = None;
            }
        }
        let spent = started.elapsed();
        if spent < GOOD_INTERVAL {
            std::thread::sleep(GOOD_INTERVAL - spent);
        }
    }
    (latencies, failures)
}

/// Reads one response (head, then Content-Length bytes); its status.
fn read_one(stream: &mut TcpStream) -> io::Result<u16> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
        if head.len() > 16 << 10 {
            return Err(io::Error::other("a head too long"));
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length: usize = text
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    Ok(status)
}

fn attack_with(attack: Attack, address: SocketAddr, stop: &AtomicBool) -> AttackerCounts {
    match attack {
        Attack::None => AttackerCounts::default(),
        Attack::Spellings => pipelined(address, stop, spelling),
        Attack::Queries => pipelined(address, stop, |n| format!("/13.txt?v={n}")),
        Attack::Missing => pipelined(address, stop, |n| format!("/missing-{n}.txt")),
        Attack::ConnectionFlood => flood(address, stop),
        Attack::SlowReaders => slow_readers(address, stop),
    }
}

/// The `n`th spelling of `/13.txt`.
fn spelling(n: u64) -> String {
    let mut path = String::from("/");
    let mut rest = n;
    while rest > 0 {
        path.push_str(["/", "./", "%2E/", "%2e/"][(rest % 4) as usize]);
        rest /= 4;
    }
    path.push_str(if n.is_multiple_of(2) {
        "%31%33.txt"
    } else {
        "1%33.txt"
    });
    path
}

/// Four connections pipelining 32 requests a write, each for `target(n)`
/// with a new `n`, as fast as the server answers.
fn pipelined(address: SocketAddr, stop: &AtomicBool, target: fn(u64) -> String) -> AttackerCounts {
    let next = Arc::new(AtomicU64::new(0));
    let counts: Vec<AttackerCounts> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let next = Arc::clone(&next);
                scope.spawn(move || {
                    let mut counts = AttackerCounts::default();
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(mut stream) = connect_from(ATTACKER, address) else {
                            std::thread::sleep(Duration::from_millis(10));
                            continue;
                        };
                        counts.connections += 1;
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                        'connection: while !stop.load(Ordering::Relaxed) {
                            let mut batch = Vec::with_capacity(32 * 64);
                            for _ in 0..32 {
                                let n = next.fetch_add(1, Ordering::Relaxed);
                                batch.extend_from_slice(
                                    format!("GET {} HTTP/1.1\r\nHost: bench\r\n\r\n", target(n))
                                        .as_bytes(),
                                );
                            }
                            if stream.write_all(&batch).is_err() {
                                break;
                            }
                            for _ in 0..32 {
                                match read_one(&mut stream) {
                                    Ok(200) => counts.ok += 1,
                                    Ok(404) => counts.not_found += 1,
                                    Ok(429) => counts.limited += 1,
                                    Ok(503) => counts.refused += 1,
                                    Ok(_) => counts.other += 1,
                                    Err(_) => break 'connection,
                                }
                            }
                        }
                    }
                    counts
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    counts
        .into_iter()
        .fold(AttackerCounts::default(), |mut all, c| {
            all.ok += c.ok;
            all.not_found += c.not_found;
            all.limited += c.limited;
            all.refused += c.refused;
            all.other += c.other;
            all.connections += c.connections;
            all
        })
}

/// Opens connections as fast as it can and holds up to 4,000 of them.
fn flood(address: SocketAddr, stop: &AtomicBool) -> AttackerCounts {
    let mut counts = AttackerCounts::default();
    let mut held = std::collections::VecDeque::new();
    while !stop.load(Ordering::Relaxed) {
        match connect_from(ATTACKER, address) {
            Ok(stream) => {
                counts.connections += 1;
                held.push_back(stream);
                if held.len() > 4000 {
                    held.pop_front();
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    counts
}

/// As many connections as the limit allows, each asking for the 1 MiB file
/// 16 times and never reading a byte.
fn slow_readers(address: SocketAddr, stop: &AtomicBool) -> AttackerCounts {
    let mut counts = AttackerCounts::default();
    let request = b"GET /1m.bin HTTP/1.1\r\nHost: bench\r\n\r\n".repeat(16);
    let mut held = Vec::new();
    for _ in 0..CONNECTIONS_PER_IP {
        if let Ok(mut stream) = connect_from(ATTACKER, address) {
            let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
            if stream.write_all(&request).is_ok() {
                counts.connections += 1;
            }
            held.push(stream);
        }
    }
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    counts
}

/// The markdown of an abuse run: the method, then one table per attack.
pub fn markdown(
    outcomes: &[Outcome],
    duration: Duration,
    stamp: &str,
    commit: &str,
    configs: &[(String, String)],
) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Generated by `make bench-abuse` (bench/src/abuse.rs) on {stamp}, commit {commit}. \
         Each scenario runs {} s per subject; the machine is shared and noisy, so read the \
         ratios within a row group, not absolute figures across runs.\n\n",
        duration.as_secs()
    ));
    out.push_str(&format!(
        "Every subject runs with the same limits: {CONNECTIONS_PER_IP} connections and \
         {RATE_PER_IP} requests a second (a burst of {RATE_BURST}) per client address, as \
         `--max-connections-per-ip {CONNECTIONS_PER_IP} --rate-per-ip {RATE_PER_IP} --rate-burst \
         {RATE_BURST}` and nginx's `limit_conn` and `limit_req ... burst={RATE_BURST} nodelay`; \
         `oneloop loop, no rate` has the connection cap only, to show what the application \
         bounds by itself. The well-behaved client (127.0.0.2) asks for the 4 KiB file every \
         5 ms on a kept connection; the attacker comes from 127.0.0.3. RSS is sampled every \
         250 ms.\n\n"
    ));
    out.push_str("| attack | what the attacker does |\n|---|---|\n");
    for attack in Attack::ALL {
        out.push_str(&format!("| {} | {} |\n", attack.name(), attack.describe()));
    }
    let baseline = |subject: &str| {
        outcomes
            .iter()
            .find(|o| o.subject == subject && o.attack == Attack::None)
    };
    for attack in Attack::ALL {
        out.push_str(&format!("\n#### {}\n\n", attack.name()));
        out.push_str(
            "| subject | good p50 ms | good p99 ms | p99 vs no attack | good failed | \
             attacker answered | 404 | 429 | 503 | attacker connections | RSS start MiB | \
             RSS peak MiB | server CPU s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for outcome in outcomes.iter().filter(|o| o.attack == attack) {
            let ratio = baseline(&outcome.subject)
                .and_then(|b| {
                    let (now, then) = (outcome.percentile(0.99)?, b.percentile(0.99)?);
                    Some(now.as_secs_f64() / then.as_secs_f64().max(1e-9))
                })
                .map_or("-".to_string(), |r| format!("{r:.2}"));
            let a = &outcome.attacker;
            out.push_str(&format!(
                "| {} | {:.2} | {:.2} | {ratio} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.2} |\n",
                outcome.subject,
                ms(outcome.percentile(0.5)),
                ms(outcome.percentile(0.99)),
                outcome.good_failures,
                a.ok,
                a.not_found,
                a.limited,
                a.refused,
                a.connections,
                outcome.rss_start() as f64 / 1024.0,
                outcome.rss_peak() as f64 / 1024.0,
                outcome.cpu.as_secs_f64()
            ));
        }
    }
    // What the tables mean, written by hand after reading a run.
    if let Ok(notes) = std::fs::read_to_string("bench/abuse-notes.md") {
        out.push('\n');
        out.push_str(notes.trim_end());
        out.push('\n');
    }
    out.push_str("\n<details><summary>Configurations</summary>\n\n");
    for (name, config) in configs {
        out.push_str(&format!("{name}:\n\n```\n{config}\n```\n\n"));
    }
    out.push_str("</details>\n");
    out
}

/// RSS over time, one row per sample, for every subject and attack.
pub fn rss_csv(outcomes: &[Outcome]) -> String {
    let mut csv = String::from("subject,attack,seconds,rss_kib\n");
    for outcome in outcomes {
        for (i, kib) in outcome.rss_kib.iter().enumerate() {
            let seconds = i as f64 * SAMPLE_EVERY.as_secs_f64();
            csv.push_str(&format!(
                "{},{},{seconds:.2},{kib}\n",
                outcome.subject,
                outcome.attack.name()
            ));
        }
    }
    csv
}

/// Replaces the section that starts with `heading` in `docs` (up to the next
/// heading of the same level) with `heading` and `body`, or appends it.
pub fn replace_section(docs: &str, heading: &str, body: &str) -> String {
    let section = format!("{heading}\n\n{body}");
    let Some(start) = docs.find(&format!("{heading}\n")) else {
        return format!("{}\n\n{section}", docs.trim_end());
    };
    let level = heading.split(' ').next().unwrap_or("##");
    let after = start + heading.len();
    let end = docs[after..]
        .find(&format!("\n{level} "))
        .map_or(docs.len(), |i| after + i + 1);
    format!("{}{section}\n{}", &docs[..start], &docs[end..])
}

/// Where the abuse section of the docs lives, so that the full bench can
/// keep it when it rewrites the rest.
pub const SECTION: &str = "## Under attack";

/// The section under `heading` as the last run of its bench wrote it into
/// `docs`, if any.
pub fn existing_section(docs: &Path, heading: &str) -> Option<String> {
    let text = std::fs::read_to_string(docs).ok()?;
    let start = text.find(&format!("{heading}\n"))?;
    let after = start + heading.len();
    let end = text[after..]
        .find("\n## ")
        .map_or(text.len(), |i| after + i + 1);
    Some(text[start..end].trim_end().to_string())
}

/// The folder for this run's results.
pub fn results_dir(results: &Path, stamp: &str) -> PathBuf {
    results.join(format!("{stamp}-abuse"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_are_distinct_and_name_the_same_file() {
        let all: std::collections::HashSet<String> = (0..1000).map(spelling).collect();
        assert_eq!(all.len(), 1000);
        assert!(
            all.iter()
                .all(|s| s.ends_with(".txt") && s.starts_with('/'))
        );
        assert_eq!(spelling(0), "/%31%33.txt");
        assert_eq!(spelling(5), "/././1%33.txt");
    }

    #[test]
    fn a_section_is_replaced_in_place_or_appended() {
        let docs = "# B\n\n## A\n\nold a\n\n## Under attack\n\nold\n\n## C\n\nc\n";
        let new = replace_section(docs, SECTION, "new\n");
        assert_eq!(
            new,
            "# B\n\n## A\n\nold a\n\n## Under attack\n\nnew\n\n## C\n\nc\n"
        );
        let appended = replace_section("# B\n\nb\n", SECTION, "new\n");
        assert_eq!(appended, "# B\n\nb\n\n## Under attack\n\nnew\n");
    }
}
