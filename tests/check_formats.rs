//! `check -o yaml|sarif|junit`, `mutate -o json` and `render -o json`: the exact output of
//! each format, SARIF validated against the official SARIF 2.1.0 schema (vendored from
//! SchemaStore, which serves OASIS's `sarif-schema-2.1.0.json`) by Python's `jsonschema`.

mod cli_support;
#[path = "common/external_tools.rs"]
mod external_tools;

use std::process::Command;

use cli_support::{mcpguard_command, run, run_with_stdin, stderr, stdout};
use external_tools::{python_jsonschema_available, stdout_of};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/sarif/sarif-schema-2.1.0.json"
);

/// A privileged pod from a Helm chart, a pod in a namespace no policy covers, and a broken
/// document: a denial, a skip and an error.
const STREAM: &str = "# Source: mcp/templates/pod.yaml
apiVersion: v1
kind: Pod
metadata: {name: root, namespace: mcp}
spec:
  containers: [{name: c, image: nginx, securityContext: {privileged: true}}]
---
apiVersion: v1
kind: Pod
metadata: {name: ok, namespace: elsewhere}
spec:
  containers: [{name: c, image: nginx}]
---
kind: [broken
";

fn write_stream(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("stream.yaml");
    std::fs::write(&path, STREAM).expect("write");
    path.display().to_string()
}

fn check(format: &str, path: &str) -> std::process::Output {
    run(&["check", "--no-mutate", "-o", format, path])
}

fn piped(args: &[&str], stdin: &str) -> std::process::Output {
    run_with_stdin(mcpguard_command(args), Some(stdin))
}

#[test]
fn sarif_names_each_violation_at_its_template_or_file_and_validates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_stream(&dir);
    let output = check("sarif", &path);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let log: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let results = log["runs"][0]["results"].as_array().expect("results");
    let summary: Vec<(String, String)> = results
        .iter()
        .map(|r| {
            (
                r["ruleId"].as_str().unwrap_or("").to_owned(),
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect();
    let template = "mcp/templates/pod.yaml".to_owned();
    assert_eq!(
        summary,
        [
            ("privileged".to_owned(), template.clone()),
            ("allowPrivilegeEscalation".to_owned(), template.clone()),
            ("capabilities_restricted".to_owned(), template.clone()),
            ("runAsNonRoot".to_owned(), template.clone()),
            ("seccompProfile_restricted".to_owned(), template),
            ("input-error".to_owned(), path.clone()),
        ]
    );
    assert_eq!(
        results[0]["message"]["text"],
        "pod/root: privileged (container \"c\" must not set securityContext.privileged=true)"
    );
    // The stream's lines are not the template's: no region, no related fields.
    assert_eq!(
        results[0]["locations"],
        json!([{"physicalLocation": {"artifactLocation": {"uri": "mcp/templates/pod.yaml"}}}])
    );
    assert_eq!(results[0].get("relatedLocations"), None);
    assert_eq!(
        log["runs"][0]["tool"]["driver"]["rules"][0],
        json!({"id": "privileged", "shortDescription": {"text": "mcpguard check privileged"}})
    );
    assert_eq!(log["version"], "2.1.0");
    validate_sarif(&output.stdout);
}

#[test]
fn sarif_gives_the_line_and_column_of_the_offending_field_in_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pods.yaml");
    std::fs::write(
        &path,
        "---\n# a comment\napiVersion: v1\nkind: Pod\nmetadata: {name: root, namespace: mcp}\nspec:\n  hostNetwork: true\n  containers: [{name: c, image: nginx}]\n",
    )
    .expect("write");
    let output = check("sarif", &path.display().to_string());
    assert_eq!(output.status.code(), Some(1));
    let log: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let location = &log["runs"][0]["results"][0]["locations"][0];
    assert_eq!(
        *location,
        json!({"physicalLocation": {"artifactLocation": {"uri": path.display().to_string()},
                                    "region": {"startLine": 7, "startColumn": 3}},
               "message": {"text": "spec.hostNetwork"}})
    );
    validate_sarif(&output.stdout);
}

/// A ConfigMap, then a Deployment whose second container is privileged, uses two host ports,
/// and sets neither runAsNonRoot nor allowPrivilegeEscalation (in a securityContext it has).
const TWO_DOCUMENTS: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: mcp
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: mcp
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      securityContext:
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: ok
          image: ghcr.io/x/ok:1
          securityContext:
            runAsNonRoot: true
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
        - name: bad
          image: ghcr.io/x/bad:1
          securityContext:
            privileged: true
            capabilities: {drop: [ALL]}
          ports:
            - {containerPort: 80, hostPort: 80}
            - {containerPort: 81, hostPort: 81}
";

const BAD: &str = "spec.template.spec.containers[1]";

fn write_two_documents(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("two.yaml");
    std::fs::write(&path, TWO_DOCUMENTS).expect("write");
    path.display().to_string()
}

#[test]
fn text_shows_each_offending_field_at_its_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_two_documents(&dir);
    let output = check("text", &path);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    // A missing field is shown at its deepest ancestor that is written: the securityContext.
    assert_eq!(
        stdout(&output),
        format!(
            "SKIPPED configmap/settings (namespace mcp, {path}#1): kind ConfigMap is not judged by mcpguard
DENIED deployment/web (namespace mcp, {path}#2): 4 violation(s)
  - hostPorts: hostPort (container \"bad\" uses hostPorts 80, 81)
    at {path}:34:35 {BAD}.ports[0].hostPort
    at {path}:35:35 {BAD}.ports[1].hostPort
  - privileged: privileged (container \"bad\" must not set securityContext.privileged=true)
    at {path}:31:13 {BAD}.securityContext.privileged
  - allowPrivilegeEscalation: allowPrivilegeEscalation != false (container \"bad\" must set securityContext.allowPrivilegeEscalation=false)
    at {path}:30:11 {BAD}.securityContext.allowPrivilegeEscalation
  - runAsNonRoot: runAsNonRoot != true (pod or container \"bad\" must set securityContext.runAsNonRoot=true)
    at {path}:30:11 {BAD}.securityContext.runAsNonRoot
"
        )
    );
}

#[test]
fn json_and_yaml_give_each_violation_its_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_two_documents(&dir);
    let json = check("json", &path);
    let reports: Value = serde_json::from_slice(&json.stdout).expect("JSON");
    let fields: Vec<Value> = reports[1]["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| v["fields"].clone())
        .collect();
    let field = |path: String, line: usize, column: usize| json!({"path": path, "line": line, "column": column});
    assert_eq!(
        fields,
        [
            json!([
                field(format!("{BAD}.ports[0].hostPort"), 34, 35),
                field(format!("{BAD}.ports[1].hostPort"), 35, 35)
            ]),
            json!([field(format!("{BAD}.securityContext.privileged"), 31, 13)]),
            json!([field(
                format!("{BAD}.securityContext.allowPrivilegeEscalation"),
                30,
                11
            )]),
            json!([field(format!("{BAD}.securityContext.runAsNonRoot"), 30, 11)]),
        ]
    );
    assert_eq!(reports[1]["line"], 7);
    let yaml = check("yaml", &path);
    let from_yaml: Value = serde_saphyr::from_slice(&yaml.stdout).expect("YAML");
    assert_eq!(from_yaml, reports);
}

#[test]
fn sarif_points_each_result_at_its_first_field_and_relates_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_two_documents(&dir);
    let output = check("sarif", &path);
    assert_eq!(output.status.code(), Some(1));
    let log: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let results = log["runs"][0]["results"].as_array().expect("results");
    let at = |line: usize, column: usize, field: &str| {
        json!({"physicalLocation": {"artifactLocation": {"uri": path},
                                    "region": {"startLine": line, "startColumn": column}},
               "message": {"text": format!("{BAD}.{field}")}})
    };
    assert_eq!(results[0]["ruleId"], "hostPorts");
    assert_eq!(
        results[0]["locations"],
        json!([at(34, 35, "ports[0].hostPort")])
    );
    let mut related = at(35, 35, "ports[1].hostPort");
    related["id"] = json!(0);
    assert_eq!(results[0]["relatedLocations"], json!([related]));
    assert_eq!(results[1]["ruleId"], "privileged");
    assert_eq!(
        results[1]["locations"],
        json!([at(31, 13, "securityContext.privileged")])
    );
    assert_eq!(results[1].get("relatedLocations"), None);
    assert_eq!(
        results[3]["locations"],
        json!([at(30, 11, "securityContext.runAsNonRoot")])
    );
    validate_sarif(&output.stdout);
}

#[test]
fn junit_names_the_first_offending_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_two_documents(&dir);
    let junit = stdout(&check("junit", &path));
    assert!(
        junit.contains(&format!(
            "<failure message=\"4 violation(s), the first at {path}:34:35\" type=\"denied\">"
        )),
        "{junit}"
    );
    assert!(
        junit.contains(&format!(
            "privileged: privileged (container &quot;bad&quot; must not set securityContext.privileged=true)\n  at {path}:31:13 {BAD}.securityContext.privileged\n"
        )),
        "{junit}"
    );
}

#[test]
fn json_input_keeps_the_object_level_location() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pod.json");
    std::fs::write(
        &path,
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root", "namespace": "mcp"},
            "spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "nginx"}]}}"#,
    )
    .expect("write");
    let path = path.display().to_string();
    let reports: Value = serde_json::from_slice(&check("json", &path).stdout).expect("JSON");
    let violations = reports[0]["violations"].as_array().expect("violations");
    assert!(!violations.is_empty());
    assert!(
        violations.iter().all(|v| v.get("fields").is_none()),
        "{reports}"
    );
    let output = check("sarif", &path);
    let log: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        log["runs"][0]["results"][0]["locations"],
        json!([{"physicalLocation": {"artifactLocation": {"uri": path}}}])
    );
    validate_sarif(&output.stdout);
    let text = stdout(&check("text", &path));
    assert!(!text.contains("    at "), "{text}");
}

#[test]
fn sarif_of_an_admitted_stream_has_no_results_and_validates() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: ok, namespace: elsewhere}\nspec:\n  containers: [{name: c, image: nginx}]\n";
    let output = piped(&["check", "-o", "sarif", "-"], pod);
    assert_eq!(output.status.code(), Some(0));
    let log: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(log["runs"][0]["results"], json!([]));
    validate_sarif(&output.stdout);
}

fn validate_sarif(sarif: &[u8]) {
    if !python_jsonschema_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out.sarif");
    std::fs::write(&path, sarif).expect("write");
    let script = "import json,sys,jsonschema\n\
        schema=json.load(open(sys.argv[1])); log=json.load(open(sys.argv[2]))\n\
        v=jsonschema.validators.validator_for(schema)(schema)\n\
        errors=[f'{list(e.path)}: {e.message}' for e in v.iter_errors(log)]\n\
        missing=[i for i,r in enumerate(log['runs'][0]['results']) if not r.get('locations')]\n\
        print(json.dumps({'errors': errors, 'without_location': missing}))\n";
    let out = stdout_of(
        Command::new("python3")
            .args(["-c", script, SCHEMA])
            .arg(&path),
    );
    let verdict: Value = serde_json::from_slice(&out).expect("the validator's JSON");
    assert_eq!(verdict, json!({"errors": [], "without_location": []}));
}

#[test]
fn the_validator_refuses_a_result_the_schema_forbids() {
    // The judge can fail: a level SARIF does not define.
    if !python_jsonschema_available() {
        return;
    }
    let bad = json!({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}},
        "results": [{"message": {"text": "t"}, "level": "fatal"}]}]});
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.sarif");
    std::fs::write(&path, bad.to_string()).expect("write");
    let script = "import json,sys,jsonschema\n\
        schema=json.load(open(sys.argv[1])); log=json.load(open(sys.argv[2]))\n\
        v=jsonschema.validators.validator_for(schema)(schema)\n\
        print(len(list(v.iter_errors(log))))\n";
    let out = stdout_of(
        Command::new("python3")
            .args(["-c", script, SCHEMA])
            .arg(&path),
    );
    assert_ne!(String::from_utf8_lossy(&out).trim(), "0");
}

#[test]
fn junit_has_one_test_case_per_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_stream(&dir);
    let output = check("junit", &path);
    assert_eq!(output.status.code(), Some(2));
    let expected = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="mcpguard check" tests="3" failures="1" errors="1" skipped="1">
  <testsuite name="mcpguard check" tests="3" failures="1" errors="1" skipped="1">
    <testcase classname="mcp/templates/pod.yaml" name="pod/root (namespace mcp, document 1)">
      <failure message="5 violation(s)" type="denied">privileged: privileged (container &quot;c&quot; must not set securityContext.privileged=true)
allowPrivilegeEscalation: allowPrivilegeEscalation != false (container &quot;c&quot; must set securityContext.allowPrivilegeEscalation=false)
capabilities_restricted: unrestricted capabilities (container &quot;c&quot; must set securityContext.capabilities.drop=[&quot;ALL&quot;])
runAsNonRoot: runAsNonRoot != true (pod or container &quot;c&quot; must set securityContext.runAsNonRoot=true)
seccompProfile_restricted: seccompProfile (pod or container &quot;c&quot; must set securityContext.seccompProfile.type to &quot;RuntimeDefault&quot; or &quot;Localhost&quot;)
</failure>
    </testcase>
    <testcase classname="{path}" name="pod/ok (namespace elsewhere, document 2)">
      <skipped message="namespace &quot;elsewhere&quot; is not enforced by policy &quot;mcp-restricted&quot;"/>
    </testcase>
    <testcase classname="{path}" name="document 3">
      <error message="invalid YAML: unclosed bracket &apos;[&apos; at line 14, column 7" type="input-error"/>
    </testcase>
  </testsuite>
</testsuites>
"#
    );
    assert_eq!(stdout(&output), expected);
}

#[test]
fn yaml_carries_the_json_reports_with_their_origin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_stream(&dir);
    let yaml = check("yaml", &path);
    let json = check("json", &path);
    assert_eq!(yaml.status.code(), Some(2));
    let from_yaml: Value = serde_saphyr::from_slice(&yaml.stdout).expect("YAML");
    let from_json: Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(from_yaml, from_json);
    assert_eq!(from_json[0]["line"], 2);
    assert_eq!(from_json[0]["template"], "mcp/templates/pod.yaml");
    assert_eq!(from_json[1]["line"], 8);
    assert_eq!(from_json[1].get("template"), None);
    assert_eq!(from_json[2]["verdict"], "error");
}

#[test]
fn mutate_and_render_print_a_json_list_with_o_json() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: elsewhere}\nspec:\n  containers: [{name: c, image: nginx}]\n";
    let output = piped(&["mutate", "-o", "json", "-"], pod);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let list: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(list["kind"], "List");
    assert_eq!(list["apiVersion"], "v1");
    assert_eq!(list["items"][0]["metadata"]["name"], "p");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));

    let server = "apiVersion: mcpguard.dev/v1alpha1\nkind: MCPServer\nmetadata: {name: s, namespace: mcp}\nspec:\n  image: ghcr.io/example/server:1.0\n  port: 8080\n";
    let output = piped(&["render", "-o", "json", "-"], server);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let list: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let kinds: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|o| o["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["Deployment", "Service", "NetworkPolicy"]);
    let yaml = piped(&["render", "-"], server);
    let documents: Vec<Value> = serde_saphyr::from_multiple(&stdout(&yaml)).expect("YAML");
    assert_eq!(
        documents,
        list["items"].as_array().cloned().unwrap_or_default()
    );
}
