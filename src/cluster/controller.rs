//! The MCPServer controller: the kube-runtime loop that keeps each server's Deployment,
//! Service and NetworkPolicy as `render` declares them, and reports status.
//!
//! Only the leader reconciles ([`run`] starts the controller when this replica wins the
//! lease and drops it when the lease is lost); every replica keeps serving the webhook.
//! Writes are server-side applies with one field manager (`mcpguard`, forced); the objects
//! carry owner references, so deleting an MCPServer garbage-collects them.
//!
//! Secrets: the controller watches only their metadata (one watch per enforced namespace),
//! and reads a referenced Secret only for its uid, resourceVersion and key names. Values are
//! never copied, logged or stored; the pods get them through `secretKeyRef` / `envFrom` /
//! volumes, and the `mcpguard.dev/secrets-hash` annotation (of versions, not contents)
//! rolls the pods when a Secret changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::cluster::leader::{Cadence, Turn, run_while_leading};
use crate::policy_store::PolicyStore;
use mcpguard_core::engine;
use mcpguard_core::mcpserver::crd::{Condition, MCPServer, MCPServerStatus, Phase};
use mcpguard_core::mcpserver::render::{
    self, MANAGED_BY, MANAGED_BY_LABEL, RenderError, Rendered, SecretVersion, missing_config_maps,
    missing_secrets, referenced_config_maps, referenced_secrets,
};
use mcpguard_core::policy::Policy;
use mcpguard_core::runtime_class::RuntimeClassLookup;

/// The one field manager of every write.
pub const FIELD_MANAGER: &str = "mcpguard";
pub const CONDITION_READY: &str = "Ready";
pub const CONDITION_SECRETS_RESOLVED: &str = "SecretsResolved";
pub const CONDITION_POLICY_COMPLIANT: &str = "PolicyCompliant";
/// A server that reconciled is looked at again after this long even with no event.
pub const RESYNC: Duration = Duration::from_secs(600);
/// First retry after a failed reconcile; each further failure doubles it, up to the max.
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(5);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How often the running controller looks for a new policy (hot reload).
const POLICY_POLL: Duration = Duration::from_secs(10);
/// Pause before restarting a controller whose streams ended on their own.
const RESTART_PAUSE: Duration = Duration::from_secs(5);

/// The policy governing a namespace now.
pub type PolicySource = Arc<dyn Fn(&str) -> Arc<Policy> + Send + Sync>;
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// What `reconcile` and `error_policy` share.
pub struct Context {
    pub client: Client,
    /// The policy in force now (the webhook's hot-reloaded one).
    pub policy: PolicySource,
    pub runtime_classes: Arc<dyn RuntimeClassLookup>,
    /// The time conditions' `lastTransitionTime` and exception expiry are judged against.
    pub now: Clock,
    pub backoff: Backoff,
}

impl Context {
    /// A context that reads the policies in force now (the webhook's), the RuntimeClasses,
    /// and the clock.
    pub fn for_store(
        client: Client,
        policies: Arc<PolicyStore>,
        runtime_classes: Arc<dyn RuntimeClassLookup>,
    ) -> Self {
        Context {
            client,
            policy: Arc::new(move |namespace| {
                policies.load().for_namespace(Some(namespace)).clone()
            }),
            runtime_classes,
            now: Arc::new(Timestamp::now),
            backoff: Backoff::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error("MCPServer {0:?} has no namespace")]
    NoNamespace(String),
    #[error("cannot encode {0}: {1}")]
    Encode(&'static str, serde_json::Error),
}

/// Exponential backoff per object: `BACKOFF_INITIAL` doubling to `BACKOFF_MAX`, reset
/// when the object reconciles.
#[derive(Debug, Default)]
pub struct Backoff {
    attempts: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// The delay after `failures` consecutive failures (1 = the first).
    pub fn delay(failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        BACKOFF_INITIAL
            .saturating_mul(1 << doublings)
            .min(BACKOFF_MAX)
    }

    /// Records one more failure of `key` and returns how long to wait before retrying.
    pub fn failed(&self, key: &str) -> Duration {
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        let failures = attempts.entry(key.to_owned()).or_insert(0);
        *failures = failures.saturating_add(1);
        Self::delay(*failures)
    }

    pub fn reset(&self, key: &str) {
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        attempts.remove(key);
    }

    /// Consecutive failures of `key` so far.
    pub fn failures(&self, key: &str) -> u32 {
        let attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        attempts.get(key).copied().unwrap_or(0)
    }
}

/// `namespace/name`, the backoff key.
pub fn key_of(server: &MCPServer) -> String {
    format!(
        "{}/{}",
        server.namespace().unwrap_or_default(),
        server.name_any()
    )
}

/// Retries a failed server with its own exponential backoff.
pub fn error_policy(server: Arc<MCPServer>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = key_of(&server);
    let delay = ctx.backoff.failed(&key);
    tracing::warn!(
        server = %key,
        error = %mcpguard_core::redact::scrub(&error.to_string()),
        retry_in_seconds = delay.as_secs(),
        "MCPServer reconcile failed"
    );
    Action::requeue(delay)
}

/// One reconcile of one MCPServer. Reads the server afresh (a deleted one is left to the
/// garbage collector), its Secrets' versions, renders, applies, and writes status only when
/// it changed.
pub async fn reconcile(server: Arc<MCPServer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = key_of(&server);
    let result = reconcile_server(&server, &ctx).await;
    if result.is_ok() {
        ctx.backoff.reset(&key);
    }
    result
}

/// One condition as wanted now; `lastTransitionTime` is filled in against the current one.
struct Wanted {
    type_: &'static str,
    status: &'static str,
    reason: &'static str,
    message: String,
}

fn wanted(
    type_: &'static str,
    status: &'static str,
    reason: &'static str,
    message: impl Into<String>,
) -> Wanted {
    Wanted {
        type_,
        status,
        reason,
        message: message.into(),
    }
}

async fn reconcile_server(server: &MCPServer, ctx: &Context) -> Result<Action, Error> {
    let name = server.name_any();
    let namespace = server
        .namespace()
        .ok_or_else(|| Error::NoNamespace(name.clone()))?;
    let servers: Api<MCPServer> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(server) = servers.get_opt(&name).await? else {
        // Deleted: its objects go with it (owner references).
        return Ok(Action::await_change());
    };
    if server.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let policy = (ctx.policy)(&namespace);
    let now = (ctx.now)();
    let current = server.status.clone().unwrap_or_default();

    if !policy.enforces_namespace(&namespace) {
        let message = format!(
            "namespace {namespace:?} is not among the namespaces of policy {:?} ({}): mcpguard runs MCPServers only there",
            policy.name,
            policy.spec.namespaces.join(", ")
        );
        let conditions = [
            wanted(CONDITION_READY, "False", "NamespaceNotEnforced", &message),
            wanted(
                CONDITION_SECRETS_RESOLVED,
                "Unknown",
                "NamespaceNotEnforced",
                "not checked outside the enforced namespaces",
            ),
            wanted(
                CONDITION_POLICY_COMPLIANT,
                "False",
                "NamespaceNotEnforced",
                &message,
            ),
        ];
        let status = status_of(
            &server,
            &current,
            Phase::Failed,
            current.url.clone(),
            current.ready_replicas,
            conditions,
            now,
        );
        write_status(&servers, &server, status).await?;
        return Ok(Action::await_change());
    }

    let secrets = read_secrets(&ctx.client, &namespace, &server).await?;
    let config_maps = read_config_maps(&ctx.client, &namespace, &server).await?;
    let mut missing = missing_secrets(&server, &secrets);
    let secrets_missing = !missing.is_empty();
    missing.extend(missing_config_maps(&server, &config_maps));
    let secrets_condition = if missing.is_empty() {
        let message = match (
            referenced_secrets(&server).is_empty(),
            referenced_config_maps(&server).is_empty(),
        ) {
            (true, true) => "no Secrets referenced",
            (false, true) => "every referenced Secret and key exists",
            (_, false) => "every referenced Secret, key and ConfigMap exists",
        };
        wanted(CONDITION_SECRETS_RESOLVED, "True", "Resolved", message)
    } else {
        let reason = if secrets_missing {
            "SecretNotFound"
        } else {
            "ConfigMapNotFound"
        };
        wanted(
            CONDITION_SECRETS_RESOLVED,
            "False",
            reason,
            missing.join("; "),
        )
    };
    let context = engine::Context {
        policy: &policy,
        runtime_classes: ctx.runtime_classes.as_ref(),
        now,
    };
    let rendered = match render::render(&server, context, &secrets, &config_maps) {
        Ok(rendered) => rendered,
        Err(err) => {
            let (ready, compliant) = match &err {
                RenderError::Invalid(message) => (
                    wanted(CONDITION_READY, "False", "InvalidSpec", message),
                    wanted(
                        CONDITION_POLICY_COMPLIANT,
                        "Unknown",
                        "InvalidSpec",
                        "not judged: the spec cannot be rendered",
                    ),
                ),
                RenderError::Denied(message) => (
                    wanted(
                        CONDITION_READY,
                        "False",
                        "PolicyViolation",
                        "nothing is deployed while the pods would violate the policy",
                    ),
                    wanted(CONDITION_POLICY_COMPLIANT, "False", "Denied", message),
                ),
                RenderError::PeerNotAllowed(message) => (
                    wanted(
                        CONDITION_READY,
                        "False",
                        "PolicyViolation",
                        "nothing is deployed while the network extras are not allowed",
                    ),
                    wanted(
                        CONDITION_POLICY_COMPLIANT,
                        "False",
                        "PeerNotAllowed",
                        message,
                    ),
                ),
                RenderError::EgressNotAllowed(message) => (
                    wanted(
                        CONDITION_READY,
                        "False",
                        "PolicyViolation",
                        "nothing is deployed while the egress profile is not allowed",
                    ),
                    wanted(
                        CONDITION_POLICY_COMPLIANT,
                        "False",
                        "EgressNotAllowed",
                        message,
                    ),
                ),
            };
            let status = status_of(
                &server,
                &current,
                Phase::Failed,
                current.url.clone(),
                current.ready_replicas,
                [ready, secrets_condition, compliant],
                now,
            );
            write_status(&servers, &server, status).await?;
            return Ok(Action::requeue(RESYNC));
        }
    };
    let compliant = if rendered.warnings.is_empty() {
        wanted(
            CONDITION_POLICY_COMPLIANT,
            "True",
            "Compliant",
            format!("the pods pass policy {:?}", policy.name),
        )
    } else {
        wanted(
            CONDITION_POLICY_COMPLIANT,
            "False",
            "Warned",
            rendered.warnings.join("; "),
        )
    };
    if !missing.is_empty() {
        let ready = wanted(
            CONDITION_READY,
            "False",
            "SecretsMissing",
            if referenced_config_maps(&server).is_empty() {
                "waiting for the referenced Secrets"
            } else {
                "waiting for the referenced Secrets and ConfigMaps"
            },
        );
        let status = status_of(
            &server,
            &current,
            Phase::Pending,
            current.url.clone(),
            current.ready_replicas,
            [ready, secrets_condition, compliant],
            now,
        );
        write_status(&servers, &server, status).await?;
        return Ok(Action::requeue(RESYNC));
    }

    if let Some(held) = foreign_object(&ctx.client, &namespace, &server, &rendered).await? {
        let message = format!(
            "{held} already exists and is not owned by this MCPServer: nothing is written \
             until it is removed, or the MCPServer renamed"
        );
        tracing::warn!(
            server = %format!("{namespace}/{}", server.name_any()),
            object = %held,
            "MCPServer conflicts with an object it does not own; nothing written"
        );
        let status = status_of(
            &server,
            &current,
            Phase::Failed,
            current.url.clone(),
            current.ready_replicas,
            [
                wanted(CONDITION_READY, "False", "Conflict", message),
                secrets_condition,
                compliant,
            ],
            now,
        );
        write_status(&servers, &server, status).await?;
        return Ok(Action::requeue(RESYNC));
    }
    let live = apply(&ctx.client, &namespace, &server, &rendered).await?;
    let ready_replicas = live
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    // With an autoscaler the Deployment's replicas are the HPA's, not the spec's.
    let replicas = match &server.spec.autoscaling {
        Some(_) => live
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(server.spec.replicas),
        None => server.spec.replicas,
    };
    let available = ready_replicas >= replicas.max(1);
    let message = format!("{ready_replicas} of {replicas} replicas ready");
    let (phase, ready) = if available {
        (
            Phase::Ready,
            wanted(CONDITION_READY, "True", "Available", message),
        )
    } else {
        (
            Phase::Pending,
            wanted(CONDITION_READY, "False", "Progressing", message),
        )
    };
    let mut status = status_of(
        &server,
        &current,
        phase,
        Some(rendered.url.clone()),
        Some(ready_replicas),
        [ready, secrets_condition, compliant],
        now,
    );
    // The scale subresource's view: `kubectl scale` and an HPA read these.
    status.replicas = Some(live.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    status.selector = Some(render::selector_string(&server));
    write_status(&servers, &server, status).await?;
    Ok(Action::requeue(RESYNC))
}

/// The referenced Secrets that exist, as uid, resourceVersion and key names. Values are
/// dropped with the object.
async fn read_secrets(
    client: &Client,
    namespace: &str,
    server: &MCPServer,
) -> Result<Vec<SecretVersion>, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut names: Vec<String> = Vec::new();
    for (name, _) in referenced_secrets(server) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let mut found = Vec::new();
    for name in names {
        if let Some(secret) = api.get_opt(&name).await? {
            found.push(secret_version(name, &secret));
        }
    }
    Ok(found)
}

/// The referenced ConfigMaps that exist, as uid and resourceVersion: their metadata only is
/// read (configuration may still be sensitive, and mcpguard needs only its version).
async fn read_config_maps(
    client: &Client,
    namespace: &str,
    server: &MCPServer,
) -> Result<Vec<SecretVersion>, Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let mut found = Vec::new();
    for name in referenced_config_maps(server) {
        if let Some(meta) = api.get_metadata_opt(&name).await? {
            found.push(SecretVersion {
                name,
                uid: meta.metadata.uid.clone().unwrap_or_default(),
                resource_version: meta.metadata.resource_version.clone().unwrap_or_default(),
                keys: Vec::new(),
            });
        }
    }
    Ok(found)
}

/// Key names only: neither `data` nor `stringData` values leave this function.
fn secret_version(name: String, secret: &Secret) -> SecretVersion {
    let mut keys: Vec<String> = secret
        .data
        .iter()
        .flatten()
        .map(|(key, _)| key.clone())
        .chain(
            secret
                .string_data
                .iter()
                .flatten()
                .map(|(key, _)| key.clone()),
        )
        .collect();
    keys.sort();
    keys.dedup();
    SecretVersion {
        name,
        uid: secret.metadata.uid.clone().unwrap_or_default(),
        resource_version: secret.metadata.resource_version.clone().unwrap_or_default(),
        keys,
    }
}

/// Whether `object`'s controller reference is this server.
fn owned_by(object: &impl Resource, server: &MCPServer) -> bool {
    object.owner_references().iter().any(|owner| {
        owner.controller == Some(true) && Some(&owner.uid) == server.meta().uid.as_ref()
    })
}

/// The first object the server would write that exists and is not its own (`Service
/// "github"`), or `None`. Server-side apply with force would take such an object over, and
/// deleting the MCPServer would then garbage-collect it: an MCPServer named after another
/// team's Service must not be a way to replace or delete it.
async fn foreign_object(
    client: &Client,
    namespace: &str,
    server: &MCPServer,
    rendered: &Rendered,
) -> Result<Option<String>, Error> {
    // In the order they are written. Each optional object only when the render wants it.
    if rendered.network_policy.is_some()
        && let Some(held) = held_by_another::<NetworkPolicy>(client, namespace, server).await?
    {
        return Ok(Some(held));
    }
    if let Some(held) = held_by_another::<Service>(client, namespace, server).await? {
        return Ok(Some(held));
    }
    if rendered.pod_disruption_budget.is_some()
        && let Some(held) =
            held_by_another::<PodDisruptionBudget>(client, namespace, server).await?
    {
        return Ok(Some(held));
    }
    if rendered.autoscaler.is_some()
        && let Some(held) =
            held_by_another::<HorizontalPodAutoscaler>(client, namespace, server).await?
    {
        return Ok(Some(held));
    }
    held_by_another::<Deployment>(client, namespace, server).await
}

/// `Kind "name"` when an object of the server's name exists and is not the server's.
async fn held_by_another<K>(
    client: &Client,
    namespace: &str,
    server: &MCPServer,
) -> Result<Option<String>, Error>
where
    K: Resource<Scope = NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let name = server.name_any();
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    Ok(match api.get_opt(&name).await? {
        Some(existing) if !owned_by(&existing, server) => {
            let dynamic = K::DynamicType::default();
            let kind = K::kind(&dynamic);
            Some(format!("{kind} {name:?}"))
        }
        _ => None,
    })
}

/// Applies `wanted`, or, when the render no longer wants the object, deletes the one this
/// server owns (see [`delete_owned`]).
async fn apply_or_delete<K>(
    api: &Api<K>,
    server: &MCPServer,
    wanted: Option<&Value>,
) -> Result<(), Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match wanted {
        Some(object) => {
            let params = PatchParams::apply(FIELD_MANAGER).force();
            api.patch(&server.name_any(), &params, &Patch::Apply(object))
                .await?;
            Ok(())
        }
        None => delete_owned(api, server).await,
    }
}

/// Server-side applies the NetworkPolicy first (new pods start isolated), then the Service
/// and the Deployment, then the PodDisruptionBudget and the HorizontalPodAutoscaler (each
/// deleted when no longer wanted); removes what others added to the pod template. Returns
/// the live Deployment.
async fn apply(
    client: &Client,
    namespace: &str,
    server: &MCPServer,
    rendered: &Rendered,
) -> Result<Deployment, Error> {
    let name = server.name_any();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let network_policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), namespace);
    apply_or_delete(&network_policies, server, rendered.network_policy.as_ref()).await?;
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    services
        .patch(&name, &params, &Patch::Apply(&rendered.service))
        .await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let live = deployments
        .patch(&name, &params, &Patch::Apply(&rendered.deployment))
        .await?;
    let live_value = serde_json::to_value(&live).map_err(|e| Error::Encode("Deployment", e))?;
    let live = match removal_patch(&live_value, &rendered.deployment) {
        Some(patch) => {
            let patch: json_patch::Patch =
                serde_json::from_value(patch).map_err(|e| Error::Encode("JSON Patch", e))?;
            tracing::info!(
                server = %format!("{namespace}/{name}"),
                "removing containers or volumes others added to the pod template"
            );
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PatchParams::default()
            };
            deployments
                .patch(&name, &params, &Patch::Json::<()>(patch))
                .await?
        }
        None => live,
    };
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), namespace);
    apply_or_delete(&budgets, server, rendered.pod_disruption_budget.as_ref()).await?;
    let autoscalers: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), namespace);
    apply_or_delete(&autoscalers, server, rendered.autoscaler.as_ref()).await?;
    Ok(live)
}

/// An object the render no longer wants (the policy turned NetworkPolicies off, one replica
/// needs no disruption budget, the autoscaler was removed): delete the one this server owns
/// (only that one, and only that object: the uid precondition guards against a
/// replacement). One another owner holds is left alone.
async fn delete_owned<K>(api: &Api<K>, server: &MCPServer) -> Result<(), Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = server.name_any();
    let Some(existing) = api.get_opt(&name).await? else {
        return Ok(());
    };
    if !owned_by(&existing, server) {
        return Ok(());
    }
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: existing.meta().uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Pod-template lists mcpguard declares in full: an entry someone else added survives
/// server-side apply, so it is removed by replacing the list with the rendered one.
const OWNED_LISTS: [&str; 3] = ["containers", "initContainers", "volumes"];

/// A JSON Patch that replaces every pod-template list of `live` holding an entry the render
/// does not have (by name) with the rendered list, guarded by a `test` of the
/// resourceVersion read; `None` when nothing was added.
pub fn removal_patch(live: &Value, rendered: &Value) -> Option<Value> {
    let names = |list: Option<&Value>| -> Vec<String> {
        list.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.get("name").and_then(Value::as_str))
            .map(str::to_owned)
            .collect()
    };
    let mut operations = Vec::new();
    for list in OWNED_LISTS {
        let pointer = format!("/spec/template/spec/{list}");
        let live_list = live.pointer(&pointer);
        let wanted_list = rendered.pointer(&pointer);
        let wanted_names = names(wanted_list);
        let extra = names(live_list)
            .iter()
            .any(|name| !wanted_names.contains(name));
        if !extra {
            continue;
        }
        operations.push(match wanted_list {
            Some(value) => json!({"op": "replace", "path": pointer, "value": value}),
            None => json!({"op": "remove", "path": pointer}),
        });
    }
    if operations.is_empty() {
        return None;
    }
    let resource_version = live.pointer("/metadata/resourceVersion")?.clone();
    operations.insert(
        0,
        json!({"op": "test", "path": "/metadata/resourceVersion", "value": resource_version}),
    );
    Some(Value::Array(operations))
}

/// The status wanted now; each condition keeps its `lastTransitionTime` while its status
/// does not change.
fn status_of(
    server: &MCPServer,
    current: &MCPServerStatus,
    phase: Phase,
    url: Option<String>,
    ready_replicas: Option<i32>,
    conditions: [Wanted; 3],
    now: Timestamp,
) -> MCPServerStatus {
    let generation = server.meta().generation;
    let conditions = conditions
        .into_iter()
        .map(|wanted| Condition {
            type_: wanted.type_.to_owned(),
            status: wanted.status.to_owned(),
            reason: wanted.reason.to_owned(),
            message: wanted.message,
            last_transition_time: None,
            observed_generation: generation,
        })
        .collect();
    let conditions = mcpguard_core::conditions::with_transition_times(
        conditions,
        &current.conditions,
        &rfc3339(now),
    );
    MCPServerStatus {
        phase: Some(phase),
        url,
        ready_replicas,
        // Kept until a pass that reads the Deployment says otherwise.
        replicas: current.replicas,
        selector: current.selector.clone(),
        observed_generation: generation,
        conditions,
    }
}

pub fn rfc3339(at: Timestamp) -> String {
    mcpguard_core::rfc3339::format_seconds(at).unwrap_or_default()
}

/// The status subresource's server-side apply body.
pub fn status_body(status: &MCPServerStatus) -> Value {
    json!({
        "apiVersion": "mcpguard.dev/v1alpha1",
        "kind": "MCPServer",
        "status": status,
    })
}

/// Writes `status` only when it differs from what the server has: an unchanged status
/// writes nothing, so a status write never triggers an endless loop of reconciles.
async fn write_status(
    api: &Api<MCPServer>,
    server: &MCPServer,
    status: MCPServerStatus,
) -> Result<(), Error> {
    if server.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(
        &server.name_any(),
        &params,
        &Patch::Apply(status_body(&status)),
    )
    .await?;
    Ok(())
}

/// The MCPServers in `namespace` for which `reads` holds (they reference a Secret or mount
/// a ConfigMap that changed).
fn servers_in(
    store: &Store<MCPServer>,
    namespace: &str,
    reads: impl Fn(&MCPServer) -> bool,
) -> Vec<ObjectRef<MCPServer>> {
    store
        .state()
        .iter()
        .filter(|server| server.namespace().as_deref() == Some(namespace))
        .filter(|server| reads(server))
        .map(|server| ObjectRef::from(server.as_ref()))
        .collect()
}

/// The controller for the servers of `namespaces`: MCPServers cluster-wide (the others get
/// a Failed status), and per enforced namespace its owned Deployments, Services and
/// NetworkPolicies (by the managed-by label) and the metadata of its Secrets.
pub fn controller(
    client: Client,
    namespaces: &[String],
    ctx: Arc<Context>,
    policy_changed: impl Stream<Item = ()> + Send + 'static,
) -> impl Future<Output = ()> + Send {
    let managed = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
    let mut controller = Controller::new(
        Api::<MCPServer>::all(client.clone()),
        watcher::Config::default(),
    );
    let store = controller.store();
    for namespace in namespaces {
        let store = store.clone();
        let config_store = store.clone();
        controller = controller
            .owns(
                Api::<Deployment>::namespaced(client.clone(), namespace),
                managed.clone(),
            )
            .owns(
                Api::<Service>::namespaced(client.clone(), namespace),
                managed.clone(),
            )
            .owns(
                Api::<NetworkPolicy>::namespaced(client.clone(), namespace),
                managed.clone(),
            )
            .owns(
                Api::<PodDisruptionBudget>::namespaced(client.clone(), namespace),
                managed.clone(),
            )
            .owns(
                Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), namespace),
                managed.clone(),
            )
            // Metadata only, as for Secrets: a changed ConfigMap rolls the pods.
            .watches(
                Api::<PartialObjectMeta<ConfigMap>>::namespaced(client.clone(), namespace),
                watcher::Config::default(),
                move |config_map: PartialObjectMeta<ConfigMap>| {
                    let namespace = config_map.metadata.namespace.clone().unwrap_or_default();
                    let name = config_map.metadata.name.clone().unwrap_or_default();
                    servers_in(&config_store, &namespace, |server| {
                        referenced_config_maps(server).contains(&name)
                    })
                },
            )
            // Metadata only: a Secret's values never reach mcpguard through the watch.
            .watches(
                Api::<PartialObjectMeta<Secret>>::namespaced(client.clone(), namespace),
                watcher::Config::default(),
                move |secret: PartialObjectMeta<Secret>| {
                    let namespace = secret.metadata.namespace.clone().unwrap_or_default();
                    let name = secret.metadata.name.clone().unwrap_or_default();
                    servers_in(&store, &namespace, |server| {
                        referenced_secrets(server).iter().any(|(s, _)| *s == name)
                    })
                },
            );
    }
    controller
        .reconcile_all_on(policy_changed)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((server, _)) => tracing::debug!(server = %server, "MCPServer reconciled"),
                // A failed reconcile is logged by `error_policy`; the rest (watches,
                // the queue) would otherwise go unseen.
                Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {}
                // A watch error can carry a decode error quoting a stored object's value.
                Err(err) => {
                    let error = mcpguard_core::redact::scrub(&err.to_string());
                    tracing::warn!(%error, "MCPServer controller")
                }
            }
        })
}

/// A tick each time what the webhook enforces changes (hot reload, MCPPolicy objects).
fn policy_changes(policies: Arc<PolicyStore>) -> impl Stream<Item = ()> + Send + 'static {
    let initial = policies.load_full();
    futures::stream::unfold((policies, initial), |(policies, last)| async move {
        loop {
            tokio::time::sleep(POLICY_POLL).await;
            let current = policies.load_full();
            if !current.same_enforcement(&last) {
                return Some(((), (policies, current)));
            }
        }
    })
}

/// Runs the controller while this replica holds the lease: starts it on winning, drops it
/// (aborting reconciles in flight) on losing, and restarts it when the policy's namespaces
/// change (its watches are per namespace).
pub async fn run(
    client: Client,
    policies: Arc<PolicyStore>,
    runtime_classes: Arc<dyn RuntimeClassLookup>,
    leader: tokio::sync::watch::Receiver<bool>,
) {
    let (client, policies, runtime_classes) = (&client, &policies, &runtime_classes);
    run_while_leading(leader, Cadence::Continuously, move |mut turn: Turn| async move {
        let namespaces = policies.load().covered_namespaces();
        tracing::info!(
            namespaces = %namespaces.join(","),
            "leading: MCPServer controller started"
        );
        let ctx = Arc::new(Context::for_store(
            client.clone(),
            policies.clone(),
            runtime_classes.clone(),
        ));
        let running = controller(
            client.clone(),
            &namespaces,
            ctx,
            policy_changes(policies.clone()),
        );
        let namespaces_changed = async {
            loop {
                tokio::time::sleep(POLICY_POLL).await;
                if policies.load().covered_namespaces() != namespaces {
                    return;
                }
            }
        };
        tokio::select! {
            () = running => {
                tracing::warn!("MCPServer controller stopped; restarting");
                tokio::time::sleep(RESTART_PAUSE).await;
            }
            lost = turn.lost() => {
                // Not lost but gone: the process is stopping, and the helper returns.
                if lost {
                    tracing::info!("lease lost: MCPServer controller stopped");
                }
            }
            () = namespaces_changed => {
                tracing::info!("the policy's namespaces changed: restarting the MCPServer controller");
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_five_seconds_to_five_minutes() {
        let seconds: Vec<u64> = (1..=10).map(|n| Backoff::delay(n).as_secs()).collect();
        assert_eq!(seconds, vec![5, 10, 20, 40, 80, 160, 300, 300, 300, 300]);
        assert_eq!(Backoff::delay(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn backoff_is_per_object_and_resets_on_success() {
        let backoff = Backoff::default();
        let seconds = |key: &str| backoff.failed(key).as_secs();
        assert_eq!(
            [seconds("mcp/a"), seconds("mcp/a"), seconds("mcp/a")],
            [5, 10, 20]
        );
        assert_eq!(seconds("mcp/b"), 5, "another object has its own count");
        assert_eq!(backoff.failures("mcp/a"), 3);
        backoff.reset("mcp/a");
        assert_eq!(backoff.failures("mcp/a"), 0);
        assert_eq!(seconds("mcp/a"), 5, "a success starts again at 5 s");
        assert_eq!(backoff.failures("mcp/b"), 1);
    }

    #[test]
    fn removal_patch_replaces_only_lists_with_extras() {
        let rendered = json!({"spec": {"template": {"spec": {
            "containers": [{"name": "mcp", "image": "a"}],
        }}}});
        let untouched = json!({"metadata": {"resourceVersion": "7"}, "spec": {"template": {"spec": {
            "containers": [{"name": "mcp", "image": "a", "terminationMessagePath": "/dev/termination-log"}],
        }}}});
        assert_eq!(removal_patch(&untouched, &rendered), None);
        let added = json!({"metadata": {"resourceVersion": "7"}, "spec": {"template": {"spec": {
            "containers": [{"name": "mcp", "image": "a"}, {"name": "sidecar", "image": "b"}],
            "volumes": [{"name": "extra", "emptyDir": {}}],
        }}}});
        assert_eq!(
            removal_patch(&added, &rendered),
            Some(json!([
                {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
                {"op": "replace", "path": "/spec/template/spec/containers", "value": [{"name": "mcp", "image": "a"}]},
                {"op": "remove", "path": "/spec/template/spec/volumes"},
            ]))
        );
    }
}
