//! `make bench-rules`: what a site's rules cost a request.
//!
//! The same oneloop, one loop pinned to core 0, wrk on core 1, serves the
//! same files two ways: from the positional ROOT alone (no configuration
//! file, no rules), and from a site of a configuration file with twenty
//! rules of every kind (headers on every path, redirects, try-files, CORS,
//! per-path options), the path measured matching the first, as a real
//! site's security headers do. Rounds are interleaved so that drift on a
//! shared machine falls on both alike; what is reported is requests per
//! second of server CPU time (what a request costs the server, whatever wrk
//! managed to send), its median, and the ratio of the two.

use std::fmt::Write as _;
use std::path::Path;

use crate::machine::Machine;
use crate::subjects::{Fixture, Kind, Subject};
use crate::wrk;

/// Where its section of docs/benchmarks.md lives.
pub const SECTION: &str = "## The cost of a site's rules";

pub struct Setup<'a> {
    pub machine: Machine,
    pub stamp: String,
    pub duration: u64,
    pub rounds: usize,
    pub fixture: &'a Fixture,
    pub servers_dir: &'a Path,
    pub binaries: &'a Path,
}

/// A site of twenty rules, as a real site has them: security headers on
/// every path (the one measured), caching for assets, redirects of old
/// posts, an SPA section, CORS, per-path options.
pub fn config(site: &Path) -> String {
    let mut text = format!(
        "[[site]]\nhosts = [\"127.0.0.1\", \"localhost\"]\nroot = \"{}\"\n\n\
         [[site.rule]]\npath = \"/*\"\nheaders = {{ \"X-Content-Type-Options\" = \"nosniff\", \
         \"Referrer-Policy\" = \"strict-origin-when-cross-origin\", \"Cache-Control\" = \"no-cache\" }}\n\n\
         [[site.rule]]\npath = \"/assets/*\"\nheaders = {{ \"Cache-Control\" = \"public, max-age=31536000, immutable\" }}\n\n\
         [[site.rule]]\npath = \"/app/*\"\ntry-files = [\"{{path}}\", \"/app/index.html\"]\n\n\
         [[site.rule]]\npath = \"/api/*\"\ncors-origins = [\"https://app.example.org\"]\n\n\
         [[site.rule]]\npath = \"/files/*\"\nlisting = true\n\n\
         [[site.rule]]\npath = \"/.well-known/*\"\nhidden = true\n\n\
         [[site.rule]]\npath = \"/raw/*\"\ncompress = false\n\n",
        site.display()
    );
    for i in 1..=13 {
        let _ = write!(
            text,
            "[[site.rule]]\npath = \"/old/post-{i}\"\nredirect = \"/blog/2026/{{rest}}post-{i}/\"\nstatus = 308\n\n"
        );
    }
    text
}

struct Row {
    rules: bool,
    path: &'static str,
    per_cpu: Vec<f64>,
    rps: Vec<f64>,
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// Runs the plan and returns its report (markdown).
pub fn run(setup: &Setup<'_>) -> Result<String, String> {
    let config_path = setup.servers_dir.join("rules.toml");
    std::fs::create_dir_all(setup.servers_dir).map_err(|e| e.to_string())?;
    std::fs::write(&config_path, config(&setup.fixture.site)).map_err(|e| e.to_string())?;
    let (server_cpus, wrk_cpus) = if setup.machine.cores >= 2 {
        ("0", "1")
    } else {
        ("0", "0")
    };
    let paths = ["/13.txt", "/4k.bin"];
    let mut rows: Vec<Row> = Vec::new();
    for round in 1..=setup.rounds {
        for rules in [false, true] {
            let extra = match rules {
                true => vec!["--config".into(), config_path.display().to_string()],
                false => Vec::new(),
            };
            let subject = Subject {
                name: if rules {
                    "oneloop, 20 rules"
                } else {
                    "oneloop, no rules"
                }
                .into(),
                kind: Kind::Oneloop(extra),
                cpus: server_cpus.into(),
                tls: false,
            };
            let mut server = subject
                .start(setup.fixture, setup.servers_dir, setup.binaries)
                .map_err(|e| format!("starting {}: {e}", subject.name))?;
            for path in paths {
                let sample = wrk::per_cpu_second(&mut server, path, setup.duration, wrk_cpus)
                    .map_err(|e| format!("{} {path}: {e}", subject.name))?;
                let (per_cpu, rps) = (sample.per_cpu, sample.rps);
                println!(
                    "round {round} {} {path}: {rps:.0} req/s, {per_cpu:.0} req per CPU-s",
                    subject.name
                );
                let row = match rows.iter().position(|r| r.rules == rules && r.path == path) {
                    Some(i) => &mut rows[i],
                    None => {
                        rows.push(Row {
                            rules,
                            path,
                            per_cpu: Vec::new(),
                            rps: Vec::new(),
                        });
                        let last = rows.len() - 1;
                        &mut rows[last]
                    }
                };
                row.per_cpu.push(per_cpu);
                row.rps.push(rps);
            }
        }
    }
    Ok(report(setup, &rows))
}

fn report(setup: &Setup<'_>, rows: &[Row]) -> String {
    let m = &setup.machine;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Generated by `make bench-rules` (`oneloop-bench --rules --duration {} --rounds {}`) on {} \
         ({}, {} cores, kernel {}, commit {}): one loop on core 0, wrk (1 thread, 50 connections) \
         on core 1, rounds interleaved, medians. The configuration measured is `bench/src/rules.rs`'s \
         (twenty rules; the files measured match the `/*` rule that sets three headers).\n",
        setup.duration, setup.rounds, setup.stamp, m.cpu, m.cores, m.kernel, m.commit
    );
    let _ = writeln!(
        md,
        "| file | no rules: req/s | req per CPU-s | 20 rules: req/s | req per CPU-s | ratio per CPU-s |\n\
         |---|---:|---:|---:|---:|---:|"
    );
    for path in ["/13.txt", "/4k.bin"] {
        let find = |rules| rows.iter().find(|r| r.rules == rules && r.path == path);
        let (Some(bare), Some(ruled)) = (find(false), find(true)) else {
            continue;
        };
        let (bare_cpu, ruled_cpu) = (median(&bare.per_cpu), median(&ruled.per_cpu));
        let _ = writeln!(
            md,
            "| {path} | {:.0} | {bare_cpu:.0} | {:.0} | {ruled_cpu:.0} | {:.3} |",
            median(&bare.rps),
            median(&ruled.rps),
            if bare_cpu > 0.0 {
                ruled_cpu / bare_cpu
            } else {
                0.0
            },
        );
    }
    let _ = writeln!(
        md,
        "\nThe goal is a ratio of 0.95 or more: rules are compiled once per load, and a request \
         costs one normalised path, one comparison per rule, and the fields set."
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_has_twenty_rules() {
        let text = config(Path::new("/srv/site"));
        assert_eq!(text.matches("[[site.rule]]").count(), 20);
    }
}
