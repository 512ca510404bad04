//! Driving wrk and reading what it prints.

use std::io;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::machine::on_path;
use crate::procs;
use crate::subjects::Running;

/// The lua script for the pipelined workload: every "request" wrk sends is 16
/// requests in one write; wrk counts each response.
pub const PIPELINE_SCRIPT: &str = r#"-- 16 requests per write
init = function(args)
  local requests = {}
  for i = 1, 16 do
    requests[i] = wrk.format(nil, wrk.path)
  end
  batch = table.concat(requests)
end

request = function()
  return batch
end
"#;

/// One wrk run, as the report needs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WrkResult {
    pub requests_per_sec: f64,
    pub requests: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// connect + read + write + timeout errors.
    pub socket_errors: u64,
    pub non_2xx: u64,
}

pub struct WrkRun<'a> {
    pub url: &'a str,
    pub connections: usize,
    pub duration_secs: u64,
    pub pipeline_script: Option<&'a Path>,
    /// Sends `Connection: close`: a new connection (and handshake) each request.
    pub close: bool,
    /// CPUs for wrk (`taskset -c`).
    pub cpus: &'a str,
    /// wrk's threads: one per CPU it is given.
    pub threads: usize,
}

impl WrkRun<'_> {
    /// The command line, for the report.
    pub fn command_line(&self) -> String {
        let script = self
            .pipeline_script
            .map(|p| {
                format!(
                    " -s {}",
                    p.file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                )
            })
            .unwrap_or_default();
        let close = if self.close {
            " -H 'Connection: close'"
        } else {
            ""
        };
        format!(
            "taskset -c {} wrk -t{} -c{} -d{}s --latency{close}{script} {}",
            self.cpus, self.threads, self.connections, self.duration_secs, self.url
        )
    }

    pub fn run(&self) -> io::Result<WrkResult> {
        let mut command = if on_path("taskset") {
            let mut c = Command::new("taskset");
            c.args(["-c", self.cpus, "wrk"]);
            c
        } else {
            Command::new("wrk")
        };
        // Gone with the harness, however it ends.
        crate::lifeline::tie(&mut command);
        command.args([
            &format!("-t{}", self.threads),
            &format!("-c{}", self.connections),
            &format!("-d{}s", self.duration_secs),
            "--timeout",
            "10s",
            "--latency",
        ]);
        if self.close {
            command.args(["-H", "Connection: close"]);
        }
        if let Some(script) = self.pipeline_script {
            command.args(["-s", &script.display().to_string()]);
        }
        command.arg(self.url);
        let output = command.output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        parse(&text).ok_or_else(|| {
            io::Error::other(format!(
                "could not read wrk's output:\n{text}\n{}",
                String::from_utf8_lossy(&output.stderr)
            ))
        })
    }
}

/// Parses wrk 4's report (run with `--latency`).
pub fn parse(text: &str) -> Option<WrkResult> {
    let mut result = WrkResult::default();
    let mut in_distribution = false;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["Latency", _avg, _stdev, max, ..] => result.max = duration(max)?,
            ["Latency", "Distribution"] => in_distribution = true,
            ["50%", value] if in_distribution => result.p50 = duration(value)?,
            ["99%", value] if in_distribution => result.p99 = duration(value)?,
            [requests, "requests", "in", ..] => result.requests = requests.parse().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                result.socket_errors = rest
                    .iter()
                    .filter_map(|f| f.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => result.non_2xx = n.parse().ok()?,
            ["Requests/sec:", n] => result.requests_per_sec = n.parse().ok()?,
            _ => {}
        }
    }
    (result.requests_per_sec > 0.0 || result.requests == 0).then_some(result)
}

/// `1.05ms`, `263.41us`, `2.00s`, `1.00m`
fn duration(text: &str) -> Option<Duration> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        return None;
    };
    number
        .parse::<f64>()
        .ok()
        .map(|n| Duration::from_secs_f64(n * scale))
}

/// What one run of 50 connections for `duration` seconds on `path` cost the
/// server: requests per second of its CPU time (what a request costs,
/// whatever wrk managed to send), and requests per second of wall time.
pub struct Sample {
    pub per_cpu: f64,
    pub rps: f64,
}

/// Measures `server` on `path` with wrk (one thread, 50 connections) on
/// `wrk_cpus`; a run with errors or non-2xx answers is refused, since it
/// would measure a failure.
pub fn per_cpu_second(
    server: &mut Running,
    path: &str,
    duration: u64,
    wrk_cpus: &str,
) -> Result<Sample, String> {
    let run = WrkRun {
        url: &server.url(path, false),
        connections: 50,
        duration_secs: duration,
        pipeline_script: None,
        close: false,
        cpus: wrk_cpus,
        threads: 1,
    };
    let pids = server.verified().map_err(|e| e.to_string())?;
    let before = procs::cpu_time(&pids);
    let result = run.run().map_err(|e| format!("wrk: {e}"))?;
    let cpu = procs::cpu_time(&pids).saturating_sub(before);
    if result.non_2xx > 0 || result.socket_errors > 0 {
        return Err(format!(
            "{} non-2xx answers, {} socket errors: not measuring a failure",
            result.non_2xx, result.socket_errors
        ));
    }
    Ok(Sample {
        per_cpu: result.requests as f64 / cpu.as_secs_f64().max(1e-3),
        rps: result.requests_per_sec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running 10s test @ http://127.0.0.1:8080/13.txt
  1 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.10ms  263.41us    5.32ms   82.60%
    Req/Sec    91.54k     4.23k   97.93k    80.00%
  Latency Distribution
     50%    1.05ms
     75%    1.20ms
     90%    1.38ms
     99%    2.00ms
  912115 requests in 10.01s, 144.40MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 12
Requests/sec:  91121.65
Transfer/sec:     14.43MB
";

    #[test]
    fn reads_wrk_reports() {
        let r = parse(SAMPLE).unwrap();
        assert_eq!(r.requests, 912_115);
        assert!((r.requests_per_sec - 91_121.65).abs() < 1e-6);
        assert_eq!(r.p50, Duration::from_micros(1050));
        assert_eq!(r.p99, Duration::from_millis(2));
        assert_eq!(r.max, Duration::from_micros(5320));
        assert_eq!(r.socket_errors, 6);
        assert_eq!(r.non_2xx, 12);
    }

    #[test]
    fn units() {
        assert_eq!(duration("263.41us"), Some(Duration::from_nanos(263_410)));
        assert_eq!(duration("1.50s"), Some(Duration::from_millis(1500)));
        assert_eq!(duration("2.00m"), Some(Duration::from_secs(120)));
        assert_eq!(duration("12"), None);
    }
}
