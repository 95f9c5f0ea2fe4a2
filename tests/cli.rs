//! `mcpguard check` and `mcpguard mutate` as a user runs them: the real binary, from the crate
//! root, asserting exit codes, exact output lines and exact error messages.

mod cli_support;
#[path = "common/hardened.rs"]
mod hardened;

use cli_support::{assert_output, mcpguard_command, run, run_with_stdin, stderr, stdout};
use hardened::full_container_security_context;
use std::path::Path;
use std::process::Output;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const FIXTURES: &str = "tests/fixtures/cli";

/// Runs `mcpguard ARGS` (see `cli_support::mcpguard_command`) with `env` added, feeding `stdin` if
/// given.
fn run_with(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut command = mcpguard_command(args);
    command.envs(env.iter().copied());
    run_with_stdin(command, stdin)
}

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

/// Asserts exit code 2, nothing on stdout and exactly `message` on stderr.
/// What the restricted policy's mutation changes in a pod that sets no security context,
/// resources or ServiceAccount, one line per change, as `check` prints them under it.
const BARE_POD_CHANGES: [&str; 5] = [
    r#"  ~ add /spec/securityContext = {"fsGroup":1000,"runAsGroup":1000,"runAsNonRoot":true,"runAsUser":1000,"seccompProfile":{"type":"RuntimeDefault"}}: mutate.podSecurityContext"#,
    "  ~ add /spec/automountServiceAccountToken = false: mutate.automountServiceAccountToken: keepForNamedServiceAccounts (the pod runs as the default ServiceAccount)",
    r#"  ~ add /spec/containers/0/securityContext = {"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]},"runAsGroup":1000,"runAsNonRoot":true,"runAsUser":1000,"seccompProfile":{"type":"RuntimeDefault"}}: mutate.containerSecurityContext"#,
    r#"  ~ replace /spec/containers/0/imagePullPolicy = "Always": mutate.imagePullPolicy: alwaysExceptNever (the container does not say Never)"#,
    r#"  ~ add /spec/containers/0/resources = {"requests":{"memory":"400Mi"}}: mutate.resources"#,
];

/// `admitted`, followed by [`BARE_POD_CHANGES`].
fn with_bare_changes(admitted: &str) -> Vec<String> {
    std::iter::once(admitted.to_owned())
        .chain(BARE_POD_CHANGES.map(str::to_owned))
        .collect()
}

/// The lines as `assert_output` takes them.
fn refs(lines: &[String]) -> Vec<&str> {
    lines.iter().map(String::as_str).collect()
}

#[track_caller]
fn assert_error(output: &Output, message: &str) {
    assert_eq!(stderr(output), message, "stderr");
    assert_eq!(stdout(output), "", "stdout");
    assert_eq!(output.status.code(), Some(2), "exit code");
}

#[track_caller]
fn json_stdout(output: &Output) -> Vec<Value> {
    serde_json::from_slice::<Vec<Value>>(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is a JSON array ({e}): {}", stdout(output)))
}

fn checks(report: &Value) -> Vec<&str> {
    report["violations"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .map(|v| v["check"].as_str().unwrap_or("?"))
                .collect()
        })
        .unwrap_or_default()
}

/// `mutate --patch` output: one JSON patch per line.
#[track_caller]
fn patch_lines(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

const EXAMPLE_VIOLATIONS: [&str; 4] = [
    r#"  - allowPrivilegeEscalation: allowPrivilegeEscalation != false (container "server" must set securityContext.allowPrivilegeEscalation=false)"#,
    r#"  - capabilities_restricted: unrestricted capabilities (container "server" must set securityContext.capabilities.drop=["ALL"])"#,
    r#"  - runAsNonRoot: runAsNonRoot != true (pod or container "server" must set securityContext.runAsNonRoot=true)"#,
    r#"  - seccompProfile_restricted: seccompProfile (pod or container "server" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")"#,
];

/// The field each of `EXAMPLE_VIOLATIONS` names: all unset, so each is shown where its
/// container is written.
const EXAMPLE_FIELDS: [&str; 4] = [
    "spec.containers[0].securityContext.allowPrivilegeEscalation",
    "spec.containers[0].securityContext.capabilities.drop",
    "spec.containers[0].securityContext.runAsNonRoot",
    "spec.containers[0].securityContext.seccompProfile",
];

/// `EXAMPLE_VIOLATIONS` of the given indices, each followed by its field's line, the
/// container being written at `container_at` (`file:line:column`).
fn example_violations(indices: &[usize], container_at: &str) -> Vec<String> {
    indices
        .iter()
        .flat_map(|&i| {
            [
                EXAMPLE_VIOLATIONS[i].to_owned(),
                format!("    at {container_at} {}", EXAMPLE_FIELDS[i]),
            ]
        })
        .collect()
}

/// What the default policy adds to `examples/pod.yaml` (the file, not yet API-defaulted).
fn example_patch() -> Value {
    json!([
        {"op": "add", "path": "/spec/automountServiceAccountToken", "value": false},
        {"op": "add", "path": "/spec/containers/0/imagePullPolicy", "value": "Always"},
        {"op": "add", "path": "/spec/containers/0/resources", "value": {"requests": {"memory": "400Mi"}}},
        {"op": "add", "path": "/spec/containers/0/securityContext", "value": full_container_security_context()},
        {"op": "add", "path": "/spec/securityContext", "value": {
            "fsGroup": 1000,
            "runAsGroup": 1000,
            "runAsNonRoot": true,
            "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"}
        }}
    ])
}

// ---------------------------------------------------------------------------------------
// check: the README's examples
// ---------------------------------------------------------------------------------------

#[test]
fn check_example_pod_is_admitted_after_mutation() {
    assert_output(
        &run(&["check", "examples/pod.yaml"]),
        0,
        &refs(&with_bare_changes(
            "ADMITTED pod/github-mcp (namespace mcp, examples/pod.yaml#1) after mutation",
        )),
    );
}

#[test]
fn check_no_mutate_example_pod_is_denied_with_every_violation() {
    let mut lines = vec![
        "DENIED pod/github-mcp (namespace mcp, examples/pod.yaml#1): 4 violation(s)".to_owned(),
    ];
    lines.extend(example_violations(&[0, 1, 2, 3], "examples/pod.yaml:12:7"));
    assert_output(
        &run(&["check", "--no-mutate", "examples/pod.yaml"]),
        1,
        &refs(&lines),
    );
}

#[test]
fn check_compliant_pod_is_admitted_without_mutation() {
    let path = fixture("compliant-pod.yaml");
    let line = format!("ADMITTED pod/hardened-mcp (namespace mcp, {path}#1)");
    assert_output(&run(&["check", &path]), 0, &[&line]);
    assert_output(&run(&["check", "--no-mutate", &path]), 0, &[&line]);
    // Nothing to change: an empty patch.
    let output = run(&["mutate", "--patch", &path]);
    assert_output(&output, 0, &["[]"]);
}

// ---------------------------------------------------------------------------------------
// check: inputs
// ---------------------------------------------------------------------------------------

#[test]
fn check_multi_document_yaml_skips_services_and_unenforced_namespaces() {
    let path = fixture("multi.yaml");
    let skipped = [
        format!(
            "SKIPPED service/fetch-mcp (namespace mcp, {path}#2): kind Service is not judged by mcpguard"
        ),
        format!(
            r#"SKIPPED pod/elsewhere (namespace default, {path}#3): namespace "default" is not enforced by policy "mcp-restricted""#
        ),
    ];
    let admitted = format!("ADMITTED pod/fetch-mcp (namespace mcp, {path}#1) after mutation");
    assert_output(
        &run(&["check", &path]),
        0,
        // The image is `:latest`: the API server already defaulted it to `Always`.
        &[
            admitted.as_str(),
            BARE_POD_CHANGES[0],
            BARE_POD_CHANGES[1],
            BARE_POD_CHANGES[2],
            BARE_POD_CHANGES[4],
            &skipped[0],
            &skipped[1],
        ],
    );

    // As written, the first pod is denied; the privileged pod in "default" is still skipped.
    let denied = format!("DENIED pod/fetch-mcp (namespace mcp, {path}#1): 4 violation(s)");
    let violations: Vec<String> = example_violations(&[0, 1, 2, 3], &format!("{path}:8:7"))
        .iter()
        .map(|line| line.replace(r#""server""#, r#""fetch""#))
        .collect();
    let mut lines = vec![denied.as_str()];
    lines.extend(violations.iter().map(String::as_str));
    lines.extend(skipped.iter().map(String::as_str));
    assert_output(&run(&["check", "--no-mutate", &path]), 1, &lines);
}

#[test]
fn check_directory_is_read_recursively_in_sorted_order() {
    // dir/README.md is not a manifest and is ignored.
    assert_output(
        &run(&["check", &fixture("dir")]),
        0,
        &refs(
            &[
                with_bare_changes("ADMITTED pod/floating-mcp (namespace mcp, tests/fixtures/cli/dir/a-floating.yml#1) after mutation"),
                vec!["ADMITTED pod/hardened-mcp (namespace mcp, tests/fixtures/cli/dir/b-compliant.yaml#1)".to_owned()],
                with_bare_changes("ADMITTED pod/json-mcp (namespace mcp, tests/fixtures/cli/dir/nested/c.json#1) after mutation"),
            ]
            .concat(),
        ),
    );
}

#[test]
fn check_reads_stdin_for_dash() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pod.yaml"))
            .expect("example exists");
    let mut lines =
        vec!["DENIED pod/github-mcp (namespace mcp, <stdin>#1): 4 violation(s)".to_owned()];
    lines.extend(example_violations(&[0, 1, 2, 3], "<stdin>:12:7"));
    assert_output(
        &run_with(&["check", "--no-mutate", "-"], Some(&text), &[]),
        1,
        &refs(&lines),
    );
    assert_output(
        &run_with(&["check", "-"], Some(&text), &[]),
        0,
        &refs(&with_bare_changes(
            "ADMITTED pod/github-mcp (namespace mcp, <stdin>#1) after mutation",
        )),
    );
}

#[test]
fn check_stdin_and_files_together_keep_argument_order() {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n";
    let compliant = fixture("compliant-pod.yaml");
    assert_output(
        &run_with(&["check", &compliant, "-"], Some(text), &[]),
        0,
        &[
            &format!("ADMITTED pod/hardened-mcp (namespace mcp, {compliant}#1)"),
            "SKIPPED configmap/settings (namespace mcp, <stdin>#1): kind ConfigMap is not judged by mcpguard",
        ],
    );
}

#[test]
fn check_json_file() {
    let path = fixture("pod.json");
    assert_output(
        &run(&["check", &path]),
        0,
        &refs(&with_bare_changes(&format!(
            "ADMITTED pod/json-mcp (namespace mcp, {path}#1) after mutation"
        ))),
    );
    let output = run(&["check", "--no-mutate", "-o", "json", &path]);
    assert_eq!(output.status.code(), Some(1));
    let reports = json_stdout(&output);
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["verdict"], "denied");
    assert_eq!(reports[0]["source"], path.as_str());
}

#[test]
fn check_kind_list_judges_each_item() {
    let path = fixture("list.yaml");
    assert_output(
        &run(&["check", &path]),
        1,
        &[
            &format!("ADMITTED pod/listed-a (namespace mcp, {path}#1) after mutation"),
            BARE_POD_CHANGES[0],
            BARE_POD_CHANGES[1],
            BARE_POD_CHANGES[2],
            BARE_POD_CHANGES[3],
            BARE_POD_CHANGES[4],
            &format!(
                "SKIPPED configmap/listed-config (namespace mcp, {path}#1): kind ConfigMap is not judged by mcpguard"
            ),
            &format!("DENIED pod/listed-b (namespace mcp, {path}#1): 2 violation(s)"),
            r#"  - privileged: privileged (container "b" must not set securityContext.privileged=true)"#,
            &format!("    at {path}:17:78 spec.containers[0].securityContext.privileged"),
            r#"  - allowPrivilegeEscalation: allowPrivilegeEscalation != false (container "b" must set securityContext.allowPrivilegeEscalation=false)"#,
            &format!(
                "    at {path}:17:60 spec.containers[0].securityContext.allowPrivilegeEscalation"
            ),
        ],
    );
}

#[test]
fn check_empty_input_admits_nothing_and_exits_zero() {
    assert_output(
        &run_with(&["check", "-"], Some("# nothing rendered\n---\n"), &[]),
        0,
        &[],
    );
    let output = run_with(&["check", "-o", "json", "-"], Some(""), &[]);
    assert_eq!(json_stdout(&output), Vec::<Value>::new());
    assert_eq!(output.status.code(), Some(0));
}

// ---------------------------------------------------------------------------------------
// check: flags
// ---------------------------------------------------------------------------------------

#[test]
fn check_namespace_flag_places_objects_without_namespace() {
    let path = fixture("no-namespace-pod.yaml");
    assert_output(
        &run(&["check", "--namespace", "other", &path]),
        0,
        &[&format!(
            r#"SKIPPED pod/floating-mcp (namespace other, {path}#1): namespace "other" is not enforced by policy "mcp-restricted""#
        )],
    );
    // Without the flag: the policy's first namespace.
    assert_output(
        &run(&["check", &path]),
        0,
        &refs(&with_bare_changes(&format!(
            "ADMITTED pod/floating-mcp (namespace mcp, {path}#1) after mutation"
        ))),
    );
    // An explicit namespace wins over the flag.
    assert_output(
        &run(&["check", "-n", "other", "examples/pod.yaml"]),
        0,
        &refs(&with_bare_changes(
            "ADMITTED pod/github-mcp (namespace mcp, examples/pod.yaml#1) after mutation",
        )),
    );
}

#[test]
fn check_namespace_from_environment() {
    let path = fixture("no-namespace-pod.yaml");
    let output = run_with(
        &["check", "--no-mutate", &path],
        None,
        &[("MCPGUARD_NAMESPACE", "other")],
    );
    assert_output(
        &output,
        0,
        &[&format!(
            r#"SKIPPED pod/floating-mcp (namespace other, {path}#1): namespace "other" is not enforced by policy "mcp-restricted""#
        )],
    );
}

#[test]
fn check_pss_level_baseline_admits_what_restricted_denies() {
    let path = fixture("baseline-pod.yaml");
    let mut denied = vec![format!(
        "DENIED pod/baseline-mcp (namespace mcp, {path}#1): 3 violation(s)"
    )];
    denied.extend(example_violations(&[1, 2, 3], &format!("{path}:12:7")));
    assert_output(&run(&["check", "--no-mutate", &path]), 1, &refs(&denied));
    let admitted = format!("ADMITTED pod/baseline-mcp (namespace mcp, {path}#1)");
    assert_output(
        &run(&["check", "--no-mutate", "--pss-level", "baseline", &path]),
        0,
        &[&admitted],
    );
    assert_output(
        &run_with(
            &["check", "--no-mutate", &path],
            None,
            &[("MCPGUARD_PSS_LEVEL", "baseline")],
        ),
        0,
        &[&admitted],
    );
}

#[test]
fn check_pss_version_v1_24_judges_windows_pods_as_linux_pods() {
    // Restricted checks exempt Windows pods from v1.25 on; v1.24 still demands
    // allowPrivilegeEscalation, capabilities and seccomp.
    let path = fixture("windows-pod.yaml");
    let mut denied = vec![format!(
        "DENIED pod/windows-mcp (namespace mcp, {path}#1): 3 violation(s)"
    )];
    denied.extend(example_violations(&[0, 1, 3], &format!("{path}:13:7")));
    let denied: Vec<&str> = denied.iter().map(String::as_str).collect();
    let admitted = format!("ADMITTED pod/windows-mcp (namespace mcp, {path}#1)");
    assert_output(
        &run(&["check", "--no-mutate", "--pss-version", "v1.24", &path]),
        1,
        &denied,
    );
    assert_output(
        &run(&["check", "--no-mutate", "--pss-version", "latest", &path]),
        0,
        &[&admitted],
    );
    assert_output(
        &run(&["check", "--no-mutate", "--pss-version", "v1.25", &path]),
        0,
        &[&admitted],
    );
    // Mutation cannot help under v1.24: Windows pods get no Linux-only fields.
    assert_output(
        &run(&["check", "--pss-version", "v1.24", &path]),
        1,
        &denied,
    );
}

#[test]
fn mutate_windows_pod_gets_only_windows_fields() {
    // runAsNonRoot is set at pod level already, so the container inherits it.
    let output = run(&["mutate", "--patch", &fixture("windows-pod.yaml")]);
    assert_eq!(stderr(&output), "");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        patch_lines(&output),
        vec![json!([
            {"op": "add", "path": "/spec/automountServiceAccountToken", "value": false},
            {"op": "add", "path": "/spec/containers/0/resources", "value": {"requests": {"memory": "400Mi"}}}
        ])]
    );

    // Without any securityContext: runAsNonRoot only, at pod and container level.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: win, namespace: mcp}\nspec:\n  os: {name: windows}\n  containers: [{name: s, image: \"mcr.microsoft.com/x:1\", imagePullPolicy: Always}]\n";
    let output = run_with(&["mutate", "--patch", "-"], Some(pod), &[]);
    assert_eq!(stderr(&output), "");
    assert_eq!(
        patch_lines(&output),
        vec![json!([
            {"op": "add", "path": "/spec/automountServiceAccountToken", "value": false},
            {"op": "add", "path": "/spec/containers/0/resources", "value": {"requests": {"memory": "400Mi"}}},
            {"op": "add", "path": "/spec/containers/0/securityContext", "value": {"runAsNonRoot": true}},
            {"op": "add", "path": "/spec/securityContext", "value": {"runAsNonRoot": true}}
        ])]
    );
    assert_output(
        &run_with(&["check", "-"], Some(pod), &[]),
        0,
        &[
            "ADMITTED pod/win (namespace mcp, <stdin>#1) after mutation",
            r#"  ~ add /spec/securityContext = {"runAsNonRoot":true}: mutate.podSecurityContext"#,
            BARE_POD_CHANGES[1],
            r#"  ~ add /spec/containers/0/securityContext = {"runAsNonRoot":true}: mutate.containerSecurityContext"#,
            BARE_POD_CHANGES[4],
        ],
    );
}

#[test]
fn check_json_output_fields() {
    let output = run(&[
        "check",
        "--no-mutate",
        "-o",
        "json",
        "examples/pod.yaml",
        &fixture("multi.yaml"),
    ]);
    assert_eq!(stderr(&output), "");
    assert_eq!(output.status.code(), Some(1));
    let reports = json_stdout(&output);
    assert_eq!(reports.len(), 4);

    let example = &reports[0];
    assert_eq!(example["verdict"], "denied");
    assert_eq!(example["kind"], "Pod");
    assert_eq!(example["name"], "github-mcp");
    assert_eq!(example["namespace"], "mcp");
    assert_eq!(example["document"], 1);
    assert_eq!(example["source"], "examples/pod.yaml");
    assert_eq!(
        checks(example),
        [
            "allowPrivilegeEscalation",
            "capabilities_restricted",
            "runAsNonRoot",
            "seccompProfile_restricted"
        ]
    );
    assert_eq!(
        example["violations"][0],
        json!({
            "check": "allowPrivilegeEscalation",
            "reason": "allowPrivilegeEscalation != false",
            "detail": "container \"server\" must set securityContext.allowPrivilegeEscalation=false",
            // Unset: shown where the container is written.
            "fields": [{
                "path": "spec.containers[0].securityContext.allowPrivilegeEscalation",
                "line": 12,
                "column": 7
            }]
        })
    );
    let reason = example["reason"].as_str().expect("a denial has a reason");
    assert!(
        reason.starts_with(r#"pods "github-mcp" is forbidden: violates mcpguard policy "mcp-restricted": allowPrivilegeEscalation != false"#),
        "{reason}"
    );

    let service = &reports[2];
    assert_eq!(service["verdict"], "skipped");
    assert_eq!(service["kind"], "Service");
    assert_eq!(service["document"], 2);
    assert_eq!(service["source"], "tests/fixtures/cli/multi.yaml");
    assert_eq!(service["reason"], "kind Service is not judged by mcpguard");
    assert_eq!(service.get("violations"), None);

    let elsewhere = &reports[3];
    assert_eq!(elsewhere["verdict"], "skipped");
    assert_eq!(elsewhere["namespace"], "default");
    assert_eq!(elsewhere["document"], 3);
}

#[test]
fn check_json_output_after_mutation_carries_patch_and_warnings() {
    let output = run(&["check", "-o", "json", "examples/pod.yaml"]);
    assert_eq!(stderr(&output), "");
    assert_eq!(output.status.code(), Some(0));
    let reports = json_stdout(&output);
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!(report["verdict"], "admitted");
    assert_eq!(report.get("violations"), None);
    assert_eq!(report["patch"], example_patch());
    assert_eq!(
        report["warnings"],
        json!([
            "mcpguard: pod: set fsGroup=1000, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, automountServiceAccountToken=false",
            "mcpguard: container \"server\": set allowPrivilegeEscalation=false, drop ALL, runAsGroup=1000, runAsNonRoot, runAsUser=1000, seccompProfile=RuntimeDefault, imagePullPolicy=Always, requests.memory=400Mi"
        ])
    );
}

#[test]
fn check_privileged_pod_stays_denied_after_mutation() {
    // Mutation fills what is absent and keeps explicit values: privileged=true stays.
    let path = fixture("privileged-pod.yaml");
    assert_output(
        &run(&["check", &path]),
        1,
        &[
            &format!("DENIED pod/privileged-mcp (namespace mcp, {path}#1): 2 violation(s)"),
            r#"  - privileged: privileged (container "server" must not set securityContext.privileged=true)"#,
            &format!("    at {path}:11:9 spec.containers[0].securityContext.privileged"),
            r#"  - allowPrivilegeEscalation: allowPrivilegeEscalation != false (container "server" must set securityContext.allowPrivilegeEscalation=false)"#,
            &format!(
                "    at {path}:10:7 spec.containers[0].securityContext.allowPrivilegeEscalation"
            ),
        ],
    );
    let output = run(&["mutate", "--patch", &path]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "mutate exits 1 when a pod stays denied"
    );
    assert_eq!(
        stderr(&output),
        format!(
            "mcpguard mutate: DENIED pod/privileged-mcp (namespace mcp, {path}#1): 2 violation(s)\n  - privileged: privileged (container \"server\" must not set securityContext.privileged=true)\n    at {path}:11:9 spec.containers[0].securityContext.privileged\n  - allowPrivilegeEscalation: allowPrivilegeEscalation != false (container \"server\" must set securityContext.allowPrivilegeEscalation=false)\n    at {path}:10:7 spec.containers[0].securityContext.allowPrivilegeEscalation\n"
        )
    );
    let patch = &patch_lines(&output)[0];
    let paths: Vec<&str> = patch
        .as_array()
        .expect("a patch")
        .iter()
        .map(|op| op["path"].as_str().unwrap_or(""))
        .collect();
    // allowPrivilegeEscalation=false next to privileged=true is refused by the API server
    // itself, so it is not filled: the user sees mcpguard's denial instead.
    assert!(
        paths.contains(&"/spec/containers/0/securityContext/runAsNonRoot"),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.contains("allowPrivilegeEscalation")),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.contains("privileged")),
        "privileged is never touched: {paths:?}"
    );
}

// ---------------------------------------------------------------------------------------
// errors: an entry of their own, exit 2; every other document is still judged
// ---------------------------------------------------------------------------------------

#[test]
fn a_missing_file_is_an_error_entry_and_the_other_files_are_judged() {
    let path = fixture("missing.yaml");
    let error = format!("ERROR {path}: cannot read: no such file or directory");
    assert_output(&run(&["check", &path]), 2, &[&error]);
    let both = run(&["check", "--no-mutate", "examples/pod.yaml", &path]);
    assert_eq!(
        stdout(&both).lines().next(),
        Some("DENIED pod/github-mcp (namespace mcp, examples/pod.yaml#1): 4 violation(s)")
    );
    assert_eq!(stdout(&both).lines().last(), Some(error.as_str()));
    assert_eq!(both.status.code(), Some(2), "an error outranks a denial");
    let mutate = run(&["mutate", &path]);
    assert_eq!(stdout(&mutate), "");
    assert_eq!(stderr(&mutate), format!("mcpguard mutate: {error}\n"));
    assert_eq!(mutate.status.code(), Some(2));
}

#[test]
fn invalid_yaml_is_an_error_entry_naming_file_line_and_column() {
    let path = fixture("invalid.yaml");
    assert_output(
        &run(&["check", &path]),
        2,
        &[&format!(
            "ERROR {path}#1: invalid YAML: unclosed bracket '[' at line 4, column 9"
        )],
    );
}

#[test]
fn a_document_that_is_not_an_object_is_an_error_and_its_neighbours_are_judged() {
    let path = fixture("scalars.yaml");
    assert_output(
        &run(&["check", &path]),
        2,
        &[&format!(
            "ERROR {path}#1: expected a Kubernetes object (a mapping), got a list"
        )],
    );
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: c, image: nginx}]}\n";
    assert_output(
        &run_with(
            &["check", "--no-mutate", "-n", "elsewhere", "-"],
            Some(&format!("{pod}---\n\"just a string\"\n---\n{pod}")),
            &[],
        ),
        2,
        &[
            r#"SKIPPED pod/x (namespace elsewhere, <stdin>#1): namespace "elsewhere" is not enforced by policy "mcp-restricted""#,
            "ERROR <stdin>#2: expected a Kubernetes object (a mapping), got a string",
            r#"SKIPPED pod/x (namespace elsewhere, <stdin>#3): namespace "elsewhere" is not enforced by policy "mcp-restricted""#,
        ],
    );
    assert_output(
        &run_with(&["check", "-"], Some("[1, 2]"), &[]),
        2,
        &["ERROR <stdin>#1: expected a Kubernetes object (a mapping), got a number"],
    );
}

#[test]
fn check_decodes_strictly_as_kubectl_apply_does() {
    let typo = "apiVersion: v1\nkind: Pod\nmetadata: {name: typo, namespace: mcp}\nspec:\n  containers:\n  - name: app\n    image: nginx\n    securityContex: {privileged: true}\n";
    assert_output(
        &run_with(&["check", "-"], Some(typo), &[]),
        2,
        &[
            r#"ERROR pod/typo (namespace mcp, <stdin>#1): strict decoding error: unknown field "spec.containers[0].securityContex""#,
        ],
    );
    let replica = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: mcp}\nspec:\n  replica: 2\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: nginx}]}\n";
    assert_output(
        &run_with(&["check", "-"], Some(replica), &[]),
        2,
        &[
            r#"ERROR deployment/d (namespace mcp, <stdin>#1): strict decoding error: unknown field "spec.replica""#,
        ],
    );
    // A wrong type names its field, and never echoes the value.
    let wrong_type = typo.replace(
        "securityContex: {privileged: true}",
        "securityContext: {runAsUser: hunter2}",
    );
    let output = run_with(&["check", "-o", "json", "-"], Some(&wrong_type), &[]);
    assert_eq!(output.status.code(), Some(2));
    let report = &json_stdout(&output)[0];
    assert_eq!(report["verdict"], "error");
    assert!(
        report["reason"].as_str().is_some_and(
            |r| r.starts_with("cannot decode spec.containers[0].securityContext.runAsUser: ")
        ),
        "{report}"
    );
    assert!(!stdout(&output).contains("hunter2"));
}

#[test]
fn check_routes_several_policies_and_mcppolicy_inputs_by_namespace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = |name: &str, namespace: &str, level: &str| {
        format!(
            "apiVersion: mcpguard.dev/v1alpha1\nkind: MCPPolicy\nmetadata: {{name: {name}}}\nspec:\n  namespaces: [{namespace}]\n  podSecurity: {{level: {level}, version: latest}}\n"
        )
    };
    let file = dir.path().join("file.yaml");
    std::fs::write(&file, policy("file", "mcp", "restricted")).expect("write");
    let more = dir.path().join("more");
    std::fs::create_dir(&more).expect("mkdir");
    std::fs::write(
        more.join("baseline.yaml"),
        policy("team-baseline", "team", "baseline"),
    )
    .expect("write");
    // Runs as root: restricted refuses it, baseline admits it.
    let pod = |namespace: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: root, namespace: {namespace}}}\nspec:\n  containers: [{{name: c, image: nginx}}]\n"
        )
    };
    let manifests = dir.path().join("pods.yaml");
    let input_policy = policy("from-input", "input", "baseline");
    std::fs::write(
        &manifests,
        format!(
            "{}---\n{}---\n{}---\n{input_policy}",
            pod("mcp"),
            pod("team"),
            pod("input")
        ),
    )
    .expect("write");
    let file = file.display().to_string();
    let more = more.display().to_string();
    let manifests = manifests.display().to_string();
    let check_both = || {
        run(&[
            "check",
            "--no-mutate",
            "--policy",
            &file,
            "--policy",
            &more,
            &manifests,
        ])
    };
    let output = check_both();
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("  ")).collect();
    assert_eq!(
        lines,
        [
            format!("DENIED pod/root (namespace mcp, {manifests}#1): 4 violation(s)"),
            format!("ADMITTED pod/root (namespace team, {manifests}#2)"),
            format!("ADMITTED pod/root (namespace input, {manifests}#3)"),
            format!("ADMITTED mcppolicy/from-input (namespace mcp, {manifests}#4)"),
        ],
        "{}",
        stderr(&output)
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr(&output), "");

    // Two objects claiming one namespace: the cluster's rule (the older wins; offline, by
    // name), said as the losing object's status would say it.
    std::fs::write(
        dir.path().join("more/zeta.yaml"),
        policy("zeta", "team", "restricted"),
    )
    .expect("write");
    let output = check_both();
    assert_eq!(
        stderr(&output),
        concat!(
            "mcpguard check: warning: MCPPolicy \"team-baseline\": namespace \"team\" is also claimed by the newer MCPPolicy \"zeta\", which does not get it\n",
            "mcpguard check: warning: MCPPolicy \"zeta\": namespace \"team\" is held by the older MCPPolicy \"team-baseline\"\n",
        )
    );
}

#[test]
fn a_closed_pipe_ends_check_quietly() {
    use std::io::Read as _;
    use std::process::{Command, Stdio};
    // 400 pods: far more output than a pipe buffer, read only up to its first byte.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: nginx}]}\n---\n";
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("many.yaml");
    std::fs::write(&path, pod.repeat(400)).expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcpguard"))
        .args(["check", "-o", "json"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).expect("some output");
    drop(stdout);
    let output = child.wait_with_output().expect("wait");
    assert_eq!(stderr(&output), "", "no panic, no error");
    assert_eq!(
        output.status.code(),
        Some(0),
        "the answer stands: every pod admitted"
    );
}

#[test]
fn check_takes_any_pss_version_and_the_clusters_kubernetes_version() {
    // PSA takes any v1.N and judges one newer than its newest checks by them; a cluster's
    // PSA knows no check newer than its own release.
    let path = fixture("sysctl-pod.yaml");
    let admitted = format!("ADMITTED pod/tuned-mcp (namespace mcp, {path}#1)");
    let denied = [
        format!("DENIED pod/tuned-mcp (namespace mcp, {path}#1): 1 violation(s)"),
        "  - sysctls: forbidden sysctls (net.ipv4.tcp_notsent_lowat)".to_owned(),
        format!("    at {path}:16:9 spec.securityContext.sysctls[0]"),
    ];
    let denied: Vec<&str> = denied.iter().map(String::as_str).collect();
    for version in ["latest", "v1.37", "v1.99"] {
        assert_output(
            &run(&["check", "--pss-version", version, &path]),
            0,
            &[&admitted],
        );
    }
    assert_output(
        &run(&["check", "--pss-version", "v1.36", &path]),
        1,
        &denied,
    );
    assert_output(
        &run(&["check", "--kubernetes-version", "1.34", &path]),
        1,
        &denied,
    );
    assert_output(
        &run(&["check", "--kubernetes-version", "v1.37.1", &path]),
        0,
        &[&admitted],
    );
    assert_output(
        &run_with(
            &["check", &path],
            None,
            &[("MCPGUARD_KUBERNETES_VERSION", "1.36")],
        ),
        1,
        &denied,
    );
}

#[test]
fn check_no_mutate_applies_the_api_defaults_to_psa_s_restrictedvolumes0() {
    // A volume that names no source is an emptyDir once the API server has defaulted it;
    // `--no-mutate` leaves out the webhook's mutation, not the API server's defaults.
    let path = fixture("psa-restrictedvolumes0.yaml");
    let admitted = format!("ADMITTED pod/restrictedvolumes0 (namespace mcp, {path}#1)");
    for version in ["v1.0", "v1.8", "v1.11", "v1.18"] {
        assert_output(
            &run(&["check", "--no-mutate", "--pss-version", version, &path]),
            0,
            &[&admitted],
        );
    }
}

#[test]
fn unknown_pss_version_is_a_usage_error() {
    assert_error(
        &run(&["check", "--pss-version", "v1.x", "examples/pod.yaml"]),
        "error: invalid value 'v1.x' for '--pss-version <PSS_VERSION>': invalid Pod Security Standards version \"v1.x\": must be \"latest\" or \"v1.N\"\n\nFor more information, try '--help'.\n",
    );
    assert_error(
        &run(&["check", "--kubernetes-version", "2.1", "examples/pod.yaml"]),
        "error: invalid value '2.1' for '--kubernetes-version <KUBERNETES_VERSION>': invalid Kubernetes version \"2.1\": expected a minor (\"34\") or \"1.34\" (\"v1.34.2\")\n\nFor more information, try '--help'.\n",
    );
    assert_error(
        &run(&["check", "--pss-level", "strict", "examples/pod.yaml"]),
        "error: invalid value 'strict' for '--pss-level <PSS_LEVEL>': invalid Pod Security Standards level \"strict\": must be one of \"privileged\", \"baseline\", \"restricted\"\n\nFor more information, try '--help'.\n",
    );
}

#[test]
fn broken_policy_names_the_file_and_the_field_path() {
    let policy = fixture("bad-policy.yaml");
    assert_error(
        &run(&["check", "--policy", &policy, "examples/pod.yaml"]),
        &format!(
            "mcpguard check: policy {policy}: spec.mutate.containerSecurityContext.capabilities.dorp: unknown field\n"
        ),
    );
    assert_error(
        &run(&["mutate", "--policy", &policy, "examples/pod.yaml"]),
        &format!(
            "mcpguard mutate: policy {policy}: spec.mutate.containerSecurityContext.capabilities.dorp: unknown field\n"
        ),
    );
    assert_error(
        &run_with(
            &["check", "examples/pod.yaml"],
            None,
            &[("MCPGUARD_POLICY", &policy)],
        ),
        &format!(
            "mcpguard check: policy {policy}: spec.mutate.containerSecurityContext.capabilities.dorp: unknown field\n"
        ),
    );
}

#[test]
fn no_paths_is_a_usage_error() {
    assert_error(
        &run(&["check"]),
        "error: the following required arguments were not provided:\n  <PATHS>...\n\nUsage: mcpguard check <PATHS>...\n\nFor more information, try '--help'.\n",
    );
    assert_error(
        &run(&["mutate", "--patch"]),
        "error: the following required arguments were not provided:\n  <PATHS>...\n\nUsage: mcpguard mutate --patch <PATHS>...\n\nFor more information, try '--help'.\n",
    );
}

// ---------------------------------------------------------------------------------------
// mutate
// ---------------------------------------------------------------------------------------

#[test]
fn mutate_patch_prints_one_json_line_per_object() {
    let output = run(&["mutate", "--patch", "examples/pod.yaml"]);
    assert_eq!(stderr(&output), "");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout(&output).lines().count(), 1);
    assert_eq!(patch_lines(&output), vec![example_patch()]);

    // Skipped objects and compliant pods get an empty patch, in input order.
    let output = run(&[
        "mutate",
        "--patch",
        "examples/pod.yaml",
        &fixture("multi.yaml"),
    ]);
    // The diff is against the file: the defaulted imagePullPolicy of mcp/fetch:latest
    // (Always) is in it too.
    assert_eq!(
        patch_lines(&output),
        vec![example_patch(), example_patch(), json!([]), json!([])]
    );
}

#[test]
fn mutate_prints_the_hardened_objects_as_yaml() {
    let output = run(&["mutate", "examples/pod.yaml"]);
    assert_eq!(stderr(&output), "");
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert!(
        text.starts_with("---\napiVersion: v1\nkind: Pod\n"),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    for expected in [
        "  automountServiceAccountToken: false",
        "    imagePullPolicy: Always",
        "      allowPrivilegeEscalation: false",
        "        - ALL",
        "    - \"8080\"",
        "        memory: 400Mi",
        "      type: RuntimeDefault",
    ] {
        assert!(
            lines.contains(&expected),
            "missing {expected:?} in:\n{text}"
        );
    }

    // The YAML reads back, and is what the webhook would admit with nothing left to change.
    let back = run_with(
        &["check", "--no-mutate", "-o", "json", "-"],
        Some(&text),
        &[],
    );
    assert_eq!(stderr(&back), "");
    assert_eq!(back.status.code(), Some(0), "{}", stdout(&back));
    let reports = json_stdout(&back);
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["verdict"], "admitted");
    assert_eq!(reports[0]["name"], "github-mcp");
    let again = run_with(&["mutate", "--patch", "-"], Some(&text), &[]);
    assert_eq!(patch_lines(&again), vec![json!([])]);
}

#[test]
fn mutate_yaml_quotes_strings_that_yaml_1_1_would_retype() {
    let pod = r##"{"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "quoting", "namespace": "mcp",
                     "annotations": {"a": "yes", "b": "on", "c": "null", "d": "0755", "e": "1e3",
                                     "f": "~", "g": "", "h": "true", "i": "12:30", "n": "#x"}},
        "spec": {"containers": [{"name": "s", "image": "ghcr.io/x/y:1",
                                 "env": [{"name": "MAX_TOKENS", "value": "4096"}]}]}}"##;
    let output = run_with(&["mutate", "-"], Some(pod), &[]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    for expected in [
        r#"    a: "yes""#,
        r#"    b: "on""#,
        r#"    c: "null""#,
        r#"    d: "0755""#,
        r#"    e: "1e3""#,
        r#"    f: "~""#,
        r#"    g: """#,
        r#"    h: "true""#,
        r#"    i: "12:30""#,
        r##"    "n": "#x""##,
        r#"      value: "4096""#,
    ] {
        assert!(
            text.lines().any(|l| l == expected),
            "missing {expected:?} in:\n{text}"
        );
    }
}

#[test]
fn mutate_with_runtime_class_from_input_finishes_the_plugins_work() {
    let output = run(&[
        "mutate",
        "--patch",
        "--policy",
        &fixture("gvisor-policy.yaml"),
        &fixture("gvisor.yaml"),
    ]);
    assert_eq!(stderr(&output), "");
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        stdout(&output),
        concat!(
            "[]\n",
            r#"[{"op":"add","path":"/spec/automountServiceAccountToken","value":false},"#,
            r#"{"op":"add","path":"/spec/containers/0/imagePullPolicy","value":"Always"},"#,
            r#"{"op":"add","path":"/spec/containers/0/securityContext","value":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]},"runAsGroup":1000,"runAsNonRoot":true,"runAsUser":1000,"seccompProfile":{"type":"RuntimeDefault"}}},"#,
            r#"{"op":"add","path":"/spec/nodeSelector","value":{"sandbox.gke.io/runtime":"gvisor"}},"#,
            r#"{"op":"add","path":"/spec/overhead","value":{"cpu":"250m","memory":"120Mi"}},"#,
            r#"{"op":"add","path":"/spec/runtimeClassName","value":"gvisor"},"#,
            r#"{"op":"add","path":"/spec/securityContext","value":{"fsGroup":1000,"runAsGroup":1000,"runAsNonRoot":true,"runAsUser":1000,"seccompProfile":{"type":"RuntimeDefault"}}}]"#,
            "\n"
        )
    );
    // check agrees: the RuntimeClass is skipped, the pod admitted with requireRuntimeClass on.
    let path = fixture("gvisor.yaml");
    assert_output(
        &run(&["check", "--policy", &fixture("gvisor-policy.yaml"), &path]),
        0,
        &[
            &format!(
                "SKIPPED runtimeclass/gvisor (namespace mcp, {path}#1): kind RuntimeClass is not judged by mcpguard"
            ),
            &format!("ADMITTED pod/sandboxed-mcp (namespace mcp, {path}#2) after mutation"),
            BARE_POD_CHANGES[0],
            r#"  ~ add /spec/runtimeClassName = "gvisor": mutate.runtimeClassName"#,
            r#"  ~ add /spec/overhead = {"cpu":"250m","memory":"120Mi"}: the RuntimeClass's overhead and scheduling, as its admission plugin adds them"#,
            r#"  ~ add /spec/nodeSelector = {"sandbox.gke.io/runtime":"gvisor"}: the RuntimeClass's overhead and scheduling, as its admission plugin adds them"#,
            "  ~ add /spec/automountServiceAccountToken = false: mutate.automountServiceAccountToken: remove",
            BARE_POD_CHANGES[2],
            r#"  ~ replace /spec/containers/0/imagePullPolicy = "Always": mutate.imagePullPolicy: always"#,
        ],
    );
}

#[test]
fn runtime_class_node_selector_conflict_denies_the_pod() {
    let dir = tempfile::tempdir().expect("tempdir");
    let classes = std::fs::read_to_string(fixture_path("gvisor.yaml")).expect("fixture");
    let class = classes.split("---\n").next().expect("the RuntimeClass");
    let path = dir.path().join("conflict.yaml");
    std::fs::write(
        &path,
        format!(
            "{class}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: conflict, namespace: mcp}}\nspec:\n  nodeSelector: {{sandbox.gke.io/runtime: runc}}\n  containers: [{{name: s, image: \"ghcr.io/x/y:1\"}}]\n"
        ),
    )
    .expect("written");
    let path = path.display().to_string();
    assert_output(
        &run(&["check", "--policy", &fixture("gvisor-policy.yaml"), &path]),
        1,
        &[
            &format!(
                "SKIPPED runtimeclass/gvisor (namespace mcp, {path}#1): kind RuntimeClass is not judged by mcpguard"
            ),
            &format!(
                r#"DENIED pod/conflict (namespace mcp, {path}#2): pods "conflict" is forbidden: mcpguard policy "mcp-gvisor": RuntimeClass "gvisor" requires nodeSelector sandbox.gke.io/runtime="gvisor" but the pod sets sandbox.gke.io/runtime="runc""#
            ),
        ],
    );
}

fn fixture_path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(FIXTURES)
        .join(name)
}

// ---------------------------------------------------------------------------------------
// Regressions: bugs found by these tests, fixed since.
// ---------------------------------------------------------------------------------------

/// Input starting with `{` was parsed as JSON only, so a valid YAML flow mapping (which
/// `kubectl apply -f` accepts) was refused with "invalid JSON: key must be a string".
#[test]
fn a_flow_style_yaml_file_is_read_as_yaml_not_refused_as_json() {
    let path = fixture("flow-style.yaml");
    assert_output(
        &run(&["check", &path]),
        0,
        &refs(&with_bare_changes(&format!(
            "ADMITTED pod/flow-mcp (namespace mcp, {path}#1) after mutation"
        ))),
    );
}

/// Directories were walked through symlinks without cycle detection: a symlink to a parent
/// directory made the same manifest be reported 41 times (until ELOOP). Like `kubectl -R`,
/// symlinked directories are not followed.
#[test]
fn a_directory_symlink_cycle_is_not_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).expect("mkdir");
    std::fs::copy(fixture_path("compliant-pod.yaml"), sub.join("pod.yaml")).expect("copy");
    std::os::unix::fs::symlink("..", sub.join("up")).expect("symlink");
    let root = dir.path().display().to_string();
    let output = run(&["check", &root]);
    let lines = stdout(&output).lines().count();
    assert_eq!(
        (output.status.code(), lines),
        (Some(0), 1),
        "the first line: {}",
        stdout(&output).lines().next().unwrap_or("")
    );
}

// ---- the changes mutation makes, under each admitted object -------------------------------

const PULL_CHANGE: &str = "  ~ replace /spec/containers/0/imagePullPolicy = \"Always\": mutate.imagePullPolicy: alwaysExceptNever (the container does not say Never)";

#[test]
fn check_prints_one_line_per_change_with_its_reason() {
    let path = fixture("named-service-account-pod.yaml");
    // A pod of its own ServiceAccount keeps its token; `Never` is kept, `IfNotPresent`
    // (defaulted from the tag) becomes `Always`.
    assert_output(
        &run(&["check", &path]),
        0,
        &[
            &format!("ADMITTED pod/tool (namespace mcp, {path}#1) after mutation"),
            PULL_CHANGE,
        ],
    );
    let on_default = std::fs::read_to_string(&path).expect("fixture").replace(
        "serviceAccountName: mcp-reader",
        "serviceAccountName: default",
    );
    assert_output(
        &run_with(&["check", "-"], Some(&on_default), &[]),
        0,
        &[
            "ADMITTED pod/tool (namespace mcp, <stdin>#1) after mutation",
            "  ~ add /spec/automountServiceAccountToken = false: mutate.automountServiceAccountToken: keepForNamedServiceAccounts (the pod runs as the default ServiceAccount)",
            PULL_CHANGE,
        ],
    );
}

#[test]
fn check_prints_no_change_lines_without_mutation() {
    let path = fixture("named-service-account-pod.yaml");
    assert_output(
        &run(&["check", "--no-mutate", &path]),
        0,
        &[&format!("ADMITTED pod/tool (namespace mcp, {path}#1)")],
    );
}

#[test]
fn check_json_carries_the_changes_as_data() {
    let path = fixture("named-service-account-pod.yaml");
    let reports = json_stdout(&run(&["check", "-o", "json", &path]));
    assert_eq!(
        reports[0]["changes"],
        json!([{
            "op": "replace",
            "path": "/spec/containers/0/imagePullPolicy",
            "value": "Always",
            "reason": "mutate.imagePullPolicy: alwaysExceptNever (the container does not say Never)"
        }])
    );
}

#[test]
fn check_prints_the_changes_to_a_workloads_pods() {
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: tool, namespace: mcp}\nspec:\n  selector: {matchLabels: {app: tool}}\n  template:\n    metadata: {labels: {app: tool}}\n    spec:\n      serviceAccountName: mcp-reader\n      securityContext: {runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: {type: RuntimeDefault}}\n      containers:\n      - name: app\n        image: ghcr.io/acme/tool:1.2\n        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n        resources: {requests: {memory: 100Mi}}\n";
    assert_output(
        &run_with(&["check", "-"], Some(deployment), &[]),
        0,
        &[
            "ADMITTED deployment/tool (namespace mcp, <stdin>#1) after mutation",
            PULL_CHANGE,
        ],
    );
}

// ---------------------------------------------------------------------------------------
// check: the other kinds the webhook judges
// ---------------------------------------------------------------------------------------

/// `check` judges MCPServers, MCPPolicies and NetworkPolicies with the webhook's own
/// validators (through the same front door), instead of skipping them; offline it says
/// which Secret references only the webhook can verify.
#[test]
fn check_judges_mcpservers_mcppolicies_and_networkpolicies_as_the_webhook_does() {
    let stream = "\
apiVersion: mcpguard.dev/v1alpha1
kind: MCPServer
metadata: {name: github, namespace: mcp}
spec:
  image: ghcr.io/github/github-mcp-server:v0.20.0
  secretEnv: [{name: TOKEN, secretKeyRef: {name: github, key: token}}]
---
apiVersion: mcpguard.dev/v1alpha1
kind: MCPServer
metadata: {name: broken, namespace: mcp}
spec: {image: ghcr.io/acme/mcp:1.0, transport: stdio}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: open-metadata, namespace: mcp}
spec:
  podSelector: {}
  egress: [{to: [{ipBlock: {cidr: 169.254.169.254/32}}]}]
---
apiVersion: mcpguard.dev/v1alpha1
kind: MCPPolicy
metadata: {name: team}
spec:
  namespaces: [team-a]
  podSecurity: {level: restricted, version: latest}
  exceptions:
    - {name: browsers, reason: SEC-1, match: {names: [playwright-*]}, checks: [privileged]}
";
    let output = run_with_stdin(mcpguard_command(&["check", "-"]), Some(stream));
    assert_output(
        &output,
        1,
        &[
            "ADMITTED mcpserver/github (namespace mcp, <stdin>#1)",
            "  ? not verified offline: the webhook will ask whether the author may get Secret \"github\" in namespace \"mcp\"",
            "DENIED mcpserver/broken (namespace mcp, <stdin>#2): 1 violation(s)",
            "  - mcpServerSpec: invalid MCPServer (an image with transport stdio runs behind mcpguard's bridge, which needs the policy's spec.mutate.bridgeImage (mcpguard's image, pinned by digest))",
            "DENIED networkpolicy/open-metadata (namespace mcp, <stdin>#3): 1 violation(s)",
            "  - networkPolicyPeers: NetworkPolicies are additive (egress[0] peer {\"ipBlock\":{\"cidr\":\"169.254.169.254/32\"}} is not allowed; only mcpguard's own NetworkPolicies and peers in spec.network.allowedExtraPeers are admitted)",
            "ADMITTED mcppolicy/team (namespace mcp, <stdin>#4)",
        ],
    );
    // The MCPPolicy's exception that trusts the pod's author is reported as the webhook
    // warns `kubectl apply` about it.
    let json_output = run_with_stdin(
        mcpguard_command(&["check", "-o", "json", "-"]),
        Some(stream),
    );
    let reports: Value = serde_json::from_slice(&json_output.stdout).expect("JSON");
    assert_eq!(
        reports[3]["warnings"],
        json!([
            "mcpguard: exception \"browsers\" waives Pod Security check privileged on author-chosen fields only (match.names): any pod author in its namespaces can match it; add match.users/groups or pin match.images by digest"
        ])
    );
}
