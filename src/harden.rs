//! Mutation: the policy's defaults filled into a pod's raw JSON.
//!
//! The pod is never decoded into a typed struct here: a field that k8s-openapi does not know
//! (a newer Kubernetes, an alpha gate) must survive, and the patch is the difference between
//! the raw input and the raw output, so only what this module means to touch is touched.
//!
//! Rules: a value the pod sets explicitly is kept (validation judges it); a value it leaves
//! absent is filled; `imagePullPolicy` is set, because API defaulting filled it before any
//! webhook saw the pod; turning on `runtimeClassName` or turning off the service-account
//! token finishes the work of the admission plugins that already ran.

use serde_json::{Map, Value};

use crate::policy::Policy;
use crate::quantity;
use crate::runtime_class::{RuntimeClassInfo, RuntimeClassLookup};

/// The API server truncates longer warnings; stay under it.
pub const MAX_WARNING_LEN: usize = 255;

/// Pod securityContext fields the API server refuses on Windows pods.
const LINUX_ONLY_POD_FIELDS: &[&str] = &[
    "seLinuxOptions",
    "seccompProfile",
    "runAsUser",
    "runAsGroup",
    "fsGroup",
    "fsGroupChangePolicy",
    "sysctls",
    "supplementalGroups",
    "supplementalGroupsPolicy",
    "appArmorProfile",
    "seLinuxChangePolicy",
];

/// Container securityContext fields the API server refuses on Windows pods.
const LINUX_ONLY_CONTAINER_FIELDS: &[&str] = &[
    "seLinuxOptions",
    "seccompProfile",
    "capabilities",
    "readOnlyRootFilesystem",
    "privileged",
    "allowPrivilegeEscalation",
    "procMount",
    "runAsUser",
    "runAsGroup",
    "appArmorProfile",
];

/// Container fields that inherit from the pod securityContext: when the pod sets one
/// explicitly, that explicit choice is the container's too and is not overridden.
const INHERITED_FROM_POD: &[&str] = &[
    "runAsNonRoot",
    "runAsUser",
    "runAsGroup",
    "seccompProfile",
    "seLinuxOptions",
    "appArmorProfile",
    "windowsOptions",
];

const TOKEN_VOLUME_PREFIX: &str = "kube-api-access-";

/// Which parts of the pod a mutation may change.
#[derive(Clone, Debug)]
pub enum Scope<'a> {
    /// A pod being created (or a pod template): everything.
    WholePod,
    /// `pods/ephemeralcontainers`: only ephemeral containers whose names are not in `existing`.
    NewEphemeralContainers { existing: &'a [String] },
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mutation {
    pub pod: Value,
    /// At most one per container (plus one for the pod), each at most [`MAX_WARNING_LEN`].
    pub warnings: Vec<String>,
    /// Sorted, de-duplicated names of the fields set (for audit annotations).
    pub fields_set: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MutationError {
    /// The same conflict the RuntimeClass admission plugin would report.
    #[error(
        "RuntimeClass {class:?} requires nodeSelector {key}={class_value:?} but the pod sets {key}={pod_value:?}"
    )]
    NodeSelectorConflict {
        class: String,
        key: String,
        class_value: String,
        pod_value: String,
    },
    #[error("{0}")]
    NotAPod(String),
}

/// Fills the policy's defaults into a pod (`{metadata, spec}`) or pod template.
pub fn harden_pod(
    pod: &Value,
    scope: Scope<'_>,
    policy: &Policy,
    runtime_classes: &dyn RuntimeClassLookup,
) -> Result<Mutation, MutationError> {
    let spec = pod
        .get("spec")
        .filter(|spec| spec.is_object())
        .ok_or_else(|| MutationError::NotAPod("object has no spec".into()))?;
    let hardened_spec = harden_spec(spec, scope, policy, runtime_classes)?;
    // Only the spec changes: the metadata (often most of the object, with managedFields
    // and annotations) is copied, never walked.
    let mut hardened = pod.clone();
    hardened["spec"] = hardened_spec.spec;
    Ok(Mutation {
        pod: hardened,
        warnings: hardened_spec.warnings,
        fields_set: hardened_spec.fields_set,
    })
}

/// [`harden_pod`] on the spec alone, for callers that patch only the spec (the webhook).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpecMutation {
    pub spec: Value,
    pub warnings: Vec<String>,
    pub fields_set: Vec<String>,
}

pub fn harden_spec(
    spec: &Value,
    scope: Scope<'_>,
    policy: &Policy,
    runtime_classes: &dyn RuntimeClassLookup,
) -> Result<SpecMutation, MutationError> {
    let mut hardened = spec.clone();
    let spec = hardened
        .as_object_mut()
        .ok_or_else(|| MutationError::NotAPod("object has no spec".into()))?;
    let windows = spec.pointer_str(&["os", "name"]) == Some("windows");
    let mut report = Report::default();

    let explicit_pod_fields: Vec<String> = spec
        .get("securityContext")
        .and_then(Value::as_object)
        .map(|sc| {
            sc.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();

    if matches!(scope, Scope::WholePod) {
        harden_pod_level(spec, windows, policy, runtime_classes, &mut report)?;
    }
    let lists: &[(&str, &str)] = match scope {
        Scope::WholePod => &[
            ("initContainers", "init container"),
            ("containers", "container"),
        ],
        Scope::NewEphemeralContainers { .. } => &[("ephemeralContainers", "ephemeral container")],
    };
    for (list, label) in lists {
        let Some(Value::Array(containers)) = spec.get_mut(*list) else {
            continue;
        };
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            let name = container
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            if let Scope::NewEphemeralContainers { existing } = scope
                && existing.contains(&name)
            {
                continue;
            }
            let mut set = Vec::new();
            harden_container(
                container,
                *list != "ephemeralContainers",
                windows,
                &explicit_pod_fields,
                policy,
                &mut set,
                &mut report,
            );
            report.warn(&format!("{label} {name:?}"), &set);
        }
    }
    report.fields.sort();
    report.fields.dedup();
    Ok(SpecMutation {
        spec: hardened,
        warnings: report.warnings,
        fields_set: report.fields,
    })
}

#[derive(Default)]
struct Report {
    warnings: Vec<String>,
    fields: Vec<String>,
}

impl Report {
    fn warn(&mut self, subject: &str, set: &[String]) {
        if set.is_empty() {
            return;
        }
        self.warnings.push(truncate_warning(format!(
            "mcpguard: {subject}: set {}",
            set.join(", ")
        )));
    }
}

pub fn truncate_warning(warning: String) -> String {
    truncate_at(warning, MAX_WARNING_LEN)
}

/// `text` cut to at most `max` bytes on a character boundary, marked with `...` when cut.
pub fn truncate_at(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut cut = max.saturating_sub(3);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push_str("...");
    text
}

fn harden_pod_level(
    spec: &mut Map<String, Value>,
    windows: bool,
    policy: &Policy,
    runtime_classes: &dyn RuntimeClassLookup,
    report: &mut Report,
) -> Result<(), MutationError> {
    let mutate = &policy.spec.mutate;
    let mut set = Vec::new();
    let had_context = spec.contains_key("securityContext");
    if let Some(defaults) = &mutate.pod_security_context {
        let target = object_entry(spec, "securityContext");
        let skip = |key: &str| windows && LINUX_ONLY_POD_FIELDS.contains(&key);
        fill_missing(
            target,
            defaults,
            &skip,
            "spec.securityContext",
            &mut set,
            &mut report.fields,
        );
    }
    if let Some(class_name) = &mutate.runtime_class_name
        && is_absent(spec.get("runtimeClassName"))
    {
        spec.insert("runtimeClassName".into(), Value::String(class_name.clone()));
        set.push(format!("runtimeClassName={class_name}"));
        report.fields.push("spec.runtimeClassName".into());
        match runtime_classes.get(class_name) {
            Some(class) => apply_runtime_class(spec, class_name, &class, &mut set, &mut report.fields)?,
            None => report.warnings.push(truncate_warning(format!(
                "mcpguard: RuntimeClass {class_name:?} is not known to mcpguard: its overhead and scheduling were not copied"
            ))),
        }
    }
    if let Some(automount) = mutate.automount_service_account_token
        && is_absent(spec.get("automountServiceAccountToken"))
    {
        spec.insert(
            "automountServiceAccountToken".into(),
            Value::Bool(automount),
        );
        set.push(format!("automountServiceAccountToken={automount}"));
        report
            .fields
            .push("spec.automountServiceAccountToken".into());
        if !automount {
            for removed in remove_token_volumes(spec) {
                set.push(format!("removed volume {removed}"));
                report.fields.push("spec.volumes".into());
                report.fields.push("containers.volumeMounts".into());
            }
        }
    }
    if !mutate.tolerations.is_empty() {
        let added = append_missing(array_entry(spec, "tolerations"), &mutate.tolerations);
        if added > 0 {
            set.push(format!("{added} toleration(s)"));
            report.fields.push("spec.tolerations".into());
        }
    }
    if let Some(affinity) = &mutate.affinity {
        let target = object_entry(spec, "affinity");
        let mut affinity_set = Vec::new();
        fill_missing(
            target,
            affinity,
            &|_| false,
            "spec.affinity",
            &mut affinity_set,
            &mut report.fields,
        );
        if !affinity_set.is_empty() {
            set.push("affinity".into());
        }
    }
    let created_empty_context = !had_context
        && spec
            .get("securityContext")
            .is_some_and(|sc| sc.as_object().is_some_and(Map::is_empty));
    if created_empty_context {
        // An empty object we created for nothing would be a needless patch.
        spec.remove("securityContext");
    }
    report.warn("pod", &set);
    Ok(())
}

fn harden_container(
    container: &mut Map<String, Value>,
    takes_resources: bool,
    windows: bool,
    explicit_pod_fields: &[String],
    policy: &Policy,
    set: &mut Vec<String>,
    report: &mut Report,
) {
    let mutate = &policy.spec.mutate;
    if let Some(defaults) = &mutate.container_security_context {
        let had_context = container.contains_key("securityContext");
        let target = object_entry(container, "securityContext");
        let escalation_forced = requires_privilege_escalation(target);
        let skip = |key: &str| {
            (windows && LINUX_ONLY_CONTAINER_FIELDS.contains(&key))
                || (INHERITED_FROM_POD.contains(&key)
                    && explicit_pod_fields.iter().any(|f| f == key))
                || (key == "allowPrivilegeEscalation" && escalation_forced)
        };
        fill_missing(
            target,
            defaults,
            &skip,
            "containers.securityContext",
            set,
            &mut report.fields,
        );
        if !had_context && target.is_empty() {
            container.remove("securityContext");
        }
    }
    if let Some(policy_value) = mutate.image_pull_policy {
        let wanted = policy_value.as_str();
        if container.get("imagePullPolicy").and_then(Value::as_str) != Some(wanted) {
            container.insert("imagePullPolicy".into(), Value::String(wanted.into()));
            set.push(format!("imagePullPolicy={wanted}"));
            report.fields.push("containers.imagePullPolicy".into());
        }
    }
    if takes_resources {
        fill_resources(container, policy, set, &mut report.fields);
    }
}

fn fill_resources(
    container: &mut Map<String, Value>,
    policy: &Policy,
    set: &mut Vec<String>,
    fields: &mut Vec<String>,
) {
    let defaults = policy.spec.mutate.resources.as_ref();
    let nothing_to_fill = defaults.is_none_or(|d| d.requests.is_empty() && d.limits.is_empty())
        && policy.ceilings.is_empty();
    if nothing_to_fill {
        return;
    }
    let had_resources = container.contains_key("resources");
    let resources = object_entry(container, "resources");
    if let Some(defaults) = defaults {
        for (section, values) in [
            ("requests", &defaults.requests),
            ("limits", &defaults.limits),
        ] {
            for (resource, quantity) in values {
                // A default limit below the container's own request would make the API server
                // refuse the pod over a limit its author never wrote.
                if section == "limits" && !request_fits_under(resources, resource, quantity) {
                    continue;
                }
                let section_map = object_entry(resources, section);
                if is_absent(section_map.get(resource)) {
                    section_map.insert(resource.clone(), Value::String(quantity.clone()));
                    set.push(format!("{section}.{resource}={quantity}"));
                    fields.push(format!("containers.resources.{section}.{resource}"));
                }
            }
        }
    }
    // Like a LimitRange default: a missing limit becomes the ceiling, unless the explicit
    // request is already above it (then validation names the real problem).
    for ceiling in &policy.ceilings {
        let request_fits = request_fits_under(resources, &ceiling.resource, &ceiling.raw);
        let limits = object_entry(resources, "limits");
        if request_fits && is_absent(limits.get(&ceiling.resource)) {
            limits.insert(ceiling.resource.clone(), Value::String(ceiling.raw.clone()));
            set.push(format!("limits.{}={}", ceiling.resource, ceiling.raw));
            fields.push(format!("containers.resources.limits.{}", ceiling.resource));
        }
    }
    for section in ["requests", "limits"] {
        if resources
            .get(section)
            .is_some_and(|s| s.as_object().is_some_and(Map::is_empty))
        {
            resources.remove(section);
        }
    }
    if !had_resources && resources.is_empty() {
        container.remove("resources");
    }
}

/// The API server refuses `allowPrivilegeEscalation: false` next to `privileged: true` or an
/// added `CAP_SYS_ADMIN`. Filling it there would turn mcpguard's clear denial of the
/// privilege into an opaque "Pod is invalid" from the API server, so it is left alone.
fn requires_privilege_escalation(security_context: &Map<String, Value>) -> bool {
    let privileged = security_context.get("privileged") == Some(&Value::Bool(true));
    let adds_sys_admin = security_context
        .get("capabilities")
        .and_then(|c| c.get("add"))
        .and_then(Value::as_array)
        .is_some_and(|added| {
            added
                .iter()
                .any(|c| matches!(c.as_str(), Some("SYS_ADMIN" | "CAP_SYS_ADMIN")))
        });
    privileged || adds_sys_admin
}

/// Whether the container's request for `resource` (if any) is at most `limit`.
fn request_fits_under(resources: &Map<String, Value>, resource: &str, limit: &str) -> bool {
    let Ok(limit) = quantity::parse(limit) else {
        return false;
    };
    resources
        .get("requests")
        .and_then(|r| r.get(resource))
        .and_then(Value::as_str)
        .is_none_or(|request| quantity::parse(request).is_ok_and(|q| q <= limit))
}

/// What the RuntimeClass admission plugin does for a pod that names a class; it ran before
/// the webhook set the name, so without this the API server rejects the pod's overhead.
fn apply_runtime_class(
    spec: &mut Map<String, Value>,
    class_name: &str,
    class: &RuntimeClassInfo,
    set: &mut Vec<String>,
    fields: &mut Vec<String>,
) -> Result<(), MutationError> {
    if let Some(overhead) = &class.overhead_pod_fixed
        && is_absent(spec.get("overhead"))
    {
        spec.insert("overhead".into(), Value::Object(overhead.clone()));
        set.push("overhead".into());
        fields.push("spec.overhead".into());
    }
    if !class.node_selector.is_empty() {
        let selector = object_entry(spec, "nodeSelector");
        for (key, class_value) in &class.node_selector {
            match selector.get(key).and_then(Value::as_str) {
                Some(pod_value) if pod_value != class_value => {
                    return Err(MutationError::NodeSelectorConflict {
                        class: class_name.to_owned(),
                        key: key.clone(),
                        class_value: class_value.clone(),
                        pod_value: pod_value.to_owned(),
                    });
                }
                Some(_) => {}
                None => {
                    selector.insert(key.clone(), Value::String(class_value.clone()));
                    set.push(format!("nodeSelector {key}={class_value}"));
                    fields.push("spec.nodeSelector".into());
                }
            }
        }
    }
    if !class.tolerations.is_empty() {
        let added = append_missing(array_entry(spec, "tolerations"), &class.tolerations);
        if added > 0 {
            set.push(format!("{added} RuntimeClass toleration(s)"));
            fields.push("spec.tolerations".into());
        }
    }
    Ok(())
}

/// Removes the projected token volumes the ServiceAccount plugin added, and their mounts.
fn remove_token_volumes(spec: &mut Map<String, Value>) -> Vec<String> {
    let is_token_volume = |volume: &Value| {
        let name = volume.get("name").and_then(Value::as_str).unwrap_or("");
        let has_token_source = volume
            .pointer("/projected/sources")
            .and_then(Value::as_array)
            .is_some_and(|sources| {
                sources
                    .iter()
                    .any(|s| s.get("serviceAccountToken").is_some())
            });
        name.starts_with(TOKEN_VOLUME_PREFIX) && has_token_source
    };
    let Some(Value::Array(volumes)) = spec.get_mut("volumes") else {
        return Vec::new();
    };
    let removed: Vec<String> = volumes
        .iter()
        .filter(|v| is_token_volume(v))
        .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    if removed.is_empty() {
        return removed;
    }
    volumes.retain(|v| !is_token_volume(v));
    if volumes.is_empty() {
        spec.remove("volumes");
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(Value::Array(containers)) = spec.get_mut(list) else {
            continue;
        };
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            let Some(Value::Array(mounts)) = container.get_mut("volumeMounts") else {
                continue;
            };
            mounts.retain(|m| {
                !m.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| removed.iter().any(|r| r == n))
            });
            if mounts.is_empty() {
                container.remove("volumeMounts");
            }
        }
    }
    removed
}

/// Recursively fills keys of `defaults` that `target` lacks. Objects merge key by key;
/// anything else the target already has is its explicit choice and is kept.
fn fill_missing(
    target: &mut Map<String, Value>,
    defaults: &Map<String, Value>,
    skip: &dyn Fn(&str) -> bool,
    path: &str,
    set: &mut Vec<String>,
    fields: &mut Vec<String>,
) {
    for (key, default) in defaults {
        if default.is_null() || skip(key) {
            continue;
        }
        match target.get_mut(key) {
            Some(existing) if !existing.is_null() => {
                if let (Value::Object(existing), Value::Object(nested)) = (existing, default) {
                    fill_missing(
                        existing,
                        nested,
                        &|_| false,
                        &format!("{path}.{key}"),
                        set,
                        fields,
                    );
                }
            }
            _ => {
                target.insert(key.clone(), default.clone());
                set.push(describe(key, default));
                fields.push(format!("{path}.{key}"));
            }
        }
    }
}

/// Human form of a set field, as in `set runAsNonRoot, allowPrivilegeEscalation=false, drop ALL`.
fn describe(key: &str, value: &Value) -> String {
    match value {
        Value::Bool(true) => key.to_owned(),
        Value::Bool(false) => format!("{key}=false"),
        Value::String(s) => format!("{key}={s}"),
        Value::Number(n) => format!("{key}={n}"),
        Value::Array(items) => {
            let items: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            format!("{key} {}", items.join(","))
        }
        Value::Object(map) => match (key, map.get("type").and_then(Value::as_str)) {
            (_, Some(kind)) => format!("{key}={kind}"),
            ("capabilities", None) => map
                .iter()
                .map(|(k, v)| describe(k, v))
                .collect::<Vec<_>>()
                .join(", "),
            _ => key.to_owned(),
        },
        Value::Null => key.to_owned(),
    }
}

fn append_missing(target: &mut Vec<Value>, additions: &[Value]) -> usize {
    let mut added = 0;
    for addition in additions {
        if !target.contains(addition) {
            target.push(addition.clone());
            added += 1;
        }
    }
    added
}

fn is_absent(value: Option<&Value>) -> bool {
    value.is_none_or(Value::is_null)
}

/// The object at `key`, created (or replacing a null) if absent. A non-object value there is
/// malformed input the API server would have refused; it is replaced rather than panicking.
fn object_entry<'m>(map: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
    let entry = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(object) => object,
        _ => unreachable!("entry was just made an object"),
    }
}

fn array_entry<'m>(map: &'m mut Map<String, Value>, key: &str) -> &'m mut Vec<Value> {
    let entry = map.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        *entry = Value::Array(Vec::new());
    }
    match entry {
        Value::Array(items) => items,
        _ => unreachable!("entry was just made an array"),
    }
}

trait PointerStr {
    fn pointer_str(&self, keys: &[&str]) -> Option<&str>;
}

impl PointerStr for Map<String, Value> {
    fn pointer_str(&self, keys: &[&str]) -> Option<&str> {
        let (first, rest) = keys.split_first()?;
        let mut value = self.get(*first)?;
        for key in rest {
            value = value.get(*key)?;
        }
        value.as_str()
    }
}
#[cfg(test)]
mod tests;
