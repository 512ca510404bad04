//! `make bench-profiles`: what a small host gets from the release build.
//!
//! Two tables. The stripped release binary's size for each Linux target this
//! machine can link (x86-64, and aarch64 and 32-bit ARM through Debian's
//! cross gcc; macOS and FreeBSD binaries cannot be linked here). And, on
//! x86-64, each variation of the release profile's `opt-level`, `lto`,
//! `codegen-units` and `panic` against the shipped one: its stripped size and
//! its requests per second of server CPU time, one loop pinned to core 0 and
//! wrk to core 1, rounds interleaved so that drift on a shared machine falls
//! on every variant alike, medians and their ratio to the shipped build.
//!
//! Each variant is the shipped profile with cargo's `CARGO_PROFILE_RELEASE_*`
//! variables overriding one setting, built into a target folder of its own
//! (`target/profiles/`), so nothing in Cargo.toml changes to measure it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::machine::{Machine, on_path};
use crate::rules::median;
use crate::subjects::{Fixture, Kind, Subject};
use crate::wrk;

/// Where its section of docs/benchmarks.md lives.
pub const SECTION: &str = "## Small hosts: binary size and build settings";

/// One release profile: the shipped one with some settings overridden.
struct Variant {
    name: &'static str,
    /// Folder name under target/profiles/.
    slug: &'static str,
    /// `CARGO_PROFILE_RELEASE_<KEY>` overrides.
    overrides: &'static [(&'static str, &'static str)],
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "shipped: opt-level 3, fat LTO, 1 codegen unit, panic unwind",
        slug: "shipped",
        overrides: &[],
    },
    Variant {
        name: "cargo's default release: no LTO, 16 codegen units",
        slug: "cargo-default",
        overrides: &[("LTO", "false"), ("CODEGEN_UNITS", "16")],
    },
    Variant {
        name: "thin LTO",
        slug: "thin-lto",
        overrides: &[("LTO", "thin")],
    },
    Variant {
        name: "opt-level \"s\"",
        slug: "opt-s",
        overrides: &[("OPT_LEVEL", "s")],
    },
    Variant {
        name: "opt-level \"z\"",
        slug: "opt-z",
        overrides: &[("OPT_LEVEL", "z")],
    },
    Variant {
        name: "panic = \"abort\"",
        slug: "panic-abort",
        overrides: &[("PANIC", "abort")],
    },
];

/// A Linux target and the cross gcc that compiles ring's C and links it.
const TARGETS: &[(&str, Option<&str>)] = &[
    ("x86_64-unknown-linux-gnu", None),
    ("aarch64-unknown-linux-gnu", Some("aarch64-linux-gnu-gcc")),
    (
        "armv7-unknown-linux-gnueabihf",
        Some("arm-linux-gnueabihf-gcc"),
    ),
];

pub struct Setup<'a> {
    pub machine: Machine,
    pub stamp: String,
    pub duration: u64,
    pub rounds: usize,
    pub fixture: &'a Fixture,
    pub servers_dir: &'a Path,
    pub workspace: &'a Path,
}

/// Builds the release binary with `overrides`, stripped, into `target_dir`,
/// for `target` (None: this machine's); returns the binary's path.
fn build(
    workspace: &Path,
    target_dir: &Path,
    target: Option<(&str, &str)>,
    overrides: &[(&str, &str)],
) -> Result<PathBuf, String> {
    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "oneloop",
            "--target-dir",
        ])
        .arg(target_dir)
        // Sizes are of what a host would install: symbols stripped.
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols");
    for (key, value) in overrides {
        cargo.env(format!("CARGO_PROFILE_RELEASE_{key}"), value);
    }
    let mut out = target_dir.join("release");
    if let Some((triple, gcc)) = target {
        let var = triple.replace('-', "_");
        cargo
            .args(["--target", triple])
            .env(format!("CC_{var}"), gcc)
            .env(format!("CARGO_TARGET_{}_LINKER", var.to_uppercase()), gcc);
        out = target_dir.join(triple).join("release");
    }
    let status = cargo.status().map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build ({overrides:?}, {target:?}) failed"));
    }
    Ok(out.join("oneloop"))
}

fn size_of(binary: &Path) -> Result<u64, String> {
    std::fs::metadata(binary)
        .map(|m| m.len())
        .map_err(|e| format!("{}: {e}", binary.display()))
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// One variant's build and what was measured of it.
struct Measured {
    variant: &'static Variant,
    binaries: PathBuf,
    size: u64,
    /// Per path measured: requests per CPU-second, one per round.
    per_cpu: Vec<Vec<f64>>,
}

const PATHS: [&str; 2] = ["/13.txt", "/4k.bin"];

/// Builds, measures and returns the report (markdown).
pub fn run(setup: &Setup<'_>) -> Result<String, String> {
    let base = setup.workspace.join("target/profiles");
    let mut targets = Vec::new();
    for &(triple, gcc) in TARGETS {
        let row = match gcc {
            Some(gcc) if !on_path(gcc) => Err(format!("not built here: no {gcc}")),
            Some(gcc) => {
                println!("building the shipped profile for {triple}...");
                build(
                    setup.workspace,
                    &base.join("cross"),
                    Some((triple, gcc)),
                    &[],
                )
                .and_then(|b| size_of(&b))
            }
            None => Ok(0), // the shipped x86-64 build below
        };
        targets.push((triple, row));
    }
    let mut measured = Vec::new();
    for variant in VARIANTS {
        println!("building: {}...", variant.name);
        let binary = build(
            setup.workspace,
            &base.join(variant.slug),
            None,
            variant.overrides,
        )?;
        let size = size_of(&binary)?;
        let binaries = binary.parent().map(Path::to_path_buf).unwrap_or_default();
        measured.push(Measured {
            variant,
            binaries,
            size,
            per_cpu: vec![Vec::new(); PATHS.len()],
        });
    }
    if let Some((_, native)) = targets.first_mut() {
        *native = Ok(measured.first().map_or(0, |m| m.size));
    }

    let (server_cpus, wrk_cpus) = if setup.machine.cores >= 2 {
        ("0", "1")
    } else {
        ("0", "0")
    };
    for round in 1..=setup.rounds {
        for m in &mut measured {
            let subject = Subject {
                name: m.variant.slug.into(),
                kind: Kind::Oneloop(Vec::new()),
                cpus: server_cpus.into(),
                tls: false,
            };
            let mut server = subject
                .start(setup.fixture, setup.servers_dir, &m.binaries)
                .map_err(|e| format!("starting {}: {e}", m.variant.slug))?;
            for (i, path) in PATHS.iter().enumerate() {
                let sample = wrk::per_cpu_second(&mut server, path, setup.duration, wrk_cpus)
                    .map_err(|e| format!("{} {path}: {e}", m.variant.slug))?;
                println!(
                    "round {round} {} {path}: {:.0} req/s, {:.0} req per CPU-s",
                    m.variant.slug, sample.rps, sample.per_cpu
                );
                m.per_cpu[i].push(sample.per_cpu);
            }
        }
    }
    Ok(report(setup, &targets, &measured))
}

fn report(setup: &Setup<'_>, targets: &[(&str, Result<u64, String>)], rows: &[Measured]) -> String {
    let m = &setup.machine;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Generated by `make bench-profiles` (`oneloop-bench --profiles --duration {} --rounds {}`) \
         on {} ({}, {} cores, kernel {}, commit {}). Sizes are of the release binary with symbols \
         stripped (`CARGO_PROFILE_RELEASE_STRIP=symbols`), as a host would install it.\n",
        setup.duration, setup.rounds, setup.stamp, m.cpu, m.cores, m.kernel, m.commit
    );
    let _ = writeln!(
        md,
        "| target | stripped size (shipped profile) |\n|---|---:|"
    );
    for (triple, size) in targets {
        let cell = match size {
            Ok(bytes) => mib(*bytes),
            Err(why) => why.clone(),
        };
        let _ = writeln!(md, "| {triple} | {cell} |");
    }
    let _ = writeln!(
        md,
        "| aarch64-apple-darwin, x86_64-unknown-freebsd | type-checked only: no linker for them here |\n"
    );
    let _ = writeln!(
        md,
        "Each setting against the shipped profile on x86-64: one loop on core 0, wrk (1 thread, \
         50 connections) on core 1, rounds interleaved, medians of requests per second of server \
         CPU time.\n"
    );
    let _ = writeln!(
        md,
        "| build | stripped size | /13.txt req per CPU-s | ratio | /4k.bin req per CPU-s | ratio |\n\
         |---|---:|---:|---:|---:|---:|"
    );
    let shipped: Vec<f64> = rows
        .first()
        .map(|r| r.per_cpu.iter().map(|v| median(v)).collect())
        .unwrap_or_default();
    for row in rows {
        let mut cells = String::new();
        for (i, values) in row.per_cpu.iter().enumerate() {
            let value = median(values);
            let ratio = shipped
                .get(i)
                .filter(|&&s| s > 0.0)
                .map_or(0.0, |s| value / s);
            let _ = write!(cells, " {value:.0} | {ratio:.3} |");
        }
        let _ = writeln!(md, "| {} | {} |{cells}", row.variant.name, mib(row.size));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_profile_is_measured_first_and_each_variant_changes_one_thing() {
        assert!(VARIANTS[0].overrides.is_empty(), "ratios are to the first");
        let mut slugs: Vec<_> = VARIANTS.iter().map(|v| v.slug).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(
            slugs.len(),
            VARIANTS.len(),
            "each builds in a folder of its own"
        );
    }
}
