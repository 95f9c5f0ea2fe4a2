//! The one decision function. `mutate` and `validate` answer the webhook, `check_pod`
//! answers the CLI; all three share the same hardening and the same checks.
//!
//! Pure: a decision depends only on the request, the policy and the RuntimeClass snapshot
//! passed in. No I/O, no clock, no global state.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde_json::Value;

use crate::admission::review::{AdmissionRequest, AdmissionResponse, Operation, ResponseStatus};
use crate::harden::{self, Mutation, Scope};
use crate::policy::Policy;
use crate::pss;
use crate::rules;
use crate::runtime_class::RuntimeClassLookup;
use crate::violation::{Violation, denial_message};

pub const AUDIT_POLICY: &str = "policy";
pub const AUDIT_VIOLATIONS: &str = "violations";
pub const AUDIT_MUTATED: &str = "mutated";

const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub policy: &'a Policy,
    pub runtime_classes: &'a dyn RuntimeClassLookup,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not ours to judge (namespace, kind, subresource, operation): admitted untouched.
    Skipped,
    Allowed,
    Mutated,
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
        let response = AdmissionResponse {
            uid: uid.to_owned(),
            allowed: self.allowed(),
            status: self.status.clone(),
            audit_annotations: self.audit_annotations.clone(),
            warnings: self.warnings.clone(),
            ..AdmissionResponse::default()
        };
        match &self.patch {
            Some(patch) => response.with_patch(patch),
            None => response,
        }
    }
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

fn classify(request: &AdmissionRequest, policy: &Policy) -> Scoped {
    let is_pod = request.resource.group.is_empty() && request.resource.resource == "pods";
    let enforced = request
        .namespace
        .as_deref()
        .is_some_and(|ns| policy.enforces_namespace(ns));
    if !is_pod || !enforced {
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

/// The mutating webhook: fills the policy's defaults into pods being created and into
/// ephemeral containers being added. Never denies for policy reasons; validation does.
pub fn mutate(request: &AdmissionRequest, context: Context<'_>) -> Decision {
    let kind = match classify(request, context.policy) {
        Scoped::InScope(kind @ (PodRequest::Create | PodRequest::EphemeralContainers)) => kind,
        Scoped::InScope(_) | Scoped::OutOfScope => return Decision::new(Outcome::Skipped),
        Scoped::UnknownOperation => return unknown_operation(request),
    };
    let Some(object) = &request.object else {
        return Decision::invalid("request.object is missing".into());
    };
    let existing_ephemeral = match kind {
        PodRequest::EphemeralContainers => ephemeral_names(request.old_object.as_ref()),
        _ => Vec::new(),
    };
    let scope = match kind {
        PodRequest::EphemeralContainers => Scope::NewEphemeralContainers {
            existing: &existing_ephemeral,
        },
        _ => Scope::WholePod,
    };
    match harden::harden_pod(object, scope, context.policy, context.runtime_classes) {
        Ok(mutation) => mutation_decision(object, mutation, context.policy),
        Err(harden::MutationError::NotAPod(message)) => Decision::invalid(message),
        Err(conflict) => {
            let mut decision = Decision::new(Outcome::Denied);
            decision.status = Some(ResponseStatus::forbidden(format!(
                "{} {:?} is forbidden: mcpguard policy {:?}: {conflict}",
                request.resource.resource,
                request.display_name(),
                context.policy.name
            )));
            decision
                .audit_annotations
                .insert(AUDIT_POLICY.into(), context.policy.name.clone());
            decision
        }
    }
}

fn mutation_decision(original: &Value, mutation: Mutation, policy: &Policy) -> Decision {
    let patch = json_patch::diff(original, &mutation.pod);
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
            .insert(AUDIT_MUTATED.into(), mutation.fields_set.join(","));
    }
    decision.warnings = mutation.warnings;
    decision
}

fn ephemeral_names(pod: Option<&Value>) -> Vec<String> {
    pod.and_then(|p| p.pointer("/spec/ephemeralContainers"))
        .and_then(Value::as_array)
        .map(|containers| {
            containers
                .iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The validating webhook: every PSS check of the policy's level and version, then the
/// MCP rules. Plain pod updates are judged only when they change what policy judges.
pub fn validate(request: &AdmissionRequest, context: Context<'_>) -> Decision {
    let kind = match classify(request, context.policy) {
        Scoped::InScope(kind) => kind,
        Scoped::OutOfScope => return Decision::new(Outcome::Skipped),
        Scoped::UnknownOperation => return unknown_operation(request),
    };
    let Some(object) = &request.object else {
        return Decision::invalid("request.object is missing".into());
    };
    if kind == PodRequest::PlainUpdate {
        let Some(old) = &request.old_object else {
            return Decision::invalid("request.oldObject is missing on UPDATE".into());
        };
        if !is_significant_update(object, old) {
            return Decision::new(Outcome::Skipped);
        }
    }
    let violations = match judge_pod(object, context.policy) {
        Ok(violations) => violations,
        Err(message) => return Decision::invalid(message),
    };
    let mut decision = Decision::new(Outcome::Allowed);
    decision
        .audit_annotations
        .insert(AUDIT_POLICY.into(), context.policy.name.clone());
    if violations.is_empty() {
        return decision;
    }
    decision.outcome = Outcome::Denied;
    decision.status = Some(ResponseStatus::forbidden(denial_message(
        &request.resource.resource,
        &request.display_name(),
        &context.policy.name,
        &violations,
    )));
    decision
        .audit_annotations
        .insert(AUDIT_VIOLATIONS.into(), violation_ids(&violations));
    decision.violations = violations;
    decision
}

pub fn violation_ids(violations: &[Violation]) -> String {
    let ids: Vec<&str> = violations.iter().map(|v| v.check.as_str()).collect();
    ids.join(",")
}

/// Every PSS check of the policy's level and version, then the MCP rules, for a pod or a
/// pod template (`{metadata, spec}`).
pub fn judge_pod(pod: &Value, policy: &Policy) -> Result<Vec<Violation>, String> {
    let metadata = match pod.get("metadata") {
        None | Some(Value::Null) => ObjectMeta::default(),
        Some(raw) => {
            ObjectMeta::deserialize(raw).map_err(|e| format!("cannot decode metadata: {e}"))?
        }
    };
    let raw_spec = pod.get("spec").ok_or("object has no spec")?;
    let spec = PodSpec::deserialize(raw_spec).map_err(|e| format!("cannot decode spec: {e}"))?;
    let security = policy.spec.pod_security;
    let mut violations: Vec<Violation> =
        pss::evaluate(security.level, security.version, &metadata, &spec)
            .into_iter()
            .map(Violation::from)
            .collect();
    violations.extend(rules::evaluate(policy, &spec));
    Ok(violations)
}

/// PSA's rule: an update matters when it changes images, the set of containers, ephemeral
/// containers or seccomp annotations. Anything else (labels, finalizers, owner references)
/// must pass, or pods admitted under an older policy could never be cleaned up.
fn is_significant_update(new: &Value, old: &Value) -> bool {
    let annotation = |pod: &Value, key: &str| {
        pod.pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if annotation(new, SECCOMP_POD_ANNOTATION) != annotation(old, SECCOMP_POD_ANNOTATION) {
        return true;
    }
    let list = |pod: &'_ Value, key: &str| -> Vec<Value> {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let container_changed = |container: &Value, old_container: &Value| {
        let name = container.get("name").and_then(Value::as_str).unwrap_or("");
        let seccomp_key = format!("{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{name}");
        container.get("image") != old_container.get("image")
            || annotation(new, &seccomp_key) != annotation(old, &seccomp_key)
    };
    for key in ["containers", "initContainers"] {
        let (new_list, old_list) = (list(new, key), list(old, key));
        if new_list.len() != old_list.len()
            || new_list
                .iter()
                .zip(&old_list)
                .any(|(n, o)| container_changed(n, o))
        {
            return true;
        }
    }
    let old_ephemeral = list(old, "ephemeralContainers");
    list(new, "ephemeralContainers").iter().any(|container| {
        let name = container.get("name");
        match old_ephemeral.iter().find(|o| o.get("name") == name) {
            None => true,
            Some(old_container) => container_changed(container, old_container),
        }
    })
}
#[cfg(test)]
mod tests;
