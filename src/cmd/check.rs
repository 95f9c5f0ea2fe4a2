//! `mcpguard check` and `mcpguard mutate`: the webhook's answer, offline. Each pod goes
//! through the API server's defaulting, then the same front door the webhook runs
//! (`admission::mutate` and `admission::validate`), as AdmissionReview requests.

use std::path::PathBuf;

use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::api::node::v1::RuntimeClass;
use serde_json::Value;

use super::check_changes::{Change, changes_of};
use super::check_output;
use super::check_report::ReportedViolation;
pub use super::check_report::{ObjectReport, Verdict};
use super::inputs::{InputError, Inputs, load_policy_set, read_inputs, write_stdout};
use crate::cmd::args::{CheckArgs, MutateArgs, ObjectsFormat, OutputFormat};
use mcpguard_core::admission;
use mcpguard_core::api_defaults::apply_pod_defaults;
use mcpguard_core::documents::SourcedObject;
use mcpguard_core::engine::{self, Context, Outcome};
use mcpguard_core::harden;
use mcpguard_core::policy_set::PolicySet;
use mcpguard_core::review::AdmissionRequest;
use mcpguard_core::runtime_class::StaticRuntimeClasses;
use mcpguard_core::strict;
use mcpguard_core::workloads::{self, WorkloadKind};

/// Exit codes: the contract for CI pipelines.
pub const EXIT_ADMITTED: u8 = 0;
pub const EXIT_DENIED: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

pub fn check(args: &CheckArgs) -> u8 {
    let result = (|| -> Result<u8, String> {
        let inputs = read_inputs(&args.paths);
        let policies =
            offline_policies(&args.policy.policy, &inputs, "check")?.adjusted(|policy| {
                if let Some(level) = args.pss_level {
                    policy.spec.pod_security.level = level;
                }
                if let Some(version) = args.pss_version {
                    policy.spec.pod_security.version = version;
                }
                if let Some(cluster_minor) = args.kubernetes_version {
                    let version = &mut policy.spec.pod_security.version;
                    *version = version.for_cluster(cluster_minor);
                }
            });
        let reports = review_inputs(
            &inputs,
            &policies,
            &Judging {
                namespace: args.namespace.as_deref(),
                mutate: !args.no_mutate,
                requester: args.requester.user_info(),
            },
        );
        let out = match args.output {
            OutputFormat::Text => render_text(&reports),
            OutputFormat::Json => {
                serde_json::to_string_pretty(&reports).map_err(|e| e.to_string())? + "\n"
            }
            OutputFormat::Yaml => check_output::yaml(&reports)?,
            OutputFormat::Sarif => check_output::sarif(&reports)?,
            OutputFormat::Junit => check_output::junit(&reports),
        };
        write_stdout(&out)?;
        Ok(exit_code(&reports))
    })();
    result.unwrap_or_else(|message| {
        eprintln!("mcpguard check: {message}");
        EXIT_ERROR
    })
}

/// Objects as `kubectl` prints them: a YAML stream (`---` before each), or one JSON `List`.
pub fn print_objects(objects: &[&Value], format: ObjectsFormat) -> Result<String, String> {
    match format {
        ObjectsFormat::Yaml => {
            let mut out = String::new();
            for object in objects {
                out.push_str("---\n");
                out.push_str(&serde_saphyr::to_string(object).map_err(|e| e.to_string())?);
            }
            Ok(out)
        }
        ObjectsFormat::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
            Ok(serde_json::to_string_pretty(&list).map_err(|e| e.to_string())? + "\n")
        }
    }
}

/// An entry that could not be judged (an unreadable file or document, an object that does
/// not decode) makes the answer unknown: exit 2, over a denial's 1.
fn exit_code(reports: &[ObjectReport]) -> u8 {
    if reports.iter().any(|r| r.verdict == Verdict::Error) {
        EXIT_ERROR
    } else if reports.iter().any(|r| r.verdict == Verdict::Denied) {
        EXIT_DENIED
    } else {
        EXIT_ADMITTED
    }
}

/// The policies of `--policy` and of the inputs' MCPPolicy objects; their conflicts are
/// printed as warnings, as the objects' status would say them in the cluster.
pub fn offline_policies(
    policy_paths: &[PathBuf],
    inputs: &Inputs,
    command: &str,
) -> Result<PolicySet, String> {
    let (policies, conflicts) = load_policy_set(policy_paths, &inputs.objects)?;
    for conflict in conflicts {
        eprintln!("mcpguard {command}: warning: {conflict}");
    }
    Ok(policies)
}

/// Exit codes as for `check`: what would be denied after mutation makes it exit 1, an
/// entry that cannot be read or decoded 2.
pub fn mutate(args: &MutateArgs) -> u8 {
    let result = (|| -> Result<u8, String> {
        let inputs = read_inputs(&args.paths);
        let policies = offline_policies(&args.policy.policy, &inputs, "mutate")?;
        let judging = Judging {
            namespace: args.namespace.as_deref(),
            mutate: true,
            requester: args.requester.user_info(),
        };
        let reports = review_inputs(&inputs, &policies, &judging);
        let judged: Vec<&ObjectReport> = reports
            .iter()
            .filter(|r| r.verdict != Verdict::Error)
            .collect();
        let out = if args.patch {
            let mut out = String::new();
            for report in &judged {
                let patch = report.patch.clone().unwrap_or_default();
                out.push_str(&serde_json::to_string(&patch).map_err(|e| e.to_string())?);
                out.push('\n');
            }
            out
        } else {
            let objects: Vec<&Value> = judged.iter().map(|r| &r.mutated).collect();
            print_objects(&objects, args.output)?
        };
        write_stdout(&out)?;
        for report in reports
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Denied | Verdict::Error))
        {
            eprint!(
                "mcpguard mutate: {}",
                render_text(std::slice::from_ref(report))
            );
        }
        Ok(exit_code(&reports))
    })();
    result.unwrap_or_else(|message| {
        eprintln!("mcpguard mutate: {message}");
        EXIT_ERROR
    })
}

/// How the objects are judged: the namespace of objects that name none, whether the
/// mutating webhook runs first, and who creates them (for exceptions by user or group).
pub struct Judging<'a> {
    pub namespace: Option<&'a str>,
    pub mutate: bool,
    pub requester: UserInfo,
}

/// Judges each object as the cluster would, each under the policy that routes its
/// namespace; every input error is an entry of its own, in input order. RuntimeClass
/// objects among the inputs feed the mutation's RuntimeClass lookup, as the webhook's watch
/// does in a cluster.
pub fn review_inputs(
    inputs: &Inputs,
    policies: &PolicySet,
    judging: &Judging<'_>,
) -> Vec<ObjectReport> {
    let classes: Vec<RuntimeClass> = inputs
        .objects
        .iter()
        .filter(|o| o.object.get("kind").and_then(Value::as_str) == Some("RuntimeClass"))
        .filter_map(|o| serde_json::from_value(o.object.clone()).ok())
        .collect();
    let runtime_classes = StaticRuntimeClasses::from_classes(&classes);
    let front_door = admission::Context {
        policies,
        runtime_classes: &runtime_classes,
        now: jiff::Timestamp::now(),
        // Offline nothing can be asked: each Secret an MCPServer names is reported instead.
        secret_access: admission::SecretAccess::Offline,
    };
    let default_namespace = judging
        .namespace
        .map(str::to_owned)
        .or_else(|| policies.fallback().spec.namespaces.first().cloned())
        .unwrap_or_else(|| "default".into());
    let mut reports: Vec<ObjectReport> = inputs
        .objects
        .iter()
        .map(|sourced| {
            let mut report = review_object(sourced, front_door, &default_namespace, judging);
            for violation in &mut report.violations {
                violation.locate_fields(sourced.spans.as_deref());
            }
            report
        })
        .chain(inputs.errors.iter().map(error_report))
        .collect();
    let rank = |source: &str| inputs.sources.iter().position(|s| s == source);
    reports.sort_by_key(|r| (rank(&r.source), r.document));
    reports
}

fn error_report(error: &InputError) -> ObjectReport {
    ObjectReport {
        source: error.source_name.clone(),
        document: error.document,
        line: 0,
        template: None,
        kind: String::new(),
        name: String::new(),
        namespace: String::new(),
        verdict: Verdict::Error,
        reason: Some(error.message.clone()),
        violations: Vec::new(),
        warnings: Vec::new(),
        patch: None,
        changes: Vec::new(),
        mutated: Value::Null,
        changed_by_mutation: false,
    }
}

/// The decisions are the front door's, as the webhook's; the policy that routes the
/// object's namespace also says what the CLI reports of the mutation and of workloads' pods.
fn review_object(
    sourced: &SourcedObject,
    front_door: admission::Context<'_>,
    default_namespace: &str,
    judging: &Judging<'_>,
) -> ObjectReport {
    let object = &sourced.object;
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let kind = text("/kind");
    let namespace = Some(text("/metadata/namespace"))
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| default_namespace.to_owned());
    let mut report = ObjectReport {
        source: sourced.source_name.clone(),
        document: sourced.index,
        line: sourced.line,
        template: sourced.template.clone(),
        kind: kind.clone(),
        name: Some(text("/metadata/name"))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| text("/metadata/generateName")),
        namespace: namespace.clone(),
        verdict: Verdict::Skipped,
        reason: None,
        violations: Vec::new(),
        warnings: Vec::new(),
        patch: None,
        changes: Vec::new(),
        mutated: object.clone(),
        changed_by_mutation: false,
    };
    // kubectl's default `--validate=strict`: the API server refuses what does not decode.
    if let Some(Err(error)) = strict::check_manifest(object) {
        report.verdict = Verdict::Error;
        report.reason = Some(error.to_string());
        return report;
    }
    let policy = front_door.policies.for_namespace(Some(&namespace));
    let context = Context {
        policy,
        runtime_classes: front_door.runtime_classes,
        now: front_door.now,
    };
    let enforced = front_door.policies.covers(&namespace);
    let api_version = text("/apiVersion");
    let is_pod = kind == "Pod" && matches!(api_version.as_str(), "v1" | "");
    let workload = workloads::by_kind(&api_version, &kind);
    let other = other_judged_kind(&api_version, &kind);
    if !is_pod && workload.is_none() && other.is_none() {
        report.reason = Some(format!("kind {kind} is not judged by mcpguard"));
        return report;
    }
    if let Some((group, resource, cluster_scoped)) = other {
        // The webhook's own validator, through the same front door; an MCPPolicy is
        // cluster-scoped and judged by the policy loader wherever it would apply.
        if !cluster_scoped && !enforced {
            report.reason = Some(not_enforced(&namespace, front_door.policies));
            return report;
        }
        let mut request = admission_request(group, resource, &report, object.clone(), judging);
        if cluster_scoped {
            request.namespace = None;
        }
        let decision = admission::validate(&request, front_door).decision;
        record_validation(&mut report, decision);
        return report;
    }
    if !enforced {
        report.reason = Some(not_enforced(&namespace, front_door.policies));
        return report;
    }
    if let Some(workload) = workload {
        return review_workload(report, workload, context, front_door, judging);
    }
    let mut pod = object.clone();
    apply_pod_defaults(&mut pod);
    let identity = report.clone();
    let request = |pod: Value| admission_request("", "pods", &identity, pod, judging);
    if judging.mutate {
        let decision = admission::mutate(&request(pod.clone()), front_door).decision;
        if decision.outcome == Outcome::Denied || decision.outcome == Outcome::Invalid {
            report.verdict = Verdict::Denied;
            report.reason = decision.status.map(|s| s.message);
            return report;
        }
        report.warnings = decision.warnings;
        if let Some(patch) = decision.patch {
            report.changes = changes_of(&patch, context.policy);
            if let Err(err) = json_patch::patch(&mut pod, &patch) {
                report.verdict = Verdict::Denied;
                report.reason = Some(format!("internal error applying the mutation: {err}"));
                return report;
            }
            // The API server decodes and defaults the patched pod again.
            apply_pod_defaults(&mut pod);
            let patch = json_patch::diff(object, &pod);
            report.changed_by_mutation = !patch.0.is_empty();
            report.patch = Some(patch);
            report.mutated = pod.clone();
        }
    }
    let decision = admission::validate(&request(pod), front_door).decision;
    record_validation(&mut report, decision);
    report
}

fn record_validation(report: &mut ObjectReport, decision: engine::Decision) {
    report.verdict = if decision.allowed() {
        Verdict::Admitted
    } else {
        Verdict::Denied
    };
    if !decision.allowed() {
        report.reason = decision.status.map(|s| s.message);
    }
    report.warnings.extend(decision.warnings);
    report.violations = decision
        .violations
        .into_iter()
        .map(ReportedViolation::from)
        .collect();
}

fn not_enforced(namespace: &str, policies: &PolicySet) -> String {
    let names: Vec<String> = policies
        .serving()
        .iter()
        .map(|policy| format!("{:?}", policy.name))
        .collect();
    match names.as_slice() {
        [one] => format!("namespace {namespace:?} is not enforced by policy {one}"),
        several => format!(
            "namespace {namespace:?} is not enforced by any of the policies {}",
            several.join(", ")
        ),
    }
}

/// A workload is judged as the validating webhook judges it: its template mutated in
/// memory (the workload itself is never changed), then validated. With `--no-mutate` the
/// template is judged as written, as a pod would be.
fn review_workload(
    mut report: ObjectReport,
    workload: &'static WorkloadKind,
    context: Context<'_>,
    front_door: admission::Context<'_>,
    judging: &Judging<'_>,
) -> ObjectReport {
    let object = report.mutated.clone();
    let Some(template) = workload.template(&object) else {
        report.verdict = Verdict::Denied;
        report.reason = Some(format!(
            "{} has no pod template at {}",
            workload.kind, workload.template
        ));
        return report;
    };
    if judging.mutate {
        report.changed_by_mutation = engine::pod_of_workload(template, context)
            .is_ok_and(|(_, warnings)| !warnings.is_empty());
        let mut pod = workloads::pod_of_template(template);
        apply_pod_defaults(&mut pod);
        if let Ok(mutation) = harden::harden_pod(
            &pod,
            harden::Scope::WholePod,
            context.policy,
            context.runtime_classes,
        ) {
            report.changes = changes_of(&mutation.patch, context.policy);
        }
        let request = admission_request(
            workload.group,
            workload.resource,
            &report,
            object.clone(),
            judging,
        );
        let decision = admission::validate(&request, front_door).decision;
        record_validation(&mut report, decision);
        return report;
    }
    // As written: the template judged as its pods would be without the webhook's mutation
    // (but with the API server's defaults, which are not mutation), reported in the words the
    // webhook uses for the workload.
    let mut pod = workloads::pod_of_template(template);
    apply_pod_defaults(&mut pod);
    let request = admission_request("", "pods", &report, pod, judging);
    let mut decision = admission::validate(&request, front_door).decision;
    // Judged as a pod: its fields are reported where the workload keeps the template.
    let template_path = workload.template_path();
    for violation in &mut decision.violations {
        violation.prefix_fields(&template_path);
    }
    let pods_of = format!("mcpguard: pods of {} {:?} ", workload.kind, report.name);
    for warning in &mut decision.warnings {
        if let Some(rest) = warning.strip_prefix("mcpguard: ") {
            *warning = mcpguard_core::harden::truncate_warning(format!("{pods_of}{rest}"));
        }
    }
    if !decision.allowed() && !decision.violations.is_empty() {
        let message = format!(
            "{} {:?} is forbidden: {}{}",
            workload.qualified_resource(),
            report.name,
            engine::WORKLOAD_DENIAL,
            mcpguard_core::violation::violation_summary(&context.policy.name, &decision.violations)
        );
        if let Some(status) = decision.status.as_mut() {
            status.message = message;
        }
    }
    record_validation(&mut report, decision);
    report
}

/// The kinds besides pods and workloads that the validating webhook judges: (group,
/// resource, cluster-scoped).
fn other_judged_kind(api_version: &str, kind: &str) -> Option<(&'static str, &'static str, bool)> {
    match (api_version, kind) {
        ("mcpguard.dev/v1alpha1", "MCPServer") => Some(("mcpguard.dev", "mcpservers", false)),
        ("mcpguard.dev/v1alpha1", "MCPPolicy") => Some(("mcpguard.dev", "mcppolicies", true)),
        ("networking.k8s.io/v1", "NetworkPolicy") => {
            Some(("networking.k8s.io", "networkpolicies", false))
        }
        _ => None,
    }
}

fn admission_request(
    group: &str,
    resource: &str,
    report: &ObjectReport,
    object: Value,
    judging: &Judging<'_>,
) -> AdmissionRequest {
    AdmissionRequest {
        uid: String::new(),
        kind: kube::core::GroupVersionKind::gvk(group, "v1", &report.kind),
        resource: kube::core::GroupVersionResource::gvr(group, "v1", resource),
        sub_resource: None,
        name: report.name.clone(),
        namespace: Some(report.namespace.clone()),
        operation: "CREATE".into(),
        user_info: judging.requester.clone(),
        object: Some(object.into()),
        old_object: None,
        dry_run: None,
    }
}

fn text_line(report: &ObjectReport) -> String {
    let verdict = match report.verdict {
        Verdict::Admitted => "ADMITTED",
        Verdict::Denied => "DENIED",
        Verdict::Skipped => "SKIPPED",
        Verdict::Error if report.kind.is_empty() => {
            return match report.document {
                0 => format!(
                    "ERROR {}: {}",
                    report.source,
                    report.reason.as_deref().unwrap_or("")
                ),
                n => format!(
                    "ERROR {}#{n}: {}",
                    report.source,
                    report.reason.as_deref().unwrap_or("")
                ),
            };
        }
        Verdict::Error => "ERROR",
    };
    let mut line = format!(
        "{verdict} {}/{} (namespace {}, {}#{})",
        report.kind.to_lowercase(),
        report.name,
        report.namespace,
        report.source,
        report.document
    );
    match report.verdict {
        Verdict::Skipped | Verdict::Error => {
            if let Some(reason) = &report.reason {
                line.push_str(&format!(": {reason}"));
            }
        }
        Verdict::Denied if report.violations.is_empty() => {
            if let Some(reason) = &report.reason {
                line.push_str(&format!(": {reason}"));
            }
        }
        Verdict::Denied => line.push_str(&format!(": {} violation(s)", report.violations.len())),
        Verdict::Admitted if report.changed_by_mutation => line.push_str(" after mutation"),
        Verdict::Admitted => {}
    }
    line
}

/// One line per object; a denial is followed by one indented line per violation, an
/// admitted object by one per change its mutation makes.
pub fn render_text(reports: &[ObjectReport]) -> String {
    let mut out = String::new();
    for report in reports {
        out.push_str(&text_line(report));
        out.push('\n');
        for violation in &report.violations {
            out.push_str(&format!("  - {}: {violation}\n", violation.check));
            for field in &violation.fields {
                out.push_str(&format!(
                    "    at {}:{}:{} {}\n",
                    report.source, field.line, field.column, field.path
                ));
            }
        }
        if report.verdict == Verdict::Admitted {
            for change in &report.changes {
                out.push_str(&change_line(change));
            }
        }
        // What offline cannot verify, and the webhook will (an MCPServer author's rights).
        for note in report
            .warnings
            .iter()
            .filter(|w| w.starts_with(mcpguard_core::mcpserver::access::OFFLINE_NOTE_PREFIX))
        {
            out.push_str(&format!("  ? {note}\n"));
        }
    }
    out
}

fn change_line(change: &Change) -> String {
    let value = change
        .value
        .as_ref()
        .map(|v| format!(" = {v}"))
        .unwrap_or_default();
    format!(
        "  ~ {} {}{value}: {}\n",
        change.op, change.path, change.reason
    )
}
