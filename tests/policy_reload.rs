//! Policy hot reload under a running server: a valid change is picked up, an invalid one
//! is refused while the previous policy keeps serving, and no request fails during swaps.
//! The policy file sits behind kubelet's ConfigMap layout (`..data` symlink swap).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{TestServer, example_review_with_uid, metric_value};
use mcpguard::cluster::policy_reload;
use mcpguard_core::policy::Policy;

const BOUND: Duration = Duration::from_secs(10);

fn policy_with_registries(registries: &str) -> String {
    include_str!("../policies/mcp-restricted.yaml").replace(
        "allowedRegistries: []         # e.g. [\"ghcr.io\", \"docker.io/mcp\"]; empty = any registry",
        &format!("allowedRegistries: {registries}"),
    )
}

/// Lays out `dir` the way kubelet mounts a ConfigMap and returns the file's stable path.
fn publish(dir: &Path, generation: u32, text: &str) -> PathBuf {
    let version = dir.join(format!("..2026_11_22_00_00_00.{generation:04}"));
    std::fs::create_dir(&version).expect("version dir");
    std::fs::write(version.join("policy.yaml"), text).expect("write policy");
    let staged = dir.join("..data_tmp");
    std::os::unix::fs::symlink(version.file_name().expect("name"), &staged).expect("symlink");
    std::fs::rename(&staged, dir.join("..data")).expect("atomic swap");
    let stable = dir.join("policy.yaml");
    if std::fs::symlink_metadata(&stable).is_err() {
        std::os::unix::fs::symlink("..data/policy.yaml", &stable).expect("stable link");
    }
    stable
}

async fn wait_for(mut condition: impl AsyncFnMut() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + BOUND;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_valid_change_is_picked_up_and_an_invalid_one_refused_with_no_failed_request() {
    let original = policy_with_registries("[ghcr.io]");
    let policy = mcpguard_core::policy::parse_str(&original, "policy.yaml").expect("policy");
    let server = Arc::new(TestServer::start(policy).await);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = publish(dir.path(), 1, &original);
    tokio::spawn(policy_reload::watch(
        server.state.policies.clone(),
        server.state.metrics.clone(),
        path.clone(),
        Duration::from_millis(50),
        Some(original.clone()),
    ));

    // Continuous load for the whole test: every review must get a 200 and a decision.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let load = {
        let (server, stop, answered) = (server.clone(), stop.clone(), answered.clone());
        tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut sequence = 0;
            while !stop.load(Ordering::Relaxed) {
                sequence += 1;
                let uid = format!("load-{sequence}");
                let reply = server
                    .post_json("/validate", &example_review_with_uid(&uid))
                    .await;
                if reply.status == 200 && reply.json["response"]["uid"] == uid.as_str() {
                    answered.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.push(format!("{uid}: {} {}", reply.status, reply.text));
                }
            }
            failures
        })
    };

    // The example image is ghcr.io/...: admitted registry-wise under [ghcr.io].
    let registries_violated = |server: Arc<TestServer>| async move {
        let response = server
            .review("/validate", &example_review_with_uid("probe"))
            .await;
        response["auditAnnotations"]["violations"]
            .as_str()
            .unwrap_or("")
            .split(',')
            .any(|check| check == "allowedRegistries")
    };
    assert!(!registries_violated(server.clone()).await);

    publish(dir.path(), 2, &policy_with_registries("[docker.io/mcp]"));
    wait_for(
        async || registries_violated(server.clone()).await,
        "the new policy",
    )
    .await;
    let text = server.metrics_text().await;
    assert_eq!(
        metric_value(&text, r#"mcpguard_policy_reloads_total{result="success"}"#),
        Some(1.0)
    );

    // A broken policy (unknown field) is refused: the previous one keeps serving.
    publish(
        dir.path(),
        3,
        &policy_with_registries("[docker.io/mcp]\n    requireRuntimeClas: true"),
    );
    wait_for(
        async || {
            let text = server.metrics_text().await;
            metric_value(&text, r#"mcpguard_policy_reloads_total{result="failure"}"#) == Some(1.0)
        },
        "the refusal to be counted",
    )
    .await;
    assert!(
        registries_violated(server.clone()).await,
        "the previous policy still serves"
    );
    assert_eq!(
        server.readyz().await.0,
        200,
        "readiness is unaffected by a refused policy"
    );

    // Back to the original: picked up again.
    publish(dir.path(), 4, &original);
    wait_for(
        async || !registries_violated(server.clone()).await,
        "the original policy",
    )
    .await;

    stop.store(true, Ordering::Relaxed);
    let failures = load.await.expect("load task");
    assert!(
        failures.is_empty(),
        "failed requests during reloads: {failures:?}"
    );
    assert!(answered.load(Ordering::Relaxed) > 0, "the load ran");
}

#[test]
fn reload_once_reports_each_outcome() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let server = TestServer::start(Policy::embedded_default().expect("default")).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("policy.yaml");
        let mut last_seen = None;
        assert!(matches!(
            policy_reload::reload_once(&server.state.policies, &path, &mut last_seen),
            policy_reload::ReloadResult::Unreadable(_)
        ));
        let text = policy_with_registries("[ghcr.io]");
        std::fs::write(&path, &text).expect("write");
        assert_eq!(
            policy_reload::reload_once(&server.state.policies, &path, &mut last_seen),
            policy_reload::ReloadResult::Reloaded
        );
        assert_eq!(
            server
                .state
                .policies
                .load()
                .fallback()
                .spec
                .validate
                .allowed_registries,
            vec!["ghcr.io".to_owned()]
        );
        assert_eq!(
            policy_reload::reload_once(&server.state.policies, &path, &mut last_seen),
            policy_reload::ReloadResult::Unchanged
        );
        std::fs::write(
            &path,
            "apiVersion: mcpguard.dev/v1alpha1\nkind: MCPPolicy\n",
        )
        .expect("write");
        assert_eq!(
            policy_reload::reload_once(&server.state.policies, &path, &mut last_seen),
            policy_reload::ReloadResult::Refused(format!(
                "policy {}: missing field `metadata`",
                path.display()
            ))
        );
        assert_eq!(
            server
                .state
                .policies
                .load()
                .fallback()
                .spec
                .validate
                .allowed_registries,
            vec!["ghcr.io".to_owned()],
            "the refused policy did not replace the good one"
        );
    });
}
