//! HTTP routes. The handlers only translate between HTTP and the core's front door
//! (`mcpguard_core::admission`): read a bounded body, decode once, decide, encode, count.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::metrics::{BadRequestLabels, EndpointLabels, Metrics, RequestLabels};
use crate::policy_store::PolicyStore;
use crate::readiness::Readiness;
use crate::webhook::access;
use mcpguard_core::admission::{self, Answer, Judge};
use mcpguard_core::engine::{self, Outcome};
use mcpguard_core::mcpserver::access::Access;
use mcpguard_core::policy::Policy;
use mcpguard_core::review::{API_VERSION, AdmissionReview, KIND};
use mcpguard_core::runtime_class::RuntimeClassLookup;

/// kube-apiserver refuses objects over 3 MiB; an UPDATE review carries two of them plus
/// envelope, so 7 MiB admits every legitimate review and nothing much larger.
pub const MAX_BODY_BYTES: usize = 7 * 1024 * 1024;

/// What every request handler shares. The policy store, metrics and readiness are shared
/// parts the cluster loops are handed directly; the rest is the webhook's own.
pub struct AppState {
    pub policies: Arc<PolicyStore>,
    pub runtime_classes: Arc<dyn RuntimeClassLookup>,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    /// Reviews in progress (body read to response). Bounds memory (each body is up to
    /// 7 MiB) and CPU; a review beyond it is shed with a quick 503 rather than queued
    /// behind the others until kube-apiserver's timeout.
    pub review_slots: tokio::sync::Semaphore,
    /// The bodies of reviews in progress, in KiB (by Content-Length, or the body cap when
    /// none is declared). Memory grows with the bytes being judged, not with the count of
    /// reviews: many small ones run at once, but only a few near the body cap.
    pub review_kib: tokio::sync::Semaphore,
    /// Where Events go when a cluster is configured; unset, nothing is recorded.
    pub events: std::sync::OnceLock<crate::cluster::events::EventSink>,
    /// The API server, for the SubjectAccessReviews of MCPServer requests; unset (no cluster),
    /// every Secret an MCPServer names is unverified and the server is refused.
    pub kube_client: std::sync::OnceLock<kube::Client>,
}

/// Reviews in progress at once unless `--max-concurrent-reviews` says otherwise.
pub const DEFAULT_MAX_CONCURRENT_REVIEWS: usize = 64;
/// Bytes of review bodies in progress at once unless `--max-review-bytes` says otherwise:
/// one review at the body cap, or many smaller ones. Parsed and judged, a review takes up to
/// ~55 times its size (README, "Memory and limits"): this is what keeps the worst case
/// within the Deployment's memory limit.
pub const DEFAULT_MAX_REVIEW_BYTES: usize = MAX_BODY_BYTES;
/// How long a review waits for its bytes in `review_kib` before it is shed with a 503.
pub const REVIEW_BYTES_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// A body that has not arrived in this long is refused (408): a slow body must not hold a
/// review slot for ever.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl AppState {
    pub fn new(
        policy: Policy,
        runtime_classes: Arc<dyn RuntimeClassLookup>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Self::with_review_limit(
            policy,
            runtime_classes,
            metrics,
            DEFAULT_MAX_CONCURRENT_REVIEWS,
        )
    }

    pub fn with_review_limit(
        policy: Policy,
        runtime_classes: Arc<dyn RuntimeClassLookup>,
        metrics: Arc<Metrics>,
        max_concurrent_reviews: usize,
    ) -> Arc<Self> {
        Self::with_limits(
            policy,
            runtime_classes,
            metrics,
            max_concurrent_reviews,
            DEFAULT_MAX_REVIEW_BYTES,
        )
    }

    /// `max_review_bytes` below the body cap is raised to it: a review at the cap must fit.
    pub fn with_limits(
        policy: Policy,
        runtime_classes: Arc<dyn RuntimeClassLookup>,
        metrics: Arc<Metrics>,
        max_concurrent_reviews: usize,
        max_review_bytes: usize,
    ) -> Arc<Self> {
        Self::from_parts(
            Arc::new(PolicyStore::new(policy, metrics.clone())),
            runtime_classes,
            metrics,
            Arc::new(Readiness::default()),
            max_concurrent_reviews,
            max_review_bytes,
        )
    }

    /// The webhook's state around parts it shares with the cluster loops.
    pub fn from_parts(
        policies: Arc<PolicyStore>,
        runtime_classes: Arc<dyn RuntimeClassLookup>,
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
        max_concurrent_reviews: usize,
        max_review_bytes: usize,
    ) -> Arc<Self> {
        let review_kib = max_review_bytes.max(MAX_BODY_BYTES).div_ceil(1024);
        Arc::new(AppState {
            policies,
            runtime_classes,
            metrics,
            readiness,
            review_slots: tokio::sync::Semaphore::new(max_concurrent_reviews.max(1)),
            review_kib: tokio::sync::Semaphore::new(review_kib),
            events: std::sync::OnceLock::new(),
            kube_client: std::sync::OnceLock::new(),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Mutate,
    Validate,
}

impl Endpoint {
    fn as_str(self) -> &'static str {
        match self {
            Endpoint::Mutate => "mutate",
            Endpoint::Validate => "validate",
        }
    }
}

pub fn webhook_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/validate", post(validate))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .with_state(state)
}

pub fn probe_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn mutate(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    answer(&state, Endpoint::Mutate, &headers, body).await
}

async fn validate(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    answer(&state, Endpoint::Validate, &headers, body).await
}

async fn answer(state: &AppState, endpoint: Endpoint, headers: &HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let response = match decide(state, endpoint, headers, body).await {
        Ok(response) => response,
        Err(refusal) => {
            state
                .metrics
                .bad_requests
                .get_or_create(&BadRequestLabels {
                    endpoint: endpoint.as_str(),
                    reason: refusal.reason,
                })
                .inc();
            tracing::warn!(endpoint = endpoint.as_str(), status = refusal.status.as_u16(), error = %refusal.message, "request refused");
            error_response(refusal.status, refusal.reason_phrase(), &refusal.message)
        }
    };
    state
        .metrics
        .duration
        .get_or_create(&EndpointLabels {
            endpoint: endpoint.as_str(),
        })
        .observe(started.elapsed().as_secs_f64());
    response
}

struct Refusal {
    status: StatusCode,
    reason: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            status,
            reason,
            message: message.into(),
        }
    }

    fn reason_phrase(&self) -> &'static str {
        match self.status {
            StatusCode::PAYLOAD_TOO_LARGE => "RequestEntityTooLarge",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "UnsupportedMediaType",
            StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
            StatusCode::REQUEST_TIMEOUT => "Timeout",
            _ => "BadRequest",
        }
    }
}

async fn decide(
    state: &AppState,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    check_content_type(headers)?;
    let Ok(_slot) = state.review_slots.try_acquire() else {
        return Err(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many reviews in progress; retry",
        ));
    };
    let kib = u32::try_from(body_kib(headers)).unwrap_or(u32::MAX);
    let _bytes =
        match tokio::time::timeout(REVIEW_BYTES_WAIT, state.review_kib.acquire_many(kib)).await {
            Ok(Ok(permit)) => permit,
            // The semaphore is never closed; a closed one sheds like a full one.
            Ok(Err(_)) | Err(_) => {
                return Err(Refusal::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded_bytes",
                    "too many large reviews in progress; retry",
                ));
            }
        };
    let bytes = tokio::time::timeout(BODY_READ_TIMEOUT, read_body(headers, body))
        .await
        .map_err(|_| {
            Refusal::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("body not received within {} s", BODY_READ_TIMEOUT.as_secs()),
            )
        })??;
    // serde's derived structs also accept a JSON array whose elements line up with the
    // fields; an AdmissionReview is an object, so anything else is refused up front.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "body is not an AdmissionReview: expected a JSON object",
        ));
    }
    let review: AdmissionReview = mcpguard_core::redact::decode_slice(&bytes).map_err(|err| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!("body is not an AdmissionReview: {err}"),
        )
    })?;
    // The parsed review is what the decision reads; the bytes would only add to the peak.
    drop(bytes);
    if review.api_version != API_VERSION || review.kind != KIND {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "unsupported_version",
            // The sender's strings, cut: this message is logged and sent back.
            format!(
                "expected kind {KIND} of apiVersion {API_VERSION}, got kind {:?} of apiVersion {:?}",
                bounded_for_log(&review.kind, MAX_LOGGED_KIND_CHARS),
                bounded_for_log(&review.api_version, MAX_LOGGED_KIND_CHARS)
            ),
        ));
    }
    let request = review.request.ok_or_else(|| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "no_request",
            "AdmissionReview has no request",
        )
    })?;
    let policies = state.policies.load();
    let secret_access = match endpoint {
        Endpoint::Validate => ask_secret_access(state, &request, &policies).await,
        Endpoint::Mutate => BTreeMap::new(),
    };
    let context = admission::Context {
        policies: &policies,
        runtime_classes: state.runtime_classes.as_ref(),
        now: jiff::Timestamp::now(),
        secret_access: admission::SecretAccess::Answered(&secret_access),
    };
    let answer = match endpoint {
        Endpoint::Mutate => admission::mutate(&request, context),
        Endpoint::Validate => admission::validate(&request, context),
    };
    record(state, &policies, endpoint, &request, &answer);
    // The request's objects are not needed to write the answer: freed before it is built.
    let uid = request.uid.clone();
    drop(request);
    let body = answer.decision.review_json(&uid);
    let json = HeaderValue::from_static("application/json");
    Ok(([(header::CONTENT_TYPE, json)], body).into_response())
}

/// The API server's answers for the Secrets and ConfigMaps an MCPServer request names (none
/// for other requests), asked as the requesting user.
async fn ask_secret_access(
    state: &AppState,
    request: &mcpguard_core::review::AdmissionRequest,
    policies: &mcpguard_core::policy_set::PolicySet,
) -> BTreeMap<mcpguard_core::mcpserver::access::Reference, Access> {
    let names = admission::secrets_to_ask(request, policies);
    if names.is_empty() {
        return BTreeMap::new();
    }
    let namespace = request.namespace.as_deref().unwrap_or("");
    match state.kube_client.get() {
        Some(client) => {
            access::secret_access(
                client,
                &request.user_info,
                namespace,
                &names,
                access::ACCESS_REVIEW_TIMEOUT,
            )
            .await
        }
        None => names
            .into_iter()
            .map(|name| {
                let why =
                    "mcpguard runs without a cluster connection, so it cannot ask the API server";
                (name, Access::Unverified(why.into()))
            })
            .collect(),
    }
}

fn record(
    state: &AppState,
    policies: &mcpguard_core::policy_set::PolicySet,
    endpoint: Endpoint,
    request: &mcpguard_core::review::AdmissionRequest,
    answer: &Answer<'_>,
) {
    let decision = &answer.decision;
    let operation = match request.operation() {
        Some(mcpguard_core::review::Operation::Create) => "CREATE",
        Some(mcpguard_core::review::Operation::Update) => "UPDATE",
        Some(mcpguard_core::review::Operation::Delete) => "DELETE",
        Some(mcpguard_core::review::Operation::Connect) => "CONNECT",
        None => "UNKNOWN",
    };
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            endpoint: endpoint.as_str(),
            kind: crate::metrics::bounded::kind(request),
            operation,
            decision: decision.outcome.as_str(),
        })
        .inc();
    let namespace = request.namespace.as_deref().unwrap_or("");
    if decision.outcome == Outcome::Skipped {
        return;
    }
    // A refused MCPPolicy is answered at `kubectl apply`; no namespace or object holds an
    // Event about it, and no policy judged it.
    if let Judge::Policy(policy) = answer.judge
        && let Some(sink) = state.events.get()
        && let Some(event) = crate::cluster::events::event_for(
            request,
            decision,
            &policy.name,
            sink.record_mutations,
        )
        && sink.try_record(event).is_err()
    {
        state.metrics.events_dropped.inc();
    }
    if decision.outcome == Outcome::Denied {
        state.metrics.record_denials(
            policies,
            answer.judge.name(),
            request.namespace.as_deref(),
            &decision.violations,
        );
    }
    // Names and check IDs only: never the object, which may carry secret literals. Only
    // what someone must act on (a denial, a violation admitted by warn/audit mode, a
    // malformed object) is info. Admissions and mutations are debug: a mutation is the
    // expected answer for every pod of a covered namespace, already told by the audit
    // annotation `mutated`, `mcpguard_requests_total{decision="mutated"}` and, when
    // wanted, a PolicyMutated Event; at info it was a line per pod and about 3 µs of the
    // ~25 µs a mutation costs.
    // Strings as `&str`, not `%`: a Display value is formatted through a Debug adapter into
    // the JSON line, a str written as it is (the same text either way).
    // `request.userInfo` is the API server's (the one field the author cannot choose), but
    // anyone who reaches the Service can send a review, so it is bounded like the rest.
    let user = request.user_info.username.as_deref().unwrap_or("");
    macro_rules! log_review {
        ($level:ident) => {
            tracing::$level!(
                uid = bounded_for_log(&request.uid, MAX_LOGGED_UID_CHARS).as_ref(),
                endpoint = endpoint.as_str(),
                kind = bounded_for_log(&request.kind.kind, MAX_LOGGED_KIND_CHARS).as_ref(),
                namespace = bounded_for_log(namespace, MAX_LOGGED_NAMESPACE_CHARS).as_ref(),
                name = bounded_for_log(&request.display_name(), MAX_LOGGED_NAME_CHARS).as_ref(),
                operation,
                user = bounded_for_log(user, MAX_LOGGED_USER_CHARS).as_ref(),
                decision = decision.outcome.as_str(),
                violations = engine::violation_ids(&decision.violations).as_str(),
                dry_run = request.is_dry_run(),
                "admission review"
            )
        };
    }
    if review_log_level(decision.outcome) == tracing::Level::INFO {
        log_review!(info);
    } else {
        log_review!(debug);
    }
}

/// The longest request values a review log line carries. Anyone who reaches the Service
/// chooses them (a 3 MiB `request.namespace` was once a 3 MiB log line); the API server's own
/// limits are a 63-character namespace, a 253-character name and a 36-character UID, so a
/// real request is never cut.
const MAX_LOGGED_NAMESPACE_CHARS: usize = 63;
const MAX_LOGGED_NAME_CHARS: usize = 253;
const MAX_LOGGED_UID_CHARS: usize = 64;
/// A kind is a DNS-1035 label in CamelCase (63 characters); a username has no API limit, but
/// a service account's is `system:serviceaccount:` and two names (at most 63 + 253).
const MAX_LOGGED_KIND_CHARS: usize = 63;
const MAX_LOGGED_USER_CHARS: usize = 340;

/// `value` cut to `max_chars` characters, marked with `…` when cut.
fn bounded_for_log(value: &str, max_chars: usize) -> std::borrow::Cow<'_, str> {
    match value.char_indices().nth(max_chars) {
        None => std::borrow::Cow::Borrowed(value),
        Some((end, _)) => std::borrow::Cow::Owned(format!("{}…", &value[..end])),
    }
}

fn review_log_level(outcome: Outcome) -> tracing::Level {
    match outcome {
        Outcome::Allowed | Outcome::Skipped | Outcome::Mutated => tracing::Level::DEBUG,
        Outcome::Warned | Outcome::Audited | Outcome::Denied | Outcome::Invalid => {
            tracing::Level::INFO
        }
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), Refusal> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if media_type.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type",
            format!("content type must be application/json, got {content_type:?}"),
        ))
    }
}

/// What a review's body counts against `review_kib`: its declared length (a body over the
/// cap is refused before it is read), or the cap when it declares none.
fn body_kib(headers: &HeaderMap) -> usize {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    declared
        .unwrap_or(MAX_BODY_BYTES)
        .clamp(1, MAX_BODY_BYTES)
        .div_ceil(1024)
}

async fn read_body(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, Refusal> {
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("body is larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|err| {
            let is_limit = std::error::Error::source(&err)
                .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
            if is_limit {
                too_large()
            } else {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "body_read",
                    format!("cannot read body: {err}"),
                )
            }
        })
}

/// Errors in the shape of a Kubernetes `Status`, so they read like the API's own.
pub(crate) fn error_response(status: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": status.as_u16(),
    });
    (status, axum::Json(body)).into_response()
}

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked; this request failed, the server keeps serving");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        "internal error while reviewing this request",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_someone_must_act_on_is_logged_at_info() {
        for outcome in [
            Outcome::Denied,
            Outcome::Warned,
            Outcome::Audited,
            Outcome::Invalid,
        ] {
            assert_eq!(
                review_log_level(outcome),
                tracing::Level::INFO,
                "{outcome:?}"
            );
        }
    }

    #[test]
    fn request_values_in_log_lines_are_cut_to_the_api_servers_limits() {
        let namespace = "n".repeat(63);
        assert_eq!(
            bounded_for_log(&namespace, MAX_LOGGED_NAMESPACE_CHARS),
            namespace.as_str()
        );
        let hostile = "n".repeat(3 * 1024 * 1024);
        assert_eq!(
            bounded_for_log(&hostile, MAX_LOGGED_NAMESPACE_CHARS),
            format!("{}…", "n".repeat(63))
        );
        // Cut on a character boundary, never inside a multi-byte character.
        assert_eq!(bounded_for_log("ééé", 2), "éé…");
        assert_eq!(bounded_for_log("", 2), "");
    }

    #[test]
    fn routine_answers_are_logged_at_debug() {
        for outcome in [Outcome::Allowed, Outcome::Skipped, Outcome::Mutated] {
            assert_eq!(
                review_log_level(outcome),
                tracing::Level::DEBUG,
                "{outcome:?}"
            );
        }
    }
}
