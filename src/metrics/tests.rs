use std::sync::Arc;

use super::bounded::{self, OTHER};
use super::*;
use mcpguard_core::policy::Policy;

fn policies_covering(namespaces: &[&str]) -> PolicySet {
    let mut policy = Policy::embedded_default().expect("the embedded policy loads");
    policy.spec.namespaces = namespaces.iter().map(|ns| (*ns).to_owned()).collect();
    PolicySet::single(Arc::new(policy))
}

#[test]
fn a_covered_namespace_is_its_own_label() {
    let policies = policies_covering(&["mcp", "tools"]);
    assert_eq!(bounded::namespace(&policies, Some("mcp")), "mcp");
    assert_eq!(bounded::namespace(&policies, Some("tools")), "tools");
}

#[test]
fn any_other_namespace_is_other_and_none_is_empty() {
    let policies = policies_covering(&["mcp"]);
    assert_eq!(bounded::namespace(&policies, Some("default")), OTHER);
    assert_eq!(
        bounded::namespace(&policies, Some(&"n".repeat(3 * 1024 * 1024))),
        OTHER
    );
    assert_eq!(bounded::namespace(&policies, None), "");
    assert_eq!(bounded::namespace(&policies, Some("")), "");
}

#[test]
fn one_of_keeps_known_values_only() {
    const KINDS: &[&str] = &["Pod", "Deployment"];
    assert_eq!(bounded::one_of("Pod", KINDS), "Pod");
    assert_eq!(bounded::one_of("pod", KINDS), OTHER);
    assert_eq!(bounded::one_of("", KINDS), OTHER);
}

#[test]
fn denials_of_uncovered_namespaces_share_one_series() {
    let metrics = Metrics::new();
    let policies = policies_covering(&["mcp"]);
    let violation = Violation {
        check: "runAsNonRoot".into(),
        reason: "runAsNonRoot != true".into(),
        detail: String::new(),
        fields: Vec::new(),
    };
    for namespace in ["a", "b", "c", "mcp"] {
        metrics.record_denials(
            &policies,
            "mcp-restricted",
            Some(namespace),
            std::slice::from_ref(&violation),
        );
    }
    let text = metrics.encode();
    let mut series: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("mcpguard_denials_total{"))
        .collect();
    series.sort_unstable();
    assert_eq!(
        series,
        [
            r#"mcpguard_denials_total{policy="mcp-restricted",check="runAsNonRoot",namespace="mcp"} 1"#,
            r#"mcpguard_denials_total{policy="mcp-restricted",check="runAsNonRoot",namespace="other"} 3"#,
        ]
    );
}

#[test]
fn duration_buckets_end_at_the_webhook_timeouts() {
    let buckets = duration_buckets();
    assert_eq!(buckets.len(), 21);
    assert_eq!(buckets[0], 0.000_025);
    assert!((buckets[15] - 0.8192).abs() < 1e-12, "{}", buckets[15]);
    assert_eq!(buckets[16..], [1.0, 2.5, 5.0, 10.0, 30.0]);
    assert!(buckets.windows(2).all(|pair| pair[0] < pair[1]));
}

/// A `/proc` laid out as Linux lays it out, with known values.
fn fake_proc() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    let own = root.path().join("self");
    std::fs::create_dir_all(own.join("fd")).expect("fd dir");
    for fd in 0..7 {
        std::fs::write(own.join("fd").join(fd.to_string()), "").expect("fd");
    }
    // A command name with a space and a `)`: the fields start after the last `)`.
    std::fs::write(
        own.join("stat"),
        "4242 (mcp guard) ) S 1 4242 4242 0 -1 4194560 1800 0 0 0 \
         250 125 0 0 20 0 9 0 123456 98765432 3000 18446744073709551615\n",
    )
    .expect("stat");
    std::fs::write(
        own.join("status"),
        "Name:\tmcpguard\nVmPeak:\t  100000 kB\nVmSize:\t   96448 kB\nVmRSS:\t   12000 kB\nThreads:\t9\n",
    )
    .expect("status");
    std::fs::write(
        own.join("limits"),
        "Limit                     Soft Limit           Hard Limit           Units     \n\
         Max cpu time              unlimited            unlimited            seconds   \n\
         Max open files            1048576              1048576              files     \n",
    )
    .expect("limits");
    std::fs::write(
        root.path().join("stat"),
        "cpu  1 2 3 4\nbtime 1796378400\nprocesses 99\n",
    )
    .expect("stat");
    root
}

#[test]
fn process_metrics_are_read_from_proc() {
    let root = fake_proc();
    let stats = process::ProcessCollector::with_root(root.path()).read();
    assert_eq!(
        stats,
        process::ProcessStats {
            cpu_seconds: Some(3.75),
            resident_memory_bytes: Some(12_000 * 1024),
            virtual_memory_bytes: Some(96_448 * 1024),
            open_fds: Some(7),
            max_fds: Some(1_048_576),
            start_time_seconds: Some(1_796_378_400.0 + 1234.56),
            threads: Some(9),
        }
    );
}

#[test]
fn process_metrics_are_encoded_with_the_standard_names() {
    let root = fake_proc();
    let mut registry = Registry::default();
    registry.register_collector(Box::new(process::ProcessCollector::with_root(root.path())));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
    let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        samples,
        [
            "process_cpu_seconds_total 3.75",
            "process_resident_memory_bytes 12288000",
            "process_virtual_memory_bytes 98762752",
            "process_open_fds 7",
            "process_max_fds 1048576",
            "process_threads 9",
            "process_start_time_seconds 1796379634.56",
        ]
    );
    assert!(
        text.contains("# TYPE process_cpu_seconds counter\n"),
        "{text}"
    );
}

#[test]
fn without_proc_the_process_metrics_are_left_out() {
    let root = tempfile::tempdir().expect("temp dir");
    let collector = process::ProcessCollector::with_root(root.path().join("absent"));
    assert_eq!(collector.read(), process::ProcessStats::default());
    let mut registry = Registry::default();
    registry.register_collector(Box::new(collector));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
    assert_eq!(text, "# EOF\n");
}

#[test]
fn build_info_names_the_version_and_a_bounded_commit() {
    let text = Metrics::new().encode();
    let line = format!(
        r#"mcpguard_build_info{{version="{}",commit="{}"}} 1"#,
        env!("CARGO_PKG_VERSION"),
        GIT_COMMIT
    );
    assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    assert!(
        GIT_COMMIT == "unknown"
            || (GIT_COMMIT.len() <= 40 && GIT_COMMIT.bytes().all(|b| b.is_ascii_hexdigit())),
        "{GIT_COMMIT}"
    );
}
