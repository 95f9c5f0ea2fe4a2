//! What the validating webhook judges: a pod as JSON, or for a workload, often only the typed
//! spec of the pod its template will create.
//!
//! Building that pod as JSON ([`pod_of_workload`]) copies the whole template, hardens the
//! copy, decodes it into a `PodSpec` and drops it: a Deployment cost three times a pod's
//! judgement. Without CEL rules (which read the pod as JSON), the checks need only the typed
//! spec: hardening and the API defaults run on a working copy of the members they touch,
//! and those members, decoded from it, replace the ones decoded from the template. When
//! exceptions must look at the pod's containers, the pod is built after all.

use k8s_openapi::api::core::v1::{Container, EphemeralContainer, PodSpec};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{Context, RuleInput, judge_decoded, judge_request, pod_of_workload};
use crate::exceptions;
use crate::harden::{self, Changes, MutationError, Scope};
use crate::{api_defaults, json_path};

pub(super) enum JudgedPod<'a> {
    /// The request's pod, or a workload's pod built by [`pod_of_workload`].
    Json(std::borrow::Cow<'a, Value>),
    /// The typed spec of a workload's pod, and the template its metadata comes from.
    Typed {
        template: &'a Value,
        spec: Box<PodSpec>,
    },
}

impl<'a> JudgedPod<'a> {
    /// A workload's pod, and the warnings of its mutation.
    pub(super) fn of_template(
        template: &'a Value,
        context: Context<'_>,
    ) -> Result<(Self, Vec<String>), MutationError> {
        if context.policy.rules.is_empty()
            && let Some((spec, warnings)) = typed_spec(template, context)?
        {
            #[cfg(debug_assertions)]
            same_as_built(template, &spec, &warnings, context);
            let typed = JudgedPod::Typed {
                template,
                spec: Box::new(spec),
            };
            return Ok((typed, warnings));
        }
        let (pod, warnings) = pod_of_workload(template, context)?;
        Ok((JudgedPod::Json(std::borrow::Cow::Owned(pod)), warnings))
    }

    /// Every check, then the policy's exceptions (see [`judge_request`]).
    pub(super) fn judge(
        &self,
        request: &RuleInput<'_>,
        context: Context<'_>,
    ) -> Result<exceptions::Outcome, String> {
        let (template, spec) = match self {
            JudgedPod::Json(pod) => return judge_request(pod, request, context),
            JudgedPod::Typed { template, spec } => (template, spec),
        };
        let annotations = json_path::at(template, "/metadata/annotations");
        let violations = judge_decoded(annotations, spec, context.policy)?;
        if violations.is_empty() || context.policy.spec.exceptions.is_empty() {
            return Ok(exceptions::Outcome {
                violations,
                ..exceptions::Outcome::default()
            });
        }
        // Exceptions match and re-judge containers of the pod as JSON.
        let (pod, _) = pod_of_workload(template, context).map_err(|e| e.to_string())?;
        judge_request(&pod, request, context)
    }
}

/// The spec of the pod `template` will create, as [`pod_of_workload`] builds it, and the
/// mutation's warnings; `None` where the members hardening touches do not tell it (a
/// ServiceAccount token volume removed, a member that does not decode). Hardened as decoded
/// where `harden::harden_decoded` can, else on a working copy of the JSON members.
fn typed_spec(
    template: &Value,
    context: Context<'_>,
) -> Result<Option<(PodSpec, Vec<String>)>, MutationError> {
    let original = template.get("spec").unwrap_or(&Value::Null);
    if let Ok(mut spec) = PodSpec::deserialize(original)
        && let Some(warnings) =
            harden::harden_decoded(&mut spec, original, context.policy, context.runtime_classes)?
    {
        return Ok(Some((spec, warnings)));
    }
    let mut copy = harden::working_copy(original);
    api_defaults::apply_spec_defaults(&mut copy);
    let hardening = harden::harden_spec(
        &mut copy,
        Scope::WholePod,
        context.policy,
        context.runtime_classes,
        &mut Changes::unrecorded(),
    )?;
    api_defaults::apply_spec_defaults(&mut copy);
    let (Ok(mut spec), Some(copy)) = (PodSpec::deserialize(original), copy.as_object()) else {
        return Ok(None);
    };
    let merged =
        remove_token_volumes(&mut spec, original, copy).and_then(|()| merge(&mut spec, copy));
    Ok(merged.map(|()| (spec, hardening.warnings)))
}

/// The volumes hardening removed from the copy (ServiceAccount token volumes, when it turns
/// the token off), removed from `spec` too. The copy's volumes are trimmed, so they are not
/// decoded: the template's are filtered the same way, and must leave as many as the copy has.
fn remove_token_volumes(
    spec: &mut PodSpec,
    original: &Value,
    copy: &Map<String, Value>,
) -> Option<()> {
    fn listed(volumes: Option<&Value>) -> Option<&[Value]> {
        volumes.and_then(Value::as_array).map(Vec::as_slice)
    }
    let (before, after) = (listed(original.get("volumes")), listed(copy.get("volumes")));
    if before.map(<[Value]>::len) == after.map(<[Value]>::len) {
        return Some(());
    }
    let keep: Vec<bool> = before?
        .iter()
        .map(|v| !harden::is_token_volume(v))
        .collect();
    let kept = keep.iter().filter(|k| **k).count();
    if kept != after.map_or(0, <[Value]>::len) {
        return None;
    }
    let volumes = spec.volumes.take()?;
    let remaining: Vec<_> = volumes
        .into_iter()
        .zip(&keep)
        .filter_map(|(volume, keep)| keep.then_some(volume))
        .collect();
    spec.volumes = (!remaining.is_empty()).then_some(remaining);
    Some(())
}

/// Replaces the members of `spec` that the working copy holds by their decoded copies.
/// `None` for a member this does not know: the working copy grew, and this must too.
fn merge(spec: &mut PodSpec, copy: &Map<String, Value>) -> Option<()> {
    for key in harden::WORKING_COPY_SPEC_MEMBERS {
        match *key {
            "os" => {} // read, never changed
            "securityContext" => spec.security_context = member(copy, key)?,
            "runtimeClassName" => spec.runtime_class_name = member(copy, key)?,
            "overhead" => spec.overhead = member(copy, key)?,
            "nodeSelector" => spec.node_selector = member(copy, key)?,
            "tolerations" => spec.tolerations = member(copy, key)?,
            "automountServiceAccountToken" => {
                spec.automount_service_account_token = member(copy, key)?;
            }
            "affinity" => spec.affinity = member(copy, key)?,
            _ => return None,
        }
    }
    let items = |list: &str| copy.get(list).and_then(Value::as_array);
    for (typed, item) in spec.containers.iter_mut().zip(items("containers")?) {
        merge_container(typed, item.as_object()?)?;
    }
    if let Some(init) = &mut spec.init_containers {
        for (typed, item) in init.iter_mut().zip(items("initContainers")?) {
            merge_container(typed, item.as_object()?)?;
        }
    }
    if let Some(ephemeral) = &mut spec.ephemeral_containers {
        for (typed, item) in ephemeral.iter_mut().zip(items("ephemeralContainers")?) {
            merge_container(typed, item.as_object()?)?;
        }
    }
    Some(())
}

/// The members of a container or an ephemeral container that the working copy holds.
trait ContainerMembers {
    fn set(&mut self, key: &str, copy: &Map<String, Value>) -> Option<()>;
}

macro_rules! container_members {
    ($type:ty) => {
        impl ContainerMembers for $type {
            fn set(&mut self, key: &str, copy: &Map<String, Value>) -> Option<()> {
                match key {
                    "name" | "image" => {} // read, never changed
                    "securityContext" => self.security_context = member(copy, key)?,
                    "imagePullPolicy" => self.image_pull_policy = member(copy, key)?,
                    "resources" => self.resources = member(copy, key)?,
                    "volumeMounts" => self.volume_mounts = member(copy, key)?,
                    _ => return None,
                }
                Some(())
            }
        }
    };
}
container_members!(Container);
container_members!(EphemeralContainer);

fn merge_container(typed: &mut impl ContainerMembers, copy: &Map<String, Value>) -> Option<()> {
    harden::WORKING_COPY_CONTAINER_MEMBERS
        .iter()
        .try_for_each(|key| typed.set(key, copy))
}

/// `copy[key]` decoded (absent or null: `None`); `None` outside when it does not decode.
fn member<T: DeserializeOwned>(copy: &Map<String, Value>, key: &str) -> Option<Option<T>> {
    match copy.get(key) {
        None => Some(None),
        Some(value) => Option::<T>::deserialize(value).ok(),
    }
}

/// Debug builds (every test) check the typed spec against the built pod's.
#[cfg(debug_assertions)]
fn same_as_built(template: &Value, spec: &PodSpec, warnings: &[String], context: Context<'_>) {
    let built = pod_of_workload(template, context).map(|(pod, warnings)| {
        let spec = pod.get("spec").map(PodSpec::deserialize);
        (spec.and_then(Result::ok), warnings)
    });
    assert_eq!(
        built.ok(),
        Some((Some(spec.clone()), warnings.to_vec())),
        "the typed spec differs from the built pod's"
    );
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::policy::Policy;
    use crate::runtime_class::StaticRuntimeClasses;

    fn with_context<T>(policy: &Policy, f: impl FnOnce(Context<'_>) -> T) -> T {
        f(Context {
            policy,
            runtime_classes: &StaticRuntimeClasses::default(),
            now: time::OffsetDateTime::UNIX_EPOCH,
        })
    }

    fn template(spec: Value) -> Value {
        json!({"metadata": {"labels": {"app": "x"}}, "spec": spec})
    }

    fn is_typed(template: &Value, policy: &Policy) -> bool {
        with_context(policy, |context| {
            let (pod, _) = JudgedPod::of_template(template, context).expect("a pod");
            matches!(pod, JudgedPod::Typed { .. })
        })
    }

    #[test]
    fn without_cel_rules_a_template_is_judged_by_its_typed_spec() {
        let policy = Policy::embedded_default().expect("embedded policy loads");
        let plain = template(json!({
            "containers": [{"name": "app", "image": "ghcr.io/x/app:1",
                            "resources": {"limits": {"memory": "1Gi"}}}],
            "initContainers": [{"name": "init", "image": "busybox"}]
        }));
        assert!(is_typed(&plain, &policy));
        let typed = with_context(&policy, |context| typed_spec(&plain, context));
        let (spec, _) = typed.expect("hardens").expect("typed");
        // Hardened, and defaulted before and after (the request copied from the limit).
        let container = &spec.containers[0];
        assert_eq!(container.image_pull_policy.as_deref(), Some("Always"));
        let requests = container
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref());
        assert_eq!(
            requests.and_then(|r| r.get("memory")).map(|q| q.0.as_str()),
            Some("1Gi")
        );
        assert_eq!(spec.automount_service_account_token, Some(false));
    }

    #[test]
    fn token_volumes_the_hardening_removes_leave_the_typed_spec_too() {
        let policy = Policy::embedded_default().expect("embedded policy loads");
        let token = |name: &str| json!({"name": name, "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}});
        let mount = |name: &str| json!({"name": name, "mountPath": format!("/{name}")});
        let both = template(json!({
            "volumes": [token("kube-api-access-a"), {"name": "data", "emptyDir": {}}, token("kube-api-access-b")],
            "containers": [{"name": "app", "image": "x:1",
                "volumeMounts": [mount("kube-api-access-a"), mount("data"), mount("kube-api-access-b")]}]
        }));
        let only = template(json!({
            "volumes": [token("kube-api-access-a")],
            "containers": [{"name": "app", "image": "x:1", "volumeMounts": [mount("kube-api-access-a")]}]
        }));
        for (template, names) in [(both, vec!["data"]), (only, vec![])] {
            // Debug builds also compare the whole spec with the built pod's.
            let typed = with_context(&policy, |context| typed_spec(&template, context));
            let (spec, _) = typed.expect("hardens").expect("typed");
            let volumes: Vec<&str> = spec
                .volumes
                .iter()
                .flatten()
                .map(|v| v.name.as_str())
                .collect();
            assert_eq!(volumes, names);
            let mounts = spec.containers[0].volume_mounts.iter().flatten().count();
            assert_eq!(mounts, names.len());
        }
    }

    #[test]
    fn an_undecodable_member_takes_the_long_way() {
        let policy = Policy::embedded_default().expect("embedded policy loads");
        let undecodable = template(json!({
            "containers": [{"name": "app", "image": "x:1", "securityContext": "not an object"}]
        }));
        let typed = with_context(&policy, |context| typed_spec(&undecodable, context));
        assert_eq!(typed.map(|t| t.is_some()), Ok(false));
        assert!(!is_typed(&undecodable, &policy));
    }

    #[test]
    fn cel_rules_read_the_pod_as_json() {
        let text = crate::policy::DEFAULT_POLICY_YAML.replace(
            "    forbidSecretLiterals: true\n",
            "    forbidSecretLiterals: true\n    rules:\n      - name: labelled\n        expression: \"has(object.metadata.labels)\"\n",
        );
        let policy = crate::policy::parse_str(&text, "t").expect("policy loads");
        let plain = template(json!({"containers": [{"name": "app", "image": "x:1"}]}));
        assert!(!is_typed(&plain, &policy));
    }
}
