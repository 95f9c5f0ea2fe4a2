//! `mcpguard audit` (also `kubectl mcpguard audit` when the binary is on PATH as
//! `kubectl-mcpguard`): what mcpguard denied recently and for whom (its `PolicyViolation`
//! Events), and which running objects fail today's policy (its PolicyReports). Exit 1 when
//! anything fails today's policy, so the command can gate a pipeline.
//!
//! `--apply-policy` restarts the Deployments whose running pods drifted (admitted under an
//! older policy), as `kubectl rollout restart` does, so the webhook judges their pods again.
//!
//! This module is the I/O (`gather`, `resolve_owners`, `apply_policy`, the conversation)
//! around the core's pure parts: `mcpguard_core::audit::findings` reads the Events and
//! PolicyReports into rows and renders them, `mcpguard_core::audit::restart` plans the
//! restarts.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::ApiResource;
use serde_json::Value;

use crate::cluster::audit_scan::report_resource;
use crate::cmd::args::AuditArgs;
/// The `--output` formats, defined with the arguments (so `args` never names this module).
pub use crate::cmd::args::AuditOutput;
use mcpguard_core::audit::findings::{AuditData, PodRef, denials_from, violations_from};
use mcpguard_core::audit::note::REASON_VIOLATION;
use mcpguard_core::audit::report::{MANAGED_BY, MANAGED_BY_LABEL, ReportApi};
use mcpguard_core::audit::restart::{Plan, PodOwner, plan, render_plan, restart_patch};

/// Exit codes: the contract for CI pipelines.
pub const EXIT_CLEAN: u8 = 0;
pub const EXIT_VIOLATIONS: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// The field manager of the restart patch.
pub const FIELD_MANAGER: &str = "mcpguard-audit";

/// What `gather` looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditOptions {
    /// Empty: all namespaces.
    pub namespaces: Vec<String>,
    pub since: SignedDuration,
    /// The report APIs read, in this order.
    pub apis: Vec<ReportApi>,
}

impl AuditOptions {
    pub fn from_args(args: &AuditArgs) -> AuditOptions {
        AuditOptions {
            namespaces: args.namespace.clone(),
            since: args.since,
            apis: args.report_api.apis(),
        }
    }

    /// Each namespace once, in order; `[None]` for all namespaces.
    fn scopes(&self) -> Vec<Option<&str>> {
        let unique: BTreeSet<&str> = self
            .namespaces
            .iter()
            .map(String::as_str)
            .filter(|n| !n.is_empty())
            .collect();
        if unique.is_empty() {
            vec![None]
        } else {
            unique.into_iter().map(Some).collect()
        }
    }
}

// --- reading the cluster -----------------------------------------------------------------

fn describe(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => {
            let message = if status.message.is_empty() {
                status.reason.as_str()
            } else {
                status.message.as_str()
            };
            format!("{message} (HTTP {})", status.code)
        }
        other => other.to_string(),
    }
}

fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}

fn scope_phrase(namespace: Option<&str>) -> String {
    match namespace {
        Some(namespace) => format!("in namespace {namespace}"),
        None => "in all namespaces".to_owned(),
    }
}

fn dynamic_api(
    client: &Client,
    namespace: Option<&str>,
    resource: &ApiResource,
) -> Api<DynamicObject> {
    match namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

async fn list_values(
    api: &Api<DynamicObject>,
    params: &ListParams,
) -> Result<Vec<Value>, kube::Error> {
    api.list(params)
        .await?
        .items
        .iter()
        .map(|item| serde_json::to_value(item).map_err(kube::Error::SerdeError))
        .collect()
}

async fn list_events(client: &Client, namespace: Option<&str>) -> Result<Vec<Value>, String> {
    let resource = ApiResource::erase::<k8s_openapi::api::events::v1::Event>(&());
    let api = dynamic_api(client, namespace, &resource);
    let selector = format!("reason={REASON_VIOLATION}");
    let result = match list_values(&api, &ListParams::default().fields(&selector)).await {
        // An API server that cannot select Events by reason: filter here instead.
        Err(err) if is_status(&err, 400) => list_values(&api, &ListParams::default()).await,
        other => other,
    };
    result.map_err(|err| {
        format!(
            "cannot list Events (events.k8s.io/v1) {}: {}",
            scope_phrase(namespace),
            describe(&err)
        )
    })
}

async fn list_reports(
    client: &Client,
    namespace: Option<&str>,
    api: ReportApi,
) -> Result<Vec<Value>, String> {
    let resource = report_resource(api);
    let what = format!("{} API ({})", api.kind(), api.api_version());
    let api = dynamic_api(client, namespace, &resource);
    let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY}");
    list_values(&api, &ListParams::default().labels(&selector))
        .await
        .map_err(|err| {
            if is_status(&err, 404) {
                format!(
                    "the {what} is not installed in this cluster: install its CRD so mcpguard's \
                     background audit can write reports"
                )
            } else {
                format!(
                    "cannot list {}s ({}) {}: {}",
                    resource.kind,
                    resource.api_version,
                    scope_phrase(namespace),
                    describe(&err)
                )
            }
        })
}

/// Reads the Events and PolicyReports of the namespaces in `options` (all when none).
pub async fn gather(
    client: &Client,
    options: &AuditOptions,
    now: Timestamp,
) -> Result<AuditData, String> {
    let since = now - options.since;
    let mut events = Vec::new();
    for namespace in options.scopes() {
        events.extend(list_events(client, namespace).await?);
    }
    let mut reports = Vec::new();
    for api in &options.apis {
        for namespace in options.scopes() {
            reports.extend(list_reports(client, namespace, *api).await?);
        }
    }
    let (violations, drifting_pods) = violations_from(&reports);
    Ok(AuditData {
        since,
        denials: denials_from(&events, since),
        violations,
        drifting_pods,
    })
}

// --- rendering ---------------------------------------------------------------------------

/// The report in `format`; ends with a newline.
pub fn render(data: &AuditData, format: AuditOutput) -> String {
    match format {
        AuditOutput::Json => data.to_json(),
        AuditOutput::Yaml => data.to_yaml(),
        AuditOutput::Table => data.to_table(),
    }
}

// --- --apply-policy ----------------------------------------------------------------------

fn controller_of(owners: Option<&Vec<OwnerReference>>) -> Option<&OwnerReference> {
    owners?.iter().find(|o| o.controller == Some(true))
}

/// The owner of each pod: pod -> controller ReplicaSet -> controller Deployment. Each
/// ReplicaSet is read once. A pod gone since its report was written is not rollable.
pub async fn resolve_owners(
    client: &Client,
    pods: &[PodRef],
) -> Result<Vec<(PodRef, PodOwner)>, String> {
    let mut replica_sets: BTreeMap<(String, String), PodOwner> = BTreeMap::new();
    let mut owners = Vec::new();
    for pod in pods {
        let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
        let object = match api.get_opt(&pod.name).await {
            Ok(Some(object)) => object,
            Ok(None) => {
                owners.push((pod.clone(), PodOwner::Other("pod no longer exists".into())));
                continue;
            }
            Err(err) => {
                return Err(format!(
                    "cannot read pod {}/{}: {}",
                    pod.namespace,
                    pod.name,
                    describe(&err)
                ));
            }
        };
        let owner = match controller_of(object.metadata.owner_references.as_ref()) {
            None => PodOwner::Other("no controller".into()),
            Some(owner)
                if owner.kind != "ReplicaSet" || !owner.api_version.starts_with("apps/") =>
            {
                PodOwner::Other(format!("controller: {}/{}", owner.kind, owner.name))
            }
            Some(owner) => {
                let key = (pod.namespace.clone(), owner.name.clone());
                if let Some(known) = replica_sets.get(&key) {
                    known.clone()
                } else {
                    let resolved = replica_set_owner(client, &pod.namespace, &owner.name).await?;
                    replica_sets.insert(key, resolved.clone());
                    resolved
                }
            }
        };
        owners.push((pod.clone(), owner));
    }
    Ok(owners)
}

async fn replica_set_owner(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<PodOwner, String> {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let replica_set = api.get_opt(name).await.map_err(|err| {
        format!(
            "cannot read replicaset {namespace}/{name}: {}",
            describe(&err)
        )
    })?;
    let Some(replica_set) = replica_set else {
        return Ok(PodOwner::Other(format!(
            "ReplicaSet/{name} no longer exists"
        )));
    };
    Ok(
        match controller_of(replica_set.metadata.owner_references.as_ref()) {
            Some(owner) if owner.kind == "Deployment" && owner.api_version.starts_with("apps/") => {
                PodOwner::Deployment(owner.name.clone())
            }
            Some(owner) => PodOwner::Other(format!(
                "controller: ReplicaSet/{name}, owned by {}/{}",
                owner.kind, owner.name
            )),
            None => PodOwner::Other(format!("controller: ReplicaSet/{name}")),
        },
    )
}

/// Restarts each Deployment of the plan; one result per Deployment, in plan order.
pub async fn apply_policy(
    client: &Client,
    plan: &Plan,
    now: Timestamp,
) -> Vec<(String, Result<(), String>)> {
    let patch = restart_patch(now);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let mut outcomes = Vec::new();
    for restart in &plan.restarts {
        let api: Api<Deployment> = Api::namespaced(client.clone(), &restart.namespace);
        let result = api
            .patch(&restart.deployment, &params, &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|err| describe(&err));
        outcomes.push((
            format!("{}/{}", restart.namespace, restart.deployment),
            result,
        ));
    }
    outcomes
}

/// Asks on `input`; only `y` or `yes` (any case) agree. End of input refuses.
fn confirm(input: &mut dyn BufRead, talk: &mut dyn Write) -> bool {
    let _ = write!(talk, "Proceed? [y/N] ");
    let _ = talk.flush();
    let mut answer = String::new();
    let read = input.read_line(&mut answer).unwrap_or(0);
    if read == 0 || !answer.ends_with('\n') {
        let _ = writeln!(talk);
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

// --- the command -------------------------------------------------------------------------

/// The whole command against `client`: report on `out`, errors on `err`, the
/// `--apply-policy` conversation on `out` for tables and on `err` for JSON/YAML (so the
/// document stays parseable), answers read from `input`. Returns the exit code.
pub async fn run(
    client: Client,
    args: &AuditArgs,
    now: Timestamp,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let data = match gather(&client, &AuditOptions::from_args(args), now).await {
        Ok(data) => data,
        Err(message) => {
            let _ = writeln!(err, "mcpguard audit: {message}");
            return EXIT_ERROR;
        }
    };
    let _ = out.write_all(render(&data, args.output).as_bytes());
    let code = if data.violations.is_empty() {
        EXIT_CLEAN
    } else {
        EXIT_VIOLATIONS
    };
    if !args.apply_policy {
        return code;
    }
    if args.output == AuditOutput::Table {
        let _ = writeln!(out);
        apply_step(&client, &data, args.yes, now, input, out, err, code).await
    } else {
        // `err` carries both the conversation and the errors.
        let mut errors = Vec::new();
        let code = apply_step(&client, &data, args.yes, now, input, err, &mut errors, code).await;
        let _ = err.write_all(&errors);
        code
    }
}

#[allow(clippy::too_many_arguments)]
async fn apply_step(
    client: &Client,
    data: &AuditData,
    yes: bool,
    now: Timestamp,
    input: &mut dyn BufRead,
    talk: &mut dyn Write,
    err: &mut dyn Write,
    code: u8,
) -> u8 {
    let owners = match resolve_owners(client, &data.drifting_pods).await {
        Ok(owners) => owners,
        Err(message) => {
            let _ = writeln!(err, "mcpguard audit: {message}");
            return EXIT_ERROR;
        }
    };
    let plan = plan(&owners, &data.violations);
    let _ = talk.write_all(render_plan(&plan).as_bytes());
    if plan.restarts.is_empty() {
        return code;
    }
    if !yes && !confirm(input, talk) {
        let _ = writeln!(talk, "Aborted: nothing restarted.");
        return code;
    }
    let mut code = code;
    for (deployment, result) in apply_policy(client, &plan, now).await {
        match result {
            Ok(()) => {
                let _ = writeln!(talk, "restarted deployment {deployment}");
            }
            Err(message) => {
                let _ = writeln!(
                    err,
                    "mcpguard audit: cannot restart deployment {deployment}: {message}"
                );
                code = EXIT_ERROR;
            }
        }
    }
    let _ = talk.flush();
    code
}

/// `mcpguard audit` from `main`: the current kubeconfig context (or the in-cluster service
/// account), the real clock, stdin and stdout.
pub fn main(args: &AuditArgs) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("mcpguard audit: cannot start the async runtime: {err}");
            return EXIT_ERROR;
        }
    };
    runtime.block_on(async {
        crate::webhook::tls::provider();
        let config = match cluster_config(args).await {
            Ok(config) => config,
            Err(message) => {
                eprintln!("mcpguard audit: {message}");
                return EXIT_ERROR;
            }
        };
        let client = match Client::try_from(config) {
            Ok(client) => client,
            Err(err) => {
                eprintln!("mcpguard audit: cannot create a Kubernetes client: {err}");
                return EXIT_ERROR;
            }
        };
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        run(
            client,
            args,
            Timestamp::now(),
            &mut input,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )
        .await
    })
}

/// The cluster as kubectl would pick it: `--kubeconfig` and `--context` when given, else the
/// current context of `$KUBECONFIG` or `~/.kube/config`, else the pod's service account.
async fn cluster_config(args: &AuditArgs) -> Result<kube::Config, String> {
    let options = kube::config::KubeConfigOptions {
        context: args.context.clone(),
        ..Default::default()
    };
    match (&args.kubeconfig, &args.context) {
        (Some(path), _) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|err| {
                // kube's message repeats the path, quoted; the I/O or parse error is enough.
                let reason = std::error::Error::source(&err)
                    .map_or_else(|| err.to_string(), ToString::to_string);
                format!("cannot read kubeconfig {}: {reason}", path.display())
            })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|err| format!("kubeconfig {}: {err}", path.display()))
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|err| format!("kubeconfig: {err}")),
        (None, None) => kube::Config::infer().await.map_err(|err| {
            let kubeconfig = std::error::Error::source(&err)
                .map_or_else(|| err.to_string(), ToString::to_string);
            format!(
                "no Kubernetes cluster configured: {kubeconfig}, and not running in a pod; \
                 set KUBECONFIG or select a context with `kubectl config use-context`"
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirm_accepts_only_yes() {
        for (answer, expected) in [
            ("y\n", true),
            ("YES\n", true),
            (" yes \n", true),
            ("n\n", false),
            ("\n", false),
            ("yep\n", false),
            ("", false),
        ] {
            let mut talk = Vec::new();
            assert_eq!(
                confirm(&mut answer.as_bytes(), &mut talk),
                expected,
                "{answer:?}"
            );
            let shown = String::from_utf8(talk).expect("UTF-8");
            let expected_prompt = if answer.is_empty() {
                "Proceed? [y/N] \n"
            } else {
                "Proceed? [y/N] "
            };
            assert_eq!(shown, expected_prompt);
        }
    }
}
