//! The `--apply-policy` plan: each Deployment once, failing templates held back, pods that
//! cannot be rolled named with why, and the patch `kubectl rollout restart` sends.

use jiff::Timestamp;
use serde_json::json;

use super::*;

fn violation(namespace: &str, object: &str, check: &str) -> CurrentViolation {
    CurrentViolation {
        namespace: namespace.into(),
        object: object.into(),
        check: check.into(),
        message: String::new(),
    }
}

fn pod(namespace: &str, name: &str) -> PodRef {
    PodRef {
        namespace: namespace.into(),
        name: name.into(),
    }
}

#[test]
fn plan_dedupes_deployments_and_holds_back_failing_templates() {
    let owners = vec![
        (pod("mcp", "web-2"), PodOwner::Deployment("web".into())),
        (pod("mcp", "web-1"), PodOwner::Deployment("web".into())),
        (pod("mcp", "api-1"), PodOwner::Deployment("api".into())),
        (
            pod("tools", "db-0"),
            PodOwner::Other("controller: StatefulSet/db".into()),
        ),
        (pod("tools", "web-1"), PodOwner::Deployment("web".into())),
    ];
    let violations = vec![
        violation("mcp", "Pod/api-1", "runAsNonRoot"),
        violation("mcp", "Deployment/api", "allowedRegistries"),
    ];
    let plan = plan(&owners, &violations);
    assert_eq!(
        render_plan(&plan),
        "will restart deployment mcp/web (pods: web-1, web-2)\n\
         will restart deployment tools/web (pods: web-1)\n\
         will not restart deployment mcp/api (pods: api-1): its pod template fails today's policy (allowedRegistries); fix the Deployment first\n\
         cannot roll pod tools/db-0: not owned by a Deployment (controller: StatefulSet/db)\n"
    );
}

#[test]
fn plan_with_nothing_to_restart_says_so() {
    assert_eq!(
        render_plan(&plan(&[], &[])),
        "No running pod fails today's policy: nothing to restart.\n"
    );
    let owners = vec![(pod("mcp", "debug"), PodOwner::Other("no controller".into()))];
    assert_eq!(
        render_plan(&plan(&owners, &[])),
        "cannot roll pod mcp/debug: not owned by a Deployment (no controller)\nNothing to restart.\n"
    );
}

#[test]
fn restart_patch_is_what_kubectl_rollout_restart_sends() {
    let now = Timestamp::from_second(1_750_000_000).expect("time");
    assert_eq!(
        restart_patch(now),
        json!({"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2025-06-15T15:06:40Z"
        }}}}})
    );
}
