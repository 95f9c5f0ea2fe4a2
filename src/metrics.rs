//! Prometheus metrics, all named `mcpguard_*`. One registry, built once at startup.
//!
//! Every label value is bounded: it is a constant of this crate (endpoint, operation,
//! decision, reason), a name the policies in force define (policy, check ID), or a
//! namespace those policies cover. A value taken from a request passes through [`bounded`]
//! first, so no request can add a series (a review with a 3 MiB `request.namespace`, or
//! 3,000 reviews with 3,000 namespaces, add none). A new request-derived label (as the
//! resource kind was) gets a function there and a field in its label set, nothing else.
//!
//! Besides mcpguard's own, the registry carries `mcpguard_build_info` and the standard
//! `process_*` metrics ([`process`]).

pub mod process;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use mcpguard_core::policy::Policy;
use mcpguard_core::policy_set::PolicySet;
use mcpguard_core::violation::Violation;

/// Label values derived from a request, each bounded by what the policies or this crate
/// define; anything else becomes [`bounded::OTHER`].
pub mod bounded {
    use mcpguard_core::policy_set::PolicySet;

    /// The value of every label whose request value is not a known one.
    pub const OTHER: &str = "other";

    /// A request's namespace as a label: its own name when a policy in force covers it
    /// (decided against `policies` as they are now, so an `MCPPolicy` or a reloaded policy
    /// file that covers a new namespace gives it its own series from its next review on),
    /// `""` for a cluster-scoped object, [`OTHER`] for any other namespace.
    pub fn namespace(policies: &PolicySet, namespace: Option<&str>) -> String {
        match namespace {
            None | Some("") => String::new(),
            Some(namespace) if policies.covers(namespace) => namespace.to_owned(),
            Some(_) => OTHER.to_owned(),
        }
    }

    /// A request's resource kind as a label: the kinds mcpguard judges (`Pod`, the workload
    /// kinds, `MCPServer`, `MCPPolicy`, `NetworkPolicy`), decided by the request's group and
    /// resource as the front door routes it, so the sender's `kind` string never becomes a
    /// label; [`OTHER`] for anything else.
    pub fn kind(request: &mcpguard_core::review::AdmissionRequest) -> &'static str {
        mcpguard_core::admission::Resource::of(request)
            .kind()
            .unwrap_or(OTHER)
    }

    /// `value` when it is one of `known` (constants of this crate, e.g. the resource kinds
    /// mcpguard judges), else [`OTHER`].
    pub fn one_of(value: &str, known: &[&'static str]) -> &'static str {
        known
            .iter()
            .find(|candidate| **candidate == value)
            .copied()
            .unwrap_or(OTHER)
    }
}

/// The upper bounds of `mcpguard_admission_duration_seconds`: 25 µs doubling to 0.8192 s
/// (an in-process review takes tens of microseconds; the tail is what matters), then the
/// webhook timeouts that decide whether kube-apiserver gave up waiting: 5 s (this install's
/// `timeoutSeconds`), 10 s (the API's default) and 30 s (its maximum).
pub fn duration_buckets() -> Vec<f64> {
    let mut buckets: Vec<f64> = exponential_buckets(0.000_025, 2.0, 16).collect();
    buckets.extend([1.0, 2.5, 5.0, 10.0, 30.0]);
    buckets
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: &'static str,
    /// [`bounded::kind`].
    pub kind: &'static str,
    pub operation: &'static str,
    pub decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DenialLabels {
    pub policy: String,
    pub check: String,
    pub namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BadRequestLabels {
    pub endpoint: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub policy: String,
    pub level: String,
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
    pub commit: &'static str,
}

/// The commit this binary was built from: `MCPGUARD_GIT_COMMIT` at build time (build.rs
/// sets it from `git rev-parse`, or passes on the builder's own), else `unknown`.
pub const GIT_COMMIT: &str = match option_env!("MCPGUARD_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// The `result` label values of the reload counters.
pub const RESULT_SUCCESS: &str = "success";
pub const RESULT_FAILURE: &str = "failure";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<EndpointLabels, Histogram>,
    pub denials: Family<DenialLabels, Counter>,
    pub bad_requests: Family<BadRequestLabels, Counter>,
    pub policy_info: Family<PolicyLabels, Gauge>,
    pub certificate_reloads: Family<ResultLabels, Counter>,
    /// notAfter of the serving certificate, Unix seconds (0 until one is loaded); set by
    /// `webhook::tls::SwappableCert` on every (re)load.
    pub certificate_not_after: Gauge,
    pub policy_reloads: Family<ResultLabels, Counter>,
    pub events_dropped: Counter,
    pub audit_violations: Family<NamespaceLabels, Gauge>,
    pub connections_evicted: Counter,
    pub connections_refused: Counter,
    pub unauthenticated_requests: Counter,
    pub webhook_fence_denials: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabels {
    pub namespace: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "mcpguard_admission_requests",
            "Admission reviews answered, by endpoint, resource kind, operation and decision",
            requests.clone(),
        );
        let duration = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(duration_buckets())
        });
        registry.register(
            "mcpguard_admission_duration_seconds",
            "Time to answer one admission review, from body read to response",
            duration.clone(),
        );
        let denials = Family::<DenialLabels, Counter>::default();
        registry.register(
            "mcpguard_denials",
            "Denied admissions, one count per violated check",
            denials.clone(),
        );
        let bad_requests = Family::<BadRequestLabels, Counter>::default();
        registry.register(
            "mcpguard_bad_requests",
            "Requests refused before any decision (malformed, too large, wrong content type)",
            bad_requests.clone(),
        );
        let policy_info = Family::<PolicyLabels, Gauge>::default();
        registry.register(
            "mcpguard_policy_info",
            "The policy being enforced (value is always 1)",
            policy_info.clone(),
        );
        let certificate_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "mcpguard_certificate_reloads",
            "Serving certificate reloads, by result",
            certificate_reloads.clone(),
        );
        let certificate_not_after = Gauge::default();
        registry.register(
            "mcpguard_certificate_not_after_timestamp_seconds",
            "Expiry (notAfter) of the serving certificate in use, in Unix seconds; 0 until one is loaded",
            certificate_not_after.clone(),
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                commit: GIT_COMMIT,
            })
            .set(1);
        registry.register(
            "mcpguard_build_info",
            "The version and commit of this binary (value is always 1)",
            build_info,
        );
        registry.register_collector(Box::new(process::ProcessCollector::default()));
        let policy_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "mcpguard_policy_reloads",
            "Policy file reloads, by result (a refused policy keeps the previous one serving)",
            policy_reloads.clone(),
        );
        let events_dropped = Counter::default();
        registry.register(
            "mcpguard_events_dropped",
            "Events not recorded because the queue was full (admissions are never delayed for them)",
            events_dropped.clone(),
        );
        let audit_violations = Family::<NamespaceLabels, Gauge>::default();
        registry.register(
            "mcpguard_audit_violations",
            "Failing checks found by the last background audit, by namespace",
            audit_violations.clone(),
        );
        let connections_evicted = Counter::default();
        registry.register(
            "mcpguard_connections_evicted",
            "Idle webhook connections closed to make room for a new one (--max-connections reached)",
            connections_evicted.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "mcpguard_connections_refused",
            "Webhook connections refused because every open one had a request in flight",
            connections_refused.clone(),
        );
        let unauthenticated_requests = Counter::default();
        registry.register(
            "mcpguard_unauthenticated_requests",
            "Reviews refused (401) for want of a client certificate (with --client-ca)",
            unauthenticated_requests.clone(),
        );
        let webhook_fence_denials = Counter::default();
        registry.register(
            "mcpguard_webhook_fence_denials",
            "The leader's own patches of its webhook configurations that the API server's \
             ValidatingAdmissionPolicy mcpguard-webhook-fence refused (certificate rotation \
             stalls while this grows)",
            webhook_fence_denials.clone(),
        );
        // Both results exist from the start at 0: `increase(...{result="failure"}[15m])`
        // sees the first failure only if the series was there before it (Prometheus counts
        // no increase into a series' first sample), and dashboards see the family at all.
        for result in [RESULT_SUCCESS, RESULT_FAILURE] {
            let _ = certificate_reloads.get_or_create(&ResultLabels { result });
            let _ = policy_reloads.get_or_create(&ResultLabels { result });
        }
        Metrics {
            registry,
            webhook_fence_denials,
            connections_evicted,
            connections_refused,
            unauthenticated_requests,
            policy_reloads,
            events_dropped,
            audit_violations,
            requests,
            duration,
            denials,
            bad_requests,
            policy_info,
            certificate_reloads,
            certificate_not_after,
        }
    }

    /// One `mcpguard_policy_info` series per policy in force (the file's and each object's).
    pub fn set_policies(&self, policies: &[std::sync::Arc<Policy>]) {
        self.policy_info.clear();
        for policy in policies {
            let security = policy.spec.pod_security;
            self.policy_info
                .get_or_create(&PolicyLabels {
                    policy: policy.name.clone(),
                    level: security.level.to_string(),
                    version: security.version.to_string(),
                })
                .set(1);
        }
    }

    /// One count per violated check. `policy` and the check IDs are the policies' own
    /// names (a CEL rule's check ID is its name in the policy); the namespace is bounded by
    /// [`bounded::namespace`] against `policies`.
    pub fn record_denials(
        &self,
        policies: &PolicySet,
        policy: &str,
        namespace: Option<&str>,
        violations: &[Violation],
    ) {
        let namespace = bounded::namespace(policies, namespace);
        for violation in violations {
            self.denials
                .get_or_create(&DenialLabels {
                    policy: policy.to_owned(),
                    check: violation.check.clone(),
                    namespace: namespace.clone(),
                })
                .inc();
        }
    }

    /// Prometheus/OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests;
