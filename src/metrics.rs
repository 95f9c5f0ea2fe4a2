//! Prometheus metrics, all named `mcpguard_*`. One registry, built once at startup.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::policy::Policy;
use crate::violation::Violation;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: &'static str,
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
    pub policy_reloads: Family<ResultLabels, Counter>,
    pub events_dropped: Counter,
    pub audit_violations: Family<NamespaceLabels, Gauge>,
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
            "Admission reviews answered, by endpoint, operation and decision",
            requests.clone(),
        );
        // 25 µs .. ~0.8 s: an in-process review is tens of microseconds; the tail is what matters.
        let duration = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_025, 2.0, 16))
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
        Metrics {
            registry,
            policy_reloads,
            events_dropped,
            audit_violations,
            requests,
            duration,
            denials,
            bad_requests,
            policy_info,
            certificate_reloads,
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

    pub fn record_denials(&self, policy: &str, namespace: &str, violations: &[Violation]) {
        for violation in violations {
            self.denials
                .get_or_create(&DenialLabels {
                    policy: policy.to_owned(),
                    check: violation.check.clone(),
                    namespace: namespace.to_owned(),
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
