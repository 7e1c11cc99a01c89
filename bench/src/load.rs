//! Load generation: wrk (HTTP/1.1, a Lua script cycling through the request mix, results as one JSON
//! line from wrk's `done` hook) and h2load (HTTP/2 cleartext, prior knowledge). Returns the numbers as
//! reported by the tools; it does not judge them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::workload::Request;

/// wrk's Lua script: builds every request of the mix once in `init`, cycles through them, and prints
/// the summary as JSON (latencies in microseconds).
const WRK_SCRIPT: &str = r#"
local reqs = {}
local i = 0
init = function(args)
  for line in io.lines(os.getenv("BENCH_REQUESTS")) do
    local host, path = line:match("^(%S+) (%S+)$")
    if host then
      reqs[#reqs + 1] = wrk.format("GET", path, { ["Host"] = host })
    end
  end
  i = math.random(#reqs)
end
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
"#;

/// One wrk run.
#[derive(Debug, Clone, Serialize, serde::Deserialize, Default)]
pub struct WrkResult {
    pub requests: u64,
    pub duration_us: u64,
    pub bytes: u64,
    pub errors_connect: u64,
    pub errors_read: u64,
    pub errors_write: u64,
    /// Responses that were not 2xx/3xx.
    pub errors_status: u64,
    pub errors_timeout: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl WrkResult {
    pub fn rps(&self) -> f64 {
        if self.duration_us == 0 {
            return 0.0;
        }
        self.requests as f64 * 1e6 / self.duration_us as f64
    }

    /// Failed requests of any kind (socket errors, timeouts, non-2xx/3xx).
    pub fn failures(&self) -> u64 {
        self.errors_connect + self.errors_read + self.errors_write + self.errors_status + self.errors_timeout
    }
}

/// Files the load generators read.
pub struct LoadFiles {
    pub wrk_script: PathBuf,
    pub requests: PathBuf,
}

impl LoadFiles {
    pub fn write(dir: &Path, requests: &[Request]) -> Result<LoadFiles> {
        std::fs::create_dir_all(dir)?;
        let wrk_script = dir.join("mix.lua");
        std::fs::write(&wrk_script, WRK_SCRIPT)?;
        let requests_path = dir.join("requests.txt");
        let text: String = requests.iter().map(|r| format!("{} {}\n", r.authority, r.path)).collect();
        std::fs::write(&requests_path, text)?;
        Ok(LoadFiles { wrk_script, requests: requests_path })
    }
}

/// The wrk command line (also printed into BENCHMARKS.md).
pub fn wrk_command(files: &LoadFiles, port: u16, connections: u32, seconds: f64) -> Command {
    let mut command = Command::new("wrk");
    command
        .args(["-t1", &format!("-c{connections}"), &format!("-d{}s", seconds.max(1.0).round() as u64), "--timeout", "5s", "-s"])
        .arg(&files.wrk_script)
        .arg(format!("http://127.0.0.1:{port}/"))
        .env("BENCH_REQUESTS", &files.requests);
    command
}

pub fn run_wrk(files: &LoadFiles, port: u16, connections: u32, seconds: f64) -> Result<WrkResult> {
    let output = wrk_command(files, port, connections, seconds).output().context("run wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH_JSON "))
        .with_context(|| format!("wrk printed no result ({}): {stdout}\n{}", output.status, String::from_utf8_lossy(&output.stderr)))?;
    serde_json::from_str(line).with_context(|| format!("parse wrk result {line}"))
}

/// One h2load run (h2load reports mean/sd, not percentiles).
#[derive(Debug, Clone, Serialize, serde::Deserialize, Default)]
pub struct H2Result {
    pub rps: f64,
    pub succeeded: u64,
    pub failed: u64,
    pub non_2xx: u64,
    pub mean_us: f64,
    pub max_us: f64,
}

/// `h2load` over h2c with one `:authority` and the given paths, cycled.
pub fn run_h2load(dir: &Path, port: u16, authority: &str, paths: &[String], clients: u32, seconds: f64) -> Result<H2Result> {
    let uris = dir.join("h2-uris.txt");
    let text: String = paths.iter().map(|p| format!("http://127.0.0.1:{port}{p}\n")).collect();
    std::fs::write(&uris, text)?;
    let output = Command::new("h2load")
        .args(["-t1", &format!("-c{clients}"), "-m1", &format!("-D{}", seconds.max(1.0).round() as u64), "--warm-up-time=1"])
        .args(["-H", &format!(":authority: {authority}"), "-i"])
        .arg(&uris)
        .output()
        .context("run h2load")?;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    parse_h2load(&stdout).with_context(|| format!("parse h2load output: {stdout}\n{}", String::from_utf8_lossy(&output.stderr)))
}

fn duration_us(text: &str) -> Option<f64> {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let value: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => value,
        "ms" => value * 1e3,
        "s" => value * 1e6,
        _ => return None,
    })
}

pub fn parse_h2load(stdout: &str) -> Option<H2Result> {
    let mut result = H2Result::default();
    for line in stdout.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("finished in ") {
            result.rps = rest.split(", ").nth(1)?.trim_end_matches(" req/s").parse().ok()?;
        } else if let Some(rest) = line.strip_prefix("requests: ") {
            for part in rest.split(", ") {
                let mut words = part.split_whitespace();
                let n: u64 = words.next()?.parse().ok()?;
                match words.next()? {
                    "succeeded" => result.succeeded = n,
                    "failed" => result.failed = n,
                    _ => {}
                }
            }
        } else if let Some(rest) = line.strip_prefix("status codes: ") {
            for part in rest.split(", ") {
                let mut words = part.split_whitespace();
                let n: u64 = words.next()?.parse().ok()?;
                if words.next()? != "2xx" {
                    result.non_2xx += n;
                }
            }
        } else if let Some(rest) = line.strip_prefix("time for request:") {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            result.max_us = duration_us(fields.get(1)?)?;
            result.mean_us = duration_us(fields.get(2)?)?;
        }
    }
    (result.succeeded > 0).then_some(result)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn h2load_summary_is_parsed() {
        let out = "finished in 5.00s, 12345.60 req/s, 1.20MB/s\n\
                   requests: 61728 total, 61744 started, 61728 done, 61700 succeeded, 28 failed, 0 errored, 0 timeout\n\
                   status codes: 61700 2xx, 0 3xx, 28 4xx, 0 5xx\n\
                   time for request:      410us     12.30ms      1.24ms       543us    89.20%\n";
        let r = parse_h2load(out).unwrap();
        assert!((r.rps - 12345.6).abs() < 1e-6);
        assert_eq!((r.succeeded, r.failed, r.non_2xx), (61700, 28, 28));
        assert!((r.max_us - 12300.0).abs() < 1e-6);
        assert!((r.mean_us - 1240.0).abs() < 1e-6);
    }
}
