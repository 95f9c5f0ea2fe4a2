//! `mcpguard check` on workloads, enforcement modes and exceptions, as a user runs it: the
//! real binary from the crate root, asserting exit codes and exact output.

mod cli_support;

use cli_support::{assert_output, mcpguard_command, run, run_with_stdin, stderr, stdout};
use std::process::Output;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const FIXTURES: &str = "tests/fixtures/workloads";

/// Runs `mcpguard ARGS` (see `cli_support::mcpguard_command`), feeding `stdin` if given.
fn run_with(args: &[&str], stdin: Option<&str>) -> Output {
    run_with_stdin(mcpguard_command(args), stdin)
}

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

#[track_caller]
fn json_stdout(output: &Output) -> Value {
    assert_eq!(stderr(output), "", "stderr");
    serde_json::from_slice::<Value>(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is JSON ({e}): {}", stdout(output)))
}

const POD_WILL_GET: &str = "pod: set fsGroup=1000, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, automountServiceAccountToken=false";

fn will_get(kind: &str, name: &str, detail: &str) -> String {
    format!("mcpguard: pods of {kind} {name:?} will get: {detail}")
}

/// The violations of `privileged-deployment.yaml` (read from `source`), each with where its
/// field is written: `privileged: true`, and the `securityContext` that lacks
/// `allowPrivilegeEscalation`.
fn browser_violations(source: &str) -> Vec<String> {
    vec![
        r#"  - privileged: privileged (container "browser" must not set securityContext.privileged=true)"#.to_owned(),
        format!("    at {source}:17:13 spec.template.spec.containers[0].securityContext.privileged"),
        r#"  - allowPrivilegeEscalation: allowPrivilegeEscalation != false (container "browser" must set securityContext.allowPrivilegeEscalation=false)"#.to_owned(),
        format!("    at {source}:16:11 spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation"),
    ]
}

fn browser_violations_json() -> Value {
    json!([
        {"check": "privileged", "reason": "privileged",
         "detail": "container \"browser\" must not set securityContext.privileged=true",
         "fields": [{"path": "spec.template.spec.containers[0].securityContext.privileged",
                     "line": 17, "column": 13}]},
        {"check": "allowPrivilegeEscalation", "reason": "allowPrivilegeEscalation != false",
         "detail": "container \"browser\" must set securityContext.allowPrivilegeEscalation=false",
         "fields": [{"path": "spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation",
                     "line": 16, "column": 11}]}
    ])
}

/// The one violation of `host-network-pod.yaml` (`source`), at its `hostNetwork: true`.
fn host_network_violation(source: &str) -> [String; 2] {
    [
        "  - hostNamespaces: host namespaces (hostNetwork=true)".to_owned(),
        format!("    at {source}:6:3 spec.hostNetwork"),
    ]
}

fn browser_will_get() -> Vec<String> {
    vec![
        will_get("Deployment", "browser", POD_WILL_GET),
        will_get(
            "Deployment",
            "browser",
            "container \"browser\": set drop ALL, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, imagePullPolicy=Always, requests.memory=400Mi",
        ),
    ]
}

/// The change lines `check` prints under a one-container template on the default
/// ServiceAccount that the default policy hardens: one line per operation of its pods'
/// hardening. A tagged image gets the `imagePullPolicy` line; `:latest` is already `Always`.
const POD_SECURITY_CONTEXT_CHANGE: &str = r#"  ~ add /spec/securityContext = {"fsGroup":1000,"runAsGroup":1000,"runAsNonRoot":true,"runAsUser":1000,"seccompProfile":{"type":"RuntimeDefault"}}: mutate.podSecurityContext"#;
const DEFAULT_TOKEN_CHANGE: &str = "  ~ add /spec/automountServiceAccountToken = false: mutate.automountServiceAccountToken: keepForNamedServiceAccounts (the pod runs as the default ServiceAccount)";
const DEFAULT_CONTAINER_CONTEXT_CHANGE: &str = r#"  ~ add /spec/containers/0/securityContext = {"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]},"runAsGroup":1000,"runAsNonRoot":true,"runAsUser":1000,"seccompProfile":{"type":"RuntimeDefault"}}: mutate.containerSecurityContext"#;
const DEFAULT_PULL_CHANGE: &str = r#"  ~ replace /spec/containers/0/imagePullPolicy = "Always": mutate.imagePullPolicy: alwaysExceptNever (the container does not say Never)"#;
const RESOURCES_CHANGE: &str =
    r#"  ~ add /spec/containers/0/resources = {"requests":{"memory":"400Mi"}}: mutate.resources"#;
const DEFAULT_TAGGED_TEMPLATE_CHANGES: [&str; 5] = [
    POD_SECURITY_CONTEXT_CHANGE,
    DEFAULT_TOKEN_CHANGE,
    DEFAULT_CONTAINER_CONTEXT_CHANGE,
    DEFAULT_PULL_CHANGE,
    RESOURCES_CHANGE,
];

/// The change lines under privileged-deployment.yaml's browser template with the fixture
/// policies (`imagePullPolicy: always`, `automountServiceAccountToken: remove`). It is
/// privileged, so `allowPrivilegeEscalation` is left alone: the API server refuses `false`
/// next to `privileged: true`.
const BROWSER_CHANGES: [&str; 9] = [
    POD_SECURITY_CONTEXT_CHANGE,
    "  ~ add /spec/automountServiceAccountToken = false: mutate.automountServiceAccountToken: remove",
    r#"  ~ add /spec/containers/0/securityContext/capabilities = {"drop":["ALL"]}: mutate.containerSecurityContext"#,
    "  ~ add /spec/containers/0/securityContext/runAsGroup = 1000: mutate.containerSecurityContext",
    "  ~ add /spec/containers/0/securityContext/runAsNonRoot = true: mutate.containerSecurityContext",
    "  ~ add /spec/containers/0/securityContext/runAsUser = 1000: mutate.containerSecurityContext",
    r#"  ~ add /spec/containers/0/securityContext/seccompProfile = {"type":"RuntimeDefault"}: mutate.containerSecurityContext"#,
    r#"  ~ replace /spec/containers/0/imagePullPolicy = "Always": mutate.imagePullPolicy: always"#,
    RESOURCES_CHANGE,
];

/// The lines `head` followed by `tail`, as owned strings.
fn lines_of(head: &[String], tail: &[&str]) -> Vec<String> {
    head.iter()
        .cloned()
        .chain(tail.iter().map(|line| (*line).to_owned()))
        .collect()
}

/// `-o json`'s `changes` for the same operations as the lines above.
fn change(op: &str, path: &str, value: Value, reason: &str) -> Value {
    json!({"op": op, "path": path, "value": value, "reason": reason})
}

fn pod_security_context_change_json() -> Value {
    change(
        "add",
        "/spec/securityContext",
        json!({"fsGroup": 1000, "runAsGroup": 1000, "runAsNonRoot": true, "runAsUser": 1000,
               "seccompProfile": {"type": "RuntimeDefault"}}),
        "mutate.podSecurityContext",
    )
}

fn resources_change_json() -> Value {
    change(
        "add",
        "/spec/containers/0/resources",
        json!({"requests": {"memory": "400Mi"}}),
        "mutate.resources",
    )
}

/// The default policy's changes to a one-container template on the default ServiceAccount;
/// `tagged` adds the pull-policy change a tagged image gets.
fn default_template_changes_json(tagged: bool) -> Value {
    let mut changes = vec![
        pod_security_context_change_json(),
        change(
            "add",
            "/spec/automountServiceAccountToken",
            json!(false),
            "mutate.automountServiceAccountToken: keepForNamedServiceAccounts (the pod runs as the default ServiceAccount)",
        ),
        change(
            "add",
            "/spec/containers/0/securityContext",
            json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                   "runAsGroup": 1000, "runAsNonRoot": true, "runAsUser": 1000,
                   "seccompProfile": {"type": "RuntimeDefault"}}),
            "mutate.containerSecurityContext",
        ),
    ];
    if tagged {
        changes.push(change(
            "replace",
            "/spec/containers/0/imagePullPolicy",
            json!("Always"),
            "mutate.imagePullPolicy: alwaysExceptNever (the container does not say Never)",
        ));
    }
    changes.push(resources_change_json());
    Value::Array(changes)
}

/// [`BROWSER_CHANGES`] as `-o json` carries them.
fn browser_changes_json() -> Value {
    let context = |field: &str, value: Value| {
        change(
            "add",
            &format!("/spec/containers/0/securityContext/{field}"),
            value,
            "mutate.containerSecurityContext",
        )
    };
    json!([
        pod_security_context_change_json(),
        change(
            "add",
            "/spec/automountServiceAccountToken",
            json!(false),
            "mutate.automountServiceAccountToken: remove",
        ),
        context("capabilities", json!({"drop": ["ALL"]})),
        context("runAsGroup", json!(1000)),
        context("runAsNonRoot", json!(true)),
        context("runAsUser", json!(1000)),
        context("seccompProfile", json!({"type": "RuntimeDefault"})),
        change(
            "replace",
            "/spec/containers/0/imagePullPolicy",
            json!("Always"),
            "mutate.imagePullPolicy: always",
        ),
        resources_change_json(),
    ])
}

// ---------------------------------------------------------------------------------------
// a Helm-like render
// ---------------------------------------------------------------------------------------

#[test]
fn a_chart_render_is_judged_workload_by_workload_and_the_statefulset_denies() {
    let path = fixture("chart-render.yaml");
    assert_output(
        &run(&["check", &path]),
        1,
        &[
            &format!(
                "SKIPPED service/web (namespace mcp, {path}#1): kind Service is not judged by mcpguard"
            ),
            &format!("ADMITTED deployment/web (namespace mcp, {path}#2) after mutation"),
            DEFAULT_TAGGED_TEMPLATE_CHANGES[0],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[1],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[2],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[3],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[4],
            &format!("DENIED statefulset/db (namespace mcp, {path}#3): 3 violation(s)"),
            "  - hostNamespaces: host namespaces (hostNetwork=true)",
            &format!("    at {path}:48:7 spec.template.spec.hostNetwork"),
            r#"  - privileged: privileged (container "db" must not set securityContext.privileged=true)"#,
            &format!(
                "    at {path}:53:13 spec.template.spec.containers[0].securityContext.privileged"
            ),
            r#"  - allowPrivilegeEscalation: allowPrivilegeEscalation != false (container "db" must set securityContext.allowPrivilegeEscalation=false)"#,
            &format!(
                "    at {path}:52:11 spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation"
            ),
            &format!("ADMITTED cronjob/cleanup (namespace mcp, {path}#4) after mutation"),
            DEFAULT_TAGGED_TEMPLATE_CHANGES[0],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[1],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[2],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[3],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[4],
        ],
    );
}

#[test]
fn a_compliant_chart_render_exits_0() {
    let path = fixture("compliant-render.yaml");
    assert_output(
        &run(&["check", &path]),
        0,
        &[
            &format!(
                "SKIPPED service/web (namespace mcp, {path}#1): kind Service is not judged by mcpguard"
            ),
            &format!("ADMITTED deployment/web (namespace mcp, {path}#2) after mutation"),
            DEFAULT_TAGGED_TEMPLATE_CHANGES[0],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[1],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[2],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[3],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[4],
            &format!("ADMITTED cronjob/cleanup (namespace mcp, {path}#3) after mutation"),
            DEFAULT_TAGGED_TEMPLATE_CHANGES[0],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[1],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[2],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[3],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[4],
        ],
    );
}

#[test]
fn workloads_outside_the_enforced_namespaces_are_skipped() {
    let path = fixture("compliant-render.yaml");
    // `-n` is the namespace of documents that name none; the Deployment names `mcp`.
    assert_output(
        &run(&["check", "-n", "tools", &path]),
        0,
        &[
            &format!(
                "SKIPPED service/web (namespace tools, {path}#1): kind Service is not judged by mcpguard"
            ),
            &format!("ADMITTED deployment/web (namespace mcp, {path}#2) after mutation"),
            DEFAULT_TAGGED_TEMPLATE_CHANGES[0],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[1],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[2],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[3],
            DEFAULT_TAGGED_TEMPLATE_CHANGES[4],
            &format!(
                "SKIPPED cronjob/cleanup (namespace tools, {path}#3): namespace \"tools\" is not enforced by policy \"mcp-restricted\""
            ),
        ],
    );
    let denied = fixture("chart-render.yaml");
    let output = run(&["check", "-n", "tools", &denied]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains(&format!(
        "SKIPPED statefulset/db (namespace tools, {denied}#3): namespace \"tools\" is not enforced by policy \"mcp-restricted\"\n"
    )));
}

#[test]
fn the_chart_render_as_json_carries_will_get_warnings_and_violations() {
    let path = fixture("chart-render.yaml");
    let output = run(&["check", "-o", "json", &path]);
    assert_eq!(output.status.code(), Some(1));
    let reports = json_stdout(&output);
    assert_eq!(
        reports[1],
        json!({
            "source": path, "document": 2, "line": 15,
            "template": "mcp-stack/templates/deployment.yaml", "kind": "Deployment", "name": "web",
            "namespace": "mcp", "verdict": "admitted",
            "changes": default_template_changes_json(true),
            "warnings": [
                will_get("Deployment", "web", POD_WILL_GET),
                will_get("Deployment", "web", "container \"server\": set allowPrivilegeEscalation=false, drop ALL, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, imagePullPolicy=Always, requests.memory=400Mi"),
            ]
        })
    );
    assert_eq!(reports[2]["verdict"], "denied");
    assert_eq!(
        reports[2]["reason"],
        "statefulsets.apps \"db\" is forbidden: the pods it would create would be rejected: violates mcpguard policy \"mcp-restricted\": host namespaces (hostNetwork=true), privileged (container \"db\" must not set securityContext.privileged=true), allowPrivilegeEscalation != false (container \"db\" must set securityContext.allowPrivilegeEscalation=false)"
    );
    assert_eq!(
        reports[3]["warnings"][0],
        will_get("CronJob", "cleanup", POD_WILL_GET)
    );
    // A workload is never patched: the cluster mutates its pods, not the workload.
    for report in reports.as_array().expect("an array") {
        assert_eq!(report.get("patch"), None, "{report}");
    }
}

// ---------------------------------------------------------------------------------------
// --no-mutate
// ---------------------------------------------------------------------------------------

#[test]
fn no_mutate_denies_a_template_without_security_context() {
    let path = fixture("deployment-no-security-context.yaml");
    assert_output(
        &run(&["check", "--no-mutate", &path]),
        1,
        &[
            &format!("DENIED deployment/fetch (namespace mcp, {path}#1): 4 violation(s)"),
            r#"  - allowPrivilegeEscalation: allowPrivilegeEscalation != false (container "server" must set securityContext.allowPrivilegeEscalation=false)"#,
            &format!(
                "    at {path}:15:11 spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation"
            ),
            r#"  - capabilities_restricted: unrestricted capabilities (container "server" must set securityContext.capabilities.drop=["ALL"])"#,
            &format!(
                "    at {path}:15:11 spec.template.spec.containers[0].securityContext.capabilities.drop"
            ),
            r#"  - runAsNonRoot: runAsNonRoot != true (pod or container "server" must set securityContext.runAsNonRoot=true)"#,
            &format!(
                "    at {path}:15:11 spec.template.spec.containers[0].securityContext.runAsNonRoot"
            ),
            r#"  - seccompProfile_restricted: seccompProfile (pod or container "server" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#,
            &format!(
                "    at {path}:15:11 spec.template.spec.containers[0].securityContext.seccompProfile"
            ),
        ],
    );
}

#[test]
fn no_mutate_denial_of_a_workload_names_the_workload_not_a_pod() {
    // The webhook's denial of this Deployment names `deployments.apps "fetch"`; the offline
    // answer for the same object must name it the same way.
    let path = fixture("deployment-no-security-context.yaml");
    let output = run(&["check", "--no-mutate", "-o", "json", &path]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        json_stdout(&output)[0]["reason"],
        "deployments.apps \"fetch\" is forbidden: the pods it would create would be rejected: violates mcpguard policy \"mcp-restricted\": allowPrivilegeEscalation != false (container \"server\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"server\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or container \"server\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"server\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
    );
}

#[test]
fn with_mutation_the_same_template_is_admitted() {
    let path = fixture("deployment-no-security-context.yaml");
    assert_output(
        &run(&["check", &path]),
        0,
        &[
            &format!("ADMITTED deployment/fetch (namespace mcp, {path}#1) after mutation"),
            // `:latest`: the API server's defaulting already pulls it Always.
            POD_SECURITY_CONTEXT_CHANGE,
            DEFAULT_TOKEN_CHANGE,
            DEFAULT_CONTAINER_CONTEXT_CHANGE,
            RESOURCES_CHANGE,
        ],
    );
}

#[test]
fn json_of_a_workload_lists_what_its_pods_will_get() {
    let path = fixture("deployment-no-security-context.yaml");
    let output = run(&["check", "-o", "json", &path]);
    assert_eq!(output.status.code(), Some(0));
    // `:latest` is already pulled Always by the API server's defaulting.
    assert_eq!(
        json_stdout(&output),
        json!([{
            "source": path, "document": 1, "line": 1, "kind": "Deployment", "name": "fetch",
            "namespace": "mcp", "verdict": "admitted",
            "changes": default_template_changes_json(false),
            "warnings": [
                will_get("Deployment", "fetch", POD_WILL_GET),
                will_get("Deployment", "fetch", "container \"server\": set allowPrivilegeEscalation=false, drop ALL, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, requests.memory=400Mi"),
            ]
        }])
    );
}

#[test]
fn a_workload_without_a_template_is_denied_with_the_reason() {
    let text = "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: broken}\nspec:\n  schedule: \"@daily\"\n  jobTemplate: {spec: {}}\n";
    for args in [vec!["check", "-"], vec!["check", "--no-mutate", "-"]] {
        assert_output(
            &run_with(&args, Some(text)),
            1,
            &[
                "DENIED cronjob/broken (namespace mcp, <stdin>#1): CronJob has no pod template at /spec/jobTemplate/spec/template",
            ],
        );
    }
}

#[test]
fn no_mutate_never_reports_an_admission_after_mutation() {
    // Under `warn`, a violating workload is admitted; with `--no-mutate` nothing was mutated,
    // so the line must not say "after mutation".
    let path = fixture("privileged-deployment.yaml");
    let policy = fixture("warn-policy.yaml");
    let output = run(&["check", "--policy", &policy, "--no-mutate", &path]);
    assert_eq!(output.status.code(), Some(0));
    let first = stdout(&output).lines().next().unwrap_or("").to_owned();
    assert_eq!(
        first,
        format!("ADMITTED deployment/browser (namespace mcp, {path}#1)")
    );
}

// ---------------------------------------------------------------------------------------
// modes
// ---------------------------------------------------------------------------------------

#[test]
fn enforce_mode_denies_the_privileged_deployment() {
    let path = fixture("privileged-deployment.yaml");
    let mut lines = vec![format!(
        "DENIED deployment/browser (namespace mcp, {path}#1): 2 violation(s)"
    )];
    lines.extend(browser_violations(&path));
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_output(&run(&["check", &path]), 1, &lines);
}

#[test]
fn warn_mode_admits_the_workload_and_lists_its_violations() {
    let path = fixture("privileged-deployment.yaml");
    let policy = fixture("warn-policy.yaml");
    let mut lines = vec![format!(
        "ADMITTED deployment/browser (namespace mcp, {path}#1) after mutation"
    )];
    // The violations are listed under the admitted line; the warnings themselves
    // ("would violate policy ...") are only in `-o json`.
    lines.extend(browser_violations(&path));
    let lines = lines_of(&lines, &BROWSER_CHANGES);
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_output(&run(&["check", "--policy", &policy, &path]), 0, &lines);
}

#[test]
fn warn_mode_json_carries_one_would_violate_warning_per_violation() {
    let path = fixture("privileged-deployment.yaml");
    let pod = fixture("host-network-pod.yaml");
    let policy = fixture("warn-policy.yaml");
    let output = run(&["check", "--policy", &policy, "-o", "json", &path, &pod]);
    assert_eq!(output.status.code(), Some(0));
    let mut warnings = browser_will_get();
    warnings.extend([
        "mcpguard: pods of Deployment \"browser\" would violate policy \"mcp-warn\": privileged (container \"browser\" must not set securityContext.privileged=true)".to_owned(),
        "mcpguard: pods of Deployment \"browser\" would violate policy \"mcp-warn\": allowPrivilegeEscalation != false (container \"browser\" must set securityContext.allowPrivilegeEscalation=false)".to_owned(),
    ]);
    assert_eq!(
        json_stdout(&output),
        json!([
            {
                "source": path, "document": 1, "line": 1, "kind": "Deployment", "name": "browser",
                "namespace": "mcp", "verdict": "admitted",
                "violations": browser_violations_json(),
                "changes": browser_changes_json(),
                "warnings": warnings
            },
            {
                "source": pod, "document": 1, "line": 1, "kind": "Pod", "name": "legacy",
                "namespace": "mcp", "verdict": "admitted",
                "violations": [{"check": "hostNamespaces", "reason": "host namespaces", "detail": "hostNetwork=true",
                                "fields": [{"path": "spec.hostNetwork", "line": 6, "column": 3}]}],
                "warnings": ["mcpguard: would violate policy \"mcp-warn\": host namespaces (hostNetwork=true)"]
            }
        ])
    );
}

#[test]
fn warn_mode_does_not_claim_a_mutation_for_a_pod_that_needed_none() {
    // host-network-pod.yaml is already hardened: the mutation has nothing to set. Its only
    // warning is "would violate", which is not a mutation.
    let pod = fixture("host-network-pod.yaml");
    let policy = fixture("warn-policy.yaml");
    let output = run(&["check", "--policy", &policy, "-o", "json", &pod]);
    assert_eq!(
        json_stdout(&output)[0].get("patch"),
        None,
        "nothing mutated"
    );
    assert_output(
        &run(&["check", "--policy", &policy, &pod]),
        0,
        &[
            &format!("ADMITTED pod/legacy (namespace mcp, {pod}#1)"),
            &host_network_violation(&pod)[0],
            &host_network_violation(&pod)[1],
        ],
    );
}

#[test]
fn audit_mode_admits_and_lists_the_violations_without_warnings() {
    let path = fixture("privileged-deployment.yaml");
    let pod = fixture("host-network-pod.yaml");
    let policy = fixture("audit-policy.yaml");
    let mut lines = vec![format!(
        "ADMITTED deployment/browser (namespace mcp, {path}#1) after mutation"
    )];
    lines.extend(browser_violations(&path));
    lines.extend(BROWSER_CHANGES.iter().map(|l| (*l).to_owned()));
    lines.push(format!("ADMITTED pod/legacy (namespace mcp, {pod}#1)"));
    lines.extend(host_network_violation(&pod));
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_output(
        &run(&["check", "--policy", &policy, &path, &pod]),
        0,
        &lines,
    );
    let output = run(&["check", "--policy", &policy, "-o", "json", &path, &pod]);
    let reports = json_stdout(&output);
    assert_eq!(
        reports[0]["warnings"],
        json!(browser_will_get()),
        "only what the pods will get"
    );
    assert_eq!(reports[1].get("warnings"), None, "no warnings at all");
    assert_eq!(reports[1]["verdict"], "admitted");
}

#[test]
fn namespace_modes_warn_in_the_legacy_namespace_and_deny_in_the_enforced_one() {
    let path = fixture("privileged-deployment.yaml");
    let policy = fixture("legacy-namespace-policy.yaml");
    let mut legacy = vec![format!(
        "ADMITTED deployment/browser (namespace mcp-legacy, {path}#1) after mutation"
    )];
    legacy.extend(browser_violations(&path));
    legacy.extend(BROWSER_CHANGES.iter().map(|l| (*l).to_owned()));
    let legacy: Vec<&str> = legacy.iter().map(String::as_str).collect();
    assert_output(
        &run(&["check", "--policy", &policy, "-n", "mcp-legacy", &path]),
        0,
        &legacy,
    );
    let mut enforced = vec![format!(
        "DENIED deployment/browser (namespace mcp, {path}#1): 2 violation(s)"
    )];
    enforced.extend(browser_violations(&path));
    let enforced: Vec<&str> = enforced.iter().map(String::as_str).collect();
    assert_output(&run(&["check", "--policy", &policy, &path]), 1, &enforced);
}

#[test]
fn a_policy_with_an_unknown_mode_is_an_error() {
    let text = std::fs::read_to_string(fixture("warn-policy.yaml"))
        .expect("fixture")
        .replace("mode: warn", "mode: lenient");
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, text).expect("write policy");
    let policy = policy.display().to_string();
    let output = run(&[
        "check",
        "--policy",
        &policy,
        &fixture("privileged-deployment.yaml"),
    ]);
    assert_eq!(
        stderr(&output),
        format!(
            "mcpguard check: policy {policy}: spec.mode: unknown variant, expected one of `enforce`, `warn`, `audit`\n"
        )
    );
    assert_eq!(stdout(&output), "");
    assert_eq!(output.status.code(), Some(2));
}

// ---------------------------------------------------------------------------------------
// exceptions
// ---------------------------------------------------------------------------------------

#[test]
fn an_exception_admits_the_matching_workload_and_says_so_in_json() {
    let path = fixture("privileged-deployment.yaml");
    let policy = fixture("exceptions-policy.yaml");
    assert_output(
        &run(&["check", "--policy", &policy, &path]),
        0,
        &lines_of(
            &[format!(
                "ADMITTED deployment/browser (namespace mcp, {path}#1) after mutation"
            )],
            &BROWSER_CHANGES,
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
    let mut warnings = browser_will_get();
    warnings.push("mcpguard: exception \"legacy-browser-server\" waives privileged, allowPrivilegeEscalation for container \"browser\"".to_owned());
    assert_eq!(
        json_stdout(&run(&["check", "--policy", &policy, "-o", "json", &path])),
        json!([{
            "source": path, "document": 1, "line": 1, "kind": "Deployment", "name": "browser",
            "namespace": "mcp", "verdict": "admitted", "changes": browser_changes_json(),
            "warnings": warnings
        }])
    );
}

#[test]
fn an_exception_does_not_admit_another_image_under_the_matching_name() {
    let policy = fixture("exceptions-policy.yaml");
    let text = std::fs::read_to_string(fixture("privileged-deployment.yaml"))
        .expect("fixture")
        .replace(
            "mcr.microsoft.com/playwright:v1.49.0-noble",
            "ghcr.io/x/browser:1",
        );
    let mut lines =
        vec!["DENIED deployment/browser (namespace mcp, <stdin>#1): 2 violation(s)".to_owned()];
    lines.extend(browser_violations("<stdin>"));
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_output(
        &run_with(&["check", "--policy", &policy, "-"], Some(&text)),
        1,
        &lines,
    );
}

#[test]
fn a_label_does_not_exempt_a_workload() {
    let policy = fixture("exceptions-policy.yaml");
    let text = std::fs::read_to_string(fixture("privileged-deployment.yaml"))
        .expect("fixture")
        .replacen(
            "metadata:\n  name: browser\n",
            "metadata:\n  name: web\n  labels: {mcpguard.dev/exception: legacy-browser-server, exempt: \"true\"}\n  annotations: {mcpguard.dev/exempt: \"true\"}\n",
            1,
        );
    let output = run_with(&["check", "--policy", &policy, "-"], Some(&text));
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert_eq!(
        stdout(&output).lines().next(),
        Some("DENIED deployment/web (namespace mcp, <stdin>#1): 2 violation(s)")
    );
}

#[test]
fn an_expired_exception_denies_and_says_it_expired() {
    let policy = fixture("exceptions-policy.yaml");
    let text = std::fs::read_to_string(fixture("privileged-deployment.yaml"))
        .expect("fixture")
        .replacen(
            "metadata:\n  name: browser\n",
            "metadata:\n  name: fetch\n",
            1,
        );
    let output = run_with(
        &["check", "--policy", &policy, "-o", "json", "-"],
        Some(&text),
    );
    assert_eq!(output.status.code(), Some(1));
    let report = &json_stdout(&output)[0];
    assert_eq!(report["verdict"], "denied");
    assert_eq!(
        report["warnings"].as_array().and_then(|w| w.last()),
        Some(&json!(
            "mcpguard: exception \"old-waiver\" expired (2020-01-01) and no longer applies"
        ))
    );
}

/// The exceptions policy with the browser waiver matched by requester instead of by name.
fn requester_policy(dir: &tempfile::TempDir, criterion: &str) -> String {
    let text = std::fs::read_to_string(fixture("exceptions-policy.yaml"))
        .expect("fixture")
        .replace(
            "        names: [\"browser\"]\n",
            &format!("        {criterion}\n"),
        );
    assert!(text.contains(criterion), "the fixture changed");
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, text).expect("write policy");
    path.display().to_string()
}

fn first_line(output: &Output) -> (Option<i32>, String) {
    let line = stdout(output).lines().next().unwrap_or_default().to_owned();
    (output.status.code(), line)
}

#[test]
fn an_exception_by_user_applies_only_when_checked_as_that_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = requester_policy(
        &dir,
        "users: [\"system:serviceaccount:argocd:argocd-application-controller\"]",
    );
    let path = fixture("privileged-deployment.yaml");
    let denied = format!("DENIED deployment/browser (namespace mcp, {path}#1): 2 violation(s)");
    let admitted = format!("ADMITTED deployment/browser (namespace mcp, {path}#1) after mutation");
    assert_eq!(
        first_line(&run(&["check", "--policy", &policy, &path])),
        (Some(1), denied.clone()),
        "judged as nobody"
    );
    assert_eq!(
        first_line(&run(&[
            "check", "--policy", &policy, "--as", "alice", &path
        ])),
        (Some(1), denied),
        "judged as another user"
    );
    let as_argocd = "system:serviceaccount:argocd:argocd-application-controller";
    assert_eq!(
        first_line(&run(&[
            "check", "--policy", &policy, "--as", as_argocd, &path
        ])),
        (Some(0), admitted)
    );
}

#[test]
fn an_exception_by_group_applies_when_one_of_the_groups_matches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = requester_policy(&dir, "groups: [\"platform-admins\"]");
    let path = fixture("privileged-deployment.yaml");
    let check = |groups: &str| {
        first_line(&run(&[
            "check",
            "--policy",
            &policy,
            "--as",
            "bob",
            "--as-group",
            groups,
            &path,
        ]))
        .0
    };
    assert_eq!(check("developers"), Some(1));
    assert_eq!(check("developers,platform-admins"), Some(0));
}
