//! The pod and workload decision: [`mutate_pod`], [`validate_pod`] and
//! [`validate_workload`], which the front door (`crate::admission`) calls for the webhook and
//! the CLI, and the judging they share with the background audit and the MCPServer render
//! ([`judge_with_exceptions`], [`pod_of_workload`]). Every kind goes through the same
//! hardening and the same checks.
//!
//! Pure: a decision depends only on the request, the policy and the RuntimeClass snapshot
//! passed in. No I/O, no clock, no global state.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use jiff::Timestamp;

use crate::api_defaults;
pub use crate::cel_rules::RuleInput;
use crate::exceptions;
use crate::harden::{self, Scope};
use crate::json_path;
use crate::policy::{Mode, Policy};
use crate::pss;
use crate::redact;
use crate::review::{self, AdmissionRequest, AdmissionResponse, Operation, ResponseStatus};
use crate::rules;
use crate::runtime_class::RuntimeClassLookup;
use crate::violation::{Violation, violation_summary};
use crate::workloads::{self, WorkloadKind};

pub const AUDIT_POLICY: &str = "policy";
pub const AUDIT_VIOLATIONS: &str = "violations";
pub const AUDIT_MUTATED: &str = "mutated";
pub const AUDIT_EXCEPTIONS: &str = "exceptions";
pub const AUDIT_MODE: &str = "mode";
/// The check ID of a RuntimeClass whose scheduling contradicts the pod's nodeSelector.
pub const RUNTIME_CLASS_SCHEDULING: &str = "runtimeClassScheduling";
/// How a workload's denial says that the trouble is in the pods it would create.
pub const WORKLOAD_DENIAL: &str = "the pods it would create would be rejected: ";

#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub policy: &'a Policy,
    pub runtime_classes: &'a dyn RuntimeClassLookup,
    /// The time exceptions' expiry is judged against; the caller reads the clock.
    pub now: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not ours to judge (namespace, kind, subresource, operation): admitted untouched.
    Skipped,
    Allowed,
    Mutated,
    /// Violations admitted with warnings (`warn` mode).
    Warned,
    /// Violations admitted and only recorded (`audit` mode).
    Audited,
    Denied,
    /// The request itself is malformed.
    Invalid,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Skipped => "skipped",
            Outcome::Allowed => "allowed",
            Outcome::Mutated => "mutated",
            Outcome::Warned => "warned",
            Outcome::Audited => "audited",
            Outcome::Denied => "denied",
            Outcome::Invalid => "invalid",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub outcome: Outcome,
    pub patch: Option<json_patch::Patch>,
    pub warnings: Vec<String>,
    pub violations: Vec<Violation>,
    pub status: Option<ResponseStatus>,
    pub audit_annotations: BTreeMap<String, String>,
}

impl Decision {
    fn new(outcome: Outcome) -> Decision {
        Decision {
            outcome,
            patch: None,
            warnings: Vec::new(),
            violations: Vec::new(),
            status: None,
            audit_annotations: BTreeMap::new(),
        }
    }

    /// Not ours to judge: admitted untouched.
    pub fn skipped() -> Decision {
        Decision::new(Outcome::Skipped)
    }

    /// The request itself is malformed (400 in the AdmissionResponse).
    pub fn invalid_request(message: String) -> Decision {
        Decision::invalid(message)
    }

    fn invalid(message: String) -> Decision {
        Decision {
            status: Some(ResponseStatus::bad_request(message)),
            ..Decision::new(Outcome::Invalid)
        }
    }

    pub fn allowed(&self) -> bool {
        !matches!(self.outcome, Outcome::Denied | Outcome::Invalid)
    }

    pub fn to_response(&self, uid: &str) -> AdmissionResponse {
        self.clone().into_response(uid)
    }

    /// The AdmissionReview answer on the wire: what `serde_json::to_vec` writes of
    /// `self.to_response(uid).into_review()`, without building it (see
    /// [`review::review_json`]).
    pub fn review_json(&self, uid: &str) -> Vec<u8> {
        let capped;
        let warnings = if self.warnings.len() > MAX_WARNINGS {
            capped = capped_warnings(self.warnings.clone());
            &capped
        } else {
            &self.warnings
        };
        review::review_json(review::ResponseParts {
            uid,
            allowed: self.allowed(),
            status: self.status.as_ref(),
            patch: self.patch.as_ref(),
            audit_annotations: &self.audit_annotations,
            warnings,
        })
    }

    /// [`Decision::to_response`] without copying what the decision already holds.
    pub fn into_response(self, uid: &str) -> AdmissionResponse {
        let allowed = self.allowed();
        let response = AdmissionResponse {
            uid: uid.to_owned(),
            allowed,
            status: self.status,
            audit_annotations: self.audit_annotations,
            warnings: capped_warnings(self.warnings),
            ..AdmissionResponse::default()
        };
        match &self.patch {
            Some(patch) => response.with_patch(patch),
            None => response,
        }
    }
}

/// kube-apiserver truncates long warning lists, and a pod with thousands of containers
/// would otherwise carry megabytes of them.
pub const MAX_WARNINGS: usize = 100;

fn capped_warnings(mut warnings: Vec<String>) -> Vec<String> {
    if warnings.len() <= MAX_WARNINGS {
        return warnings;
    }
    let shown = MAX_WARNINGS - 1;
    let hidden = warnings.len() - shown;
    warnings.truncate(shown);
    warnings.push(format!("mcpguard: {hidden} more warnings not shown"));
    warnings
}

/// The most containers (init, regular and ephemeral together) a pod may have for mcpguard to
/// judge it. Kubernetes sets no number, but etcd stores at most 1.5 MiB per object: with
/// the fields the API server defaults and this webhook adds, a container takes at least
/// ~110 bytes there, so no stored pod can exceed ~14,000 of them, and real pods have tens.
/// Above this, a review is only a dry run or an attack, and judging it would cost time and
/// memory in proportion (a denial names every container).
pub const MAX_CONTAINERS_PER_POD: usize = 1000;
/// The check ID of a pod over [`MAX_CONTAINERS_PER_POD`], in audit annotations and metrics.
pub const TOO_MANY_CONTAINERS: &str = "maxContainersPerPod";

/// How many containers a pod `spec` lists, in all three lists.
fn container_count(spec: &Value) -> usize {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|list| spec.get(list).and_then(Value::as_array))
        .map(Vec::len)
        .sum()
}

/// The denial of a pod with more than [`MAX_CONTAINERS_PER_POD`] containers, whatever the
/// policy's mode: mcpguard cannot judge it within its bounds, so it cannot vouch for it.
/// `subject` is the message's opening (`pods "x" is forbidden: `).
fn too_many_containers(subject: &str, policy: &str, count: usize) -> Decision {
    let detail = format!(
        "{count} containers (initContainers, containers and ephemeralContainers together) \
         exceed the limit of {MAX_CONTAINERS_PER_POD} per pod"
    );
    let message = format!("{subject}mcpguard: {detail}");
    one_violation_denial(
        message,
        policy,
        Violation {
            check: TOO_MANY_CONTAINERS.into(),
            reason: "too many containers".into(),
            detail,
            fields: Vec::new(),
        },
    )
}

/// A denial by one violation that no check of the policy made (a bound, a scheduling
/// conflict): named in the audit annotations like a check's, so it is counted and recorded.
fn one_violation_denial(message: String, policy: &str, violation: Violation) -> Decision {
    let mut decision = Decision::new(Outcome::Denied);
    decision.status = Some(ResponseStatus::forbidden(message));
    decision
        .audit_annotations
        .insert(AUDIT_POLICY.into(), policy.to_owned());
    decision
        .audit_annotations
        .insert(AUDIT_VIOLATIONS.into(), violation.check.clone());
    decision.violations = vec![violation];
    decision
}

/// What kind of pod request this is, once it is known to be in scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PodRequest {
    Create,
    PlainUpdate,
    EphemeralContainers,
    Resize,
}

enum Scoped {
    InScope(PodRequest),
    OutOfScope,
    UnknownOperation,
}

/// Whether the request is for the core `pods` resource (of any version, as PSA judges it:
/// `pods` of another group, such as `metrics.k8s.io`, are something else).
fn is_pod(request: &AdmissionRequest) -> bool {
    request.resource.group.is_empty() && request.resource.resource == "pods"
}

/// What a request for a pod asks, by namespace, operation and subresource.
fn classify(request: &AdmissionRequest, policy: &Policy) -> Scoped {
    let enforced = request
        .namespace
        .as_deref()
        .is_some_and(|ns| policy.enforces_namespace(ns));
    if !enforced {
        return Scoped::OutOfScope;
    }
    match (request.operation(), request.sub_resource()) {
        (None, _) => Scoped::UnknownOperation,
        (Some(Operation::Create), "") => Scoped::InScope(PodRequest::Create),
        (Some(Operation::Update), "") => Scoped::InScope(PodRequest::PlainUpdate),
        (Some(Operation::Update), "ephemeralcontainers") => {
            Scoped::InScope(PodRequest::EphemeralContainers)
        }
        (Some(Operation::Update), "resize") => Scoped::InScope(PodRequest::Resize),
        _ => Scoped::OutOfScope,
    }
}

fn unknown_operation(request: &AdmissionRequest) -> Decision {
    let mut decision = Decision::new(Outcome::Allowed);
    decision.warnings.push(format!(
        "mcpguard: unknown operation {:?}: admitted without checks",
        request.operation
    ));
    decision
}

/// The engine's mutation under one policy: [`mutate_pod`] for a pod; nothing else is
/// mutated. The webhook and the CLI reach it through `crate::admission`, which routes every
/// kind and picks the policy by namespace.
pub fn mutate(request: &AdmissionRequest, context: Context<'_>) -> Decision {
    if !is_pod(request) {
        return Decision::new(Outcome::Skipped);
    }
    mutate_pod(request, context)
}

/// The mutating webhook for a request already known to be for a pod: fills the policy's
/// defaults into pods being created and into ephemeral containers being added. Never denies
/// for policy reasons; validation does.
pub fn mutate_pod(request: &AdmissionRequest, context: Context<'_>) -> Decision {
    let kind = match classify(request, context.policy) {
        Scoped::InScope(kind @ (PodRequest::Create | PodRequest::EphemeralContainers)) => kind,
        Scoped::InScope(_) | Scoped::OutOfScope => return Decision::new(Outcome::Skipped),
        Scoped::UnknownOperation => return unknown_operation(request),
    };
    let Some(object) = &request.object else {
        return Decision::invalid("request.object is missing".into());
    };
    let existing_ephemeral = match kind {
        PodRequest::EphemeralContainers => ephemeral_names(request.old_object.as_deref()),
        _ => Vec::new(),
    };
    let scope = match kind {
        PodRequest::EphemeralContainers => Scope::NewEphemeralContainers {
            existing: &existing_ephemeral,
        },
        _ => Scope::WholePod,
    };
    let Some(spec) = object.get("spec").filter(|spec| spec.is_object()) else {
        return Decision::invalid("object has no spec".into());
    };
    // A mutating webhook's `allowed: false` rejects the request with its status, as a
    // validating webhook's does; an HTTP error would leave it to the failurePolicy.
    let count = container_count(spec).max(existing_ephemeral.len());
    if count > MAX_CONTAINERS_PER_POD {
        let subject = format!(
            "{} {:?} is forbidden: ",
            request.resource.resource,
            request.display_name()
        );
        return too_many_containers(&subject, &context.policy.name, count);
    }
    // Hardening writes its patch down as it goes, so it needs only a copy of what it reads.
    let mut hardened = harden::working_copy(spec);
    let mut changes = harden::Changes::recorded();
    let hardening = harden::harden_spec(
        &mut hardened,
        scope,
        context.policy,
        context.runtime_classes,
        &mut changes,
    );
    match hardening {
        Ok(hardening) => mutation_decision(changes.into_patch(), hardening, context.policy),
        Err(harden::MutationError::NotAPod(message)) => Decision::invalid(message),
        Err(conflict) => conflict_denial(
            &format!(
                "{} {:?} is forbidden: ",
                request.resource.resource,
                request.display_name()
            ),
            &context.policy.name,
            &conflict,
        ),
    }
}

/// A RuntimeClass scheduling conflict is a denial like any check's: it is named in the
/// audit annotations, counted, and recorded as an Event. `subject` is the message's
/// opening (`pods "x" is forbidden: `).
fn conflict_denial(subject: &str, policy: &str, conflict: &harden::MutationError) -> Decision {
    one_violation_denial(
        format!("{subject}mcpguard policy {policy:?}: {conflict}"),
        policy,
        Violation {
            check: RUNTIME_CLASS_SCHEDULING.into(),
            reason: "RuntimeClass scheduling conflict".into(),
            detail: conflict.to_string(),
            fields: Vec::new(),
        },
    )
}

fn mutation_decision(
    patch: json_patch::Patch,
    hardening: harden::Hardening,
    policy: &Policy,
) -> Decision {
    let mut decision = Decision::new(if patch.0.is_empty() {
        Outcome::Allowed
    } else {
        Outcome::Mutated
    });
    decision
        .audit_annotations
        .insert(AUDIT_POLICY.into(), policy.name.clone());
    if !patch.0.is_empty() {
        decision.patch = Some(patch);
        decision
            .audit_annotations
            .insert(AUDIT_MUTATED.into(), hardening.fields_set.join(","));
    }
    decision.warnings = hardening.warnings;
    decision
}

fn ephemeral_names(pod: Option<&Value>) -> Vec<String> {
    pod.and_then(|p| json_path::at(p, "/spec/ephemeralContainers"))
        .and_then(Value::as_array)
        .map(|containers| {
            containers
                .iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// What the validating webhook judges, once a request is in scope.
#[derive(Clone, Copy)]
enum Judged {
    Pod(PodRequest),
    Workload(&'static WorkloadKind),
}

/// The engine's validation under one policy: [`validate_pod`] for a pod,
/// [`validate_workload`] for a workload controller; anything else is skipped. The webhook and
/// the CLI reach it through `crate::admission`, which routes every kind and picks the policy
/// by namespace.
pub fn validate(request: &AdmissionRequest, context: Context<'_>) -> Decision {
    if is_pod(request) {
        return validate_pod(request, context);
    }
    match workloads::by_resource(&request.resource.group, &request.resource.resource) {
        Some(workload) => validate_workload(request, workload, context),
        None => Decision::new(Outcome::Skipped),
    }
}

/// The validating webhook for a request already known to be for a pod: every PSS check of
/// the policy's level and version, then the MCP rules and the CEL rules. Plain updates that
/// change no image or container are not judged, nor subresources other than
/// `ephemeralcontainers` and `resize`. Exceptions waive named checks; the mode decides whether
/// what remains denies, warns or is only recorded.
pub fn validate_pod(request: &AdmissionRequest, context: Context<'_>) -> Decision {
    match classify(request, context.policy) {
        Scoped::InScope(kind) => judge_request_object(request, Judged::Pod(kind), context),
        Scoped::UnknownOperation => unknown_operation(request),
        Scoped::OutOfScope => Decision::new(Outcome::Skipped),
    }
}

/// The validating webhook for a request already known to be for the workload controller
/// `workload`: its pod template judged as [`validate_pod`] judges a pod, mutated in memory
/// first as its pods will be. Updates that leave the template unchanged are not judged.
pub fn validate_workload(
    request: &AdmissionRequest,
    workload: &'static WorkloadKind,
    context: Context<'_>,
) -> Decision {
    if !workload_in_scope(request, context.policy) {
        return Decision::new(Outcome::Skipped);
    }
    judge_request_object(request, Judged::Workload(workload), context)
}

/// The pod, or the pod a workload's template would create, of a request in scope: judged,
/// and the verdict turned into a decision.
fn judge_request_object(
    request: &AdmissionRequest,
    judged: Judged,
    context: Context<'_>,
) -> Decision {
    let Some(object) = &request.object else {
        return Decision::invalid("request.object is missing".into());
    };
    let mut warnings = Vec::new();
    // What the CEL rules see of a pod is the object as sent; only they may read the
    // managedFields the parse kept aside.
    let reads_managed_fields = context.policy.rules.reads_managed_fields();
    let judged_workload = match judged {
        Judged::Workload(workload) => Some(workload),
        Judged::Pod(_) => None,
    };
    let (pod, resource, subject_prefix) = match judged {
        Judged::Pod(kind) => {
            if kind == PodRequest::PlainUpdate {
                let Some(old) = &request.old_object else {
                    return Decision::invalid("request.oldObject is missing on UPDATE".into());
                };
                if !is_significant_update(object, old) {
                    return Decision::new(Outcome::Skipped);
                }
            }
            let count = object.get("spec").map_or(0, container_count);
            if count > MAX_CONTAINERS_PER_POD {
                let subject = format!(
                    "{} {:?} is forbidden: ",
                    request.resource.resource,
                    request.display_name()
                );
                return too_many_containers(&subject, &context.policy.name, count);
            }
            (
                JudgedPod::Json(object.with_managed_fields_if(reads_managed_fields)),
                request.resource.resource.clone(),
                String::new(),
            )
        }
        Judged::Workload(workload) => {
            let Some(template) = workload.template(object) else {
                return Decision::invalid(format!(
                    "{} has no pod template at {}",
                    workload.kind, workload.template
                ));
            };
            let old_template = request
                .old_object
                .as_ref()
                .and_then(|old| workload.template(old));
            if old_template == Some(template) {
                // Scaling, or a Helm upgrade of other fields: never denied because the policy
                // changed since. Its new pods are still judged when they are created.
                return Decision::new(Outcome::Skipped);
            }
            let count = template.get("spec").map_or(0, container_count);
            if count > MAX_CONTAINERS_PER_POD {
                let subject = format!(
                    "{} {:?} is forbidden: {WORKLOAD_DENIAL}",
                    workload.qualified_resource(),
                    request.display_name()
                );
                return too_many_containers(&subject, &context.policy.name, count);
            }
            let display = format!("{} {:?}", workload.kind, request.display_name());
            let pod = match JudgedPod::of_template(template, context) {
                Ok((pod, mutation_warnings)) => {
                    warnings.extend(mutation_warnings.iter().map(|w| {
                        let detail = w.strip_prefix("mcpguard: ").unwrap_or(w);
                        harden::truncate_warning(format!(
                            "mcpguard: pods of {display} will get: {detail}"
                        ))
                    }));
                    pod
                }
                Err(harden::MutationError::NotAPod(message)) => return Decision::invalid(message),
                Err(conflict) => {
                    let subject = format!(
                        "{} {:?} is forbidden: {WORKLOAD_DENIAL}",
                        workload.qualified_resource(),
                        request.display_name()
                    );
                    return conflict_denial(&subject, &context.policy.name, &conflict);
                }
            };
            (
                pod,
                workload.qualified_resource(),
                WORKLOAD_DENIAL.to_owned(),
            )
        }
    };
    let namespace = request.namespace.as_deref().unwrap_or("");
    let name = request.display_name();
    let groups = request.user_info.groups.clone().unwrap_or_default();
    let username = request.user_info.username.as_deref().unwrap_or("");
    // `oldObject` for CEL rules, in the same form as the object judged; built only when a
    // rule reads it (for a workload it costs a second mutation).
    let old_pod = match (judged, &request.old_object) {
        _ if !context.policy.rules.uses_old_object() => None,
        (_, None) => None,
        (Judged::Pod(_), Some(old)) => Some(old.with_managed_fields_if(reads_managed_fields)),
        (Judged::Workload(workload), Some(old)) => workload
            .template(old)
            .and_then(|template| pod_of_workload(template, context).ok())
            .map(|(pod, _)| Cow::Owned(pod)),
    };
    let rule_input = RuleInput {
        operation: &request.operation,
        old_object: old_pod.as_deref(),
        namespace,
        name: &name,
        username,
        groups: &groups,
    };
    let judged_outcome = match (judged, &pod) {
        // PSA allows every resize (its significant-update rule sees no image or container
        // change): only what a resize can break is judged.
        (Judged::Pod(PodRequest::Resize), JudgedPod::Json(resized)) => {
            judge_request_by(resized, &rule_input, context, judge_resized_pod)
        }
        _ => pod.judge(&rule_input, context),
    };
    let outcome = match judged_outcome {
        Ok(outcome) => outcome,
        Err(message) => return Decision::invalid(message),
    };
    let mut decision = Decision::new(Outcome::Allowed);
    decision
        .audit_annotations
        .insert(AUDIT_POLICY.into(), context.policy.name.clone());
    for waiver in &outcome.waivers {
        let scope = if waiver.containers.is_empty() {
            "the pod".to_owned()
        } else {
            crate::violation::containers_phrase(
                &waiver
                    .containers
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            )
        };
        warnings.push(harden::truncate_warning(format!(
            "mcpguard: exception {:?} waives {} for {scope}",
            waiver.exception,
            waiver.checks.join(", ")
        )));
    }
    for (exception, expires) in &outcome.expired {
        warnings.push(harden::truncate_warning(format!(
            "mcpguard: exception {exception:?} expired ({expires}) and no longer applies"
        )));
    }
    if !outcome.waivers.is_empty() {
        let names: Vec<&str> = outcome
            .waivers
            .iter()
            .map(|w| w.exception.as_str())
            .collect();
        decision
            .audit_annotations
            .insert(AUDIT_EXCEPTIONS.into(), names.join(","));
    }
    let mut violations = outcome.violations;
    if let Some(workload) = judged_workload {
        // The pod judged is the template's: its fields are reported where the template is.
        let template = workload.template_path();
        for violation in &mut violations {
            violation.prefix_fields(&template);
        }
    }
    if !violations.is_empty() {
        let mode = context.policy.mode_for(namespace);
        decision
            .audit_annotations
            .insert(AUDIT_VIOLATIONS.into(), violation_ids(&violations));
        if mode != Mode::Enforce {
            // A denial speaks for itself; an admitted violation says why it was admitted.
            decision
                .audit_annotations
                .insert(AUDIT_MODE.into(), mode.as_str().into());
        }
        match mode {
            Mode::Enforce => {
                decision.outcome = Outcome::Denied;
                decision.status = Some(ResponseStatus::forbidden(format!(
                    "{resource} {name:?} is forbidden: {subject_prefix}{}",
                    violation_summary(&context.policy.name, &violations)
                )));
            }
            Mode::Warn => {
                decision.outcome = Outcome::Warned;
                let subject = match judged_workload {
                    Some(workload) => format!("pods of {} {name:?} ", workload.kind),
                    None => String::new(),
                };
                warnings.extend(violations.iter().map(|v| {
                    harden::truncate_warning(format!(
                        "mcpguard: {subject}would violate policy {:?}: {v}",
                        context.policy.name
                    ))
                }));
            }
            Mode::Audit => decision.outcome = Outcome::Audited,
        }
        decision.violations = violations;
    }
    decision.warnings = warnings;
    decision
}

/// What a workload's pods will look like when created: the template with the API
/// server's defaults, the webhook's mutation, and the defaults again. Returns the pod and the
/// mutation's warnings.
pub fn pod_of_workload(
    template: &Value,
    context: Context<'_>,
) -> Result<(Value, Vec<String>), harden::MutationError> {
    let mut pod = workloads::pod_of_template(template);
    api_defaults::apply_pod_defaults(&mut pod);
    let Some(spec) = pod.get_mut("spec") else {
        return Err(harden::MutationError::NotAPod("object has no spec".into()));
    };
    // The pod is ours: hardened in place, with no patch to write down.
    let hardening = harden::harden_spec(
        spec,
        Scope::WholePod,
        context.policy,
        context.runtime_classes,
        &mut harden::Changes::unrecorded(),
    )?;
    api_defaults::apply_pod_defaults(&mut pod);
    Ok((pod, hardening.warnings))
}

/// Every check, then the policy's exceptions, for a pod (or a workload's effective pod)
/// named `name` in `namespace`, requested by `username` in `groups`: a CREATE, as the CLI,
/// the background audit and the reconciler judge objects.
pub fn judge_with_exceptions(
    pod: &Value,
    namespace: &str,
    name: &str,
    username: &str,
    groups: &[String],
    context: Context<'_>,
) -> Result<exceptions::Outcome, String> {
    let request = RuleInput::create(namespace, name, username, groups);
    judge_request(pod, &request, context)
}

/// Every check, then the policy's exceptions, for a pod (or a workload's effective pod) in
/// the request `request` describes.
pub fn judge_request(
    pod: &Value,
    request: &RuleInput<'_>,
    context: Context<'_>,
) -> Result<exceptions::Outcome, String> {
    judge_request_by(pod, request, context, judge_pod)
}

/// The checks a pod is judged by: [`judge_pod`], or [`judge_resized_pod`].
type PodChecks = fn(&Value, &Policy, &RuleInput<'_>) -> Result<Vec<Violation>, String>;

/// [`judge_request`] with `checks` for the checks (and for re-judging under exceptions).
fn judge_request_by(
    pod: &Value,
    request: &RuleInput<'_>,
    context: Context<'_>,
    checks: PodChecks,
) -> Result<exceptions::Outcome, String> {
    let violations = checks(pod, context.policy, request)?;
    let service_account = json_path::at(pod, "/spec/serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let subject = exceptions::Subject {
        namespace: request.namespace,
        name: request.name,
        service_account,
        username: request.username,
        groups: request.groups,
    };
    let judge = |pod: &Value| checks(pod, context.policy, request);
    exceptions::apply(
        context.policy,
        pod,
        subject,
        violations,
        context.now,
        &judge,
    )
}

/// Whether a workload request is one the policy judges: a CREATE or UPDATE of the object
/// itself (not a subresource such as `scale` or `status`) in an enforced namespace.
fn workload_in_scope(request: &AdmissionRequest, policy: &Policy) -> bool {
    let enforced = request
        .namespace
        .as_deref()
        .is_some_and(|ns| policy.enforces_namespace(ns));
    let operation = request.operation();
    let create_or_update = matches!(operation, Some(Operation::Create | Operation::Update));
    enforced && create_or_update && request.sub_resource().is_empty()
}

pub fn violation_ids(violations: &[Violation]) -> String {
    let ids: Vec<&str> = violations.iter().map(|v| v.check.as_str()).collect();
    ids.join(",")
}

/// Every PSS check of the policy's level and version, then the MCP rules, then the policy's
/// CEL rules, for a pod or a pod template (`{metadata, spec}`). `request` is what the CEL
/// rules see as `request` and `oldObject`.
pub fn judge_pod(
    pod: &Value,
    policy: &Policy,
    request: &RuleInput<'_>,
) -> Result<Vec<Violation>, String> {
    let metadata = decode_annotations(json_path::at(pod, "/metadata/annotations"))?;
    let raw_spec = pod.get("spec").ok_or("object has no spec")?;
    let spec: PodSpec =
        redact::decode(raw_spec, "spec").map_err(|e| format!("cannot decode {e}"))?;
    let mut violations = judge_typed(&metadata, &spec, policy);
    violations.extend(policy.rules.evaluate(pod, request));
    Ok(violations)
}

/// What a `pods/resize` can break: the policy's resource ceilings, and its CEL rules (which
/// see `oldObject` and may judge the change itself). The Pod Security Standards and the other
/// MCP rules judge what a resize cannot change.
fn judge_resized_pod(
    pod: &Value,
    policy: &Policy,
    request: &RuleInput<'_>,
) -> Result<Vec<Violation>, String> {
    let raw_spec = pod.get("spec").ok_or("object has no spec")?;
    let spec: PodSpec =
        redact::decode(raw_spec, "spec").map_err(|e| format!("cannot decode {e}"))?;
    let mut violations: Vec<Violation> = rules::evaluate(policy, &spec)
        .into_iter()
        .filter(|violation| violation.check == rules::MAX_RESOURCES)
        .collect();
    violations.extend(policy.rules.evaluate(pod, request));
    Ok(violations)
}

/// [`judge_pod`] without the CEL rules, for a spec already decoded.
fn judge_decoded(
    annotations: Option<&Value>,
    spec: &PodSpec,
    policy: &Policy,
) -> Result<Vec<Violation>, String> {
    Ok(judge_typed(&decode_annotations(annotations)?, spec, policy))
}

/// The checks read only annotations (seccomp, AppArmor); decoding the rest of the metadata
/// (managedFields above all) would be most of a review's work.
fn decode_annotations(annotations: Option<&Value>) -> Result<ObjectMeta, String> {
    let annotations = match annotations {
        None | Some(Value::Null) => None,
        Some(raw) => Some(
            redact::decode::<BTreeMap<String, String>>(raw, "metadata.annotations")
                .map_err(|e| format!("cannot decode {e}"))?,
        ),
    };
    Ok(ObjectMeta {
        annotations,
        ..ObjectMeta::default()
    })
}

fn judge_typed(metadata: &ObjectMeta, spec: &PodSpec, policy: &Policy) -> Vec<Violation> {
    let security = policy.spec.pod_security;
    let mut violations: Vec<Violation> =
        pss::evaluate(security.level, security.version, metadata, spec)
            .into_iter()
            .map(Violation::from)
            .collect();
    violations.extend(rules::evaluate(policy, spec));
    for violation in &mut violations {
        placed_in_pod(violation);
    }
    violations
}

/// The checks name fields relative to the PodSpec, or (`metadata.…`, which a PodSpec has
/// not) to the pod's metadata: rebased to the pod, where the rest of the engine reports them.
fn placed_in_pod(violation: &mut Violation) {
    for field in &mut violation.fields {
        if !field.starts_with("metadata.") {
            *field = format!("spec.{field}");
        }
    }
}

/// PSA's rule: an update matters when it changes an image or the set of containers, or adds
/// an ephemeral container. Anything else (labels, finalizers, owner references, annotations)
/// must pass, or pods admitted under an older policy could never be cleaned up. PSA stopped
/// comparing the seccomp annotations in 1.27 (kubernetes#114846), when they stopped doing
/// anything: removing one from an old pod is not judged either.
fn is_significant_update(new: &Value, old: &Value) -> bool {
    fn list<'v>(pod: &'v Value, key: &str) -> &'v [Value] {
        pod.get("spec")
            .and_then(|spec| spec.get(key))
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }
    let image_changed = |container: &Value, old_container: &Value| {
        container.get("image") != old_container.get("image")
    };
    for key in ["containers", "initContainers"] {
        let (new_list, old_list) = (list(new, key), list(old, key));
        if new_list.len() != old_list.len()
            || new_list
                .iter()
                .zip(old_list)
                .any(|(n, o)| image_changed(n, o))
        {
            return true;
        }
    }
    // By name, through a map: a scan of the old list per new container was quadratic.
    // A container without a string name is judged (and fails to decode) as new.
    fn name_of(container: &Value) -> Option<&str> {
        container.get("name").and_then(Value::as_str)
    }
    let old_ephemeral: std::collections::HashMap<&str, &Value> = list(old, "ephemeralContainers")
        .iter()
        .rev()
        .filter_map(|o| Some((name_of(o)?, o)))
        .collect();
    list(new, "ephemeralContainers").iter().any(|container| {
        match name_of(container).and_then(|name| old_ephemeral.get(name)) {
            None => true,
            Some(old_container) => image_changed(container, old_container),
        }
    })
}
mod judged_pod;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod workload_tests;

use judged_pod::JudgedPod;
