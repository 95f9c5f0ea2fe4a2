//! What the webhook hardens: a copy of only the parts of a spec that hardening reads or
//! changes. The webhook needs the patch, not the hardened spec, and copying the whole spec
//! (env, probes, ports, volumes' contents...) only to drop it again cost about as much as
//! the hardening itself.
//!
//! Hardening the working copy writes down the same patch as hardening the whole spec: every
//! member hardening looks at is copied, list items keep their indices, and the values the
//! patch carries are either made by the hardening or copied whole (a securityContext, the
//! tolerations), never a trimmed container or volume. `harden/tests.rs` checks the two
//! patches are equal for every hardening it runs, and the fuzz replay checks the webhook's
//! patch against the hardening of the whole pod. A member that hardening starts to read must
//! be added here; `typed.rs` also scans these members for nulls before it hardens a decoded
//! spec.

use serde_json::{Map, Value, json};

/// The members of a pod spec that hardening reads or changes, copied whole.
pub const SPEC_MEMBERS: &[&str] = &[
    "os",
    "securityContext",
    "runtimeClassName",
    "overhead",
    "nodeSelector",
    "tolerations",
    "automountServiceAccountToken",
    // Whose token it is decides whether it is removed.
    "serviceAccountName",
    "serviceAccount",
    "affinity",
    // Pod-level resources bound the container defaults.
    "resources",
];

/// The container lists, copied item by item with [`CONTAINER_MEMBERS`].
const CONTAINER_LISTS: &[&str] = &["initContainers", "containers", "ephemeralContainers"];

pub const CONTAINER_MEMBERS: &[&str] = &[
    "name",
    "securityContext",
    "imagePullPolicy",
    "resources",
    "volumeMounts",
    // A sidecar (`restartPolicy: Always`) counts towards the pod's resources differently.
    "restartPolicy",
];

/// The parts of `spec` that hardening reads or changes (a non-object spec as it is).
pub fn working_copy(spec: &Value) -> Value {
    let Some(spec) = spec.as_object() else {
        return spec.clone();
    };
    let mut copy = Map::new();
    for key in SPEC_MEMBERS {
        if let Some(value) = spec.get(*key) {
            copy.insert((*key).to_owned(), value.clone());
        }
    }
    for key in CONTAINER_LISTS {
        if let Some(list) = spec.get(*key) {
            copy.insert((*key).to_owned(), items(list, CONTAINER_MEMBERS));
        }
    }
    if let Some(list) = spec.get("volumes") {
        copy.insert("volumes".to_owned(), volumes(list));
    }
    Value::Object(copy)
}

/// Of a volume, hardening reads only whether it is a ServiceAccount token volume (to remove
/// it): its name, and for a token volume the token source, stand for it.
fn volumes(list: &Value) -> Value {
    let Value::Array(volumes) = list else {
        return list.clone();
    };
    let standing_in = volumes.iter().map(|volume| {
        let name = volume.get("name").cloned();
        match (name, super::is_token_volume(volume)) {
            (Some(name), true) => {
                json!({"name": name, "projected": {"sources": [{"serviceAccountToken": {}}]}})
            }
            (Some(name), false) => json!({"name": name}),
            (None, _) => Value::Null,
        }
    });
    Value::Array(standing_in.collect())
}

/// Each object item of `list` with only `members`; anything else as null (hardening skips
/// it, only its index counts). Not a list: as it is.
fn items(list: &Value, members: &[&str]) -> Value {
    let Value::Array(items) = list else {
        return list.clone();
    };
    let trimmed = items.iter().map(|item| match item {
        Value::Object(item) => Value::Object(
            members
                .iter()
                .filter_map(|key| Some(((*key).to_owned(), item.get(*key)?.clone())))
                .collect(),
        ),
        _ => Value::Null,
    });
    Value::Array(trimmed.collect())
}
