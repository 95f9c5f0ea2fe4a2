//! The standard `process_*` metrics (the names and meanings of client_golang's process
//! collector, which dashboards and alerts already query), read from `/proc/self` at each
//! scrape.
//!
//! Read here rather than through a crate: the maintained collectors (`metrics-process`, the
//! `prometheus` crate's `process` feature) export to other metrics libraries, not to
//! prometheus-client, and `procfs` would bring a dependency tree for five files read as
//! text. On a system without `/proc` (not Linux) the metrics are left out.

use std::path::PathBuf;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second in `/proc/<pid>/stat`: `USER_HZ`, part of Linux's ABI and 100 on
/// every architecture mcpguard is built for (x86_64, aarch64), whatever the kernel's HZ.
const USER_HZ: f64 = 100.0;

/// What one scrape read; each field is `None` when its file or line was not there.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: Option<f64>,
    pub resident_memory_bytes: Option<i64>,
    pub virtual_memory_bytes: Option<i64>,
    pub open_fds: Option<i64>,
    pub max_fds: Option<i64>,
    pub start_time_seconds: Option<f64>,
    pub threads: Option<i64>,
}

/// Reads [`ProcessStats`] under `root` (`/proc` in production).
#[derive(Debug)]
pub struct ProcessCollector {
    root: PathBuf,
}

impl Default for ProcessCollector {
    fn default() -> Self {
        ProcessCollector {
            root: PathBuf::from("/proc"),
        }
    }
}

impl ProcessCollector {
    /// A collector reading `root/self/…` and `root/stat` (tests pass a directory of fixtures).
    pub fn with_root(root: impl Into<PathBuf>) -> ProcessCollector {
        ProcessCollector { root: root.into() }
    }

    pub fn read(&self) -> ProcessStats {
        let read = |path: &str| std::fs::read_to_string(self.root.join(path)).ok();
        let stat = read("self/stat");
        let fields = stat.as_deref().and_then(stat_fields);
        // Fields after the command name, numbered as proc(5) numbers them from 3 (`state`).
        let field = |number: usize| -> Option<f64> {
            fields.as_ref()?.get(number.checked_sub(3)?)?.parse().ok()
        };
        let status = read("self/status");
        let status_kib = |key: &str| -> Option<i64> {
            let line = status.as_deref()?.lines().find(|l| l.starts_with(key))?;
            let kib: i64 = line[key.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            kib.checked_mul(1024)
        };
        let boot_time = read("stat").and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("btime "))?;
            line["btime ".len()..].trim().parse::<f64>().ok()
        });
        ProcessStats {
            // utime + stime.
            cpu_seconds: field(14)
                .zip(field(15))
                .map(|(user, system)| (user + system) / USER_HZ),
            resident_memory_bytes: status_kib("VmRSS:"),
            virtual_memory_bytes: status_kib("VmSize:"),
            open_fds: std::fs::read_dir(self.root.join("self/fd"))
                .ok()
                .map(|entries| i64::try_from(entries.count()).unwrap_or(i64::MAX)),
            max_fds: read("self/limits").and_then(|text| max_open_files(&text)),
            start_time_seconds: boot_time
                .zip(field(22))
                .map(|(boot, ticks)| boot + ticks / USER_HZ),
            threads: field(20).map(|threads| threads as i64),
        }
    }
}

/// The fields of a `stat` line after `(comm)`: the command name may hold spaces and
/// parentheses, so it ends at the last `)`.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().collect())
}

/// The soft limit of `Max open files` in a `limits` file; `None` when unlimited.
fn max_open_files(limits: &str) -> Option<i64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.read();
        if let Some(seconds) = stats.cpu_seconds {
            encode_one(
                &mut encoder,
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                ConstCounter::new(seconds),
            )?;
        }
        let gauges: [(&str, &str, Option<i64>); 5] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                stats.resident_memory_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                stats.virtual_memory_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                stats.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                stats.max_fds,
            ),
            (
                "process_threads",
                "Number of OS threads in the process",
                stats.threads,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                encode_one(&mut encoder, name, help, ConstGauge::new(value))?;
            }
        }
        if let Some(start) = stats.start_time_seconds {
            encode_one(
                &mut encoder,
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                ConstGauge::new(start),
            )?;
        }
        Ok(())
    }
}

/// One family of one sample without labels.
fn encode_one(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    let metric_encoder = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(metric_encoder)
}
