//! The leader's background audit: every pod and pod controller in the enforced namespaces,
//! judged against today's policy, one PolicyReport each. Running pods admitted under an
//! older policy show up here (drift). Reports are written only when they change.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use crate::cluster::leader::{Cadence, Turn, run_while_leading};
use crate::metrics::{Metrics, NamespaceLabels};
use crate::policy_store::PolicyStore;
use mcpguard_core::audit::report::{self, MANAGED_BY, MANAGED_BY_LABEL, ReportApi, Scanned};
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
    /// Stored reports whose object is gone, left to the garbage collector.
    pub stale: usize,
    /// Failing checks per namespace.
    pub violations: BTreeMap<String, usize>,
}

/// The reports of `api` (`policyreports.wgpolicyk8s.io` or `reports.openreports.io`).
pub fn report_resource(api: ReportApi) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(api.group(), api.version(), api.kind()),
        api.plural(),
    )
}

fn resource(group: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural)
}

/// Scans every covered namespace once, each against the policy that governs it, and writes
/// each object's report to every API of `apis` (in that order).
pub async fn scan(
    client: &Client,
    policies: &PolicySet,
    runtime_classes: &dyn RuntimeClassLookup,
    now: jiff::Timestamp,
    metrics: &Metrics,
    apis: &[ReportApi],
) -> Result<ScanSummary, kube::Error> {
    let mut summary = ScanSummary::default();
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
        let failing: usize = desired
            .values()
            .map(|built| {
                built
                    .pointer("/summary/fail")
                    .and_then(Value::as_u64)
                    .map_or(0, |fail| usize::try_from(fail).unwrap_or(usize::MAX))
            })
            .sum();
        for api in apis {
            write_reports(client, namespace, *api, &desired, &mut summary).await?;
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

/// Writes the reports of `desired` (PolicyReports, by name) that `api` does not hold yet as
/// they are, in `api`'s form.
async fn write_reports(
    client: &Client,
    namespace: &str,
    api: ReportApi,
    desired: &BTreeMap<String, Value>,
    summary: &mut ScanSummary,
) -> Result<(), kube::Error> {
    let reports: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &report_resource(api));
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
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for (name, built) in desired {
        let built = api.shape(built);
        if stored
            .get(name)
            .is_some_and(|s| report::is_current(s, &built))
        {
            summary.unchanged += 1;
            continue;
        }
        reports.patch(name, &params, &Patch::Apply(&built)).await?;
        summary.written += 1;
    }
    // A stored report without a desired one is for an object that is gone: its owner
    // reference lets the garbage collector remove it, and mcpguard holds no delete.
    summary.stale += stored
        .keys()
        .filter(|name| !desired.contains_key(*name))
        .count();
    Ok(())
}

/// How often the leader looks for a changed policy or a due scan.
const POLL: std::time::Duration = std::time::Duration::from_secs(10);

/// What the leader remembers of its last scan in this term.
#[derive(Default)]
struct LastScan {
    policies: Option<Arc<PolicySet>>,
    at: Option<tokio::time::Instant>,
}

/// Scans while this replica leads: on winning the lease, whenever the policy changes, and
/// every `interval`.
pub async fn run(
    client: Client,
    policies: Arc<PolicyStore>,
    runtime_classes: Arc<dyn RuntimeClassLookup>,
    metrics: Arc<Metrics>,
    leader: tokio::sync::watch::Receiver<bool>,
    interval: std::time::Duration,
    apis: Vec<ReportApi>,
) {
    let last = Mutex::new(LastScan::default());
    let (client, policies, runtime_classes, metrics, last, apis) =
        (&client, &policies, &runtime_classes, &metrics, &last, &apis);
    run_while_leading(leader, Cadence::Every(POLL), move |turn: Turn| async move {
        let policies = policies.load_full();
        {
            let mut last = last.lock().unwrap_or_else(PoisonError::into_inner);
            if turn.newly_elected {
                last.at = None;
            }
            let policy_changed = last
                .policies
                .as_ref()
                .is_none_or(|last| !last.same_enforcement(&policies));
            let due = last.at.is_none_or(|at| at.elapsed() >= interval);
            if !(policy_changed || due) {
                return;
            }
        }
        let now = jiff::Timestamp::now();
        match scan(
            client,
            &policies,
            runtime_classes.as_ref(),
            now,
            metrics,
            apis,
        )
        .await
        {
            Ok(summary) => tracing::info!(
                scanned = summary.scanned,
                written = summary.written,
                unchanged = summary.unchanged,
                stale = summary.stale,
                "background audit finished"
            ),
            Err(err) => {
                tracing::warn!(error = %err, "background audit failed; retrying next round")
            }
        }
        *last.lock().unwrap_or_else(PoisonError::into_inner) = LastScan {
            policies: Some(policies),
            at: Some(tokio::time::Instant::now()),
        };
    })
    .await;
}
