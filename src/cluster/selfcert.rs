//! Certificate self-management against the API: the leader reads the certificate Secret,
//! asks `rotation::plan` what comes next, sets both webhook configurations' `caBundle` and
//! `namespaceSelector` as they must be, and only then writes the Secret.

use std::sync::Arc;

use base64::Engine as _;
use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::cluster::leader::{Cadence, run_while_leading};
use crate::webhook::tls::{self, SwappableCert};
use mcpguard_core::policy::PROTECTED_NAMESPACES;
use mcpguard_core::rotation::{self, KEY_TLS_CERT, KEY_TLS_KEY, RotationSettings, StoredState};

/// The namespace label kube-apiserver sets and users cannot change.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

#[derive(Clone)]
pub struct SelfManagedCerts {
    pub client: Client,
    pub namespace: String,
    pub secret_name: String,
    pub webhook_configuration: String,
    pub service: String,
    pub settings: RotationSettings,
    pub serving: Arc<SwappableCert>,
}

#[derive(Debug, thiserror::Error)]
pub enum SelfCertError {
    #[error("kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Rotation(#[from] rotation::RotationError),
    #[error("stored certificate cannot be served: {0}")]
    Tls(#[from] tls::TlsError),
}

/// The ValidatingAdmissionPolicy that fences mcpguard's own ServiceAccount on its webhook
/// configurations (webhook-manifests/webhook-fence/).
pub const WEBHOOK_FENCE: &str = "mcpguard-webhook-fence";

/// Whether the API server refused a write because the webhook fence denied it. A
/// ValidatingAdmissionPolicy denial names the policy in its message ("ValidatingAdmission
/// Policy 'mcpguard-webhook-fence' with binding '...' denied request: ...").
pub fn denied_by_fence(err: &SelfCertError) -> bool {
    match err {
        SelfCertError::Api(kube::Error::Api(status)) => {
            status.message.contains("ValidatingAdmissionPolicy")
                && status.message.contains(&format!("'{WEBHOOK_FENCE}'"))
        }
        _ => false,
    }
}

/// What one pass did, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub reason: &'static str,
    pub secret_written: bool,
    pub configurations_patched: usize,
}

impl SelfManagedCerts {
    /// One reconcile pass. Safe to repeat: a pass with nothing to do writes nothing.
    pub async fn reconcile(
        &self,
        now: Timestamp,
        namespaces: &[String],
    ) -> Result<PassReport, SelfCertError> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut secret = secrets.get(&self.secret_name).await?;
        let stored = stored_state(&secret);
        let names = mcpguard_core::certs::service_names(&self.service, &self.namespace);
        let plan = rotation::plan(&stored, &names, now, self.settings)?;
        // The API servers get the bundle before the Secret records the step: the stored
        // phase and its timestamp start the propagation wait, so a pass whose patches failed
        // must not store them, or a later pass would switch the serving certificate to a CA
        // no API server was ever given. Should the write below then fail (a conflict), the
        // bundle may hold a CA whose key was never stored: harmless, as nobody can sign with
        // it and a rotation step's bundle still holds every CA the stored state relies on
        // (only a fresh start's drops them, as it does when its write succeeds); the next
        // pass plans again from what is stored.
        let ca_bundle = base64::engine::general_purpose::STANDARD.encode(plan.ca_bundle.as_bytes());
        // A waiting step whose bundle a configuration no longer carries (restored from a
        // backup, or overwritten by a second leader whose own Secret write then failed):
        // the wait measures how long the API servers have had the bundle, so it starts
        // over, stored before the bundle goes out again (a longer wait is safe, a shorter
        // one is not).
        let mut reason = plan.reason;
        let mut stored = stored;
        let mut wait_restarted = false;
        if plan.secret.is_none()
            && let Some(restarted) = rotation::restart_wait(&stored, now)
            && lacks_bundle(&self.client, &self.webhook_configuration, &ca_bundle).await?
        {
            tracing::warn!(
                "a webhook configuration lost the caBundle of this rotation step; publishing it again, the propagation wait starts over"
            );
            write_state(&mut secret, &restarted);
            secret = secrets
                .replace(&self.secret_name, &PostParams::default(), &secret)
                .await?;
            stored = restarted;
            wait_restarted = true;
            reason = "caBundle published again: the propagation wait starts over";
        }
        let selector = namespace_selector(namespaces);
        let configurations_patched = patch_configurations(
            &self.client,
            &self.webhook_configuration,
            Some(&ca_bundle),
            &selector,
        )
        .await?;
        let serving = plan.secret.as_ref().unwrap_or(&stored);
        let secret_written = plan.secret.is_some() || wait_restarted;
        if let Some(next) = &plan.secret {
            write_state(&mut secret, next);
            // `replace` carries the resourceVersion just read: a concurrent writer makes this
            // fail with a conflict, and the next pass starts again from what is stored.
            secrets
                .replace(&self.secret_name, &PostParams::default(), &secret)
                .await?;
        }
        self.serve_stored(serving)?;
        Ok(PassReport {
            reason,
            secret_written,
            configurations_patched,
        })
    }

    /// The leader serves what it stored at once instead of waiting for its own volume.
    fn serve_stored(&self, state: &StoredState) -> Result<(), SelfCertError> {
        let (Some(cert), Some(key)) = (state.data.get(KEY_TLS_CERT), state.data.get(KEY_TLS_KEY))
        else {
            return Ok(());
        };
        let certified =
            tls::certified_key(cert.as_bytes(), key.as_bytes()).map_err(tls::TlsError::from)?;
        let unchanged = self
            .serving
            .current()
            .is_some_and(|current| current.cert == certified.cert);
        if !unchanged {
            self.serving.swap(certified);
        }
        Ok(())
    }
}

/// Keeps both webhook configurations' `namespaceSelector` equal to the covered namespaces,
/// leaving `caBundle` to whoever manages it (cert-manager's CA injector, or the certificate
/// passes). Returns how many configurations were patched.
pub async fn sync_selectors(
    client: &Client,
    configuration: &str,
    namespaces: &[String],
) -> Result<usize, kube::Error> {
    patch_configurations(client, configuration, None, &namespace_selector(namespaces)).await
}

/// Patches each configuration whose webhooks differ from the wanted selector (and bundle,
/// when given).
async fn patch_configurations(
    client: &Client,
    name: &str,
    ca_bundle: Option<&str>,
    selector: &Value,
) -> Result<usize, kube::Error> {
    let mutating =
        patch_if_needed::<MutatingWebhookConfiguration>(client, name, ca_bundle, selector).await?;
    let validating =
        patch_if_needed::<ValidatingWebhookConfiguration>(client, name, ca_bundle, selector)
            .await?;
    let configurations_patched = mutating + validating;
    Ok(configurations_patched)
}

/// Whether a webhook of either configuration lacks `ca_bundle` (base64).
async fn lacks_bundle(client: &Client, name: &str, ca_bundle: &str) -> Result<bool, kube::Error> {
    fn lacks(entries: &[WebhookEntry], ca_bundle: &str) -> bool {
        entries
            .iter()
            .any(|webhook| webhook.ca_bundle.as_deref() != Some(ca_bundle))
    }
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    if lacks(&mutating.get(name).await?.webhook_entries(), ca_bundle) {
        return Ok(true);
    }
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    Ok(lacks(
        &validating.get(name).await?.webhook_entries(),
        ca_bundle,
    ))
}

/// Patches one configuration when its webhooks differ from what they must be; 1 if it did.
async fn patch_if_needed<K>(
    client: &Client,
    name: &str,
    ca_bundle: Option<&str>,
    selector: &Value,
) -> Result<usize, kube::Error>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::ClusterResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + WebhookEntries,
{
    let api: Api<K> = Api::all(client.clone());
    let entries = api.get(name).await?.webhook_entries();
    let Some(patch) = configuration_patch(&entries, ca_bundle, selector) else {
        return Ok(0);
    };
    api.patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await?;
    Ok(1)
}

/// The webhooks of a mutating or validating configuration, as self-management sees them.
trait WebhookEntries {
    fn webhook_entries(&self) -> Vec<WebhookEntry>;
}

macro_rules! webhook_entries {
    ($configuration:ty) => {
        impl WebhookEntries for $configuration {
            fn webhook_entries(&self) -> Vec<WebhookEntry> {
                self.webhooks
                    .iter()
                    .flatten()
                    .map(|w| {
                        let bundle = w.client_config.ca_bundle.as_ref();
                        WebhookEntry::new(&w.name, bundle, w.namespace_selector.as_ref())
                    })
                    .collect()
            }
        }
    };
}

webhook_entries!(MutatingWebhookConfiguration);
webhook_entries!(ValidatingWebhookConfiguration);

/// One webhook of a configuration, as far as self-management cares.
struct WebhookEntry {
    name: String,
    ca_bundle: Option<String>,
    namespace_selector: Option<Value>,
}

impl WebhookEntry {
    fn new(name: &str, ca_bundle: Option<&ByteString>, selector: Option<&LabelSelector>) -> Self {
        WebhookEntry {
            name: name.to_owned(),
            ca_bundle: ca_bundle.map(|b| base64::engine::general_purpose::STANDARD.encode(&b.0)),
            namespace_selector: selector.and_then(|s| serde_json::to_value(s).ok()),
        }
    }
}

/// The selector both configurations must carry: the claimed namespaces, and never a
/// protected one, even if a claim slipped through.
pub fn namespace_selector(namespaces: &[String]) -> Value {
    let mut claimed: Vec<&str> = namespaces
        .iter()
        .map(String::as_str)
        .filter(|ns| !PROTECTED_NAMESPACES.contains(ns))
        .collect();
    claimed.sort_unstable();
    claimed.dedup();
    json!({
        "matchExpressions": [
            {"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": claimed},
            {"key": NAMESPACE_NAME_LABEL, "operator": "NotIn", "values": PROTECTED_NAMESPACES},
        ]
    })
}

/// A JSON Patch setting `caBundle` (when given) and `namespaceSelector` on every webhook
/// whose values differ; each webhook's writes are guarded by a `test` of its name, so a
/// concurrent reorder makes the patch fail instead of writing the wrong entry.
fn configuration_patch(
    webhooks: &[WebhookEntry],
    ca_bundle: Option<&str>,
    selector: &Value,
) -> Option<json_patch::Patch> {
    let mut operations = Vec::new();
    for (index, webhook) in webhooks.iter().enumerate() {
        let bundle_ok = ca_bundle.is_none_or(|bundle| webhook.ca_bundle.as_deref() == Some(bundle));
        let selector_ok = webhook.namespace_selector.as_ref() == Some(selector);
        if bundle_ok && selector_ok {
            continue;
        }
        operations.push(
            json!({"op": "test", "path": format!("/webhooks/{index}/name"), "value": webhook.name}),
        );
        if let Some(bundle) = ca_bundle {
            operations.push(json!({"op": "add", "path": format!("/webhooks/{index}/clientConfig/caBundle"), "value": bundle}));
        }
        operations.push(json!({"op": "add", "path": format!("/webhooks/{index}/namespaceSelector"), "value": selector}));
    }
    if operations.is_empty() {
        return None;
    }
    serde_json::from_value(Value::Array(operations)).ok()
}

fn stored_state(secret: &Secret) -> StoredState {
    let data = secret
        .data
        .iter()
        .flatten()
        .filter_map(|(key, value)| Some((key.clone(), String::from_utf8(value.0.clone()).ok()?)))
        .collect();
    let annotations = secret
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(key, _)| key.starts_with("mcpguard.dev/rotation-"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    StoredState { data, annotations }
}

fn write_state(secret: &mut Secret, state: &StoredState) {
    secret.data = Some(
        state
            .data
            .iter()
            .map(|(key, value)| (key.clone(), ByteString(value.as_bytes().to_vec())))
            .collect(),
    );
    secret.string_data = None;
    let annotations = secret
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    annotations.retain(|key, _| !key.starts_with("mcpguard.dev/rotation-"));
    annotations.extend(state.annotations.clone());
    // `managedFields` must not be sent back on an update.
    secret.metadata.managed_fields = None;
}

impl SelfManagedCerts {
    /// Runs passes every `interval` while this replica leads (and at once on becoming
    /// leader). Errors are logged and retried on the next pass.
    pub async fn run(
        self,
        leader: tokio::sync::watch::Receiver<bool>,
        namespaces: impl Fn() -> Vec<String>,
        interval: std::time::Duration,
        metrics: Arc<crate::metrics::Metrics>,
    ) {
        let (manager, namespaces, metrics) = (&self, &namespaces, &metrics);
        run_while_leading(leader, Cadence::Every(interval), move |_| async move {
            match manager.reconcile(Timestamp::now(), &namespaces()).await {
                Ok(report) if report.secret_written || report.configurations_patched > 0 => {
                    tracing::info!(
                        reason = report.reason,
                        secret_written = report.secret_written,
                        configurations_patched = report.configurations_patched,
                        "certificates reconciled"
                    );
                }
                Ok(report) => tracing::debug!(reason = report.reason, "certificates current"),
                Err(err) if denied_by_fence(&err) => {
                    // Every pass will be refused the same way until someone changes the
                    // configurations or the fence: rotation has stopped, so say it loudly.
                    metrics.webhook_fence_denials.inc();
                    tracing::error!(
                        error = %err,
                        "the webhook fence (ValidatingAdmissionPolicy {WEBHOOK_FENCE}) refused \
                         mcpguard's own patch of its webhook configurations: certificate \
                         rotation and namespace selection are stalled until the \
                         configurations are restored as installed"
                    )
                }
                Err(err) => {
                    tracing::warn!(error = %err, "certificate reconcile failed; retrying")
                }
            }
        })
        .await;
    }
}

#[cfg(test)]
mod fence_tests {
    use super::*;

    fn api_error(code: u16, message: &str) -> SelfCertError {
        SelfCertError::Api(kube::Error::Api(
            kube::core::Status::failure(message, "Forbidden")
                .with_code(code)
                .boxed(),
        ))
    }

    #[test]
    fn a_denial_by_the_webhook_fence_is_recognised() {
        let denied = api_error(
            403,
            "mutatingwebhookconfigurations.admissionregistration.k8s.io \"mcpguard\" is forbidden: ValidatingAdmissionPolicy 'mcpguard-webhook-fence' with binding 'mcpguard-webhook-fence' denied request: mcpguard's ServiceAccount may change only clientConfig.caBundle and namespaceSelector of its webhooks",
        );
        assert!(denied_by_fence(&denied));
    }

    #[test]
    fn other_refusals_are_not_the_fence() {
        for message in [
            "mutatingwebhookconfigurations.admissionregistration.k8s.io \"mcpguard\" is forbidden: User \"system:serviceaccount:mcpguard-system:mcpguard\" cannot patch resource",
            "ValidatingAdmissionPolicy 'someone-elses-policy' with binding 'x' denied request: no",
        ] {
            assert!(!denied_by_fence(&api_error(403, message)), "{message}");
        }
    }
}
