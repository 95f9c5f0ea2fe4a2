//! Mutation: the policy's defaults filled into a pod's raw JSON.
//!
//! The pod is never decoded into a typed struct here: a field that k8s-openapi does not know
//! (a newer Kubernetes, an alpha gate) must survive. The raw spec is changed in place and
//! each change writes down its JSON Patch operation as it is made (`changes.rs`), so the
//! patch holds only what this module means to touch.
//!
//! Rules: a value the pod sets explicitly is kept (validation judges it); a value it leaves
//! absent is filled; `imagePullPolicy` is set, because API defaulting filled it before any
//! webhook saw the pod; turning on `runtimeClassName` or turning off the service-account
//! token finishes the work of the admission plugins that already ran.

use std::collections::BTreeMap;

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
    /// The JSON Patch that turns the input pod into `pod` (paths under `/spec`).
    pub patch: json_patch::Patch,
    /// At most one per container (plus one for the pod), each at most [`MAX_WARNING_LEN`].
    pub warnings: Vec<String>,
    /// Sorted, de-duplicated names of the fields set (for audit annotations).
    pub fields_set: Vec<String>,
}

/// What a hardening in place reports besides the changed pod.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hardening {
    pub warnings: Vec<String>,
    /// As [`Mutation::fields_set`]; empty when the changes are not recorded.
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

/// Fills the policy's defaults into a copy of a pod (`{metadata, spec}`) or pod template, and
/// says how as a patch. Only the spec changes: the metadata is copied, never walked.
pub fn harden_pod(
    pod: &Value,
    scope: Scope<'_>,
    policy: &Policy,
    runtime_classes: &dyn RuntimeClassLookup,
) -> Result<Mutation, MutationError> {
    let mut hardened = pod.clone();
    let mut changes = Changes::recorded();
    let spec = hardened
        .get_mut("spec")
        .ok_or_else(|| MutationError::NotAPod("object has no spec".into()))?;
    let report = harden_spec(spec, scope, policy, runtime_classes, &mut changes)?;
    Ok(Mutation {
        pod: hardened,
        patch: changes.into_patch(),
        warnings: report.warnings,
        fields_set: report.fields_set,
    })
}

/// Hardens a pod's `spec` in place; `changes` gets the operations, with paths under `/spec`.
pub fn harden_spec(
    spec: &mut Value,
    scope: Scope<'_>,
    policy: &Policy,
    runtime_classes: &dyn RuntimeClassLookup,
    changes: &mut Changes,
) -> Result<Hardening, MutationError> {
    let at = changes.root("spec");
    let spec = spec
        .as_object_mut()
        .ok_or_else(|| MutationError::NotAPod("object has no spec".into()))?;
    let windows = spec.pointer_str(&["os", "name"]) == Some("windows");
    let mut report = Report::default();

    // The inherited fields the pod sets itself, before the pod's defaults are filled in.
    let pod_context = spec.get("securityContext").and_then(Value::as_object);
    let explicit_pod_fields: Vec<&'static str> = INHERITED_FROM_POD
        .iter()
        .copied()
        .filter(|key| pod_context.is_some_and(|sc| !is_absent(sc.get(*key))))
        .collect();

    if matches!(scope, Scope::WholePod) {
        harden_pod_level(
            spec,
            &at,
            windows,
            policy,
            runtime_classes,
            &mut report,
            changes,
        )?;
    }
    // Pod-level resources bound what container defaults may add (see `pod_resources`).
    let mut budget = resource_budget(spec);
    let lists: &[(&str, &str)] = match scope {
        Scope::WholePod => &[
            ("initContainers", "init container"),
            ("containers", "container"),
        ],
        Scope::NewEphemeralContainers { .. } => &[("ephemeralContainers", "ephemeral container")],
    };
    for (list, label) in lists {
        let list_at = child(&at, *list);
        let Some(Value::Array(containers)) = spec.get_mut(*list) else {
            continue;
        };
        for (index, container) in containers.iter_mut().enumerate() {
            let Some(container) = container.as_object_mut() else {
                continue;
            };
            let name = || container.get("name").and_then(Value::as_str).unwrap_or("");
            if let Scope::NewEphemeralContainers { existing } = scope
                && existing.iter().any(|e| e == name())
            {
                continue;
            }
            let mut set = Vec::new();
            let mut sink = Sink {
                set: &mut set,
                fields: &mut report.fields,
                changes: &mut *changes,
            };
            let container_at = child(&list_at, index);
            let container_budget = (*list != "ephemeralContainers").then_some(&mut budget);
            harden_container(
                container,
                &container_at,
                container_budget,
                windows,
                &explicit_pod_fields,
                policy,
                &mut sink,
            );
            if !set.is_empty() {
                let name = container.get("name").and_then(Value::as_str).unwrap_or("");
                report.warn(&format!("{label} {name:?}"), &set);
            }
        }
    }
    report.fields.sort();
    report.fields.dedup();
    Ok(Hardening {
        warnings: report.warnings,
        fields_set: report.fields,
    })
}

#[derive(Default)]
struct Report {
    warnings: Vec<String>,
    fields: Vec<String>,
}

/// Where each change is told: the subject's list of what was set (its warning), the audit
/// field names, and the patch.
struct Sink<'a> {
    set: &'a mut Vec<String>,
    fields: &'a mut Vec<String>,
    changes: &'a mut Changes,
}

impl Sink<'_> {
    /// `map[key] = value`, told as `said` in the warning and `field` in the audit annotation.
    fn set(
        &mut self,
        (map, at): (&mut Map<String, Value>, &At),
        key: &str,
        value: Value,
        said: String,
        field: impl FnOnce() -> String,
    ) {
        self.changes.set(map, at, key, value);
        self.set.push(said);
        self.field(field);
    }

    /// An audit field name, kept only where changes are recorded: the webhook's mutation
    /// reports them, a workload's pods (built for the checks) never do.
    fn field(&mut self, name: impl FnOnce() -> String) {
        if self.changes.is_recording() {
            self.fields.push(name());
        }
    }
}

impl Report {
    /// The pod's own warning (and one about a RuntimeClass it could not look up), once its
    /// members are hardened, whether as JSON or decoded ([`typed`]).
    fn close_pod(
        &mut self,
        mut set: Vec<String>,
        affinity_filled: bool,
        unknown_class: Option<&str>,
    ) {
        if affinity_filled {
            set.push("affinity".into());
        }
        if let Some(class_name) = unknown_class {
            self.warnings.push(said::unknown_runtime_class(class_name));
        }
        self.warn("pod", &set);
    }

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
    at: &At,
    windows: bool,
    policy: &Policy,
    runtime_classes: &dyn RuntimeClassLookup,
    report: &mut Report,
    changes: &mut Changes,
) -> Result<(), MutationError> {
    let mutate = &policy.spec.mutate;
    let mut set = Vec::new();
    let mut sink = Sink {
        set: &mut set,
        fields: &mut report.fields,
        changes,
    };
    if let Some(defaults) = &mutate.pod_security_context {
        let slot = Slot::open(spec, at, "securityContext");
        let skip = |key: &str| windows && LINUX_ONLY_POD_FIELDS.contains(&key);
        fill_missing(
            slot.object(spec),
            &slot.members(),
            defaults,
            &skip,
            "spec.securityContext",
            &mut sink,
        );
        slot.close(spec, IfEmpty::DropIfNew, sink.changes);
    }
    // Tolerations may come from the RuntimeClass and from the policy: written down once.
    let tolerations = Appends::note(spec, "tolerations");
    let mut unknown_class = None;
    if let Some(class_name) = &mutate.runtime_class_name
        && is_absent(spec.get("runtimeClassName"))
    {
        sink.set(
            (spec, at),
            "runtimeClassName",
            Value::String(class_name.clone()),
            said::runtime_class_name(class_name),
            || "spec.runtimeClassName".into(),
        );
        match runtime_classes.get(class_name) {
            Some(class) => apply_runtime_class(spec, at, class_name, &class, &mut sink)?,
            None => unknown_class = Some(class_name),
        }
    }
    let service_account = service_account_of(
        spec.get("serviceAccountName").and_then(Value::as_str),
        spec.get("serviceAccount").and_then(Value::as_str),
    );
    if is_absent(spec.get("automountServiceAccountToken"))
        && mutate
            .automount_service_account_token
            .removes_token(service_account)
    {
        sink.set(
            (spec, at),
            "automountServiceAccountToken",
            Value::Bool(false),
            said::automount(false),
            || "spec.automountServiceAccountToken".into(),
        );
        for removed in remove_token_volumes(spec, at, sink.changes) {
            sink.set.push(said::removed_volume(&removed));
            sink.field(|| "spec.volumes".into());
            sink.field(|| "containers.volumeMounts".into());
        }
    }
    if !mutate.tolerations.is_empty() {
        let added = append_missing(array_entry(spec, "tolerations"), &mutate.tolerations);
        if added > 0 {
            sink.set.push(said::tolerations(added));
            sink.field(|| "spec.tolerations".into());
        }
    }
    tolerations.record(spec, at, sink.changes);
    let mut affinity_filled = false;
    if let Some(affinity) = &mutate.affinity {
        let slot = Slot::open(spec, at, "affinity");
        let mut affinity_set = Vec::new();
        let mut affinity_sink = Sink {
            set: &mut affinity_set,
            fields: &mut *sink.fields,
            changes: &mut *sink.changes,
        };
        fill_missing(
            slot.object(spec),
            &slot.members(),
            affinity,
            &|_| false,
            "spec.affinity",
            &mut affinity_sink,
        );
        slot.close(spec, IfEmpty::Keep, affinity_sink.changes);
        affinity_filled = !affinity_set.is_empty();
    }
    report.close_pod(set, affinity_filled, unknown_class.map(String::as_str));
    Ok(())
}

/// What the pod's own `spec.resources` leave for container defaults; unbounded without them.
fn resource_budget(spec: &Map<String, Value>) -> Budget {
    let sets_pod_resources = spec
        .get("resources")
        .and_then(Value::as_object)
        .is_some_and(|resources| {
            resources
                .values()
                .any(|section| section.as_object().is_some_and(|s| !s.is_empty()))
        });
    if sets_pod_resources {
        Budget::of(&PodResources::of_json(spec))
    } else {
        Budget::default()
    }
}

/// `budget`: what pod-level resources leave for its resource defaults; `None` for a
/// container that takes none (an ephemeral container).
fn harden_container(
    container: &mut Map<String, Value>,
    at: &At,
    budget: Option<&mut Budget>,
    windows: bool,
    explicit_pod_fields: &[&str],
    policy: &Policy,
    sink: &mut Sink<'_>,
) {
    let mutate = &policy.spec.mutate;
    if let Some(defaults) = &mutate.container_security_context {
        let slot = Slot::open(container, at, "securityContext");
        let target = slot.object(container);
        let escalation_forced = requires_privilege_escalation(target);
        let skip = |key: &str| {
            (windows && LINUX_ONLY_CONTAINER_FIELDS.contains(&key))
                || explicit_pod_fields.contains(&key)
                || (key == "allowPrivilegeEscalation" && escalation_forced)
        };
        fill_missing(
            target,
            &slot.members(),
            defaults,
            &skip,
            "containers.securityContext",
            sink,
        );
        slot.close(container, IfEmpty::DropIfNew, sink.changes);
    }
    if let Some(wanted) = mutate
        .image_pull_policy
        .wanted(container.get("imagePullPolicy").and_then(Value::as_str))
    {
        sink.set(
            (container, at),
            "imagePullPolicy",
            Value::String(wanted.into()),
            said::image_pull_policy(wanted),
            || "containers.imagePullPolicy".into(),
        );
    }
    if let Some(budget) = budget {
        fill_resources(container, at, policy, budget, sink);
    }
}

fn fill_resources(
    container: &mut Map<String, Value>,
    at: &At,
    policy: &Policy,
    budget: &mut Budget,
    sink: &mut Sink<'_>,
) {
    let defaults = policy.spec.mutate.resources.as_ref();
    let nothing_to_fill = defaults.is_none_or(|d| d.requests.is_empty() && d.limits.is_empty())
        && policy.ceilings.is_empty();
    if nothing_to_fill {
        return;
    }
    let resources_slot = Slot::open(container, at, "resources");
    let resources = resources_slot.object(container);
    let resources_at = resources_slot.members();
    let no_values = BTreeMap::new();
    let (default_requests, default_limits) =
        defaults.map_or((&no_values, &no_values), |d| (&d.requests, &d.limits));
    let mut requests = None;
    if !default_requests.is_empty() {
        let slot = Slot::open(resources, &resources_at, "requests");
        let section = slot.object(resources);
        for (resource, quantity) in default_requests {
            if is_absent(section.get(resource)) && budget.take_request(resource, quantity) {
                fill(
                    section,
                    &slot.members(),
                    "requests",
                    resource,
                    quantity,
                    sink,
                );
            }
        }
        requests = Some(slot);
    }
    // A default limit below the container's own request would make the API server refuse
    // the pod over a limit its author never wrote. Like a LimitRange default, a missing
    // limit becomes the ceiling, unless the explicit request is already above it (then
    // validation names the real problem).
    let limits: Vec<(&String, &String)> = default_limits
        .iter()
        .chain(policy.ceilings.iter().map(|c| (&c.resource, &c.raw)))
        .filter(|(resource, limit)| request_fits_under(resources, resource, limit))
        .collect();
    // Whether each limit's resource is requested already: where it is not, the API server
    // copies the limit into the request, and the pod's request budget must hold it.
    let requested: Vec<bool> = limits
        .iter()
        .map(|(resource, _)| {
            !is_absent(
                resources
                    .get("requests")
                    .and_then(|r| r.get(resource.as_str())),
            )
        })
        .collect();
    let mut limits_slot = None;
    if !limits.is_empty() || !policy.ceilings.is_empty() {
        let slot = Slot::open(resources, &resources_at, "limits");
        let section = slot.object(resources);
        for ((resource, quantity), requested) in limits.into_iter().zip(requested) {
            if is_absent(section.get(resource.as_str()))
                && budget.take_limit(resource, quantity, requested)
            {
                fill(section, &slot.members(), "limits", resource, quantity, sink);
            }
        }
        limits_slot = Some(slot);
    }
    // Empty sections say nothing: dropped, whether filled here or not.
    for (section, slot) in [("requests", requests), ("limits", limits_slot)] {
        match slot {
            Some(slot) => slot.close(resources, IfEmpty::Drop, sink.changes),
            None => {
                if resources
                    .get(section)
                    .is_some_and(|s| s.as_object().is_some_and(Map::is_empty))
                {
                    resources.remove(section);
                    sink.changes.removed(&child(&resources_at, section));
                }
            }
        }
    }
    resources_slot.close(container, IfEmpty::DropIfNew, sink.changes);
}

/// `section[resource] = quantity` in a container's `resources`, told to `sink`.
fn fill(
    section: &mut Map<String, Value>,
    at: &At,
    name: &str,
    resource: &str,
    quantity: &str,
    sink: &mut Sink<'_>,
) {
    sink.set(
        (section, at),
        resource,
        Value::String(quantity.to_owned()),
        said::resource(name, resource, quantity),
        || format!("containers.resources.{name}.{resource}"),
    );
}

/// The API server refuses `allowPrivilegeEscalation: false` next to `privileged: true` or an
/// added `CAP_SYS_ADMIN`, spelt exactly so (its validation compares the string; `SYS_ADMIN`,
/// the spelling the runtimes use, passes). Filling it there would turn mcpguard's clear
/// denial of the privilege into an opaque "Pod is invalid" from the API server, so it is
/// left alone.
fn requires_privilege_escalation(security_context: &Map<String, Value>) -> bool {
    let privileged = security_context.get("privileged") == Some(&Value::Bool(true));
    let adds_sys_admin = any_listed(security_context.get("capabilities"), "add", |c| {
        c.as_str().is_some_and(is_sys_admin)
    });
    privileged || adds_sys_admin
}

/// Whether an item of the list `parent[key]` passes `test`.
fn any_listed(parent: Option<&Value>, key: &str, test: impl Fn(&Value) -> bool) -> bool {
    parent
        .and_then(|parent| parent.get(key))
        .and_then(Value::as_array)
        .is_some_and(|items| items.iter().any(test))
}

/// A capability that the API server refuses `allowPrivilegeEscalation: false` next to: only
/// the literal `CAP_SYS_ADMIN` (`ValidateSecurityContext` in Kubernetes' core validation).
fn is_sys_admin(capability: &str) -> bool {
    capability == "CAP_SYS_ADMIN"
}

/// Whether the container's request for `resource` (if any) is at most `limit`.
fn request_fits_under(resources: &Map<String, Value>, resource: &str, limit: &str) -> bool {
    let request = resources
        .get("requests")
        .and_then(|r| r.get(resource))
        .and_then(Value::as_str);
    fits_under(request, limit)
}

/// Whether `request` (none: nothing requested) is at most `limit`; never when `limit` does
/// not parse.
fn fits_under(request: Option<&str>, limit: &str) -> bool {
    let Ok(limit) = quantity::parse(limit) else {
        return false;
    };
    request.is_none_or(|request| quantity::parse(request).is_ok_and(|q| q <= limit))
}

/// What the RuntimeClass admission plugin does for a pod that names a class; it ran before
/// the webhook set the name, so without this the API server rejects the pod's overhead.
fn apply_runtime_class(
    spec: &mut Map<String, Value>,
    at: &At,
    class_name: &str,
    class: &RuntimeClassInfo,
    sink: &mut Sink<'_>,
) -> Result<(), MutationError> {
    if let Some(overhead) = &class.overhead_pod_fixed
        && is_absent(spec.get("overhead"))
    {
        sink.set(
            (spec, at),
            "overhead",
            Value::Object(overhead.clone()),
            "overhead".into(),
            || "spec.overhead".into(),
        );
    }
    if !class.node_selector.is_empty() {
        let slot = Slot::open(spec, at, "nodeSelector");
        let selector = slot.object(spec);
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
                    sink.set(
                        (selector, &slot.members()),
                        key,
                        Value::String(class_value.clone()),
                        said::node_selector(key, class_value),
                        || "spec.nodeSelector".into(),
                    );
                }
            }
        }
        slot.close(spec, IfEmpty::Keep, sink.changes);
    }
    if !class.tolerations.is_empty() {
        let added = append_missing(array_entry(spec, "tolerations"), &class.tolerations);
        if added > 0 {
            sink.set.push(said::class_tolerations(added));
            sink.field(|| "spec.tolerations".into());
        }
    }
    Ok(())
}

/// Removes the projected token volumes the ServiceAccount plugin added, and their mounts.
fn remove_token_volumes(
    spec: &mut Map<String, Value>,
    at: &At,
    changes: &mut Changes,
) -> Vec<String> {
    let Some(Value::Array(volumes)) = spec.get("volumes") else {
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
    remove_items(spec, at, "volumes", is_token_volume, changes);
    let is_token_mount = |mount: &Value| {
        mount
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| removed.iter().any(|r| r == n))
    };
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let list_at = child(at, list);
        let Some(Value::Array(containers)) = spec.get_mut(list) else {
            continue;
        };
        for (index, container) in containers.iter_mut().enumerate() {
            if let Some(container) = container.as_object_mut() {
                let container_at = child(&list_at, index);
                remove_items(
                    container,
                    &container_at,
                    "volumeMounts",
                    is_token_mount,
                    changes,
                );
            }
        }
    }
    removed
}

/// A projected ServiceAccount token volume as the ServiceAccount admission plugin adds it:
/// what hardening removes when it turns the token off.
pub fn is_token_volume(volume: &Value) -> bool {
    let name = volume.get("name").and_then(Value::as_str).unwrap_or("");
    let has_token_source = any_listed(volume.get("projected"), "sources", |source| {
        source.get("serviceAccountToken").is_some()
    });
    name.starts_with(TOKEN_VOLUME_PREFIX) && has_token_source
}

/// Removes the items of the list `map[key]` that match, and the list if that leaves it empty
/// (an empty list it already had included). Each removal is written down, last index first,
/// so that every path names the item it removes.
fn remove_items(
    map: &mut Map<String, Value>,
    at: &At,
    key: &str,
    matches: impl Fn(&Value) -> bool,
    changes: &mut Changes,
) {
    let Some(Value::Array(items)) = map.get_mut(key) else {
        return;
    };
    let list_at = child(at, key);
    let doomed: Vec<usize> = (0..items.len()).filter(|i| matches(&items[*i])).collect();
    if doomed.len() == items.len() {
        map.remove(key);
        changes.removed(&list_at);
        return;
    }
    for index in doomed.into_iter().rev() {
        items.remove(index);
        changes.removed(&child(&list_at, index));
    }
}

/// Recursively fills keys of `defaults` that `target` lacks. Objects merge key by key;
/// anything else the target already has is its explicit choice and is kept.
fn fill_missing(
    target: &mut Map<String, Value>,
    at: &At,
    defaults: &Map<String, Value>,
    skip: &dyn Fn(&str) -> bool,
    path: &str,
    sink: &mut Sink<'_>,
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
                        &child(at, key),
                        nested,
                        &|_| false,
                        &[path, ".", key].concat(),
                        sink,
                    );
                }
            }
            _ => {
                sink.set(
                    (target, at),
                    key,
                    default.clone(),
                    describe(key, default),
                    || [path, ".", key].concat(),
                );
            }
        }
    }
}

/// Human form of a set field, as in `set runAsNonRoot, allowPrivilegeEscalation=false, drop ALL`.
/// (`concat` rather than `format!`: this runs for every field a review fills.)
fn describe(key: &str, value: &Value) -> String {
    match value {
        Value::Bool(true) => key.to_owned(),
        Value::Bool(false) => [key, "=false"].concat(),
        Value::String(s) => [key, "=", s].concat(),
        Value::Number(n) => format!("{key}={n}"),
        Value::Array(items) => {
            let items: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            [key, " ", &items.join(",")].concat()
        }
        Value::Object(map) => match (key, map.get("type").and_then(Value::as_str)) {
            (_, Some(kind)) => [key, "=", kind].concat(),
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

/// Appends each toleration of `additions` that `target` does not already hold, as the API
/// server would read them ([`same_toleration`]). How many were appended.
fn append_missing(target: &mut Vec<Value>, additions: &[Value]) -> usize {
    let mut added = 0;
    for addition in additions {
        if !target.iter().any(|held| same_toleration(held, addition)) {
            target.push(addition.clone());
            added += 1;
        }
    }
    added
}

/// The members of a `Toleration` (k8s.io/api core/v1): every one `omitempty`, so the API
/// server stores an empty string (or a null) as absent.
const TOLERATION_FIELDS: [&str; 5] = ["key", "operator", "value", "effect", "tolerationSeconds"];

/// Whether two tolerations are one once the API server has stored them: an empty or null
/// member is absent (`value: ""` comes back without `value`), and a missing operator is
/// `Equal`, its documented default. Anything else, unknown members included, must be equal.
fn same_toleration(held: &Value, addition: &Value) -> bool {
    let (Some(held), Some(addition)) = (held.as_object(), addition.as_object()) else {
        return held == addition;
    };
    let unknown_alike = |one: &Map<String, Value>, other: &Map<String, Value>| {
        one.iter()
            .filter(|(key, _)| !TOLERATION_FIELDS.contains(&key.as_str()))
            .all(|(key, value)| other.get(key) == Some(value))
    };
    TOLERATION_FIELDS.iter().all(|field| {
        stored_toleration_member(held, field) == stored_toleration_member(addition, field)
    }) && unknown_alike(held, addition)
        && unknown_alike(addition, held)
}

/// A toleration member as the API server keeps it: `None` where it stores nothing, or the
/// default.
fn stored_toleration_member<'t>(
    toleration: &'t Map<String, Value>,
    field: &str,
) -> Option<&'t Value> {
    match toleration.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.is_empty() => None,
        Some(Value::String(text)) if field == "operator" && text == "Equal" => None,
        member => member,
    }
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
/// The ServiceAccount a pod runs as: `serviceAccountName`, or when that is empty the
/// deprecated `serviceAccount`, as the API server reads them (`None`: `default`).
fn service_account_of<'s>(name: Option<&'s str>, deprecated: Option<&'s str>) -> Option<&'s str> {
    name.filter(|n| !n.is_empty())
        .or(deprecated.filter(|n| !n.is_empty()))
}

/// What a warning says was set: the same words for the webhook's mutation and for the pods
/// of a workload ([`typed`]).
mod said {
    pub fn runtime_class_name(name: &str) -> String {
        format!("runtimeClassName={name}")
    }

    pub fn automount(automount: bool) -> String {
        format!("automountServiceAccountToken={automount}")
    }

    pub fn removed_volume(name: &str) -> String {
        format!("removed volume {name}")
    }

    pub fn tolerations(added: usize) -> String {
        format!("{added} toleration(s)")
    }

    pub fn class_tolerations(added: usize) -> String {
        format!("{added} RuntimeClass toleration(s)")
    }

    pub fn node_selector(key: &str, value: &str) -> String {
        format!("nodeSelector {key}={value}")
    }

    pub fn image_pull_policy(wanted: &str) -> String {
        format!("imagePullPolicy={wanted}")
    }

    /// `section` is `requests` or `limits`.
    pub fn resource(section: &str, resource: &str, quantity: &str) -> String {
        format!("{section}.{resource}={quantity}")
    }

    pub fn unknown_runtime_class(name: &str) -> String {
        super::truncate_warning(format!(
            "mcpguard: RuntimeClass {name:?} is not known to mcpguard: its overhead and scheduling were not copied"
        ))
    }
}

mod changes;
#[cfg(test)]
mod patch_tests;
pub(crate) mod pod_resources;
#[cfg(test)]
mod tests;
mod typed;
mod working_copy;

pub use typed::harden_decoded;

pub use changes::Changes;
use changes::{Appends, At, IfEmpty, Slot, child};
use pod_resources::{Budget, PodResources};
pub use working_copy::working_copy;
