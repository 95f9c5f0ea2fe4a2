//! `mcpguard render` and `mcpguard crd` as a user runs them: the real binary, from the crate
//! root, with no `MCPGUARD_*` settings from the caller. The rendered objects are parsed into
//! their k8s-openapi types, validated against the Kubernetes schema (`kubernetes-validate`,
//! installed by `.ci/run`; a failure when missing, unless `MCPGUARD_SKIP_EXTERNAL_TOOLS=1` opts
//! in to skipping)
//! and their pod templates checked by `mcpguard check` at the restricted level.

mod cli_support;
#[path = "common/crd_schema.rs"]
mod crd_schema;
#[path = "common/external_tools.rs"]
mod external_tools;

use cli_support::{assert_exit, check_restricted_as_written, run, stderr, stdout};
use external_tools::{kubernetes_validate_strict, tool_available};
use std::path::Path;
use std::process::Output;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mcpguard_core::mcpserver::render::{SecretVersion, secrets_hash};
use pretty_assertions::assert_eq;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const FIXTURES: &str = "tests/fixtures/render";
const EXAMPLE: &str = "examples/mcpserver.yaml";

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

fn documents(output: &Output) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(&stdout(output)).expect("rendered YAML parses")
}

fn kind_and_name(doc: &Value) -> String {
    format!(
        "{}/{}",
        doc["kind"].as_str().unwrap_or("?"),
        doc["metadata"]["name"].as_str().unwrap_or("?")
    )
}

fn kinds_and_names(docs: &[Value]) -> Vec<String> {
    docs.iter().map(kind_and_name).collect()
}

/// Parses into the k8s-openapi type, and checks that nothing was lost on the way: a field the
/// type does not know (a typo, a wrong nesting) would be dropped and the round trip differ.
fn typed<T: DeserializeOwned + serde::Serialize>(doc: &Value) -> T {
    let parsed: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", kind_and_name(doc)));
    assert_eq!(
        &serde_json::to_value(&parsed).expect("serialises"),
        doc,
        "{} has fields its type does not know",
        kind_and_name(doc)
    );
    parsed
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind}/{name} is not rendered: {:?}", kinds_and_names(docs)))
}

/// What each input renders to, with the policy that renders it.
fn rendered_inputs() -> Vec<(String, Vec<Value>)> {
    let inputs: [&[&str]; 5] = [
        &[EXAMPLE],
        &[&fixture("features.yaml")],
        &[&fixture("scaling.yaml")],
        &[&fixture("egress.yaml")],
        &[
            "--policy",
            &fixture("ceiling-policy.yaml"),
            &fixture("denied.yaml"),
        ],
    ];
    inputs
        .iter()
        .map(|args| {
            let mut full = vec!["render"];
            full.extend_from_slice(args);
            let output = run(&full);
            let docs = documents(&output);
            assert!(!docs.is_empty(), "{args:?} renders nothing");
            (args.join(" "), docs)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// mcpguard render

#[test]
fn the_example_renders_six_documents_that_parse_into_their_kubernetes_types() {
    let output = run(&["render", EXAMPLE]);
    assert_exit(&output, 0);
    assert_eq!(stderr(&output), "");
    let docs = documents(&output);
    assert_eq!(
        kinds_and_names(&docs),
        [
            "Deployment/github",
            "Service/github",
            "NetworkPolicy/github",
            "Deployment/everything",
            "Service/everything",
            "NetworkPolicy/everything",
        ]
    );
    for doc in &docs {
        assert_eq!(
            doc["metadata"]["namespace"],
            "mcp",
            "{}",
            kind_and_name(doc)
        );
        match doc["kind"].as_str() {
            Some("Deployment") => drop(typed::<Deployment>(doc)),
            Some("Service") => drop(typed::<Service>(doc)),
            Some("NetworkPolicy") => drop(typed::<NetworkPolicy>(doc)),
            other => panic!("unexpected kind {other:?}"),
        }
    }

    let github: Deployment = typed(find(&docs, "Deployment", "github"));
    let spec = github.spec.expect("spec");
    assert_eq!(spec.replicas, Some(1));
    let pod = spec.template.spec.expect("pod spec");
    assert_eq!(pod.automount_service_account_token, Some(false));
    let [container] = pod.containers.try_into().expect("one container");
    assert_eq!(
        container.image.as_deref(),
        Some("ghcr.io/github/github-mcp-server:v0.20.0")
    );
    assert_eq!(
        container.args,
        Some(vec!["http".into(), "--port".into(), "8080".into()])
    );
    let secret_env = container
        .env
        .expect("env")
        .into_iter()
        .find(|e| e.name == "GITHUB_PERSONAL_ACCESS_TOKEN")
        .and_then(|e| e.value_from)
        .and_then(|v| v.secret_key_ref)
        .expect("a secretKeyRef");
    assert_eq!(
        (secret_env.name.as_str(), secret_env.key.as_str()),
        ("github", "token")
    );
    // Offline, Secrets are taken to exist with unknown versions: the hash is of the name alone.
    let annotations = spec
        .template
        .metadata
        .and_then(|m| m.annotations)
        .expect("annotations");
    assert_eq!(
        annotations["mcpguard.dev/secrets-hash"],
        secrets_hash(&[SecretVersion {
            name: "github".into(),
            uid: String::new(),
            resource_version: String::new(),
            keys: vec!["token".into()],
        }])
    );

    let everything: Deployment = typed(find(&docs, "Deployment", "everything"));
    let [container] = everything
        .spec
        .and_then(|s| s.template.spec)
        .expect("pod spec")
        .containers
        .try_into()
        .expect("one container");
    assert_eq!(
        container.image.as_deref(),
        Some("docker.io/library/node:22-bookworm-slim")
    );
    assert_eq!(container.command, Some(vec!["npx".into()]));
    assert_eq!(
        container.args,
        Some(
            [
                "-y",
                "supergateway@4.0.0",
                "--stdio",
                "npx -y @modelcontextprotocol/server-everything@2025.9.25",
                "--outputTransport",
                "streamableHttp",
                "--port",
                "8080",
            ]
            .map(String::from)
            .to_vec()
        )
    );

    let service: Service = typed(find(&docs, "Service", "everything"));
    let [port] = service
        .spec
        .and_then(|s| s.ports)
        .expect("ports")
        .try_into()
        .expect("one port");
    assert_eq!(
        (port.port, port.target_port),
        (80, Some(IntOrString::String("http".into())))
    );
    let policy: NetworkPolicy = typed(find(&docs, "NetworkPolicy", "everything"));
    assert_eq!(
        policy.spec.and_then(|s| s.policy_types),
        Some(vec!["Ingress".into(), "Egress".into()])
    );
}

#[test]
fn every_rendered_object_passes_the_kubernetes_schema() {
    if !tool_available("kubernetes-validate") {
        return;
    }
    for (input, docs) in rendered_inputs() {
        let report = kubernetes_validate_strict(&input, &docs);
        assert!(!report.contains("WARN"), "{input}: {report}");
        assert_eq!(
            report.lines().filter(|l| l.contains(" passed ")).count(),
            docs.len(),
            "{input}: {report}"
        );
    }
}

#[test]
fn every_rendered_pod_template_passes_mcpguards_restricted_check() {
    for (input, docs) in rendered_inputs() {
        let pods: Vec<Value> = docs
            .iter()
            .filter(|d| d["kind"] == "Deployment")
            .map(|d| {
                let template = &d["spec"]["template"];
                json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": d["metadata"]["name"],
                        "namespace": "mcp",
                        "labels": template["metadata"]["labels"],
                        "annotations": template["metadata"]["annotations"],
                    },
                    "spec": template["spec"],
                })
            })
            .collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pods.yaml");
        let text: String = pods
            .iter()
            .map(|p| format!("---\n{}\n", serde_json::to_string(p).expect("json")))
            .collect();
        std::fs::write(&path, text).expect("write");
        let output = check_restricted_as_written(&path);
        assert_exit(&output, 0);
        let expected: String = pods
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "ADMITTED pod/{} (namespace mcp, {}#{})\n",
                    p["metadata"]["name"].as_str().expect("name"),
                    path.display(),
                    i + 1
                )
            })
            .collect();
        assert_eq!(stdout(&output), expected, "{input}");
    }
}

#[test]
fn scaling_and_configuration_render_their_objects() {
    let output = run(&["render", &fixture("scaling.yaml")]);
    assert_exit(&output, 0);
    assert_eq!(stderr(&output), "");
    let docs = documents(&output);
    assert_eq!(
        kinds_and_names(&docs),
        [
            "Deployment/search",
            "Service/search",
            "NetworkPolicy/search",
            "PodDisruptionBudget/search",
            "Deployment/browse",
            "Service/browse",
            "NetworkPolicy/browse",
            "PodDisruptionBudget/browse",
            "HorizontalPodAutoscaler/browse",
        ]
    );
    let search = &docs[0]["spec"]["template"];
    assert_eq!(
        search["spec"]["containers"][0]["volumeMounts"],
        json!([{"name": "config-0", "mountPath": "/config/search-settings", "readOnly": true}])
    );
    assert_eq!(
        search["spec"]["containers"][0]["livenessProbe"],
        json!({"httpGet": {"path": "/health", "port": "http"}, "initialDelaySeconds": 5, "failureThreshold": 6})
    );
    assert!(
        search["metadata"]["annotations"]["mcpguard.dev/config-hash"].is_string(),
        "{search}"
    );
    assert_eq!(docs[1]["spec"]["sessionAffinity"], "ClientIP");
    assert_eq!(docs[4]["spec"].get("replicas"), None, "the HPA's");
    let browse = &docs[4]["spec"]["template"];
    assert_eq!(browse["metadata"]["labels"]["team"], "browse");
    assert_eq!(browse["spec"]["serviceAccountName"], "browse-reader");
    assert_eq!(
        browse["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
    assert_eq!(docs[8]["spec"]["maxReplicas"], 6);
}

#[test]
fn the_features_fixture_renders_every_server_and_defaults_the_namespace() {
    let output = run(&["render", &fixture("features.yaml")]);
    assert_exit(&output, 0);
    assert_eq!(stderr(&output), "");
    let docs = documents(&output);
    assert_eq!(
        kinds_and_names(&docs),
        [
            "Deployment/fetch",
            "Service/fetch",
            "NetworkPolicy/fetch",
            "Deployment/filesystem",
            "Service/filesystem",
            "NetworkPolicy/filesystem",
            "Deployment/idle",
            "Service/idle",
            "NetworkPolicy/idle",
        ]
    );
    for doc in &docs {
        assert_eq!(
            doc["metadata"]["namespace"],
            "mcp",
            "{}",
            kind_and_name(doc)
        );
    }
    assert_eq!(find(&docs, "Deployment", "idle")["spec"]["replicas"], 0);
    let fetch = &find(&docs, "Deployment", "fetch")["spec"]["template"]["spec"];
    assert_eq!(
        fetch["volumes"],
        json!([
            {"name": "tmp", "emptyDir": {}},
            {"name": "files-0", "secret": {"secretName": "fetch-ca"}},
        ])
    );
    assert_eq!(
        fetch["containers"][0]["resources"],
        json!({"requests": {"cpu": "100m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}})
    );

    // -n names the namespace of servers that name none, and only theirs.
    let output = run(&["render", "-n", "tools", &fixture("features.yaml")]);
    assert_exit(&output, 0);
    let namespaces: Vec<String> = documents(&output)
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                kind_and_name(d),
                d["metadata"]["namespace"].as_str().unwrap_or("?")
            )
        })
        .filter(|line| line.contains("/idle "))
        .collect();
    assert_eq!(
        namespaces,
        [
            "Deployment/idle tools",
            "Service/idle tools",
            "NetworkPolicy/idle tools"
        ]
    );
}

#[test]
fn a_server_whose_pods_would_be_denied_renders_nothing_and_exits_1() {
    let output = run(&[
        "render",
        "--policy",
        &fixture("ceiling-policy.yaml"),
        &fixture("denied.yaml"),
    ]);
    assert_exit(&output, 1);
    assert_eq!(
        kinds_and_names(&documents(&output)),
        ["Deployment/ok", "Service/ok", "NetworkPolicy/ok"]
    );
    assert_eq!(
        stderr(&output),
        "mcpguard render: MCPServer \"x\": denied by policy: the pods of MCPServer \"x\" would be rejected: violates mcpguard policy \"ceiling\": resources above policy ceiling (container \"mcp\" requests memory=4Gi above the ceiling 1Gi, container \"mcp\" limits memory=4Gi above the ceiling 1Gi)\n"
    );
    // The same servers under the default policy, which sets no ceiling: both render.
    let output = run(&["render", &fixture("denied.yaml")]);
    assert_exit(&output, 0);
    assert_eq!(stderr(&output), "");
    assert_eq!(
        kinds_and_names(&documents(&output)),
        [
            "Deployment/ok",
            "Service/ok",
            "NetworkPolicy/ok",
            "Deployment/x",
            "Service/x",
            "NetworkPolicy/x"
        ]
    );
}

#[test]
fn an_invalid_spec_renders_nothing_for_it_and_exits_1() {
    let output = run(&["render", &fixture("invalid.yaml")]);
    assert_exit(&output, 1);
    assert_eq!(
        kinds_and_names(&documents(&output)),
        ["Deployment/ok", "Service/ok", "NetworkPolicy/ok"]
    );
    assert_eq!(
        stderr(&output),
        "mcpguard render: MCPServer \"x\": invalid spec: an image with transport stdio runs behind mcpguard's bridge, which needs the policy's spec.mutate.bridgeImage (mcpguard's image, pinned by digest)\n"
    );
}

#[test]
fn a_network_peer_the_policy_does_not_allow_exits_1() {
    let output = run(&["render", &fixture("peer.yaml")]);
    assert_exit(&output, 1);
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "mcpguard render: MCPServer \"x\": network peer not allowed: network.egressTo peer {\"ipBlock\":{\"cidr\":\"169.254.169.254/32\"}} is not among the policy's spec.network.allowedExtraPeers\n"
    );
}

#[test]
fn a_broken_file_exits_2_and_prints_nothing() {
    let output = run(&["render", &fixture("not-an-mcpserver.yaml")]);
    assert_exit(&output, 2);
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "mcpguard render: tests/fixtures/render/not-an-mcpserver.yaml: document 1: not a valid MCPServer: spec.port: invalid type: string, expected i32\n"
    );

    let output = run(&["render", &fixture("broken-yaml.yaml")]);
    assert_exit(&output, 2);
    assert_eq!(stdout(&output), "");
    let err = stderr(&output);
    assert!(
        err.starts_with(
            "mcpguard render: tests/fixtures/render/broken-yaml.yaml: document 1: invalid YAML: "
        ),
        "{err}"
    );

    let output = run(&["render", &fixture("absent.yaml")]);
    assert_exit(&output, 2);
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "mcpguard render: tests/fixtures/render/absent.yaml: cannot read: no such file or directory\n"
    );

    // A good file next to a broken one: still exit 2, nothing half-printed.
    let output = run(&["render", EXAMPLE, &fixture("not-an-mcpserver.yaml")]);
    assert_exit(&output, 2);
    assert_eq!(stdout(&output), "");
}

#[test]
fn a_misspelt_field_is_an_error_not_a_silently_different_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("typo.yaml");
    std::fs::write(
        &path,
        "apiVersion: mcpguard.dev/v1alpha1\nkind: MCPServer\nmetadata: {name: s, namespace: mcp}\nspec:\n  image: ghcr.io/example/server:1.0\n  port: 8080\n  replica: 2\n",
    )
    .expect("write");
    let output = run(&["render", &path.display().to_string()]);
    assert_exit(&output, 2);
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        format!(
            "mcpguard render: {}: document 1: not a valid MCPServer: spec.replica: unknown field\n",
            path.display()
        )
    );
}

/// kube-apiserver refuses an ownerReference with an empty uid ("uid must not be empty"), so
/// `mcpguard render ... | kubectl apply -f -` (even `--dry-run=server`) fails on every object.
/// Offline the owner's uid is unknown: print no ownerReference rather than an invalid one.
#[test]
fn offline_render_prints_no_owner_reference_the_api_server_would_reject() {
    let output = run(&["render", EXAMPLE]);
    assert_exit(&output, 0);
    for doc in documents(&output) {
        for owner in doc["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert_ne!(
                owner["uid"].as_str().unwrap_or(""),
                "",
                "{}: ownerReference {owner} has an empty uid",
                kind_and_name(&doc)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// mcpguard crd

/// The CRDs `mcpguard crd` prints, by name.
fn crds() -> Vec<CustomResourceDefinition> {
    let output = run(&["crd"]);
    assert_exit(&output, 0);
    assert_eq!(stderr(&output), "");
    let values: Vec<Value> =
        serde_saphyr::from_multiple(&stdout(&output)).expect("CRD YAML parses");
    values.iter().map(typed).collect()
}

fn crd() -> CustomResourceDefinition {
    let crds = crds();
    let names: Vec<Option<&str>> = crds.iter().map(|c| c.metadata.name.as_deref()).collect();
    assert_eq!(
        names,
        [
            Some("mcpservers.mcpguard.dev"),
            Some("mcppolicies.mcpguard.dev")
        ]
    );
    crds.into_iter().next().expect("the MCPServer CRD")
}

#[test]
fn the_crd_names_the_mcppolicy_kind_cluster_scoped_with_its_columns_and_status() {
    let crd = crds().pop().expect("the MCPPolicy CRD");
    let spec = crd.spec;
    assert_eq!(
        (
            spec.group.as_str(),
            spec.scope.as_str(),
            spec.names.kind.as_str()
        ),
        ("mcpguard.dev", "Cluster", "MCPPolicy")
    );
    assert_eq!(spec.names.plural, "mcppolicies");
    assert_eq!(spec.names.short_names, Some(vec!["mcpp".to_owned()]));
    let [version] = spec.versions.try_into().expect("one version");
    assert_eq!(version.name, "v1alpha1");
    let columns: Vec<(String, String)> = version
        .additional_printer_columns
        .expect("printer columns")
        .into_iter()
        .map(|c| (c.name, c.json_path))
        .collect();
    assert_eq!(
        columns,
        [
            ("Ready", r#".status.conditions[?(@.type=="Ready")].status"#),
            ("Namespaces", ".status.namespaces"),
            ("Age", ".metadata.creationTimestamp"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let subresources = version.subresources.expect("subresources");
    assert!(subresources.status.is_some(), "status subresource");
}

#[test]
fn the_crd_names_the_mcpserver_kind_its_columns_and_status() {
    let crd = crd();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("mcpservers.mcpguard.dev")
    );
    let spec = crd.spec;
    assert_eq!(spec.group, "mcpguard.dev");
    assert_eq!(spec.scope, "Namespaced");
    assert_eq!(spec.names.kind, "MCPServer");
    assert_eq!(spec.names.plural, "mcpservers");
    assert_eq!(spec.names.short_names, Some(vec!["mcps".to_owned()]));
    assert_eq!(spec.names.categories, Some(vec!["mcpguard".to_owned()]));
    let [version] = spec.versions.try_into().expect("one version");
    assert_eq!(version.name, "v1alpha1");
    assert!(version.served && version.storage);
    let columns: Vec<(String, String, String)> = version
        .additional_printer_columns
        .expect("printer columns")
        .into_iter()
        .map(|c| (c.name, c.type_, c.json_path))
        .collect();
    assert_eq!(
        columns,
        [
            ("Phase", "string", ".status.phase"),
            ("Ready", "integer", ".status.readyReplicas"),
            ("URL", "string", ".status.url"),
            ("Age", "date", ".metadata.creationTimestamp"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    let subresources = version.subresources.expect("subresources");
    assert!(subresources.status.is_some(), "status subresource");
    // kubectl scale and a user's HPA act on spec.replicas; the controller reports the rest.
    let scale = subresources.scale.expect("scale subresource");
    assert_eq!(scale.spec_replicas_path, ".spec.replicas");
    assert_eq!(scale.status_replicas_path, ".status.replicas");
    assert_eq!(
        scale.label_selector_path.as_deref(),
        Some(".status.selector")
    );
}

#[test]
fn the_example_mcpservers_validate_against_the_crd_schema() {
    let crd = crd();
    let text = std::fs::read_to_string(Path::new(ROOT).join(EXAMPLE)).expect("example");
    let servers: Vec<Value> = serde_saphyr::from_multiple(&text).expect("example parses");
    assert_eq!(servers.len(), 2);
    let mut used: Vec<String> = servers
        .iter()
        .flat_map(|server| server["spec"].as_object().expect("spec").keys().cloned())
        .collect();
    used.sort();
    used.dedup();
    assert_eq!(
        used,
        [
            "args",
            "env",
            "image",
            "package",
            "port",
            "replicas",
            "secretEnv",
            "transport"
        ]
    );
    // And the schema does refuse what the CRD does not declare.
    let mut wrong = servers[0].clone();
    wrong["spec"] = json!({"image": "x", "transport": "websocket", "port": "80", "sidecar": true});
    let mut documents = servers.clone();
    documents.push(wrong);
    let Some(errors) = crd_schema::crd_schema_errors(&crd, &documents) else {
        return;
    };
    assert_eq!(
        errors,
        [
            vec![],
            vec![],
            vec![
                "spec.port: '80' is not of type 'integer'".to_owned(),
                "spec.transport: 'websocket' is not one of ['streamable-http', 'sse', 'stdio']"
                    .into(),
                "spec: Additional properties are not allowed ('sidecar' was unexpected)".into(),
            ],
        ]
    );
}
