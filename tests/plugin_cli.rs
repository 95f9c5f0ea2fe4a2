//! `kubectl mcpguard audit` takes the cluster-selection flags kubectl users type:
//! `--kubeconfig`, `--context`, `-n` and `-A`/`--all-namespaces`. The real binary runs against
//! a plain-HTTP mock API server named by a kubeconfig, and the test checks which cluster and
//! which URLs it asked.

mod cli_support;

use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use cli_support::{mcpguard_command, stderr, stdout, without_kubernetes};
use pretty_assertions::assert_eq;
use serde_json::json;

const EVENTS_ALL: &str = "/apis/events.k8s.io/v1/events?fieldSelector=reason%3DPolicyViolation";
const REPORTS_ALL: &str = "/apis/wgpolicyk8s.io/v1alpha2/policyreports?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dmcpguard";
const EVENTS_MCP: &str =
    "/apis/events.k8s.io/v1/namespaces/mcp/events?fieldSelector=reason%3DPolicyViolation";
const REPORTS_MCP: &str = "/apis/wgpolicyk8s.io/v1alpha2/namespaces/mcp/policyreports?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dmcpguard";

type Seen = Arc<Mutex<Vec<String>>>;

/// Answers every list with an empty one of the right kind, recording each request.
async fn empty_lists(State(seen): State<Seen>, request: Request) -> Response {
    // kube writes `?&` before the first parameter of a list; the same request either way.
    let uri = request.uri().to_string().replacen("?&", "?", 1);
    seen.lock().expect("lock").push(uri.clone());
    let (api_version, kind) = if uri.contains("/policyreports") {
        ("wgpolicyk8s.io/v1alpha2", "PolicyReportList")
    } else {
        ("events.k8s.io/v1", "EventList")
    };
    axum::Json(json!({
        "apiVersion": api_version, "kind": kind,
        "metadata": {"resourceVersion": "1"}, "items": [],
    }))
    .into_response()
}

async fn start_mock() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .fallback(empty_lists)
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

/// A kubeconfig with two contexts: `mock` (the mock server) and `nowhere` (a closed port),
/// the current one, so only an honoured `--context mock` reaches the mock.
fn write_kubeconfig(dir: &Path, mock: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: nowhere\n\
             clusters:\n\
             - {{name: mock, cluster: {{server: '{mock}'}}}}\n\
             - {{name: nowhere, cluster: {{server: 'http://127.0.0.1:1'}}}}\n\
             users: [{{name: me, user: {{token: not-a-secret}}}}]\n\
             contexts:\n\
             - {{name: mock, context: {{cluster: mock, user: me}}}}\n\
             - {{name: nowhere, context: {{cluster: nowhere, user: me}}}}\n"
        ),
    )
    .expect("kubeconfig");
    path
}

/// Runs the binary off the async runtime, with `env` and no caller Kubernetes settings.
async fn audit(args: &[&str], env: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().expect("home");
    let mut command = mcpguard_command(&["audit"]);
    command.args(args);
    without_kubernetes(&mut command)
        .env("HOME", home.path())
        .envs(env.iter().copied());
    tokio::task::spawn_blocking(move || command.output().expect("mcpguard runs"))
        .await
        .expect("join")
}

const NOTHING: &str = "{\"denials\":[],\"violations\":[]}";

fn assert_nothing_found(output: &Output) {
    assert_eq!(stderr(output), "");
    assert_eq!(output.status.code(), Some(0));
    let printed: serde_json::Value = serde_json::from_str(&stdout(output)).expect("JSON");
    assert_eq!(
        printed,
        serde_json::from_str::<serde_json::Value>(NOTHING).expect("JSON")
    );
}

#[tokio::test]
async fn kubeconfig_and_context_flags_pick_the_cluster_and_a_all_namespaces() {
    let dir = tempfile::tempdir().expect("dir");
    let (mock, seen) = start_mock().await;
    let kubeconfig = write_kubeconfig(dir.path(), &mock);
    let kubeconfig = kubeconfig.to_str().expect("UTF-8");

    for all in ["-A", "--all-namespaces"] {
        let output = audit(
            &[
                "--kubeconfig",
                kubeconfig,
                "--context",
                "mock",
                all,
                "-o",
                "json",
            ],
            &[],
        )
        .await;
        assert_nothing_found(&output);
        assert_eq!(
            std::mem::take(&mut *seen.lock().expect("lock")),
            [EVENTS_ALL, REPORTS_ALL],
            "{all}"
        );
    }
}

#[tokio::test]
async fn context_applies_to_the_kubeconfig_env_and_n_scopes_the_namespace() {
    let dir = tempfile::tempdir().expect("dir");
    let (mock, seen) = start_mock().await;
    let kubeconfig = write_kubeconfig(dir.path(), &mock);
    let output = audit(
        &["--context", "mock", "-n", "mcp", "-o", "json"],
        &[("KUBECONFIG", kubeconfig.to_str().expect("UTF-8"))],
    )
    .await;
    assert_nothing_found(&output);
    assert_eq!(*seen.lock().expect("lock"), [EVENTS_MCP, REPORTS_MCP]);
}

#[tokio::test]
async fn an_unknown_context_and_a_missing_kubeconfig_are_clear_errors() {
    let dir = tempfile::tempdir().expect("dir");
    let (mock, seen) = start_mock().await;
    let kubeconfig = write_kubeconfig(dir.path(), &mock);
    let kubeconfig = kubeconfig.to_str().expect("UTF-8");

    let unknown = audit(&["--kubeconfig", kubeconfig, "--context", "prod"], &[]).await;
    assert_eq!(unknown.status.code(), Some(2));
    assert_eq!(stdout(&unknown), "");
    assert_eq!(
        stderr(&unknown),
        format!("mcpguard audit: kubeconfig {kubeconfig}: failed to load current context: prod\n")
    );

    let missing = dir.path().join("absent");
    let missing = missing.to_str().expect("UTF-8");
    let absent = audit(&["--kubeconfig", missing], &[]).await;
    assert_eq!(absent.status.code(), Some(2));
    assert_eq!(
        stderr(&absent),
        format!(
            "mcpguard audit: cannot read kubeconfig {missing}: No such file or directory (os error 2)\n"
        )
    );
    assert_eq!(*seen.lock().expect("lock"), Vec::<String>::new());
}

#[tokio::test]
async fn all_namespaces_and_a_namespace_together_are_refused() {
    let output = audit(&["-A", "-n", "mcp"], &[]).await;
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output).lines().next(),
        Some(
            "error: the argument '--all-namespaces' cannot be used with '--namespace <NAMESPACE>'"
        )
    );
}
