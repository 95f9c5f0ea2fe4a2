//! `mcpguard audit` (also `kubectl mcpguard audit` when the binary is on PATH as
//! `kubectl-mcpguard`): what mcpguard denied recently and for whom (its `PolicyViolation`
//! Events), and which running objects fail today's policy (its PolicyReports). Exit 1 when
//! anything fails today's policy, so the command can gate a pipeline.
//!
//! `--apply-policy` restarts the Deployments whose running pods drifted (admitted under an
//! older policy), as `kubectl rollout restart` does, so the webhook judges their pods again.
//!
//! The I/O (`gather`, `resolve_owners`, `apply_policy`) sits around pure parts
//! (`denials_from`, `violations_from`, `plan`, `render`, `render_plan`), so tests are exact.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};

use clap::ValueEnum;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::ApiResource;
use serde::Serialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::cluster::audit_scan::policy_report_resource;
use crate::cluster::events::{REASON_VIOLATION, REPORTING_CONTROLLER};
use crate::cmd::args::AuditArgs;
use mcpguard_core::audit::report::{MANAGED_BY, MANAGED_BY_LABEL};

/// Exit codes: the contract for CI pipelines.
pub const EXIT_CLEAN: u8 = 0;
pub const EXIT_VIOLATIONS: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// The pod-template annotation `kubectl rollout restart` sets.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// The field manager of the restart patch.
pub const FIELD_MANAGER: &str = "mcpguard-audit";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuditOutput {
    /// Aligned columns (also accepts `text`, so a shared MCPGUARD_OUTPUT=text works).
    #[value(alias = "text")]
    Table,
    Json,
    Yaml,
}

// --- --since ---------------------------------------------------------------------------

/// `--since`: one or more `<number><unit>` groups, units `s`, `m`, `h`, `d`, `w`
/// (`30m`, `24h`, `7d`, `1h30m`).
pub fn parse_since(text: &str) -> Result<Duration, String> {
    let syntax = || {
        format!(
            "invalid duration {text:?}: expected a number and a unit (s, m, h, d or w), such as 30m, 24h or 7d"
        )
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(syntax());
    }
    let mut total: i64 = 0;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(syntax)?;
        if digits == 0 {
            return Err(syntax());
        }
        let too_large = || format!("invalid duration {text:?}: too large");
        let number: i64 = rest[..digits].parse().map_err(|_| too_large())?;
        let unit = rest[digits..].chars().next().ok_or_else(syntax)?;
        let seconds = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(syntax()),
        };
        total = number
            .checked_mul(seconds)
            .and_then(|s| total.checked_add(s))
            .filter(|s| *s <= MAX_SINCE_SECONDS)
            .ok_or_else(too_large)?;
        rest = &rest[digits + unit.len_utf8()..];
    }
    if total == 0 {
        return Err(format!(
            "invalid duration {text:?}: must be greater than zero"
        ));
    }
    Ok(Duration::seconds(total))
}

/// 100 years: far beyond any Event's lifetime, and far from overflowing a date.
const MAX_SINCE_SECONDS: i64 = 100 * 365 * 86_400;

// --- Event notes -------------------------------------------------------------------------

/// The user and the checks in a violation Event's note, as `audit::events::event_for`
/// writes it (keep the two in step):
///
/// `policy "P" denied CREATE of pods "x" by USER: check1, check2`
///
/// (`admitted` instead of `denied` in warn and audit mode; the policy and object names are
/// Rust `{:?}` strings). `None` for a note of another shape (e.g. a `PolicyMutated` one).
/// A note cut at the API's 1 KiB limit keeps the checks that fit; the last may end in `...`.
/// A trailing unverified-owner mention (`events::note_with_unverified_owner`) is ignored.
pub fn parse_note(note: &str) -> Option<(String, Vec<String>)> {
    let mark = crate::cluster::events::UNVERIFIED_OWNER_MARK;
    let note = match note.rfind(mark) {
        Some(at) if note.ends_with(']') => &note[..at],
        _ => note,
    };
    let rest = note.strip_prefix("policy ")?;
    let (_policy, rest) = split_debug_string(rest)?;
    let rest = rest
        .strip_prefix(" denied ")
        .or_else(|| rest.strip_prefix(" admitted "))?;
    let (operation, rest) = rest.split_once(" of ")?;
    if operation.is_empty() || operation.contains(' ') {
        return None;
    }
    let (resource, rest) = rest.split_once(' ')?;
    if resource.is_empty() {
        return None;
    }
    let (_object, rest) = split_debug_string(rest)?;
    let rest = rest.strip_prefix(" by ")?;
    // Check IDs never contain ": "; a user name might.
    let (user, checks) = rest.rsplit_once(": ")?;
    let checks = checks
        .split(", ")
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    Some((user.to_owned(), checks))
}

/// A string as `{:?}` writes it, at the start of `text`: its value and what follows it.
fn split_debug_string(text: &str) -> Option<(String, &str)> {
    let body = text.strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((value, &body[at + 1..])),
            '\\' => {
                let (_, escaped) = chars.next()?;
                match escaped {
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    'r' => value.push('\r'),
                    '0' => value.push('\0'),
                    'u' => {
                        // \u{XXXX}
                        let mut hex = String::new();
                        let (_, open) = chars.next()?;
                        if open != '{' {
                            return None;
                        }
                        for (_, h) in chars.by_ref() {
                            if h == '}' {
                                break;
                            }
                            hex.push(h);
                        }
                        value.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    other => value.push(other),
                }
            }
            other => value.push(other),
        }
    }
    None
}

// --- what is gathered --------------------------------------------------------------------

/// One violation Event: a denial (or, in warn/audit mode, an admission with violations).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Denial {
    /// When it last happened, RFC 3339 in UTC, to the second.
    pub time: String,
    pub namespace: String,
    /// `Kind/name` of the Event's `regarding` object.
    pub object: String,
    /// `Denied` or `Admitted`.
    pub action: String,
    /// `None` when the note does not have the expected shape.
    pub user: Option<String>,
    pub checks: Vec<String>,
    /// How many times (the Event's series count, else 1).
    pub count: u64,
}

/// One failing check of one object, from its PolicyReport.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CurrentViolation {
    pub namespace: String,
    /// `Kind/name` of the report's scope.
    pub object: String,
    pub check: String,
    pub message: String,
}

/// A running pod.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditData {
    /// Denials are those at or after this instant.
    pub since: OffsetDateTime,
    pub denials: Vec<Denial>,
    pub violations: Vec<CurrentViolation>,
    /// Pods whose PolicyReport has failing checks (what `--apply-policy` rolls).
    pub drifting_pods: Vec<PodRef>,
}

/// What `gather` looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditOptions {
    /// Empty: all namespaces.
    pub namespaces: Vec<String>,
    pub since: Duration,
}

impl AuditOptions {
    pub fn from_args(args: &AuditArgs) -> AuditOptions {
        AuditOptions {
            namespaces: args.namespace.clone(),
            since: args.since,
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

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn parse_time(value: &Value, pointer: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text(value, pointer)?, &Rfc3339).ok()
}

/// RFC 3339 in UTC, to the second (what `kubectl` prints).
pub fn format_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// When an Event last happened: its series' last observation, else its eventTime, else its
/// creation.
pub fn event_time(event: &Value) -> Option<OffsetDateTime> {
    parse_time(event, "/series/lastObservedTime")
        .or_else(|| parse_time(event, "/eventTime"))
        .or_else(|| parse_time(event, "/metadata/creationTimestamp"))
}

/// mcpguard's violation Events (`events.k8s.io/v1` objects) at or after `since`, oldest
/// first. Events of other controllers and reasons are left out.
pub fn denials_from(events: &[Value], since: OffsetDateTime) -> Vec<Denial> {
    let mut found: Vec<(OffsetDateTime, Denial)> = events
        .iter()
        .filter(|e| text(e, "/reportingController") == Some(REPORTING_CONTROLLER))
        .filter(|e| text(e, "/reason") == Some(REASON_VIOLATION))
        .filter_map(|event| {
            let at = event_time(event).filter(|at| *at >= since)?;
            let note = text(event, "/note").unwrap_or_default();
            let (user, checks) = match parse_note(note) {
                Some((user, checks)) => (Some(user), checks),
                None => (None, Vec::new()),
            };
            let namespace = text(event, "/metadata/namespace")
                .or_else(|| text(event, "/regarding/namespace"))
                .unwrap_or_default();
            let object = format!(
                "{}/{}",
                text(event, "/regarding/kind").unwrap_or("?"),
                text(event, "/regarding/name").unwrap_or("?")
            );
            let count = event
                .pointer("/series/count")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            Some((
                at,
                Denial {
                    time: format_time(at),
                    namespace: namespace.to_owned(),
                    object,
                    action: text(event, "/action").unwrap_or_default().to_owned(),
                    user,
                    checks,
                    count,
                },
            ))
        })
        .collect();
    found.sort_by(|(a_at, a), (b_at, b)| {
        (a_at, &a.namespace, &a.object).cmp(&(b_at, &b.namespace, &b.object))
    });
    found.into_iter().map(|(_, denial)| denial).collect()
}

/// The failing results of mcpguard's PolicyReports (by namespace and object, each report's
/// results in its order), and the pods whose reports have failures.
pub fn violations_from(reports: &[Value]) -> (Vec<CurrentViolation>, Vec<PodRef>) {
    let mut violations = Vec::new();
    let mut pods = BTreeSet::new();
    for report in reports {
        let namespace = text(report, "/scope/namespace")
            .or_else(|| text(report, "/metadata/namespace"))
            .unwrap_or_default();
        let kind = text(report, "/scope/kind").unwrap_or("?");
        let name = text(report, "/scope/name").unwrap_or("?");
        let object = format!("{kind}/{name}");
        let results = report.get("results").and_then(Value::as_array);
        for result in results.into_iter().flatten() {
            if result.get("result").and_then(Value::as_str) != Some("fail") {
                continue;
            }
            violations.push(CurrentViolation {
                namespace: namespace.to_owned(),
                object: object.clone(),
                check: text(result, "/rule").unwrap_or_default().to_owned(),
                message: text(result, "/message").unwrap_or_default().to_owned(),
            });
        }
        let failing = report
            .pointer("/summary/fail")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if kind == "Pod" && failing > 0 {
            pods.insert(PodRef {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            });
        }
    }
    violations.sort_by(|a, b| (&a.namespace, &a.object).cmp(&(&b.namespace, &b.object)));
    (violations, pods.into_iter().collect())
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

async fn list_reports(client: &Client, namespace: Option<&str>) -> Result<Vec<Value>, String> {
    let api = dynamic_api(client, namespace, &policy_report_resource());
    let selector = format!("{MANAGED_BY_LABEL}={MANAGED_BY}");
    list_values(&api, &ListParams::default().labels(&selector))
        .await
        .map_err(|err| {
            if is_status(&err, 404) {
                "the PolicyReport API (wgpolicyk8s.io/v1alpha2) is not installed in this cluster: \
                 install its CRD so mcpguard's background audit can write reports"
                    .to_owned()
            } else {
                format!(
                    "cannot list PolicyReports (wgpolicyk8s.io/v1alpha2) {}: {}",
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
    now: OffsetDateTime,
) -> Result<AuditData, String> {
    let since = now - options.since;
    let mut events = Vec::new();
    for namespace in options.scopes() {
        events.extend(list_events(client, namespace).await?);
    }
    let mut reports = Vec::new();
    for namespace in options.scopes() {
        reports.extend(list_reports(client, namespace).await?);
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

/// Columns separated by three spaces, as `kubectl get` aligns them; no trailing blanks.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 3));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[derive(Serialize)]
struct Document<'a> {
    denials: &'a [Denial],
    violations: &'a [CurrentViolation],
}

/// The report in `format`; ends with a newline.
pub fn render(data: &AuditData, format: AuditOutput) -> String {
    let document = Document {
        denials: &data.denials,
        violations: &data.violations,
    };
    match format {
        AuditOutput::Json => {
            // Plain strings, numbers and lists: serialising cannot fail.
            let mut out = serde_json::to_string_pretty(&document).unwrap_or_default();
            out.push('\n');
            out
        }
        AuditOutput::Yaml => serde_saphyr::to_string(&document).unwrap_or_default(),
        AuditOutput::Table => render_table(data),
    }
}

fn render_table(data: &AuditData) -> String {
    let since = format_time(data.since);
    let mut out = String::new();
    if data.denials.is_empty() {
        out.push_str(&format!("No denials since {since}.\n"));
    } else {
        out.push_str(&format!("Denials since {since}:\n"));
        let rows: Vec<Vec<String>> = data
            .denials
            .iter()
            .map(|d| {
                vec![
                    d.time.clone(),
                    d.namespace.clone(),
                    d.object.clone(),
                    d.action.clone(),
                    d.user.clone().unwrap_or_else(|| "<unknown>".to_owned()),
                    d.checks.join(", "),
                    d.count.to_string(),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "TIME",
                "NAMESPACE",
                "OBJECT",
                "ACTION",
                "USER",
                "CHECKS",
                "COUNT",
            ],
            &rows,
        ));
    }
    out.push('\n');
    if data.violations.is_empty() {
        out.push_str("No current violations.\n");
    } else {
        out.push_str("Current violations (PolicyReports):\n");
        let rows: Vec<Vec<String>> = data
            .violations
            .iter()
            .map(|v| {
                vec![
                    v.namespace.clone(),
                    v.object.clone(),
                    v.check.clone(),
                    v.message.clone(),
                ]
            })
            .collect();
        out.push_str(&table(&["NAMESPACE", "OBJECT", "CHECK", "MESSAGE"], &rows));
    }
    out
}

// --- --apply-policy ----------------------------------------------------------------------

/// Who controls a drifting pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodOwner {
    Deployment(String),
    /// Not rollable; why (e.g. `controller: StatefulSet/db`).
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restart {
    pub namespace: String,
    pub deployment: String,
    pub pods: Vec<String>,
}

/// A Deployment whose own template fails today's policy: restarting it would not fix its
/// pods (and under `enforce` the new pods would be denied), so it is left alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub namespace: String,
    pub deployment: String,
    pub pods: Vec<String>,
    pub checks: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub pod: PodRef,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub restarts: Vec<Restart>,
    pub blocked: Vec<Blocked>,
    pub skipped: Vec<Skipped>,
}

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

/// Which Deployments to restart (each once, its pods listed), which to leave because their
/// own template fails today's policy (per `violations`), and which pods cannot be rolled.
pub fn plan(owners: &[(PodRef, PodOwner)], violations: &[CurrentViolation]) -> Plan {
    let mut deployments: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut plan = Plan::default();
    for (pod, owner) in owners {
        match owner {
            PodOwner::Deployment(name) => deployments
                .entry((pod.namespace.clone(), name.clone()))
                .or_default()
                .push(pod.name.clone()),
            PodOwner::Other(why) => plan.skipped.push(Skipped {
                pod: pod.clone(),
                reason: why.clone(),
            }),
        }
    }
    for ((namespace, deployment), mut pods) in deployments {
        pods.sort();
        pods.dedup();
        let object = format!("Deployment/{deployment}");
        let checks: Vec<String> = violations
            .iter()
            .filter(|v| v.namespace == namespace && v.object == object)
            .map(|v| v.check.clone())
            .collect();
        if checks.is_empty() {
            plan.restarts.push(Restart {
                namespace,
                deployment,
                pods,
            });
        } else {
            plan.blocked.push(Blocked {
                namespace,
                deployment,
                pods,
                checks,
            });
        }
    }
    plan.skipped.sort_by(|a, b| a.pod.cmp(&b.pod));
    plan
}

/// The plan as the user confirms it.
pub fn render_plan(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.restarts.is_empty() && plan.blocked.is_empty() && plan.skipped.is_empty() {
        out.push_str("No running pod fails today's policy: nothing to restart.\n");
        return out;
    }
    for restart in &plan.restarts {
        out.push_str(&format!(
            "will restart deployment {}/{} (pods: {})\n",
            restart.namespace,
            restart.deployment,
            restart.pods.join(", ")
        ));
    }
    for blocked in &plan.blocked {
        out.push_str(&format!(
            "will not restart deployment {}/{} (pods: {}): its pod template fails today's policy ({}); fix the Deployment first\n",
            blocked.namespace,
            blocked.deployment,
            blocked.pods.join(", "),
            blocked.checks.join(", ")
        ));
    }
    for skipped in &plan.skipped {
        out.push_str(&format!(
            "cannot roll pod {}/{}: not owned by a Deployment ({})\n",
            skipped.pod.namespace, skipped.pod.name, skipped.reason
        ));
    }
    if plan.restarts.is_empty() {
        out.push_str("Nothing to restart.\n");
    }
    out
}

/// The merge patch `kubectl rollout restart` sends.
pub fn restart_patch(now: OffsetDateTime) -> Value {
    json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: format_time(now)}}}}})
}

/// Restarts each Deployment of the plan; one result per Deployment, in plan order.
pub async fn apply_policy(
    client: &Client,
    plan: &Plan,
    now: OffsetDateTime,
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
    now: OffsetDateTime,
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
    now: OffsetDateTime,
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
            OffsetDateTime::now_utc(),
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
    use std::collections::BTreeMap;

    use pretty_assertions::assert_eq;
    use serde_json::json;

    use super::*;
    use crate::cluster::events::event_for;
    use mcpguard_core::engine::{Decision, Outcome};
    use mcpguard_core::review::AdmissionRequest;
    use mcpguard_core::violation::Violation;

    fn request(user: Option<&str>, name: &str, generate_name: &str) -> AdmissionRequest {
        let mut user_info = json!({});
        if let Some(user) = user {
            user_info = json!({"username": user});
        }
        serde_json::from_value(json!({
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": name,
            "namespace": "mcp",
            "operation": "CREATE",
            "userInfo": user_info,
            "object": {"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"generateName": generate_name, "namespace": "mcp"}},
        }))
        .expect("a valid AdmissionRequest")
    }

    fn decision(outcome: Outcome, checks: &[&str]) -> Decision {
        Decision {
            outcome,
            patch: None,
            warnings: Vec::new(),
            violations: checks
                .iter()
                .map(|check| Violation {
                    check: (*check).to_owned(),
                    reason: format!("{check} failed"),
                    detail: "container \"server\": fix it".to_owned(),
                })
                .collect(),
            status: None,
            audit_annotations: BTreeMap::new(),
        }
    }

    fn note_of(request: &AdmissionRequest, decision: &Decision, policy: &str) -> String {
        event_for(request, decision, policy, false)
            .expect("a violation Event")
            .note
    }

    fn owned(checks: &[&str]) -> Vec<String> {
        checks.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn parse_note_reads_back_what_event_for_writes() {
        let note = note_of(
            &request(Some("system:serviceaccount:mcp:deployer"), "web-1", ""),
            &decision(Outcome::Denied, &["runAsNonRoot", "allowedRegistries"]),
            "mcp-restricted",
        );
        assert_eq!(
            note,
            "policy \"mcp-restricted\" denied CREATE of pods \"web-1\" by system:serviceaccount:mcp:deployer: runAsNonRoot, allowedRegistries"
        );
        assert_eq!(
            parse_note(&note),
            Some((
                "system:serviceaccount:mcp:deployer".to_owned(),
                owned(&["runAsNonRoot", "allowedRegistries"])
            ))
        );
    }

    #[test]
    fn parse_note_handles_admitted_unknown_users_and_awkward_names() {
        // Warn mode, no user name, a generateName, and a policy name that needs escaping.
        let note = note_of(
            &request(None, "", "web-7d4b9c-"),
            &decision(Outcome::Warned, &["privileged"]),
            "odd \"policy\": by x",
        );
        assert_eq!(
            parse_note(&note),
            Some(("unknown user".to_owned(), owned(&["privileged"])))
        );
        // A user name with ": " in it: the checks are after the last one.
        let note = note_of(
            &request(Some("oidc: alice@example.com"), "web-1", ""),
            &decision(Outcome::Audited, &["hostPorts"]),
            "p",
        );
        assert_eq!(
            parse_note(&note),
            Some(("oidc: alice@example.com".to_owned(), owned(&["hostPorts"])))
        );
    }

    #[test]
    fn parse_note_rejects_other_shapes() {
        assert_eq!(parse_note(""), None);
        assert_eq!(
            parse_note("policy \"p\" mutated pods \"web\" for bob: set runAsNonRoot"),
            None
        );
        assert_eq!(parse_note("policy \"unterminated denied"), None);
        assert_eq!(parse_note("Back-off restarting failed container"), None);
    }

    #[test]
    fn parse_note_keeps_the_checks_of_a_truncated_note() {
        let checks: Vec<String> = (0..120).map(|i| format!("check{i}")).collect();
        let refs: Vec<&str> = checks.iter().map(String::as_str).collect();
        let note = note_of(
            &request(Some("bob"), "web-1", ""),
            &decision(Outcome::Denied, &refs),
            "p",
        );
        assert!(note.ends_with("..."), "{note}");
        let (user, parsed) = parse_note(&note).expect("parses");
        assert_eq!(user, "bob");
        assert_eq!(parsed[..3], owned(&["check0", "check1", "check2"])[..]);
        assert!(parsed.last().is_some_and(|c| c.ends_with("...")));
    }

    #[test]
    fn parse_note_ignores_an_unverified_owner_mention() {
        let note = note_of(
            &request(Some("bob"), "web-1", ""),
            &decision(Outcome::Denied, &["runAsNonRoot", "privileged"]),
            "p",
        );
        let claim = crate::cluster::events::ClaimedOwner {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: "web".into(),
            uid: "u-1".into(),
        };
        let mentioned = crate::cluster::events::note_with_unverified_owner(&note, &claim);
        assert_eq!(
            mentioned,
            format!("{note} [unverified owner: ReplicaSet \"web\"]")
        );
        assert_eq!(
            parse_note(&mentioned),
            Some(("bob".to_owned(), owned(&["runAsNonRoot", "privileged"])))
        );
    }

    #[test]
    fn split_debug_string_unescapes() {
        let quoted = format!("{:?} rest", "a\"b\\c\nd\u{7}é");
        assert_eq!(
            split_debug_string(&quoted),
            Some(("a\"b\\c\nd\u{7}é".to_owned(), " rest"))
        );
    }

    #[test]
    fn since_accepts_units_and_combinations() {
        assert_eq!(parse_since("24h"), Ok(Duration::hours(24)));
        assert_eq!(parse_since("7d"), Ok(Duration::days(7)));
        assert_eq!(parse_since("30m"), Ok(Duration::minutes(30)));
        assert_eq!(parse_since("90s"), Ok(Duration::seconds(90)));
        assert_eq!(parse_since("2w"), Ok(Duration::weeks(2)));
        assert_eq!(parse_since("1h30m"), Ok(Duration::minutes(90)));
        assert_eq!(parse_since(" 1d "), Ok(Duration::days(1)));
    }

    #[test]
    fn since_rejects_bad_values_with_a_clear_error() {
        let syntax = |text: &str| {
            format!(
                "invalid duration {text:?}: expected a number and a unit (s, m, h, d or w), such as 30m, 24h or 7d"
            )
        };
        for bad in [
            "", "24", "h", "1.5h", "-1h", "24 h", "24H", "1y", "abc", "1h30",
        ] {
            assert_eq!(parse_since(bad), Err(syntax(bad)), "{bad:?}");
        }
        assert_eq!(
            parse_since("0h"),
            Err("invalid duration \"0h\": must be greater than zero".to_owned())
        );
        assert_eq!(
            parse_since("99999999999999999999d"),
            Err("invalid duration \"99999999999999999999d\": too large".to_owned())
        );
        assert_eq!(
            parse_since("36600000d"),
            Err("invalid duration \"36600000d\": too large".to_owned())
        );
    }

    #[test]
    fn event_time_prefers_series_then_event_time_then_creation() {
        let at = |s: &str| OffsetDateTime::parse(s, &Rfc3339).expect("time");
        let event = json!({
            "metadata": {"creationTimestamp": "2025-06-01T00:00:00Z"},
            "eventTime": "2025-06-02T00:00:00.000000Z",
            "series": {"count": 3, "lastObservedTime": "2025-06-03T00:00:00.500000Z"},
        });
        assert_eq!(event_time(&event), Some(at("2025-06-03T00:00:00.5Z")));
        let event = json!({
            "metadata": {"creationTimestamp": "2025-06-01T00:00:00Z"},
            "eventTime": "2025-06-02T00:00:00.000000Z",
        });
        assert_eq!(event_time(&event), Some(at("2025-06-02T00:00:00Z")));
        let event =
            json!({"metadata": {"creationTimestamp": "2025-06-01T00:00:00Z"}, "eventTime": null});
        assert_eq!(event_time(&event), Some(at("2025-06-01T00:00:00Z")));
        assert_eq!(event_time(&json!({"metadata": {}})), None);
    }

    #[test]
    fn format_time_is_utc_to_the_second() {
        let at = OffsetDateTime::parse("2025-06-15T17:06:40.987654+02:00", &Rfc3339).expect("time");
        assert_eq!(format_time(at), "2025-06-15T15:06:40Z");
    }

    #[test]
    fn table_aligns_columns_without_trailing_blanks() {
        let out = table(
            &["A", "LONGER", "C"],
            &[
                vec!["xxxx".into(), "y".into(), "".into()],
                vec!["x".into(), "".into(), "z".into()],
            ],
        );
        assert_eq!(out, "A      LONGER   C\nxxxx   y\nx               z\n");
    }

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
        let now = OffsetDateTime::from_unix_timestamp(1_750_000_000).expect("time");
        assert_eq!(
            restart_patch(now),
            json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": "2025-06-15T15:06:40Z"
            }}}}})
        );
    }

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
