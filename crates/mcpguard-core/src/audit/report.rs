//! PolicyReports (`wgpolicyk8s.io/v1alpha2`), one per scanned resource as Kyverno lays them
//! out today (one report per namespace outgrows etcd's object size at a few hundred pods).
//! Built as a pure function of the object, the policy and `now`; the scanner only lists
//! objects and writes what changed.

use serde_json::{Value, json};

use crate::engine::{self, Context};
use crate::exceptions;
use crate::rules;
use crate::workloads::{self, WorkloadKind};

pub const API_VERSION: &str = "wgpolicyk8s.io/v1alpha2";
pub const KIND: &str = "PolicyReport";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "mcpguard";
pub const POLICY_LABEL: &str = "mcpguard.dev/policy";
pub const SOURCE: &str = "mcpguard";

/// The report APIs the audit can write. The body is the same: OpenReports
/// (`openreports.io/v1alpha1`, the Policy Reports API's successor, which Kyverno 1.15 writes)
/// kept `wgpolicyk8s.io/v1alpha2`'s fields and enums, renamed the kind `Report` and added a
/// report-level `source` (openreports/reports-api, `apis/openreports.io/v1alpha1/report_types.go`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportApi {
    PolicyReport,
    OpenReports,
}

impl ReportApi {
    pub fn group(self) -> &'static str {
        match self {
            ReportApi::PolicyReport => "wgpolicyk8s.io",
            ReportApi::OpenReports => "openreports.io",
        }
    }

    pub fn version(self) -> &'static str {
        match self {
            ReportApi::PolicyReport => "v1alpha2",
            ReportApi::OpenReports => "v1alpha1",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            ReportApi::PolicyReport => API_VERSION,
            ReportApi::OpenReports => OPENREPORTS_API_VERSION,
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            ReportApi::PolicyReport => KIND,
            ReportApi::OpenReports => OPENREPORTS_KIND,
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            ReportApi::PolicyReport => "policyreports",
            ReportApi::OpenReports => "reports",
        }
    }

    /// `report` (as [`report_for`] builds it, a PolicyReport) in this API's form.
    pub fn shape(self, report: &Value) -> Value {
        let mut shaped = report.clone();
        if self == ReportApi::OpenReports
            && let Some(fields) = shaped.as_object_mut()
        {
            fields.insert("apiVersion".into(), json!(OPENREPORTS_API_VERSION));
            fields.insert("kind".into(), json!(OPENREPORTS_KIND));
            fields.insert("source".into(), json!(SOURCE));
        }
        shaped
    }
}

pub const OPENREPORTS_API_VERSION: &str = "openreports.io/v1alpha1";
pub const OPENREPORTS_KIND: &str = "Report";

/// The name a decode failure is reported under (one `error` result for the object).
pub const DECODE: &str = "decode";

/// How serious a check's failure is, as PolicyReport results say it (`severity`, which
/// Policy Reporter filters and alerts on). The CRD's enum is `critical`, `high`, `medium`,
/// `low` and `info`. One table for every check:
///
/// | severity | checks | because a failure means |
/// |----------|--------|-------------------------|
/// | high     | `privileged`, `hostNamespaces`, `hostPathVolumes`, `windowsHostProcess`, `capabilities_baseline`, `procMount`, `allowedRegistries`, `forbidSecretLiterals` | the container can reach the node, other pods' processes or network, or runs code from an untrusted registry; or a secret is readable by whoever can read the object |
/// | medium   | `allowPrivilegeEscalation`, `capabilities_restricted`, `runAsNonRoot`, `runAsUser`, `seccompProfile_baseline`, `seccompProfile_restricted`, `appArmorProfile`, `seLinuxOptions`, `sysctls`, `hostPorts`, `hostProbesAndHostLifecycle`, `restrictedVolumes`, `procMount_restricted`, `requireRuntimeClass`, `runtimeClassScheduling` | a layer of hardening is missing, with no direct way out of the container |
/// | low      | `maxResources`, `maxContainersPerPod` | resource hygiene |
/// | info     | `decode` | the object could not be judged at all |
///
/// A check not in the table (a policy's own CEL rule, whose author gives no severity) is
/// `medium`. No built-in check is `critical`: that is left for what a policy's author may
/// one day mark so.
pub const SEVERITIES: &[(&str, &str)] = &[
    ("privileged", "high"),
    ("hostNamespaces", "high"),
    ("hostPathVolumes", "high"),
    ("windowsHostProcess", "high"),
    ("capabilities_baseline", "high"),
    ("procMount", "high"),
    (rules::ALLOWED_REGISTRIES, "high"),
    (rules::FORBID_SECRET_LITERALS, "high"),
    ("allowPrivilegeEscalation", "medium"),
    ("capabilities_restricted", "medium"),
    ("runAsNonRoot", "medium"),
    ("runAsUser", "medium"),
    ("seccompProfile_baseline", "medium"),
    ("seccompProfile_restricted", "medium"),
    ("appArmorProfile", "medium"),
    ("seLinuxOptions", "medium"),
    ("sysctls", "medium"),
    ("hostPorts", "medium"),
    ("hostProbesAndHostLifecycle", "medium"),
    ("restrictedVolumes", "medium"),
    ("procMount_restricted", "medium"),
    (rules::REQUIRE_RUNTIME_CLASS, "medium"),
    (engine::RUNTIME_CLASS_SCHEDULING, "medium"),
    (rules::MAX_RESOURCES, "low"),
    (engine::TOO_MANY_CONTAINERS, "low"),
    (DECODE, "info"),
];

/// The severity of `check` by [`SEVERITIES`]; `medium` for a check not in it.
pub fn severity_of(check: &str) -> &'static str {
    SEVERITIES
        .iter()
        .find(|(id, _)| *id == check)
        .map_or("medium", |(_, severity)| severity)
}

/// What is being reported on.
#[derive(Clone, Copy, Debug)]
pub enum Scanned {
    /// A running pod: judged as it is (what drifted under an older policy shows here).
    Pod,
    /// A pod controller: judged as the webhook judges it (template mutated in memory).
    Workload(&'static WorkloadKind),
}

/// The report for `object` (a pod or workload as the API returns it), or `None` for an
/// object that cannot be reported on (no name or uid, no pod template).
pub fn report_for(object: &Value, scanned: Scanned, context: Context<'_>) -> Option<Value> {
    let metadata = object.get("metadata")?;
    let text = |key: &str| metadata.get(key).and_then(Value::as_str);
    let (name, namespace, uid) = (text("name")?, text("namespace")?, text("uid")?);
    let (kind, api_version) = match scanned {
        Scanned::Pod => ("Pod".to_owned(), "v1".to_owned()),
        Scanned::Workload(workload) => (
            workload.kind.to_owned(),
            if workload.group.is_empty() {
                "v1".to_owned()
            } else {
                format!("{}/v1", workload.group)
            },
        ),
    };
    let mut conflict = None;
    let pod = match scanned {
        Scanned::Pod => object.clone(),
        Scanned::Workload(workload) => {
            let template = workload.template(object)?;
            match engine::pod_of_workload(template, context) {
                Ok((pod, _)) => pod,
                // The webhook denies this workload; say so, then judge the template as written.
                Err(err) => {
                    conflict = Some(err.to_string());
                    workloads::pod_of_template(template)
                }
            }
        }
    };
    let mut results = match engine::judge_with_exceptions(&pod, namespace, name, "", &[], context) {
        Ok(outcome) => results(&outcome, context),
        Err(message) => vec![result(context, DECODE, "error", &message, None)],
    };
    if let Some(conflict) = conflict {
        results.insert(
            0,
            result(
                context,
                engine::RUNTIME_CLASS_SCHEDULING,
                "fail",
                &conflict,
                None,
            ),
        );
    }
    let count = |status: &str| results.iter().filter(|r| r["result"] == status).count();
    let summary = json!({
        "pass": count("pass"), "fail": count("fail"), "warn": count("warn"),
        "error": count("error"), "skip": count("skip"),
    });
    Some(json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": report_name(uid),
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY, POLICY_LABEL: context.policy.name},
            "ownerReferences": [{
                "apiVersion": api_version, "kind": kind, "name": name, "uid": uid,
            }],
        },
        "scope": {"apiVersion": api_version, "kind": kind, "name": name, "namespace": namespace, "uid": uid},
        "summary": summary,
        "results": results,
    }))
}

/// Prefixed, so mcpguard's reports never collide with Kyverno's (named by the bare uid).
pub fn report_name(uid: &str) -> String {
    format!("mcpguard-{uid}")
}

/// The checks the policy runs: its PSS checks, then its enabled MCP rules, then its CEL rules.
pub fn checks_run<'a>(context: Context<'a>) -> Vec<&'a str> {
    let policy = context.policy;
    let security = policy.spec.pod_security;
    let mut checks = crate::pss::check_ids_for(security.level, security.version);
    let validate = &policy.spec.validate;
    let enabled = [
        (
            rules::ALLOWED_REGISTRIES,
            !validate.allowed_registries.is_empty(),
        ),
        (rules::REQUIRE_RUNTIME_CLASS, validate.require_runtime_class),
        (rules::MAX_RESOURCES, !policy.ceilings.is_empty()),
        (
            rules::FORBID_SECRET_LITERALS,
            validate.forbid_secret_literals,
        ),
    ];
    checks.extend(enabled.iter().filter(|(_, on)| *on).map(|(id, _)| *id));
    checks.extend(policy.rules.names());
    checks
}

fn results(outcome: &exceptions::Outcome, context: Context<'_>) -> Vec<Value> {
    checks_run(context)
        .into_iter()
        .map(|check| {
            if let Some(violation) = outcome.violations.iter().find(|v| v.check == check) {
                return result(context, check, "fail", &violation.to_string(), None);
            }
            match outcome
                .waivers
                .iter()
                .find(|w| w.checks.iter().any(|c| c == check))
            {
                Some(waiver) => result(
                    context,
                    check,
                    "skip",
                    &format!("waived by exception {:?}", waiver.exception),
                    Some(&waiver.exception),
                ),
                None => result(context, check, "pass", "", None),
            }
        })
        .collect()
}

fn result(
    context: Context<'_>,
    check: &str,
    status: &str,
    message: &str,
    exception: Option<&str>,
) -> Value {
    let security = context.policy.spec.pod_security;
    let category = if rules::ALL_RULE_IDS.contains(&check) {
        "MCP".to_owned()
    } else if context.policy.rules.contains(check) {
        "MCP custom rule (CEL)".to_owned()
    } else {
        format!(
            "Pod Security Standards ({}:{})",
            security.level, security.version
        )
    };
    // A protobuf Timestamp: whole seconds, and the nanoseconds past them (never negative).
    let second = crate::rfc3339::floor_second(context.now);
    let nanos = context.now.duration_since(second).subsec_nanos();
    let mut entry = json!({
        "policy": context.policy.name,
        "rule": check,
        "result": status,
        "source": SOURCE,
        "category": category,
        "severity": severity_of(check),
        // When the result was found: the scan's `now`. A rescan that finds the same keeps the
        // stored report, and so its time (see `is_current`).
        "timestamp": {"seconds": second.as_second(), "nanos": nanos},
        "scored": true,
    });
    if !message.is_empty() {
        entry["message"] = Value::String(message.to_owned());
    }
    if let Some(exception) = exception {
        entry["properties"] = json!({"exception": exception});
    }
    entry
}

/// Whether a stored report already says what `desired` says (so it needs no write). The
/// results' timestamps are not compared: they say when a result was found, and a rescan that
/// finds the same must not rewrite every report every interval.
pub fn is_current(stored: &Value, desired: &Value) -> bool {
    results_without_timestamps(stored) == results_without_timestamps(desired)
        && stored.get("summary") == desired.get("summary")
        && stored.get("scope") == desired.get("scope")
        && stored.get("source") == desired.get("source")
        && stored.pointer("/metadata/labels") == desired.pointer("/metadata/labels")
}
fn results_without_timestamps(report: &Value) -> Option<Vec<Value>> {
    let results = report.get("results")?.as_array()?;
    Some(
        results
            .iter()
            .map(|result| {
                let mut result = result.clone();
                if let Some(fields) = result.as_object_mut() {
                    fields.remove("timestamp");
                }
                result
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests;
