//! `mcpguard audit` against a mocked Kubernetes API: `cmd::audit::run` talks to a
//! mocked API server (tests/common/mock_api.rs), whose scenario asserts every request it makes
//! (method, path, query, content type, body) and answers with canned lists as kube-apiserver
//! would. A request the scenario does not expect fails the test; so does one it expects but
//! never gets.
//! The real binary is run only where no API is involved (no kubeconfig, bad flags).

mod cli_support;
#[path = "common/mock_api.rs"]
mod mock_api;

use std::process::Output;

use axum::http::StatusCode;
use clap::Parser;
use jiff::Timestamp;
use mcpguard::cmd::args::{AuditArgs, Cli};
use mcpguard::cmd::audit::{self, EXIT_CLEAN, EXIT_ERROR, EXIT_VIOLATIONS};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use cli_support::{mcpguard_command, without_kubernetes};
use mock_api::{Expect, MockApi, STEP_TIMEOUT, Step};

const EVENTS_ALL: &str = "/apis/events.k8s.io/v1/events?fieldSelector=reason%3DPolicyViolation";
const REPORTS_ALL: &str = "/apis/wgpolicyk8s.io/v1alpha2/policyreports?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dmcpguard";

fn events_in(namespace: &str) -> String {
    format!(
        "/apis/events.k8s.io/v1/namespaces/{namespace}/events?fieldSelector=reason%3DPolicyViolation"
    )
}

fn reports_in(namespace: &str) -> String {
    format!(
        "/apis/wgpolicyk8s.io/v1alpha2/namespaces/{namespace}/policyreports?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dmcpguard"
    )
}

/// 2025-06-15T15:06:40Z: the `now` every mocked run uses.
fn now() -> Timestamp {
    Timestamp::from_second(1_750_000_000).expect("valid timestamp")
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/audit/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn events() -> Value {
    fixture("events.json")
}

fn reports() -> Value {
    fixture("policyreports.json")
}

/// `list` with only the items `keep` accepts.
fn filtered(mut list: Value, keep: impl Fn(&Value) -> bool) -> Value {
    let items = list["items"].as_array_mut().expect("items");
    items.retain(|item| keep(item));
    list
}

fn in_namespace(list: Value, namespace: &str) -> Value {
    filtered(list, |item| item["metadata"]["namespace"] == namespace)
}

fn empty_list(api_version: &str, kind: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": "918400"}, "items": []})
}

// --- the mocked API server -----------------------------------------------------------------

fn get(uri: impl AsRef<str>, reply: Value) -> Step {
    Step::ok(Expect::get(uri), reply)
}

fn fail(uri: impl AsRef<str>, status: StatusCode, reason: &str, message: &str) -> Step {
    Step::fail(Expect::get(uri), status, reason, message)
}

/// What one `mcpguard audit` run printed and returned.
#[derive(Debug)]
struct Ran {
    code: u8,
    stdout: String,
    stderr: String,
    seen: Vec<String>,
}

fn args(argv: &[&str]) -> AuditArgs {
    let mut full = vec!["mcpguard", "audit"];
    full.extend_from_slice(argv);
    match Cli::try_parse_from(full) {
        Ok(Cli {
            command: mcpguard::cmd::args::Command::Audit(args),
            ..
        }) => args,
        Ok(other) => panic!("not an audit command: {other:?}"),
        Err(err) => panic!("{err}"),
    }
}

/// Runs `mcpguard audit ARGV` against `steps`, with `stdin` as the user's answers.
async fn audit_with(argv: &[&str], stdin: &str, steps: Vec<Step>) -> Ran {
    mcpguard::webhook::tls::provider();
    let args = args(argv);
    let (client, api) = MockApi::new("default");
    let verifier = mock_api::spawn_steps(api, steps);
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut input = stdin.as_bytes();
    let code = tokio::time::timeout(
        STEP_TIMEOUT * 3,
        audit::run(client, &args, now(), &mut input, &mut stdout, &mut stderr),
    )
    .await
    .expect("audit finishes");
    let (_, seen) = verifier
        .finish(|| {
            format!(
                "audit exited {code}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            )
        })
        .await;
    Ran {
        code,
        stdout: String::from_utf8(stdout).expect("UTF-8"),
        stderr: String::from_utf8(stderr).expect("UTF-8"),
        seen,
    }
}

async fn audit(argv: &[&str], steps: Vec<Step>) -> Ran {
    audit_with(argv, "", steps).await
}

// --- the report ----------------------------------------------------------------------------

const DENIALS_TABLE: &str = "\
Denials since 2025-06-14T15:06:40Z:
TIME                   NAMESPACE   OBJECT                  ACTION     USER                                                      CHECKS                            COUNT
2025-06-15T09:15:27Z   tools       Pod/debug-shell         Denied     alice@example.com                                         privileged, hostNamespaces        1
2025-06-15T11:40:00Z   tools       Deployment/search       Admitted   bob@example.com                                           allowedRegistries                 1
2025-06-15T14:52:03Z   mcp         ReplicaSet/web-7d4b9c   Denied     system:serviceaccount:kube-system:replicaset-controller   runAsNonRoot, allowedRegistries   12
";

const VIOLATIONS_TABLE: &str = "\
Current violations (PolicyReports):
NAMESPACE   OBJECT                       CHECK                       MESSAGE
mcp         Pod/debug-tools              hostPathVolumes             hostPath volumes (volume \"docker-sock\")
mcp         Pod/web-7d4b9c-q9z4m         runAsNonRoot                runAsNonRoot != true (pod or container \"server\" must set securityContext.runAsNonRoot=true)
mcp         Pod/web-7d4b9c-x2k8p         allowPrivilegeEscalation    allowPrivilegeEscalation != false (container \"server\" must set securityContext.allowPrivilegeEscalation=false)
mcp         Pod/web-7d4b9c-x2k8p         runAsNonRoot                runAsNonRoot != true (pod or container \"server\" must set securityContext.runAsNonRoot=true)
tools       Deployment/search            allowedRegistries           image registry not allowed (container \"search\" must use images from ghcr.io/acme; got \"docker.io/library/search:2.1\")
tools       Pod/fetch-85d4c6b9f-7hx2n    runAsNonRoot                runAsNonRoot != true (pod or container \"fetch\" must set securityContext.runAsNonRoot=true)
tools       Pod/indexer-0                seccompProfile_restricted   seccompProfile (pod or container \"indexer\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")
tools       Pod/search-6c9f8d7b5-lq2wd   allowedRegistries           image registry not allowed (container \"search\" must use images from ghcr.io/acme; got \"docker.io/library/search:2.1\")
";

fn all_namespaces() -> Vec<Step> {
    vec![get(EVENTS_ALL, events()), get(REPORTS_ALL, reports())]
}

#[tokio::test]
async fn denials_and_violations_in_all_namespaces_exit_1() {
    let ran = audit(&[], all_namespaces()).await;
    assert_eq!(ran.stdout, format!("{DENIALS_TABLE}\n{VIOLATIONS_TABLE}"));
    assert_eq!(ran.stderr, "");
    assert_eq!(ran.code, EXIT_VIOLATIONS);
    assert_eq!(
        ran.seen,
        [format!("GET {EVENTS_ALL}"), format!("GET {REPORTS_ALL}")]
    );
}

/// The exact `-o json` document for the fixtures (written independently of the code).
fn expected_json_text() -> String {
    let path = format!(
        "{}/tests/fixtures/audit/expected.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn expected_json() -> Value {
    serde_json::from_str(&expected_json_text()).expect("expected.json is JSON")
}

#[tokio::test]
async fn json_output_has_the_same_fields() {
    let ran = audit(&["-o", "json"], all_namespaces()).await;
    assert_eq!(ran.code, EXIT_VIOLATIONS);
    assert_eq!(ran.stderr, "");
    assert_eq!(ran.stdout, expected_json_text());
}

#[tokio::test]
async fn yaml_output_has_the_same_fields() {
    let ran = audit(&["-o", "yaml"], all_namespaces()).await;
    assert_eq!(ran.code, EXIT_VIOLATIONS);
    let parsed: Value = serde_saphyr::from_str(&ran.stdout).expect("stdout is one YAML document");
    assert_eq!(parsed, expected_json());
    assert!(ran.stdout.starts_with("denials:\n"), "{}", ran.stdout);
}

#[tokio::test]
async fn denials_only_exit_0() {
    let passing = filtered(reports(), |r| r["summary"]["fail"] == 0);
    let ran = audit(
        &[],
        vec![get(EVENTS_ALL, events()), get(REPORTS_ALL, passing)],
    )
    .await;
    assert_eq!(
        ran.stdout,
        format!("{DENIALS_TABLE}\nNo current violations.\n")
    );
    assert_eq!(ran.code, EXIT_CLEAN);
}

#[tokio::test]
async fn nothing_to_report_exit_0_and_says_so() {
    let ran = audit(
        &["--since", "7d"],
        vec![
            get(EVENTS_ALL, empty_list("events.k8s.io/v1", "EventList")),
            get(
                REPORTS_ALL,
                empty_list("wgpolicyk8s.io/v1alpha2", "PolicyReportList"),
            ),
        ],
    )
    .await;
    assert_eq!(
        ran.stdout,
        "No denials since 2025-06-08T15:06:40Z.\n\nNo current violations.\n"
    );
    assert_eq!(ran.code, EXIT_CLEAN);

    let ran = audit(
        &["-o", "json"],
        vec![
            get(EVENTS_ALL, empty_list("events.k8s.io/v1", "EventList")),
            get(
                REPORTS_ALL,
                empty_list("wgpolicyk8s.io/v1alpha2", "PolicyReportList"),
            ),
        ],
    )
    .await;
    assert_eq!(
        ran.stdout,
        "{\n  \"denials\": [],\n  \"violations\": []\n}\n"
    );
    assert_eq!(ran.code, EXIT_CLEAN);
}

#[tokio::test]
async fn since_narrows_the_denials() {
    // 4h back from 15:06:40 is 11:06:40: the 09:15 denial is left out, the 11:40 one kept.
    let ran = audit(&["--since", "4h", "-o", "json"], all_namespaces()).await;
    let parsed: Value = serde_json::from_str(&ran.stdout).expect("JSON");
    let times: Vec<&str> = parsed["denials"]
        .as_array()
        .expect("denials")
        .iter()
        .map(|d| d["time"].as_str().expect("time"))
        .collect();
    assert_eq!(times, ["2025-06-15T11:40:00Z", "2025-06-15T14:52:03Z"]);
}

#[tokio::test]
async fn namespaces_are_listed_one_by_one() {
    let ran = audit(
        &["-n", "tools", "--namespace", "mcp", "-n", "tools"],
        vec![
            get(events_in("mcp"), in_namespace(events(), "mcp")),
            get(events_in("tools"), in_namespace(events(), "tools")),
            get(reports_in("mcp"), in_namespace(reports(), "mcp")),
            get(reports_in("tools"), in_namespace(reports(), "tools")),
        ],
    )
    .await;
    assert_eq!(ran.stdout, format!("{DENIALS_TABLE}\n{VIOLATIONS_TABLE}"));
    assert_eq!(ran.code, EXIT_VIOLATIONS);
}

#[tokio::test]
async fn without_the_reason_field_selector_events_are_filtered_here() {
    // An API server that cannot select Events by reason answers 400; the list is read whole,
    // with unrelated Events (another reason) that must be left out.
    let mut all = events();
    let mut mutated = all["items"][1].clone();
    mutated["reason"] = json!("PolicyMutated");
    mutated["action"] = json!("Mutated");
    mutated["type"] = json!("Normal");
    mutated["note"] = json!(
        "policy \"mcp-restricted\" mutated pods \"debug-shell\" for alice@example.com: set runAsNonRoot"
    );
    all["items"].as_array_mut().expect("items").push(mutated);
    let ran = audit(
        &[],
        vec![
            fail(
                EVENTS_ALL,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "field label not supported: reason",
            ),
            get("/apis/events.k8s.io/v1/events", all),
            get(REPORTS_ALL, reports()),
        ],
    )
    .await;
    assert_eq!(ran.stdout, format!("{DENIALS_TABLE}\n{VIOLATIONS_TABLE}"));
    assert_eq!(ran.code, EXIT_VIOLATIONS);
}

#[tokio::test]
async fn api_errors_exit_2_with_a_clear_message() {
    let ran = audit(
        &["-n", "mcp"],
        vec![fail(
            events_in("mcp"),
            StatusCode::FORBIDDEN,
            "Forbidden",
            "events.events.k8s.io is forbidden: User \"alice@example.com\" cannot list resource \"events\" in API group \"events.k8s.io\" in the namespace \"mcp\"",
        )],
    )
    .await;
    assert_eq!(ran.code, EXIT_ERROR);
    assert_eq!(ran.stdout, "");
    assert_eq!(
        ran.stderr,
        "mcpguard audit: cannot list Events (events.k8s.io/v1) in namespace mcp: events.events.k8s.io is forbidden: User \"alice@example.com\" cannot list resource \"events\" in API group \"events.k8s.io\" in the namespace \"mcp\" (HTTP 403)\n"
    );
}

#[tokio::test]
async fn missing_policy_report_crd_exit_2_with_a_clear_message() {
    let ran = audit(
        &[],
        vec![
            get(EVENTS_ALL, events()),
            fail(
                REPORTS_ALL,
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
            ),
        ],
    )
    .await;
    assert_eq!(ran.code, EXIT_ERROR);
    assert_eq!(ran.stdout, "");
    assert_eq!(
        ran.stderr,
        "mcpguard audit: the PolicyReport API (wgpolicyk8s.io/v1alpha2) is not installed in this cluster: install its CRD so mcpguard's background audit can write reports\n"
    );
}

// --- --apply-policy ------------------------------------------------------------------------

fn owner(api_version: &str, kind: &str, name: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": name,
           "uid": format!("5a6b7c8d-0000-4000-8000-{:0>12}", name.len()),
           "controller": true, "blockOwnerDeletion": true})
}

fn pod(namespace: &str, name: &str, owners: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": format!("c0ffee00-0000-4000-8000-{:0>12}", name.len()),
                     "resourceVersion": "917001", "labels": {"app": name}, "ownerReferences": owners},
        "spec": {"containers": [{"name": "server", "image": "ghcr.io/acme/server:1.4.2"}]},
        "status": {"phase": "Running"},
    })
}

fn replica_set(namespace: &str, name: &str, deployment: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "917002",
                     "ownerReferences": [owner("apps/v1", "Deployment", deployment)]},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": deployment}},
                 "template": {"metadata": {"labels": {"app": deployment}},
                              "spec": {"containers": [{"name": "server", "image": "ghcr.io/acme/server:1.4.2"}]}}},
    })
}

fn deployment(namespace: &str, name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "918500", "generation": 7},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name},
                                           "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-06-15T15:06:40Z"}},
                              "spec": {"containers": [{"name": "server", "image": "ghcr.io/acme/server:1.4.2"}]}}},
    })
}

/// The reads that resolve every drifting pod's owner: each pod, each ReplicaSet once.
fn owner_lookups() -> Vec<Step> {
    vec![
        get(
            "/api/v1/namespaces/mcp/pods/debug-tools",
            pod("mcp", "debug-tools", json!([])),
        ),
        get(
            "/api/v1/namespaces/mcp/pods/web-7d4b9c-q9z4m",
            pod(
                "mcp",
                "web-7d4b9c-q9z4m",
                json!([owner("apps/v1", "ReplicaSet", "web-7d4b9c")]),
            ),
        ),
        get(
            "/apis/apps/v1/namespaces/mcp/replicasets/web-7d4b9c",
            replica_set("mcp", "web-7d4b9c", "web"),
        ),
        get(
            "/api/v1/namespaces/mcp/pods/web-7d4b9c-x2k8p",
            pod(
                "mcp",
                "web-7d4b9c-x2k8p",
                json!([owner("apps/v1", "ReplicaSet", "web-7d4b9c")]),
            ),
        ),
        get(
            "/api/v1/namespaces/tools/pods/fetch-85d4c6b9f-7hx2n",
            pod(
                "tools",
                "fetch-85d4c6b9f-7hx2n",
                json!([owner("apps/v1", "ReplicaSet", "fetch-85d4c6b9f")]),
            ),
        ),
        get(
            "/apis/apps/v1/namespaces/tools/replicasets/fetch-85d4c6b9f",
            replica_set("tools", "fetch-85d4c6b9f", "fetch"),
        ),
        get(
            "/api/v1/namespaces/tools/pods/indexer-0",
            pod(
                "tools",
                "indexer-0",
                json!([owner("apps/v1", "StatefulSet", "indexer")]),
            ),
        ),
        get(
            "/api/v1/namespaces/tools/pods/search-6c9f8d7b5-lq2wd",
            pod(
                "tools",
                "search-6c9f8d7b5-lq2wd",
                json!([owner("apps/v1", "ReplicaSet", "search-6c9f8d7b5")]),
            ),
        ),
        get(
            "/apis/apps/v1/namespaces/tools/replicasets/search-6c9f8d7b5",
            replica_set("tools", "search-6c9f8d7b5", "search"),
        ),
    ]
}

fn restart(namespace: &str, name: &str) -> Step {
    restart_answered(namespace, name, StatusCode::OK, deployment(namespace, name))
}

/// The rollout restart of Deployment `namespace/name`, answered with `status` and `reply`.
fn restart_answered(namespace: &str, name: &str, status: StatusCode, reply: Value) -> Step {
    let expect = Expect::patch(format!(
        "/apis/apps/v1/namespaces/{namespace}/deployments/{name}?fieldManager=mcpguard-audit"
    ))
    .content_type("application/merge-patch+json")
    .body(json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2025-06-15T15:06:40Z"
    }}}}}));
    Step::Reply {
        expect,
        status,
        body: reply,
    }
}

const PLAN: &str = "\
will restart deployment mcp/web (pods: web-7d4b9c-q9z4m, web-7d4b9c-x2k8p)
will restart deployment tools/fetch (pods: fetch-85d4c6b9f-7hx2n)
will not restart deployment tools/search (pods: search-6c9f8d7b5-lq2wd): its pod template fails today's policy (allowedRegistries); fix the Deployment first
cannot roll pod mcp/debug-tools: not owned by a Deployment (no controller)
cannot roll pod tools/indexer-0: not owned by a Deployment (controller: StatefulSet/indexer)
";

fn apply_steps(restarts: bool) -> Vec<Step> {
    let mut steps = all_namespaces();
    steps.extend(owner_lookups());
    if restarts {
        steps.push(restart("mcp", "web"));
        steps.push(restart("tools", "fetch"));
    }
    steps
}

#[tokio::test]
async fn apply_policy_refused_sends_no_patch() {
    for answer in ["n\n", "\n", "yep\n", ""] {
        let ran = audit_with(&["--apply-policy"], answer, apply_steps(false)).await;
        let newline = if answer.is_empty() { "\n" } else { "" };
        assert_eq!(
            ran.stdout,
            format!(
                "{DENIALS_TABLE}\n{VIOLATIONS_TABLE}\n{PLAN}Proceed? [y/N] {newline}Aborted: nothing restarted.\n"
            ),
            "answer {answer:?}"
        );
        assert_eq!(ran.stderr, "");
        assert_eq!(ran.code, EXIT_VIOLATIONS);
        assert!(!ran.seen.iter().any(|r| r.starts_with("PATCH")));
    }
}

#[tokio::test]
async fn apply_policy_accepted_restarts_each_deployment_once() {
    for answer in ["y\n", "yes\n"] {
        let ran = audit_with(&["--apply-policy"], answer, apply_steps(true)).await;
        assert_eq!(
            ran.stdout,
            format!(
                "{DENIALS_TABLE}\n{VIOLATIONS_TABLE}\n{PLAN}Proceed? [y/N] restarted deployment mcp/web\nrestarted deployment tools/fetch\n"
            )
        );
        assert_eq!(ran.stderr, "");
        assert_eq!(ran.code, EXIT_VIOLATIONS);
        let patches: Vec<&String> = ran.seen.iter().filter(|r| r.starts_with("PATCH")).collect();
        assert_eq!(
            patches,
            [
                "PATCH /apis/apps/v1/namespaces/mcp/deployments/web?fieldManager=mcpguard-audit",
                "PATCH /apis/apps/v1/namespaces/tools/deployments/fetch?fieldManager=mcpguard-audit",
            ]
        );
    }
}

#[tokio::test]
async fn apply_policy_yes_does_not_ask() {
    let ran = audit_with(&["--apply-policy", "--yes"], "n\n", apply_steps(true)).await;
    assert_eq!(
        ran.stdout,
        format!(
            "{DENIALS_TABLE}\n{VIOLATIONS_TABLE}\n{PLAN}restarted deployment mcp/web\nrestarted deployment tools/fetch\n"
        )
    );
    assert_eq!(ran.code, EXIT_VIOLATIONS);
}

#[tokio::test]
async fn apply_policy_with_json_keeps_stdout_parseable() {
    let ran = audit_with(&["--apply-policy", "-o", "json"], "y\n", apply_steps(true)).await;
    let parsed: Value =
        serde_json::from_str(&ran.stdout).expect("stdout is only the JSON document");
    assert_eq!(parsed, expected_json());
    assert_eq!(
        ran.stderr,
        format!(
            "{PLAN}Proceed? [y/N] restarted deployment mcp/web\nrestarted deployment tools/fetch\n"
        )
    );
    assert_eq!(ran.code, EXIT_VIOLATIONS);
}

#[tokio::test]
async fn apply_policy_patch_failure_exit_2() {
    let mut steps = apply_steps(false);
    steps.push(restart_answered(
        "mcp",
        "web",
        StatusCode::FORBIDDEN,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "deployments.apps \"web\" is forbidden: User \"alice@example.com\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"mcp\"",
               "reason": "Forbidden", "code": 403}),
    ));
    steps.push(restart("tools", "fetch"));
    let ran = audit_with(&["--apply-policy", "--yes"], "", steps).await;
    assert_eq!(
        ran.stdout,
        format!("{DENIALS_TABLE}\n{VIOLATIONS_TABLE}\n{PLAN}restarted deployment tools/fetch\n")
    );
    assert_eq!(
        ran.stderr,
        "mcpguard audit: cannot restart deployment mcp/web: deployments.apps \"web\" is forbidden: User \"alice@example.com\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"mcp\" (HTTP 403)\n"
    );
    assert_eq!(ran.code, EXIT_ERROR);
}

#[tokio::test]
async fn apply_policy_with_no_drift_restarts_nothing() {
    let passing = filtered(reports(), |r| r["summary"]["fail"] == 0);
    let ran = audit_with(
        &["--apply-policy"],
        "y\n",
        vec![get(EVENTS_ALL, events()), get(REPORTS_ALL, passing)],
    )
    .await;
    assert_eq!(
        ran.stdout,
        format!(
            "{DENIALS_TABLE}\nNo current violations.\n\nNo running pod fails today's policy: nothing to restart.\n"
        )
    );
    assert_eq!(ran.code, EXIT_CLEAN);
}

#[tokio::test]
async fn apply_policy_pod_gone_since_its_report_is_not_rolled() {
    let only_pod = filtered(reports(), |r| {
        r["scope"]["name"] == "web-7d4b9c-q9z4m" || r["scope"]["name"] == "web"
    });
    let ran = audit_with(
        &["--apply-policy", "-n", "mcp"],
        "y\n",
        vec![
            get(
                events_in("mcp"),
                empty_list("events.k8s.io/v1", "EventList"),
            ),
            get(reports_in("mcp"), only_pod),
            fail(
                "/api/v1/namespaces/mcp/pods/web-7d4b9c-q9z4m",
                StatusCode::NOT_FOUND,
                "NotFound",
                "pods \"web-7d4b9c-q9z4m\" not found",
            ),
        ],
    )
    .await;
    assert!(
        ran.stdout.ends_with(
            "cannot roll pod mcp/web-7d4b9c-q9z4m: not owned by a Deployment (pod no longer exists)\nNothing to restart.\n"
        ),
        "{}",
        ran.stdout
    );
    assert_eq!(ran.code, EXIT_VIOLATIONS);
}

// --- the real binary: flags and configuration ----------------------------------------------

/// Runs the real `mcpguard` with no kubeconfig, no in-cluster environment and no
/// `MCPGUARD_*` settings from the caller, plus `env`.
fn binary(args: &[&str], env: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().expect("temp dir");
    let mut command = mcpguard_command(args);
    without_kubernetes(&mut command)
        .env("KUBECONFIG", "/nonexistent")
        .env("HOME", home.path())
        .envs(env.iter().copied());
    command.output().expect("mcpguard runs")
}

#[test]
fn missing_kubeconfig_exit_2_with_a_clear_message() {
    let output = binary(&["audit"], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    assert!(
        stderr.starts_with("mcpguard audit: no Kubernetes cluster configured: "),
        "{stderr}"
    );
    assert!(stderr.contains("/nonexistent"), "{stderr}");
    assert!(
        stderr.ends_with(
            ", and not running in a pod; set KUBECONFIG or select a context with `kubectl config use-context`\n"
        ),
        "{stderr}"
    );
}

#[test]
fn bad_since_is_refused_before_any_request() {
    for (args, env, value) in [
        (vec!["audit", "--since", "yesterday"], vec![], "yesterday"),
        (vec!["audit", "--since", "0h"], vec![], "0h"),
        (vec!["audit"], vec![("MCPGUARD_SINCE", "24")], "24"),
    ] {
        let output = binary(&args, &env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
        let reason = if value == "0h" {
            "must be greater than zero".to_owned()
        } else {
            "expected a number and a unit (s, m, h, d or w), such as 30m, 24h or 7d".to_owned()
        };
        let first = stderr.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            format!(
                "error: invalid value '{value}' for '--since <SINCE>': invalid duration \"{value}\": {reason}"
            )
        );
    }
}

#[test]
fn flags_and_their_environment_variables() {
    let parsed = args(&[]);
    assert_eq!(
        (
            parsed.namespace.clone(),
            parsed.since,
            parsed.output,
            parsed.apply_policy,
            parsed.yes
        ),
        (
            Vec::<String>::new(),
            jiff::SignedDuration::from_hours(24),
            audit::AuditOutput::Table,
            false,
            false
        )
    );
    let parsed = args(&[
        "-n",
        "mcp,tools",
        "-n",
        "web",
        "--since",
        "1h30m",
        "-o",
        "yaml",
        "--apply-policy",
        "-y",
    ]);
    assert_eq!(parsed.namespace, ["mcp", "tools", "web"]);
    assert_eq!(parsed.since, jiff::SignedDuration::from_mins(90));
    assert_eq!(parsed.output, audit::AuditOutput::Yaml);
    assert!(parsed.apply_policy && parsed.yes);
    // `text` (what `check` calls its table) is accepted, so one MCPGUARD_OUTPUT serves both.
    assert_eq!(args(&["-o", "text"]).output, audit::AuditOutput::Table);
    // Environment variables reach the flags (checked through the real binary, which then
    // stops at the missing kubeconfig).
    let output = binary(&["audit"], &[("MCPGUARD_OUTPUT", "xml")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .starts_with("error: invalid value 'xml' for '--output <OUTPUT>'"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

// --- --report-api ------------------------------------------------------------------------

const OPEN_REPORTS_ALL: &str =
    "/apis/openreports.io/v1alpha1/reports?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dmcpguard";

/// An OpenReports Report in the per-namespace layout: no scope, each result names its
/// objects in `resources`.
fn open_report_of_many_objects() -> Value {
    json!({
        "apiVersion": "openreports.io/v1alpha1", "kind": "ReportList",
        "metadata": {"resourceVersion": "918401"},
        "items": [{
            "metadata": {"name": "mcpguard-ns-tools", "namespace": "tools",
                         "labels": {"app.kubernetes.io/managed-by": "mcpguard"}},
            "source": "mcpguard",
            "summary": {"pass": 0, "fail": 2, "warn": 0, "error": 0, "skip": 0},
            "results": [
                {"policy": "mcp-restricted", "rule": "privileged", "result": "fail",
                 "severity": "high", "message": "privileged (container \"app\" must not set securityContext.privileged=true)",
                 "timestamp": {"seconds": 1_750_000_000, "nanos": 0},
                 "resources": [{"apiVersion": "v1", "kind": "Pod", "name": "web-1", "namespace": "tools"},
                               {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "tools"}]},
                {"policy": "mcp-restricted", "rule": "runAsNonRoot", "result": "pass",
                 "resources": [{"kind": "Pod", "name": "web-1", "namespace": "tools"}]},
            ],
        }],
    })
}

#[tokio::test]
async fn both_report_apis_are_read_and_results_name_their_own_objects() {
    let ran = audit(
        &["--report-api", "both", "-o", "json"],
        vec![
            get(EVENTS_ALL, empty_list("events.k8s.io/v1", "EventList")),
            get(
                REPORTS_ALL,
                empty_list("wgpolicyk8s.io/v1alpha2", "PolicyReportList"),
            ),
            get(OPEN_REPORTS_ALL, open_report_of_many_objects()),
        ],
    )
    .await;
    assert_eq!(ran.stderr, "");
    let message = "privileged (container \"app\" must not set securityContext.privileged=true)";
    assert_eq!(
        serde_json::from_str::<Value>(&ran.stdout).expect("JSON"),
        json!({"denials": [], "violations": [
            {"namespace": "tools", "object": "Deployment/web", "check": "privileged", "message": message},
            {"namespace": "tools", "object": "Pod/web-1", "check": "privileged", "message": message},
        ]})
    );
    assert_eq!(ran.code, EXIT_VIOLATIONS);
}

#[tokio::test]
async fn a_missing_openreports_crd_is_named() {
    let ran = audit(
        &["--report-api", "openreports"],
        vec![
            get(EVENTS_ALL, events()),
            fail(
                OPEN_REPORTS_ALL,
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
            ),
        ],
    )
    .await;
    assert_eq!(ran.code, EXIT_ERROR);
    assert_eq!(
        ran.stderr,
        "mcpguard audit: the Report API (openreports.io/v1alpha1) is not installed in this cluster: install its CRD so mcpguard's background audit can write reports\n"
    );
}
