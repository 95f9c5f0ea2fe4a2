//! Pod controllers and where their pod template lives. A noncompliant template is denied
//! at `kubectl apply` / `helm install`, instead of leaving a controller that silently
//! cannot create pods.

use serde_json::{Map, Value};

#[derive(Debug, PartialEq, Eq)]
pub struct WorkloadKind {
    pub group: &'static str,
    pub resource: &'static str,
    pub kind: &'static str,
    /// JSON pointer to the pod template (`{metadata, spec}`).
    pub template: &'static str,
}

pub const WORKLOADS: &[WorkloadKind] = &[
    WorkloadKind {
        group: "apps",
        resource: "deployments",
        kind: "Deployment",
        template: "/spec/template",
    },
    WorkloadKind {
        group: "apps",
        resource: "statefulsets",
        kind: "StatefulSet",
        template: "/spec/template",
    },
    WorkloadKind {
        group: "apps",
        resource: "daemonsets",
        kind: "DaemonSet",
        template: "/spec/template",
    },
    WorkloadKind {
        group: "apps",
        resource: "replicasets",
        kind: "ReplicaSet",
        template: "/spec/template",
    },
    WorkloadKind {
        group: "",
        resource: "replicationcontrollers",
        kind: "ReplicationController",
        template: "/spec/template",
    },
    WorkloadKind {
        group: "batch",
        resource: "jobs",
        kind: "Job",
        template: "/spec/template",
    },
    WorkloadKind {
        group: "batch",
        resource: "cronjobs",
        kind: "CronJob",
        template: "/spec/jobTemplate/spec/template",
    },
    WorkloadKind {
        group: "",
        resource: "podtemplates",
        kind: "PodTemplate",
        template: "/template",
    },
];

pub fn by_resource(group: &str, resource: &str) -> Option<&'static WorkloadKind> {
    WORKLOADS
        .iter()
        .find(|w| w.group == group && w.resource == resource)
}

/// For the CLI: the workload of a manifest's `apiVersion` and `kind`.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static WorkloadKind> {
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    WORKLOADS
        .iter()
        .find(|w| w.group == group && w.kind == kind)
}

impl WorkloadKind {
    /// `deployments.apps`, as Kubernetes names a resource in messages.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_owned()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    pub fn template<'a>(&self, object: &'a Value) -> Option<&'a Value> {
        crate::json_path::at(object, self.template).filter(|t| t.is_object())
    }

    /// The template's place as a dotted path (`spec.template`), under which the fields of
    /// its pod's findings are reported.
    pub fn template_path(&self) -> String {
        self.template.trim_start_matches('/').replace('/', ".")
    }
}

/// The template as a pod (`{metadata, spec}`), which is what hardening and the checks take.
/// One copy of each part: `json!` would serialise the copies into a second one.
pub fn pod_of_template(template: &Value) -> Value {
    let part = |key: &str, absent: Value| template.get(key).cloned().unwrap_or(absent);
    let mut pod = Map::new();
    pod.insert(
        "metadata".into(),
        part("metadata", Value::Object(Map::new())),
    );
    pod.insert("spec".into(), part("spec", Value::Null));
    Value::Object(pod)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_controller_is_found_by_resource_and_by_kind() {
        assert_eq!(
            by_resource("apps", "deployments").map(|w| w.kind),
            Some("Deployment")
        );
        assert_eq!(
            by_kind("batch/v1", "CronJob").map(|w| w.template),
            Some("/spec/jobTemplate/spec/template")
        );
        assert_eq!(
            by_kind("batch/v1", "CronJob").map(WorkloadKind::template_path),
            Some("spec.jobTemplate.spec.template".to_owned())
        );
        assert_eq!(
            by_kind("apps/v1", "Deployment").map(WorkloadKind::template_path),
            Some("spec.template".to_owned())
        );
        assert_eq!(
            by_kind("v1", "PodTemplate").map(|w| w.template),
            Some("/template")
        );
        assert_eq!(
            by_kind("v1", "ReplicationController").map(|w| w.resource),
            Some("replicationcontrollers")
        );
        assert_eq!(by_kind("extensions/v1beta1", "Deployment"), None);
        assert_eq!(by_resource("apps", "controllerrevisions"), None);
        assert_eq!(by_resource("", "pods"), None);
    }

    #[test]
    fn a_template_becomes_a_pod_of_its_metadata_and_spec() {
        let template = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}});
        assert_eq!(pod_of_template(&template), template);
        assert_eq!(
            pod_of_template(&json!({"spec": {"containers": []}, "other": 1})),
            json!({"metadata": {}, "spec": {"containers": []}})
        );
        assert_eq!(
            pod_of_template(&json!({})),
            json!({"metadata": {}, "spec": null})
        );
    }

    #[test]
    fn cronjob_template_is_nested_two_levels() {
        let cronjob =
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}});
        let kind = by_kind("batch/v1", "CronJob").expect("cronjob");
        assert_eq!(
            kind.template(&cronjob),
            Some(&json!({"spec": {"containers": []}}))
        );
        assert_eq!(kind.qualified_resource(), "cronjobs.batch");
        assert_eq!(
            by_kind("v1", "PodTemplate").map(WorkloadKind::qualified_resource),
            Some("podtemplates".into())
        );
    }
}
