//! One admission review, end to end and in parts, for a typical ~4 KB MCP pod (with the
//! `metadata.managedFields` kube-apiserver sends; see `benches/support/reviews.rs`).
//!
//! `cargo bench --bench review`. Each benchmark is one review (`Throughput::Elements(1)`), so
//! criterion's `elem/s` is reviews per second on one core.
//!
//! - `review/mutate_full`: bytes -> AdmissionReview -> `admission::mutate` -> response bytes
//! - `review/validate_full`: the same through `admission::validate`, for the pod as the API
//!   server sends it after the mutating webhook (admitted)
//! - `review/validate_denied`: `admission::validate` of the unmutated pod (the denial path)
//! - `review/validate_deployment`: `admission::validate` of a Deployment CREATE whose template is
//!   the typical pod (mutated in memory as its pods will be, then judged; admitted)
//! - `pss/evaluate_restricted`: only the Pod Security Standards checks, on the typed pod
//! - `cel/typical_rule`: one custom CEL rule (`spec.validate.rules`, the README's `:latest`
//!   tag rule) on the mutated pod: input conversion, cost estimate and evaluation
//! - `cel/pairwise_60_containers`: a nested comprehension over a 60-container pod, to relate
//!   the cost model's units (printed) to time
//! - `parse/admission_review`: only the parse of the request bytes

/// The same allocator as the `mcpguard` binary, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use mcpguard_core::admission::{self, Answer, Context};
use mcpguard_core::cel_rules::RuleInput;
use mcpguard_core::engine::Outcome;
use mcpguard_core::policy::{self, Policy};
use mcpguard_core::policy_set::PolicySet;
use mcpguard_core::pss::{self, Level, Version};
use mcpguard_core::review::{AdmissionRequest, AdmissionReview};
use mcpguard_core::runtime_class::StaticRuntimeClasses;
use serde::Deserialize;
use serde_json::{Value, json};

#[path = "support/reviews.rs"]
mod reviews;
use reviews::{
    MAX_BYTES, MIN_BYTES, deployment_review, size_without_managed_fields, typical_review,
};

/// The same review with the pod as the mutating webhook's patch left it.
fn mutated_review(review: &Value, context: Context<'_>) -> Value {
    let parsed: AdmissionReview = serde_json::from_value(review.clone()).expect("review parses");
    let request = parsed.request.expect("request");
    let decision = admission::mutate(&request, context).decision;
    assert_eq!(
        decision.outcome,
        Outcome::Mutated,
        "the example pod needs mutation"
    );
    let mut mutated = review.clone();
    let pod = &mut mutated["request"]["object"];
    json_patch::patch(pod, &decision.patch.expect("patch")).expect("patch applies");
    mutated
}

/// `admission::mutate` or `admission::validate`.
type Decide = for<'a> fn(&AdmissionRequest, Context<'a>) -> Answer<'a>;

/// What the webhook does for one request body, minus HTTP: parse, decide, serialise.
fn review_bytes(bytes: &[u8], context: Context<'_>, decide: Decide) -> Vec<u8> {
    let review: AdmissionReview = serde_json::from_slice(bytes).expect("review parses");
    let request = review.request.expect("request");
    let answer = decide(&request, context);
    answer.decision.review_json(&request.uid)
}

fn benches(c: &mut Criterion) {
    let policies = PolicySet::single(std::sync::Arc::new(
        Policy::embedded_default().expect("embedded policy loads"),
    ));
    let runtime_classes = StaticRuntimeClasses::default();
    let context = Context {
        policies: &policies,
        runtime_classes: &runtime_classes,
        now: jiff::Timestamp::UNIX_EPOCH,
        secret_access: mcpguard_core::admission::SecretAccess::Offline,
    };

    let review = typical_review();
    let raw = serde_json::to_vec(&review).expect("serialises");
    let own_size = size_without_managed_fields(&review);
    assert!(
        (MIN_BYTES..=MAX_BYTES).contains(&own_size),
        "review without managedFields is {own_size} bytes, want {MIN_BYTES}-{MAX_BYTES}"
    );
    let deployment = serde_json::to_vec(&deployment_review(&review)).expect("serialises");
    let mutated = serde_json::to_vec(&mutated_review(&review, context)).expect("serialises");
    println!(
        "AdmissionReview: {} bytes as sent to /mutate ({own_size} without managedFields), {} bytes after mutation (sent to /validate), Deployment {} bytes",
        raw.len(),
        mutated.len(),
        deployment.len()
    );

    // Sanity: each path takes the branch it is named after.
    let decide = |bytes: &[u8], f: Decide| {
        let review: AdmissionReview = serde_json::from_slice(bytes).expect("parses");
        f(&review.request.expect("request"), context).decision
    };
    assert_eq!(decide(&raw, admission::mutate).outcome, Outcome::Mutated);
    assert_eq!(
        decide(&mutated, admission::validate).outcome,
        Outcome::Allowed
    );
    assert_eq!(decide(&raw, admission::validate).outcome, Outcome::Denied);
    assert_eq!(
        decide(&deployment, admission::validate).outcome,
        Outcome::Allowed
    );

    let pod: Value =
        serde_json::from_slice::<Value>(&mutated).expect("parses")["request"]["object"].clone();
    let meta = ObjectMeta::deserialize(&pod["metadata"]).expect("metadata");
    let spec = PodSpec::deserialize(&pod["spec"]).expect("spec");
    assert!(pss::evaluate(Level::Restricted, Version::Latest, &meta, &spec).is_empty());

    let mut group = c.benchmark_group("review");
    group.throughput(Throughput::Elements(1));
    group.bench_function("mutate_full", |b| {
        b.iter(|| review_bytes(black_box(&raw), context, admission::mutate))
    });
    group.bench_function("validate_full", |b| {
        b.iter(|| review_bytes(black_box(&mutated), context, admission::validate))
    });
    group.bench_function("validate_denied", |b| {
        b.iter(|| review_bytes(black_box(&raw), context, admission::validate))
    });
    group.bench_function("validate_deployment", |b| {
        b.iter(|| review_bytes(black_box(&deployment), context, admission::validate))
    });
    group.finish();

    let mut group = c.benchmark_group("pss");
    group.throughput(Throughput::Elements(1));
    group.bench_function("evaluate_restricted", |b| {
        b.iter(|| {
            pss::evaluate(
                Level::Restricted,
                Version::Latest,
                black_box(&meta),
                black_box(&spec),
            )
        })
    });
    group.finish();

    let text = policy::DEFAULT_POLICY_YAML.replace(
        "    forbidSecretLiterals: true\n",
        "    forbidSecretLiterals: true\n    rules:\n      - name: no-latest-tag\n        expression: \"object.spec.containers.all(c, !c.image.endsWith(':latest') && c.image.contains(':'))\"\n        message: images must be pinned to a tag other than :latest\n",
    );
    let with_rule = policy::parse_str(&text, "bench").expect("policy with a rule loads");
    let groups = ["system:authenticated".to_owned()];
    let input = RuleInput::create("mcp", "github-mcp", "jane@example.com", &groups);
    assert_eq!(with_rule.rules.names().count(), 1);
    assert!(with_rule.rules.evaluate(&pod, &input).is_empty());
    let mut group = c.benchmark_group("cel");
    group.throughput(Throughput::Elements(1));
    group.bench_function("typical_rule", |b| {
        b.iter(|| with_rule.rules.evaluate(black_box(&pod), black_box(&input)))
    });
    let pairwise = |cost_limit: u64| {
        let text = policy::DEFAULT_POLICY_YAML.replace(
            "    forbidSecretLiterals: true\n",
            &format!("    forbidSecretLiterals: true\n    costLimit: {cost_limit}\n    rules:\n      - name: unique-images\n        expression: \"object.spec.containers.all(a, object.spec.containers.exists_one(b, b.image == a.image))\"\n"),
        );
        policy::parse_str(&text, "bench").expect("policy with a rule loads")
    };
    let mut wide = pod.clone();
    let template = wide["spec"]["containers"][0].clone();
    wide["spec"]["containers"] = Value::Array(
        (0..60)
            .map(|i| {
                let mut container = template.clone();
                container["name"] = json!(format!("server-{i}"));
                container["image"] = json!(format!("ghcr.io/acme/server-{i}:1.0"));
                container
            })
            .collect(),
    );
    let refused = pairwise(1).rules.evaluate(&wide, &input);
    println!("cel/pairwise_60_containers: {}", refused[0].detail);
    let unlimited = pairwise(u64::MAX);
    assert!(unlimited.rules.evaluate(&wide, &input).is_empty());
    group.bench_function("pairwise_60_containers", |b| {
        b.iter(|| {
            unlimited
                .rules
                .evaluate(black_box(&wide), black_box(&input))
        })
    });
    group.finish();

    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(1));
    group.bench_function("admission_review", |b| {
        b.iter(|| serde_json::from_slice::<AdmissionReview>(black_box(&raw)).expect("parses"))
    });
    group.finish();
}

criterion_group! {
    name = review;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(review);
