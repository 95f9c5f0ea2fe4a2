//! Every RBAC rule mcpguard ships has a caller in the code, and every call the code makes has
//! a rule (issue #14: least privilege, proven).
//!
//! `CALLERS` lists, for each (API group, resource, verb) mcpguard's ServiceAccount is granted,
//! the source file and the text of the call that needs it. The test fails when a granted
//! verb has no entry (a rule with no caller: drop it from the manifest), when an entry's call
//! is no longer in its file (the code moved or stopped needing it: update the entry, or drop
//! the rule), and when an entry names a verb no rule grants.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The manifests that grant mcpguard's ServiceAccount anything.
const RBAC_FILES: [&str; 2] = [
    "webhook-manifests/base/rbac.yaml",
    "webhook-manifests/mcp-namespace/rbac.yaml",
];

struct Caller {
    group: &'static str,
    resources: &'static [&'static str],
    verbs: &'static [&'static str],
    file: &'static str,
    /// Text that must appear in `file`: the call (or the library use) that needs the verbs.
    calls: &'static [&'static str],
}

const CALLERS: &[Caller] = &[
    // The leader reads and patches caBundle and namespaceSelector (cluster/selfcert.rs).
    Caller {
        group: "admissionregistration.k8s.io",
        resources: &[
            "mutatingwebhookconfigurations",
            "validatingwebhookconfigurations",
        ],
        verbs: &["get", "patch"],
        file: "src/cluster/selfcert.rs",
        calls: &[
            "let entries = api.get(name).await?.webhook_entries();",
            "api.patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))",
        ],
    },
    // Mutation finishes the RuntimeClass plugin's work from a watch-backed cache.
    Caller {
        group: "node.k8s.io",
        resources: &["runtimeclasses"],
        verbs: &["list", "watch"],
        file: "src/cluster/runtime_classes.rs",
        calls: &[
            "let api: Api<RuntimeClass> = Api::all(client);",
            "watcher(api,",
        ],
    },
    // The PSA enforce label of each enforced namespace (server-side apply).
    Caller {
        group: "",
        resources: &["namespaces"],
        verbs: &["get", "patch"],
        file: "src/cluster/namespace_labels.rs",
        calls: &[
            "namespaces.get_opt(name)",
            ".patch(name, &params, &Patch::Apply(apply_body(name, &labels)))",
        ],
    },
    // The background audit lists pods and pod controllers in each covered namespace.
    Caller {
        group: "",
        resources: &["pods", "podtemplates", "replicationcontrollers"],
        verbs: &["list"],
        file: "src/cluster/audit_scan.rs",
        calls: &["api.list(&ListParams::default())"],
    },
    Caller {
        group: "apps",
        resources: &["deployments", "statefulsets", "daemonsets", "replicasets"],
        verbs: &["list"],
        file: "src/cluster/audit_scan.rs",
        calls: &["api.list(&ListParams::default())", "WORKLOADS"],
    },
    Caller {
        group: "batch",
        resources: &["jobs", "cronjobs"],
        verbs: &["list"],
        file: "src/cluster/audit_scan.rs",
        calls: &["api.list(&ListParams::default())", "WORKLOADS"],
    },
    // Every replica's Event worker reads the metadata of a denied pod's claimed controller.
    Caller {
        group: "",
        resources: &["replicationcontrollers"],
        verbs: &["get"],
        file: "src/cluster/events/owner.rs",
        calls: &["api.get_metadata_opt(&claim.name)"],
    },
    Caller {
        group: "apps",
        resources: &["deployments", "statefulsets", "daemonsets", "replicasets"],
        verbs: &["get"],
        file: "src/cluster/events/owner.rs",
        calls: &["api.get_metadata_opt(&claim.name)"],
    },
    Caller {
        group: "batch",
        resources: &["jobs", "cronjobs"],
        verbs: &["get"],
        file: "src/cluster/events/owner.rs",
        calls: &["api.get_metadata_opt(&claim.name)"],
    },
    // One PolicyReport per object (server-side apply creates or patches); the garbage
    // collector removes a report with its object (owner reference), so no delete.
    Caller {
        group: "wgpolicyk8s.io",
        resources: &["policyreports"],
        verbs: &["list", "create", "patch"],
        file: "src/cluster/audit_scan.rs",
        calls: &[
            ".list(&ListParams::default().labels(&selector))",
            "reports.patch(name, &params, &Patch::Apply(&built))",
        ],
    },
    // The same reports as OpenReports Reports (`--report-api openreports|both`).
    Caller {
        group: "openreports.io",
        resources: &["reports"],
        verbs: &["list", "create", "patch"],
        file: "src/cluster/audit_scan.rs",
        calls: &[
            "report_resource(api)",
            ".list(&ListParams::default().labels(&selector))",
            "reports.patch(name, &params, &Patch::Apply(&built))",
        ],
    },
    // Denials as Events: kube's Recorder creates an Event and patches its series.
    Caller {
        group: "events.k8s.io",
        resources: &["events"],
        verbs: &["create", "patch"],
        file: "src/cluster/events.rs",
        calls: &["Recorder::new("],
    },
    // The author's rights on each Secret an MCPServer names.
    Caller {
        group: "authorization.k8s.io",
        resources: &["subjectaccessreviews"],
        verbs: &["create"],
        file: "src/webhook/access.rs",
        calls: &["api.create(&PostParams::default(), &review)"],
    },
    // The MCPServer controller: watches every MCPServer, reads one, writes its status.
    Caller {
        group: "mcpguard.dev",
        resources: &["mcpservers"],
        verbs: &["get", "list", "watch"],
        file: "src/cluster/controller.rs",
        calls: &["servers.get_opt(&name)", "Controller::new("],
    },
    Caller {
        group: "mcpguard.dev",
        resources: &["mcpservers/status"],
        verbs: &["patch"],
        file: "src/cluster/controller.rs",
        calls: &["api.patch_status("],
    },
    // Every replica enforces the MCPPolicy objects (a watch); the leader writes their status.
    Caller {
        group: "mcpguard.dev",
        resources: &["mcppolicies"],
        verbs: &["list", "watch"],
        file: "src/cluster/policy_watch.rs",
        calls: &["watcher(api(client), watcher::Config::default())"],
    },
    Caller {
        group: "mcpguard.dev",
        resources: &["mcppolicies/status"],
        verbs: &["patch"],
        file: "src/cluster/policy_watch.rs",
        calls: &["api.patch_status(&report.name"],
    },
    // The certificate Secret: read, and replaced whole when the leader rotates.
    Caller {
        group: "",
        resources: &["secrets"],
        verbs: &["get", "update"],
        file: "src/cluster/selfcert.rs",
        calls: &[
            "secrets.get(&self.secret_name)",
            ".replace(&self.secret_name, &PostParams::default(), &secret)",
        ],
    },
    // Leader election through kube-lease-manager, which creates the Lease and then reads,
    // replaces and patches it.
    Caller {
        group: "coordination.k8s.io",
        resources: &["leases"],
        verbs: &["create", "get", "update", "patch"],
        file: "src/cmd/serve.rs",
        calls: &["kube_lease_manager::LeaseManagerBuilder::new("],
    },
    // The controller in each MCP namespace: reads each object it would write (an object it
    // does not own is left alone), server-side applies it, and watches what it owns.
    Caller {
        group: "apps",
        resources: &["deployments"],
        verbs: &["get", "list", "watch", "create", "patch"],
        file: "src/cluster/controller.rs",
        calls: &[
            "held_by_another::<Deployment>(",
            ".patch(&name, &params, &Patch::Apply(&rendered.deployment))",
            ".owns(",
        ],
    },
    Caller {
        group: "",
        resources: &["services"],
        verbs: &["get", "list", "watch", "create", "patch"],
        file: "src/cluster/controller.rs",
        calls: &[
            "held_by_another::<Service>(",
            ".patch(&name, &params, &Patch::Apply(&rendered.service))",
            ".owns(",
        ],
    },
    Caller {
        group: "networking.k8s.io",
        resources: &["networkpolicies"],
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
        file: "src/cluster/controller.rs",
        calls: &[
            "held_by_another::<NetworkPolicy>(",
            "let network_policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), namespace);",
            "api.patch(&server.name_any(), &params, &Patch::Apply(object))",
            "api.delete(&name, &params)",
            ".owns(",
        ],
    },
    // For more than one replica, and for spec.autoscaling: applied, read first (held by
    // another owner: left alone), deleted when no longer wanted, watched.
    Caller {
        group: "policy",
        resources: &["poddisruptionbudgets"],
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
        file: "src/cluster/controller.rs",
        calls: &[
            "held_by_another::<PodDisruptionBudget>(",
            "let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), namespace);",
            "api.patch(&server.name_any(), &params, &Patch::Apply(object))",
            "api.delete(&name, &params)",
            "Api::<PodDisruptionBudget>::namespaced(client.clone(), namespace)",
        ],
    },
    Caller {
        group: "autoscaling",
        resources: &["horizontalpodautoscalers"],
        verbs: &["get", "list", "watch", "create", "patch", "delete"],
        file: "src/cluster/controller.rs",
        calls: &[
            "held_by_another::<HorizontalPodAutoscaler>(",
            "let autoscalers: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), namespace);",
            "api.patch(&server.name_any(), &params, &Patch::Apply(object))",
            "api.delete(&name, &params)",
            "Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), namespace)",
        ],
    },
    // spec.config: metadata read for the version (the config hash), watched by metadata.
    Caller {
        group: "",
        resources: &["configmaps"],
        verbs: &["get", "list", "watch"],
        file: "src/cluster/controller.rs",
        calls: &[
            "let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);",
            "api.get_metadata_opt(&name)",
            "Api::<PartialObjectMeta<ConfigMap>>::namespaced(client.clone(), namespace)",
        ],
    },
    // Referenced Secrets: metadata read for their version and key names.
    Caller {
        group: "",
        resources: &["secrets"],
        verbs: &["get", "list", "watch"],
        file: "src/cluster/controller.rs",
        calls: &[
            "let api: Api<Secret> = Api::namespaced(",
            "api.get_opt(&name)",
        ],
    },
];

/// (group, resource, verb) of every rule in the RBAC manifests.
fn granted() -> BTreeSet<(String, String, String)> {
    let mut grants = BTreeSet::new();
    for file in RBAC_FILES {
        let text = std::fs::read_to_string(Path::new(ROOT).join(file)).expect(file);
        let documents = serde_saphyr::from_multiple::<Value>(&text).expect("RBAC parses");
        for document in documents {
            let kind = document["kind"].as_str().unwrap_or_default();
            if kind != "Role" && kind != "ClusterRole" {
                continue;
            }
            for rule in document["rules"].as_array().expect("rules") {
                let list = |key: &str| -> Vec<String> {
                    rule[key]
                        .as_array()
                        .unwrap_or_else(|| panic!("{file}: a rule without {key}: {rule}"))
                        .iter()
                        .map(|v| v.as_str().expect("a string").to_owned())
                        .collect()
                };
                for group in list("apiGroups") {
                    for resource in list("resources") {
                        for verb in list("verbs") {
                            grants.insert((group.clone(), resource.clone(), verb));
                        }
                    }
                }
            }
        }
    }
    grants
}

fn called() -> BTreeSet<(String, String, String)> {
    CALLERS
        .iter()
        .flat_map(|caller| {
            caller.resources.iter().flat_map(move |resource| {
                caller.verbs.iter().map(move |verb| {
                    (
                        caller.group.to_owned(),
                        (*resource).to_owned(),
                        (*verb).to_owned(),
                    )
                })
            })
        })
        .collect()
}

#[test]
fn every_granted_verb_has_a_caller() {
    let without: Vec<_> = granted().difference(&called()).cloned().collect();
    assert!(
        without.is_empty(),
        "RBAC grants these with no caller in the code (drop them, or add the caller to CALLERS): {without:?}"
    );
}

#[test]
fn every_call_the_code_makes_is_granted() {
    let ungranted: Vec<_> = called().difference(&granted()).cloned().collect();
    assert!(
        ungranted.is_empty(),
        "the code calls these but no rule grants them: {ungranted:?}"
    );
}

#[test]
fn every_listed_caller_is_still_in_its_file() {
    for caller in CALLERS {
        let text = std::fs::read_to_string(Path::new(ROOT).join(caller.file)).expect(caller.file);
        for call in caller.calls {
            assert!(
                text.contains(call),
                "{} no longer contains {call:?}, which {:?} {:?} was granted for",
                caller.file,
                caller.verbs,
                caller.resources
            );
        }
    }
}

/// The check can fail: a rule nothing calls is found.
#[test]
fn a_rule_without_a_caller_is_found() {
    let mut grants = granted();
    grants.insert(("".into(), "pods".into(), "delete".into()));
    let without: Vec<_> = grants.difference(&called()).cloned().collect();
    assert_eq!(without, [("".into(), "pods".into(), "delete".into())]);
}
