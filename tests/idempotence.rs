//! The idempotence property (issue #15) over real inputs: every pod, and every workload's pod
//! template, of the fuzz corpus (AdmissionReviews and manifests), the examples and the test
//! fixtures. Each goes to the webhook as the API server sends it (defaulted, encoded), is
//! hardened under each shipped policy, and the result goes through the API server's round
//! trip again (`api_round_trip`: what Go's `omitempty` drops, field by field, from the
//! Kubernetes types): a reinvocation's patch must be empty. The property over every pod the
//! unit tests harden lives next to the hardening (`harden/tests.rs`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use mcpguard_core::api_defaults::apply_pod_defaults;
use mcpguard_core::api_round_trip;
use mcpguard_core::documents;
use mcpguard_core::harden::{self, Scope};
use mcpguard_core::policy::{self, Policy};
use mcpguard_core::runtime_class::StaticRuntimeClasses;
use mcpguard_core::workloads;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The pod an object stands for: a Pod itself, or a workload's template as its pods.
fn pod_of(object: &Value) -> Option<Value> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("v1");
    let kind = object.get("kind").and_then(Value::as_str)?;
    if kind == "Pod" {
        return Some(object.clone());
    }
    let workload = workloads::by_kind(api_version, kind)?;
    Some(workloads::pod_of_template(workload.template(object)?))
}

/// Every pod of the corpus and fixtures, each named by its file.
fn pods() -> Vec<(String, Value)> {
    let mut pods = Vec::new();
    for file in files_under(&Path::new(ROOT).join("fuzz/corpus/review")) {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        let Ok(review) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        if let Some(pod) = review.pointer("/request/object").and_then(pod_of) {
            pods.push((file.display().to_string(), pod));
        }
    }
    let manifest_dirs = ["fuzz/corpus/documents", "examples", "tests/fixtures"];
    for dir in manifest_dirs {
        for file in files_under(&Path::new(ROOT).join(dir)) {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let name = file.display().to_string();
            for sourced in documents::split_each(&text, &name).objects {
                if let Some(pod) = pod_of(&sourced.object) {
                    pods.push((format!("{name}#{}", sourced.index), pod));
                }
            }
        }
    }
    pods
}

/// What the API server hands a webhook: the object decoded, defaulted and encoded.
fn as_stored(pod: &Value) -> Value {
    let mut pod = pod.clone();
    apply_pod_defaults(&mut pod);
    api_round_trip::pod(&pod)
}

fn shipped_policies() -> Vec<Policy> {
    ["policies/mcp-restricted.yaml", "policies/mcp-baseline.yaml"]
        .iter()
        .map(|file| {
            let text = std::fs::read_to_string(Path::new(ROOT).join(file)).expect("read policy");
            policy::parse_str(&text, file).expect("the shipped policy loads")
        })
        .collect()
}

#[test]
fn a_reinvocation_after_the_api_servers_round_trip_changes_nothing() {
    let classes = StaticRuntimeClasses::default();
    let pods = pods();
    let mut hardened = 0;
    let mut failures = Vec::new();
    for policy in shipped_policies() {
        for (name, pod) in &pods {
            let sent = as_stored(pod);
            let Ok(first) = harden::harden_pod(&sent, Scope::WholePod, &policy, &classes) else {
                continue;
            };
            hardened += 1;
            let stored = as_stored(&first.pod);
            match harden::harden_pod(&stored, Scope::WholePod, &policy, &classes) {
                Ok(again) if again.patch.0.is_empty() => {}
                Ok(again) => failures.push(format!(
                    "{name} under {}: {}",
                    policy.name,
                    serde_json::to_string(&again.patch).unwrap_or_default()
                )),
                Err(err) => failures.push(format!(
                    "{name} under {}: the stored pod no longer hardens: {err}",
                    policy.name
                )),
            }
        }
    }
    eprintln!(
        "idempotence: {hardened} hardenings of {} pods under 2 policies",
        pods.len()
    );
    // The corpus holds hundreds of pods: a property that held over a handful would say little.
    assert!(hardened >= 200, "only {hardened} pods hardened");
    assert!(
        failures.is_empty(),
        "{} of {hardened}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
