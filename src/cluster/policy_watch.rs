//! `MCPPolicy` objects against the API: every replica watches them and swaps its policies
//! when they change; the leader writes each object's status and keeps the webhook
//! configurations' `namespaceSelector` equal to the namespaces the policies cover.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

use crate::cluster::leader::{Cadence, run_while_leading};
use crate::policy_store::PolicyStore;
use crate::readiness::Readiness;
use mcpguard_core::policy::{API_VERSION, KIND, MCPPolicy};
use mcpguard_core::policy_set::{self, PolicySet};

/// How often the leader re-checks statuses and selectors with no change seen.
pub const LEADER_RESYNC: Duration = Duration::from_secs(60);

pub fn api_resource() -> ApiResource {
    ApiResource::erase::<MCPPolicy>(&())
}

fn api(client: Client) -> Api<DynamicObject> {
    Api::all_with(client, &api_resource())
}

/// An object as the loader reads it. List items may come without `apiVersion`/`kind`; the
/// watch is of MCPPolicies, so they are filled in.
fn to_value(object: DynamicObject) -> Option<Value> {
    let mut value = serde_json::to_value(object).ok()?;
    let map = value.as_object_mut()?;
    map.entry("apiVersion")
        .or_insert_with(|| Value::from(API_VERSION));
    map.entry("kind").or_insert_with(|| Value::from(KIND));
    Some(value)
}

/// Watches MCPPolicy objects until the process ends (every replica). `/readyz` turns true
/// after the first complete list, so no replica serves before it knows the cluster's
/// policies.
pub async fn watch(client: Client, policies: Arc<PolicyStore>, readiness: Arc<Readiness>) {
    let mut events = watcher(api(client), watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut listed: Vec<Value> = Vec::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => listed.clear(),
            Ok(watcher::Event::InitApply(object)) => listed.extend(to_value(object)),
            Ok(watcher::Event::InitDone) => {
                policies.update_cluster(|cluster| cluster.replace_all(&listed));
                listed.clear();
                log_policies(&policies.load());
                if !readiness.policies_synced.swap(true, Ordering::AcqRel) {
                    tracing::info!("MCPPolicy cache synced");
                }
            }
            Ok(watcher::Event::Apply(object)) => {
                if let Some(value) = to_value(object) {
                    policies.update_cluster(|cluster| cluster.apply(&value));
                    log_policy(&policies.load(), &value);
                }
            }
            Ok(watcher::Event::Delete(object)) => {
                if let Some(value) = to_value(object) {
                    policies.update_cluster(|cluster| cluster.remove(&value));
                    let name = value.pointer("/metadata/name").and_then(Value::as_str);
                    tracing::info!(policy = name.unwrap_or_default(), "MCPPolicy deleted");
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "MCPPolicy watch failed (is the MCPPolicy CRD installed?); retrying");
            }
        }
    }
}

fn log_policies(policies: &PolicySet) {
    tracing::info!(
        objects = policies.statuses().len(),
        namespaces = %policies.covered_namespaces().join(","),
        "MCPPolicy objects listed"
    );
    for report in policies.statuses() {
        log_ready(report);
    }
}

fn log_policy(policies: &PolicySet, object: &Value) {
    let name = object.pointer("/metadata/name").and_then(Value::as_str);
    if let Some(report) = policies
        .statuses()
        .iter()
        .find(|report| Some(report.name.as_str()) == name)
    {
        log_ready(report);
    }
}

fn log_ready(report: &policy_set::StatusReport) {
    let Some(ready) = report
        .desired
        .conditions
        .iter()
        .find(|c| c.type_ == policy_set::READY)
    else {
        return;
    };
    if ready.reason == "InvalidSpec" {
        tracing::error!(policy = %report.name, error = %ready.message, "MCPPolicy refused");
    } else {
        tracing::debug!(policy = %report.name, reason = %ready.reason, "MCPPolicy in force");
    }
}

/// What one leader pass wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LeaderPass {
    pub statuses_written: usize,
    pub configurations_patched: usize,
}

/// Writes the statuses that changed and, with a webhook configuration name, syncs its
/// `namespaceSelector`.
pub async fn leader_pass(
    client: &Client,
    policies: &PolicySet,
    now: &str,
    webhook_configuration: Option<&str>,
) -> Result<LeaderPass, kube::Error> {
    let api = api(client.clone());
    let mut pass = LeaderPass::default();
    for report in policies.statuses() {
        let Some(status) = policy_set::status_to_write(report, now) else {
            continue;
        };
        let body = json!({ "status": status });
        api.patch_status(&report.name, &PatchParams::default(), &Patch::Merge(&body))
            .await?;
        pass.statuses_written += 1;
    }
    if let Some(configuration) = webhook_configuration {
        pass.configurations_patched = crate::cluster::selfcert::sync_selectors(
            client,
            configuration,
            &policies.covered_namespaces(),
        )
        .await?;
    }
    Ok(pass)
}

/// The leader's policy duties: a pass on winning the lease, on every policy change, and
/// every `LEADER_RESYNC`, once the MCPPolicy objects have been listed.
pub async fn run_leader(
    client: Client,
    policies: Arc<PolicyStore>,
    readiness: Arc<Readiness>,
    leader: tokio::sync::watch::Receiver<bool>,
    webhook_configuration: Option<String>,
) {
    let cadence = Cadence::EveryAndOnChange(LEADER_RESYNC, policies.subscribe());
    let (client, policies, readiness, webhook_configuration) =
        (&client, &policies, &readiness, &webhook_configuration);
    run_while_leading(leader, cadence, move |_| async move {
        if !readiness.policies_synced.load(Ordering::Acquire) {
            return;
        }
        let serving = policies.load_full();
        let now = crate::cluster::controller::rfc3339(jiff::Timestamp::now());
        match leader_pass(client, &serving, &now, webhook_configuration.as_deref()).await {
            Ok(pass) if pass != LeaderPass::default() => tracing::info!(
                statuses_written = pass.statuses_written,
                configurations_patched = pass.configurations_patched,
                "MCPPolicy statuses and webhook selectors updated"
            ),
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "cannot update MCPPolicy statuses or webhook selectors; retrying")
            }
        }
    })
    .await;
}
