//! What the validating webhook judges: a pod as JSON, or for a workload, often only the typed
//! spec of the pod its template will create.
//!
//! Building that pod as JSON ([`pod_of_workload`]) copies the whole template, hardens the
//! copy, decodes it into a `PodSpec` and drops it: a Deployment cost three times a pod's
//! judgement. Without CEL rules (which read the pod as JSON), the checks need only the typed
//! spec: the template's spec is decoded and hardened as decoded (`harden::harden_decoded`).
//! Where that declines, and when exceptions must look at the pod's containers, the pod is
//! built after all.

use k8s_openapi::api::core::v1::PodSpec;
use serde::Deserialize;
use serde_json::Value;

use super::{Context, RuleInput, judge_decoded, judge_request, pod_of_workload};
use crate::exceptions;
use crate::harden::{self, MutationError};
use crate::json_path;

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
/// mutation's warnings, hardened as decoded; `None` where the spec does not decode or
/// `harden::harden_decoded` declines.
fn typed_spec(
    template: &Value,
    context: Context<'_>,
) -> Result<Option<(PodSpec, Vec<String>)>, MutationError> {
    let original = template.get("spec").unwrap_or(&Value::Null);
    let Ok(mut spec) = PodSpec::deserialize(original) else {
        return Ok(None);
    };
    let warnings =
        harden::harden_decoded(&mut spec, original, context.policy, context.runtime_classes)?;
    Ok(warnings.map(|warnings| (spec, warnings)))
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
            now: jiff::Timestamp::UNIX_EPOCH,
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
