//! The hardening of a workload's pods, applied to the decoded `PodSpec` the checks read.
//!
//! Validating a Deployment judges the pods its template will create, as the mutating webhook
//! will harden them. Hardening the template's JSON (a working copy of the members it
//! touches, then decoding those members again) was 76k of the 129k instructions of a
//! Deployment's `engine::validate`. This fills the same defaults into the decoded spec.
//!
//! It restates the JSON hardening above for the common case; it is not a second policy.
//! Wherever the two could disagree it answers `None`, and the JSON hardening runs: an
//! explicit `null` (JSON keeps an emptied object where the decoded spec has nothing), a
//! Windows pod, a default or toleration key that `k8s-openapi` does not know, a default that
//! does not decode. Debug builds, and so every test and the fuzz replay, compare its result
//! with the JSON hardening's for every template judged (`engine/judged_pod.rs`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, AppArmorProfile, Capabilities, Container, EmptyDirVolumeSource, NodeAffinity,
    NodeSelector, PodAffinity, PodAntiAffinity, PodSecurityContext, PodSpec, ResourceRequirements,
    SELinuxOptions, SeccompProfile, SecurityContext, Toleration, Volume,
    WindowsSecurityContextOptions,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::pod_resources::{Budget, PodResources};
use super::{
    INHERITED_FROM_POD, MutationError, Report, TOKEN_VOLUME_PREFIX, describe, fits_under,
    is_sys_admin, said, service_account_of, working_copy,
};
use crate::api_defaults;
use crate::policy::Policy;
use crate::runtime_class::{RuntimeClassInfo, RuntimeClassLookup};

/// Hardens `spec`, decoded from the template's `original` spec, as `harden_spec` hardens the
/// JSON (with the API defaults before and after, as `engine::pod_of_workload` builds the
/// pod), and returns the warnings. `None`: not done here (the spec may be half hardened);
/// the JSON hardening must run instead.
pub fn harden_decoded(
    spec: &mut PodSpec,
    original: &Value,
    policy: &Policy,
    runtime_classes: &dyn RuntimeClassLookup,
) -> Result<Option<Vec<String>>, MutationError> {
    if !decodes_alike(spec, original, policy) {
        return Ok(None);
    }
    apply_api_defaults(spec);
    let mut report = Report::default();
    let explicit_pod_fields: Vec<&'static str> = INHERITED_FROM_POD
        .iter()
        .copied()
        .filter(|key| {
            spec.security_context
                .as_ref()
                .is_some_and(|sc| pod_sets(sc, key))
        })
        .collect();
    if harden_pod_level(spec, policy, runtime_classes, &mut report)?.is_none() {
        return Ok(None);
    }
    let mut budget = resource_budget(spec);
    let lists = [
        (spec.init_containers.as_mut(), "init container"),
        (Some(&mut spec.containers), "container"),
    ];
    for (containers, label) in lists {
        for container in containers.into_iter().flatten() {
            let mut set = Vec::new();
            let hardened = harden_container(
                container,
                &explicit_pod_fields,
                policy,
                &mut budget,
                &mut set,
            );
            if hardened.is_none() {
                return Ok(None);
            }
            report.warn(&format!("{label} {:?}", container.name), &set);
        }
    }
    apply_api_defaults(spec);
    Ok(Some(report.warnings))
}

/// Whether the JSON hardening of `original` and this one of `spec` reach the same spec.
fn decodes_alike(spec: &PodSpec, original: &Value, policy: &Policy) -> bool {
    let windows = spec.os.as_ref().is_some_and(|os| os.name == "windows");
    let Some(original) = original.as_object() else {
        return false;
    };
    let touched_members = working_copy::SPEC_MEMBERS
        .iter()
        .chain(&["volumes"])
        .filter_map(|key| original.get(*key));
    // The API defaults read ephemeral containers too.
    let container_members = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|list| original.get(*list)?.as_array())
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|container| {
            working_copy::CONTAINER_MEMBERS
                .iter()
                .filter_map(|key| container.get(*key))
        });
    !windows
        && !touched_members.chain(container_members).any(holds_null)
        && known_toleration_keys(original.get("tolerations"))
        && policy.spec.mutate.tolerations.iter().all(known_toleration)
        && volume_sources_known(original.get("volumes"))
}

/// The API defaults make a volume with nothing but a name an `emptyDir`, and leave alone one
/// whose only other members `k8s-openapi` does not know (a newer source): decoded, the two
/// look alike, so such a volume is left to the JSON.
fn volume_sources_known(volumes: Option<&Value>) -> bool {
    let known = |volume: &Value| {
        let Some(members) = volume.as_object() else {
            return false;
        };
        let common = || COMMON_SOURCES.iter().any(|key| members.contains_key(*key));
        let only_a_name = || members.keys().all(|key| key == "name");
        common()
            || only_a_name()
            || Volume::deserialize(volume).is_ok_and(|decoded| !names_no_source(&decoded))
    };
    volumes
        .and_then(Value::as_array)
        .is_none_or(|volumes| volumes.iter().all(known))
}

/// The volume sources most pods use, looked at first so that the usual volume is never
/// serialised to find out whether it has a source.
const COMMON_SOURCES: [&str; 10] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "hostPath",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Whether a decoded volume has no source: none of the common ones, and nothing but its name
/// serialises.
fn names_no_source(volume: &Volume) -> bool {
    let common = volume.config_map.is_some()
        || volume.csi.is_some()
        || volume.downward_api.is_some()
        || volume.empty_dir.is_some()
        || volume.ephemeral.is_some()
        || volume.host_path.is_some()
        || volume.image.is_some()
        || volume.persistent_volume_claim.is_some()
        || volume.projected.is_some()
        || volume.secret.is_some();
    !common
        && serde_json::to_value(volume)
            .ok()
            .and_then(|value| {
                value
                    .as_object()
                    .map(|members| members.keys().all(|key| key == "name"))
            })
            .unwrap_or(false)
}

fn holds_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.iter().any(holds_null),
        Value::Object(members) => members.values().any(holds_null),
        _ => false,
    }
}

fn known_toleration_keys(tolerations: Option<&Value>) -> bool {
    tolerations
        .and_then(Value::as_array)
        .is_none_or(|items| items.iter().all(known_toleration))
}

/// Tolerations are compared as JSON when appended: a key the decoded `Toleration` drops, or a
/// null, would make two different tolerations equal here.
fn known_toleration(toleration: &Value) -> bool {
    const KEYS: &[&str] = &["effect", "key", "operator", "tolerationSeconds", "value"];
    toleration.as_object().is_some_and(|members| {
        members
            .iter()
            .all(|(key, value)| KEYS.contains(&key.as_str()) && !value.is_null())
    })
}

fn apply_api_defaults(spec: &mut PodSpec) {
    for volume in spec.volumes.iter_mut().flatten() {
        if names_no_source(volume) {
            volume.empty_dir = Some(EmptyDirVolumeSource::default());
        }
    }
    let containers = spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut())
        .map(|c| {
            (
                &mut c.image_pull_policy,
                c.image.as_deref(),
                &mut c.resources,
            )
        });
    let ephemeral = spec.ephemeral_containers.iter_mut().flatten().map(|c| {
        (
            &mut c.image_pull_policy,
            c.image.as_deref(),
            &mut c.resources,
        )
    });
    for (pull_policy, image, resources) in containers.chain(ephemeral) {
        if pull_policy.is_none() {
            *pull_policy = Some(api_defaults::default_pull_policy(image.unwrap_or("")).into());
        }
        if let Some(resources) = resources
            && let Some(limits) = &resources.limits
        {
            let requests = resources.requests.get_or_insert_with(BTreeMap::new);
            for (resource, limit) in limits {
                requests
                    .entry(resource.clone())
                    .or_insert_with(|| limit.clone());
            }
        }
    }
    default_pod_requests(spec);
}

/// The JSON's `api_defaults::default_pod_requests`.
fn default_pod_requests(spec: &mut PodSpec) {
    let Some(limits) = spec.resources.as_ref().and_then(|r| r.limits.as_ref()) else {
        return;
    };
    if limits.is_empty() {
        return;
    }
    let defaults = PodResources::of_typed(spec)
        .default_pod_request_texts(|resource| limits.get(resource).map(|q| q.0.as_str()));
    if defaults.is_empty() {
        return;
    }
    let Some(resources) = spec.resources.as_mut() else {
        return;
    };
    let requests = resources.requests.get_or_insert_with(BTreeMap::new);
    for (resource, text) in defaults {
        requests.insert(resource, Quantity(text));
    }
}

/// `harden_pod_level`; `None` where it cannot be done here.
fn harden_pod_level(
    spec: &mut PodSpec,
    policy: &Policy,
    runtime_classes: &dyn RuntimeClassLookup,
    report: &mut Report,
) -> Result<Option<()>, MutationError> {
    let mutate = &policy.spec.mutate;
    let mut set = Vec::new();
    if let Some(defaults) = &mutate.pod_security_context
        && fill_slot(&mut spec.security_context, defaults, &|_| false, &mut set).is_none()
    {
        return Ok(None);
    }
    let mut unknown_class = None;
    if let Some(class_name) = &mutate.runtime_class_name
        && spec.runtime_class_name.is_none()
    {
        spec.runtime_class_name = Some(class_name.clone());
        set.push(said::runtime_class_name(class_name));
        match runtime_classes.get(class_name) {
            Some(class) => {
                if apply_runtime_class(spec, class_name, &class, &mut set)?.is_none() {
                    return Ok(None);
                }
            }
            None => unknown_class = Some(class_name),
        }
    }
    let service_account = service_account_of(
        spec.service_account_name.as_deref(),
        spec.service_account.as_deref(),
    );
    if spec.automount_service_account_token.is_none()
        && mutate
            .automount_service_account_token
            .removes_token(service_account)
    {
        spec.automount_service_account_token = Some(false);
        set.push(said::automount(false));
        set.extend(
            remove_token_volumes(spec)
                .iter()
                .map(|v| said::removed_volume(v)),
        );
    }
    if !mutate.tolerations.is_empty() {
        let Some(added) = append_missing(&mut spec.tolerations, &mutate.tolerations) else {
            return Ok(None);
        };
        if added > 0 {
            set.push(said::tolerations(added));
        }
    }
    let mut affinity_filled = false;
    if let Some(defaults) = &mutate.affinity {
        let mut affinity_set = Vec::new();
        let affinity = spec.affinity.get_or_insert_with(Affinity::default);
        if fill_all(affinity, defaults, &|_| false, &mut affinity_set).is_none() {
            return Ok(None);
        }
        affinity_filled = !affinity_set.is_empty();
    }
    report.close_pod(set, affinity_filled, unknown_class.map(String::as_str));
    Ok(Some(()))
}

fn apply_runtime_class(
    spec: &mut PodSpec,
    class_name: &str,
    class: &RuntimeClassInfo,
    set: &mut Vec<String>,
) -> Result<Option<()>, MutationError> {
    if let Some(overhead) = &class.overhead_pod_fixed
        && spec.overhead.is_none()
    {
        let Ok(overhead) = BTreeMap::<String, Quantity>::deserialize(overhead) else {
            return Ok(None);
        };
        spec.overhead = Some(overhead);
        set.push("overhead".into());
    }
    if !class.node_selector.is_empty() {
        let selector = spec.node_selector.get_or_insert_with(BTreeMap::new);
        for (key, class_value) in &class.node_selector {
            match selector.get(key) {
                Some(pod_value) if pod_value != class_value => {
                    return Err(MutationError::NodeSelectorConflict {
                        class: class_name.to_owned(),
                        key: key.clone(),
                        class_value: class_value.clone(),
                        pod_value: pod_value.clone(),
                    });
                }
                Some(_) => {}
                None => {
                    selector.insert(key.clone(), class_value.clone());
                    set.push(said::node_selector(key, class_value));
                }
            }
        }
    }
    if !class.tolerations.is_empty() {
        if !class.tolerations.iter().all(known_toleration) {
            return Ok(None);
        }
        let Some(added) = append_missing(&mut spec.tolerations, &class.tolerations) else {
            return Ok(None);
        };
        if added > 0 {
            set.push(said::class_tolerations(added));
        }
    }
    Ok(Some(()))
}

/// The JSON's `append_missing` on the decoded list (created if absent, as the JSON's is);
/// `None` when an addition does not decode.
fn append_missing(target: &mut Option<Vec<Toleration>>, additions: &[Value]) -> Option<usize> {
    let target = target.get_or_insert_with(Vec::new);
    let mut added = 0;
    for addition in additions {
        let addition = Toleration::deserialize(addition).ok()?;
        if !target.iter().any(|held| same_toleration(held, &addition)) {
            target.push(addition);
            added += 1;
        }
    }
    Some(added)
}

/// The JSON's `same_toleration` on decoded tolerations: `Some("")` is absent, and so is
/// the default operator `Equal`.
fn same_toleration(held: &Toleration, addition: &Toleration) -> bool {
    fn stored(member: &Option<String>) -> Option<&str> {
        member.as_deref().filter(|text| !text.is_empty())
    }
    fn operator(toleration: &Toleration) -> Option<&str> {
        stored(&toleration.operator).filter(|operator| *operator != "Equal")
    }
    stored(&held.key) == stored(&addition.key)
        && operator(held) == operator(addition)
        && stored(&held.value) == stored(&addition.value)
        && stored(&held.effect) == stored(&addition.effect)
        && held.toleration_seconds == addition.toleration_seconds
}

/// Removes the ServiceAccount token volumes and their mounts; their names, in order.
fn remove_token_volumes(spec: &mut PodSpec) -> Vec<String> {
    let Some(volumes) = &mut spec.volumes else {
        return Vec::new();
    };
    let removed: Vec<String> = volumes
        .iter()
        .filter(|v| is_token_volume(v))
        .map(|v| v.name.clone())
        .collect();
    if removed.is_empty() {
        return removed;
    }
    volumes.retain(|v| !is_token_volume(v));
    if volumes.is_empty() {
        spec.volumes = None;
    }
    let mounts = spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut())
        .map(|c| &mut c.volume_mounts)
        .chain(
            spec.ephemeral_containers
                .iter_mut()
                .flatten()
                .map(|c| &mut c.volume_mounts),
        );
    for mounts in mounts {
        if let Some(list) = mounts {
            list.retain(|mount| !removed.contains(&mount.name));
            // The JSON removes the list when nothing is left, an empty one included.
            if list.is_empty() {
                *mounts = None;
            }
        }
    }
    removed
}

fn is_token_volume(volume: &Volume) -> bool {
    let has_token_source = volume
        .projected
        .as_ref()
        .and_then(|p| p.sources.as_ref())
        .is_some_and(|sources| sources.iter().any(|s| s.service_account_token.is_some()));
    volume.name.starts_with(TOKEN_VOLUME_PREFIX) && has_token_source
}

/// The JSON's `resource_budget`.
fn resource_budget(spec: &PodSpec) -> Budget {
    let sets_pod_resources = spec.resources.as_ref().is_some_and(|resources| {
        resources.requests.as_ref().is_some_and(|r| !r.is_empty())
            || resources.limits.as_ref().is_some_and(|l| !l.is_empty())
    });
    if sets_pod_resources {
        Budget::of(&PodResources::of_typed(spec))
    } else {
        Budget::default()
    }
}

/// `harden_container` (never a Windows pod here); `None` where it cannot be done here.
fn harden_container(
    container: &mut Container,
    explicit_pod_fields: &[&str],
    policy: &Policy,
    budget: &mut Budget,
    set: &mut Vec<String>,
) -> Option<()> {
    let mutate = &policy.spec.mutate;
    if let Some(defaults) = &mutate.container_security_context {
        let escalation_forced = container
            .security_context
            .as_ref()
            .is_some_and(requires_privilege_escalation);
        let skip = |key: &str| {
            explicit_pod_fields.contains(&key)
                || (key == "allowPrivilegeEscalation" && escalation_forced)
        };
        fill_slot(&mut container.security_context, defaults, &skip, set)?;
    }
    if let Some(wanted) = mutate
        .image_pull_policy
        .wanted(container.image_pull_policy.as_deref())
    {
        container.image_pull_policy = Some(wanted.into());
        set.push(said::image_pull_policy(wanted));
    }
    fill_resources(&mut container.resources, policy, budget, set);
    Some(())
}

fn requires_privilege_escalation(security_context: &SecurityContext) -> bool {
    let adds_sys_admin = security_context
        .capabilities
        .as_ref()
        .and_then(|c| c.add.as_ref())
        .is_some_and(|add| add.iter().any(|c| is_sys_admin(c)));
    security_context.privileged == Some(true) || adds_sys_admin
}

/// `fill_resources` on the decoded `resources`.
fn fill_resources(
    slot: &mut Option<ResourceRequirements>,
    policy: &Policy,
    budget: &mut Budget,
    set: &mut Vec<String>,
) {
    let defaults = policy.spec.mutate.resources.as_ref();
    let nothing_to_fill = defaults.is_none_or(|d| d.requests.is_empty() && d.limits.is_empty())
        && policy.ceilings.is_empty();
    if nothing_to_fill {
        return;
    }
    let was_absent = slot.is_none();
    let resources = slot.get_or_insert_with(ResourceRequirements::default);
    let no_values = BTreeMap::new();
    let (default_requests, default_limits) =
        defaults.map_or((&no_values, &no_values), |d| (&d.requests, &d.limits));
    if !default_requests.is_empty() {
        let section = resources.requests.get_or_insert_with(BTreeMap::new);
        let fits = |resource: &str, quantity: &str| budget.take_request(resource, quantity);
        fill_section(section, "requests", default_requests.iter(), fits, set);
    }
    let limits: Vec<(&String, &String)> = default_limits
        .iter()
        .chain(policy.ceilings.iter().map(|c| (&c.resource, &c.raw)))
        .filter(|(resource, limit)| request_fits_under(resources, resource, limit))
        .collect();
    if !limits.is_empty() || !policy.ceilings.is_empty() {
        let requests = resources.requests.as_ref();
        let requested: Vec<String> = limits
            .iter()
            .filter(|(resource, _)| requests.is_some_and(|r| r.contains_key(resource.as_str())))
            .map(|(resource, _)| (*resource).clone())
            .collect();
        let fits = |resource: &str, quantity: &str| {
            budget.take_limit(resource, quantity, requested.iter().any(|r| r == resource))
        };
        let section = resources.limits.get_or_insert_with(BTreeMap::new);
        fill_section(section, "limits", limits.into_iter(), fits, set);
    }
    // Empty sections say nothing: dropped, whether filled here or not.
    for section in [&mut resources.requests, &mut resources.limits] {
        if section.as_ref().is_some_and(BTreeMap::is_empty) {
            *section = None;
        }
    }
    if was_absent && *resources == ResourceRequirements::default() {
        *slot = None;
    }
}

/// Fills each absent `resource` whose `quantity` `fits` (which takes it from the budget).
fn fill_section<'p>(
    section: &mut BTreeMap<String, Quantity>,
    name: &str,
    quantities: impl Iterator<Item = (&'p String, &'p String)>,
    mut fits: impl FnMut(&str, &str) -> bool,
    set: &mut Vec<String>,
) {
    for (resource, quantity) in quantities {
        if !section.contains_key(resource) && fits(resource, quantity) {
            section.insert(resource.clone(), Quantity(quantity.clone()));
            set.push(said::resource(name, resource, quantity));
        }
    }
}

fn request_fits_under(resources: &ResourceRequirements, resource: &str, limit: &str) -> bool {
    let request = resources.requests.as_ref().and_then(|r| r.get(resource));
    fits_under(request.map(|q| q.0.as_str()), limit)
}

/// Whether the pod's securityContext sets `key` (one of [`INHERITED_FROM_POD`]).
fn pod_sets(context: &PodSecurityContext, key: &str) -> bool {
    match key {
        "runAsNonRoot" => context.run_as_non_root.is_some(),
        "runAsUser" => context.run_as_user.is_some(),
        "runAsGroup" => context.run_as_group.is_some(),
        "seccompProfile" => context.seccomp_profile.is_some(),
        "seLinuxOptions" => context.se_linux_options.is_some(),
        "appArmorProfile" => context.app_armor_profile.is_some(),
        "windowsOptions" => context.windows_options.is_some(),
        _ => true,
    }
}

/// An object the policy's defaults are filled into key by key, as `fill_missing` fills the
/// JSON: each key names a field, and the fields that are objects merge.
trait FillTyped {
    /// Fills `key` from `default` if the field is absent, telling `set`; `None` for a key
    /// this type does not know, or a default that does not decode into the field.
    fn fill_key(&mut self, key: &str, default: &Value, set: &mut Vec<String>) -> Option<()>;
}

/// `fill_missing`: every non-null, unskipped key of `defaults`, in order.
fn fill_all(
    target: &mut impl FillTyped,
    defaults: &Map<String, Value>,
    skip: &dyn Fn(&str) -> bool,
    set: &mut Vec<String>,
) -> Option<()> {
    for (key, default) in defaults {
        if default.is_null() || skip(key) {
            continue;
        }
        target.fill_key(key, default, set)?;
    }
    Some(())
}

/// An object member hardening fills (a securityContext): created when absent, and dropped
/// again if nothing was filled into it (the JSON's `IfEmpty::DropIfNew`).
fn fill_slot<T: FillTyped + Default + PartialEq>(
    slot: &mut Option<T>,
    defaults: &Map<String, Value>,
    skip: &dyn Fn(&str) -> bool,
    set: &mut Vec<String>,
) -> Option<()> {
    let was_absent = slot.is_none();
    let target = slot.get_or_insert_with(T::default);
    fill_all(target, defaults, skip, set)?;
    if was_absent && *target == T::default() {
        *slot = None;
    }
    Some(())
}

/// A field that is not an object: filled when absent, kept otherwise.
fn leaf<T: DeserializeOwned>(
    field: &mut Option<T>,
    key: &str,
    default: &Value,
    set: &mut Vec<String>,
) -> Option<()> {
    if field.is_none() {
        *field = Some(T::deserialize(default).ok()?);
        set.push(describe(key, default));
    }
    Some(())
}

/// A field that is an object: filled whole when absent, merged key by key when both are
/// objects.
fn nested<T: DeserializeOwned + FillTyped>(
    field: &mut Option<T>,
    key: &str,
    default: &Value,
    set: &mut Vec<String>,
) -> Option<()> {
    match (field.as_mut(), default) {
        (None, _) => leaf(field, key, default, set),
        (Some(existing), Value::Object(defaults)) => fill_all(existing, defaults, &|_| false, set),
        (Some(_), _) => Some(()),
    }
}

/// A required field: always present once the object decoded, so never filled.
fn required<T>(_: &mut T, _: &str, _: &Value, _: &mut Vec<String>) -> Option<()> {
    Some(())
}

macro_rules! fill_typed {
    ($type:ty { $($key:literal => $how:ident($field:ident)),+ $(,)? }) => {
        impl FillTyped for $type {
            fn fill_key(&mut self, key: &str, default: &Value, set: &mut Vec<String>) -> Option<()> {
                match key {
                    $($key => $how(&mut self.$field, key, default, set),)+
                    _ => None,
                }
            }
        }
    };
}

fill_typed!(PodSecurityContext {
    "appArmorProfile" => nested(app_armor_profile),
    "fsGroup" => leaf(fs_group),
    "fsGroupChangePolicy" => leaf(fs_group_change_policy),
    "runAsGroup" => leaf(run_as_group),
    "runAsNonRoot" => leaf(run_as_non_root),
    "runAsUser" => leaf(run_as_user),
    "seLinuxChangePolicy" => leaf(se_linux_change_policy),
    "seLinuxOptions" => nested(se_linux_options),
    "seccompProfile" => nested(seccomp_profile),
    "supplementalGroups" => leaf(supplemental_groups),
    "supplementalGroupsPolicy" => leaf(supplemental_groups_policy),
    "sysctls" => leaf(sysctls),
    "windowsOptions" => nested(windows_options),
});

fill_typed!(SecurityContext {
    "allowPrivilegeEscalation" => leaf(allow_privilege_escalation),
    "appArmorProfile" => nested(app_armor_profile),
    "capabilities" => nested(capabilities),
    "privileged" => leaf(privileged),
    "procMount" => leaf(proc_mount),
    "readOnlyRootFilesystem" => leaf(read_only_root_filesystem),
    "runAsGroup" => leaf(run_as_group),
    "runAsNonRoot" => leaf(run_as_non_root),
    "runAsUser" => leaf(run_as_user),
    "seLinuxOptions" => nested(se_linux_options),
    "seccompProfile" => nested(seccomp_profile),
    "windowsOptions" => nested(windows_options),
});

fill_typed!(Capabilities {
    "add" => leaf(add),
    "drop" => leaf(drop),
});

fill_typed!(SeccompProfile {
    "localhostProfile" => leaf(localhost_profile),
    "type" => required(type_),
});

fill_typed!(AppArmorProfile {
    "localhostProfile" => leaf(localhost_profile),
    "type" => required(type_),
});

fill_typed!(SELinuxOptions {
    "level" => leaf(level),
    "role" => leaf(role),
    "type" => leaf(type_),
    "user" => leaf(user),
});

fill_typed!(WindowsSecurityContextOptions {
    "gmsaCredentialSpec" => leaf(gmsa_credential_spec),
    "gmsaCredentialSpecName" => leaf(gmsa_credential_spec_name),
    "hostProcess" => leaf(host_process),
    "runAsUserName" => leaf(run_as_user_name),
});

fill_typed!(Affinity {
    "nodeAffinity" => nested(node_affinity),
    "podAffinity" => nested(pod_affinity),
    "podAntiAffinity" => nested(pod_anti_affinity),
});

fill_typed!(NodeAffinity {
    "preferredDuringSchedulingIgnoredDuringExecution" => leaf(preferred_during_scheduling_ignored_during_execution),
    "requiredDuringSchedulingIgnoredDuringExecution" => nested(required_during_scheduling_ignored_during_execution),
});

fill_typed!(NodeSelector {
    "nodeSelectorTerms" => required(node_selector_terms),
});

fill_typed!(PodAffinity {
    "preferredDuringSchedulingIgnoredDuringExecution" => leaf(preferred_during_scheduling_ignored_during_execution),
    "requiredDuringSchedulingIgnoredDuringExecution" => leaf(required_during_scheduling_ignored_during_execution),
});

fill_typed!(PodAntiAffinity {
    "preferredDuringSchedulingIgnoredDuringExecution" => leaf(preferred_during_scheduling_ignored_during_execution),
    "requiredDuringSchedulingIgnoredDuringExecution" => leaf(required_during_scheduling_ignored_during_execution),
});

#[cfg(test)]
#[path = "typed_tests.rs"]
pub(super) mod tests;
