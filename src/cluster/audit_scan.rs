//! The leader's background audit: every pod and pod controller in the enforced namespaces,
//! judged against today's policy, one PolicyReport each. Running pods admitted under an
//! older policy show up here (drift). Reports are written only when they change.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use crate::metrics::{Metrics, NamespaceLabels};
use mcpguard_core::audit::report::{self, MANAGED_BY, MANAGED_BY_LABEL, Scanned};
use mcpguard_core::engine::Context;
use mcpguard_core::policy_set::PolicySet;
use mcpguard_core::runtime_class::RuntimeClassLookup;
use mcpguard_core::workloads::WORKLOADS;

pub const FIELD_MANAGER: &str = "mcpguard";

/// What one scan did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanSummary {
    pub scanned: usize,
    pub written: usize,
    pub unchanged: usize,
    pub deleted: usize,
    /// Failing checks per namespace.
    pub violations: BTreeMap<String, usize>,
}

pub fn policy_report_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("wgpolicyk8s.io", "v1alpha2", report::KIND),
        "policyreports",
    )
}

fn resource(group: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural)
}

/// Scans every covered namespace once, each against the policy that governs it.
pub async fn scan(
    client: &Client,
    policies: &PolicySet,
    runtime_classes: &dyn RuntimeClassLookup,
    now: time::OffsetDateTime,
    metrics: &Metrics,
) -> Result<ScanSummary, kube::Error> {
    let mut summary = ScanSummary::default();
    let reports_resource = policy_report_resource();
    // Namespaces the policies no longer cover must not keep their last count for ever.
    metrics.audit_violations.clear();
    for (namespace, policy) in policies.covered() {
        let context = Context {
            policy,
            runtime_classes,
            now,
        };
        let mut desired: BTreeMap<String, Value> = BTreeMap::new();
        let mut targets: Vec<(ApiResource, Scanned)> =
            vec![(resource("", "Pod", "pods"), Scanned::Pod)];
        targets.extend(
            WORKLOADS
                .iter()
                .map(|w| (resource(w.group, w.kind, w.resource), Scanned::Workload(w))),
        );
        for (api_resource, scanned) in targets {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), namespace, &api_resource);
            for object in api.list(&ListParams::default()).await? {
                let value = serde_json::to_value(&object).map_err(kube::Error::SerdeError)?;
                summary.scanned += 1;
                if let Some(built) = report::report_for(&value, scanned, context) {
                    let name = built["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    desired.insert(name, built);
                }
            }
        }
        let reports: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &reports_resource);
        let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY}");
        let existing = reports
            .list(&ListParams::default().labels(&selector))
            .await?;
        let mut stored: BTreeMap<String, Value> = BTreeMap::new();
        for object in existing {
            let value = serde_json::to_value(&object).map_err(kube::Error::SerdeError)?;
            if let Some(name) = value.pointer("/metadata/name").and_then(Value::as_str) {
                stored.insert(name.to_owned(), value);
            }
        }
        let mut failing = 0;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        for (name, built) in &desired {
            failing += built
                .pointer("/summary/fail")
                .and_then(Value::as_u64)
                .unwrap_or(0) as usize;
            if stored
                .get(name)
                .is_some_and(|s| report::is_current(s, built))
            {
                summary.unchanged += 1;
                continue;
            }
            reports.patch(name, &params, &Patch::Apply(built)).await?;
            summary.written += 1;
        }
        for name in stored.keys().filter(|name| !desired.contains_key(*name)) {
            reports.delete(name, &DeleteParams::default()).await?;
            summary.deleted += 1;
        }
        metrics
            .audit_violations
            .get_or_create(&NamespaceLabels {
                namespace: namespace.to_owned(),
            })
            .set(failing as i64);
        summary.violations.insert(namespace.to_owned(), failing);
    }
    Ok(summary)
}

/// Scans while this replica leads: on winning the lease, whenever the policy changes, and
/// every `interval`.
pub async fn run(
    client: Client,
    state: Arc<crate::webhook::routes::AppState>,
    mut leader: tokio::sync::watch::Receiver<bool>,
    interval: std::time::Duration,
) {
    let mut last_policies: Option<Arc<PolicySet>> = None;
    let mut last_scan: Option<tokio::time::Instant> = None;
    loop {
        let leading = *leader.borrow_and_update();
        let policies = state.policies.load_full();
        let policy_changed = last_policies
            .as_ref()
            .is_none_or(|last| !last.same_enforcement(&policies));
        let due = last_scan.is_none_or(|at| at.elapsed() >= interval);
        if leading && (policy_changed || due) {
            let now = time::OffsetDateTime::now_utc();
            let classes = state.runtime_classes.as_ref();
            match scan(&client, &policies, classes, now, &state.metrics).await {
                Ok(summary) => tracing::info!(
                    scanned = summary.scanned,
                    written = summary.written,
                    unchanged = summary.unchanged,
                    deleted = summary.deleted,
                    "background audit finished"
                ),
                Err(err) => {
                    tracing::warn!(error = %err, "background audit failed; retrying next round")
                }
            }
            last_policies = Some(policies);
            last_scan = Some(tokio::time::Instant::now());
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
            changed = leader.changed() => {
                if changed.is_err() {
                    return;
                }
                if !*leader.borrow() {
                    last_scan = None;
                }
            }
        }
    }
}
