use serde_json::{Value, json};

use super::*;
use crate::policy::{Policy, parse_str};
use crate::runtime_class::StaticRuntimeClasses;

fn req(group: &str, resource: &str, kind: &str, object: Value) -> AdmissionRequest {
    serde_json::from_value(json!({
        "uid": "u", "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": resource},
        "name": "web", "namespace": "mcp", "operation": "CREATE",
        "userInfo": {"username": "alice", "groups": ["dev"]}, "object": object
    }))
    .unwrap()
}

#[test]
fn probe() {
    let policy = Policy::embedded_default().unwrap();
    let classes = StaticRuntimeClasses::default();
    let ctx = Context {
        policy: &policy,
        runtime_classes: &classes,
        now: time::OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap(),
    };
    let tpl = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "ghcr.io/x/app:1"}]}});
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 1, "template": tpl}});
    println!(
        "{:#?}",
        validate(&req("apps", "deployments", "Deployment", d.clone()), ctx)
    );
    let mut bad = d.clone();
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"] =
        json!({"privileged": true});
    println!(
        "{:#?}",
        validate(&req("apps", "deployments", "Deployment", bad.clone()), ctx)
    );
    let mut bad2 = d.clone();
    bad2["spec"]["template"]["spec"]["hostNetwork"] = json!(true);
    println!(
        "{:#?}",
        validate(&req("apps", "deployments", "Deployment", bad2.clone()), ctx)
    );
    let mut caps = d.clone();
    caps["spec"]["template"]["spec"]["containers"] = json!([{"name": "browser", "image": "mcr.microsoft.com/playwright:v1.49.0-noble", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}, {"name": "app", "image": "ghcr.io/x/app:1", "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}]);
    println!(
        "{:#?}",
        validate(&req("apps", "deployments", "Deployment", caps.clone()), ctx)
    );
}
